"""The ``torch.profiler`` regions of the ASE calculator, the evaluator of the
engines and ``AtomisticModel`` have the names of the reference, so that
profiles read the same."""

import warnings

import numpy as np
import pytest
import torch


pytest.importorskip("ase")
pytest.importorskip("vesin")

import ase.build  # noqa: E402

from metatensor.torch.atomistic._evaluator import ModelEvaluator  # noqa: E402
from metatensor.torch.atomistic.ase_calculator import MetatomicCalculator  # noqa: E402

from ._models import lennard_jones_model, lennard_jones_model_nm_kcal  # noqa: E402


CALCULATOR_REGIONS = [
    "MetatomicCalculator::prepare_inputs",
    "MetatomicCalculator::compute_neighbors",
    "MetatomicCalculator::run_backward",
    "MetatomicCalculator::convert_outputs",
    "MetatomicCalculator::sum_energies",
]

MODEL_REGIONS = [
    "AtomisticModel::prepare_inputs",
    "AtomisticModel::check_atomic_types",
    "AtomisticModel::convert_units_input",
    "Model::forward",
    "AtomisticModel::prepare_outputs",
    "AtomisticModel::convert_units_output",
]


def _atoms():
    atoms = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True)
    rng = np.random.default_rng(0)
    atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
    return atoms


@pytest.mark.parametrize("kind", ["python", "scripted", "saved"])
def test_calculator_regions(kind, tmp_path):
    model = lennard_jones_model_nm_kcal()
    if kind == "scripted":
        model = torch.jit.script(model)
    elif kind == "saved":
        path = str(tmp_path / "model.pt")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            model.save(path)
        model = path
    calculator = MetatomicCalculator(model)
    atoms = _atoms()
    atoms.calc = calculator

    with torch.profiler.profile() as profiler:
        atoms.get_forces()
        atoms.get_stress()
    names = {event.name for event in profiler.events()}
    for name in CALCULATOR_REGIONS + MODEL_REGIONS:
        assert name in names, name

    # without the profiler, the results are the same
    energy = atoms.get_potential_energy()
    atoms.calc = MetatomicCalculator(lennard_jones_model_nm_kcal())
    assert atoms.get_potential_energy() == pytest.approx(energy, rel=1e-12)


def test_evaluator_regions():
    evaluator = ModelEvaluator(lennard_jones_model())
    assert evaluator.profiler_prefix == "ModelEvaluator"
    atoms = _atoms()
    structure = (atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc)
    with torch.profiler.profile() as profiler:
        evaluator.energy_and_gradients(
            [structure], per_atom=True, forces=True, virial=True
        )
    names = {event.name for event in profiler.events()}
    for stage in [
        "prepare_inputs",
        "compute_neighbors",
        "run_backward",
        "sum_energies",
    ]:
        assert "ModelEvaluator::" + stage in names
    assert not any(name.startswith("MetatomicCalculator::") for name in names)
