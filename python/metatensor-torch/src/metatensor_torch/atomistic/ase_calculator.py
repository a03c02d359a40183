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
import threading
import warnings
from typing import Any, Dict, List, Optional, Sequence, Union

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

from .._classes import Labels, TensorMap
from ._ase_inputs import ase_input, same_value, watched_keys
from ._ase_symmetrized import (
    SymmetrizedCalculator,
    _full_3x3_to_voigt,
    rotation_quadrature,
)
from ._evaluator import ModelEvaluator
from ._outputs import ModelOutput
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

    One calculator can be shared by several threads: the calculations
    (``get_property`` and the ``atoms.get_*`` functions using it,
    ``calculate``, :py:meth:`compute_energy` and :py:meth:`run_model`) are
    serialized by a lock, so each call sees the results of its own structure.
    Use one calculator per thread to run calculations in parallel.

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
        # ASE calculators keep the state of the last calculation in the object
        # (`self.atoms`, `self.results`), and the evaluator caches neighbor
        # lists: the calls from several threads are serialized
        self._lock = threading.RLock()

        parameters: Dict[str, Any] = {}
        if isinstance(model, (str, bytes, os.PathLike)):
            parameters["model"] = os.fsdecode(model)
            if extensions_directory is not None:
                extensions_directory = os.fsdecode(extensions_directory)
        self._evaluator = ModelEvaluator(
            model,
            device=device,
            check_consistency=check_consistency,
            variants=variants,
            non_conservative=non_conservative,
            uncertainty_threshold=uncertainty_threshold,
            extensions_directory=extensions_directory,
            neighbor_skin=neighbor_skin,
        )
        # the names of the profiler regions of the reference's calculator
        self._evaluator.profiler_prefix = "MetatomicCalculator"

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

        self._model = self._evaluator.model

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

        self._requested_inputs = self._evaluator.requested_inputs
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

    def get_property(
        self, name: str, atoms: Optional[ase.Atoms] = None, allow_calculation=True
    ):
        """Get the property ``name`` of ``atoms``, calculating it if needed (see
        ASE's ``Calculator.get_property``). Calls from several threads are
        serialized: one calculator can be shared by threads.

        :param name: the name of the property
        :param atoms: the structure (``None`` for the last one)
        :param allow_calculation: calculate the property if it is not known
        """
        with self._lock:
            return super().get_property(name, atoms, allow_calculation)

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: Dict[str, Any]):
        self.__dict__.update(state)
        self._lock = threading.RLock()

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
        with self._lock:
            results, _, _, _ = self._evaluator.evaluate(
                [_structure(a) for a in atoms_list],
                outputs,
                forces=False,
                stress=False,
                selected_atoms=selected_atoms,
                inputs=self._inputs_hook(atoms_list),
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
        with self._lock:
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
        with self._lock:
            self._calculate(atoms, properties, system_changes)

    def _calculate(
        self,
        atoms: Optional[ase.Atoms],
        properties: Sequence[str],
        system_changes: Sequence[str],
    ) -> None:
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
        if self._evaluator.keys["energy"] is None:
            raise PropertyNotImplementedError(
                "this model has no 'energy' output, it can not compute energies, "
                "forces or stress (use `run_model` for its other outputs)"
            )
        data = self._evaluator.energy_and_gradients(
            [_structure(atoms) for atoms in atoms_list],
            per_atom=per_atom,
            forces=forces,
            virial=stress,
            explicit=explicit,
            explicit_forces=explicit_forces,
            explicit_virial=explicit_stress,
            inputs=self._inputs_hook(atoms_list),
            additional=self._additional_requests if additional else None,
        )
        if additional:
            results = self._evaluator.last_outputs
            self.additional_outputs = {
                name: results[name] for name in self._additional_requests
            }

        with self._evaluator.profile("convert_outputs"):
            result: Dict[str, List[Any]] = {
                "energy": [float(e) for e in data["energy"]],
            }
            for name in ["energies", "forces"]:
                if name in data:
                    result[name] = [_numpy(value) for value in data[name]]
            if "virial" in data:
                result["stress"] = [
                    -_numpy(virial) / atoms.cell.volume
                    for virial, atoms in zip(data["virial"], atoms_list)
                ]
        return result

    def _inputs_hook(self, atoms_list: List[ase.Atoms]):
        """A function adding the inputs the model requests, taken from
        ``atoms_list``, to the systems of the model (``None`` when the model
        requests no inputs)."""
        if len(self._requested_inputs) == 0:
            return None
        dtype = self._evaluator.dtype
        device = self._evaluator.device

        def add_inputs(system: System, index: int) -> None:
            for name, request in self._requested_inputs.items():
                data = ase_input(atoms_list[index], name, request, dtype, device)
                system.add_data(name, data)

        return add_inputs


MetatensorCalculator = MetatomicCalculator
"""The name of :py:class:`MetatomicCalculator` in older versions"""


# ============================================================================ #
# helpers


def _structure(atoms: ase.Atoms):
    """The ``(types, positions, cell, pbc)`` of ``atoms``."""
    return (atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float64).numpy()
