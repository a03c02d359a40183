"""Explicit gradients through the layers of metatensor.learn.nn: the output
gradient blocks must be the derivatives of the output values, checked against
torch autograd (exact) and finite differences.

The input maps have values that are smooth functions of ``positions`` (4 atoms)
and of a ``strain`` matrix, with exact gradient blocks computed by autograd."""

import pytest


torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402

from metatensor import Labels, TensorBlock, TensorMap  # noqa: E402
from metatensor_learn import nn  # noqa: E402


N_ATOMS = 4
N_PROPERTIES = 3
KEYS = Labels(["o3_lambda", "o3_sigma"], np.array([[0, 1], [1, 1]]))
N_COMPONENTS = [1, 3]


def _coefficients(key: int, n_components: int):
    generator = torch.Generator().manual_seed(1234 + key)
    shape = (n_components, N_PROPERTIES, 3)
    a = torch.randn(shape, generator=generator, dtype=torch.float64)
    b = torch.randn(shape, generator=generator, dtype=torch.float64)
    c = torch.randn(shape + (3,), generator=generator, dtype=torch.float64)
    return a, b, c


def _block_values(key: int, positions, strain):
    a, b, c = _coefficients(key, N_COMPONENTS[key])
    atoms = torch.arange(N_ATOMS)
    xi = positions[atoms]
    xj = positions[(atoms + 1) % N_ATOMS]
    values = torch.sin(torch.einsum("cpd,sd->scp", a, xi))
    values = values + 0.5 * torch.einsum("cpd,sd->scp", b, xj) ** 2
    strained = torch.einsum("cpde,de->cp", c, strain)
    values = values + strained[None] * (1.0 + 0.1 * xi.sum(dim=1))[:, None, None]
    return values


def _metadata(key: int):
    samples = Labels(
        ["system", "atom"],
        np.stack([np.zeros(N_ATOMS), np.arange(N_ATOMS)], axis=1).astype(np.int32),
    )
    components = [Labels.range("o3_mu", N_COMPONENTS[key])]
    properties = Labels.range("n", N_PROPERTIES)
    return samples, components, properties


def values_map(positions, strain) -> TensorMap:
    """The map without gradients (differentiable with autograd)."""
    blocks = []
    for key in range(len(KEYS)):
        samples, components, properties = _metadata(key)
        values = _block_values(key, positions, strain)
        blocks.append(TensorBlock(values, samples, components, properties))
    return TensorMap(KEYS, blocks)


def full_map(positions, strain) -> TensorMap:
    """The map with exact ``positions`` and ``strain`` gradient blocks."""
    jacobian = torch.autograd.functional.jacobian
    blocks = []
    for key in range(len(KEYS)):
        samples, components, properties = _metadata(key)
        values = _block_values(key, positions, strain)
        block = TensorBlock(values.detach(), samples, components, properties)

        # (S, C, P, atom, xyz)
        d_positions = jacobian(lambda p, k=key: _block_values(k, p, strain), positions)
        rows = []
        gradient_values = []
        for s in range(N_ATOMS):
            for atom in sorted({s, (s + 1) % N_ATOMS}):
                rows.append([s, 0, atom])
                gradient_values.append(d_positions[s, :, :, atom, :].permute(2, 0, 1))
        block.add_gradient(
            "positions",
            TensorBlock(
                torch.stack(gradient_values),
                Labels(["sample", "system", "atom"], np.array(rows, dtype=np.int32)),
                [Labels.range("xyz", 3)] + components,
                properties,
            ),
        )

        # (S, C, P, 3, 3)
        d_strain = jacobian(lambda e, k=key: _block_values(k, positions, e), strain)
        block.add_gradient(
            "strain",
            TensorBlock(
                d_strain.permute(0, 3, 4, 1, 2).contiguous(),
                Labels(["sample"], np.arange(N_ATOMS, dtype=np.int32).reshape(-1, 1)),
                [Labels.range("xyz_1", 3), Labels.range("xyz_2", 3)] + components,
                properties,
            ),
        )
        blocks.append(block)
    return TensorMap(KEYS, blocks)


def dense_positions_gradient(block: TensorBlock):
    """``d values / d positions`` as a dense ``(S, *C, P, atom, xyz)`` array."""
    gradient = block.gradient("positions")
    samples = np.array(gradient.samples.values)
    shape = list(block.values.shape) + [N_ATOMS, 3]
    dense = torch.zeros(shape, dtype=gradient.values.dtype)
    for row in range(samples.shape[0]):
        s, atom = int(samples[row, 0]), int(samples[row, 2])
        dense[s, ..., atom, :] += torch.movedim(gradient.values[row], 0, -1)
    return dense


def dense_strain_gradient(block: TensorBlock):
    """``d values / d strain`` as a dense ``(S, *C, P, 3, 3)`` array."""
    gradient = block.gradient("strain")
    return torch.movedim(torch.movedim(gradient.values, 1, -1), 1, -1)


def _inputs():
    generator = torch.Generator().manual_seed(0)
    positions = torch.randn(N_ATOMS, 3, generator=generator, dtype=torch.float64)
    strain = torch.eye(3, dtype=torch.float64) + 0.1 * torch.randn(
        3, 3, generator=generator, dtype=torch.float64
    )
    return positions, strain


def _layers():
    """(name, layer) for every layer type, acting on the maps above."""
    f64 = torch.float64
    user_modules = [
        torch.nn.Sequential(torch.nn.Linear(3, 3, dtype=f64), torch.nn.Tanh())
        for _ in range(len(KEYS))
    ]
    return [
        ("Linear", nn.Linear(KEYS, 3, 5, dtype=f64)),
        ("EquivariantLinear", nn.EquivariantLinear(KEYS, 3, 2, dtype=f64)),
        ("ReLU", nn.ReLU(KEYS)),
        ("SiLU", nn.SiLU(KEYS)),
        ("Tanh", nn.Tanh(KEYS)),
        ("InvariantSiLU", nn.InvariantSiLU(KEYS)),
        ("InvariantTanh", nn.InvariantTanh(KEYS)),
        ("LayerNorm", _randomized(nn.LayerNorm(KEYS, 3, dtype=f64))),
        (
            "LayerNorm(mean=False)",
            _randomized(nn.LayerNorm(KEYS, 3, mean=False, dtype=f64)),
        ),
        ("InvariantLayerNorm", _randomized(nn.InvariantLayerNorm(KEYS, 3, dtype=f64))),
        (
            "EquivariantTransformation",
            nn.EquivariantTransformation(user_modules, KEYS, 3, 3),
        ),
        (
            "Sequential",
            nn.Sequential(
                KEYS,
                nn.EquivariantLinear(KEYS, 3, 4, dtype=f64),
                nn.InvariantSiLU(KEYS),
                _randomized(nn.InvariantLayerNorm(KEYS, 4, dtype=f64)),
                nn.EquivariantTransformation(
                    [torch.nn.Linear(4, 4, dtype=f64) for _ in range(len(KEYS))],
                    KEYS,
                    4,
                    4,
                ),
                nn.Linear(KEYS, 4, 2, dtype=f64),
            ),
        ),
        (
            "ModuleMap(custom module)",
            nn.ModuleMap(KEYS, [_Custom(), _Custom()]),
        ),
        (
            "ModuleMap(torch.nn.Linear)",
            nn.ModuleMap.from_module(KEYS, torch.nn.Linear(3, 2, dtype=f64)),
        ),
    ]


def _randomized(layer):
    """Give non-trivial values to the weight/bias of layer norms."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.copy_(torch.rand(parameter.shape, generator=generator) + 0.5)
    return layer


class _Custom(torch.nn.Module):
    """A module without gradient rule, going through forward-mode autodiff."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(
            torch.linspace(0.5, 1.5, 3, dtype=torch.float64)
        )

    def forward(self, x):
        return torch.exp(0.3 * x) * self.weight + x.sum(dim=-1, keepdim=True) ** 2


@pytest.mark.parametrize("name, layer", _layers(), ids=[n for n, _ in _layers()])
def test_gradients_match_autograd(name, layer):
    positions, strain = _inputs()
    output = layer(full_map(positions, strain))

    for key in range(len(KEYS)):

        def output_values(p, e, key=key):
            return layer(values_map(p, e)).block_by_id(key).values

        block = output.block_by_id(key)
        expected_values = output_values(positions, strain)
        torch.testing.assert_close(block.values, expected_values)

        jacobian = torch.autograd.functional.jacobian
        expected = jacobian(lambda p: output_values(p, strain), positions)
        torch.testing.assert_close(dense_positions_gradient(block), expected)

        expected = jacobian(lambda e: output_values(positions, e), strain)
        torch.testing.assert_close(dense_strain_gradient(block), expected)

        # gradient metadata is kept, properties follow the values
        gradient = block.gradient("positions")
        assert gradient.properties == block.properties
        assert (
            gradient.samples
            == full_map(positions, strain)
            .block_by_id(key)
            .gradient("positions")
            .samples
        )


@pytest.mark.parametrize(
    "name, layer",
    [_layers()[i] for i in (0, 3, 7, 10, 11)],
    ids=[_layers()[i][0] for i in (0, 3, 7, 10, 11)],
)
def test_gradients_match_finite_differences(name, layer):
    positions, strain = _inputs()
    output = layer(full_map(positions, strain))
    delta = 1e-6
    with torch.no_grad():
        for atom in range(N_ATOMS):
            for xyz in range(3):
                plus = positions.clone()
                plus[atom, xyz] += delta / 2
                minus = positions.clone()
                minus[atom, xyz] -= delta / 2
                out_plus = layer(values_map(plus, strain))
                out_minus = layer(values_map(minus, strain))
                for key in range(len(KEYS)):
                    finite = (
                        out_plus.block_by_id(key).values
                        - out_minus.block_by_id(key).values
                    ) / delta
                    dense = dense_positions_gradient(output.block_by_id(key))
                    torch.testing.assert_close(
                        dense[..., atom, xyz], finite, rtol=1e-5, atol=1e-7
                    )


def test_linear_bias_not_in_gradients():
    # reference bug S1: the bias was added to gradients
    positions, strain = _inputs()
    tensor = full_map(positions, strain)
    linear = nn.Linear(KEYS, 3, 2, dtype=torch.float64)
    with torch.no_grad():
        for module in linear.module_map.module_list:
            module.bias.fill_(10.0)
    output = linear(tensor)
    for key in range(len(KEYS)):
        weight = linear.module_map.module_list[key].weight
        for parameter in ["positions", "strain"]:
            gradient = tensor.block_by_id(key).gradient(parameter).values
            torch.testing.assert_close(
                output.block_by_id(key).gradient(parameter).values,
                gradient @ weight.T,
            )


def test_zero_gradients_stay_zero():
    positions, strain = _inputs()
    tensor = full_map(positions, strain)
    blocks = []
    for block in tensor.blocks():
        new = TensorBlock(
            block.values, block.samples, block.components, block.properties
        )
        gradient = block.gradient("positions")
        new.add_gradient(
            "positions",
            TensorBlock(
                torch.zeros_like(gradient.values),
                gradient.samples,
                gradient.components,
                gradient.properties,
            ),
        )
        blocks.append(new)
    tensor = TensorMap(tensor.keys, blocks)
    for _, layer in _layers():
        output = layer(tensor)
        for block in output.blocks():
            assert torch.all(block.gradient("positions").values == 0)


@pytest.mark.parametrize("index", [0, 10, 12])
def test_backpropagation_through_gradients(index):
    # training on gradients (e.g. forces) needs derivatives of the gradient
    # blocks with respect to the parameters
    positions, strain = _inputs()
    name, layer = _layers()[index]

    output = layer(full_map(positions, strain))
    loss = sum(
        (block.gradient("positions").values ** 2).sum() for block in output.blocks()
    )
    parameters = list(layer.parameters())
    ours = torch.autograd.grad(loss, parameters, allow_unused=True)

    def dense_loss():
        total = 0.0
        for key in range(len(KEYS)):
            jacobian = torch.autograd.functional.jacobian(
                lambda p, key=key: layer(values_map(p, strain)).block_by_id(key).values,
                positions,
                create_graph=True,
            )
            total = total + (jacobian**2).sum()
        return total

    expected = torch.autograd.grad(dense_loss(), parameters, allow_unused=True)
    for parameter, a, b in zip(parameters, ours, expected):
        # biases do not enter gradients
        a = torch.zeros_like(parameter) if a is None else a
        b = torch.zeros_like(parameter) if b is None else b
        torch.testing.assert_close(a, b)
    assert any(a is not None and torch.any(a != 0) for a in ours)


def test_gradients_of_gradients():
    positions, strain = _inputs()
    block = full_map(positions, strain).block_by_id(0)
    inner = block.gradient("strain")
    module_map = nn.ModuleMap.from_module(
        Labels.range("o3_lambda", 1), torch.nn.Linear(3, 3, dtype=torch.float64)
    )

    # the core classes do not allow gradients of gradients, use stand-ins
    class _Gradient:
        samples = inner.samples
        values = inner.values

        def gradients_list(self):
            return ["positions"]

    class _Block:
        values = block.values

        def gradients_list(self):
            return ["strain"]

        def gradient(self, parameter):
            return _Gradient()

    class _Tensor:
        keys = Labels.range("o3_lambda", 1)

        def block_by_id(self, index):
            return _Block()

    with pytest.raises(NotImplementedError, match="gradients of gradients"):
        module_map(_Tensor())
