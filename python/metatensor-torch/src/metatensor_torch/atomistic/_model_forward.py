"""Free functions used by :py:class:`AtomisticModel` when it is called: checks
of ``selected_atoms`` and unit conversion of input data. They are compiled
with the model (TorchScript compiles the functions a scripted module calls)."""

from typing import List

import torch

from .._block import TensorBlock
from .._labels import Labels
from .._tensor import TensorMap
from ._system import System


def check_selected_atoms(systems: List[System], selected_atoms: Labels):
    if selected_atoms.names != ["system", "atom"]:
        raise ValueError(
            "invalid `selected_atoms`: the names must be ['system', 'atom'], got ["
            + ", ".join(selected_atoms.names)
            + "]"
        )
    if len(systems) == 0:
        return
    device = systems[0].device
    values = selected_atoms.values
    if values.device != device:
        raise ValueError(
            "invalid `selected_atoms`: they are on device "
            + str(values.device)
            + " but the systems are on device "
            + str(device)
        )
    values = values.to(torch.int64)
    system_index = values[:, 0]
    atom_index = values[:, 1]
    valid_system = torch.logical_and(system_index >= 0, system_index < len(systems))
    if not bool(torch.all(valid_system)):
        bad = system_index[torch.logical_not(valid_system)]
        raise ValueError(
            "invalid `selected_atoms`: there is no system "
            + str(int(bad[0]))
            + " (there are "
            + str(len(systems))
            + " systems)"
        )
    n_atoms_list: List[int] = []
    for system in systems:
        n_atoms_list.append(len(system))
    n_atoms = torch.tensor(n_atoms_list, dtype=torch.int64, device=device)
    valid_atom = torch.logical_and(atom_index >= 0, atom_index < n_atoms[system_index])
    if not bool(torch.all(valid_atom)):
        invalid = torch.nonzero(torch.logical_not(valid_atom))[0, 0]
        raise ValueError(
            "invalid `selected_atoms`: there is no atom "
            + str(int(atom_index[invalid]))
            + " in system "
            + str(int(system_index[invalid]))
        )


def scaled_tensor_map(tensor: TensorMap, factor: float, unit: str) -> TensorMap:
    """A copy of ``tensor`` with the values and gradients multiplied by
    ``factor``, and the ``"unit"`` info set to ``unit``."""
    blocks: List[TensorBlock] = []
    for block in tensor.blocks():
        new_block = TensorBlock(
            block.values * factor,
            block.samples,
            block.components,
            block.properties,
        )
        for parameter in block.gradients_list():
            gradient = block.gradient(parameter)
            if len(gradient.gradients_list()) != 0:
                raise NotImplementedError(
                    "unit conversion of inputs with gradients of gradients is "
                    + "not implemented"
                )
            new_block.add_gradient(
                parameter,
                TensorBlock(
                    gradient.values * factor,
                    gradient.samples,
                    gradient.components,
                    gradient.properties,
                ),
            )
        blocks.append(new_block)

    result = TensorMap(tensor.keys, blocks)
    for key, value in tensor.info().items():
        result.set_info(key, value)
    result.set_info("unit", unit)
    return result
