"""An `ASE <https://wiki.fysik.dtu.dk/ase/>`_ calculator running atomistic models.

:py:class:`MetatomicCalculator` (also available under its older name
:py:class:`MetatensorCalculator`) wraps an :py:class:`AtomisticModel` (or the path
to a saved one) in an :py:class:`ase.calculators.calculator.Calculator`: energies,
per-atom energies, forces (by automatic differentiation of the energy) and stress
(with the strain trick), or the non-conservative forces and stress predicted
directly by the model.

This module imports ``ase`` and ``vesin`` (used for the neighbor lists); it is
only imported when it is used (``import metatensor.torch.atomistic`` does not
import it).
"""

import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import ase
import ase.calculators.calculator
import numpy as np
import torch
import vesin  # noqa: F401  (the neighbor lists are computed with vesin)
from ase.calculators.calculator import (
    Calculator,
    PropertyNotImplementedError,
    all_changes,
    all_properties,
)

from .._classes import Labels, TensorBlock, TensorMap
from ._ase_inputs import ase_input, same_value, watched_keys
from ._ase_symmetrized import (
    SymmetrizedCalculator,
    _full_3x3_to_voigt,
    rotation_quadrature,
)
from ._devices import pick_device
from ._model import is_atomistic_model, load_atomistic_model
from ._neighbors import add_neighbor_lists
from ._outputs import ModelEvaluationOptions, ModelOutput
from ._quantities import pick_output
from ._system import System


__all__ = [
    "MetatomicCalculator",
    "MetatensorCalculator",
    "SymmetrizedCalculator",
    "rotation_quadrature",
]

# the properties this calculator can compute (ASE asks for others as well, they
# are refused in `calculate`)
SUPPORTED_PROPERTIES = ["energy", "energies", "forces", "stress", "free_energy"]

# outputs whose variant defaults to the variant chosen for "energy"
VARIANT_KEYS = [
    "energy",
    "energy_uncertainty",
    "non_conservative_force",
    "non_conservative_stress",
]


class MetatomicCalculator(Calculator):
    """An ASE calculator evaluating an :py:class:`AtomisticModel`.

    The model's ``energy`` output (in eV) gives the energy, ASE's
    ``free_energy`` (the same value) and, with the per-atom output, the
    ``energies``. Forces are minus the gradient of the energy with respect to the
    positions and the stress (in eV/Å³, Voigt order) is the gradient with respect
    to a strain of the cell divided by the volume, both computed with one
    backward pass, unless ``non_conservative`` asks for the model's
    ``non_conservative_force`` / ``non_conservative_stress`` outputs instead.
    Neighbor lists are computed with vesin, in Å.

    :param model: the model: the path to a file saved with
        :py:meth:`AtomisticModel.save`, a scripted :py:class:`AtomisticModel` or
        a Python :py:class:`AtomisticModel`
    :param additional_outputs: other outputs of the model (name ->
        :py:class:`ModelOutput`) computed with every calculation and stored, as
        returned by the model, in :py:attr:`additional_outputs`
    :param extensions_directory: where to look for the TorchScript extensions of
        a model loaded from a path
    :param check_consistency: check the inputs and outputs of the model against
        the metadata rules of the atomistic models (slower; use it when
        developing a model)
    :param device: the torch device to run on (by default the first device of
        the model's ``supported_devices`` available here)
    :param variants: the variant of each output to use: ``{"energy": "pbe"}``
        uses ``energy/pbe``, and this variant is also the default for
        ``energy_uncertainty``, ``non_conservative_force`` and
        ``non_conservative_stress``, which can be set separately
    :param non_conservative: take the forces and the stress (``True``), only the
        forces (``"forces"``) or only the stress (``"stress"``) from the
        non-conservative outputs of the model instead of the gradients of the
        energy. The net force of non-conservative forces is removed.
    :param do_gradients_with_energy: also compute the forces (and the stress of
        periodic systems) when only the energy is requested, since they cost
        little more and ASE often asks for them next
    :param uncertainty_threshold: when the model has a per-atom
        ``energy_uncertainty`` output, warn about the atoms whose uncertainty
        (in eV) exceeds this value; ``None`` or a non-positive value disables
        the check
    :param neighbor_skin: skin (in Å) of the Verlet neighbor lists
    """

    implemented_properties = list(all_properties)

    def __init__(
        self,
        model: Union[str, bytes, "os.PathLike[str]", torch.nn.Module],
        *,
        additional_outputs: Optional[Dict[str, ModelOutput]] = None,
        extensions_directory: Optional[Union[str, "os.PathLike[str]"]] = None,
        check_consistency: bool = False,
        device: Optional[Union[str, torch.device]] = None,
        variants: Optional[Dict[str, Optional[str]]] = None,
        non_conservative: Union[bool, str] = False,
        do_gradients_with_energy: bool = True,
        uncertainty_threshold: Optional[float] = 0.1,
        neighbor_skin: float = 2.0,
    ):
        super().__init__()

        parameters: Dict[str, Any] = {}
        if isinstance(model, (str, bytes, os.PathLike)):
            path = os.fsdecode(model)
            if not os.path.exists(path):
                raise FileNotFoundError(f"given model path '{path}' does not exist")
            parameters["model"] = path
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

        parameters["extensions_directory"] = extensions_directory
        parameters["check_consistency"] = bool(check_consistency)
        parameters["device"] = str(device) if device is not None else None
        parameters["variants"] = dict(variants) if variants is not None else None
        parameters["non_conservative"] = non_conservative
        parameters["do_gradients_with_energy"] = bool(do_gradients_with_energy)
        parameters["uncertainty_threshold"] = uncertainty_threshold
        parameters["neighbor_skin"] = float(neighbor_skin)
        if additional_outputs is not None:
            parameters["additional_outputs"] = additional_outputs
        self.parameters = parameters

        capabilities = model.capabilities()
        desired = str(device) if device is not None else None
        self._device = torch.device(
            pick_device(capabilities.supported_devices, desired)
        )
        if capabilities.dtype not in ("float32", "float64"):
            raise ValueError(
                f"unsupported dtype in the model capabilities: '{capabilities.dtype}'"
            )
        self._dtype = getattr(torch, capabilities.dtype)
        self._model = model.to(device=self._device)
        self._check_consistency = bool(check_consistency)
        self._skin = float(neighbor_skin)

        outputs = capabilities.outputs
        self._keys = _resolve_variants(variants, outputs)
        self._non_conservative_forces = non_conservative in (True, "forces")
        self._non_conservative_stress = non_conservative in (True, "stress")
        for enabled, base in [
            (self._non_conservative_forces, "non_conservative_force"),
            (self._non_conservative_stress, "non_conservative_stress"),
        ]:
            if enabled and self._keys[base] is None:
                raise ValueError(
                    f"non_conservative={non_conservative!r} needs the '{base}' "
                    "output, which this model does not have (its outputs are "
                    f"{sorted(outputs.keys())})"
                )

        self._uncertainty_threshold = uncertainty_threshold
        uncertainty_key = self._keys["energy_uncertainty"]
        self._uncertainty_key: Optional[str] = None
        if (
            uncertainty_key is not None
            and uncertainty_threshold is not None
            and uncertainty_threshold > 0
        ):
            if outputs[uncertainty_key].sample_kind == "atom":
                self._uncertainty_key = uncertainty_key

        if additional_outputs is None:
            additional_outputs = {}
        if not isinstance(additional_outputs, dict):
            raise TypeError(
                "`additional_outputs` must be a dict of ModelOutput, got "
                f"{type(additional_outputs).__name__}"
            )
        for name, output in additional_outputs.items():
            if not isinstance(name, str) or not isinstance(output, ModelOutput):
                raise TypeError(
                    "`additional_outputs` must be a dict of str -> ModelOutput, got "
                    f"an entry {name!r}: {type(output).__name__}"
                )
        self._additional_requests: Dict[str, ModelOutput] = dict(additional_outputs)
        self.additional_outputs: Dict[str, TensorMap] = {}
        """the additional outputs of the last calculation, as returned by the
        model"""

        self._neighbor_options = list(self._model.requested_neighbor_lists())
        self._requested_inputs: Dict[str, ModelOutput] = dict(
            self._model.requested_inputs(use_new_names=True)
        )
        self._watched_info, self._watched_arrays = watched_keys(self._requested_inputs)

    # ------------------------------------------------------------------ #
    # accessors and ASE serialization                                    #
    # ------------------------------------------------------------------ #

    def model(self) -> torch.nn.Module:
        """the :py:class:`AtomisticModel` used by this calculator"""
        return self._model

    def metadata(self):
        """the :py:class:`ModelMetadata` of the model"""
        return self._model.metadata()

    def todict(self) -> Dict[str, Any]:
        """The parameters of this calculator, for ASE's serialization. Only
        available when the model was given as a path."""
        if "model" not in self.parameters:
            raise RuntimeError(
                "can not save the model in ASE `todict`: create the "
                "MetatomicCalculator with the path to a saved model to use `todict`"
            )
        return dict(self.parameters)

    @classmethod
    def fromdict(cls, data: Dict[str, Any]) -> "MetatomicCalculator":
        """Create a calculator from the output of :py:meth:`todict`.

        :param data: the parameters of the calculator
        """
        return cls(**data)

    def check_state(self, atoms: ase.Atoms, tol: float = 1e-15) -> List[str]:
        """The changes of ``atoms`` since the last calculation, including the
        per-atom arrays and ``atoms.info`` entries the model uses as inputs.

        :param atoms: the atoms to compare with the last calculation
        :param tol: tolerance on the positions, cell, ...
        """
        changes = super().check_state(atoms, tol=tol)
        if self.atoms is None:
            return changes
        for key in self._watched_arrays:
            first = self.atoms.arrays.get(key)
            second = atoms.arrays.get(key)
            if (first is None) != (second is None) or (
                first is not None and not np.array_equal(first, second)
            ):
                changes.append(key)
        for key in self._watched_info:
            if not same_value(self.atoms.info.get(key), atoms.info.get(key)):
                changes.append(f"info::{key}")
        return changes

    # ------------------------------------------------------------------ #
    # evaluation                                                          #
    # ------------------------------------------------------------------ #

    def run_model(
        self,
        atoms: Union[ase.Atoms, List[ase.Atoms]],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels] = None,
    ) -> Dict[str, TensorMap]:
        """Run the model on ``atoms`` and return its raw outputs.

        :param atoms: one or several structures (evaluated together)
        :param outputs: the outputs to compute (name -> :py:class:`ModelOutput`)
        :param selected_atoms: only compute per-atom outputs for these atoms
            (samples ``system``, ``atom``); ``None`` for all atoms
        :return: the outputs of the model, as returned by
            :py:meth:`AtomisticModel.forward`
        """
        atoms_list = [atoms] if isinstance(atoms, ase.Atoms) else list(atoms)
        results, _, _ = self._evaluate(
            atoms_list, outputs, forces=False, stress=False, selected=selected_atoms
        )
        return results

    def compute_energy(
        self,
        atoms: Union[ase.Atoms, List[ase.Atoms]],
        compute_forces_and_stresses: bool = False,
        *,
        per_atom: bool = False,
    ) -> Dict[str, Any]:
        """Compute the energy of one or several structures in a single model
        call, in eV (forces in eV/Å, stress as 3x3 arrays in eV/Å³).

        :param atoms: one structure, or a list of structures
        :param compute_forces_and_stresses: also compute the forces, and the
            stresses when every structure is periodic in all directions
        :param per_atom: also return the per-atom energies (``"energies"``)
        :return: ``"energy"`` (a float), and ``"forces"``, ``"stress"`` and
            ``"energies"`` (numpy arrays) when requested; for a list of
            structures, each entry is a list with one value per structure
        """
        single = isinstance(atoms, ase.Atoms)
        atoms_list = [atoms] if single else list(atoms)
        if len(atoms_list) == 0:
            return {"energy": []}
        do_stress = compute_forces_and_stresses and all(a.pbc.all() for a in atoms_list)
        data = self._energy_and_gradients(
            atoms_list,
            per_atom=per_atom,
            forces=compute_forces_and_stresses,
            stress=do_stress,
            explicit=True,
        )
        result: Dict[str, Any] = {"energy": [float(e) for e in data["energy"]]}
        if per_atom:
            result["energies"] = data["energies"]
        if compute_forces_and_stresses:
            result["forces"] = data["forces"]
        if do_stress:
            result["stress"] = data["stress"]
        if single:
            result = {key: value[0] for key, value in result.items()}
        return result

    def calculate(
        self,
        atoms: Optional[ase.Atoms] = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = tuple(all_changes),
    ) -> None:
        """Compute the ``properties`` of ``atoms`` and store them in
        ``self.results`` (ASE calls this when a property is requested).

        :param atoms: the structure
        :param properties: the ASE properties to compute among ``energy``,
            ``energies``, ``free_energy``, ``forces`` and ``stress``
        :param system_changes: what changed since the last calculation
        """
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        for name in properties:
            if name not in SUPPORTED_PROPERTIES:
                raise PropertyNotImplementedError(
                    f"this calculator can not compute '{name}', only "
                    f"{SUPPORTED_PROPERTIES}"
                )

        periodic = bool(atoms.pbc.all())
        want_stress = "stress" in properties
        if want_stress and not periodic:
            warnings.warn(
                "the stress is only well defined for systems periodic in all "
                f"directions, this one has pbc={atoms.pbc.tolist()}",
                stacklevel=2,
            )
        gradients = self.parameters["do_gradients_with_energy"]
        forces = "forces" in properties or gradients
        stress = want_stress or (periodic and ("forces" in properties or gradients))
        if stress and atoms.cell.volume <= 0:
            if want_stress:
                raise ValueError(
                    "can not compute the stress of a structure without a cell "
                    "(the volume is zero)"
                )
            stress = False

        data = self._energy_and_gradients(
            [atoms],
            per_atom="energies" in properties,
            forces=forces,
            stress=stress,
            explicit=False,
            explicit_forces="forces" in properties,
            explicit_stress=want_stress,
            additional=True,
        )
        energy = float(data["energy"][0])
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        if "energies" in data:
            self.results["energies"] = data["energies"][0]
        if "forces" in data:
            self.results["forces"] = data["forces"][0]
        if "stress" in data:
            self.results["stress"] = _full_3x3_to_voigt(data["stress"][0])

    # ------------------------------------------------------------------ #
    # implementation                                                      #
    # ------------------------------------------------------------------ #

    def _energy_and_gradients(
        self,
        atoms_list: List[ase.Atoms],
        per_atom: bool,
        forces: bool,
        stress: bool,
        explicit: bool,
        explicit_forces: bool = False,
        explicit_stress: bool = False,
        additional: bool = False,
    ) -> Dict[str, List[Any]]:
        """Energies (and per-atom energies, forces, stress) of ``atoms_list``,
        as lists of floats / float64 numpy arrays, one entry per structure.
        ``explicit`` (or ``explicit_forces``/``explicit_stress``) marks gradients
        the caller asked for: they raise if the energy is not differentiable,
        others are dropped."""
        energy_key = self._keys["energy"]
        if energy_key is None:
            raise PropertyNotImplementedError(
                "this model has no 'energy' output, it can not compute energies, "
                "forces or stress (use `run_model` for its other outputs)"
            )
        outputs = {energy_key: ModelOutput(unit="eV", sample_kind="system")}
        if per_atom:
            outputs[energy_key] = ModelOutput(unit="eV", sample_kind="atom")
        if self._uncertainty_key is not None:
            outputs[self._uncertainty_key] = ModelOutput(unit="eV", sample_kind="atom")

        nc_forces = forces and self._non_conservative_forces
        nc_stress = stress and self._non_conservative_stress
        if nc_forces:
            key = self._keys["non_conservative_force"]
            outputs[key] = ModelOutput(unit="eV/Angstrom", sample_kind="atom")
        if nc_stress:
            key = self._keys["non_conservative_stress"]
            outputs[key] = ModelOutput(unit="eV/Angstrom^3", sample_kind="system")
        if additional:
            for name, request in self._additional_requests.items():
                outputs.setdefault(name, request)

        grad_forces = forces and not nc_forces
        grad_stress = stress and not nc_stress
        results, positions, strains = self._evaluate(
            atoms_list, outputs, forces=grad_forces, stress=grad_stress, selected=None
        )
        if additional:
            self.additional_outputs = {
                name: results[name] for name in self._additional_requests
            }

        n_systems = len(atoms_list)
        counts = [len(a) for a in atoms_list]
        block = results[energy_key].block()
        data: Dict[str, List[Any]] = {}
        if per_atom:
            data["energies"] = [e[:, 0] for e in _per_atom_values(block, counts)]
            energy_tensor = _sum_per_system(block, n_systems)
        else:
            energy_tensor = _per_system_values(block, n_systems)[:, 0]
        data["energy"] = energy_tensor.detach().to("cpu", torch.float64).tolist()

        if self._uncertainty_key is not None:
            uncertainty = results[self._uncertainty_key].block()
            self._warn_uncertainty(uncertainty, counts)

        if grad_forces or grad_stress:
            inputs = (positions if grad_forces else []) + (
                strains if grad_stress else []
            )
            if energy_tensor.requires_grad:
                grads = torch.autograd.grad(
                    energy_tensor.sum(), inputs, allow_unused=True
                )
                grads = [
                    torch.zeros_like(x) if g is None else g
                    for g, x in zip(grads, inputs)
                ]
            else:
                wanted = explicit or (grad_forces and explicit_forces)
                wanted = wanted or (grad_stress and explicit_stress)
                if wanted:
                    raise RuntimeError(
                        "the energy computed by the model does not depend on the "
                        "positions or the cell (it is not differentiable), can "
                        "not compute forces or stress by automatic differentiation"
                    )
                grads = None
            if grads is not None:
                if grad_forces:
                    data["forces"] = [
                        -g.detach().to("cpu", torch.float64).numpy()
                        for g in grads[: len(positions)]
                    ]
                    grads = grads[len(positions) :]
                if grad_stress:
                    data["stress"] = [
                        g.detach().to("cpu", torch.float64).numpy() / a.cell.volume
                        for g, a in zip(grads, atoms_list)
                    ]

        if nc_forces:
            values = results[self._keys["non_conservative_force"]].block()
            data["forces"] = [
                f[:, :, 0] - f[:, :, 0].mean(axis=0, keepdims=True)
                for f in _per_atom_values(values, counts)
            ]
        if nc_stress:
            values = results[self._keys["non_conservative_stress"]].block()
            per_system = _per_system_values(values, n_systems)[:, :, :, 0]
            array = per_system.detach().to("cpu", torch.float64).numpy()
            data["stress"] = [s for s in array]
        return data

    def _evaluate(
        self,
        atoms_list: List[ase.Atoms],
        outputs: Dict[str, ModelOutput],
        forces: bool,
        stress: bool,
        selected: Optional[Labels],
    ) -> Tuple[Dict[str, TensorMap], List[torch.Tensor], List[torch.Tensor]]:
        """Build the systems (positions requiring grad when ``forces``, a strain
        applied to positions and cell when ``stress``), their neighbor lists and
        inputs, and run the model."""
        systems = []
        all_positions = []
        strains = []
        for atoms in atoms_list:
            positions = torch.tensor(
                atoms.positions, dtype=self._dtype, device=self._device
            )
            pbc = torch.tensor(atoms.pbc, dtype=torch.bool, device=self._device)
            cell = torch.tensor(
                atoms.cell.array, dtype=self._dtype, device=self._device
            )
            cell = cell * pbc.unsqueeze(1).to(self._dtype)
            if forces:
                positions.requires_grad_(True)
            all_positions.append(positions)
            if stress:
                strain = torch.eye(
                    3, dtype=self._dtype, device=self._device, requires_grad=True
                )
                strains.append(strain)
                system_positions = positions @ strain
                cell = cell @ strain
            else:
                system_positions = positions
            types = torch.tensor(atoms.numbers, dtype=torch.int32, device=self._device)
            system = System(types=types, positions=system_positions, cell=cell, pbc=pbc)
            for name, request in self._requested_inputs.items():
                data = ase_input(atoms, name, request, self._dtype, self._device)
                system.add_data(name, data)
            systems.append(system)

        if len(self._neighbor_options) != 0:
            add_neighbor_lists(
                systems, self._neighbor_options, length_unit="angstrom", skin=self._skin
            )
        options = ModelEvaluationOptions(
            length_unit="angstrom", outputs=outputs, selected_atoms=selected
        )
        results = self._model(
            systems, options, check_consistency=self._check_consistency
        )
        return results, all_positions, strains

    def _warn_uncertainty(self, block: TensorBlock, counts: List[int]) -> None:
        threshold = self._uncertainty_threshold
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
                stacklevel=3,
            )


MetatensorCalculator = MetatomicCalculator
"""The name of :py:class:`MetatomicCalculator` in older versions"""


# ============================================================================ #
# helpers


def _resolve_variants(
    variants: Optional[Dict[str, Optional[str]]], outputs: Dict[str, ModelOutput]
) -> Dict[str, Optional[str]]:
    """The output name used for each of ``VARIANT_KEYS`` (``None`` when the model
    does not have it)."""
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


def _per_system_values(block: TensorBlock, n_systems: int) -> torch.Tensor:
    """The values of a per-system block, ordered by system."""
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


def _per_atom_values(block: TensorBlock, counts: List[int]) -> List[np.ndarray]:
    """The values of a per-atom block as float64 arrays, one per system with one
    row per atom (zeros for atoms missing from the samples)."""
    cpu = torch.device("cpu")
    samples = block.samples.values.to(cpu).to(torch.long)
    offsets = torch.tensor([0] + counts, dtype=torch.long, device=cpu).cumsum(0)
    rows = offsets[samples[:, 0]] + samples[:, 1]
    values = block.values.detach().to(cpu, torch.float64)
    result = torch.zeros(
        (int(offsets[-1]),) + tuple(values.shape[1:]), dtype=torch.float64, device=cpu
    )
    result[rows] = values
    return [part.numpy() for part in torch.split(result, counts)]
