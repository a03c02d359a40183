"""The systems given to the model by each process: the ghost atoms it needs,
and neighbor lists kept between steps."""

from typing import List, Optional, Tuple

import numpy as np
import torch

from ..._classes import Labels, TensorBlock
from .._system import System


# the Verlet skin (Å) of the neighbor lists kept between steps
SKIN = 1.0


# the candidate pairs of a neighbor list: samples (first atom, second atom, cell
# shifts), the atoms as indices, and the cell shifts in Å
_Candidates = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class _NeighborCache:
    """The atoms of a process's system and the candidate pairs of its neighbor
    lists (pairs closer than ``cutoff + SKIN``), re-used while LAMMPS keeps the
    same atoms in the same order, the cell does not change and no atom moved
    by more than ``SKIN / 2`` (the Verlet-list argument: no pair can then come
    closer than the cutoff without being a candidate)."""

    def __init__(self, nlocal, tags, types, cell, positions, rows, pbc, cutoffs):
        import vesin

        self.nlocal = nlocal
        self.tags = tags.copy()
        self.types = types.copy()
        self.cell = cell.copy()
        self.rows = rows
        self.positions = positions[rows]
        self.candidates: List[_Candidates] = []
        box = cell * pbc[:, None]
        for cutoff, full_list in cutoffs:
            calculator = vesin.NeighborList(cutoff=cutoff + SKIN, full_list=full_list)
            pairs, shifts = calculator.compute(
                self.positions, box, pbc, quantities="PS", copy=True
            )
            samples = np.empty((len(pairs), 5), dtype=np.int32)
            samples[:, :2] = pairs
            samples[:, 2:] = shifts
            first = pairs[:, 0].astype(np.intp)
            second = pairs[:, 1].astype(np.intp)
            # the cell is the same as long as the candidates are used
            offsets = shifts @ box
            self.candidates.append((samples, first, second, offsets))

    def valid(self, nlocal, tags, types, cell, positions) -> bool:
        """Whether the atoms and candidate pairs can be re-used."""
        if nlocal != self.nlocal or len(tags) != len(self.tags):
            return False
        if not np.array_equal(cell, self.cell):
            return False
        if not (np.array_equal(tags, self.tags) and np.array_equal(types, self.types)):
            return False
        displacements = positions[self.rows] - self.positions
        moved = np.einsum("ij,ij->i", displacements, displacements)
        return len(moved) == 0 or moved.max() < (0.5 * SKIN) ** 2


def _neighbor_block(
    candidates: "_Candidates",
    remap: Optional[np.ndarray],
    positions: np.ndarray,
    cutoff: float,
    system: System,
) -> TensorBlock:
    """The neighbor list (the ``candidates`` closer than ``cutoff``) of
    ``system``, with pair vectors differentiable with respect to the system's
    positions and cell (the values of :py:func:`compute_neighbor_list`).
    ``positions`` are those of the atoms of the candidates, and ``remap`` gives
    their rows in the system (-1 for atoms left out of the system)."""
    samples, first, second, offsets = candidates
    vectors = np.take(positions, second, axis=0)
    vectors -= np.take(positions, first, axis=0)
    vectors += offsets
    inside = np.einsum("ij,ij->i", vectors, vectors) < cutoff * cutoff
    if remap is not None:
        first = remap[first]
        second = remap[second]
        inside &= first >= 0
        inside &= second >= 0
    kept = np.flatnonzero(inside)
    first = first.take(kept)
    second = second.take(kept)
    samples = samples.take(kept, axis=0)
    if remap is not None:
        samples[:, 0] = first
        samples[:, 1] = second

    device = system.positions.device
    samples_t = torch.from_numpy(samples).to(device)
    first_t = torch.from_numpy(first).to(device)
    second_t = torch.from_numpy(second).to(device)
    system_positions = system.positions
    pair_vectors = system_positions.index_select(0, second_t)
    pair_vectors = pair_vectors - system_positions.index_select(0, first_t)
    if bool(system.pbc.any()):
        shifts = samples_t[:, 2:].to(system.dtype)
        pair_vectors = pair_vectors + shifts @ system.cell
    return TensorBlock(
        values=pair_vectors.reshape(-1, 3, 1),
        samples=Labels(_PAIR_NAMES, samples_t, assume_unique=True),
        components=[Labels("xyz", _XYZ.to(device))],
        properties=Labels("distance", _DISTANCE.to(device)),
    )


_XYZ = torch.arange(3, dtype=torch.int32).reshape(3, 1)
_DISTANCE = torch.zeros((1, 1), dtype=torch.int32)
_PAIR_NAMES = [
    "first_atom",
    "second_atom",
    "cell_shift_a",
    "cell_shift_b",
    "cell_shift_c",
]


def _within(
    positions: np.ndarray,
    nlocal: int,
    cell: np.ndarray,
    origin: np.ndarray,
    split: np.ndarray,
    cutoff: float,
) -> np.ndarray:
    """Which atoms are the own atoms (the first ``nlocal``) or within ``cutoff``
    of the box around the own atoms, along the ``split`` directions of the
    cell (booleans)."""
    inverse = np.linalg.inv(cell)[:, split]
    fractional = (positions - origin) @ inverse
    # distance between the planes of the lattice, for each cell vector
    volume = abs(np.linalg.det(cell))
    areas = np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    margin = cutoff * areas[split] / volume
    keep = np.zeros(len(positions), dtype=bool)
    keep[:nlocal] = True
    if nlocal > 0:
        own = fractional[:nlocal]
        lower = own.min(axis=0) - margin
        upper = own.max(axis=0) + margin
        keep |= ((fractional >= lower) & (fractional <= upper)).all(axis=1)
    return keep


def _select_ghosts(
    positions: np.ndarray,
    tags: np.ndarray,
    nlocal: int,
    cell: np.ndarray,
    origin: np.ndarray,
    split: np.ndarray,
    cutoff: float,
) -> np.ndarray:
    """The rows of the atoms of one process's system: the own atoms (first),
    then one copy of each ghost atom within ``cutoff`` of the own atoms along
    the ``split`` directions (the directions of the cell in which LAMMPS divides
    the box between processes). Along the other directions the system is
    periodic: ghost atoms that are periodic images along those directions of
    an atom already in the system are dropped."""
    fractional = np.linalg.solve(cell.T, (positions - origin).T).T
    rows = np.nonzero(_within(positions, nlocal, cell, origin, split, cutoff))[0]

    if not split.all():
        # copies of an atom that differ by a shift along the periodic
        # directions only are the same atom of the periodic system: keep the
        # first one (own atoms come first)
        row_tags = np.asarray(tags[rows], dtype=np.int64)
        _, first, inverse = np.unique(row_tags, return_index=True, return_inverse=True)
        reference = fractional[rows[first]][inverse]
        shifts = np.rint(fractional[rows][:, split] - reference[:, split])
        shifts = shifts.astype(np.int64)
        bound = int(np.abs(shifts).max(initial=0))
        base = 2 * bound + 1
        key = row_tags.copy()
        for column in range(shifts.shape[1]):
            key = key * base + (shifts[:, column] + bound)
        _, unique = np.unique(key, return_index=True)
        rows = rows[np.sort(unique)]
    return rows
