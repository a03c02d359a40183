import itertools
import math

import numpy as np
import pytest
import torch

from metatensor.torch import Labels, TensorBlock
from metatensor.torch.atomistic import (
    NeighborListOptions,
    System,
    add_neighbor_lists,
    compute_neighbor_list,
    register_autograd_neighbors,
)


pytest.importorskip("vesin")


# ============================================================================ #
# brute force reference


def _plane_distances(cell: np.ndarray, pbc: np.ndarray) -> dict:
    """Distance between lattice planes along each periodic direction, using
    only the periodic cell vectors (Gram determinants)."""
    periodic = [k for k in range(3) if pbc[k]]
    vectors = cell[periodic]
    gram = vectors @ vectors.T
    result = {}
    for position, k in enumerate(periodic):
        others = [p for p in range(len(periodic)) if p != position]
        sub = gram[np.ix_(others, others)]
        result[k] = math.sqrt(
            np.linalg.det(gram) / (np.linalg.det(sub) if others else 1)
        )
    return result


def brute_force(system: System, cutoff: float) -> set:
    """All (i, j, a, b, c) pairs closer than ``cutoff`` (full list)."""
    positions = system.positions.detach().numpy()
    cell = system.cell.detach().numpy()
    pbc = system.pbc.numpy()
    heights = _plane_distances(cell, pbc)
    ranges = []
    for k in range(3):
        if pbc[k]:
            n = int(math.ceil(cutoff / heights[k])) + 1
            ranges.append(range(-n, n + 1))
        else:
            ranges.append(range(1))

    pairs = set()
    n_atoms = len(positions)
    for shift in itertools.product(*ranges):
        vectors = positions[None, :, :] - positions[:, None, :] + np.array(shift) @ cell
        distances = np.linalg.norm(vectors, axis=-1)
        for i, j in zip(*np.nonzero(distances < cutoff)):
            if i == j and shift == (0, 0, 0):
                continue
            pairs.add((int(i), int(j), *shift))
    assert all(i < n_atoms for i, *_ in pairs)
    return pairs


def _canonical(pair) -> tuple:
    """The representative of a pair in half lists."""
    i, j, a, b, c = pair
    reverse = (j, i, -a, -b, -c)
    return min(tuple(pair), reverse)


def _as_tuples(block: TensorBlock) -> list:
    return [tuple(row) for row in block.samples.values.tolist()]


def check_list(system, block, cutoff, full_list, strict=True, skin=0.0):
    reference = brute_force(system, cutoff)
    pairs = _as_tuples(block)

    # the metadata and the vectors are consistent with the system
    assert block.samples.names == [
        "first_atom",
        "second_atom",
        "cell_shift_a",
        "cell_shift_b",
        "cell_shift_c",
    ]
    assert block.values.shape == (len(pairs), 3, 1)
    assert block.values.dtype == system.dtype
    samples = block.samples.values.to(torch.int64)
    expected = (
        system.positions[samples[:, 1]]
        - system.positions[samples[:, 0]]
        + samples[:, 2:].to(system.dtype) @ system.cell
    )
    torch.testing.assert_close(block.values.reshape(-1, 3), expected)
    distances = torch.linalg.norm(block.values.reshape(-1, 3), dim=1)

    if full_list:
        assert len(set(pairs)) == len(pairs)
        found = set(pairs)
        if strict:
            assert found == reference
        else:
            assert reference <= found
            assert bool(torch.all(distances < cutoff + skin + 1e-12))
            assert brute_force(system, cutoff + skin - 1e-9) <= found
    else:
        canonical = [_canonical(p) for p in pairs]
        assert len(set(canonical)) == len(canonical), "half list with duplicates"
        found = set(canonical)
        expected_pairs = {_canonical(p) for p in reference}
        if strict:
            assert found == expected_pairs
        else:
            assert expected_pairs <= found
            assert bool(torch.all(distances < cutoff + skin + 1e-12))

    if strict:
        assert bool(torch.all(distances < cutoff))


def _system(positions, cell, pbc, dtype=torch.float64):
    return System(
        types=torch.ones(len(positions), dtype=torch.int32),
        positions=torch.tensor(positions, dtype=dtype),
        cell=torch.tensor(cell, dtype=dtype),
        pbc=torch.tensor(pbc),
    )


def fcc_primitive():
    a = 3.6
    cell = 0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    return _system([[0.0, 0.0, 0.0]], cell, [True, True, True])


def triclinic():
    rng = np.random.default_rng(7)
    cell = np.array([[4.0, 0.0, 0.0], [2.5, 3.5, 0.0], [1.2, 0.7, 3.8]])
    fractional = rng.random((8, 3))
    return _system(fractional @ cell, cell, [True, True, True])


def mixed_periodic():
    rng = np.random.default_rng(3)
    cell = np.array([[3.5, 0.0, 0.4], [0.0, 0.0, 0.0], [0.6, 0.0, 3.1]])
    positions = rng.random((6, 3)) * np.array([3.5, 6.0, 3.1])
    return _system(positions, cell, [True, False, True])


@pytest.fixture
def fcc_system():
    return fcc_primitive()


@pytest.fixture
def triclinic_system():
    return triclinic()


@pytest.fixture
def mixed_system():
    return mixed_periodic()


SYSTEMS = [
    "diamond_system",
    "fcc_system",
    "triclinic_system",
    "mixed_system",
    "methane_system",
]


# ============================================================================ #
# compute_neighbor_list


@pytest.mark.parametrize("name", SYSTEMS)
@pytest.mark.parametrize("full_list", [True, False])
@pytest.mark.parametrize("cutoff", [2.0, 4.5])
def test_against_brute_force(request, name, full_list, cutoff):
    system = request.getfixturevalue(name)
    options = NeighborListOptions(cutoff, full_list, True)
    block = compute_neighbor_list(system, options)
    check_list(system, block, cutoff, full_list)


@pytest.mark.parametrize("full_list", [True, False])
def test_non_strict_with_skin(full_list):
    system = triclinic()
    options = NeighborListOptions(3.0, full_list, False)
    block = compute_neighbor_list(system, options, skin=0.8)
    check_list(system, block, 3.0, full_list, strict=False, skin=0.8)
    assert len(block) > len(compute_neighbor_list(system, options))

    # strict lists ignore the skin
    strict = NeighborListOptions(3.0, full_list, True)
    block = compute_neighbor_list(system, strict, skin=0.8)
    check_list(system, block, 3.0, full_list, strict=True)


def test_diamond_example(diamond_system):
    # the example of the specification: 56 pairs for cutoff 3 Å, half, strict
    system = diamond_system
    block = compute_neighbor_list(system, NeighborListOptions(3.0, False, True))
    assert block.values.shape == (56, 3, 1)
    assert block.components[0] == Labels("xyz", torch.tensor([[0], [1], [2]]))
    assert block.properties == Labels("distance", torch.tensor([[0]]))
    assert block.samples.values.dtype == torch.int32
    full = compute_neighbor_list(system, NeighborListOptions(3.0, True, True))
    assert full.values.shape == (112, 3, 1)


def test_small_cell_self_images():
    # cutoff larger than the cell: the atom is its own neighbor
    system = fcc_primitive()
    block = compute_neighbor_list(system, NeighborListOptions(5.0, True, True))
    pairs = _as_tuples(block)
    assert all(i == 0 and j == 0 for i, j, *_ in pairs)
    assert (0, 0, 1, 0, 0) in pairs and (0, 0, -1, 0, 0) in pairs
    # nearest neighbors at a / sqrt(2), next at a, then a * sqrt(3/2)
    distances = sorted(torch.linalg.norm(block.values.reshape(-1, 3), dim=1))
    assert len(distances) == 12 + 6 + 24
    assert math.isclose(distances[0], 3.6 / math.sqrt(2))


def test_units(diamond_system):
    system = diamond_system
    options = NeighborListOptions(0.3, False, True)
    options.length_unit = "nm"
    assert math.isclose(options.engine_cutoff("angstrom"), 3.0)
    block = compute_neighbor_list(system, options, length_unit="angstrom")
    assert len(block) == 56

    # the engine uses bohr: the cutoff is 0.3 nm = 5.67 bohr
    bohr = 1.8897261259048541
    system_bohr = System(
        system.types, system.positions * bohr, system.cell * bohr, system.pbc
    )
    block = compute_neighbor_list(system_bohr, options, length_unit="bohr")
    assert len(block) == 56


def test_empty_system():
    system = _system(np.zeros((0, 3)), np.eye(3) * 3, [True, True, True])
    block = compute_neighbor_list(system, NeighborListOptions(2.0, True, True))
    assert block.values.shape == (0, 3, 1)
    assert len(block.samples.names) == 5


def test_float32(diamond_system):
    system = diamond_system.to(torch.float32)
    block = compute_neighbor_list(system, NeighborListOptions(3.0, False, True))
    assert block.values.dtype == torch.float32
    assert len(block) == 56


def test_errors(diamond_system):
    system = diamond_system
    options = NeighborListOptions(3.0, False, True)
    with pytest.raises(ValueError, match="`skin` must be a positive number"):
        compute_neighbor_list(system, options, skin=-1.0)
    with pytest.raises(TypeError, match="`options` must be NeighborListOptions"):
        compute_neighbor_list(system, 3.0)
    with pytest.raises(TypeError, match="`system` must be a System"):
        compute_neighbor_list(None, options)


def test_add_neighbor_lists(diamond_system, methane_system):
    systems = [diamond_system, methane_system]
    requests = [
        NeighborListOptions(3.0, False, True),
        NeighborListOptions(2.0, True, False),
        NeighborListOptions(3.0, False, True, "another"),
    ]
    existing = compute_neighbor_list(systems[0], requests[1])
    systems[0].add_neighbor_list(requests[1], existing)

    add_neighbor_lists(systems, requests, length_unit="angstrom")
    for system in systems:
        assert system.known_neighbor_lists() == [requests[1], requests[0]]
    # existing lists are kept
    assert systems[0].get_neighbor_list(requests[1]) is existing

    # single system
    system = diamond_system.to(torch.float32)
    add_neighbor_lists(system, requests[:1])
    assert len(system.get_neighbor_list(requests[0])) == 56


# ============================================================================ #
# gradients


def _pair_energy(positions, cell, full_list):
    system = System(
        types=torch.tensor([6] * len(positions)),
        positions=positions,
        cell=cell,
        pbc=torch.tensor([True, True, True]),
    )
    block = compute_neighbor_list(system, NeighborListOptions(3.2, full_list, True))
    distances = torch.linalg.norm(block.values.reshape(-1, 3), dim=1)
    return torch.sum(distances**-6) + torch.sum(block.values[:, 0, 0] ** 3)


@pytest.mark.parametrize("full_list", [True, False])
def test_gradients(full_list):
    system = triclinic()
    positions = system.positions[:3].clone().requires_grad_(True)
    cell = system.cell.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda p, c: _pair_energy(p, c, full_list), (positions, cell)
    )
    if not full_list:
        assert torch.autograd.gradgradcheck(
            lambda p, c: _pair_energy(p, c, full_list), (positions, cell)
        )


def test_gradients_mixed_pbc():
    system = mixed_periodic()
    positions = system.positions.clone().requires_grad_(True)

    def energy(positions):
        new = System(system.types, positions, system.cell, system.pbc)
        block = compute_neighbor_list(new, NeighborListOptions(3.0, True, True))
        return torch.sum(torch.linalg.norm(block.values.reshape(-1, 3), dim=1) ** -2)

    assert torch.autograd.gradcheck(energy, (positions,))


# ============================================================================ #
# register_autograd_neighbors


def _detached(block: TensorBlock) -> TensorBlock:
    return TensorBlock(
        block.values.detach().clone(), block.samples, block.components, block.properties
    )


@pytest.mark.parametrize("scripted", [False, True])
def test_register_autograd(scripted):
    reference = triclinic()
    options = NeighborListOptions(3.0, False, True)
    neighbors = _detached(compute_neighbor_list(reference, options))

    positions = reference.positions.clone().requires_grad_(True)
    cell = reference.cell.clone().requires_grad_(True)
    system = System(reference.types, positions, cell, reference.pbc)

    values = neighbors.values
    assert values.grad_fn is None
    if scripted:
        function = torch.jit.script(register_autograd_neighbors)
    else:
        function = register_autograd_neighbors
    function(system, neighbors, True)
    # the values are modified in place
    assert neighbors.values is values
    assert values.grad_fn is not None
    system.add_neighbor_list(options, neighbors)

    energy = torch.sum(torch.linalg.norm(values.reshape(-1, 3), dim=1) ** -3)
    energy.backward()

    expected_positions = positions.detach().clone().requires_grad_(True)
    expected_cell = cell.detach().clone().requires_grad_(True)
    expected = System(reference.types, expected_positions, expected_cell, system.pbc)
    block = compute_neighbor_list(expected, options)
    torch.sum(torch.linalg.norm(block.values.reshape(-1, 3), dim=1) ** -3).backward()

    torch.testing.assert_close(positions.grad, expected_positions.grad)
    torch.testing.assert_close(cell.grad, expected_cell.grad)


def test_register_autograd_no_grad(diamond_system):
    system = diamond_system
    neighbors = _detached(
        compute_neighbor_list(system, NeighborListOptions(3.0, False, True))
    )
    before = neighbors.values.clone()
    register_autograd_neighbors(system, neighbors, check_consistency=True)
    assert not neighbors.values.requires_grad
    assert torch.equal(neighbors.values, before)


def test_register_autograd_errors(diamond_system):
    system = diamond_system
    options = NeighborListOptions(3.0, False, True)
    neighbors = compute_neighbor_list(system, options)

    system.positions.requires_grad_(True)
    attached = compute_neighbor_list(system, options)
    message = "`neighbors` is already part of a computational graph, detach it"
    with pytest.raises(ValueError, match=message):
        register_autograd_neighbors(system, attached)

    wrong = _detached(neighbors)
    wrong.values[3, 1, 0] += 0.1
    message = (
        "one neighbor pair does not match its metadata: the pair between atom "
        r"\d+ and atom \d+ for the \[.*\] cell shift should have a distance vector"
    )
    with pytest.raises(ValueError, match=message):
        register_autograd_neighbors(system, wrong, check_consistency=True)
    # without the check, nothing is verified
    register_autograd_neighbors(system, _detached(wrong))

    # tolerance: 1e-6 in float64
    close = _detached(neighbors)
    close.values[0, 0, 0] += 1e-8
    register_autograd_neighbors(system, close, check_consistency=True)

    message = "`system` and `neighbors` must have the same dtype"
    with pytest.raises(ValueError, match=message):
        register_autograd_neighbors(system, neighbors.to(torch.float32), True)

    samples = neighbors.samples.values.clone()
    samples[0, 1] = 12
    out_of_range = TensorBlock(
        neighbors.values.detach().clone(),
        Labels(neighbors.samples.names, samples),
        neighbors.components,
        neighbors.properties,
    )
    message = "the atom indices .* must be between 0 and 3 for this system"
    with pytest.raises(ValueError, match=message):
        register_autograd_neighbors(system, out_of_range, True)

    bad_samples = TensorBlock(
        neighbors.values.detach().clone(),
        neighbors.samples.rename("first_atom", "i"),
        neighbors.components,
        neighbors.properties,
    )
    with pytest.raises(ValueError, match="invalid samples for `neighbors`"):
        register_autograd_neighbors(system, bad_samples, True)


def test_register_autograd_float32(diamond_system):
    reference = diamond_system.to(torch.float32)
    neighbors = _detached(
        compute_neighbor_list(reference, NeighborListOptions(3.0, True, True))
    )
    # tolerance is 1e-4 for float32
    neighbors.values[0, 0, 0] += 1e-5
    positions = reference.positions.clone().requires_grad_(True)
    system = System(reference.types, positions, reference.cell, reference.pbc)
    register_autograd_neighbors(system, neighbors, check_consistency=True)
    neighbors.values.sum().backward()
    # each atom appears as often as first and second atom in a full list
    torch.testing.assert_close(positions.grad, torch.zeros_like(positions))
