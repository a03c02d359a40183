"""The operations of ``metatensor.torch`` can be used from TorchScript code, and
saved/loaded with ``torch.jit.save``/``torch.jit.load``."""

import io
import os
import subprocess
import sys
from typing import List, Union

import pytest
import torch

import metatensor
import metatensor.torch as mtt
from metatensor.torch import Labels, TensorBlock, TensorMap

from ._data import DATA_DIR, assert_tensor_equal, core_tensor


@pytest.fixture(scope="module")
def tensors():
    tensor = core_tensor(DATA_DIR)
    return tensor, mtt.from_core(tensor)


def model(tensor: TensorMap) -> TensorMap:
    """A function using many operations, compiled below."""
    selection = Labels(["system"], torch.tensor([[0], [2], [5]], dtype=torch.int32))
    sliced = mtt.slice(tensor, "samples", selection)
    joined = mtt.join([sliced, tensor], "samples", add_dimension="tensor")
    summed = mtt.sum_over_samples(joined, ["atom", "tensor"])
    scaled = mtt.multiply(mtt.add(summed, summed), 0.25)
    scaled = mtt.pow(mtt.abs(scaled), 2)
    result = mtt.sort(mtt.remove_gradients(scaled, ["strain"]))
    result = mtt.rename_dimension(result, "properties", "l", "lambda")
    return mtt.drop_empty_blocks(result)


def _core_model(tensor):
    selection = metatensor.Labels(
        ["system"], torch.tensor([[0], [2], [5]], dtype=torch.int32)
    )
    sliced = metatensor.slice(tensor, "samples", selection)
    joined = metatensor.join([sliced, tensor], "samples", add_dimension="tensor")
    summed = metatensor.sum_over_samples(joined, ["atom", "tensor"])
    scaled = metatensor.multiply(metatensor.add(summed, summed), 0.25)
    scaled = metatensor.pow(metatensor.abs(scaled), 2)
    result = metatensor.sort(metatensor.remove_gradients(scaled, ["strain"]))
    result = metatensor.rename_dimension(result, "properties", "l", "lambda")
    return metatensor.drop_empty_blocks(result)


def test_scripted_function(tensors):
    core, tensor = tensors
    scripted = torch.jit.script(model)
    assert_tensor_equal(scripted(tensor), _core_model(core))


class Model(torch.nn.Module):
    def __init__(self, keys: Labels):
        super().__init__()
        self.keys = keys

    def forward(self, tensor: TensorMap, names: List[str]) -> TensorMap:
        tensor = mtt.filter_blocks(tensor, self.keys)
        mean = mtt.mean_over_samples(tensor, names)
        blocks: List[TensorBlock] = []
        for block in mean.blocks():
            blocks.append(mtt.ones_like_block(block))
        ones = TensorMap(mean.keys, blocks)
        if not mtt.equal_metadata(mean, ones):
            raise ValueError("different metadata")
        return mtt.subtract(mean, ones)


def test_scripted_module_save_load(tensors):
    core, tensor = tensors
    keys = Labels(["center_type"], torch.tensor([[1], [6]], dtype=torch.int32))
    module = torch.jit.script(Model(keys))

    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)

    core_keys = metatensor.Labels(["center_type"], keys.values)
    filtered = metatensor.filter_blocks(core, core_keys)
    mean = metatensor.mean_over_samples(filtered, "atom")
    expected = metatensor.subtract(mean, metatensor.ones_like(mean))
    assert_tensor_equal(module(tensor, ["atom"]), expected)
    assert_tensor_equal(loaded(tensor, ["atom"]), expected)


@pytest.mark.parametrize(
    "name", ["add", "sum_over_samples", "slice", "join", "equal_raise", "one_hot"]
)
def test_operation_save_load(tensors, name):
    function = getattr(mtt, name)
    assert isinstance(function, torch.jit.ScriptFunction)
    buffer = io.BytesIO()
    torch.jit.save(function, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)

    _, tensor = tensors
    if name == "add":
        # calling a loaded function with a TensorMap for a `Union[...,
        # TensorMap]` argument fails in torch ("Expected a value of type
        # 'Union[float, int, __torch__...TensorMap]'"): the loaded compilation
        # unit has its own copy of the class type
        assert mtt.equal(loaded(tensor, 2.0), mtt.add(tensor, 2.0))
    elif name == "sum_over_samples":
        expected = mtt.sum_over_samples(tensor, "atom")
        assert mtt.allclose(loaded(tensor, "atom"), expected)
    elif name == "slice":
        assert mtt.equal(
            loaded(tensor, "properties", [1, 0]),
            mtt.slice(tensor, "properties", [1, 0]),
        )
    elif name == "join":
        assert mtt.equal(
            loaded([tensor, tensor], "samples", "error", "t"),
            mtt.join([tensor, tensor], "samples", add_dimension="t"),
        )
    elif name == "equal_raise":
        loaded(tensor, tensor)
        with pytest.raises(torch.jit.Error, match="NotEqualError"):
            loaded(tensor, mtt.add(tensor, 1))
    else:
        values = torch.tensor([[0, 1], [1, 6], [2, 6]], dtype=torch.int32)
        labels = Labels(["atom", "t"], values)
        dimension = Labels(["t"], torch.tensor([[1], [6]], dtype=torch.int32))
        expected = torch.tensor([[1, 0], [0, 1], [0, 1]])
        assert torch.equal(loaded(labels, dimension).to(torch.int64), expected)


def test_errors(tensors):
    _, tensor = tensors
    message = "index 42 in `selection` is out of bounds for the samples of size"
    with pytest.raises(torch.jit.Error, match=message):
        mtt.slice(tensor, "samples", [42])

    with pytest.raises(torch.jit.Error, match="NotEqualError: inputs to 'add'"):
        mtt.add(tensor, mtt.remove_gradients(tensor))

    with pytest.raises(torch.jit.Error, match="`axis` must be either 'samples' or"):
        mtt.slice(tensor, "keys", [0])

    assert not mtt.equal(tensor, mtt.add(tensor, 1.0))
    assert mtt.allclose(tensor, mtt.add(tensor, 1e-14))
    assert mtt.equal_metadata(tensor, mtt.zeros_like(tensor))
    assert not mtt.equal_metadata(tensor, mtt.remove_gradients(tensor))
    assert mtt.equal_metadata_block(
        tensor.block_by_id(0), tensor.block_by_id(0), ["samples"]
    )
    mtt.allclose_raise(tensor, tensor)
    mtt.allclose_block_raise(tensor.block_by_id(0), tensor.block_by_id(0))
    mtt.equal_block_raise(tensor.block_by_id(0), tensor.block_by_id(0))
    mtt.equal_metadata_block_raise(tensor.block_by_id(0), tensor.block_by_id(0))
    mtt.equal_metadata_raise(tensor, tensor, "all", False)
    assert mtt.allclose_block(tensor.block_by_id(0), tensor.block_by_id(0))
    assert mtt.equal_block(tensor.block_by_id(0), tensor.block_by_id(0))

    with pytest.raises(torch.jit.Error, match="NotEqualError: .*values are not"):
        mtt.allclose_raise(tensor, mtt.add(tensor, 1.0))

    labels = Labels(["atom", "t"], torch.tensor([[0, 1], [1, 6]], dtype=torch.int32))
    dimension = Labels(["t"], torch.tensor([[1], [8]], dtype=torch.int32))
    message = "t=6 is present in the labels, but was not found in the dimension"
    with pytest.raises(torch.jit.Error, match=message):
        mtt.one_hot(labels, dimension)


def test_core_operations_stay_core():
    """Importing metatensor.torch does not change `metatensor.operations`
    (reference bug S1)."""
    assert metatensor.operations.__name__ == "metatensor_operations"
    assert sys.modules["metatensor.operations"] is metatensor.operations
    assert sys.modules["metatensor.torch.operations"] is mtt.operations
    assert mtt.operations.__name__ == "metatensor_torch.operations"
    assert mtt.operations._backend.TensorMap is TensorMap

    # also when `metatensor.torch` is imported first, in a fresh process
    code = """
import metatensor.torch
import metatensor.operations
import metatensor
assert metatensor.operations.__name__ == "metatensor_operations", metatensor.operations
assert metatensor.add is metatensor.operations.add
t = metatensor.TensorMap(
    metatensor.Labels.single(),
    [metatensor.block_from_array(__import__("numpy").ones((2, 2)))],
)
assert metatensor.equal(metatensor.add(t, t), metatensor.multiply(t, 2))
"""
    env = dict(os.environ)
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr


def every_operation(tensor: TensorMap) -> List[TensorMap]:
    """Calls every operation from TorchScript, with the argument types used in
    TorchScript code."""
    block = tensor.block_by_id(0)
    systems = Labels(["system"], torch.tensor([[0], [1]], dtype=torch.int32))
    keys = Labels(["center_type"], torch.tensor([[1]], dtype=torch.int32))
    result: List[TensorMap] = []

    assert mtt.equal(tensor, tensor)
    assert mtt.equal_block(block, block)
    mtt.equal_raise(tensor, tensor)
    mtt.equal_block_raise(block, block)
    assert mtt.allclose(tensor, tensor, 1e-12, 1e-12, False)
    assert mtt.allclose_block(block, block)
    mtt.allclose_raise(tensor, tensor)
    mtt.allclose_block_raise(block, block, rtol=1e-10)
    assert mtt.equal_metadata(tensor, tensor, ["samples"])
    assert mtt.equal_metadata_block(block, block, "all", False)
    mtt.equal_metadata_raise(tensor, tensor)
    mtt.equal_metadata_block_raise(block, block, check=["properties"])

    result.append(mtt.abs(tensor))
    result.append(mtt.add(tensor, tensor))
    result.append(mtt.add(tensor, 1))
    result.append(mtt.subtract(tensor, 1.5))
    result.append(mtt.multiply(tensor, tensor))
    result.append(mtt.divide(tensor, 2.0))
    result.append(mtt.pow(tensor, 2))

    no_gradients = mtt.remove_gradients(tensor)
    small = mtt.slice(no_gradients, "properties", [0, 1, 2])
    result.append(mtt.dot(tensor, no_gradients))
    result.append(mtt.lstsq(small, no_gradients, 1e-10))
    single = Labels(["_"], torch.tensor([[0]], dtype=torch.int32))
    matrix = torch.eye(3, dtype=torch.float64) * 2
    X = TensorMap(single, [mtt.block_from_array(matrix)])
    Y = TensorMap(
        single, [mtt.block_from_array(torch.ones((3, 1), dtype=torch.float64))]
    )
    result.append(mtt.solve(X, Y))

    array = torch.ones((2, 3, 4), dtype=torch.float64)
    from_array = mtt.block_from_array(array, ["s"], None, None)
    assert from_array.values.shape == array.shape
    result.append(mtt.zeros_like(tensor))
    result.append(mtt.ones_like(tensor, "positions"))
    result.append(mtt.empty_like(tensor, ["strain"], False))
    result.append(mtt.random_uniform_like(tensor))
    mtt.zeros_like_block(block)
    mtt.ones_like_block(block)
    mtt.empty_like_block(block)
    mtt.random_uniform_like_block(block)
    one_hot = mtt.one_hot(
        block.samples, mtt.unique_metadata_block(block, "samples", "atom")
    )
    assert one_hot.shape[0] == len(block.samples)

    result.append(mtt.detach(tensor))
    mtt.detach_block(block)
    assert mtt.is_contiguous(tensor)
    assert mtt.is_contiguous_block(block)
    result.append(mtt.make_contiguous(tensor))
    mtt.make_contiguous_block(block)
    result.append(mtt.remove_gradients(tensor, ["strain"]))
    mtt.remove_gradients_block(block)
    result.append(mtt.requires_grad(no_gradients, False))
    mtt.requires_grad_block(block, False)

    result.append(mtt.drop_blocks(tensor, keys))
    result.append(mtt.drop_empty_blocks(tensor, True))
    result.append(mtt.filter_blocks(tensor, keys))
    mtt.unique_metadata(tensor, "samples", ["system"])
    mtt.unique_metadata_block(block, "samples", "atom", "positions")

    result.append(mtt.join([tensor, tensor], "samples", "error", "tensor"))
    mtt.join_blocks([block, block], "properties", "x")
    result.append(mtt.slice(tensor, "samples", systems))
    result.append(mtt.slice(tensor, "properties", torch.tensor([0, 1])))
    mtt.slice_block(block, "samples", [0])
    # lists are invariant in TorchScript: annotate the list of selections
    selections: List[Union[List[int], torch.Tensor, Labels]] = [systems, systems]
    result += mtt.split(tensor, "samples", selections)
    positions: List[Union[List[int], torch.Tensor, Labels]] = [[0], [1, 2]]
    mtt.split_block(block, "properties", positions)
    result.append(mtt.sort(tensor, "all", True))
    mtt.sort_block(block, ["samples"])

    result.append(mtt.append_dimension(tensor, "samples", "a", 0))
    result.append(mtt.insert_dimension(tensor, "keys", 0, "k", 1))
    values = torch.zeros(len(tensor.keys), dtype=torch.int32)
    appended = mtt.append_dimension(tensor, "keys", "k", values)
    result.append(appended)
    result.append(mtt.permute_dimensions(tensor, "samples", [1, 0]))
    result.append(mtt.remove_dimension(appended, "keys", "k"))
    result.append(mtt.rename_dimension(tensor, "properties", "l", "m"))

    result.append(mtt.sum_over_samples(tensor, "atom"))
    mtt.sum_over_samples_block(block, ["atom"])
    result.append(mtt.mean_over_samples(tensor, ["atom"]))
    mtt.mean_over_samples_block(block, "atom")
    result.append(mtt.var_over_samples(tensor, "atom"))
    mtt.var_over_samples_block(block, "atom")
    result.append(mtt.std_over_samples(tensor, "atom"))
    mtt.std_over_samples_block(block, "atom")
    result.append(mtt.sum_over_properties(tensor, "l"))
    mtt.sum_over_properties_block(block, "l")
    result.append(mtt.mean_over_properties(tensor, ["l"]))
    mtt.mean_over_properties_block(block, "l")
    result.append(mtt.var_over_properties(no_gradients, "l"))
    mtt.var_over_properties_block(block, "l")
    result.append(mtt.std_over_properties(no_gradients, "l"))
    mtt.std_over_properties_block(block, "l")
    return result


def test_every_operation_in_torchscript(tensors):
    _, tensor = tensors
    scripted = torch.jit.script(every_operation)
    result = scripted(tensor)
    assert len(result) == 41
    for value in result:
        assert isinstance(value, TensorMap)
