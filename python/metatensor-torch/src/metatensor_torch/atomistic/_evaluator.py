"""The common evaluation core of the engine adapters (ASE calculator, LAMMPS
runner, i-PI client, OpenMM force, TorchSim model).

:py:class:`ModelEvaluator` takes a loaded model through the common interface
of atomistic models (``forward(systems, options, check_consistency)``,
``capabilities()``, ``requested_neighbor_lists()``, ``requested_inputs()``),
turns plain arrays (atomic types, positions, cell and periodic boundary
conditions in Å) into :py:class:`System` with their neighbor lists (computed
with vesin), runs the model and returns the energy (eV), the forces (eV/Å) and
the virial (eV) computed by automatic differentiation, or taken from the
non-conservative outputs of the model. Each adapter only converts its engine's
arrays and units.

The virial is :math:`W = -\\partial E / \\partial \\epsilon` for a strain
:math:`\\epsilon` applied to the positions and the cell (for a pair potential,
:math:`W = \\sum r_{ij} \\otimes f_{ij}`, the convention of LAMMPS and i-PI);
ASE's stress is :math:`-W / V`.

This module imports vesin when neighbor lists are computed.
"""

import contextlib
import os
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .._classes import Labels, TensorBlock, TensorMap
from ._devices import pick_device
from ._model import is_atomistic_model, load_atomistic_model
from ._neighbors import add_neighbor_lists
from ._outputs import ModelEvaluationOptions, ModelOutput
from ._quantities import pick_output
from ._system import System
from ._units import unit_conversion_factor


# outputs whose variant defaults to the variant chosen for "energy"
VARIANT_KEYS = [
    "energy",
    "energy_uncertainty",
    "non_conservative_force",
    "non_conservative_stress",
]

# one structure: atomic types, positions, cell and periodic boundary conditions
Structure = Tuple[Any, Any, Any, Any]
# adds the extra inputs a model requests to the system built for a structure
# (called with the system and the index of the structure)
InputsHook = Callable[[System, int], None]


class ModelEvaluator:
    """Evaluate an atomistic model for a simulation engine: energies, forces
    and virials of structures given as plain arrays, in Å and eV.

    :param model: the model: the path to a file saved with
        :py:meth:`AtomisticModel.save`, or an :py:class:`AtomisticModel` (Python
        or scripted)
    :param device: the torch device to run on (by default the first device of
        the model's ``supported_devices`` available here)
    :param check_consistency: check the inputs and outputs of the model against
        the metadata rules of the atomistic models (slower)
    :param variants: the variant of each output to use: ``{"energy": "pbe"}``
        uses ``energy/pbe``, and this variant is also the default for
        ``energy_uncertainty``, ``non_conservative_force`` and
        ``non_conservative_stress``, which can be set separately
    :param non_conservative: take the forces and the virial (``True``), only the
        forces (``"forces"``) or only the virial (``"stress"``) from the
        non-conservative outputs of the model instead of the gradients of the
        energy
    :param uncertainty_threshold: when the model has a per-atom
        ``energy_uncertainty`` output, warn about the atoms whose uncertainty
        (in eV) exceeds this value; ``None`` or a non-positive value disables
        the check
    :param extensions_directory: where to look for the TorchScript extensions of
        a model loaded from a path
    :param neighbor_skin: skin (in Å) added to the cutoff of non-strict
        neighbor lists
    """

    def __init__(
        self,
        model: Union[str, bytes, "os.PathLike[str]", torch.nn.Module],
        *,
        device: Optional[Union[str, torch.device]] = None,
        check_consistency: bool = False,
        variants: Optional[Dict[str, Optional[str]]] = None,
        non_conservative: Union[bool, str] = False,
        uncertainty_threshold: Optional[float] = None,
        extensions_directory: Optional[Union[str, "os.PathLike[str]"]] = None,
        neighbor_skin: float = 0.0,
    ):
        if isinstance(model, (str, bytes, os.PathLike)):
            path = os.fsdecode(model)
            if not os.path.exists(path):
                raise FileNotFoundError(f"given model path '{path}' does not exist")
            if extensions_directory is not None:
                extensions_directory = os.fsdecode(extensions_directory)
            model = load_atomistic_model(
                path, extensions_directory=extensions_directory
            )
        elif isinstance(model, torch.nn.Module):
            if not is_atomistic_model(model):
                raise TypeError(
                    "`model` must be an AtomisticModel (Python or scripted) or "
                    f"the path to a saved one, got a {type(model).__name__} module"
                )
        else:
            raise TypeError(
                "`model` must be an AtomisticModel or the path to a saved one, "
                f"got {type(model).__name__}"
            )

        if non_conservative not in (False, True, "forces", "stress"):
            raise ValueError(
                "`non_conservative` must be False, True, 'forces' or 'stress', "
                f"got {non_conservative!r}"
            )
        if neighbor_skin < 0:
            raise ValueError(
                f"`neighbor_skin` must be non-negative, got {neighbor_skin}"
            )

        capabilities = model.capabilities()
        desired = str(device) if device is not None else None
        self.device = torch.device(pick_device(capabilities.supported_devices, desired))
        """the device the model runs on"""
        if capabilities.dtype not in ("float32", "float64"):
            raise ValueError(
                f"unsupported dtype in the model capabilities: '{capabilities.dtype}'"
            )
        self.dtype: torch.dtype = getattr(torch, capabilities.dtype)
        """the dtype of the model"""
        self.capabilities = capabilities
        """the capabilities of the model"""
        self.model = model.to(device=self.device)
        """the model (an :py:class:`AtomisticModel`)"""
        self.check_consistency = bool(check_consistency)
        self.neighbor_skin = float(neighbor_skin)

        outputs = capabilities.outputs
        self.keys = resolve_variants(variants, outputs)
        """the name of the output used for each of ``energy``,
        ``energy_uncertainty``, ``non_conservative_force`` and
        ``non_conservative_stress`` (``None`` for the outputs the model lacks)"""
        self.non_conservative_forces = non_conservative in (True, "forces")
        self.non_conservative_stress = non_conservative in (True, "stress")
        for enabled, base in [
            (self.non_conservative_forces, "non_conservative_force"),
            (self.non_conservative_stress, "non_conservative_stress"),
        ]:
            if enabled and self.keys[base] is None:
                raise ValueError(
                    f"non_conservative={non_conservative!r} needs the '{base}' "
                    "output, which this model does not have (its outputs are "
                    f"{sorted(outputs.keys())})"
                )

        self.uncertainty_threshold = uncertainty_threshold
        self.uncertainty_key: Optional[str] = None
        key = self.keys["energy_uncertainty"]
        if (
            key is not None
            and uncertainty_threshold is not None
            and uncertainty_threshold > 0
            and outputs[key].sample_kind == "atom"
        ):
            self.uncertainty_key = key

        self.neighbor_options = list(self.model.requested_neighbor_lists())
        self.profiler_prefix = "ModelEvaluator"
        """the prefix of the names of the ``torch.profiler`` regions marking the
        stages of an evaluation (``<prefix>::prepare_inputs``,
        ``::compute_neighbors``, ``::sum_energies``, ``::run_backward``); the
        ASE calculator uses ``MetatomicCalculator``"""
        self.requested_inputs: Dict[str, ModelOutput] = dict(
            self.model.requested_inputs(use_new_names=True)
        )

    def profile(self, stage: str):
        """A ``torch.profiler.record_function`` region named
        ``<profiler_prefix>::<stage>`` while the profiler runs, else a context
        doing nothing (entering a region costs a few µs).

        :param stage: the name of the stage
        """
        if torch.autograd._profiler_enabled():
            return torch.profiler.record_function(self.profiler_prefix + "::" + stage)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ #
    # description                                                         #
    # ------------------------------------------------------------------ #

    @property
    def atomic_types(self) -> List[int]:
        """the atomic types the model can handle"""
        return list(self.capabilities.atomic_types)

    @property
    def interaction_range(self) -> float:
        """how far (in Å) the energy of an atom can depend on other atoms"""
        factor = unit_conversion_factor(self.capabilities.length_unit, "angstrom")
        return float(self.capabilities.interaction_range) * factor

    @property
    def neighbor_cutoff(self) -> float:
        """the largest cutoff (in Å) of the neighbor lists the model requests
        (0 when it requests none)"""
        cutoffs = [o.engine_cutoff("angstrom") for o in self.neighbor_options]
        return max(cutoffs, default=0.0)

    def check_types(self, types: Any) -> None:
        """Raise a ``ValueError`` when ``types`` contains atomic types that the
        model can not handle.

        :param types: the atomic types of a structure
        """
        types = np.unique(np.asarray(_cpu(types), dtype=np.int64))
        known = np.asarray(self.atomic_types, dtype=np.int64)
        unknown = types[~np.isin(types, known)]
        if len(unknown) != 0:
            raise ValueError(
                f"the model does not support the atomic types {unknown.tolist()}, "
                f"it supports {known.tolist()}"
            )

    # ------------------------------------------------------------------ #
    # evaluation                                                          #
    # ------------------------------------------------------------------ #

    def compute(
        self,
        types: Any,
        positions: Any,
        cell: Any,
        pbc: Any,
        *,
        forces: bool = True,
        virial: bool = True,
        per_atom: bool = False,
        numpy: bool = True,
    ) -> Dict[str, Any]:
        """The energy (eV), and optionally the forces (eV/Å), the virial (eV) and
        the per-atom energies (eV) of one structure.

        :param types: atomic types, ``(n_atoms,)`` integers
        :param positions: positions in Å, ``(n_atoms, 3)``
        :param cell: cell vectors in Å (rows), zero rows in the non-periodic
            directions
        :param pbc: periodic boundary conditions, 3 booleans
        :param forces: compute the forces
        :param virial: compute the virial
        :param per_atom: also return the per-atom energies (``"energies"``)
        :param numpy: return numpy arrays (``True``) or float64 torch tensors on
            the model's device (``False``)
        :return: a dictionary with ``"energy"`` (a float), ``"forces"``,
            ``"virial"`` and ``"energies"`` when requested
        """
        results = self.compute_batch(
            [(types, positions, cell, pbc)],
            forces=forces,
            virial=virial,
            per_atom=per_atom,
            numpy=numpy,
        )
        return results[0]

    def compute_batch(
        self,
        structures: Sequence[Structure],
        *,
        forces: bool = True,
        virial: bool = True,
        per_atom: bool = False,
        numpy: bool = True,
    ) -> List[Dict[str, Any]]:
        """:py:meth:`compute` for several structures, in one call of the model.

        :param structures: ``(types, positions, cell, pbc)`` of each structure
        :param forces: compute the forces
        :param virial: compute the virials
        :param per_atom: also return the per-atom energies
        :param numpy: return numpy arrays or torch tensors
        :return: one dictionary per structure (see :py:meth:`compute`)
        """
        data = self.energy_and_gradients(
            structures,
            per_atom=per_atom,
            forces=forces,
            virial=virial,
            explicit=True,
        )
        results: List[Dict[str, Any]] = []
        for index in range(len(structures)):
            result: Dict[str, Any] = {}
            for name, values in data.items():
                value = values[index].detach().to(torch.float64)
                if name == "energy":
                    result[name] = float(value)
                elif numpy:
                    result[name] = value.cpu().numpy()
                else:
                    result[name] = value
            results.append(result)
        return results

    def energy_and_gradients(
        self,
        structures: Sequence[Structure],
        *,
        per_atom: bool,
        forces: bool,
        virial: bool,
        explicit: bool = True,
        explicit_forces: bool = False,
        explicit_virial: bool = False,
        inputs: Optional[InputsHook] = None,
        additional: Optional[Dict[str, ModelOutput]] = None,
    ) -> Dict[str, List[torch.Tensor]]:
        """Energies (and per-atom energies, forces, virials) of ``structures``,
        as lists of tensors on the model's device, one entry per structure.

        ``explicit`` (or ``explicit_forces``/``explicit_virial``) marks the
        gradients the caller needs: they raise if the energy is not
        differentiable, the others are dropped.

        :param structures: ``(types, positions, cell, pbc)`` of each structure
        :param per_atom: also compute the per-atom energies (``"energies"``)
        :param forces: compute the forces
        :param virial: compute the virials
        :param explicit: all requested gradients are needed
        :param explicit_forces: the forces are needed
        :param explicit_virial: the virials are needed
        :param inputs: adds the inputs the model requests to each system
        :param additional: other outputs to compute; the raw outputs of the
            model are then stored in :py:attr:`last_outputs`
        """
        energy_key = self.keys["energy"]
        if energy_key is None:
            raise ValueError(
                "this model has no 'energy' output, it can not compute energies, "
                "forces or virials"
            )
        if per_atom and self.capabilities.outputs[energy_key].sample_kind != "atom":
            raise ValueError(
                f"the '{energy_key}' output of this model is not available per "
                "atom, which is needed for per-atom energies"
            )
        nc_forces = forces and self.non_conservative_forces
        nc_virial = virial and self.non_conservative_stress
        kind = "atom" if per_atom else "system"
        outputs = self.energy_outputs(kind, forces=forces, virial=virial)
        if additional is not None:
            for name, request in additional.items():
                outputs.setdefault(name, request)

        grad_forces = forces and not nc_forces
        grad_virial = virial and not nc_virial
        results, systems, positions, strains = self.evaluate(
            structures,
            outputs,
            forces=grad_forces,
            stress=grad_virial,
            inputs=inputs,
        )
        self.last_outputs: Dict[str, TensorMap] = results
        """the raw outputs of the last call of :py:meth:`energy_and_gradients`"""

        n_systems = len(structures)
        counts = [len(system) for system in systems]
        block = results[energy_key].block()
        data: Dict[str, List[torch.Tensor]] = {}
        with self.profile("sum_energies"):
            if per_atom:
                atomic = per_atom_values(block, counts)
                data["energies"] = [e[:, 0] for e in atomic]
                total = _sum_per_system(block, n_systems)
            else:
                total = per_system_values(block, n_systems)[:, 0]
            data["energy"] = list(total.detach())

        if self.uncertainty_key is not None:
            self._warn_uncertainty(results[self.uncertainty_key].block(), counts)

        if grad_forces or grad_virial:
            if total.requires_grad:
                with self.profile("run_backward"):
                    inputs_ = (positions if grad_forces else []) + (
                        strains if grad_virial else []
                    )
                    grads = gradients(total.sum(), inputs_, retain=False)
                    position_grads = grads[: len(positions)] if grad_forces else []
                    strain_grads = grads[len(positions) :] if grad_forces else grads
                if grad_forces:
                    data["forces"] = [-g for g in position_grads]
                if grad_virial:
                    data["virial"] = [-g for g in strain_grads]
            else:
                needed = explicit or (grad_forces and explicit_forces)
                needed = needed or (grad_virial and explicit_virial)
                if needed:
                    raise RuntimeError(NOT_DIFFERENTIABLE)

        if nc_forces:
            values = results[self.keys["non_conservative_force"]].block()
            data["forces"] = [
                f[:, :, 0] - f[:, :, 0].mean(dim=0, keepdim=True)
                for f in per_atom_values(values, counts)
            ]
        if nc_virial:
            values = results[self.keys["non_conservative_stress"]].block()
            stress = per_system_values(values, n_systems)[:, :, :, 0]
            data["virial"] = [
                stress_to_virial(s, system.cell) for s, system in zip(stress, systems)
            ]
        return data

    def energy_outputs(
        self, kind: str, *, forces: bool, virial: bool
    ) -> Dict[str, ModelOutput]:
        """The outputs to ask the model for: the energy (per ``"atom"`` or per
        ``"system"``, in eV), the per-atom uncertainty when it is checked, and
        the non-conservative forces (with ``forces``) and stress (with
        ``virial``) when they replace the gradients of the energy.

        :param kind: the ``sample_kind`` of the energy
        :param forces: the forces are needed
        :param virial: the virial is needed
        """
        energy_key = self.keys["energy"]
        assert energy_key is not None
        outputs = {energy_key: ModelOutput(unit="eV", sample_kind=kind)}
        if self.uncertainty_key is not None:
            outputs[self.uncertainty_key] = ModelOutput(unit="eV", sample_kind="atom")
        if forces and self.non_conservative_forces:
            key = self.keys["non_conservative_force"]
            outputs[key] = ModelOutput(unit="eV/Angstrom", sample_kind="atom")
        if virial and self.non_conservative_stress:
            key = self.keys["non_conservative_stress"]
            outputs[key] = ModelOutput(unit="eV/Angstrom^3", sample_kind="system")
        return outputs

    def evaluate(
        self,
        structures: Sequence[Structure],
        outputs: Dict[str, ModelOutput],
        *,
        forces: bool,
        stress: bool,
        selected_atoms: Optional[Labels] = None,
        inputs: Optional[InputsHook] = None,
    ) -> Tuple[
        Dict[str, TensorMap], List[System], List[torch.Tensor], List[torch.Tensor]
    ]:
        """Build the systems of ``structures`` (positions requiring gradients
        when ``forces``, a strain applied to positions and cell when
        ``stress``), their neighbor lists and inputs, and run the model.

        :param structures: ``(types, positions, cell, pbc)`` of each structure
        :param outputs: the outputs to compute
        :param forces: make the positions require gradients
        :param stress: apply a strain requiring gradients to each system
        :param selected_atoms: the atoms to compute per-atom outputs for
        :param inputs: adds the inputs the model requests to each system
        :return: the outputs of the model, the systems, the positions and the
            strains (the leaves of the gradients)
        """
        systems: List[System] = []
        all_positions: List[torch.Tensor] = []
        strains: List[torch.Tensor] = []
        with self.profile("prepare_inputs"):
            for index, (types, positions, cell, pbc) in enumerate(structures):
                positions = self._tensor(positions, self.dtype).reshape(-1, 3)
                pbc = self._tensor(pbc, torch.bool).reshape(3)
                cell = self._tensor(cell, self.dtype).reshape(3, 3)
                cell = cell * pbc.unsqueeze(1).to(self.dtype)
                if forces:
                    positions.requires_grad_(True)
                all_positions.append(positions)
                if stress:
                    strain = torch.eye(
                        3, dtype=self.dtype, device=self.device, requires_grad=True
                    )
                    strains.append(strain)
                    system_positions = positions @ strain
                    cell = cell @ strain
                else:
                    system_positions = positions
                types = self._tensor(types, torch.int32).reshape(-1)
                system = System(
                    types=types, positions=system_positions, cell=cell, pbc=pbc
                )
                if inputs is not None:
                    inputs(system, index)
                systems.append(system)

        if len(self.neighbor_options) != 0:
            with self.profile("compute_neighbors"):
                add_neighbor_lists(
                    systems,
                    self.neighbor_options,
                    length_unit="angstrom",
                    skin=self.neighbor_skin,
                )
        options = ModelEvaluationOptions(
            length_unit="angstrom", outputs=outputs, selected_atoms=selected_atoms
        )
        results = self.model(systems, options, check_consistency=self.check_consistency)
        return results, systems, all_positions, strains

    def _tensor(self, data: Any, dtype: torch.dtype) -> torch.Tensor:
        """``data`` (numpy array, torch tensor, sequence) as a new tensor with
        ``dtype`` on the model's device."""
        if isinstance(data, torch.Tensor):
            return data.detach().to(device=self.device, dtype=dtype).clone()
        return torch.tensor(np.asarray(data), dtype=dtype, device=self.device)

    def _warn_uncertainty(self, block: TensorBlock, counts: List[int]) -> None:
        threshold = self.uncertainty_threshold
        values = block.values.detach().to("cpu", torch.float64).reshape(-1)
        samples = block.samples.values.to("cpu")
        above = values > threshold
        if bool(above.any()):
            where = samples[above]
            if len(counts) == 1:
                atoms = where[:, 1].tolist()
                description = f"atoms {atoms}"
            else:
                description = "(system, atom) " + str(
                    [tuple(row) for row in where[:, :2].tolist()]
                )
            warnings.warn(
                "the energy uncertainty of some atoms is larger than the threshold "
                f"of {threshold} eV: {description}",
                stacklevel=4,
            )


# ============================================================================ #
# helpers


def _cpu(data: Any) -> Any:
    if isinstance(data, torch.Tensor):
        return data.detach().cpu().numpy()
    return data


NOT_DIFFERENTIABLE = (
    "the energy computed by the model does not depend on the positions or the "
    "cell (it is not differentiable), can not compute forces or virials by "
    "automatic differentiation"
)


def stress_to_virial(stress: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """The virial (eV) of a non-conservative ``stress`` (eV/Å³) of a system with
    this ``cell``: minus the stress times the volume.

    :param stress: the ``(3, 3)`` stress
    :param cell: the ``(3, 3)`` cell
    """
    return -stress * torch.abs(torch.linalg.det(cell))


def gradients(
    output: torch.Tensor, inputs: List[torch.Tensor], retain: bool
) -> List[torch.Tensor]:
    """Gradients of ``output`` with respect to ``inputs`` (zeros for unused
    inputs).

    :param output: a scalar
    :param inputs: the tensors to differentiate with respect to
    :param retain: keep the graph for another backward pass
    """
    if len(inputs) == 0:
        return []
    grads = torch.autograd.grad(output, inputs, retain_graph=retain, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]


def resolve_variants(
    variants: Optional[Dict[str, Optional[str]]], outputs: Dict[str, ModelOutput]
) -> Dict[str, Optional[str]]:
    """The output name used for each of ``VARIANT_KEYS`` (``None`` when the model
    does not have it).

    :param variants: the variant chosen for some of ``VARIANT_KEYS``
    :param outputs: the outputs of the model
    """
    variants = dict(variants) if variants is not None else {}
    for key in variants:
        if key not in VARIANT_KEYS:
            raise ValueError(
                f"unknown key '{key}' in `variants`, expected one of {VARIANT_KEYS}"
            )
    default = variants.get("energy")
    keys: Dict[str, Optional[str]] = {}
    for base in VARIANT_KEYS:
        has_base = any(name == base or name.startswith(base + "/") for name in outputs)
        if base in variants:
            # an explicit choice must exist (if the model has this output at all)
            if not has_base and base != "energy":
                keys[base] = None
                continue
            keys[base] = pick_output(base, outputs, variants[base])
        elif not has_base:
            keys[base] = None
        else:
            try:
                keys[base] = pick_output(base, outputs, default)
            except Exception:
                if base == "energy":
                    raise
                # the default variant of energy does not exist for this output
                keys[base] = None
    return keys


def per_system_values(block: TensorBlock, n_systems: int) -> torch.Tensor:
    """The values of a per-system block, ordered by system.

    :param block: a block with one sample per system
    :param n_systems: the number of systems
    """
    systems = block.samples.column("system").to(torch.long)
    values = block.values
    if values.shape[0] != n_systems:
        raise ValueError(
            f"expected one sample per system ({n_systems}) in the output of the "
            f"model, got {values.shape[0]}"
        )
    if bool((systems == torch.arange(n_systems, device=systems.device)).all()):
        return values
    order = torch.argsort(systems)
    return values[order]


def _sum_per_system(block: TensorBlock, n_systems: int) -> torch.Tensor:
    """Sum a per-atom block (with ``[n_atoms, 1]`` values) over the atoms of
    each system (differentiable)."""
    systems = block.samples.column("system").to(torch.long)
    values = block.values.reshape(block.values.shape[0], -1)[:, 0]
    result = torch.zeros(n_systems, dtype=values.dtype, device=values.device)
    return result.index_add(0, systems, values)


def per_atom_values(block: TensorBlock, counts: List[int]) -> List[torch.Tensor]:
    """The values of a per-atom block, one tensor per system with one row per
    atom (zeros for atoms missing from the samples), differentiable.

    :param block: a block with ``system`` and ``atom`` samples
    :param counts: the number of atoms of each system
    """
    values = block.values
    samples = block.samples.values.to(values.device).to(torch.long)
    offsets = torch.tensor([0] + counts, dtype=torch.long, device=values.device)
    offsets = offsets.cumsum(0)
    rows = offsets[samples[:, 0]] + samples[:, 1]
    result = torch.zeros(
        (int(offsets[-1]),) + tuple(values.shape[1:]),
        dtype=values.dtype,
        device=values.device,
    )
    result = result.index_copy(0, rows, values)
    return list(torch.split(result, counts))
