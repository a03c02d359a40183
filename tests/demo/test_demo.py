"""Tests of the end-to-end example in ``examples/demo``: the descriptor and its
gradients, and a complete run of the shortened version (``--quick``)."""

import importlib.util
import json
import math
import pathlib
import subprocess
import sys

import pytest


torch = pytest.importorskip("torch")
pytest.importorskip("ase")
pytest.importorskip("vesin")

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"


def _load_descriptor_module():
    spec = importlib.util.spec_from_file_location(
        "metatensor_demo_descriptor", DEMO / "descriptor.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _alloy(seed):
    import numpy as np
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.7, cubic=True) * (2, 1, 1)
    rng = np.random.default_rng(seed)
    atoms.numbers[rng.choice(len(atoms), size=3, replace=False)] = 13
    atoms.positions += rng.normal(0.0, 0.1, size=(len(atoms), 3))
    return atoms


def _pairs(atoms, cutoff):
    import vesin

    calculator = vesin.NeighborList(cutoff=cutoff, full_list=True)
    first, second, shifts = calculator.compute(
        points=atoms.positions,
        box=atoms.cell[:],
        periodic=True,
        quantities="ijS",
    )
    return (
        torch.tensor(first, dtype=torch.long),
        torch.tensor(second, dtype=torch.long),
        torch.tensor(shifts, dtype=torch.float64),
    )


@pytest.fixture(scope="module")
def descriptor_module():
    return _load_descriptor_module()


def test_descriptor_gradients(descriptor_module):
    atoms = _alloy(seed=1)
    cutoff = 5.0
    first, second, shifts = _pairs(atoms, cutoff)
    types = torch.tensor(atoms.numbers)
    cell = torch.tensor(atoms.cell[:])
    positions = torch.tensor(atoms.positions)

    descriptor = descriptor_module.PowerSpectrum([13, 29], cutoff, n_radial=3)
    descriptor = descriptor.to(torch.float64)
    vectors = positions[second] - positions[first] + shifts @ cell
    explicit = descriptor.compute_with_gradients(3, types, first, second, vectors)

    def values(positions, key):
        vectors = positions[second] - positions[first] + shifts @ cell
        n_atoms = len(types)
        result = descriptor(
            types,
            torch.full((n_atoms,), 3),
            torch.arange(n_atoms),
            first,
            second,
            vectors,
        )
        return result.block(key).values

    for key, block in explicit.items():
        center_type = int(key["center_type"])
        atoms_of_type = (types == center_type).nonzero().reshape(-1)
        assert block.samples.names == ["system", "atom"]
        assert block.samples.values[:, 0].tolist() == [3] * len(atoms_of_type)
        assert block.samples.values[:, 1].tolist() == atoms_of_type.tolist()
        # same values as the TorchScript path
        torch.testing.assert_close(block.values, values(positions, key))

        # gradients against a dense autograd Jacobian
        jacobian = torch.autograd.functional.jacobian(
            lambda p, key=key: values(p, key), positions
        )  # (samples, properties, atoms, xyz)
        gradient = block.gradient("positions")
        assert gradient.samples.names == ["sample", "system", "atom"]
        dense = torch.zeros_like(jacobian)
        rows = gradient.samples.values.to(torch.long)
        dense[rows[:, 0], :, rows[:, 2], :] = gradient.values.permute(0, 2, 1)
        torch.testing.assert_close(dense, jacobian)


def test_descriptor_continuous_at_cutoff(descriptor_module):
    descriptor = descriptor_module.PowerSpectrum([29], cutoff=4.0, n_radial=3)
    distances = torch.tensor([3.0, 3.5, 4.0 - 1e-9, 4.0, 4.5], dtype=torch.float64)
    values, derivatives = descriptor.radial(distances)
    assert torch.all(values[:2] > 0)
    torch.testing.assert_close(values[2:], torch.zeros_like(values[2:]))
    torch.testing.assert_close(derivatives[2:], torch.zeros_like(derivatives[2:]))
    # inside the switching region, the derivative matches finite differences
    r = torch.tensor([3.3, 3.7], dtype=torch.float64)
    h = 1e-6
    finite = (descriptor.radial(r + h)[0] - descriptor.radial(r - h)[0]) / (2 * h)
    torch.testing.assert_close(descriptor.radial(r)[1], finite)


def test_descriptor_errors(descriptor_module):
    with pytest.raises(ValueError, match="`atomic_types` must not be empty"):
        descriptor_module.PowerSpectrum([], cutoff=4.0, n_radial=3)
    with pytest.raises(ValueError, match="`width` must be positive"):
        descriptor_module.PowerSpectrum([29], cutoff=4.0, n_radial=3, width=5.0)

    descriptor = descriptor_module.PowerSpectrum([29], cutoff=4.0, n_radial=3)
    with pytest.raises(ValueError, match="atomic types unknown to the model"):
        descriptor._type_indices(torch.tensor([29, 13]))


def test_quick_run(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")

    output = tmp_path / "output"
    process = subprocess.run(
        [sys.executable, str(DEMO / "demo.py"), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert "Warning" not in process.stderr, process.stderr

    for name in [
        "results.md",
        "results.json",
        "reference.xyz",
        "descriptor.mts",
        "model.pt",
        "md-energy.dat",
    ]:
        assert (output / name).is_file(), name
    for name in ["parity.png", "md-energy.png"]:
        assert (output / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with open(output / "results.json") as file:
        results = json.load(file)
    for name in ["train", "test"]:
        for kind in ["rmse", "mae"]:
            for value in results["errors"][name][kind].values():
                assert math.isfinite(value) and value >= 0
    # the exported model gives the same energies as the training code
    export = results["export"]
    assert export["max_energy_difference_meV_per_atom"] < 1e-2
    assert export["max_force_difference_meV_per_A"] < 1e-1
    # the MD drift is reported, for the model and for EMT
    for potential in ["model", "emt"]:
        for value in results["md"][potential].values():
            assert math.isfinite(value)
    assert results["md"]["steps"] == 100

    report = (output / "results.md").read_text()
    assert "## Errors against EMT" in report
    assert "drift" in report
    assert "exported model" in report

    # the descriptor file is a metatensor file with gradients, readable without
    # torch
    import metatensor

    descriptor = metatensor.load(str(output / "descriptor.mts"))
    assert descriptor.keys.names == ["center_type"]
    block = descriptor.block(0)
    assert block.samples.names == ["system", "atom"]
    assert block.gradient("positions").components[0].names == ["xyz"]

    # the exported model loads and declares its metadata
    from metatensor.torch.atomistic import load_atomistic_model

    model = load_atomistic_model(str(output / "model.pt"))
    capabilities = model.capabilities()
    assert capabilities.atomic_types == [13, 29]
    assert capabilities.length_unit == "angstrom"
    assert "energy" in capabilities.outputs

    # per-atom energies of selected atoms (as a domain decomposition asks for
    # them) equal those of a full evaluation
    from ase.build import bulk

    from metatensor.torch import Labels
    from metatensor.torch.atomistic import (
        ModelEvaluationOptions,
        ModelOutput,
        add_neighbor_lists,
        systems_to_torch,
    )

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    atoms.numbers[::3] = 13
    atoms.rattle(0.05, seed=1)
    system = systems_to_torch(atoms, dtype=torch.float64)
    add_neighbor_lists(system, model.requested_neighbor_lists(), "angstrom")
    outputs = {"energy": ModelOutput(unit="eV", sample_kind="atom")}
    full = model([system], ModelEvaluationOptions(outputs=outputs), False)
    selected = Labels(
        ["system", "atom"], torch.tensor([[0, 1], [0, 5], [0, 30], [0, 31]])
    )
    options = ModelEvaluationOptions(outputs=outputs, selected_atoms=selected)
    partial = model([system], options, False)
    # the samples of the outputs are grouped by atomic type: compare by atom
    full_block = full["energy"].block()
    order = torch.argsort(full_block.samples.column("atom"))
    full_energies = full_block.values.reshape(-1)[order]
    partial_block = partial["energy"].block()
    assert sorted(partial_block.samples.values.tolist()) == selected.values.tolist()
    atoms_index = partial_block.samples.column("atom").to(torch.long)
    torch.testing.assert_close(
        partial_block.values.reshape(-1),
        full_energies[atoms_index],
        rtol=0,
        atol=1e-12,
    )
