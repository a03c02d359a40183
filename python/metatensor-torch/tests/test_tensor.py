import copy
import math
from typing import Dict, List

import pytest
import torch

import metatensor_torch as mtt
from metatensor_torch import Labels, LabelsEntry, TensorBlock, TensorMap


def _block(samples, properties, value, gradient=True):
    n = len(samples)
    block = TensorBlock(
        values=torch.full((n, 1, len(properties)), float(value), dtype=torch.float64),
        samples=Labels(["s"], torch.tensor(samples).reshape(-1, 1)),
        components=[Labels.range("c", 1)],
        properties=Labels(["p"], torch.tensor(properties).reshape(-1, 1)),
    )
    if gradient:
        g = TensorBlock(
            values=torch.full(
                (2, 1, len(properties)), 10.0 + value, dtype=torch.float64
            ),
            samples=Labels(["sample", "atom"], torch.tensor([[0, 0], [n - 1, 1]])),
            components=[Labels.range("c", 1)],
            properties=block.properties,
        )
        block.add_gradient("g", g)
    return block


def tensor_map():
    keys = Labels(["k1", "k2"], torch.tensor([[0, 0], [1, 0], [2, 2], [2, 3]]))
    blocks = [
        _block([0, 2, 4], [0], 1),
        _block([0, 1, 3], [3, 4, 5], 2),
        _block([0, 1], [0, 1], 3),
        _block([2, 3], [0, 1], 4),
    ]
    tensor = TensorMap(keys, blocks)
    tensor.set_info("unit", "eV")
    return tensor


def test_basic():
    tensor = tensor_map()
    assert len(tensor) == 4
    assert tensor.keys.names == ["k1", "k2"]
    assert tensor.sample_names == ["s"]
    assert tensor.component_names == ["c"]
    assert tensor.property_names == ["p"]
    assert tensor.dtype == torch.float64
    assert tensor.device == torch.device("cpu")
    assert tensor.get_info("unit") == "eV"
    assert tensor.get_info("x") is None
    assert tensor.info() == {"unit": "eV"}
    assert not tensor.is_view

    empty = TensorMap(Labels.empty("k"), [])
    assert empty.sample_names == []
    assert empty.dtype == torch.get_default_dtype()
    assert len(empty.blocks()) == 0


def test_errors():
    keys = Labels.range("k", 2)
    block = _block([0], [0], 1, gradient=False)
    with pytest.raises(TypeError, match="`keys` must be metatensor Labels"):
        TensorMap("k", [block])
    with pytest.raises(TypeError, match="`blocks` elements must be metatensor"):
        TensorMap(keys, [block, "b"])
    with pytest.raises(
        ValueError,
        match=r"same number of blocks as the number of entries in the keys \(2\)",
    ):
        TensorMap(keys, [block])
    with pytest.raises(ValueError, match="different dtypes"):
        TensorMap(keys, [block, block.to(torch.float32)])
    with pytest.raises(ValueError, match="keys and blocks must be on the same device"):
        TensorMap(keys, [block.to("meta"), block.to("meta")])
    other = TensorBlock(
        torch.zeros((1, 1)), Labels.range("t", 1), [], Labels.range("p", 1)
    ).to(torch.float64)
    with pytest.raises(
        ValueError, match=r"same sample dimensions, got \[t\] and \[s\]"
    ):
        TensorMap(keys, [block, other])
    with pytest.raises(ValueError, match="same set of gradients"):
        TensorMap(keys, [block, _block([0], [0], 1)])


def test_print():
    tensor = tensor_map()
    expected = """TensorMap with 4 blocks
    keys: [k1, k2]
    blocks:
       0  0   => TensorBlock with shape (3, 1, 1)
       1  0   => TensorBlock with shape (3, 1, 3)
       2  2   => TensorBlock with shape (2, 1, 2)
       2  3   => TensorBlock with shape (2, 1, 2)"""
    assert repr(tensor) == expected
    assert str(tensor) == expected
    truncated = tensor.print(2)
    assert truncated.split("\n")[-1] == "       " + " " * 6 + "..."
    single = TensorMap(Labels.range("k", 1), [_block([0], [0], 1)])
    assert str(single).startswith("TensorMap with 1 block\n")


def test_block_selection():
    tensor = tensor_map()
    assert tensor.block(1).values[0, 0, 0] == 2
    assert tensor.block_by_id(-1).values[0, 0, 0] == 4
    assert tensor[2].values[0, 0, 0] == 3
    assert tensor.block({"k1": 1}).values[0, 0, 0] == 2
    assert tensor.block({"k1": 2, "k2": 3}).values[0, 0, 0] == 4
    assert tensor.block(tensor.keys[3]).values[0, 0, 0] == 4
    selection = Labels(["k2"], torch.tensor([[2]]))
    assert tensor.block(selection).values[0, 0, 0] == 3
    assert tensor.block(1).is_view
    with pytest.raises(ValueError, match="cannot add gradient on this block"):
        tensor.block(1).add_gradient("other", tensor.block(1).gradient("g").copy())

    with pytest.raises(
        IndexError,
        match="block index out of bounds: we have 4 blocks but the index is 4",
    ):
        tensor.block(4)
    with pytest.raises(
        ValueError, match=r"could not find blocks matching the selection \(k1=7\)"
    ):
        tensor.block({"k1": 7})
    with pytest.raises(
        ValueError, match=r"got more than one matching block for \(k1=2\)"
    ):
        tensor.block({"k1": 2})
    with pytest.raises(
        ValueError, match="there is more than one block in this TensorMap"
    ):
        tensor.block()
    with pytest.raises(ValueError, match="there is no block in this TensorMap"):
        TensorMap(Labels.empty("k"), []).block()
    with pytest.raises(RuntimeError, match="'x' in selection is not part of these"):
        tensor.block({"x": 1})
    with pytest.raises(TypeError, match="expected integer values in selection"):
        tensor.block({"k1": 1.0})
    with pytest.raises(TypeError, match="invalid type for block selection"):
        tensor.block("k1")

    assert len(tensor.blocks()) == 4
    assert len(tensor.blocks({"k1": 2})) == 2
    assert len(tensor.blocks({"k1": 8})) == 0
    assert [b.values[0, 0, 0].item() for b in tensor.blocks([3, 0])] == [4, 1]
    assert len(tensor.blocks(2)) == 1
    assert len(tensor.blocks(Labels(["k1"], torch.tensor([[1], [2]])))) == 3

    # iteration
    assert len([block for block in tensor]) == 4
    keys = [tuple(key) for key, _ in tensor.items()]
    assert keys == [(0, 0), (1, 0), (2, 2), (2, 3)]


def test_keys_to_samples():
    tensor = tensor_map()
    moved = tensor.keys_to_samples("k2")
    assert moved.keys.names == ["k1"]
    assert moved.keys.values.tolist() == [[0], [1], [2]]
    assert moved.get_info("unit") == "eV"
    block = moved.block(2)
    assert block.samples.names == ["s", "k2"]
    assert block.samples.values.tolist() == [[0, 2], [1, 2], [2, 3], [3, 3]]
    assert block.properties.values.tolist() == [[0], [1]]
    assert block.values[:, 0, :].tolist() == [[3, 3], [3, 3], [4, 4], [4, 4]]
    gradient = block.gradient("g")
    assert gradient.samples.values.tolist() == [[0, 0], [1, 1], [2, 0], [3, 1]]
    assert gradient.values[:, 0, 0].tolist() == [13, 13, 14, 14]

    moved = tensor.keys_to_samples(["k1", "k2"], sort_samples=False)
    block = moved.block()
    assert moved.keys.names == ["_"]
    assert block.samples.names == ["s", "k1", "k2"]
    assert block.samples.values[:3].tolist() == [[0, 0, 0], [2, 0, 0], [4, 0, 0]]
    assert block.properties.values.tolist() == [[0], [3], [4], [5], [1]]
    # fill value for missing entries
    assert block.values[0, 0, 1] == 0
    filled = tensor.keys_to_samples(("k1", "k2"), fill_value=float("nan")).block()
    assert math.isnan(filled.values[0, 0, 1].item())

    with pytest.raises(ValueError, match="'zz' is not part of the keys"):
        tensor.keys_to_samples("zz")
    with pytest.raises(ValueError, match="there are no keys to move in an empty"):
        TensorMap(Labels.empty("k"), []).keys_to_samples("k")


def test_keys_to_existing_dimension():
    tensor = tensor_map()
    renamed = TensorMap(
        Labels(["s", "p"], tensor.keys.values), [b.copy() for b in tensor.blocks()]
    )
    message = "can not move 's' to the samples, there is already a sample dimension"
    with pytest.raises(ValueError, match=message):
        renamed.keys_to_samples("s")
    message = "can not move 'p' to the properties, there is already a property dim"
    with pytest.raises(ValueError, match=message):
        renamed.keys_to_properties("p")


def test_keys_to_samples_empty_block():
    # a block without samples (e.g. no atom of one type in a structure)
    properties = Labels(["p"], torch.tensor([[0], [1]]))
    components = [Labels(["c"], torch.tensor([[0], [1], [2]]))]
    blocks = [
        TensorBlock(
            torch.ones(n_samples, 3, 2),
            Labels(["s"], torch.arange(n_samples).reshape(-1, 1)),
            components,
            properties,
        )
        for n_samples in [2, 0]
    ]
    tensor = TensorMap(Labels(["k"], torch.tensor([[0], [1]])), blocks)
    for moved in [tensor.keys_to_samples("k"), tensor.keys_to_properties("k")]:
        block = moved.block()
        assert block.values.shape[1] == 3

    block = tensor.keys_to_samples("k").block()
    assert block.samples.values.tolist() == [[0, 0], [1, 0]]
    assert torch.all(block.values == 1)


def test_keys_to_properties():
    tensor = tensor_map()
    moved = tensor.keys_to_properties("k1")
    assert moved.keys.names == ["k2"]
    assert moved.keys.values.tolist() == [[0], [2], [3]]
    block = moved.block(0)
    assert block.properties.names == ["k1", "p"]
    assert block.properties.values.tolist() == [[0, 0], [1, 3], [1, 4], [1, 5]]
    assert block.samples.values.tolist() == [[0], [1], [2], [3], [4]]
    expected = [
        [1, 2, 2, 2],
        [0, 2, 2, 2],
        [1, 0, 0, 0],
        [0, 2, 2, 2],
        [1, 0, 0, 0],
    ]
    assert block.values[:, 0, :].tolist() == expected
    gradient = block.gradient("g")
    assert gradient.samples.names == ["sample", "atom"]
    assert gradient.values.shape[-1] == 4

    unsorted = tensor.keys_to_properties("k1", sort_samples=False).block(0)
    assert unsorted.samples.values.tolist() == [[0], [2], [4], [1], [3]]

    # with explicit values
    selection = Labels(["k2"], torch.tensor([[3], [2]]))
    moved = tensor.keys_to_properties(selection)
    block = moved.block(0)
    assert block.properties.values.tolist() == [[3, 0], [3, 1], [2, 0], [2, 1]]
    assert block.values[:, 0, :].tolist() == [
        [0, 0, 3, 3],
        [0, 0, 3, 3],
        [4, 4, 0, 0],
        [4, 4, 0, 0],
    ]


def test_components_to_properties():
    tensor = tensor_map()
    moved = tensor.components_to_properties("c")
    block = moved.block(1)
    assert block.components == []
    assert block.properties.names == ["c", "p"]
    assert block.values.shape == (3, 3)
    assert block.gradient("g").values.shape == (2, 3)
    with pytest.raises(ValueError, match="unable to find 'zz' in the components"):
        tensor.components_to_properties(["zz"])

    values = torch.arange(2 * 3 * 4 * 5, dtype=torch.float64).reshape(2, 3, 4, 5)
    block = TensorBlock(
        values,
        Labels.range("s", 2),
        [Labels.range("a", 3), Labels.range("b", 4)],
        Labels.range("p", 5),
    )
    tensor = TensorMap(Labels.range("k", 1), [block])
    moved = tensor.components_to_properties("a").block()
    assert moved.properties.names == ["a", "p"]
    assert torch.equal(moved.values, values.permute(0, 2, 1, 3).reshape(2, 4, 15))
    moved = tensor.components_to_properties(["b", "a"]).block()
    assert moved.properties.names == ["a", "b", "p"]


def test_copy_and_to():
    tensor = tensor_map()
    deep = tensor.copy()
    assert deep.get_info("unit") == "eV"
    assert deep.block(0).values.data_ptr() != tensor.block(0).values.data_ptr()
    shallow = tensor.copy(deep=False)
    assert shallow.block(0).values.data_ptr() == tensor.block(0).values.data_ptr()
    assert copy.deepcopy(tensor).block(1).gradient("g").values.data_ptr() != (
        tensor.block(1).gradient("g").values.data_ptr()
    )

    moved = tensor.to(torch.float32)
    assert moved.dtype == torch.float32
    assert moved.block(0).gradient("g").dtype == torch.float32
    assert moved.get_info("unit") == "eV"
    meta = tensor.to(device="meta")
    assert meta.device.type == "meta"
    assert meta.block(3).device.type == "meta"
    assert "TensorMap with 4 blocks" in str(meta)
    with pytest.raises(
        ValueError, match="can not give a device twice in `TensorMap.to`"
    ):
        tensor.to("cpu", "meta")


def test_conversions():
    import metatensor

    tensor = tensor_map()
    core = mtt.to_core(tensor)
    assert isinstance(core, metatensor.TensorMap)
    assert core.block(0).values is tensor.block(0).values
    assert core.info() == {"unit": "eV"}
    back = mtt.from_core(core)
    assert isinstance(back, TensorMap)
    assert back.block(0).values is tensor.block(0).values
    assert back.keys == tensor.keys
    assert back.get_info("unit") == "eV"

    numpy_core = core.to(arrays="numpy")
    converted = mtt.from_core(numpy_core)
    assert converted.block(1).gradient("g").values.dtype == torch.float64
    assert torch.equal(converted.block(1).values, tensor.block(1).values)

    labels = mtt.from_core(metatensor.Labels.range("a", 3))
    assert isinstance(labels, Labels)
    assert labels.values.dtype == torch.int32
    assert isinstance(mtt.to_core(labels), metatensor.Labels)
    block = mtt.from_core(core.block(1))
    assert isinstance(block, TensorBlock)
    assert isinstance(mtt.to_core(block), metatensor.TensorBlock)
    with pytest.raises(TypeError):
        mtt.from_core(3)
    with pytest.raises(TypeError):
        mtt.to_core(3)


class TensorWrapper:
    def __init__(self, tensor: TensorMap):
        self.tensor = tensor

    def run(self) -> Dict[str, str]:
        tensor = self.tensor
        blocks: List[TensorBlock] = []
        for key, block in tensor.items():
            assert isinstance(key, LabelsEntry)
            blocks.append(block.copy())
        new = TensorMap(tensor.keys, blocks)
        selection: Dict[str, int] = {"k1": 2}
        assert len(new.blocks(selection)) == 2
        assert len(new.blocks([0, 1])) == 2
        assert new.block(0).values.shape[0] == 3
        assert new.block(new.keys.entry(1)).values.shape[0] == 3
        new.set_info("a", "b")
        result = new.info()
        result["samples"] = str(new.keys_to_samples("k2"))
        result["properties"] = str(new.keys_to_properties(["k1"]))
        result["components"] = str(new.components_to_properties("c"))
        result["to"] = new.to(torch.float32).__repr__()
        result["names"] = ",".join(new.sample_names + new.property_names)
        return result


def test_script():
    wrapper = torch.jit.script(TensorWrapper)
    result = wrapper(tensor_map()).run()
    assert result["a"] == "b"
    assert "unit" not in result
    assert result["samples"] == str(tensor_map().keys_to_samples("k2"))
    assert result["properties"] == str(tensor_map().keys_to_properties("k1"))


def test_scoping_regression():
    # variables defined in scripted loops over blocks (upstream issue 349)
    @torch.jit.script
    def total(tensor: TensorMap) -> torch.Tensor:
        result = torch.zeros(1, dtype=torch.float64)
        for block in tensor.blocks():
            result = result + block.values.sum()
        return result

    assert total(tensor_map()).item() == pytest.approx(3 + 18 + 12 + 16)
