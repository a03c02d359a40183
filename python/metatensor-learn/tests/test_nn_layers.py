"""The ready-made layers of metatensor.learn.nn: constructor checks, values,
state_dict."""

import copy

import pytest


torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402

import metatensor  # noqa: E402
from metatensor import Labels, TensorBlock, TensorMap  # noqa: E402
from metatensor_learn import nn  # noqa: E402


KEYS = Labels(["o3_lambda", "o3_sigma"], np.array([[0, 1], [1, 1], [0, -1]]))


def _tensor(n_properties=4, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    blocks = []
    for o3_lambda, _ in KEYS.values.tolist():
        n_components = 2 * o3_lambda + 1
        values = torch.randn(
            5, n_components, n_properties, generator=generator, dtype=dtype
        )
        blocks.append(
            TensorBlock(
                values,
                Labels.range("sample", 5),
                [Labels.range("o3_mu", n_components)],
                Labels.range("n", n_properties),
            )
        )
    return TensorMap(KEYS, blocks)


def test_parameter_checks():
    message = (
        "`in_features` must have same length as `in_keys`, but "
        "len\\(in_features\\) != len\\(in_keys\\) \\[2 != 3\\]"
    )
    with pytest.raises(ValueError, match=message):
        nn.Linear(KEYS, [4, 4], 3)

    message = (
        "`in_features` must be type <class 'int'> or List of <class 'int'>, "
        "but not <class 'float'>."
    )
    with pytest.raises(TypeError, match=message):
        nn.Linear(KEYS, 4.0, 3)

    with pytest.raises(TypeError, match="List of <class 'int'>, but the list"):
        nn.Linear(KEYS, [4, 4, "4"], 3)

    with pytest.raises(TypeError, match="`bias` must be type <class 'bool'>"):
        nn.Linear(KEYS, 4, 3, bias=1)

    message = "If `out_features` is not provided, `out_properties` must be provided."
    with pytest.raises(ValueError, match=message):
        nn.Linear(KEYS, 4)
    with pytest.raises(ValueError, match=message):
        nn.EquivariantTransformation([torch.nn.Identity()] * 3, KEYS, 4)

    # types are strict
    with pytest.raises(TypeError, match="`eps` must be type <class 'float'>"):
        nn.LayerNorm(KEYS, 4, eps=1)

    with pytest.raises(TypeError, match="`in_keys` must be a `Labels` object."):
        nn.Sequential([1, 2], nn.Linear(KEYS, 4, 3))

    with pytest.raises(TypeError, match="`in_keys` must be a `Labels` object."):
        nn.Linear("keys", 4, 3)


def test_linear():
    tensor = _tensor()
    out_properties = [Labels.range("out", 3) for _ in range(len(KEYS))]
    linear = nn.Linear(KEYS, 4, out_properties=out_properties, dtype=torch.float64)
    output = linear(tensor)
    for i, block in enumerate(output.blocks()):
        module = linear.module_map.module_list[i]
        assert isinstance(module, torch.nn.Linear)
        torch.testing.assert_close(block.values, module(tensor.block_by_id(i).values))
        assert block.properties == Labels.range("out", 3)

    linear = nn.Linear(KEYS, [4, 4, 4], [1, 2, 3], bias=[True, False, True])
    assert linear.module_map.module_list[1].bias is None
    assert linear.module_map.module_list[2].out_features == 3

    with pytest.raises(ValueError, match="do not match for key 0"):
        nn.Linear(KEYS, 4, 2, out_properties=out_properties)


def test_equivariant_linear_bias():
    linear = nn.EquivariantLinear(KEYS, 4, 3)
    biases = [module.bias for module in linear.module_map.module_list]
    assert biases[0] is not None
    assert biases[1] is None
    assert biases[2] is None

    invariant_keys = Labels(["o3_lambda"], np.array([[0]]))
    linear = nn.EquivariantLinear(KEYS, 4, 3, invariant_keys=invariant_keys)
    biases = [module.bias for module in linear.module_map.module_list]
    assert biases[0] is not None and biases[2] is not None and biases[1] is None

    # `bias` lists have one entry per invariant key
    linear = nn.EquivariantLinear(
        KEYS, 4, 3, invariant_keys=invariant_keys, bias=[False, True]
    )
    biases = [module.bias for module in linear.module_map.module_list]
    assert biases[0] is None and biases[2] is not None

    message = "len\\(bias\\) != len\\(invariant_keys\\) \\[3 != 2\\]"
    with pytest.raises(ValueError, match=message):
        nn.EquivariantLinear(KEYS, 4, 3, invariant_keys=invariant_keys, bias=[True] * 3)

    # the invariant keys dimensions must exist
    with pytest.raises(metatensor.MetatensorError):
        nn.EquivariantLinear(Labels.range("key", 3), 4, 3)


@pytest.mark.parametrize(
    "layer, function",
    [
        (nn.ReLU, torch.relu),
        (nn.SiLU, torch.nn.functional.silu),
        (nn.Tanh, torch.tanh),
    ],
)
def test_activations(layer, function):
    tensor = _tensor()
    output = layer(KEYS)(tensor)
    for block, out in zip(tensor.blocks(), output.blocks()):
        torch.testing.assert_close(out.values, function(block.values))
        assert out.properties == Labels.range("_", 4)

    # a single Labels for out_properties (reference bug S2) or a list
    output = layer(KEYS, out_properties=Labels.range("p", 4))(tensor)
    assert output.block(0).properties == Labels.range("p", 4)
    output = layer(KEYS, out_properties=[Labels.range("q", 4)] * 3)(tensor)
    assert output.block(2).properties == Labels.range("q", 4)

    # empty maps are fine (reference bug S5: IndexError)
    empty = TensorMap(Labels.empty(KEYS.names), [])
    assert len(layer(KEYS)(empty)) == 0


@pytest.mark.parametrize(
    "layer, function",
    [
        (nn.InvariantReLU, torch.relu),
        (nn.InvariantSiLU, torch.nn.functional.silu),
        (nn.InvariantTanh, torch.tanh),
    ],
)
def test_invariant_activations(layer, function):
    tensor = _tensor()
    output = layer(KEYS)(tensor)
    torch.testing.assert_close(
        output.block_by_id(0).values, function(tensor.block_by_id(0).values)
    )
    torch.testing.assert_close(
        output.block_by_id(1).values, tensor.block_by_id(1).values
    )
    torch.testing.assert_close(
        output.block_by_id(2).values, tensor.block_by_id(2).values
    )

    invariant_keys = Labels(["o3_lambda"], np.array([[0]]))
    output = layer(KEYS, invariant_keys=invariant_keys)(tensor)
    torch.testing.assert_close(
        output.block_by_id(2).values, function(tensor.block_by_id(2).values)
    )


def test_relu_in_place():
    tensor = _tensor()
    values = tensor.block_by_id(0).values.clone()
    nn.ReLU(KEYS, in_place=True)(tensor)
    torch.testing.assert_close(tensor.block_by_id(0).values, torch.relu(values))


def test_layer_norm_matches_torch():
    tensor = _tensor()
    layer = nn.LayerNorm(KEYS, 4, dtype=torch.float64)
    with torch.no_grad():
        for module in layer.module_map.module_list:
            module.weight.uniform_()
            module.bias.uniform_()
    output = layer(tensor)
    for i, block in enumerate(tensor.blocks()):
        module = layer.module_map.module_list[i]
        shape = block.values.shape[1:]
        reference = torch.nn.LayerNorm(shape, dtype=torch.float64)
        with torch.no_grad():
            reference.weight.copy_(module.weight.expand(shape))
            reference.bias.copy_(module.bias.expand(shape))
        torch.testing.assert_close(
            output.block_by_id(i).values, reference(block.values)
        )


def test_layer_norm_options():
    tensor = _tensor()
    values = tensor.block_by_id(1).values.clone()

    # reference bug S3: mean=False modified the input in place
    layer = nn.LayerNorm(KEYS, 4, mean=False, dtype=torch.float64)
    output = layer(tensor)
    torch.testing.assert_close(tensor.block_by_id(1).values, values)

    variance = values.var(dim=(1, 2), unbiased=False, keepdim=True)
    torch.testing.assert_close(
        output.block_by_id(1).values, values / torch.sqrt(variance + 1e-5)
    )

    layer = nn.LayerNorm(KEYS, 4, elementwise_affine=False)
    assert len(list(layer.parameters())) == 0
    layer = nn.LayerNorm(KEYS, 4, bias=False)
    assert [name for name, _ in layer.named_parameters()] == [
        f"module_map.module_list.{i}.weight" for i in range(3)
    ]
    layer = nn.LayerNorm(KEYS, [4, 4, 4], eps=[1e-5, 1e-3, 1e-1])
    assert layer.module_map.module_list[2].eps == 1e-1

    # per-sample normalisation: changing one sample changes only its output
    layer = nn.LayerNorm(KEYS, 4, dtype=torch.float64)
    first = layer(tensor).block_by_id(0).values
    changed = tensor.block_by_id(0).values.clone()
    changed[0] *= 3.0
    changed_tensor = TensorMap(
        Labels.range("key", 1),
        [
            TensorBlock(
                changed,
                tensor.block_by_id(0).samples,
                tensor.block_by_id(0).components,
                tensor.block_by_id(0).properties,
            )
        ],
    )
    layer = nn.LayerNorm(Labels.range("key", 1), 4, dtype=torch.float64)
    second = layer(changed_tensor).block_by_id(0).values
    torch.testing.assert_close(first[1:], second[1:])


def test_invariant_layer_norm():
    tensor = _tensor()
    layer = nn.InvariantLayerNorm(KEYS, 4, dtype=torch.float64)
    output = layer(tensor)
    torch.testing.assert_close(
        output.block_by_id(1).values, tensor.block_by_id(1).values
    )
    assert isinstance(layer.module_map.module_list[1], torch.nn.Identity)
    values = output.block_by_id(0).values
    torch.testing.assert_close(
        values.mean(dim=(1, 2)), torch.zeros(5, dtype=torch.float64)
    )

    invariant_keys = Labels(["o3_lambda"], np.array([[0]]))
    message = "len\\(in_features\\) != len\\(invariant_keys\\) \\[3 != 2\\]"
    with pytest.raises(ValueError, match=message):
        nn.InvariantLayerNorm(KEYS, [4, 4, 4], invariant_keys=invariant_keys)


def test_equivariant_transformation():
    tensor = _tensor()
    modules = [torch.nn.Linear(4, 4, dtype=torch.float64) for _ in range(3)]
    layer = nn.EquivariantTransformation(modules, KEYS, 4, 4)
    output = layer(tensor)
    torch.testing.assert_close(
        output.block_by_id(0).values, modules[0](tensor.block_by_id(0).values)
    )
    values = tensor.block_by_id(1).values
    norm = torch.linalg.vector_norm(values, dim=1, keepdim=True)
    torch.testing.assert_close(output.block_by_id(1).values, modules[1](norm) * values)

    with pytest.raises(ValueError, match="`modules` must have same length"):
        nn.EquivariantTransformation(modules[:2], KEYS, 4, 4)


def test_sequential():
    tensor = _tensor()
    linear_1 = nn.Linear(KEYS, 4, 3, dtype=torch.float64)
    tanh = nn.Tanh(KEYS)
    out_properties = [Labels.range("energy", 1)] * 3
    linear_2 = nn.Linear(KEYS, 3, out_properties=out_properties, dtype=torch.float64)
    model = nn.Sequential(KEYS, linear_1, tanh, linear_2)
    output = model(tensor)
    expected = linear_2(tanh(linear_1(tensor)))
    for block, reference in zip(output.blocks(), expected.blocks()):
        torch.testing.assert_close(block.values, reference.values)
        assert block.properties == Labels.range("energy", 1)

    # parameters are shared with the layers
    assert model.module_map.module_list[0][0] is linear_1.module_map.module_list[0]
    names = [name for name, _ in model.named_parameters()]
    assert names[:2] == [
        "module_map.module_list.0.0.weight",
        "module_map.module_list.0.0.bias",
    ]

    # bare ModuleMap are accepted (reference bug S5), keys are matched by value
    reversed_keys = Labels(KEYS.names, KEYS.values[::-1].copy())
    module_map = nn.ModuleMap(
        reversed_keys, [torch.nn.Linear(3, 2, dtype=torch.float64) for _ in range(3)]
    )
    model = nn.Sequential(KEYS, linear_1, module_map)
    output = model(tensor)
    expected = module_map(linear_1(tensor))
    for block, reference in zip(output.blocks(), expected.blocks()):
        torch.testing.assert_close(block.values, reference.values)

    with pytest.raises(TypeError, match="must be `ModuleMap` or metatensor.learn"):
        nn.Sequential(KEYS, torch.nn.Linear(3, 3))

    missing = nn.Linear(Labels(KEYS.names, KEYS.values[:2]), 4, 3)
    with pytest.raises(ValueError, match="is missing from the keys of layer 1"):
        nn.Sequential(KEYS, linear_1, missing)


@pytest.mark.parametrize(
    "layer",
    [
        nn.Linear(KEYS, 4, 3),
        nn.EquivariantLinear(KEYS, 4, 3),
        nn.ReLU(KEYS),
        nn.InvariantSiLU(KEYS),
        nn.LayerNorm(KEYS, 4),
        nn.InvariantLayerNorm(KEYS, 4),
        nn.EquivariantTransformation([torch.nn.Linear(4, 4)] * 3, KEYS, 4, 4),
        nn.Sequential(KEYS, nn.Linear(KEYS, 4, 3), nn.Tanh(KEYS)),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_state_dict_round_trip(layer):
    state = layer.state_dict()
    assert state["module_map._extra_state"]["_in_keys"][0] == "metatensor.Labels"
    parameters = {name for name, _ in layer.named_parameters()}
    assert parameters <= set(state.keys())

    other = copy.deepcopy(layer)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(1.0)
    other.load_state_dict(state)
    for (name, a), (_, b) in zip(layer.named_parameters(), other.named_parameters()):
        assert torch.equal(a, b), name

    tensor = _tensor(dtype=torch.float32)
    for a, b in zip(layer(tensor).blocks(), other(tensor).blocks()):
        torch.testing.assert_close(a.values, b.values)


def test_to_dtype():
    layer = nn.Sequential(
        KEYS, nn.EquivariantLinear(KEYS, 4, 3), nn.InvariantLayerNorm(KEYS, 3)
    )
    layer = layer.to(torch.float64)
    output = layer(_tensor(dtype=torch.float64))
    assert output.block(0).values.dtype == torch.float64
