"""Helpers shared by the device tests (``test_devices.py``) of metatensor-core,
metatensor-operations and metatensor-torch: numpy test data, one call of every
public operation, and the checks that a result computed with data on a device
is the expected one and lives entirely on that device.

The tests import this module as ``device_checks``: the root ``pyproject.toml``
adds ``tests/_helpers`` to pytest's ``pythonpath`` (no tests are collected
here). Importing it does not import torch, since the device tests of
metatensor-core and metatensor-operations are skipped without torch: the
functions needing torch import it when they are called.
"""

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Callable, Dict, Tuple, Union

import numpy as np

from metatensor import Labels, TensorBlock, TensorMap


if TYPE_CHECKING:
    import torch

    Device = Union[str, torch.device]
else:
    Device = Any

#: ``(rtol, atol)`` used to compare floating point values, by dtype name
#: (``"float64"``, ``"float32"``) of the result
Tolerances = Dict[str, Tuple[float, float]]


# =========================================================================== #
# numpy data                                                                  #
# =========================================================================== #


def _numpy_block(
    rng: np.random.Generator, n_samples: int, n_properties: int, components: bool
) -> TensorBlock:
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


def numpy_tensor(seed: int = 0, components: bool = False) -> TensorMap:
    """A tensor map of metatensor-core holding numpy arrays.

    It has three blocks with keys ``(key_1, key_2)``, samples ``(system,
    atom)``, three properties ``n``, ``positions`` gradients and the info
    ``unit = eV``.

    :param seed: seed of the random values
    :param components: whether the blocks (and gradients) have an ``o3_mu``
        component of size 3
    :return: the tensor map, with float64 values
    """
    rng = np.random.default_rng(seed)
    keys = Labels(
        ["key_1", "key_2"], np.array([[0, 0], [1, 0], [1, 2]], dtype=np.int32)
    )
    blocks = [_numpy_block(rng, n, 3, components) for n in (4, 6, 2)]
    tensor = TensorMap(keys, blocks)
    tensor.set_info("unit", "eV")
    return tensor


# =========================================================================== #
# one call of every public operation                                          #
# =========================================================================== #

#: operations whose values are not deterministic: only the metadata, device,
#: dtype and shape of their results are compared
RANDOM_OPERATIONS = {
    "empty_like",
    "empty_like_block",
    "random_uniform_like",
    "random_uniform_like_block",
}


def _with_checks(ops: Any, d: SimpleNamespace) -> Any:
    assert ops.checks_enabled()
    with ops.unsafe_disable_checks():
        assert not ops.checks_enabled()
        with ops.unsafe_enable_checks():
            result = ops.add(d.tensor, d.tensor)
    return result


def operation_calls(
    raises_not_equal: Callable[[Any, Callable[[], Any]], Any],
) -> Dict[str, Callable[[Any, SimpleNamespace], Any]]:
    """One call (or a few) of every public name of the operations.

    Each function of the returned dictionary takes the operations module
    ``ops`` (``metatensor.operations``, or ``metatensor.torch.operations``)
    and a namespace ``d`` of inputs (``tensor``, ``other``, ``components``,
    ``no_gradients``, ``block``, ``X``, ``Y``, ``square``, ``rhs``, ``array``,
    ``selection``, ``other_selection``, ``properties_selection``, ``keys``,
    ``labels``, ``dimension``, ``new_values``, ``empty_selection``,
    ``empty_labels`` and ``empty_dimension``), and returns the results.

    :param raises_not_equal: called as ``raises_not_equal(ops, function)``;
        checks that ``function()`` raises ``ops.NotEqualError`` and returns
        something to compare between the expected and actual results
    :return: the functions, by public name of the operations
    """

    return {
        # _utils
        "checks_enabled": _with_checks,
        "unsafe_disable_checks": _with_checks,
        "unsafe_enable_checks": _with_checks,
        "NotEqualError": lambda ops, d: raises_not_equal(
            ops, lambda: ops.equal_raise(d.tensor, d.other)
        ),
        # _comparison
        "allclose": lambda ops, d: [
            ops.allclose(d.tensor, d.tensor),
            ops.allclose(d.tensor, d.other),
        ],
        "allclose_block": lambda ops, d: [
            ops.allclose_block(d.block, d.block),
            ops.allclose_block(d.block, d.other.block(1)),
        ],
        "allclose_block_raise": lambda ops, d: [
            ops.allclose_block_raise(d.block, d.block),
            raises_not_equal(
                ops, lambda: ops.allclose_block_raise(d.block, d.other.block(1))
            ),
        ],
        "allclose_raise": lambda ops, d: [
            ops.allclose_raise(d.tensor, d.tensor),
            raises_not_equal(ops, lambda: ops.allclose_raise(d.tensor, d.other)),
        ],
        "equal": lambda ops, d: [
            ops.equal(d.tensor, d.tensor),
            ops.equal(d.tensor, d.other),
        ],
        "equal_block": lambda ops, d: [
            ops.equal_block(d.block, d.block),
            ops.equal_block(d.block, d.other.block(1)),
        ],
        "equal_block_raise": lambda ops, d: [
            ops.equal_block_raise(d.block, d.block),
            raises_not_equal(
                ops, lambda: ops.equal_block_raise(d.block, d.other.block(1))
            ),
        ],
        "equal_raise": lambda ops, d: [
            ops.equal_raise(d.tensor, d.tensor),
            raises_not_equal(ops, lambda: ops.equal_raise(d.tensor, d.other)),
        ],
        "equal_metadata": lambda ops, d: [
            ops.equal_metadata(d.tensor, d.other),
            ops.equal_metadata(d.tensor, d.components),
        ],
        "equal_metadata_block": lambda ops, d: [
            ops.equal_metadata_block(d.block, d.other.block(1)),
            ops.equal_metadata_block(d.block, d.tensor.block(0)),
        ],
        "equal_metadata_block_raise": lambda ops, d: [
            ops.equal_metadata_block_raise(d.block, d.other.block(1)),
            raises_not_equal(
                ops, lambda: ops.equal_metadata_block_raise(d.block, d.tensor.block(0))
            ),
        ],
        "equal_metadata_raise": lambda ops, d: [
            ops.equal_metadata_raise(d.tensor, d.other),
            raises_not_equal(
                ops, lambda: ops.equal_metadata_raise(d.tensor, d.components)
            ),
        ],
        # _math
        "abs": lambda ops, d: ops.abs(d.tensor),
        "add": lambda ops, d: [ops.add(d.tensor, d.other), ops.add(d.tensor, 2.5)],
        "divide": lambda ops, d: [
            ops.divide(d.tensor, d.other),
            ops.divide(d.tensor, 2.5),
        ],
        "multiply": lambda ops, d: [
            ops.multiply(d.tensor, d.other),
            ops.multiply(d.tensor, 2.5),
        ],
        "pow": lambda ops, d: [ops.pow(d.tensor, 2), ops.pow(d.tensor, 0.5)],
        "subtract": lambda ops, d: [
            ops.subtract(d.tensor, d.other),
            ops.subtract(d.tensor, 2.5),
        ],
        # _linalg
        "dot": lambda ops, d: ops.dot(d.tensor, d.no_gradients),
        "lstsq": lambda ops, d: ops.lstsq(d.X, d.Y, rcond=1e-10),
        "solve": lambda ops, d: ops.solve(d.square, d.rhs),
        # _creation
        "block_from_array": lambda ops, d: [
            ops.block_from_array(d.array),
            ops.block_from_array(
                d.array, sample_names=["a", "b"], property_names=["p"]
            ),
            ops.block_from_array(d.array, property_names=["p", "q"]),
        ],
        "empty_like": lambda ops, d: ops.empty_like(d.tensor),
        "empty_like_block": lambda ops, d: ops.empty_like_block(d.block),
        "ones_like": lambda ops, d: ops.ones_like(d.tensor, requires_grad=True),
        "ones_like_block": lambda ops, d: ops.ones_like_block(d.block),
        "zeros_like": lambda ops, d: ops.zeros_like(d.tensor, gradients="positions"),
        "zeros_like_block": lambda ops, d: ops.zeros_like_block(d.block),
        "random_uniform_like": lambda ops, d: ops.random_uniform_like(d.tensor),
        "random_uniform_like_block": lambda ops, d: ops.random_uniform_like_block(
            d.block, requires_grad=True
        ),
        "one_hot": lambda ops, d: [
            ops.one_hot(d.labels, d.dimension),
            ops.one_hot(d.empty_labels, d.empty_dimension),
        ],
        # _autograd
        "detach": lambda ops, d: ops.detach(d.tensor),
        "detach_block": lambda ops, d: ops.detach_block(d.block),
        "requires_grad": lambda ops, d: ops.requires_grad(d.tensor),
        "requires_grad_block": lambda ops, d: ops.requires_grad_block(d.block),
        # _blocks
        "is_contiguous": lambda ops, d: ops.is_contiguous(d.tensor),
        "is_contiguous_block": lambda ops, d: ops.is_contiguous_block(d.block),
        "make_contiguous": lambda ops, d: ops.make_contiguous(d.tensor),
        "make_contiguous_block": lambda ops, d: ops.make_contiguous_block(d.block),
        "remove_gradients": lambda ops, d: ops.remove_gradients(d.tensor),
        "remove_gradients_block": lambda ops, d: ops.remove_gradients_block(d.block),
        "drop_blocks": lambda ops, d: ops.drop_blocks(d.tensor, d.keys),
        "drop_empty_blocks": lambda ops, d: ops.drop_empty_blocks(
            ops.slice(d.tensor, "samples", d.other_selection)
        ),
        "filter_blocks": lambda ops, d: ops.filter_blocks(d.tensor, d.keys),
        # _unique
        "unique_metadata": lambda ops, d: [
            ops.unique_metadata(d.tensor, "samples", "system"),
            ops.unique_metadata(d.tensor, "samples", ["atom"], "positions"),
            ops.unique_metadata(d.tensor, "properties", "n"),
            ops.unique_metadata(
                ops.drop_blocks(d.tensor, d.tensor.keys), "samples", "system"
            ),
        ],
        "unique_metadata_block": lambda ops, d: [
            ops.unique_metadata_block(d.block, "samples", ["system"]),
            ops.unique_metadata_block(d.block, "properties", "n", "positions"),
        ],
        # _join
        "join": lambda ops, d: [
            ops.join([d.tensor, d.other], "samples", add_dimension="tensor"),
            ops.join([d.tensor, d.other], "properties", add_dimension="tensor"),
            ops.join(
                [d.tensor, ops.drop_blocks(d.other, d.keys)],
                "samples",
                different_keys="union",
                add_dimension="tensor",
            ),
            ops.join(
                [d.tensor, ops.drop_blocks(d.other, d.keys)],
                "properties",
                different_keys="intersection",
                add_dimension="tensor",
            ),
        ],
        "join_blocks": lambda ops, d: [
            ops.join_blocks([d.block, d.other.block(1)], "samples", "tensor"),
            ops.join_blocks([d.block, d.other.block(1)], "properties", "tensor"),
        ],
        # _slice
        "slice": lambda ops, d: [
            ops.slice(d.tensor, "samples", d.selection),
            ops.slice(d.tensor, "properties", d.properties_selection),
            ops.slice(d.tensor, "samples", d.empty_selection),
        ],
        "slice_block": lambda ops, d: ops.slice_block(d.block, "samples", d.selection),
        "split": lambda ops, d: ops.split(
            d.tensor, "samples", [d.selection, d.other_selection]
        ),
        "split_block": lambda ops, d: [
            ops.split_block(d.block, "samples", [d.selection, d.other_selection]),
            ops.split_block(d.block, "properties", [d.properties_selection]),
        ],
        # _sort
        "sort": lambda ops, d: ops.sort(
            ops.join([d.other, d.tensor], "samples", add_dimension="tensor")
        ),
        "sort_block": lambda ops, d: ops.sort_block(d.block, descending=True),
        # _dimensions
        "append_dimension": lambda ops, d: [
            ops.append_dimension(d.tensor, "keys", "new", d.new_values),
            ops.append_dimension(d.tensor, "properties", "new", 3),
        ],
        "insert_dimension": lambda ops, d: [
            ops.insert_dimension(d.tensor, "samples", 0, "new", 1),
            ops.insert_dimension(d.tensor, "keys", 1, "new", d.new_values),
        ],
        "permute_dimensions": lambda ops, d: [
            ops.permute_dimensions(d.tensor, "samples", [1, 0]),
            ops.permute_dimensions(d.tensor, "keys", [1, 0]),
        ],
        "remove_dimension": lambda ops, d: ops.remove_dimension(
            ops.append_dimension(d.tensor, "samples", "new", 3), "samples", "new"
        ),
        "rename_dimension": lambda ops, d: [
            ops.rename_dimension(d.tensor, "samples", "atom", "center"),
            ops.rename_dimension(d.tensor, "keys", "key_1", "first"),
        ],
        # _reduce
        "sum_over_samples": lambda ops, d: [
            ops.sum_over_samples(d.tensor, "atom"),
            ops.sum_over_samples(d.tensor, ["system", "atom"]),
        ],
        "sum_over_samples_block": lambda ops, d: ops.sum_over_samples_block(
            d.block, ["atom"]
        ),
        "mean_over_samples": lambda ops, d: ops.mean_over_samples(d.tensor, "atom"),
        "mean_over_samples_block": lambda ops, d: ops.mean_over_samples_block(
            d.block, "system"
        ),
        "var_over_samples": lambda ops, d: ops.var_over_samples(d.tensor, "atom"),
        "var_over_samples_block": lambda ops, d: ops.var_over_samples_block(
            d.block, "atom"
        ),
        "std_over_samples": lambda ops, d: ops.std_over_samples(d.tensor, "atom"),
        "std_over_samples_block": lambda ops, d: ops.std_over_samples_block(
            d.block, "atom"
        ),
        "sum_over_properties": lambda ops, d: ops.sum_over_properties(d.tensor, "n"),
        "sum_over_properties_block": lambda ops, d: ops.sum_over_properties_block(
            d.block, "n"
        ),
        "mean_over_properties": lambda ops, d: ops.mean_over_properties(d.tensor, "n"),
        "mean_over_properties_block": lambda ops, d: ops.mean_over_properties_block(
            d.block, "n"
        ),
        "var_over_properties": lambda ops, d: ops.var_over_properties(d.tensor, "n"),
        "var_over_properties_block": lambda ops, d: ops.var_over_properties_block(
            d.block, "n"
        ),
        "std_over_properties": lambda ops, d: ops.std_over_properties(d.tensor, "n"),
        "std_over_properties_block": lambda ops, d: ops.std_over_properties_block(
            d.block, "n"
        ),
    }


# =========================================================================== #
# checks                                                                      #
# =========================================================================== #


def on_device(array: "torch.Tensor", device: Device) -> bool:
    """Whether ``array`` is on ``device``.

    :param array: a torch tensor
    :param device: the device; without an index (``cuda``), any device of this
        type matches
    :return: ``True`` when ``array`` is on ``device``
    """
    import torch

    device = torch.device(device)
    return array.device.type == device.type and (
        device.index is None or array.device.index == device.index
    )


def to_numpy(array: Union[np.ndarray, "torch.Tensor"]) -> np.ndarray:
    """The values of ``array`` as a numpy array.

    :param array: a numpy array, or a torch tensor on any device
    :return: ``array`` itself, or a copy of the tensor on the CPU
    """
    if isinstance(array, np.ndarray):
        return array
    return array.detach().cpu().numpy()


def _dtype_name(array: Union[np.ndarray, "torch.Tensor"]) -> str:
    return str(array.dtype).replace("torch.", "")


def _is_floating(array: Union[np.ndarray, "torch.Tensor"]) -> bool:
    return _dtype_name(array).startswith(("float", "bfloat"))


def _check_array(
    array: Any,
    expected: Union[np.ndarray, "torch.Tensor"],
    device: Device,
    dtype: "torch.dtype",
    values: bool,
    tolerances: Tolerances,
) -> None:
    import torch

    assert isinstance(array, torch.Tensor), type(array)
    assert on_device(array, device), f"tensor on {array.device}, not {device}"
    if _is_floating(array) or _is_floating(expected):
        assert array.dtype == dtype, f"{array.dtype} is not {dtype}"
    else:
        # integer results keep the integer dtype of the expected result
        assert _dtype_name(array) == _dtype_name(expected), array.dtype
    assert tuple(array.shape) == tuple(expected.shape)
    if values:
        actual = to_numpy(array)
        if _is_floating(actual):
            rtol, atol = tolerances[actual.dtype.name]
            np.testing.assert_allclose(actual, to_numpy(expected), rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(actual, to_numpy(expected))


def _check_labels(labels: Any, expected: Any, device: Device) -> None:
    import torch

    assert type(labels) is type(expected), type(labels)
    assert labels.names == expected.names
    assert isinstance(labels.values, torch.Tensor), "Labels values are not torch"
    assert on_device(labels.values, device), f"Labels on {labels.values.device}"
    assert labels.values.dtype == torch.int32
    np.testing.assert_array_equal(to_numpy(labels.values), to_numpy(expected.values))


def _check_block(
    block: Any,
    expected: Any,
    device: Device,
    dtype: "torch.dtype",
    values: bool,
    tolerances: Tolerances,
) -> None:
    assert type(block) is type(expected), type(block)
    _check_array(block.values, expected.values, device, dtype, values, tolerances)
    _check_labels(block.samples, expected.samples, device)
    assert len(block.components) == len(expected.components)
    for component, expected_component in zip(block.components, expected.components):
        _check_labels(component, expected_component, device)
    _check_labels(block.properties, expected.properties, device)
    assert block.gradients_list() == expected.gradients_list()
    for parameter, gradient in block.gradients():
        expected_gradient = expected.gradient(parameter)
        _check_block(gradient, expected_gradient, device, dtype, values, tolerances)


def check(
    result: Any,
    expected: Any,
    device: Device,
    dtype: "torch.dtype",
    values: bool = True,
    *,
    tolerances: Tolerances,
    numpy_arrays: bool = False,
) -> None:
    """Check that ``result``, computed with data on ``device``, is the same as
    ``expected`` and lives entirely on ``device``.

    ``result`` holds torch tensors, in classes of metatensor-core
    (``metatensor.TensorMap``, ...) or of ``metatensor.torch``; ``expected``
    is made of the same classes, holding numpy arrays (metatensor-core) or CPU
    tensors (``metatensor.torch``). Tensor maps, blocks, gradients, Labels,
    Labels entries and arrays are compared recursively, as are the items of
    lists and tuples; anything else must compare equal with ``==``.

    Every tensor must be on ``device``, floating point values with ``dtype``
    and integer arrays with the dtype of the expected ones; every Labels must
    hold ``int32`` torch tensors on ``device``.

    :param result: the result computed with data on ``device``
    :param expected: the same computation with numpy arrays or CPU tensors
    :param device: the device of the data
    :param dtype: the floating point dtype of the data
    :param values: whether to compare the values of arrays (``False`` for
        random or uninitialized values: the device, dtype and shape are still
        checked)
    :param tolerances: ``(rtol, atol)`` for floating point values, by dtype
        name of the result
    :param numpy_arrays: whether numpy arrays are accepted where numpy arrays
        are expected (the positions and mappings of the Labels of
        metatensor-core are numpy arrays for all backends), instead of
        requiring torch tensors
    """
    import torch

    kind = type(expected).__name__
    if kind == "TensorMap":
        assert type(result) is type(expected), type(result)
        _check_labels(result.keys, expected.keys, device)
        assert len(result) == len(expected)
        for block, expected_block in zip(result.blocks(), expected.blocks()):
            _check_block(block, expected_block, device, dtype, values, tolerances)
        assert result.info() == expected.info()
    elif kind == "TensorBlock":
        _check_block(result, expected, device, dtype, values, tolerances)
    elif kind == "Labels":
        _check_labels(result, expected, device)
    elif kind == "LabelsEntry":
        assert type(result) is type(expected), type(result)
        assert result.names == expected.names
        _check_array(result.values, expected.values, device, dtype, values, tolerances)
    elif numpy_arrays and isinstance(expected, np.ndarray):
        if isinstance(result, np.ndarray):
            np.testing.assert_array_equal(result, expected)
        else:
            _check_array(result, expected, device, dtype, values, tolerances)
    elif isinstance(expected, (np.ndarray, torch.Tensor)):
        _check_array(result, expected, device, dtype, values, tolerances)
    elif isinstance(expected, (list, tuple)):
        assert len(result) == len(expected)
        for item, expected_item in zip(result, expected):
            check(
                item,
                expected_item,
                device,
                dtype,
                values,
                tolerances=tolerances,
                numpy_arrays=numpy_arrays,
            )
    else:
        assert result == expected
