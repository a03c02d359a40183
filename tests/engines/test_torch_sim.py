"""The TorchSim model of ``metatensor.torch.atomistic.torch_sim`` against the ASE
calculator, for a batch of different systems, and a batched NVE run with the
example script of ``examples/engines/torchsim``."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest


ts = pytest.importorskip("torch_sim")
pytest.importorskip("ase")

import torch  # noqa: E402

from metatensor.torch.atomistic.ase_calculator import MetatomicCalculator  # noqa: E402
from metatensor.torch.atomistic.torch_sim import MetatensorModel  # noqa: E402


ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "engines"))
sys.path.insert(0, str(ROOT / "examples" / "engines" / "torchsim"))

from many_body_model import many_body_model  # noqa: E402
from run_torchsim import cu_al_systems, main  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return many_body_model()


def _reference(model, atoms, stress=True):
    atoms = atoms.copy()
    atoms.calc = MetatomicCalculator(model)
    result = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    if stress:
        result["stress"] = atoms.get_stress(voigt=False)
    return result


def test_batch(model):
    systems = cu_al_systems()
    wrapper = MetatensorModel(model)
    assert wrapper.device == torch.device("cpu")
    assert wrapper.dtype == torch.float64
    assert wrapper.compute_forces and wrapper.compute_stress

    state = ts.io.atoms_to_state(systems, wrapper.device, wrapper.dtype)
    outputs = wrapper(state)
    assert outputs["energy"].shape == (3,)
    assert outputs["forces"].shape == (sum(len(a) for a in systems), 3)
    assert outputs["stress"].shape == (3, 3, 3)

    start = 0
    for i, atoms in enumerate(systems):
        reference = _reference(model, atoms)
        stop = start + len(atoms)
        energy = outputs["energy"][i].item()
        np.testing.assert_allclose(energy, reference["energy"], rtol=1e-12)
        forces = outputs["forces"][start:stop].numpy()
        np.testing.assert_allclose(forces, reference["forces"], atol=1e-12)
        stress = outputs["stress"][i].numpy()
        np.testing.assert_allclose(stress, reference["stress"], atol=1e-12)
        start = stop


def test_state_dictionary(model):
    # TorchSim's models also accept the state as a dictionary
    systems = cu_al_systems()[:2]
    wrapper = MetatensorModel(model)
    state = ts.io.atoms_to_state(systems, wrapper.device, wrapper.dtype)
    dictionary = {
        "positions": state.positions,
        "cell": state.cell,
        "pbc": state.pbc,
        "atomic_numbers": state.atomic_numbers,
        "system_idx": state.system_idx,
    }
    outputs = wrapper(dictionary)
    expected = wrapper(state)
    for name in ["energy", "forces", "stress"]:
        torch.testing.assert_close(outputs[name], expected[name], rtol=0, atol=0)


def test_non_periodic(model):
    systems = [atoms[:16] for atoms in cu_al_systems()]
    for atoms in systems:
        atoms.pbc = False
    state = ts.io.atoms_to_state(systems, torch.device("cpu"), torch.float64)
    assert not state.pbc

    with pytest.raises(ValueError, match="compute_stress=False"):
        MetatensorModel(model)(state)

    outputs = MetatensorModel(model, compute_stress=False)(state)
    assert "stress" not in outputs
    for i, atoms in enumerate(systems):
        reference = _reference(model, atoms, stress=False)
        energy = outputs["energy"][i].item()
        np.testing.assert_allclose(energy, reference["energy"], rtol=1e-12)
        forces = outputs["forces"][16 * i : 16 * (i + 1)].numpy()
        np.testing.assert_allclose(forces, reference["forces"], atol=1e-12)

    energy_only = MetatensorModel(model, compute_forces=False, compute_stress=False)
    assert set(energy_only(state)) == {"energy"}


def test_batched_nve(tmp_path, model):
    path = tmp_path / "model.pt"
    model.save(str(path))
    state, total_energies = main([str(path), "--steps", "20"])
    assert total_energies.shape == (21, 3)
    assert np.all(np.isfinite(state.positions.numpy()))
    # energy conservation of each system, with 2 fs steps
    drift = np.abs(total_energies - total_energies[0]).max(axis=0)
    assert np.all(drift < 5e-3), drift
    # the atoms moved
    initial = ts.io.atoms_to_state(cu_al_systems(), state.device, state.dtype)
    assert torch.all((state.positions - initial.positions).norm(dim=1) > 0)


def test_lazy_imports():
    # the engine modules import their engine only when used (torch_sim is
    # imported by its module, to define the model class)
    code = (
        "import sys\n"
        "import metatensor.torch.atomistic\n"
        "import metatensor.torch.atomistic.ipi\n"
        "import metatensor.torch.atomistic.openmm\n"
        "loaded = [m for m in ['ipi', 'openmm', 'torch_sim'] if m in sys.modules]\n"
        "assert loaded == [], loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
