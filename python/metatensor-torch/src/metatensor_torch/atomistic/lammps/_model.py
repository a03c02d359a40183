"""The model inside LAMMPS: a ``fix external`` callback."""

import os
import sys
import time
import warnings
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np
import torch

from ..._classes import Labels
from .._evaluator import (
    NOT_DIFFERENTIABLE,
    ModelEvaluator,
    gradients,
    per_atom_values,
    per_system_values,
    stress_to_virial,
)
from .._outputs import ModelEvaluationOptions
from .._system import System
from .._units import unit_conversion_factor
from ._commands import PairStyleError
from ._ghosts import SKIN, _neighbor_block, _NeighborCache, _select_ghosts, _within


# length and energy units of the LAMMPS unit styles this module supports
UNIT_STYLES = {
    "metal": ("angstrom", "eV"),
    "real": ("angstrom", "kcal/mol"),
    "electron": ("bohr", "hartree"),
    "si": ("meter", "joule"),
}


class LammpsModel:
    """Evaluate an atomistic model for a ``lammps`` object, through a ``fix
    external`` with a callback (the API for Python drivers).

    Creating this object (after the simulation box exists) runs ``pair_style
    zero`` with the interaction range of the model, ``pair_coeff * *``, ``fix
    <fix_id> all external pf/callback 1 1`` and ``fix_modify <fix_id> energy yes
    virial yes`` on ``lmp``, and registers the callback. Every process of the
    LAMMPS communicator must create it. Thermo ``pe`` and ``press`` then include
    the model's energy and virial.

    An error inside the callback (which LAMMPS can not propagate) is printed on
    rank 0 and aborts all processes with ``MPI_Abort``.

    :param lmp: the ``lammps.lammps`` object
    :param model: the model: the path to a saved model or an
        :py:class:`AtomisticModel`
    :param atomic_numbers: the atomic number of each LAMMPS atom type (type 1
        first)
    :param device: the torch device to run the model on
    :param check_consistency: check the inputs and outputs of the model
    :param non_conservative: take the forces (``"forces"``), the virial
        (``"stress"``, on one process only) or both (``True``) from the
        non-conservative outputs of the model
    :param scale: a factor multiplying the energy, the forces and the virial
    :param uncertainty_threshold: warn about atoms whose energy uncertainty (eV)
        is larger than this, when the model has a per-atom
        ``energy_uncertainty`` output (``None`` or a non-positive value
        disables the check)
    :param variants: the variant of each output: ``{"energy": "pbe"}`` uses
        ``energy/pbe``, which is also the default variant of
        ``energy_uncertainty``, ``non_conservative_force`` and
        ``non_conservative_stress``; these can be chosen separately
    :param extensions_directory: where to find the TorchScript extensions of the
        model
    :param fix_id: the id of the ``fix external``
    """

    def __init__(
        self,
        lmp: Any,
        model: Union[str, "os.PathLike[str]", torch.nn.Module],
        atomic_numbers: Sequence[int],
        *,
        device: Optional[str] = None,
        check_consistency: bool = False,
        non_conservative: Union[bool, str] = False,
        scale: float = 1.0,
        uncertainty_threshold: Optional[float] = 0.1,
        variants: Optional[Dict[str, Optional[str]]] = None,
        extensions_directory: Optional[str] = None,
        fix_id: str = "metatensor",
    ):
        self.lmp = lmp
        self.comm = _communicator(lmp)
        self.rank = self.comm.Get_rank()
        self.n_processes = self.comm.Get_size()
        self.fix_id = str(fix_id)

        if not lmp.extract_setting("box_exist"):
            raise PairStyleError(
                "the simulation box must exist (read_data, create_box, ...) before "
                "pair_coeff for pair_style metatensor"
            )
        units = lmp.extract_global("units")
        if units not in UNIT_STYLES:
            raise PairStyleError(
                f"pair_style metatensor supports the LAMMPS units {sorted(UNIT_STYLES)}"
                f", not '{units}'"
            )
        length_unit, energy_unit = UNIT_STYLES[units]
        # LAMMPS units -> angstrom and eV -> LAMMPS units
        self.length_factor = unit_conversion_factor(length_unit, "angstrom")
        self.energy_factor = unit_conversion_factor("eV", energy_unit) * float(scale)
        self.force_factor = self.energy_factor * self.length_factor

        self.evaluator = ModelEvaluator(
            model,
            device=device,
            check_consistency=check_consistency,
            variants=variants,
            non_conservative=non_conservative,
            uncertainty_threshold=uncertainty_threshold,
            extensions_directory=extensions_directory,
        )
        """the :py:class:`ModelEvaluator` running the model"""
        if self.evaluator.keys["energy"] is None:
            raise PairStyleError("this model has no 'energy' output")
        self.energy_key: str = self.evaluator.keys["energy"]
        self.per_atom_energy = (
            self.evaluator.capabilities.outputs[self.energy_key].sample_kind == "atom"
        )
        if self.n_processes > 1 and not self.per_atom_energy:
            raise PairStyleError(
                f"the '{self.energy_key}' output of this model is not available per "
                "atom, which is needed to split the simulation between MPI processes: "
                "run on one process"
            )
        if self.n_processes > 1 and self.evaluator.non_conservative_stress:
            raise PairStyleError(
                "the non-conservative stress of a model can not be split between MPI "
                "processes: use 'non_conservative forces' or run on one process"
            )

        n_types = int(lmp.extract_setting("ntypes"))
        numbers = [int(z) for z in atomic_numbers]
        if len(numbers) != n_types:
            raise PairStyleError(
                f"expected one atomic number for each of the {n_types} atom types, "
                f"got {len(numbers)}"
            )
        supported = set(self.evaluator.atomic_types)
        for atom_type, number in enumerate(numbers, start=1):
            if number not in supported:
                raise PairStyleError(
                    f"atom type {atom_type} is mapped to the atomic number {number}, "
                    "which this model does not support (its atomic types are "
                    f"{sorted(supported)})"
                )
        # atomic number of each LAMMPS type, indexed by the type
        self.numbers = np.array([0] + numbers, dtype=np.int32)

        # the ghost shell: the interaction range (LAMMPS adds its neighbor skin)
        self.range = max(
            self.evaluator.interaction_range, self.evaluator.neighbor_cutoff
        )
        shell = max(self.range, 1e-3) / self.length_factor

        # cutoff (Å) and full_list of each requested neighbor list
        self.cutoffs = [
            (request.engine_cutoff("angstrom"), request.full_list)
            for request in self.evaluator.neighbor_options
        ]
        self._cache: Optional[_NeighborCache] = None
        self.rebuilds = 0
        """the number of times the atoms and neighbor lists were rebuilt"""
        self.system_atoms = 0
        """the number of atoms (own and ghosts) in the last system given to the
        model by this process"""

        self.timings = {"prepare": 0.0, "model": 0.0, "reduce": 0.0, "callback": 0.0}
        """accumulated seconds spent in the callback: building the system and its
        neighbor lists (``prepare``), the model's forward and backward passes
        (``model``), the reduction over processes and the copies of results
        (``reduce``) and all of it (``callback``)"""
        self.calls = 0
        """the number of calls of the callback"""
        self.last_energy = 0.0
        """the energy of the last call, in LAMMPS units (all processes)"""

        lmp.command(f"pair_style zero {shell!r}")
        lmp.command("pair_coeff * *")
        lmp.command(f"fix {self.fix_id} all external pf/callback 1 1")
        lmp.command(f"fix_modify {self.fix_id} energy yes virial yes")
        lmp.set_fix_external_callback(self.fix_id, _callback, self)

    def reset_timings(self) -> None:
        """Set the timings and the number of calls to zero."""
        for key in self.timings:
            self.timings[key] = 0.0
        self.calls = 0
        self.rebuilds = 0

    # ------------------------------------------------------------------ #

    def callback(self, step: int, nlocal: int, tags: np.ndarray, f: np.ndarray):
        """The ``fix external`` callback: set the forces ``f`` on the local atoms,
        the global energy and the global virial.

        :param step: the time step
        :param nlocal: the number of atoms of this process
        :param tags: the ids of these atoms
        :param f: the forces on these atoms, to be set (LAMMPS units)
        """
        start = time.perf_counter()
        message = None
        try:
            result = self._local_contribution(nlocal)
        except Exception as error:  # noqa: BLE001 (reported and aborted below)
            message = f"{type(error).__name__}: {error}"
            result = None

        reduce_start = time.perf_counter()
        if self.n_processes > 1:
            forces, energy, virial, message = self._reduce(result, nlocal, message)
        elif result is not None:
            forces = result["forces"][:nlocal]
            if self.evaluator.non_conservative_forces and nlocal > 0:
                # no net force
                forces = forces - forces.mean(axis=0)
            energy = result["energy"]
            virial = result["virial"]
        if message is not None:
            self._abort(step, message)
            return

        f[:nlocal] = forces * self.force_factor
        energy = energy * self.energy_factor
        virial = virial * self.energy_factor
        self.last_energy = energy
        lmp = self.lmp
        lmp.fix_external_set_energy_global(self.fix_id, energy)
        lmp.fix_external_set_virial_global(
            self.fix_id,
            [
                virial[0, 0],
                virial[1, 1],
                virial[2, 2],
                0.5 * (virial[0, 1] + virial[1, 0]),
                0.5 * (virial[0, 2] + virial[2, 0]),
                0.5 * (virial[1, 2] + virial[2, 1]),
            ],
        )
        end = time.perf_counter()
        self.timings["reduce"] += end - reduce_start
        self.timings["callback"] += end - start
        self.calls += 1

    def _local_contribution(self, nlocal: int) -> Dict[str, Any]:
        """The energy of the atoms of this process, the forces on the atoms of
        its system (own atoms first) and their ids, and the virial, in Å and
        eV."""
        start = time.perf_counter()
        lmp = self.lmp
        if nlocal == 0:
            # nothing to compute for a process without atoms
            self.system_atoms = 0
            self.timings["prepare"] += time.perf_counter() - start
            return {
                "energy": 0.0,
                "forces": np.zeros((0, 3)),
                "virial": np.zeros((3, 3)),
                "tags": np.zeros(0, dtype=np.int64),
            }
        nghost = int(lmp.extract_setting("nghost"))
        boxlo, boxhi, xy, yz, xz, periodicity, _ = lmp.extract_box()
        cell = np.array(
            [
                [boxhi[0] - boxlo[0], 0.0, 0.0],
                [xy, boxhi[1] - boxlo[1], 0.0],
                [xz, yz, boxhi[2] - boxlo[2]],
            ]
        )
        periodic = np.array(periodicity, dtype=bool)

        if self.n_processes == 1:
            # all atoms are here: the periodic system itself, no ghosts
            nall = nlocal
            split = np.zeros(3, dtype=bool)
        else:
            nall = nlocal + nghost
            split = np.array(lmp.extract_global("procgrid")) > 1

        x = lmp.numpy.extract_atom("x", nelem=nall, dim=3)
        atom_types = np.asarray(lmp.numpy.extract_atom("type", nelem=nall)[:nall])
        tags = np.asarray(lmp.numpy.extract_atom("id", nelem=nall)[:nall])
        positions = np.array(x[:nall], dtype=np.float64) * self.length_factor
        cell = cell * self.length_factor
        origin = np.array(boxlo) * self.length_factor
        pbc = periodic & ~split

        cache = self._cache
        if cache is None or not cache.valid(nlocal, tags, atom_types, cell, positions):
            if split.any():
                rows = _select_ghosts(
                    positions, tags, nlocal, cell, origin, split, self.range + SKIN
                )
            else:
                rows = np.arange(nall)
            cache = _NeighborCache(
                nlocal, tags, atom_types, cell, positions, rows, pbc, self.cutoffs
            )
            self._cache = cache
            self.rebuilds += 1

        rows = cache.rows
        remap = None
        system_tags = None
        # the positions of the atoms of the candidate pairs
        candidate_positions = positions[rows] if split.any() else positions
        positions = candidate_positions
        if split.any():
            # the ghost atoms within the interaction range of the own atoms now
            # (the cached ones reach the range plus the skin)
            inside = _within(positions, nlocal, cell, origin, split, self.range)
            if not inside.all():
                kept = np.nonzero(inside)[0]
                remap = np.full(len(rows), -1, dtype=np.int64)
                remap[kept] = np.arange(len(kept))
                rows = rows[kept]
                positions = positions[kept]
            atom_types = atom_types[rows]
            system_tags = tags[rows].astype(np.int64)

        types = self.numbers[atom_types]
        self.system_atoms = len(types)
        evaluator = self.evaluator
        dtype = evaluator.dtype
        device = evaluator.device
        nc_forces = evaluator.non_conservative_forces
        nc_stress = evaluator.non_conservative_stress

        positions_t = torch.tensor(positions, dtype=dtype, device=device)
        positions_t.requires_grad_(not nc_forces)
        strain = torch.eye(3, dtype=dtype, device=device, requires_grad=not nc_stress)
        cell_t = torch.tensor(cell * pbc[:, None], dtype=dtype, device=device)
        system = System(
            types=torch.tensor(types, dtype=torch.int32, device=device),
            positions=positions_t @ strain,
            cell=cell_t @ strain,
            pbc=torch.tensor(pbc, device=device),
        )
        for request, candidates, (cutoff, _) in zip(
            evaluator.neighbor_options, cache.candidates, self.cutoffs
        ):
            neighbors = _neighbor_block(
                candidates, remap, candidate_positions, cutoff, system
            )
            system.add_neighbor_list(request, neighbors)

        ghosts = len(types) > nlocal
        selected_atoms = None
        if ghosts:
            atoms = torch.arange(nlocal, dtype=torch.int32, device=device)
            selected_atoms = Labels(
                ["system", "atom"],
                torch.stack([torch.zeros_like(atoms), atoms], dim=1),
                assume_unique=True,
            )
        kind = "atom" if ghosts else "system"
        outputs = evaluator.energy_outputs(kind, forces=True, virial=True)
        options = ModelEvaluationOptions(
            length_unit="angstrom", outputs=outputs, selected_atoms=selected_atoms
        )

        model_start = time.perf_counter()
        results = evaluator.model(
            [system], options, check_consistency=evaluator.check_consistency
        )
        energy = results[self.energy_key].block().values.sum()
        leaves = []
        if not nc_forces:
            leaves.append(positions_t)
        if not nc_stress:
            leaves.append(strain)
        if len(leaves) != 0 and not energy.requires_grad:
            raise RuntimeError(NOT_DIFFERENTIABLE)
        grads = gradients(energy, leaves, retain=False)
        model_end = time.perf_counter()

        result: Dict[str, Any] = {"energy": float(energy.detach())}
        if nc_forces:
            block = results[evaluator.keys["non_conservative_force"]].block()
            forces = per_atom_values(block, [len(types)])[0].reshape(-1, 3)
        else:
            forces = -grads[0]
        result["forces"] = forces.detach().to("cpu", torch.float64).numpy()
        if nc_stress:
            block = results[evaluator.keys["non_conservative_stress"]].block()
            stress = per_system_values(block, 1)[0].reshape(3, 3)
            stress = stress.detach().to("cpu", torch.float64)
            virial = stress_to_virial(stress, torch.from_numpy(cell))
        else:
            virial = -grads[-1]
        result["virial"] = virial.detach().to("cpu", torch.float64).numpy()
        result["tags"] = system_tags
        if evaluator.uncertainty_key is not None:
            self._check_uncertainty(results[evaluator.uncertainty_key], tags, nlocal)

        self.timings["model"] += model_end - model_start
        self.timings["prepare"] += model_start - start
        return result

    def _reduce(self, result: Optional[Dict[str, Any]], nlocal: int, message):
        """Sum the forces on the copies of each atom, the energy and the virial
        over all processes (two ``MPI_Allreduce``), and spread errors."""
        from mpi4py import MPI

        comm = self.comm
        tags = self.lmp.numpy.extract_atom("id", nelem=nlocal)
        local_max = int(tags[:nlocal].max()) if nlocal > 0 else 0
        if result is not None and result["tags"] is not None and len(result["tags"]):
            local_max = max(local_max, int(result["tags"].max()))
        header = np.array([local_max, 0 if message is None else 1], dtype=np.int64)
        comm.Allreduce(MPI.IN_PLACE, header, op=MPI.MAX)
        if header[1] != 0:
            messages = comm.allgather(message)
            first = next(m for m in messages if m is not None)
            return None, None, None, first

        n_values = 3 * (int(header[0]) + 1)
        buffer = np.zeros(n_values + 14)
        forces = result["forces"]
        system_tags = result["tags"]
        if system_tags is None:
            system_tags = np.asarray(tags[:nlocal], dtype=np.int64)
        if self.evaluator.non_conservative_forces:
            # one value per own atom, the net force is removed globally
            forces = forces[:nlocal]
            system_tags = system_tags[:nlocal]
            buffer[n_values + 11 : n_values + 14] = forces.sum(axis=0)
            buffer[n_values + 10] = nlocal
        index = (3 * system_tags[:, None] + np.arange(3)).reshape(-1)
        buffer[:n_values] = np.bincount(
            index, weights=forces.reshape(-1), minlength=n_values
        )
        buffer[n_values] = result["energy"]
        buffer[n_values + 1 : n_values + 10] = result["virial"].reshape(-1)
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)

        all_forces = buffer[:n_values].reshape(-1, 3)
        own = np.asarray(tags[:nlocal], dtype=np.int64)
        local_forces = all_forces[own]
        if self.evaluator.non_conservative_forces:
            count = buffer[n_values + 10]
            if count > 0:
                local_forces = local_forces - buffer[n_values + 11 :] / count
        energy = buffer[n_values]
        virial = buffer[n_values + 1 : n_values + 10].reshape(3, 3)
        return local_forces, energy, virial, None

    def _check_uncertainty(self, tensor, tags, nlocal: int) -> None:
        threshold = self.evaluator.uncertainty_threshold
        block = tensor.block()
        values = block.values.detach().to("cpu", torch.float64).numpy().reshape(-1)
        atoms = block.samples.column("atom").to("cpu", torch.long).numpy()
        above = (values > threshold) & (atoms < nlocal)
        if above.any():
            ids = np.asarray(tags)[atoms[above]].tolist()
            warnings.warn(
                "the energy uncertainty of some atoms is larger than the threshold of "
                f"{threshold} eV: atom ids {ids}",
                stacklevel=2,
            )

    def _abort(self, step: int, message: str) -> None:
        if self.rank == 0:
            sys.stdout.flush()
            print(
                f"ERROR: pair_style metatensor failed at step {step}: {message}",
                file=sys.stderr,
                flush=True,
            )
        self.comm.Barrier()
        self.comm.Abort(1)
        os._exit(1)


def attach(
    lmp: Any,
    model: Union[str, "os.PathLike[str]", torch.nn.Module],
    atomic_numbers: Sequence[int],
    **options: Any,
) -> LammpsModel:
    """Attach ``model`` to the ``lammps`` object ``lmp``: the same as
    :py:class:`LammpsModel` (``LammpsModel(lmp, model, atomic_numbers,
    **options)``).

    :param lmp: the ``lammps.lammps`` object, with a simulation box
    :param model: the path to a saved model, or an :py:class:`AtomisticModel`
    :param atomic_numbers: the atomic number of each LAMMPS atom type
    :param options: the keyword arguments of :py:class:`LammpsModel`
    :return: the :py:class:`LammpsModel`, with its timings
    """
    return LammpsModel(lmp, model, atomic_numbers, **options)


def _callback(caller: LammpsModel, step, nlocal, tags, x, f) -> None:
    caller.callback(int(step), int(nlocal), tags, f)


def _communicator(lmp: Any):
    comm = lmp.get_mpi_comm() if lmp.has_mpi4py else None
    if comm is None:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    return comm
