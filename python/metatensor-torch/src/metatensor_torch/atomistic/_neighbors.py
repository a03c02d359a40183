"""Neighbor lists for :py:class:`System`: computing them (with `vesin`_) and
integrating externally computed lists in the autograd graph.

A neighbor list is a :py:class:`TensorBlock` with samples ``["first_atom",
"second_atom", "cell_shift_a", "cell_shift_b", "cell_shift_c"]``, a single
``"xyz"`` component and a single ``"distance"`` property, whose values are the
pair vectors ``positions[j] - positions[i] + [a, b, c] @ cell``.

:py:func:`register_autograd_neighbors` can be used from TorchScript;
:py:func:`compute_neighbor_list` and :py:func:`add_neighbor_lists` are Python
functions (they need the vesin package, imported when they are called).

.. _vesin: https://github.com/Luthaf/vesin
"""

from typing import List, Union

import torch
from torch import Tensor

from .._block import TensorBlock
from .._labels import Labels
from .._utils import dtype_name
from ._system import (
    NeighborListOptions,
    System,
    _check_neighbors_metadata,
    _neighbors_samples_names,
)


def _pair_vectors(positions: Tensor, cell: Tensor, samples: Tensor) -> Tensor:
    """Differentiable pair vectors ``positions[j] - positions[i] + shift @ cell``
    for the neighbor list samples ``samples`` (``(n_pairs, 5)`` integers)."""
    first = samples[:, 0].to(torch.int64)
    second = samples[:, 1].to(torch.int64)
    shifts = samples[:, 2:5].to(positions.dtype)
    return (
        positions.index_select(0, second)
        - positions.index_select(0, first)
        + shifts @ cell
    )


def _check_consistency(system: System, neighbors: TensorBlock):
    if neighbors.device != system.device:
        raise ValueError(
            "`system` and `neighbors` must be on the same device, got "
            + str(system.device)
            + " and "
            + str(neighbors.device)
        )
    if neighbors.dtype != system.dtype:
        raise ValueError(
            "`system` and `neighbors` must have the same dtype, got "
            + dtype_name(system.dtype)
            + " and "
            + dtype_name(neighbors.dtype)
        )
    _check_neighbors_metadata(neighbors)

    samples = neighbors.samples.values
    n_pairs = samples.shape[0]
    if n_pairs == 0:
        return
    n_atoms = len(system)
    atoms = samples[:, :2]
    if bool(torch.any(atoms < 0)) or bool(torch.any(atoms >= n_atoms)):
        raise ValueError(
            "invalid `neighbors`: the atom indices ('first_atom' and "
            + "'second_atom') must be between 0 and "
            + str(n_atoms - 1)
            + " for this system"
        )

    expected = _pair_vectors(
        system.positions.detach(), system.cell.detach(), samples
    ).reshape(n_pairs, 3)
    actual = neighbors.values.detach().reshape(n_pairs, 3)
    if system.dtype == torch.float64:
        tolerance = 1e-6
    else:
        tolerance = 1e-4
    error = torch.max(torch.abs(expected - actual), dim=1)[0]
    invalid = torch.nonzero(error > tolerance)
    if invalid.shape[0] != 0:
        pair = int(invalid[0, 0])
        row: List[int] = samples[pair].to(torch.int64).tolist()
        expected_vector: List[float] = expected[pair].to(torch.float64).tolist()
        actual_vector: List[float] = actual[pair].to(torch.float64).tolist()
        raise ValueError(
            "one neighbor pair does not match its metadata: the pair between atom "
            + str(row[0])
            + " and atom "
            + str(row[1])
            + " for the ["
            + str(row[2])
            + ", "
            + str(row[3])
            + ", "
            + str(row[4])
            + "] cell shift should have a distance vector of "
            + str(expected_vector)
            + " but has a distance vector of "
            + str(actual_vector)
        )


def register_autograd_neighbors(
    system: System, neighbors: TensorBlock, check_consistency: bool = False
):
    """Register the neighbor list ``neighbors`` in the autograd graph, so that
    gradients of the pair vectors flow back to ``system.positions`` and
    ``system.cell``.

    The pair vectors are recomputed from the positions and cell with
    differentiable operations and copied *in place* in ``neighbors.values``
    (which then gets a ``grad_fn``). This is only needed for neighbor lists
    computed outside of torch (by a simulation engine);
    :py:func:`compute_neighbor_list` already returns differentiable values.
    Nothing is done if neither the positions nor the cell require gradients.

    :param system: the system the neighbor list was computed for
    :param neighbors: the neighbor list, with values that are not already part of
        a computational graph
    :param check_consistency: check that the neighbor list metadata, device and
        dtype are valid for this system, and that the pair vectors match the
        positions and cell (within ``1e-6`` for float64, ``1e-4`` otherwise)
    """
    values = neighbors.values
    if values.requires_grad:
        raise ValueError(
            "`neighbors` is already part of a computational graph, detach it "
            + "before calling `register_autograd_neighbors()`"
        )
    if check_consistency:
        _check_consistency(system, neighbors)

    positions = system.positions
    cell = system.cell
    if not (positions.requires_grad or cell.requires_grad):
        return
    if values.shape[0] == 0:
        # no pairs: make the (empty) values part of the graph anyway
        values.copy_(positions[:0].reshape(0, 3, 1) + cell.sum() * 0.0)
        return
    vectors = _pair_vectors(positions, cell, neighbors.samples.values)
    values.copy_(vectors.reshape(values.shape))


def _empty_pairs(n_pairs: int, device: torch.device):
    return torch.zeros((n_pairs, 5), dtype=torch.int32, device=device)


def compute_neighbor_list(
    system: System,
    options: NeighborListOptions,
    length_unit: str = "",
    skin: float = 0.0,
) -> TensorBlock:
    """Compute the neighbor list described by ``options`` for ``system``, with
    the `vesin <https://github.com/Luthaf/vesin>`_ library.

    The pairs are found on a detached float64 CPU copy of the system; the pair
    vectors are then computed with differentiable torch operations
    (``positions[j] - positions[i] + shift @ cell``) on the device and with the
    dtype of the system, so gradients flow back to the positions and cell
    without calling :py:func:`register_autograd_neighbors`.

    :param system: the system (periodic in any subset of directions, with zero
        cell vectors along non-periodic directions)
    :param options: options of the neighbor list; the cutoff is converted from
        ``options.length_unit`` to ``length_unit``
    :param length_unit: length unit of the system (``""`` = the model unit)
    :param skin: extra distance added to the cutoff of non-strict lists (in
        ``length_unit``), to re-use the list while atoms move by less than
        ``skin / 2``. Strict lists only contain pairs closer than the cutoff.
    :return: the neighbor list, as a :py:class:`TensorBlock`
    """
    import vesin

    if not isinstance(system, System):
        raise TypeError(f"`system` must be a System, got {type(system)}")
    if not isinstance(options, NeighborListOptions):
        raise TypeError(f"`options` must be NeighborListOptions, got {type(options)}")
    skin = float(skin)
    if not skin >= 0.0:
        raise ValueError(f"`skin` must be a positive number, got {skin}")

    cutoff = options.engine_cutoff(length_unit)
    search_cutoff = cutoff if options.strict else cutoff + skin

    positions = system.positions
    cell = system.cell
    device = positions.device
    if len(system) == 0:
        samples = _empty_pairs(0, device)
    else:
        points = positions.detach().to(device="cpu", dtype=torch.float64).numpy()
        box = cell.detach().to(device="cpu", dtype=torch.float64).numpy()
        periodic = system.pbc.detach().cpu().numpy()
        calculator = vesin.NeighborList(
            cutoff=search_cutoff, full_list=options.full_list
        )
        pairs, shifts, distances = calculator.compute(
            points, box, periodic, quantities="PSd", copy=True
        )
        samples = torch.cat(
            [
                torch.from_numpy(pairs).to(torch.int32).reshape(-1, 2),
                torch.from_numpy(shifts).to(torch.int32).reshape(-1, 3),
            ],
            dim=1,
        )
        if options.strict:
            mask = torch.from_numpy(distances) < cutoff
            samples = samples[mask]
        samples = samples.to(device)

    vectors = _pair_vectors(positions, cell, samples).reshape(-1, 3, 1)
    return TensorBlock(
        values=vectors,
        samples=Labels(_neighbors_samples_names(), samples, assume_unique=True),
        components=[
            Labels(
                "xyz", torch.arange(3, dtype=torch.int32, device=device).reshape(3, 1)
            )
        ],
        properties=Labels(
            "distance", torch.zeros((1, 1), dtype=torch.int32, device=device)
        ),
    )


def add_neighbor_lists(
    systems: Union[System, List[System]],
    options: List[NeighborListOptions],
    length_unit: str = "",
    skin: float = 0.0,
) -> None:
    """Compute and add to each system every neighbor list in ``options`` that it
    does not already contain (see :py:func:`compute_neighbor_list`).

    :param systems: a system or a list of systems
    :param options: the neighbor lists to add, for example the
        ``requested_neighbor_lists()`` of a model
    :param length_unit: length unit of the systems
    :param skin: extra distance for non-strict lists (in ``length_unit``)
    """
    if isinstance(systems, System):
        systems = [systems]
    if isinstance(options, NeighborListOptions):
        options = [options]
    for system in systems:
        for request in options:
            known = system.known_neighbor_lists()
            if any(request == existing for existing in known):
                continue
            neighbors = compute_neighbor_list(
                system, request, length_unit=length_unit, skin=skin
            )
            system.add_neighbor_list(request, neighbors)
