"""Neighbor lists for :py:class:`System`: computing them (with `vesin`_) and
integrating externally computed lists in the autograd graph.

A neighbor list is a :py:class:`TensorBlock` with samples ``["first_atom",
"second_atom", "cell_shift_a", "cell_shift_b", "cell_shift_c"]``, a single
``"xyz"`` component and a single ``"distance"`` property, whose values are the
pair vectors ``positions[j] - positions[i] + [a, b, c] @ cell``.

:py:func:`register_autograd_neighbors` can be used from TorchScript;
:py:func:`compute_neighbor_list` and :py:func:`add_neighbor_lists` are Python
functions (they need the vesin package, imported when they are called).

Before calling vesin, :py:func:`compute_neighbor_list` checks that the
geometry can be handled (vesin crashes the process or runs out of memory on
some of these inputs): positions and cell must be finite and smaller than
``MAX_COORDINATE``; periodic cells must not be degenerate, and must not
be so small compared to the cutoff that the search would go over more than
``MAX_PERIODIC_IMAGES`` periodic images of the cell or create more than
``MAX_NEIGHBOR_PAIRS`` pairs (estimated from the density); the system
must not be longer than ``MAX_EXTENT_RATIO`` times the cutoff along any
direction, nor too flat or elongated compared to the cutoff
(``MAX_GRID_ANISOTROPY``). A :py:class:`ValueError` naming the argument is
raised otherwise.
These limits are module attributes, they can be changed at run time.

.. _vesin: https://github.com/Luthaf/vesin
"""

import math
from typing import List, Tuple, Union

import numpy as np
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


MAX_COORDINATE = 1e8
"""Largest absolute value of the positions and cell vectors accepted by
:py:func:`compute_neighbor_list`, in the length unit of the system."""

MAX_PERIODIC_IMAGES = 100_000
"""Largest number of periodic images of the cell within the cutoff (the product
over periodic directions of ``2 * ceil(cutoff / spacing) + 1``, with
``spacing`` the distance between opposite faces of the cell) accepted by
:py:func:`compute_neighbor_list`."""

MAX_NEIGHBOR_PAIRS = 500_000_000
"""Largest estimated number of pairs (``n_atoms**2 * 4/3 pi cutoff**3 /
volume`` for systems periodic in all directions) accepted by
:py:func:`compute_neighbor_list`; such a list takes about 40 GB of memory."""

MAX_EXTENT_RATIO = 1000
"""Largest size of the system along any direction, as a multiple of the
cutoff, accepted by :py:func:`compute_neighbor_list`: the spacing of the cell
along periodic directions, the extent of the atoms otherwise."""


MAX_GRID_ANISOTROPY = 50_000
"""Largest anisotropy of the grid of vesin's cell list accepted by
:py:func:`compute_neighbor_list`: with ``n = max(1, floor(length / cutoff))``
bins along each direction, the product of the three ``n`` divided by the cube
of the smallest one. ``length`` is the spacing of the cell for periodic
systems, the extent of the atoms along the Cartesian axes for non-periodic
ones. Partially periodic systems are given to vesin as periodic systems, with
cell vectors perpendicular to the periodic ones along the non-periodic
directions, as long as the extent of the atoms plus twice the cutoff. vesin
crashes above about 100 000."""


def _format_cell(box: np.ndarray) -> str:
    return np.array2string(box, separator=", ", precision=6).replace("\n", "")


def _check_geometry(
    points: np.ndarray,
    box: np.ndarray,
    periodic: np.ndarray,
    cutoff: float,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check that vesin can compute the neighbor list of this system (float64
    numpy arrays, ``periodic`` a boolean array), raise a ``ValueError``
    otherwise. This runs at every step of a simulation: keep it cheap.

    :return: the positions, cell and periodic boundary conditions to give to
        vesin (an equivalent periodic system for partially periodic ones)
    """
    if not (math.isfinite(cutoff) and cutoff > 0.0):
        raise ValueError(f"the cutoff must be a positive number, got {cutoff}")
    if points.shape[0] != 0:
        largest = float(np.max(np.abs(points)))
        if not largest <= MAX_COORDINATE:
            if not np.all(np.isfinite(points)):
                atom = int(np.nonzero(~np.isfinite(points).all(axis=1))[0][0])
                raise ValueError(
                    "`system.positions` must be finite, got "
                    f"{points[atom].tolist()} for atom {atom}"
                )
            raise ValueError(
                "`system.positions` must be smaller than MAX_COORDINATE="
                f"{MAX_COORDINATE:g} in absolute value, got {largest:g}"
            )

    vectors = box.tolist()
    flags = periodic.tolist()
    if not all(math.isfinite(x) for row in vectors for x in row):
        raise ValueError(f"`system.cell` must be finite, got {_format_cell(box)}")
    if any(abs(x) > MAX_COORDINATE for row in vectors for x in row):
        raise ValueError(
            "`system.cell` must be smaller than MAX_COORDINATE="
            f"{MAX_COORDINATE:g} in absolute value, got {_format_cell(box)}"
        )

    periodic_vectors = [vectors[i] for i in range(3) if flags[i]]
    n_periodic = len(periodic_vectors)
    spacings: List[float] = []
    if n_periodic != 0:
        # distance between the opposite faces of the (sub-)cell spanned by the
        # periodic vectors: measure of the cell / measure of the face
        measure = math.sqrt(max(_gram_determinant(periodic_vectors), 0.0))
        spacings = _spacings(periodic_vectors)
        smallest = min(spacings)
        if not smallest > 1e-6 * max(math.sqrt(_dot(v, v)) for v in periodic_vectors):
            raise ValueError(
                "`system.cell` is degenerate along periodic directions (the cell "
                f"vectors are linearly dependent): {_format_cell(box)}"
            )
        images = 1.0
        for spacing in spacings:
            images *= 2.0 * math.ceil(cutoff / spacing) + 1.0
        if images > MAX_PERIODIC_IMAGES:
            raise ValueError(
                f"`system.cell` is too small for a cutoff of {cutoff:g}: the "
                f"neighbor search would go over {images:.3g} periodic images "
                f"of the cell (MAX_PERIODIC_IMAGES={MAX_PERIODIC_IMAGES}), "
                f"the cell is {_format_cell(box)}"
            )
        if max(spacings) > MAX_EXTENT_RATIO * cutoff:
            raise ValueError(
                f"`system.cell` is too large for a cutoff of {cutoff:g}: it is "
                f"{max(spacings):g} long, more than MAX_EXTENT_RATIO="
                f"{MAX_EXTENT_RATIO} times the cutoff; the cell is "
                f"{_format_cell(box)}"
            )
        if n_periodic == 3:
            n_atoms = points.shape[0]
            pairs = n_atoms * n_atoms * (4.0 / 3.0 * math.pi * cutoff**3) / measure
            if pairs > MAX_NEIGHBOR_PAIRS:
                raise ValueError(
                    f"`system.cell` is too small for {n_atoms} atoms and a cutoff "
                    f"of {cutoff:g}: the neighbor list would contain about "
                    f"{pairs:.3g} pairs (MAX_NEIGHBOR_PAIRS={MAX_NEIGHBOR_PAIRS}), "
                    f"the cell is {_format_cell(box)}"
                )

    lengths = [0.0, 0.0, 0.0]
    if n_periodic != 3 and points.shape[0] != 0:
        extents = np.ptp(points, axis=0).tolist()
        extent = max(extents)
        if extent > MAX_EXTENT_RATIO * cutoff:
            raise ValueError(
                "`system.positions` are spread over a too large region for a "
                f"cutoff of {cutoff:g}: the atoms span {extent:g} along one "
                f"direction, more than MAX_EXTENT_RATIO={MAX_EXTENT_RATIO} times "
                "the cutoff"
            )
        lengths = extents

    if 0 < n_periodic < 3:
        # vesin is very slow for partially periodic systems (minutes for a few
        # atoms spread over a few hundred cutoffs): give it an equivalent
        # periodic system, the non-periodic directions getting cell vectors
        # perpendicular to the periodic ones and long enough to never find
        # periodic images along them
        points, box = _periodic_equivalent(points, box, flags, cutoff)
        vectors = box.tolist()
        spacings = _spacings(vectors)
        periodic = np.ones(3, dtype=bool)
    elif n_periodic == 0:
        spacings = lengths

    # vesin's cell list has about `length / cutoff` bins along each direction,
    # and divides the number of bins by the same factor along all directions
    # when there are too many: a very flat or elongated grid ends up with zero
    # bins along one direction, and a division by zero (SIGFPE)
    bins = [max(1.0, math.floor(length / cutoff)) for length in spacings]
    anisotropy = bins[0] * bins[1] * bins[2] / min(bins) ** 3
    if anisotropy > MAX_GRID_ANISOTROPY:
        raise ValueError(
            "`system.positions` and `system.cell` describe a too flat or elongated "
            f"system for a cutoff of {cutoff:g}: the neighbor search grid would "
            f"have {bins[0]:.0f} x {bins[1]:.0f} x {bins[2]:.0f} bins (the product "
            "divided by the cube of the smallest is more than "
            f"MAX_GRID_ANISOTROPY={MAX_GRID_ANISOTROPY}); the cell is "
            f"{_format_cell(box)}"
        )
    return points, box, periodic


def _spacings(vectors: List[List[float]]) -> List[float]:
    """Distances between the opposite faces of the cell spanned by 1 to 3
    ``vectors``: measure of the cell / measure of the face."""
    measure = math.sqrt(max(_gram_determinant(vectors), 0.0))
    spacings = []
    for i in range(len(vectors)):
        others = vectors[:i] + vectors[i + 1 :]
        face = math.sqrt(max(_gram_determinant(others), 0.0))
        spacings.append(measure / face if face > 0.0 else 0.0)
    return spacings


def _periodic_equivalent(
    points: np.ndarray, box: np.ndarray, periodic: List[bool], cutoff: float
):
    """Positions and cell of a system periodic in all directions with the same
    pairs (and cell shifts) within ``cutoff`` as the partially periodic system
    ``points``, ``box``, ``periodic``: the cell vectors along non-periodic
    directions are perpendicular to the periodic ones, longer than the extent
    of the atoms plus twice the cutoff, and the atoms are translated inside the
    cell along them (pair vectors and cell shifts do not change)."""
    periodic_rows = [i for i in range(3) if periodic[i]]
    other_rows = [i for i in range(3) if not periodic[i]]
    if len(periodic_rows) == 2:
        normal = np.cross(box[periodic_rows[0]], box[periodic_rows[1]])
        directions = [normal / np.linalg.norm(normal)]
    else:
        axis = box[periodic_rows[0]] / np.linalg.norm(box[periodic_rows[0]])
        trial = np.zeros(3)
        trial[int(np.argmin(np.abs(axis)))] = 1.0
        first = np.cross(axis, trial)
        first /= np.linalg.norm(first)
        directions = [first, np.cross(axis, first)]

    box = box.copy()
    for row, direction in zip(other_rows, directions):
        box[row] = direction
    if np.linalg.det(box) < 0.0:
        # keep a right-handed cell
        directions[-1] = -directions[-1]

    origin = np.zeros(3)
    if points.shape[0] != 0:
        projections = points @ np.stack(directions, axis=1)
        lowest = projections.min(axis=0)
        extents = projections.max(axis=0) - lowest
    else:
        lowest = extents = np.zeros(len(directions))
    for row, direction, low, extent in zip(other_rows, directions, lowest, extents):
        box[row] = direction * (float(extent) + 2.0 * cutoff)
        origin += direction * (float(low) - cutoff)
    return points - origin, box


def _dot(a: List[float], b: List[float]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _gram_determinant(vectors: List[List[float]]) -> float:
    """Squared measure (length, area or volume) spanned by 0 to 3 vectors."""
    if len(vectors) == 0:
        return 1.0
    if len(vectors) == 1:
        return _dot(vectors[0], vectors[0])
    if len(vectors) == 2:
        a, b = vectors
        ab = _dot(a, b)
        return _dot(a, a) * _dot(b, b) - ab * ab
    a, b, c = vectors
    det = (
        a[0] * (b[1] * c[2] - b[2] * c[1])
        - a[1] * (b[0] * c[2] - b[2] * c[0])
        + a[2] * (b[0] * c[1] - b[1] * c[0])
    )
    return det * det


def _vesin_neighbors(points, box, periodic, cutoff: float, full_list: bool):
    """Run vesin, returning pairs, shifts and distances."""
    import vesin

    calculator = vesin.NeighborList(cutoff=cutoff, full_list=full_list)
    try:
        return calculator.compute(points, box, periodic, quantities="PSd", copy=True)
    except Exception:
        # after a failed computation (for example "could not allocate memory
        # for growing neighbor list"), vesin's memory is in an invalid state
        # and freeing it in `NeighborList.__del__` crashes the process: forget
        # it (`__del__` only frees it when the attribute exists)
        try:
            del calculator._neighbors
        except AttributeError:  # pragma: no cover
            pass
        raise


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

    A :py:class:`ValueError` is raised before calling vesin for non-finite
    positions or cell, and for cells or systems outside of the limits described
    in ``metatensor.torch.atomistic._neighbors`` (module attributes
    ``MAX_COORDINATE``, ``MAX_PERIODIC_IMAGES``, ``MAX_NEIGHBOR_PAIRS``,
    ``MAX_EXTENT_RATIO`` and ``MAX_GRID_ANISOTROPY``).
    """
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
        points, box, periodic = _check_geometry(points, box, periodic, search_cutoff)
        pairs, shifts, distances = _vesin_neighbors(
            points, box, periodic, search_cutoff, options.full_list
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
