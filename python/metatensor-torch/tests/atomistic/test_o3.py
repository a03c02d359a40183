"""Tests of ``metatensor.torch.atomistic.o3``: Wigner D matrices, transformations
of systems, blocks and maps, and the O(3)-averaged model."""

import math
import subprocess
import sys
from typing import Dict, List, Optional

import pytest
import torch

import metatensor.torch.atomistic
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatensor.torch.atomistic import (
    ModelEvaluationOptions,
    ModelOutput,
    NeighborListOptions,
    System,
)
from metatensor.torch.atomistic.o3 import (
    O3Transformations,
    SymmetrizedModel,
    random_transformations,
)
from metatensor.torch.atomistic.o3._symmetrized import rotation_grid
from metatensor.torch.atomistic.o3._wigner import (
    real_spherical_harmonics,
    real_wigner_matrices,
)

from ._models import add_neighbor_lists, copper_system, lennard_jones_model, wrap


def _rotations(n, seed=0, inversions=False):
    generator = torch.Generator().manual_seed(seed)
    return random_transformations(
        n,
        6,
        device="cpu",
        dtype=torch.float64,
        add_inversions=inversions,
        generator=generator,
    )


# ============================================================================ #
# Wigner D matrices


def test_wigner_orthogonal_and_composition():
    first = _rotations(3, seed=1).matrices
    second = _rotations(3, seed=2).matrices
    d_first = real_wigner_matrices(first, 6)
    d_second = real_wigner_matrices(second, 6)
    d_product = real_wigner_matrices(first @ second, 6)
    for ell in range(7):
        identity = torch.eye(2 * ell + 1, dtype=torch.float64)
        d = d_first[ell]
        assert d.shape == (3, 2 * ell + 1, 2 * ell + 1)
        torch.testing.assert_close(
            d @ d.transpose(1, 2), identity.expand_as(d), atol=1e-12, rtol=0
        )
        # a representation: D(R1 R2) = D(R1) D(R2)
        torch.testing.assert_close(
            d_product[ell], d_first[ell] @ d_second[ell], atol=1e-12, rtol=0
        )
        torch.testing.assert_close(
            torch.linalg.det(d), torch.ones(3, dtype=torch.float64)
        )


def test_wigner_rotates_spherical_harmonics():
    rotations = _rotations(4, seed=3).matrices
    points = torch.randn(20, 3, dtype=torch.float64)
    harmonics = real_spherical_harmonics(points, 5)
    wigner = real_wigner_matrices(rotations, 5)
    for k, rotation in enumerate(rotations):
        rotated = real_spherical_harmonics(points @ rotation.T, 5)
        for ell in range(6):
            torch.testing.assert_close(
                rotated[ell], harmonics[ell] @ wigner[ell][k].T, atol=1e-12, rtol=0
            )

    # l = 1: (y, z, x) order, so D is R with rows and columns permuted
    order = [1, 2, 0]
    torch.testing.assert_close(
        wigner[1], rotations[:, order][:, :, order], atol=1e-13, rtol=0
    )
    # the harmonics are orthonormal on the sphere: check with the grid
    # integrating exactly up to degree 2 * 3
    grid, weights = rotation_grid(6)
    directions = grid @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    values = real_spherical_harmonics(directions, 3)[3]
    gram = 4 * math.pi * (values.T * weights) @ values
    torch.testing.assert_close(gram, torch.eye(7, dtype=torch.float64))


def test_random_transformations():
    first = _rotations(10, seed=5)
    second = _rotations(10, seed=5)
    assert torch.equal(first.matrices, second.matrices)
    assert len(first) == 10
    assert first.dtype == torch.float64
    assert first.max_angular_momentum == 6
    torch.testing.assert_close(
        torch.linalg.det(first.matrices), torch.ones(10, dtype=torch.float64)
    )
    assert not first.improper_mask.any()

    o3 = _rotations(200, seed=6, inversions=True)
    determinants = torch.linalg.det(o3.matrices)
    torch.testing.assert_close(determinants.abs(), torch.ones(200, dtype=torch.float64))
    assert torch.equal(o3.improper_mask, determinants < 0)
    assert 50 < int(o3.improper_mask.sum()) < 150

    single = random_transformations(1, device="cpu", dtype=torch.float32)
    assert single.matrices.dtype == torch.float32
    assert single.wigner_D_matrices(0).dtype == torch.float32

    with pytest.raises(ValueError, match="`dtype` must be torch.float32"):
        random_transformations(2, device="cpu", dtype=torch.int32)
    with pytest.raises(ValueError, match="`n` must be positive"):
        random_transformations(0, device="cpu", dtype=torch.float64)
    with pytest.raises(ValueError, match="must be orthogonal"):
        O3Transformations(2 * torch.eye(3, dtype=torch.float64).reshape(1, 3, 3), 0)
    with pytest.raises(ValueError, match=r"angular momentum 7 is outside of \[0, 6\]"):
        first.wigner_D_matrices(7)


# ============================================================================ #
# raw data


def test_cartesian_and_spherical():
    transformations = _rotations(3, seed=7, inversions=True)
    matrices = transformations.matrices
    vectors = torch.randn(5, 3, dtype=torch.float64)

    rotated = transformations.transform_cartesian(vectors)
    assert rotated.shape == (3, 5, 3)
    torch.testing.assert_close(rotated, torch.einsum("kij,pj->kpi", matrices, vectors))
    inverted = transformations.transform_cartesian(vectors, add_inversion=True)
    torch.testing.assert_close(inverted, -rotated)
    back = transformations.inverse_transform_cartesian(rotated[1])
    torch.testing.assert_close(back[1], vectors)

    # l = 1 data is a vector in (y, z, x) order; sigma = 1 is a polar vector
    # (changes sign under inversion), sigma = -1 an axial one
    order = [1, 2, 0]
    polar = transformations.transform_spherical(vectors[:, order], 1, 1)
    torch.testing.assert_close(polar, rotated[:, :, order])
    axial = transformations.transform_spherical(vectors[:, order], 1, -1)
    sign = torch.linalg.det(matrices).reshape(-1, 1, 1)
    torch.testing.assert_close(axial, sign * rotated[:, :, order])

    # improper operations on l = 2: factor sigma * (-1)^2 = sigma
    values = torch.randn(4, 5, dtype=torch.float64)
    proper = transformations.wigner_D_matrices(2)
    for sigma in (1, -1):
        result = transformations.transform_spherical(values, 2, sigma)
        factor = torch.where(transformations.improper_mask, float(sigma), 1.0)
        expected = factor.reshape(-1, 1, 1) * torch.einsum(
            "kmn,pn->kpm", proper, values
        )
        torch.testing.assert_close(result, expected)

    # a single transformation keeps the shape
    single = O3Transformations(matrices[:1], 2)
    assert single.transform_cartesian(vectors).shape == (5, 3)
    assert single.transform_spherical(values, 2, 1).shape == (4, 5)


# ============================================================================ #
# blocks and maps


def _tensor(n_systems=3) -> List[TensorMap]:
    """Maps with a Cartesian vector block (with gradients), a rank-2
    Cartesian block, an l = 2 pseudo-tensor block and a scalar block."""
    generator = torch.Generator().manual_seed(11)
    samples = Labels(
        ["system", "atom"],
        torch.tensor([[s, a] for s in range(n_systems) for a in range(2)]),
    )
    n = len(samples)
    properties = Labels(["n"], torch.tensor([[0], [1]]))
    xyz = Labels(["xyz"], torch.tensor([[0], [1], [2]]))

    def rand(*shape):
        return torch.randn(shape, dtype=torch.float64, generator=generator)

    vector = TensorBlock(rand(n, 3, 2), samples, [xyz], properties)
    xyz_1 = Labels(["xyz_1"], torch.tensor([[0], [1], [2]]))
    xyz_2 = Labels(["xyz_2"], torch.tensor([[0], [1], [2]]))
    matrix = TensorBlock(rand(n, 3, 3, 2), samples, [xyz_1, xyz_2], properties)
    o3_mu = Labels(["o3_mu"], torch.arange(-2, 3).reshape(-1, 1))
    spherical = TensorBlock(rand(n, 5, 2), samples, [o3_mu], properties)
    gradient_samples = Labels(
        ["sample", "system", "atom"],
        torch.tensor([[i, i // 2, j] for i in range(n) for j in range(2)]),
    )
    spherical.add_gradient(
        "positions",
        TensorBlock(rand(2 * n, 3, 5, 2), gradient_samples, [xyz, o3_mu], properties),
    )
    scalar = TensorBlock(rand(n, 2), samples, [], properties)
    tensors = []
    for block, key in [
        (vector, [1, 1, 0]),
        (matrix, [2, 1, 1]),
        (spherical, [2, -1, 2]),
        (scalar, [0, 1, 3]),
    ]:
        keys = Labels(["o3_lambda", "o3_sigma", "kind"], torch.tensor([key]))
        tensor = TensorMap(keys, [block])
        tensor.set_info("unit", "eV")
        tensors.append(tensor)
    return tensors


def _assert_tensor_close(first, second):
    if isinstance(first, list):
        for a, b in zip(first, second):
            _assert_tensor_close(a, b)
        return
    assert first.keys == second.keys
    for a, b in zip(first.blocks(), second.blocks()):
        assert a.samples == b.samples
        torch.testing.assert_close(a.values, b.values, atol=1e-12, rtol=0)
        assert a.gradients_list() == b.gradients_list()
        for parameter in a.gradients_list():
            torch.testing.assert_close(
                a.gradient(parameter).values,
                b.gradient(parameter).values,
                atol=1e-12,
                rtol=0,
            )


@pytest.mark.parametrize("inversions", [False, True])
def test_tensormap_round_trip(inversions):
    transformations = _rotations(3, seed=12, inversions=inversions)
    for tensor in _tensor():
        transformed = transformations.transform_tensormap(tensor)
        assert transformed.info() == {"unit": "eV"}
        if len(tensor.block().components) != 0:
            assert not torch.allclose(transformed.block().values, tensor.block().values)
        back = transformations.inverse_transform_tensormap(transformed)
        _assert_tensor_close(back, tensor)

        for add_inversion in (False, True):
            forward = transformations.transform_tensormap(
                tensor, add_inversion=add_inversion
            )
            back = transformations.inverse_transform_tensormap(
                forward, add_inversion=add_inversion
            )
            _assert_tensor_close(back, tensor)


def test_tensormap_values():
    tensors = _tensor()
    transformations = _rotations(3, seed=13, inversions=True)
    matrices = transformations.matrices
    transformed = [transformations.transform_tensormap(t).block() for t in tensors]
    blocks = [t.block() for t in tensors]
    rows = blocks[0].samples.column("system").to(torch.long)

    # vectors: v -> R v, with the R of the row's system
    expected = torch.einsum("sij,sjp->sip", matrices[rows], blocks[0].values)
    torch.testing.assert_close(transformed[0].values, expected)

    # rank-2 Cartesian tensor: R T R^T
    expected = torch.einsum(
        "sai,sbj,sijp->sabp", matrices[rows], matrices[rows], blocks[1].values
    )
    torch.testing.assert_close(transformed[1].values, expected)

    # pseudo l = 2 block: D, times -1 for improper operations
    wigner = transformations.wigner_D_matrices(2)[rows]
    sign = torch.where(transformations.improper_mask, -1.0, 1.0)[rows]
    expected = sign.reshape(-1, 1, 1) * torch.einsum(
        "smn,snp->smp", wigner, blocks[2].values
    )
    torch.testing.assert_close(transformed[2].values, expected)

    # gradients use the operation of their parent row, R on the xyz axis and
    # the Wigner matrix on the o3_mu axis
    gradient = blocks[2].gradient("positions")
    parents = rows[gradient.samples.column("sample").to(torch.long)]
    expected = torch.einsum(
        "s,sai,sbj,sijp->sabp",
        sign[gradient.samples.column("sample").to(torch.long)],
        matrices[parents],
        transformations.wigner_D_matrices(2)[parents],
        gradient.values,
    )
    torch.testing.assert_close(transformed[2].gradient("positions").values, expected)

    # scalars are unchanged
    assert torch.equal(transformed[3].values, blocks[3].values)

    # `system_ids` maps the "system" values to the operations
    tensor = tensors[0]
    shifted = transformations.transform_tensormap(
        _shift(tensor, 10), system_ids=torch.tensor([10, 11, 12])
    )
    torch.testing.assert_close(shifted.block(0).values, transformed[0].values)
    reordered = transformations.transform_tensormap(
        tensor, system_ids=torch.tensor([2, 0, 1])
    )
    rows_reordered = torch.tensor([1, 2, 0])[rows]
    expected = torch.einsum("sij,sjp->sip", matrices[rows_reordered], blocks[0].values)
    torch.testing.assert_close(reordered.block(0).values, expected)

    with pytest.raises(ValueError, match="one entry per transformation"):
        transformations.transform_tensormap(tensor, system_ids=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="'system' sample values must be in"):
        _rotations(2).transform_tensormap(tensor)


def _shift(tensor: TensorMap, offset: int) -> TensorMap:
    blocks = []
    for block in tensor.blocks():
        values = block.samples.values.clone()
        values[:, 0] += offset
        new = TensorBlock(
            block.values,
            Labels(block.samples.names, values),
            block.components,
            block.properties,
        )
        for parameter, gradient in block.gradients():
            new.add_gradient(parameter, gradient)
        blocks.append(new)
    return TensorMap(tensor.keys, blocks)


def test_block_errors():
    transformations = _rotations(1)
    o3_mu = _tensor(1)[2].block()
    key = Labels(["kind"], torch.tensor([[0]])).entry(0)
    with pytest.raises(ValueError, match="must have a 'o3_lambda' dimension"):
        transformations.transform_block(key, o3_mu)
    key = Labels(["o3_lambda"], torch.tensor([[3]])).entry(0)
    with pytest.raises(ValueError, match="must have 2 \\* o3_lambda \\+ 1 entries"):
        transformations.transform_block(key, o3_mu)


# ============================================================================ #
# systems and models


def _system_with_data():
    model = lennard_jones_model()
    system = copper_system(n_cells=1, rattle=0.2, seed=3, requires_grad=True)
    add_neighbor_lists(system, model, "angstrom")
    data = _tensor(1)[2]
    system.add_data("mydomain::vectors", data)
    return model, system


@pytest.mark.parametrize("inversions", [False, True])
def test_systems_round_trip(inversions):
    _, system = _system_with_data()
    transformations = _rotations(2, seed=14, inversions=inversions)
    rotated = transformations.transform_systems([system, system])
    matrices = transformations.matrices
    for k, new in enumerate(rotated):
        torch.testing.assert_close(new.positions, system.positions @ matrices[k].T)
        torch.testing.assert_close(new.cell, system.cell @ matrices[k].T)
        assert torch.equal(new.types, system.types)
        assert torch.equal(new.pbc, system.pbc)
        (options,) = new.known_neighbor_lists()
        neighbors = new.get_neighbor_list(options)
        original = system.get_neighbor_list(options)
        assert neighbors.samples == original.samples
        torch.testing.assert_close(
            neighbors.values[:, :, 0], original.values[:, :, 0] @ matrices[k].T
        )
        single = O3Transformations(matrices[k : k + 1], 6)
        _assert_tensor_close(
            new.get_data("mydomain::vectors"),
            single.transform_tensormap(system.get_data("mydomain::vectors")),
        )

    back = transformations.inverse_transform_systems(rotated)
    for new in back:
        torch.testing.assert_close(new.positions, system.positions)
        torch.testing.assert_close(new.cell, system.cell)
        _assert_tensor_close(
            new.get_data("mydomain::vectors"), system.get_data("mydomain::vectors")
        )

    with pytest.raises(ValueError, match="expected one system per transformation"):
        transformations.transform_systems([system])


def _energy_and_forces(model, system):
    options = ModelEvaluationOptions(
        length_unit="angstrom", outputs={"energy": ModelOutput(unit="eV")}
    )
    energy = model([system], options, check_consistency=True)["energy"]
    energy = energy.block().values.sum()
    (gradient,) = torch.autograd.grad(energy, system.positions)
    return energy.detach(), -gradient


def test_invariant_model():
    model, system = _system_with_data()
    energy, forces = _energy_and_forces(model, system)

    transformations = _rotations(4, seed=15, inversions=True)
    for k, rotated in enumerate(transformations.transform_systems([system] * 4)):
        rotated = _fresh(rotated, model)
        rotated_energy, rotated_forces = _energy_and_forces(model, rotated)
        # the energy does not change, the forces rotate
        torch.testing.assert_close(rotated_energy, energy)
        torch.testing.assert_close(
            rotated_forces, forces @ transformations.matrices[k].T
        )


def _fresh(system, model):
    """A copy of ``system`` without neighbor lists or data, with new leaf
    positions, and the neighbor lists of ``model``."""
    positions = system.positions.detach().requires_grad_(True)
    new = System(system.types, positions, system.cell.detach(), system.pbc)
    add_neighbor_lists(new, model, "angstrom")
    return new


class Anisotropic(torch.nn.Module):
    """A model that is not rotationally invariant: the energy of each pair
    depends on the direction of the pair vector relative to ``z``, and there is
    a per-atom vector output."""

    def __init__(self):
        super().__init__()
        self._neighbors = NeighborListOptions(cutoff=4.0, full_list=False, strict=True)

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self._neighbors]

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        energies: List[torch.Tensor] = []
        for system in systems:
            neighbors = system.get_neighbor_list(self._neighbors)
            vectors = neighbors.values.reshape(-1, 3)
            distances = torch.linalg.vector_norm(vectors, dim=1)
            cos = vectors[:, 2] / distances
            energies.append((torch.exp(-distances) * (1 + 0.5 * cos * cos)).sum())
        block = TensorBlock(
            torch.stack(energies).reshape(-1, 1),
            Labels(["system"], torch.arange(len(systems)).reshape(-1, 1)),
            [],
            Labels(["energy"], torch.tensor([[0]])),
        )
        return {"energy": TensorMap(Labels(["_"], torch.tensor([[0]])), [block])}


def test_symmetrized_model():
    _, system = _system_with_data()
    model = wrap(
        Anisotropic(),
        outputs={"energy": ModelOutput(unit="eV", sample_kind="system")},
    )
    system = _fresh(system, model)

    # the bare model is not invariant
    transformations = _rotations(2, seed=16)
    rotated = [
        _fresh(new, model)
        for new in transformations.transform_systems([system, system])
    ]
    energy, _ = _energy_and_forces(model, system)
    assert abs(float(_energy_and_forces(model, rotated[0])[0] - energy)) > 1e-3

    # the energy depends on cos^2 of the pair directions (angular momentum up
    # to 2): a grid of degree 2 averages it exactly
    symmetrized = SymmetrizedModel.wrap(model, max_angular_momentum_grid=2)
    assert symmetrized.module.n_evaluations == 2 * 3 * 3 * 2
    energies = []
    for new in [system, *rotated]:
        energies.append(_energy_and_forces(symmetrized, _fresh(new, model)))
    for rotated_energy, _ in energies[1:]:
        torch.testing.assert_close(rotated_energy, energies[0][0])
    # the forces rotate with the system
    for k in range(2):
        torch.testing.assert_close(
            energies[k + 1][1], energies[0][1] @ transformations.matrices[k].T
        )

    # the variance diagnostic is positive for this model, zero for an
    # invariant one
    options = ModelEvaluationOptions(
        length_unit="angstrom",
        outputs={"o3::variance::energy": ModelOutput(unit="")},
    )
    variance = symmetrized([system], options, False)["o3::variance::energy"]
    assert variance.block().values.shape == (1, 1)
    assert float(variance.block().values.detach()) > 1e-6

    invariant, system = _system_with_data()
    options = ModelEvaluationOptions(
        length_unit="angstrom",
        outputs={
            "energy": ModelOutput(unit="eV", sample_kind="atom"),
            "o3::variance::energy": ModelOutput(unit="", sample_kind="atom"),
        },
    )
    # the system contains l = 2 custom data
    with pytest.raises(ValueError, match="angular momentum 2 is outside of"):
        SymmetrizedModel.wrap(invariant)([system], options, False)
    wrapped = SymmetrizedModel.wrap(
        invariant, batch_size=5, max_angular_momentum_input=2
    )
    results = wrapped([system], options, False)
    options = ModelEvaluationOptions(
        length_unit="angstrom",
        outputs={"energy": ModelOutput(unit="eV", sample_kind="atom")},
    )
    direct = invariant([system], options, False)["energy"]
    assert results["energy"].block().samples == direct.block().samples
    torch.testing.assert_close(results["energy"].block().values, direct.block().values)
    variance = results["o3::variance::energy"].block().values.detach()
    assert variance.shape == (len(system), 1)
    assert float(variance.abs().max()) < 1e-20


def test_symmetrized_model_errors():
    model = lennard_jones_model()
    with pytest.raises(NotImplementedError, match="character projections"):
        SymmetrizedModel(
            model.module,
            max_angular_momentum_target=0,
            max_angular_momentum_character=2,
        )
    with pytest.raises(ValueError, match="`batch_size` must be positive"):
        SymmetrizedModel(model.module, max_angular_momentum_target=0, batch_size=0)
    with pytest.raises(TypeError, match="`model` must be an AtomisticModel"):
        SymmetrizedModel.wrap(model.module)


def test_no_import_at_startup():
    # the module is imported on request only
    code = (
        "import sys, metatensor.torch.atomistic\n"
        "assert 'metatensor_torch.atomistic.o3' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


class Augment(torch.nn.Module):
    """Uses the transformations in TorchScript."""

    def __init__(self, transformations: O3Transformations):
        super().__init__()
        self.transformations = transformations

    def forward(self, systems: List[System], tensor: TensorMap) -> List[System]:
        rotated = self.transformations.transform_tensormap(tensor)
        back = self.transformations.inverse_transform_tensormap(rotated)
        assert back.keys == tensor.keys
        vectors = self.transformations.transform_cartesian(systems[0].positions)
        spherical = self.transformations.transform_spherical(vectors, 1, 1)
        assert spherical.shape[0] == vectors.shape[0]
        assert self.transformations.wigner_D_matrices(2).shape[1] == 5
        return self.transformations.transform_systems(systems)


def test_torchscript(tmp_path):
    transformations = _rotations(2, seed=17)
    module = torch.jit.script(Augment(transformations))
    _, system = _system_with_data()
    tensor = _tensor(2)[2]
    scripted = module([system, system], tensor)
    eager = Augment(transformations)([system, system], tensor)
    for a, b in zip(scripted, eager):
        torch.testing.assert_close(a.positions, b.positions)

    # a symmetrized model can be saved and loaded
    model, system = _system_with_data()
    wrapped = SymmetrizedModel.wrap(model, max_angular_momentum_input=2)
    wrapped.save(str(tmp_path / "symmetrized.pt"))
    loaded = metatensor.torch.atomistic.load_atomistic_model(
        str(tmp_path / "symmetrized.pt")
    )
    options = ModelEvaluationOptions(
        length_unit="angstrom",
        outputs={"energy": ModelOutput(unit="eV", sample_kind="system")},
    )
    expected = wrapped([system], options, False)["energy"].block().values
    result = loaded([system], options, False)["energy"].block().values
    torch.testing.assert_close(result, expected)


def test_symmetrized_selected_atoms():
    invariant, system = _system_with_data()
    wrapped = SymmetrizedModel.wrap(
        invariant, batch_size=7, max_angular_momentum_input=2
    )
    selected = Labels(["system", "atom"], torch.tensor([[0, 1], [0, 3]]))
    options = ModelEvaluationOptions(
        length_unit="angstrom",
        outputs={"energy": ModelOutput(unit="eV", sample_kind="atom")},
        selected_atoms=selected,
    )
    result = wrapped([system], options, False)["energy"].block()
    direct = invariant([system], options, False)["energy"].block()
    assert result.samples == direct.samples
    assert result.samples.values.tolist() == [[0, 1], [0, 3]]
    torch.testing.assert_close(result.values, direct.values)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda():
    transformations = random_transformations(
        3, 2, device="cuda", dtype=torch.float32, add_inversions=True
    )
    assert transformations.wigner_D_matrices(2).device.type == "cuda"
    tensor = _tensor()[2].to(device="cuda", dtype=torch.float32)
    back = transformations.inverse_transform_tensormap(
        transformations.transform_tensormap(tensor)
    )
    torch.testing.assert_close(back.block().values, tensor.block().values)
