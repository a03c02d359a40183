"""The operations work on metatensor-core data holding torch tensors on any
device: every public function of ``metatensor.operations`` is called with data
on ``device`` (``cpu``, and ``cuda`` when a GPU is available) while torch's
default device is another one (see the ``elsewhere`` fixture in
``conftest.py``), so that any tensor created without an explicit ``device=``
makes the test fail. The results are compared with the same operation on numpy
data, and must be entirely (values, gradients and all Labels) on ``device``,
with the input dtype.
"""

import functools
import os
import warnings
from types import SimpleNamespace
from typing import Any, Callable, Dict

import numpy as np
import pytest

import metatensor.operations as operations
from metatensor import Labels, TensorBlock, TensorMap

from device_checks import (
    RANDOM_OPERATIONS,
    check,
    numpy_tensor,
    on_device,
    operation_calls,
)


if os.environ.get("METATENSOR_TESTS_REQUIRE_TORCH") == "1":
    import torch
else:
    torch = pytest.importorskip("torch")


DTYPES = [torch.float64, torch.float32]

# float32 results are compared with a float64 numpy computation
_check = functools.partial(
    check, tolerances={"float64": (1e-10, 1e-12), "float32": (1e-5, 1e-5)}
)


# =========================================================================== #
# data                                                                        #
# =========================================================================== #


def _single_block_tensor(values: np.ndarray) -> TensorMap:
    """A map with one block, without gradients, holding ``values``."""
    block = TensorBlock(
        values,
        Labels.range("sample", values.shape[0]),
        [],
        Labels.range("property", values.shape[1]),
    )
    return TensorMap(Labels.single(), [block])


def _numpy_inputs() -> Dict[str, Any]:
    """All the inputs of the operations, with numpy arrays."""
    rng = np.random.default_rng(1)
    tensor = numpy_tensor()
    matrix = rng.uniform(-1, 1, size=(5, 5)) + 5 * np.eye(5)
    return {
        "tensor": tensor,
        "other": numpy_tensor(seed=2),
        "components": numpy_tensor(components=True),
        "no_gradients": operations.remove_gradients(tensor),
        "block": tensor.block(1),
        "X": _single_block_tensor(rng.uniform(-1, 1, size=(8, 3))),
        "Y": _single_block_tensor(rng.uniform(-1, 1, size=(8, 2))),
        "square": _single_block_tensor(matrix),
        "rhs": _single_block_tensor(rng.uniform(-1, 1, size=(5, 2))),
        "array": rng.uniform(-1, 1, size=(2, 3, 4)),
        "selection": Labels(["system"], np.array([[0], [2]], dtype=np.int32)),
        "other_selection": Labels(["system"], np.array([[1]], dtype=np.int32)),
        "properties_selection": Labels.range("n", 2),
        "keys": Labels(["key_1"], np.array([[1]], dtype=np.int32)),
        "labels": Labels(
            ["atom", "type"], np.array([[0, 6], [1, 1], [2, 6]], dtype=np.int32)
        ),
        "dimension": Labels(["type"], np.array([[1], [6], [8]], dtype=np.int32)),
        "new_values": np.array([3, 4, 5], dtype=np.int32),
        "empty_selection": Labels.empty(["system"]),
        "empty_labels": Labels.empty(["atom", "type"]),
        "empty_dimension": Labels.empty(["type"]),
    }


def _to(value: Any, dtype, device) -> Any:
    """Convert numpy inputs to torch tensors of ``dtype`` (floating point
    arrays only) on ``device``."""
    if isinstance(value, (TensorMap, TensorBlock)):
        return value.to(arrays="torch", dtype=dtype, device=device)
    elif isinstance(value, Labels):
        return value.to(arrays="torch", device=device)
    elif isinstance(value, np.ndarray):
        tensor = torch.from_numpy(value)
        if tensor.is_floating_point():
            tensor = tensor.to(dtype)
        return tensor.to(device)
    return value


def _inputs(dtype, device) -> SimpleNamespace:
    inputs = {k: _to(v, dtype, device) for k, v in _numpy_inputs().items()}
    return SimpleNamespace(**inputs)


# =========================================================================== #
# one call of every public operation                                          #
# =========================================================================== #


def _raises_not_equal(ops, function: Callable[[], Any]) -> str:
    """The message of the ``NotEqualError`` raised by ``function()``, compared
    between the numpy and torch computations."""
    with pytest.raises(ops.NotEqualError) as error:
        function()
    return str(error.value)


# name -> function of the operations and inputs; the test checks every public
# name is here
CALLS = operation_calls(_raises_not_equal)


def test_every_operation_is_called():
    public = {name for name in operations.__all__ if name != "__version__"}
    assert set(CALLS) == public


# the operations use numpy for the metadata of torch data on the CPU, and torch
# for data on other devices: `torch-paths` disables the numpy shortcuts
VARIANTS = {
    "float64": (torch.float64, False),
    "float32": (torch.float32, False),
    "float64-torch-paths": (torch.float64, True),
}

NUMPY_SHORTCUTS = [
    "_eager_merge_gradient_rows",
    "_eager_select_gradient_rows",
    "_eager_unique_rows",
]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("name", sorted(CALLS))
def test_operation(name, variant, device, elsewhere, monkeypatch):
    dtype, torch_paths = VARIANTS[variant]
    expected_inputs = SimpleNamespace(**_numpy_inputs(), device="cpu")
    with warnings.catch_warnings():
        # `requires_grad` warns with numpy arrays
        warnings.simplefilter("ignore", UserWarning)
        expected = CALLS[name](operations, expected_inputs)

    if torch_paths:
        from metatensor_operations import _dispatch

        for shortcut in NUMPY_SHORTCUTS:
            assert hasattr(_dispatch, shortcut)
            monkeypatch.setattr(_dispatch, shortcut, lambda *args: None)

    inputs = _inputs(dtype, device)
    inputs.device = device
    with elsewhere(device):
        result = CALLS[name](operations, inputs)

    _check(result, expected, device, dtype, values=name not in RANDOM_OPERATIONS)


# operations with a gradient flowing from the input values to the output values
AUTOGRAD: Dict[str, Callable[[TensorMap, Labels], TensorMap]] = {
    "abs": lambda t, s: operations.abs(t),
    "add": lambda t, s: operations.add(t, t),
    "dot": lambda t, s: operations.dot(
        t, operations.remove_gradients(operations.detach(t))
    ),
    "join": lambda t, s: operations.join([t, t], "samples", add_dimension="copy"),
    "keys_to_properties": lambda t, s: t.keys_to_properties("key_2"),
    "keys_to_samples": lambda t, s: t.keys_to_samples("key_1"),
    "mean_over_samples": lambda t, s: operations.mean_over_samples(t, "atom"),
    "multiply": lambda t, s: operations.multiply(t, t),
    "slice": lambda t, s: operations.slice(t, "samples", s),
    "sort": lambda t, s: operations.sort(t, descending=True),
    "std_over_properties": lambda t, s: operations.std_over_properties(t, "n"),
    "sum_over_samples": lambda t, s: operations.sum_over_samples(t, "atom"),
}


@pytest.mark.parametrize("name", sorted(AUTOGRAD))
def test_operation_autograd(name, device, elsewhere):
    tensor = operations.requires_grad(
        numpy_tensor().to(arrays="torch", dtype=torch.float32, device=device)
    )
    leaves = [block.values for block in tensor.blocks()]
    selection = Labels(["atom"], torch.tensor([[1]], device=device))
    with elsewhere(device):
        result = AUTOGRAD[name](tensor, selection)
        loss = sum(block.values.sum() for block in result.blocks())
        loss.backward()
    for leaf in leaves:
        assert leaf.grad is not None
        assert on_device(leaf.grad, device)
        assert leaf.grad.dtype == torch.float32


def test_cpu_arguments(device, elsewhere):
    """Labels and integer arrays on the CPU (numpy or torch) can be used with
    data on another device."""
    d = _inputs(torch.float64, device)
    expected = SimpleNamespace(**_numpy_inputs())
    numpy_selection = expected.selection
    torch_selection = expected.selection.to(arrays="torch")
    positions = torch.tensor([2, 0])
    new_values = torch.tensor([1, 2, 3])
    key_2 = Labels(["key_2"], torch.tensor([[2], [0]], dtype=torch.int32))
    with elsewhere(device):
        results = [
            operations.slice(d.tensor, "samples", numpy_selection),
            operations.slice(d.tensor, "samples", torch_selection),
            operations.slice_block(d.block, "properties", positions),
            operations.slice_block(d.block, "properties", [2, 0]),
            operations.drop_blocks(d.tensor, expected.keys),
            operations.filter_blocks(d.tensor, expected.keys.to(arrays="torch")),
            operations.one_hot(d.labels, expected.dimension),
            operations.append_dimension(d.tensor, "keys", "new", new_values),
            operations.insert_dimension(d.tensor, "samples", 0, "new", np.int32(4)),
            d.tensor.blocks(expected.keys),
            d.tensor.keys_to_properties(key_2),
        ]
    expected_results = [
        operations.slice(expected.tensor, "samples", numpy_selection),
        operations.slice(expected.tensor, "samples", numpy_selection),
        operations.slice_block(expected.block, "properties", [2, 0]),
        operations.slice_block(expected.block, "properties", [2, 0]),
        operations.drop_blocks(expected.tensor, expected.keys),
        operations.filter_blocks(expected.tensor, expected.keys),
        operations.one_hot(expected.labels, expected.dimension),
        operations.append_dimension(
            expected.tensor, "keys", "new", np.array([1, 2, 3])
        ),
        operations.insert_dimension(expected.tensor, "samples", 0, "new", 4),
        expected.tensor.blocks(expected.keys),
        expected.tensor.keys_to_properties(
            Labels(["key_2"], np.array([[2], [0]], dtype=np.int32))
        ),
    ]
    _check(results, expected_results, device, torch.float64)
