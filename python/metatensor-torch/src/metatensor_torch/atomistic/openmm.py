"""Run an :py:class:`AtomisticModel` in `OpenMM <https://openmm.org/>`_.

:py:func:`get_metatensor_force` builds an :py:class:`openmm.PythonForce` (OpenMM
8.6 or later) computing the energy and forces of a model, for all the atoms of
an OpenMM :py:class:`openmm.app.Topology` or a subset of them (the other atoms
handled by the other forces of the :py:class:`openmm.System`, for example a
classical force field). The model runs with PyTorch in the process of OpenMM,
on any OpenMM platform (the positions go through Python at each step): it does
not need the ``openmmtorch`` plugin.

This module imports ``openmm`` when :py:func:`get_metatensor_force` is called
(``import metatensor.torch.atomistic.openmm`` does not).
"""

import os
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ._evaluator import ModelEvaluator


__all__ = ["get_metatensor_force"]

# OpenMM works in nm and kJ/mol; models in Å and eV
NM_TO_ANGSTROM = 10.0


def _ev_to_kj_per_mol() -> float:
    import openmm.unit

    electronvolt = openmm.unit.elementary_charge * openmm.unit.volt
    energy = 1.0 * electronvolt * openmm.unit.AVOGADRO_CONSTANT_NA
    return energy.value_in_unit(openmm.unit.kilojoule_per_mole)


class _ModelComputation:
    """The function called by the :py:class:`openmm.PythonForce` at each
    evaluation: positions (and box) from the OpenMM state to energy and forces
    in OpenMM's units.

    When the model was given as a path, pickling (used by OpenMM's
    ``XmlSerializer``) stores the path and the options, and unpickling loads
    the model again."""

    def __init__(
        self,
        evaluator: ModelEvaluator,
        types: np.ndarray,
        periodic: bool,
        options: Dict[str, Any],
    ):
        self.evaluator = evaluator
        self.types = types
        self.periodic = periodic
        self.options = options
        self.pbc = np.array([periodic] * 3)
        self.energy_unit = _ev_to_kj_per_mol()
        self.force_unit = self.energy_unit * NM_TO_ANGSTROM

    def __getstate__(self) -> Dict[str, Any]:
        if self.options.get("model") is None:
            # a model given as an object: pickle it (works for Python models)
            return self.__dict__
        return {"types": self.types, "periodic": self.periodic, **self.options}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        if "evaluator" in state:
            self.__dict__.update(state)
            return
        options = {
            "model": state["model"],
            "device": state["device"],
            "check_consistency": state["check_consistency"],
        }
        evaluator = ModelEvaluator(
            options["model"],
            device=options["device"],
            check_consistency=options["check_consistency"],
        )
        self.__init__(evaluator, state["types"], state["periodic"], options)

    def __call__(self, state: Any) -> Tuple[float, np.ndarray]:
        import openmm.unit

        positions = state.getPositions(asNumpy=True)
        positions = positions.value_in_unit(openmm.unit.nanometer) * NM_TO_ANGSTROM
        if self.periodic:
            box = state.getPeriodicBoxVectors(asNumpy=True)
            cell = box.value_in_unit(openmm.unit.nanometer) * NM_TO_ANGSTROM
        else:
            cell = np.zeros((3, 3))

        result = self.evaluator.compute(
            self.types, positions, cell, self.pbc, forces=True, virial=False
        )
        energy = result["energy"] * self.energy_unit
        forces = result["forces"] * self.force_unit
        return energy, forces


def get_metatensor_force(
    model: Any,
    topology: Any,
    *,
    atoms: Optional[Sequence[int]] = None,
    device: Optional[str] = None,
    check_consistency: bool = False,
    force_group: int = 0,
) -> Any:
    """An :py:class:`openmm.PythonForce` computing the energy and the forces of
    ``model``, in OpenMM's units (kJ/mol and kJ/mol/nm).

    The atomic types given to the model are the atomic numbers of the elements
    of the ``topology``'s atoms. When the topology has periodic box vectors, the
    force is periodic in the three directions (the box of the OpenMM state at
    each step, so barostats work); otherwise the system is not periodic.

    :param model: the model, as the path to a saved model or an
        :py:class:`AtomisticModel` (Python or scripted), with an ``energy``
        output
    :param topology: the :py:class:`openmm.app.Topology` of the whole system
    :param atoms: the indices of the atoms the model applies to (by default
        all): the model sees these atoms only, as if they were the whole system,
        and the force acts on them only
    :param device: the torch device to run the model on (by default the
        model's preferred device)
    :param check_consistency: run the consistency checks of the model at each
        evaluation
    :param force_group: the force group of the returned force
    :return: the force, to add to the :py:class:`openmm.System` with
        ``system.addForce(force)``. OpenMM's ``XmlSerializer`` can save it when
        ``model`` is a path (the file is loaded again when the force is read
        back) or a Python :py:class:`AtomisticModel`.
    """
    import openmm

    all_atoms = list(topology.atoms())
    if atoms is None:
        indices = np.arange(len(all_atoms))
    else:
        indices = np.asarray(atoms).reshape(-1)
        if len(indices) == 0 or not np.issubdtype(indices.dtype, np.integer):
            raise ValueError(
                "`atoms` must be a non-empty list of atom indices, got "
                f"{list(indices)!r}"
            )
        if np.any(indices < 0) or np.any(indices >= len(all_atoms)):
            raise ValueError(
                f"`atoms` contains indices outside of the {len(all_atoms)} atoms "
                "of the topology"
            )
        if len(np.unique(indices)) != len(indices):
            raise ValueError("`atoms` contains the same atom several times")

    types = []
    for index in indices:
        atom = all_atoms[index]
        if atom.element is None:
            raise ValueError(
                f"atom {index} ({atom.name!r} in residue {atom.residue.name!r}) of "
                "the topology has no element: the model needs atomic numbers"
            )
        types.append(atom.element.atomic_number)
    types = np.array(types, dtype=np.int32)

    evaluator = ModelEvaluator(
        model, device=device, check_consistency=check_consistency
    )
    evaluator.check_types(types)

    options = {
        "model": os.fspath(model) if isinstance(model, (str, os.PathLike)) else None,
        "device": device,
        "check_consistency": check_consistency,
    }
    periodic = topology.getPeriodicBoxVectors() is not None
    computation = _ModelComputation(evaluator, types, periodic, options)
    force = openmm.PythonForce(computation)
    force.setUsesPeriodicBoundaryConditions(periodic)
    if atoms is not None:
        force.setParticles([int(i) for i in indices])
    force.setForceGroup(int(force_group))
    force.setName("metatensor model")
    return force
