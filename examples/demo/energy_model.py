"""The machine-learning model: the descriptor of ``descriptor.py`` followed by
one small neural network per center type, built with
``metatensor.torch.learn.nn``, giving the energy of each atom.

The energy of a system is the sum of the atomic energies, plus a fixed energy
per atomic type (the composition baseline, fitted by linear least squares
before the training). The networks only learn the rest.

Training uses the descriptor precomputed with its gradients with respect to the
atomic positions: the per-block networks propagate the gradient blocks with
the chain rule, and ``keys_to_samples`` / ``sum_over_samples`` carry them to
the energy of each system, whose ``positions`` gradient is minus the forces.
"""

from typing import List

import torch
from descriptor import PowerSpectrum

import metatensor.torch as mts
from metatensor.torch import Labels, TensorMap
from metatensor.torch.learn.nn import Linear, Sequential, Tanh


class EnergyModel(torch.nn.Module):
    """Atomic energies from the descriptor, with one multi-layer perceptron per
    center type.

    :param descriptor: the descriptor computing the input features
    :param hidden: widths of the hidden layers
    """

    def __init__(self, descriptor: PowerSpectrum, hidden: List[int]):
        super().__init__()
        self.descriptor = descriptor
        keys = descriptor.keys()
        energy = Labels(["energy"], torch.tensor([[0]], dtype=torch.int32))
        layers: List[torch.nn.Module] = []
        n_inputs = descriptor.n_features
        for width in hidden:
            layers.append(Linear(keys, n_inputs, width))
            layers.append(Tanh(keys))
            n_inputs = width
        layers.append(Linear(keys, n_inputs, out_properties=[energy] * len(keys)))
        self.mlp = Sequential(keys, *layers)
        # composition baseline: one energy per atomic type (eV)
        self.register_buffer(
            "baseline", torch.zeros(len(descriptor.atomic_types), dtype=torch.float64)
        )

    def set_baseline(self, baseline: torch.Tensor):
        """Set the energy of each atomic type (in the order of
        ``descriptor.atomic_types``) added to the learned energies."""
        if baseline.shape != self.baseline.shape:
            raise ValueError(
                f"`baseline` must have the shape {list(self.baseline.shape)}, "
                f"got {list(baseline.shape)}"
            )
        self.baseline.copy_(baseline)

    def atomic_energies(self, descriptor: TensorMap) -> TensorMap:
        """The learned energy of each atom (without the baseline), one block
        per center type, with gradients if the descriptor has some."""
        return self.mlp(descriptor)

    def energies_from_descriptor(self, descriptor: TensorMap) -> TensorMap:
        """The learned energy of each system (without the baseline): the sum
        of the atomic energies over all atoms and center types, as one block
        with samples ``system``. Gradients of the descriptor are carried to the
        energies.
        """
        atomic = _non_empty_blocks(self.atomic_energies(descriptor))
        atomic = atomic.keys_to_samples("center_type")
        return mts.sum_over_samples(atomic, ["atom", "center_type"])


def _non_empty_blocks(tensor: TensorMap) -> TensorMap:
    """The blocks of ``tensor`` which have at least one sample (all blocks if
    they are all empty)."""
    keep: List[int] = []
    for index in range(len(tensor)):
        if tensor.block_by_id(index).values.shape[0] > 0:
            keep.append(index)
    if len(keep) == len(tensor) or len(keep) == 0:
        return tensor
    positions = torch.tensor(keep, dtype=torch.long, device=tensor.keys.values.device)
    keys = Labels(tensor.keys.names, tensor.keys.values.index_select(0, positions))
    return TensorMap(keys, [tensor.block_by_id(index) for index in keep])


def _composition(atomic_types: List[int], types: List[torch.Tensor]) -> torch.Tensor:
    """Number of atoms of each type in each system, ``(n_systems, n_types)``."""
    reference = torch.tensor(atomic_types)
    return torch.stack(
        [(t.reshape(-1, 1) == reference.reshape(1, -1)).sum(dim=0) for t in types]
    ).to(torch.float64)


def fit_baseline(
    atomic_types: List[int], types: List[torch.Tensor], energies: torch.Tensor
) -> torch.Tensor:
    """Least-squares fit of one energy per atomic type to the energies of a set
    of systems.

    :param atomic_types: the atomic types
    :param types: the atomic types of the atoms of each system
    :param energies: ``(n_systems,)`` energies
    :return: ``(len(atomic_types),)`` energy per atomic type
    """
    counts = _composition(atomic_types, types)
    solution = torch.linalg.lstsq(counts, energies.to(torch.float64).unsqueeze(1))
    return solution.solution.reshape(-1)


def baseline_energies(
    atomic_types: List[int], types: List[torch.Tensor], baseline: torch.Tensor
) -> torch.Tensor:
    """The composition baseline of each system.

    :param atomic_types: the atomic types
    :param types: the atomic types of the atoms of each system
    :param baseline: the energy of each atomic type (from
        :py:func:`fit_baseline`)
    :return: ``(n_systems,)`` baseline energies
    """
    return _composition(atomic_types, types) @ baseline.to(torch.float64)
