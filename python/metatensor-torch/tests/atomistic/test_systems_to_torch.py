import warnings

import numpy as np
import pytest
import torch

from metatensor.torch.atomistic import System, systems_to_torch


pytest.importorskip("ase")
import ase.build  # noqa: E402


def test_periodic():
    atoms = ase.build.bulk("Si", "diamond", a=5.43, cubic=True)
    system = systems_to_torch(atoms, dtype=torch.float64)
    assert isinstance(system, System)
    assert len(system) == 8
    assert system.types.tolist() == [14] * 8
    assert system.types.dtype == torch.int32
    assert system.dtype == torch.float64
    np.testing.assert_equal(system.positions.numpy(), atoms.positions)
    np.testing.assert_equal(system.cell.numpy(), atoms.cell[:])
    assert system.pbc.tolist() == [True, True, True]
    assert not system.positions.requires_grad
    assert not system.cell.requires_grad


def test_non_periodic():
    atoms = ase.build.molecule("CH4")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        system = systems_to_torch(atoms)
    assert system.dtype == torch.get_default_dtype()
    assert system.types.tolist() == [6, 1, 1, 1, 1]
    assert torch.all(system.cell == 0)
    assert system.pbc.tolist() == [False, False, False]
    assert str(system) == "System with 5 atoms, non periodic"


def test_cell_and_pbc_disagree():
    atoms = ase.build.molecule("H2O", vacuum=3.0)
    atoms.pbc = [True, False, True]
    message = "the ASE cell has non-zero vectors along directions without periodic"
    with pytest.warns(UserWarning, match=message):
        system = systems_to_torch(atoms, dtype=torch.float64)
    expected = atoms.cell[:].copy()
    expected[1] = 0.0
    np.testing.assert_equal(system.cell.numpy(), expected)
    assert system.pbc.tolist() == [True, False, True]


def test_list_and_options():
    atoms = [ase.build.molecule("H2O"), ase.build.bulk("Cu", "fcc", a=3.6)]
    systems = systems_to_torch(
        atoms,
        dtype=torch.float32,
        device="cpu",
        positions_requires_grad=True,
        cell_requires_grad=True,
    )
    assert isinstance(systems, list) and len(systems) == 2
    for system, ase_atoms in zip(systems, atoms):
        assert system.dtype == torch.float32
        assert system.device == torch.device("cpu")
        assert system.positions.requires_grad
        assert system.cell.requires_grad
        assert system.positions.is_leaf
        assert len(system) == len(ase_atoms)
    assert systems_to_torch([]) == []


def test_errors():
    with pytest.raises(TypeError, match="expected ase.Atoms"):
        systems_to_torch("H2O")
    with pytest.raises(ValueError, match="`dtype` must be a floating point"):
        systems_to_torch(ase.build.molecule("H2O"), dtype=torch.int32)
