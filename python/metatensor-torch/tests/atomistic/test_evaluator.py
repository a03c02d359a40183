"""Tests of ``ModelEvaluator``, the evaluation core of the engine adapters:
equal to the ASE calculator, the virial against finite differences, batched
evaluation and errors, on a many-body model."""

import pathlib
import sys

import numpy as np
import pytest


torch = pytest.importorskip("torch")
ase_build = pytest.importorskip("ase.build")
pytest.importorskip("vesin")

from metatensor.torch.atomistic._evaluator import ModelEvaluator  # noqa: E402
from metatensor.torch.atomistic.ase_calculator import (  # noqa: E402
    MetatomicCalculator,
)

from ._models import PairPotential, wrap  # noqa: E402


ENGINES_EXAMPLES = pathlib.Path(__file__).parents[4] / "examples" / "engines"
sys.path.insert(0, str(ENGINES_EXAMPLES))

from many_body_model import many_body_model  # noqa: E402


def alloy(repeat=(2, 2, 2), seed: int = 0):
    """A rattled periodic Cu-Al fcc cell."""
    atoms = ase_build.bulk("Cu", "fcc", a=3.7, cubic=True) * repeat
    rng = np.random.default_rng(seed)
    atoms.numbers[rng.random(len(atoms)) < 0.4] = 13
    atoms.positions += rng.normal(scale=0.1, size=atoms.positions.shape)
    atoms.cell = atoms.cell.array @ (np.eye(3) + rng.normal(scale=0.02, size=(3, 3)))
    atoms.wrap()
    return atoms


def structure(atoms):
    return atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc


@pytest.fixture(scope="module")
def model():
    return many_body_model()


def test_equal_to_ase(model):
    atoms = alloy()
    evaluator = ModelEvaluator(model)
    result = evaluator.compute(*structure(atoms), per_atom=True)

    atoms.calc = MetatomicCalculator(model)
    assert result["energy"] == pytest.approx(atoms.get_potential_energy(), abs=1e-12)
    np.testing.assert_allclose(result["forces"], atoms.get_forces(), atol=1e-12)
    stress = -result["virial"] / atoms.get_volume()
    np.testing.assert_allclose(stress, atoms.get_stress(voigt=False), atol=1e-12)
    np.testing.assert_allclose(
        result["energies"], atoms.get_potential_energies(), atol=1e-12
    )
    # the virial of a rotation-invariant model is symmetric
    np.testing.assert_allclose(result["virial"], result["virial"].T, atol=1e-10)
    assert result["energies"].sum() == pytest.approx(result["energy"], abs=1e-10)


def test_virial_finite_differences(model):
    atoms = alloy(repeat=(1, 1, 2), seed=3)
    evaluator = ModelEvaluator(model)
    virial = evaluator.compute(*structure(atoms))["virial"]
    delta = 1e-6
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in [1, -1]:
                strain = np.eye(3)
                strain[a, b] += sign * delta
                numbers, positions, cell, pbc = structure(atoms)
                result = evaluator.compute(
                    numbers, positions @ strain, cell @ strain, pbc, forces=False
                )
                energies.append(result["energy"])
            expected = -(energies[0] - energies[1]) / (2 * delta)
            assert virial[a, b] == pytest.approx(expected, abs=1e-6)


def test_batch(model):
    structures = [alloy(seed=1), alloy(repeat=(1, 2, 2), seed=2), alloy(seed=3)]
    evaluator = ModelEvaluator(model)
    batch = evaluator.compute_batch([structure(a) for a in structures], per_atom=True)
    assert len(batch) == 3
    for atoms, result in zip(structures, batch):
        single = evaluator.compute(*structure(atoms), per_atom=True)
        assert result["energy"] == pytest.approx(single["energy"], abs=1e-12)
        for key in ["forces", "virial", "energies"]:
            np.testing.assert_allclose(result[key], single[key], atol=1e-12)

    tensors = evaluator.compute_batch(
        [structure(a) for a in structures], numpy=False, virial=False
    )
    assert "virial" not in tensors[0]
    assert isinstance(tensors[0]["forces"], torch.Tensor)
    assert tensors[0]["forces"].dtype == torch.float64
    np.testing.assert_allclose(tensors[1]["forces"].numpy(), batch[1]["forces"])


def test_errors(model):
    evaluator = ModelEvaluator(model)
    with pytest.raises(ValueError, match=r"does not support the atomic types \[1\]"):
        evaluator.check_types(np.array([29, 1, 13]))
    evaluator.check_types(np.array([29, 13]))

    with pytest.raises(TypeError, match="`model` must be an AtomisticModel"):
        ModelEvaluator(torch.nn.Linear(2, 2))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ModelEvaluator("not-a-model.pt")
    with pytest.raises(ValueError, match="`non_conservative` must be"):
        ModelEvaluator(model, non_conservative="yes")
    with pytest.raises(ValueError, match="needs the 'non_conservative_force'"):
        ModelEvaluator(model, non_conservative="forces")

    # a model with per-system energies only
    from metatensor.torch.atomistic import ModelOutput

    system_only = wrap(
        PairPotential(),
        outputs={"energy": ModelOutput(unit="eV", sample_kind="system")},
    )
    evaluator = ModelEvaluator(system_only)
    numbers = np.full(4, 29)
    positions = np.array([[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0], [0, 0, 2.5]], float)
    result = evaluator.compute(numbers, positions, np.zeros((3, 3)), [False] * 3)
    assert np.isfinite(result["energy"])
    with pytest.raises(ValueError, match="not available per atom"):
        evaluator.compute(
            numbers, positions, np.zeros((3, 3)), [False] * 3, per_atom=True
        )


def test_saved_model(model, tmp_path):
    # the example model is TorchScript-compatible, and the evaluator loads it
    # from a path
    path = str(tmp_path / "model.pt")
    model.save(path)
    atoms = alloy(seed=5)
    saved = ModelEvaluator(path).compute(*structure(atoms))
    python = ModelEvaluator(model).compute(*structure(atoms))
    assert saved["energy"] == pytest.approx(python["energy"], abs=1e-12)
    np.testing.assert_allclose(saved["forces"], python["forces"], atol=1e-12)
    np.testing.assert_allclose(saved["virial"], python["virial"], atol=1e-12)
