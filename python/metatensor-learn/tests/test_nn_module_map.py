"""metatensor.learn.nn.ModuleMap"""

import pytest


torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402

import metatensor  # noqa: E402
from metatensor import Labels, TensorMap  # noqa: E402
from metatensor_learn.nn import ModuleMap  # noqa: E402


@pytest.fixture
def tensor(data_dir):
    tensor = metatensor.load(data_dir / "qm7-spherical-expansion.mts")
    tensor = tensor.to(arrays="torch")
    # a few blocks are enough
    return metatensor.slice(
        TensorMap(
            Labels(tensor.keys.names, tensor.keys.values[:4]),
            [tensor.block_by_id(i) for i in range(4)],
        ),
        "samples",
        Labels(["system"], np.array([[0], [1]], dtype=np.int32)),
    )


def _modules(tensor, out_features=2):
    torch.manual_seed(0)
    return [
        torch.nn.Linear(block.values.shape[-1], out_features, dtype=torch.float64)
        for block in tensor.blocks()
    ]


@pytest.mark.parametrize("with_properties", [False, True])
def test_forward(tensor, with_properties):
    modules = _modules(tensor)
    out_properties = None
    if with_properties:
        out_properties = [Labels.range("out", 2) for _ in range(len(tensor))]
    module_map = ModuleMap(tensor.keys, modules, out_properties)
    output = module_map(tensor)

    assert output.keys == tensor.keys
    for i, (block, out) in enumerate(zip(tensor.blocks(), output.blocks())):
        torch.testing.assert_close(out.values, modules[i](block.values))
        assert out.samples == block.samples
        assert out.components == block.components
        if with_properties:
            assert out.properties == Labels.range("out", 2)
        else:
            assert out.properties == Labels.range("_", 2)

        # gradients get the weights, not the bias (reference bug S1)
        weight = modules[i].weight
        for parameter in ["positions", "strain"]:
            gradient = block.gradient(parameter)
            out_gradient = out.gradient(parameter)
            torch.testing.assert_close(out_gradient.values, gradient.values @ weight.T)
            assert out_gradient.samples == gradient.samples
            assert out_gradient.components == gradient.components
            assert out_gradient.properties == out.properties


def test_subset_and_order_of_keys(tensor):
    module_map = ModuleMap(tensor.keys, _modules(tensor))
    order = [2, 0]
    subset = TensorMap(
        Labels(tensor.keys.names, tensor.keys.values[order]),
        [tensor.block_by_id(i) for i in order],
    )
    output = module_map(subset)
    assert output.keys == subset.keys
    for out, i in zip(output.blocks(), order):
        expected = module_map.module_list[i](tensor.block_by_id(i).values)
        torch.testing.assert_close(out.values, expected)


def test_missing_key(tensor):
    keys = Labels(tensor.keys.names, tensor.keys.values[:2])
    module_map = ModuleMap(keys, _modules(tensor)[:2])
    with pytest.raises(KeyError, match="not found in modules"):
        module_map(tensor)


def test_errors(tensor):
    message = (
        "in_keys and modules must match in length, but found 4 != 3 "
        "\\[len\\(in_keys\\) != len\\(modules\\)\\]"
    )
    with pytest.raises(ValueError, match=message):
        ModuleMap(tensor.keys, _modules(tensor)[:3])

    with pytest.raises(ValueError, match="out_properties and in_keys must match"):
        ModuleMap(tensor.keys, _modules(tensor), [Labels.range("p", 2)])

    with pytest.raises(TypeError, match="`in_keys` must be a `Labels` object."):
        ModuleMap([0, 1, 2, 3], _modules(tensor))

    # a single Labels is used for all keys
    module_map = ModuleMap(tensor.keys, _modules(tensor), Labels.range("p", 2))
    assert module_map.out_properties == [Labels.range("p", 2)] * 4


def test_spec_state_dict_example():
    module = ModuleMap(Labels.range("key", 1), [torch.nn.Identity()])
    module.register_buffer("lab", Labels.range("x", 2))
    module.register_buffer("tm", {"x": Labels.range("y", 3)})
    extra = module.state_dict()["_extra_state"]
    assert set(extra.keys()) == {"_in_keys", "lab", "tm"}
    assert extra["lab"][0] == "metatensor.Labels"
    assert extra["tm"]["x"][0] == "metatensor.Labels"


def test_from_module(tensor):
    module = torch.nn.Linear(4, 3, dtype=torch.float64)
    module_map = ModuleMap.from_module(tensor.keys, module)
    assert len(module_map.module_list) == len(tensor)
    with torch.no_grad():
        module_map.module_list[0].weight.fill_(1.0)
    assert not torch.all(module_map.module_list[1].weight == 1.0)
    assert not torch.all(module.weight == 1.0)
    assert module_map.in_keys == tensor.keys
    assert module_map.out_properties is None


def test_state_dict(tensor):
    out_properties = [Labels.range("out", 2) for _ in range(len(tensor))]
    module_map = ModuleMap(tensor.keys, _modules(tensor), out_properties)
    state = module_map.state_dict()
    assert set(state.keys()) == {"_mts_helper", "_extra_state"} | {
        f"module_list.{i}.{name}"
        for i in range(len(tensor))
        for name in ["weight", "bias"]
    }
    extra = state["_extra_state"]
    assert set(extra.keys()) == {"_in_keys", "_out_properties"}
    assert extra["_in_keys"][0] == "metatensor.Labels"
    assert isinstance(extra["_out_properties"], list)
    assert extra["_out_properties"][0][0] == "metatensor.Labels"

    # None out_properties are not saved
    module_map = ModuleMap(tensor.keys, _modules(tensor))
    assert set(module_map.state_dict()["_extra_state"].keys()) == {"_in_keys"}

    other = ModuleMap(
        Labels.range("x", len(tensor)), _modules(tensor, 2), out_properties
    )
    other.load_state_dict(state)
    assert other.in_keys == tensor.keys
    output = other(tensor)
    torch.testing.assert_close(
        output.block(0).values, module_map(tensor).block(0).values
    )


def test_to_dtype(tensor):
    module_map = ModuleMap(tensor.keys, _modules(tensor))
    module_map = module_map.to(torch.float32)
    output = module_map(tensor.to(dtype=torch.float32))
    assert output.block(0).values.dtype == torch.float32
    assert output.block(0).gradient("positions").values.dtype == torch.float32


def test_to_meta(tensor):
    out_properties = [Labels.range("out", 2) for _ in range(len(tensor))]
    module_map = ModuleMap(tensor.keys, _modules(tensor), out_properties)
    module_map = module_map.to("meta")
    assert module_map.in_keys.values.device.type == "meta"
    assert module_map.out_properties[0].values.device.type == "meta"

    for module in module_map.module_list:
        assert module.weight.device.type == "meta"

    # (core Labels on the meta device hold no data, so key lookups and thus
    # forward need data on a real device)


def test_empty_tensor():
    keys = Labels.range("key", 2)
    module_map = ModuleMap(keys, [torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)])
    empty = TensorMap(Labels.empty(["key"]), [])
    output = module_map(empty)
    assert len(output) == 0
    assert output.keys.names == ["key"]


def test_generic_module_without_gradients(tensor):
    tensor = metatensor.remove_gradients(tensor)

    class Square(torch.nn.Module):
        def forward(self, x):
            return x**2

    module_map = ModuleMap.from_module(tensor.keys, Square())
    output = module_map(tensor)
    for block, out in zip(tensor.blocks(), output.blocks()):
        torch.testing.assert_close(out.values, block.values**2)
        assert out.properties == Labels.range("_", block.values.shape[-1])


def test_core_flavour_is_not_scriptable():
    keys = Labels.range("key", 1)
    module_map = ModuleMap(keys, [torch.nn.Linear(2, 2)])
    with pytest.warns(DeprecationWarning):
        with pytest.raises(Exception):  # noqa: B017 - any compilation error
            torch.jit.script(module_map)
