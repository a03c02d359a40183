"""Shared fixtures for the tests of ``metatensor.torch.atomistic``."""

import pytest
import torch

from metatensor.torch.atomistic import System


def diamond(dtype: torch.dtype = torch.float64) -> System:
    """Diamond carbon with 4 atoms: the 2-atom primitive cell (a = 3.57 Å)
    repeated twice along the first cell vector."""
    cell = torch.tensor(
        [[0.0, 3.57, 3.57], [1.785, 0.0, 1.785], [1.785, 1.785, 0.0]], dtype=dtype
    )
    positions = torch.tensor(
        [
            [0.0, 0.0, 0.0],
            [0.8925, 0.8925, 0.8925],
            [0.0, 1.785, 1.785],
            [0.8925, 2.6775, 2.6775],
        ],
        dtype=dtype,
    )
    return System(
        types=torch.tensor([6, 6, 6, 6]),
        positions=positions,
        cell=cell,
        pbc=torch.tensor([True, True, True]),
    )


def methane(dtype: torch.dtype = torch.float64) -> System:
    """A non-periodic CH4 molecule (all-zero cell)."""
    positions = torch.tensor(
        [
            [0.0, 0.0, 0.0],
            [0.629, 0.629, 0.629],
            [-0.629, -0.629, 0.629],
            [-0.629, 0.629, -0.629],
            [0.629, -0.629, -0.629],
        ],
        dtype=dtype,
    )
    return System(
        types=torch.tensor([6, 1, 1, 1, 1]),
        positions=positions,
        cell=torch.zeros((3, 3), dtype=dtype),
        pbc=torch.tensor([False, False, False]),
    )


@pytest.fixture
def diamond_system() -> System:
    """Periodic diamond carbon, 4 atoms, float64 (see :py:func:`diamond`)."""
    return diamond()


@pytest.fixture
def methane_system() -> System:
    """Non-periodic methane molecule, 5 atoms, float64."""
    return methane()


@pytest.fixture(scope="module")
def single_thread():
    """Run the tests of a module with a single torch thread (for small systems,
    where intra-op threads only add overhead)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
