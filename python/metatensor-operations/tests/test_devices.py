"""The operations work on metatensor-core data holding torch tensors on any
device: every public function of ``metatensor.operations`` is called with data
on ``device`` (``cpu``, and ``cuda`` when a GPU is available) while torch's
default device is another one (see the ``elsewhere`` fixture in
``conftest.py``), so that any tensor created without an explicit ``device=``
makes the test fail. The results are compared with the same operation on numpy
data, and must be entirely (values, gradients and all Labels) on ``device``,
with the input dtype.
"""

import os
import warnings
from types import SimpleNamespace
from typing import Any, Callable, Dict

import numpy as np
import pytest

import metatensor.operations as operations
from metatensor import Labels, TensorBlock, TensorMap


if os.environ.get("METATENSOR_TESTS_REQUIRE_TORCH") == "1":
    import torch
else:
    torch = pytest.importorskip("torch")


DTYPES = [torch.float64, torch.float32]


# =========================================================================== #
# data                                                                        #
# =========================================================================== #


def _block(rng, n_samples: int, n_properties: int, components: bool) -> TensorBlock:
    comps = [Labels.range("o3_mu", 3)] if components else []
    shape = [3] if components else []
    samples = Labels(
        ["system", "atom"],
        np.array([[i // 2, i % 2] for i in range(n_samples)], dtype=np.int32),
    )
    properties = Labels.range("n", n_properties)
    block = TensorBlock(
        rng.uniform(0.5, 1.5, size=[n_samples, *shape, n_properties]),
        samples,
        comps,
        properties,
    )
    rows = [[s, s // 2, a] for s in range(1, n_samples) for a in range(2)]
    block.add_gradient(
        "positions",
        TensorBlock(
            rng.normal(size=[len(rows), 3, *shape, n_properties]),
            Labels(["sample", "system", "atom"], np.array(rows, dtype=np.int32)),
            [Labels.range("xyz", 3), *comps],
            properties,
        ),
    )
    return block


def _tensor(seed: int = 0, components: bool = False) -> TensorMap:
    """Three blocks with keys ``(key_1, key_2)``, samples ``(system, atom)``,
    three properties and ``positions`` gradients, as numpy arrays."""
    rng = np.random.default_rng(seed)
    keys = Labels(
        ["key_1", "key_2"], np.array([[0, 0], [1, 0], [1, 2]], dtype=np.int32)
    )
    blocks = [_block(rng, n, 3, components) for n in (4, 6, 2)]
    return TensorMap(keys, blocks)


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
    tensor = _tensor()
    matrix = rng.uniform(-1, 1, size=(5, 5)) + 5 * np.eye(5)
    return {
        "tensor": tensor,
        "other": _tensor(seed=2),
        "components": _tensor(components=True),
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
# checks                                                                      #
# =========================================================================== #


def _on_device(array, device) -> bool:
    device = torch.device(device)
    return array.device.type == device.type and (
        device.index is None or array.device.index == device.index
    )


def _to_numpy(array) -> np.ndarray:
    if isinstance(array, np.ndarray):
        return array
    return array.detach().cpu().numpy()


def _check_array(array, expected, device, dtype, values: bool):
    assert isinstance(array, torch.Tensor), type(array)
    assert _on_device(array, device), f"{array.device} is not {device}"
    if array.is_floating_point():
        assert array.dtype == dtype
    assert tuple(array.shape) == tuple(expected.shape)
    if values:
        actual = _to_numpy(array)
        if actual.dtype == np.float32:
            np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)


def _check_labels(labels: Labels, expected: Labels, device):
    assert isinstance(labels, Labels)
    assert labels.names == expected.names
    assert isinstance(labels.values, torch.Tensor), "Labels values are not torch"
    assert _on_device(labels.values, device), f"Labels on {labels.values.device}"
    np.testing.assert_array_equal(_to_numpy(labels.values), expected.values)


def _check_block(block, expected, device, dtype, values: bool):
    assert isinstance(block, TensorBlock)
    _check_array(block.values, expected.values, device, dtype, values)
    _check_labels(block.samples, expected.samples, device)
    assert len(block.components) == len(expected.components)
    for component, expected_component in zip(block.components, expected.components):
        _check_labels(component, expected_component, device)
    _check_labels(block.properties, expected.properties, device)
    assert block.gradients_list() == expected.gradients_list()
    for parameter, gradient in block.gradients():
        _check_block(gradient, expected.gradient(parameter), device, dtype, values)


def _check(result, expected, device, dtype, values: bool = True):
    """``result`` (computed with torch on ``device``) is the same as
    ``expected`` (computed with numpy), and lives entirely on ``device``."""
    if isinstance(expected, TensorMap):
        assert isinstance(result, TensorMap)
        _check_labels(result.keys, expected.keys, device)
        for block, expected_block in zip(result.blocks(), expected.blocks()):
            _check_block(block, expected_block, device, dtype, values)
    elif isinstance(expected, TensorBlock):
        _check_block(result, expected, device, dtype, values)
    elif isinstance(expected, Labels):
        _check_labels(result, expected, device)
    elif isinstance(expected, np.ndarray):
        _check_array(result, expected, device, dtype, values)
    elif isinstance(expected, (list, tuple)):
        assert len(result) == len(expected)
        for item, expected_item in zip(result, expected):
            _check(item, expected_item, device, dtype, values)
    else:
        assert result == expected


# =========================================================================== #
# one call of every public operation                                          #
# =========================================================================== #


def _raises_not_equal(function: Callable[[], Any]) -> str:
    with pytest.raises(operations.NotEqualError) as error:
        function()
    return str(error.value)


def _with_checks(d):
    assert operations.checks_enabled()
    with operations.unsafe_disable_checks():
        assert not operations.checks_enabled()
        with operations.unsafe_enable_checks():
            result = operations.add(d.tensor, d.tensor)
    return result


# name -> function of the inputs; the test checks every public name is here
CALLS: Dict[str, Callable[[SimpleNamespace], Any]] = {
    # _utils
    "checks_enabled": _with_checks,
    "unsafe_disable_checks": _with_checks,
    "unsafe_enable_checks": _with_checks,
    "NotEqualError": lambda d: _raises_not_equal(
        lambda: operations.equal_raise(d.tensor, d.other)
    ),
    # _comparison
    "allclose": lambda d: [
        operations.allclose(d.tensor, d.tensor),
        operations.allclose(d.tensor, d.other),
    ],
    "allclose_block": lambda d: [
        operations.allclose_block(d.block, d.block),
        operations.allclose_block(d.block, d.other.block(1)),
    ],
    "allclose_block_raise": lambda d: [
        operations.allclose_block_raise(d.block, d.block),
        _raises_not_equal(
            lambda: operations.allclose_block_raise(d.block, d.other.block(1))
        ),
    ],
    "allclose_raise": lambda d: [
        operations.allclose_raise(d.tensor, d.tensor),
        _raises_not_equal(lambda: operations.allclose_raise(d.tensor, d.other)),
    ],
    "equal": lambda d: [
        operations.equal(d.tensor, d.tensor),
        operations.equal(d.tensor, d.other),
    ],
    "equal_block": lambda d: [
        operations.equal_block(d.block, d.block),
        operations.equal_block(d.block, d.other.block(1)),
    ],
    "equal_block_raise": lambda d: [
        operations.equal_block_raise(d.block, d.block),
        _raises_not_equal(
            lambda: operations.equal_block_raise(d.block, d.other.block(1))
        ),
    ],
    "equal_raise": lambda d: [
        operations.equal_raise(d.tensor, d.tensor),
        _raises_not_equal(lambda: operations.equal_raise(d.tensor, d.other)),
    ],
    "equal_metadata": lambda d: [
        operations.equal_metadata(d.tensor, d.other),
        operations.equal_metadata(d.tensor, d.components),
    ],
    "equal_metadata_block": lambda d: [
        operations.equal_metadata_block(d.block, d.other.block(1)),
        operations.equal_metadata_block(d.block, d.tensor.block(0)),
    ],
    "equal_metadata_block_raise": lambda d: [
        operations.equal_metadata_block_raise(d.block, d.other.block(1)),
        _raises_not_equal(
            lambda: operations.equal_metadata_block_raise(d.block, d.tensor.block(0))
        ),
    ],
    "equal_metadata_raise": lambda d: [
        operations.equal_metadata_raise(d.tensor, d.other),
        _raises_not_equal(
            lambda: operations.equal_metadata_raise(d.tensor, d.components)
        ),
    ],
    # _math
    "abs": lambda d: operations.abs(d.tensor),
    "add": lambda d: [
        operations.add(d.tensor, d.other),
        operations.add(d.tensor, 2.5),
    ],
    "divide": lambda d: [
        operations.divide(d.tensor, d.other),
        operations.divide(d.tensor, 2.5),
    ],
    "multiply": lambda d: [
        operations.multiply(d.tensor, d.other),
        operations.multiply(d.tensor, 2.5),
    ],
    "pow": lambda d: [operations.pow(d.tensor, 2), operations.pow(d.tensor, 0.5)],
    "subtract": lambda d: [
        operations.subtract(d.tensor, d.other),
        operations.subtract(d.tensor, 2.5),
    ],
    # _linalg
    "dot": lambda d: operations.dot(d.tensor, d.no_gradients),
    "lstsq": lambda d: operations.lstsq(d.X, d.Y, rcond=1e-10),
    "solve": lambda d: operations.solve(d.square, d.rhs),
    # _creation
    "block_from_array": lambda d: [
        operations.block_from_array(d.array),
        operations.block_from_array(
            d.array, sample_names=["a", "b"], property_names=["p"]
        ),
        operations.block_from_array(d.array, property_names=["p", "q"]),
    ],
    "empty_like": lambda d: operations.empty_like(d.tensor),
    "empty_like_block": lambda d: operations.empty_like_block(d.block),
    "ones_like": lambda d: operations.ones_like(d.tensor, requires_grad=True),
    "ones_like_block": lambda d: operations.ones_like_block(d.block),
    "zeros_like": lambda d: operations.zeros_like(d.tensor, gradients="positions"),
    "zeros_like_block": lambda d: operations.zeros_like_block(d.block),
    "random_uniform_like": lambda d: operations.random_uniform_like(d.tensor),
    "random_uniform_like_block": lambda d: operations.random_uniform_like_block(
        d.block, requires_grad=True
    ),
    "one_hot": lambda d: [
        operations.one_hot(d.labels, d.dimension),
        operations.one_hot(d.empty_labels, d.empty_dimension),
    ],
    # _autograd
    "detach": lambda d: operations.detach(d.tensor),
    "detach_block": lambda d: operations.detach_block(d.block),
    "requires_grad": lambda d: operations.requires_grad(d.tensor),
    "requires_grad_block": lambda d: operations.requires_grad_block(d.block),
    # _blocks
    "is_contiguous": lambda d: operations.is_contiguous(d.tensor),
    "is_contiguous_block": lambda d: operations.is_contiguous_block(d.block),
    "make_contiguous": lambda d: operations.make_contiguous(d.tensor),
    "make_contiguous_block": lambda d: operations.make_contiguous_block(d.block),
    "remove_gradients": lambda d: operations.remove_gradients(d.tensor),
    "remove_gradients_block": lambda d: operations.remove_gradients_block(d.block),
    "drop_blocks": lambda d: operations.drop_blocks(d.tensor, d.keys),
    "drop_empty_blocks": lambda d: operations.drop_empty_blocks(
        operations.slice(d.tensor, "samples", d.other_selection)
    ),
    "filter_blocks": lambda d: operations.filter_blocks(d.tensor, d.keys),
    # _unique
    "unique_metadata": lambda d: [
        operations.unique_metadata(d.tensor, "samples", "system"),
        operations.unique_metadata(d.tensor, "samples", ["atom"], "positions"),
        operations.unique_metadata(d.tensor, "properties", "n"),
        operations.unique_metadata(
            operations.drop_blocks(d.tensor, d.tensor.keys), "samples", "system"
        ),
    ],
    "unique_metadata_block": lambda d: [
        operations.unique_metadata_block(d.block, "samples", ["system"]),
        operations.unique_metadata_block(d.block, "properties", "n", "positions"),
    ],
    # _join
    "join": lambda d: [
        operations.join([d.tensor, d.other], "samples", add_dimension="tensor"),
        operations.join([d.tensor, d.other], "properties", add_dimension="tensor"),
        operations.join(
            [d.tensor, operations.drop_blocks(d.other, d.keys)],
            "samples",
            different_keys="union",
            add_dimension="tensor",
        ),
        operations.join(
            [d.tensor, operations.drop_blocks(d.other, d.keys)],
            "properties",
            different_keys="intersection",
            add_dimension="tensor",
        ),
    ],
    "join_blocks": lambda d: [
        operations.join_blocks([d.block, d.other.block(1)], "samples", "tensor"),
        operations.join_blocks([d.block, d.other.block(1)], "properties", "tensor"),
    ],
    # _slice
    "slice": lambda d: [
        operations.slice(d.tensor, "samples", d.selection),
        operations.slice(d.tensor, "properties", d.properties_selection),
        operations.slice(d.tensor, "samples", d.empty_selection),
    ],
    "slice_block": lambda d: operations.slice_block(d.block, "samples", d.selection),
    "split": lambda d: operations.split(
        d.tensor, "samples", [d.selection, d.other_selection]
    ),
    "split_block": lambda d: operations.split_block(
        d.block, "samples", [d.selection, d.other_selection]
    ),
    # _sort
    "sort": lambda d: operations.sort(
        operations.join([d.other, d.tensor], "samples", add_dimension="tensor")
    ),
    "sort_block": lambda d: operations.sort_block(d.block, descending=True),
    # _dimensions
    "append_dimension": lambda d: [
        operations.append_dimension(d.tensor, "keys", "new", d.new_values),
        operations.append_dimension(d.tensor, "properties", "new", 3),
    ],
    "insert_dimension": lambda d: [
        operations.insert_dimension(d.tensor, "samples", 0, "new", 1),
        operations.insert_dimension(d.tensor, "keys", 1, "new", d.new_values),
    ],
    "permute_dimensions": lambda d: [
        operations.permute_dimensions(d.tensor, "samples", [1, 0]),
        operations.permute_dimensions(d.tensor, "keys", [1, 0]),
    ],
    "remove_dimension": lambda d: operations.remove_dimension(
        operations.append_dimension(d.tensor, "samples", "new", 3), "samples", "new"
    ),
    "rename_dimension": lambda d: [
        operations.rename_dimension(d.tensor, "samples", "atom", "center"),
        operations.rename_dimension(d.tensor, "keys", "key_1", "first"),
    ],
    # _reduce
    "sum_over_samples": lambda d: [
        operations.sum_over_samples(d.tensor, "atom"),
        operations.sum_over_samples(d.tensor, ["system", "atom"]),
    ],
    "sum_over_samples_block": lambda d: operations.sum_over_samples_block(
        d.block, ["atom"]
    ),
    "mean_over_samples": lambda d: operations.mean_over_samples(d.tensor, "atom"),
    "mean_over_samples_block": lambda d: operations.mean_over_samples_block(
        d.block, "system"
    ),
    "var_over_samples": lambda d: operations.var_over_samples(d.tensor, "atom"),
    "var_over_samples_block": lambda d: operations.var_over_samples_block(
        d.block, "atom"
    ),
    "std_over_samples": lambda d: operations.std_over_samples(d.tensor, "atom"),
    "std_over_samples_block": lambda d: operations.std_over_samples_block(
        d.block, "atom"
    ),
    "sum_over_properties": lambda d: operations.sum_over_properties(d.tensor, "n"),
    "sum_over_properties_block": lambda d: operations.sum_over_properties_block(
        d.block, "n"
    ),
    "mean_over_properties": lambda d: operations.mean_over_properties(d.tensor, "n"),
    "mean_over_properties_block": lambda d: operations.mean_over_properties_block(
        d.block, "n"
    ),
    "var_over_properties": lambda d: operations.var_over_properties(d.tensor, "n"),
    "var_over_properties_block": lambda d: operations.var_over_properties_block(
        d.block, "n"
    ),
    "std_over_properties": lambda d: operations.std_over_properties(d.tensor, "n"),
    "std_over_properties_block": lambda d: operations.std_over_properties_block(
        d.block, "n"
    ),
}

# values which are not deterministic: only the metadata, device, dtype and
# shape are compared
RANDOM = {
    "empty_like",
    "empty_like_block",
    "random_uniform_like",
    "random_uniform_like_block",
}


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
        expected = CALLS[name](expected_inputs)

    if torch_paths:
        from metatensor_operations import _dispatch

        for shortcut in NUMPY_SHORTCUTS:
            assert hasattr(_dispatch, shortcut)
            monkeypatch.setattr(_dispatch, shortcut, lambda *args: None)

    inputs = _inputs(dtype, device)
    inputs.device = device
    with elsewhere(device):
        result = CALLS[name](inputs)

    _check(result, expected, device, dtype, values=name not in RANDOM)


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
        _tensor().to(arrays="torch", dtype=torch.float32, device=device)
    )
    leaves = [block.values for block in tensor.blocks()]
    selection = Labels(["atom"], torch.tensor([[1]], device=device))
    with elsewhere(device):
        result = AUTOGRAD[name](tensor, selection)
        loss = sum(block.values.sum() for block in result.blocks())
        loss.backward()
    for leaf in leaves:
        assert leaf.grad is not None
        assert _on_device(leaf.grad, device)
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
