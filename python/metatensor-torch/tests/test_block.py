import copy
import pickle
from typing import List, Tuple

import pytest
import torch

from metatensor_torch import Labels, TensorBlock


def _block(dtype=torch.float64):
    block = TensorBlock(
        values=torch.arange(12, dtype=dtype).reshape(3, 2, 2),
        samples=Labels("s", torch.tensor([[0], [2], [4]])),
        components=[Labels.range("c", 2)],
        properties=Labels(["p"], torch.tensor([[3], [4]])),
    )
    gradient = TensorBlock(
        values=torch.ones((2, 3, 2, 2), dtype=dtype),
        samples=Labels(["sample", "g"], torch.tensor([[0, 1], [2, 1]])),
        components=[Labels.range("xyz", 3), Labels.range("c", 2)],
        properties=block.properties,
    )
    block.add_gradient("g", gradient)
    return block


def test_constructor():
    block = _block()
    assert block.values.shape == (3, 2, 2)
    assert block.shape == [3, 2, 2]
    assert len(block) == 3
    assert block.samples.names == ["s"]
    assert len(block.components) == 1
    assert block.properties.names == ["p"]
    assert block.dtype == torch.float64
    assert block.device == torch.device("cpu")
    assert not block.is_view


def test_constructor_errors():
    samples = Labels.range("s", 3)
    properties = Labels.range("p", 2)
    with pytest.raises(TypeError, match="`samples` must be metatensor Labels"):
        TensorBlock(torch.zeros((3, 2)), "s", [], properties)
    with pytest.raises(TypeError, match="`components` elements must be metatensor"):
        TensorBlock(torch.zeros((3, 2)), samples, ["c"], properties)
    with pytest.raises(TypeError, match="`properties` must be metatensor Labels"):
        TensorBlock(torch.zeros((3, 2)), samples, [], 3)
    with pytest.raises(ValueError, match="the values have 3 dimensions"):
        TensorBlock(torch.zeros((3, 2, 2)), samples, [], properties)
    with pytest.raises(ValueError, match="along axis 0 is 4 but we have 3 sample"):
        TensorBlock(torch.zeros((4, 2)), samples, [], properties)
    with pytest.raises(ValueError, match="along axis 1 is 3 but we have 2 property"):
        TensorBlock(torch.zeros((3, 3)), samples, [], properties)
    with pytest.raises(ValueError, match="must have a single dimension"):
        component = Labels(["a", "b"], torch.tensor([[0, 1]]))
        TensorBlock(torch.zeros((3, 1, 2)), samples, [component], properties)
    with pytest.raises(ValueError, match="appear more than once"):
        component = Labels.range("c", 2)
        TensorBlock(
            torch.zeros((3, 2, 2, 2)), samples, [component, component], properties
        )
    with pytest.raises(ValueError, match="values and samples must be on the same"):
        TensorBlock(torch.zeros((3, 2), device="meta"), samples, [], properties)


def test_values_setter():
    block = _block()
    with pytest.raises(ValueError, match="Direct assignment to `values` is not"):
        block.values = torch.zeros((3, 2, 2))
    block.values[:] = 3.0
    assert torch.all(block.values == 3.0)


def test_repr():
    block = _block()
    expected = """TensorBlock with shape (3, 2, 2)
    samples: [s]
    components: [c]
    properties: [p]

    gradients:
        g => TensorBlock with shape (2, 3, 2, 2)"""
    assert repr(block) == expected
    assert str(block) == expected
    expected = """TensorBlock gradient for 'g', with shape (2, 3, 2, 2)
    samples: [sample, g]
    components: [xyz, c]
    properties: [p]"""
    assert repr(block.gradient("g")) == expected


def test_gradients():
    block = _block()
    assert block.gradients_list() == ["g"]
    assert block.has_gradient("g")
    assert not block.has_gradient("h")
    gradient = block.gradient("g")
    assert gradient.is_view
    assert gradient.values.shape == (2, 3, 2, 2)
    assert gradient.samples.names == ["sample", "g"]
    assert [name for name, _ in block.gradients()] == ["g"]
    # the gradient is a view
    gradient.values[:] = 5
    assert torch.all(block.gradient("g").values == 5)

    with pytest.raises(ValueError, match="can not find gradients with respect to 'h'"):
        block.gradient("h")
    with pytest.raises(ValueError, match="cannot add gradient on this block"):
        gradient.add_gradient("x", gradient.copy())


def test_gradient_errors():
    block = _block()
    properties = block.properties

    def grad(samples, values=None, components=None, props=None):
        return TensorBlock(
            values
            if values is not None
            else torch.zeros((len(samples), 2, 2), dtype=torch.float64),
            samples,
            components if components is not None else [Labels.range("c", 2)],
            props if props is not None else properties,
        )

    good = Labels(["sample"], torch.tensor([[0]]))
    with pytest.raises(ValueError, match="gradient with respect to 'g' already"):
        block.add_gradient("g", grad(good))
    with pytest.raises(ValueError, match="have dtype 'torch.float32'"):
        block.add_gradient("x", grad(good, values=torch.zeros((1, 2, 2))))
    with pytest.raises(ValueError, match="'a' is not valid for the first dimension"):
        block.add_gradient("x", grad(Labels("a", torch.tensor([[0]]))))
    with pytest.raises(
        ValueError, match="all values should be positive, but we got -3"
    ):
        block.add_gradient("x", grad(Labels("sample", torch.tensor([[-3]]))))
    with pytest.raises(ValueError, match="we got 42, but the values contain 3 samples"):
        block.add_gradient("x", grad(Labels("sample", torch.tensor([[42]]))))
    with pytest.raises(ValueError, match="gradient properties must be the same"):
        block.add_gradient(
            "x",
            grad(
                good,
                values=torch.zeros((1, 2, 1), dtype=torch.float64),
                props=Labels.range("p", 1),
            ),
        )
    with pytest.raises(ValueError, match="gradients components should contain"):
        block.add_gradient(
            "x",
            grad(good, values=torch.zeros((1, 2), dtype=torch.float64), components=[]),
        )
    with pytest.raises(ValueError, match="components mismatch"):
        block.add_gradient("x", grad(good, components=[Labels.range("d", 2)]))


def test_nested_gradients():
    values = torch.rand(2, 3)
    block = TensorBlock(values, Labels.range("s", 2), [], Labels.range("p", 3))
    gradient = TensorBlock(
        torch.rand(2, 4, 3),
        Labels.range("sample", 2),
        [Labels.range("a", 4)],
        Labels.range("p", 3),
    )
    second = TensorBlock(
        torch.rand(1, 5, 4, 3),
        Labels.range("sample", 1),
        [Labels.range("b", 5), Labels.range("a", 4)],
        Labels.range("p", 3),
    )
    gradient.add_gradient("h", second)
    block.add_gradient("g", gradient)
    nested = block.gradient("g").gradient("h")
    assert nested.values.shape == (1, 5, 4, 3)
    assert "TensorBlock gradient for 'g/h'" in repr(nested)
    assert block.gradient("g").gradients_list() == ["h"]

    copied = block.copy()
    assert torch.equal(copied.gradient("g").gradient("h").values, nested.values)
    moved = block.to(torch.float64)
    assert moved.gradient("g").gradient("h").values.dtype == torch.float64


def test_copy():
    block = _block()
    deep = block.copy()
    assert deep.values.data_ptr() != block.values.data_ptr()
    assert torch.equal(deep.values, block.values)
    assert deep.gradient("g").values.data_ptr() != block.gradient("g").values.data_ptr()
    shallow = block.copy(deep=False)
    assert shallow.values.data_ptr() == block.values.data_ptr()
    assert copy.deepcopy(block).values.data_ptr() != block.values.data_ptr()
    assert copy.copy(block).values.data_ptr() == block.values.data_ptr()
    unpickled = pickle.loads(pickle.dumps(block))
    assert torch.equal(unpickled.values, block.values)
    assert unpickled.gradients_list() == ["g"]


def test_to():
    block = _block()
    assert block.to(torch.float32).dtype == torch.float32
    assert block.to(dtype=torch.float32).gradient("g").dtype == torch.float32
    meta = block.to("meta")
    assert meta.device.type == "meta"
    assert meta.samples.device.type == "meta"
    assert meta.gradient("g").samples.device.type == "meta"
    assert meta.properties.device.type == "meta"
    both = block.to(torch.float16, "meta")
    assert both.dtype == torch.float16 and both.device.type == "meta"
    assert block.to(device=torch.device("meta"), arrays="torch").device.type == "meta"
    with pytest.raises(ValueError, match="can not give a device twice"):
        block.to("meta", device="cpu")
    with pytest.raises(ValueError, match="can not give a dtype twice"):
        block.to(torch.float32, dtype=torch.float64)
    with pytest.raises(ValueError, match="`arrays` must be None or 'torch'"):
        block.to(arrays="numpy")
    with pytest.raises(TypeError, match="unexpected type in `TensorBlock.to`"):
        block.to(3.3)


class BlockWrapper:
    def __init__(self, block: TensorBlock):
        self.block = block

    def run(self) -> Tuple[List[int], str, List[str]]:
        block = self.block
        new = TensorBlock(
            block.values * 2, block.samples, block.components, block.properties
        )
        for parameter, gradient in block.gradients():
            new.add_gradient(parameter, gradient.copy())
        moved = new.to(torch.float32).to(device="cpu").copy(deep=False)
        assert moved.dtype == torch.float32
        assert moved.device == torch.device("cpu")
        assert block.has_gradient("g")
        text = str(moved) + moved.__repr__() + str(len(moved)) + str(moved.is_view)
        return moved.shape, text, moved.gradients_list()


def test_script():
    wrapper = torch.jit.script(BlockWrapper)
    shape, text, gradients = wrapper(_block()).run()
    assert shape == [3, 2, 2]
    assert gradients == ["g"]
    assert "gradients:" in text
