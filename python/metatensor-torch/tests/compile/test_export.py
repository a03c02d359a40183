import io
from typing import List

import pytest
import torch

import metatensor_torch as mtt
from metatensor_torch import Labels, TensorBlock, TensorMap


def _tensor(n_blocks=3, n_samples=5):
    blocks = []
    for _i in range(n_blocks):
        block = TensorBlock(
            torch.rand((n_samples, 3, 4), dtype=torch.float64),
            Labels.range("s", n_samples),
            [Labels.range("c", 3)],
            Labels.range("p", 4),
        )
        gradient = TensorBlock(
            torch.rand((2, 3, 4), dtype=torch.float64),
            Labels(["sample", "atom"], torch.tensor([[0, 1], [1, 1]])),
            [Labels.range("c", 3)],
            Labels.range("p", 4),
        )
        block.add_gradient("positions", gradient)
        blocks.append(block)
    tensor = TensorMap(Labels.range("k", n_blocks), blocks)
    tensor.set_info("unit", "eV")
    return tensor


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.rand(4, 2, dtype=torch.float64))

    def forward(self, tensor: TensorMap) -> TensorMap:
        blocks: List[TensorBlock] = []
        for block in tensor.blocks():
            values = torch.tanh(block.values @ self.weight)
            properties = Labels("q", torch.arange(2, dtype=torch.int32).reshape(-1, 1))
            new = TensorBlock(values, block.samples, block.components, properties)
            blocks.append(new)
        return TensorMap(tensor.keys, blocks)


def _expected(model, tensor):
    return [torch.tanh(b.values @ model.weight) for b in tensor.blocks()]


def test_pytree_round_trip():
    import torch.utils._pytree as pytree

    tensor = _tensor()
    leaves, spec = pytree.tree_flatten(tensor)
    assert all(isinstance(leaf, torch.Tensor) for leaf in leaves)
    rebuilt = pytree.tree_unflatten(leaves, spec)
    assert isinstance(rebuilt, TensorMap)
    assert rebuilt.keys == tensor.keys
    assert rebuilt.get_info("unit") == "eV"
    assert (
        rebuilt.block(1).gradient("positions").samples
        == tensor.block(1).gradient("positions").samples
    )


@pytest.mark.parametrize("strict", [False, True])
def test_export_save_load(strict):
    model = Model()
    tensor = _tensor()
    exported = torch.export.export(model, (tensor,), strict=strict)
    output = exported.module()(tensor)
    assert isinstance(output, TensorMap)
    for block, expected in zip(output.blocks(), _expected(model, tensor)):
        assert torch.allclose(block.values, expected)

    buffer = io.BytesIO()
    torch.export.save(exported, buffer)
    buffer.seek(0)
    loaded = torch.export.load(buffer)
    output = loaded.module()(tensor)
    assert isinstance(output, TensorMap)
    assert output.keys == tensor.keys
    for block, expected in zip(output.blocks(), _expected(model, tensor)):
        assert torch.allclose(block.values, expected)


def test_export_dynamic():
    model = Model()
    tensor = _tensor(n_blocks=1, n_samples=5)
    n = torch.export.Dim("n", min=2)
    shapes = torch.export.ShapesCollection()
    block = tensor.block(0)
    shapes[block.values] = {0: n}
    shapes[block.samples.values] = {0: n}
    exported = torch.export.export(
        model, (tensor,), dynamic_shapes=shapes.dynamic_shapes(model, (tensor,))
    )
    bigger = _tensor(n_blocks=1, n_samples=17)
    output = exported.module()(bigger)
    assert output.block(0).values.shape == (17, 3, 2)


def test_compile_fullgraph():
    model = Model()
    tensor = _tensor(n_blocks=4)
    # default (inductor) backend; this needs a working C++ compiler
    compiled = torch.compile(model, fullgraph=True)
    output = compiled(tensor)
    assert isinstance(output, TensorMap)
    for block, expected in zip(output.blocks(), _expected(model, tensor)):
        assert torch.allclose(block.values, expected)

    # backward through the compiled model
    loss = sum(block.values.sum() for block in compiled(tensor).blocks())
    loss.backward()
    assert model.weight.grad is not None


def test_compile_operations_on_classes():
    def function(tensor: TensorMap) -> torch.Tensor:
        total = torch.zeros((), dtype=torch.float64)
        for key, block in tensor.items():
            total = total + block.values.sum() * key.values.sum()
            total = total + block.gradient("positions").values.sum()
        copied = tensor.copy(deep=False)
        moved = copied.to(torch.float32)
        return total + moved.block(0).values.sum()

    tensor = _tensor()
    # `aot_eager` still checks for graph breaks with fullgraph=True, and is faster
    compiled = torch.compile(function, fullgraph=True, backend="aot_eager")
    assert torch.allclose(compiled(tensor), function(tensor))


def test_version():
    assert isinstance(mtt.version(), str)
