"""Conversion of `ASE <https://wiki.fysik.dtu.dk/ase/>`_ ``Atoms`` to
:py:class:`System` (``ase`` is imported when the function is called)."""

import warnings
from typing import List, Optional, Union

import numpy as np
import torch

from ._system import System


def _atoms_to_system(
    atoms,
    dtype: torch.dtype,
    device: torch.device,
    positions_requires_grad: bool,
    cell_requires_grad: bool,
) -> System:
    import ase

    if not isinstance(atoms, ase.Atoms):
        raise TypeError(f"expected ase.Atoms, got {type(atoms)}")

    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.array(atoms.cell[:], dtype=np.float64)
    nonzero = np.any(cell != 0.0, axis=1)
    if np.any(nonzero & ~pbc):
        warnings.warn(
            "the ASE cell has non-zero vectors along directions without periodic "
            f"boundary conditions (pbc={pbc.tolist()}); these cell vectors are "
            "set to zero in the System",
            stacklevel=3,
        )
    cell[~pbc] = 0.0

    positions = torch.tensor(atoms.positions, dtype=dtype, device=device)
    positions.requires_grad_(positions_requires_grad)
    cell_tensor = torch.tensor(cell, dtype=dtype, device=device)
    cell_tensor.requires_grad_(cell_requires_grad)
    return System(
        types=torch.tensor(atoms.numbers, dtype=torch.int32, device=device),
        positions=positions,
        cell=cell_tensor,
        pbc=torch.tensor(pbc, dtype=torch.bool, device=device),
    )


def systems_to_torch(
    systems,
    dtype: Optional[torch.dtype] = None,
    device: Optional[Union[torch.device, str]] = None,
    positions_requires_grad: bool = False,
    cell_requires_grad: bool = False,
) -> Union[System, List[System]]:
    """Convert ``ase.Atoms`` (or a list of them) to :py:class:`System` objects.

    The atomic types are the atomic numbers. Along directions without periodic
    boundary conditions, the cell vectors are set to zero (with a warning if
    the ASE cell vector was not zero).

    :param systems: one ``ase.Atoms`` or a list of them
    :param dtype: dtype of the positions and cell (defaults to
        ``torch.get_default_dtype()``)
    :param device: device of the systems (defaults to the CPU)
    :param positions_requires_grad: whether the positions require gradients
    :param cell_requires_grad: whether the cell requires gradients
    :return: one :py:class:`System` for a single ``ase.Atoms``, a list otherwise
    """
    if dtype is None:
        dtype = torch.get_default_dtype()
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"`dtype` must be a floating point torch.dtype, got {dtype}")
    device = torch.device("cpu") if device is None else torch.device(device)

    if isinstance(systems, (list, tuple)):
        return [
            _atoms_to_system(
                atoms, dtype, device, positions_requires_grad, cell_requires_grad
            )
            for atoms in systems
        ]
    return _atoms_to_system(
        systems, dtype, device, positions_requires_grad, cell_requires_grad
    )
