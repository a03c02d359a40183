"""Tests of the internal array dispatch layer."""

import numpy as np
import pytest

from metatensor import _array
from metatensor._to import convert_array, parse_to_arguments


def test_kinds_numpy():
    array = np.zeros((2, 3))
    assert _array.array_kind(array) == "numpy"
    assert _array.is_numpy(array)
    assert not _array.is_torch(array)
    assert _array.origin(array) == "python.numpy"
    assert _array.device(array) == "cpu"
    assert _array.device_name(array) == "CPU:0"
    assert _array.dtype_name(array) == "f64"
    assert _array.array_kind([1, 2]) is None
    assert _array.array_kind(3.0) is None


@pytest.mark.parametrize(
    "dtype, name",
    [
        (np.float16, "f16"),
        (np.float32, "f32"),
        (np.int8, "i8"),
        (np.uint64, "u64"),
        (np.bool_, "bool"),
        (np.complex64, "complex64"),
        (np.complex128, "complex128"),
    ],
)
def test_dtype_names(dtype, name):
    assert _array.dtype_name(np.zeros(1, dtype=dtype)) == name
    assert _array.dtype_name(np.dtype(dtype)) == name


def test_numpy_functions():
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    full = _array.full((2, 2), 3, array)
    assert full.dtype == np.float32
    np.testing.assert_equal(full, 3)
    np.testing.assert_equal(
        _array.take(array, np.array([2, 0]), axis=1), array[:, [2, 0]]
    )
    np.testing.assert_equal(_array.moveaxis(array, 1, -1), np.moveaxis(array, 1, -1))
    np.testing.assert_equal(
        _array.concatenate([array, array], axis=2), np.concatenate([array] * 2, axis=2)
    )
    copied = _array.copy(array)
    copied[0] = -1
    assert array[0, 0, 0] == 0

    output = _array.zeros((4, 4), array)
    _array.set_rows(output, np.array([3, 1]), np.ones((2, 4), dtype=np.float32))
    np.testing.assert_equal(output.sum(axis=1), [0, 4, 0, 4])


def test_torch_functions(torch):
    tensor = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4)
    assert _array.is_torch(tensor)
    assert _array.origin(tensor) == "python.torch"
    assert _array.device(tensor) == torch.device("cpu")
    assert _array.device_name(tensor) == "CPU:0"
    assert _array.dtype_name(tensor) == "f64"
    assert _array.dtype_name(torch.bfloat16) == "bfloat16"
    assert _array.device_name(torch.zeros(2, device="meta")) == "ExtDev:0"

    taken = _array.take(tensor, np.array([2, 0]), axis=1)
    assert torch.equal(taken, tensor[:, [2, 0]])
    assert _array.full((2,), 1.5, tensor).dtype == torch.float64
    np.testing.assert_equal(_array.to_numpy(tensor), tensor.numpy())

    source = torch.ones(2, 4, requires_grad=True)
    output = _array.zeros((3, 4), source)
    _array.set_rows(output, np.array([2, 0]), source * 2)
    output.sum().backward()
    assert torch.equal(source.grad, torch.full((2, 4), 2.0))


def test_array_api_functions():
    xp = pytest.importorskip("array_api_strict")
    array = xp.reshape(xp.arange(6, dtype=xp.float64), (2, 3))
    assert _array.array_kind(array) == "array_api"
    assert _array.origin(array) == "python.array_api_strict"
    assert _array.device_name(array) == "CPU:0"
    assert _array.dtype_name(array) == "f64"
    np.testing.assert_equal(_array.to_numpy(array), np.arange(6.0).reshape(2, 3))
    taken = _array.take(array, np.array([1]), axis=0)
    np.testing.assert_equal(_array.to_numpy(taken), [[3.0, 4.0, 5.0]])
    moved = _array.moveaxis(array, 0, 1)
    assert moved.shape == (3, 2)
    full = _array.full((2,), 7, array)
    assert full.dtype == xp.float64
    concat = _array.concatenate([array, array], axis=0)
    assert concat.shape == (4, 3)


def test_parse_to_arguments():
    parsed = parse_to_arguments("`X.to`", ("cpu", np.float32))
    assert parsed.device == "cpu"
    assert parsed.dtype == np.float32
    assert parsed.arrays is None

    with pytest.raises(ValueError, match="can not give a device twice in `X.to`"):
        parse_to_arguments("`X.to`", ("cpu",), device="cpu")
    with pytest.raises(ValueError, match="can not give a dtype twice in `X.to`"):
        parse_to_arguments("`X.to`", (np.float32, np.float64))
    with pytest.raises(TypeError, match="unexpected type in `X.to`: <class 'list'>"):
        parse_to_arguments("`X.to`", ([],))
    with pytest.raises(ValueError, match="unknown array backend: 'jax'"):
        parse_to_arguments("`X.to`", (), arrays="jax")


def test_convert_array_numpy():
    array = np.arange(3, dtype=np.float64)
    assert convert_array(array) is array
    assert convert_array(array, dtype=np.float32).dtype == np.float32
    with pytest.raises(
        ValueError, match="can not move numpy array to non-cpu device: test"
    ):
        convert_array(array, device="test")


def test_convert_array_torch(torch):
    array = np.arange(3, dtype=np.float64)
    tensor = convert_array(array, arrays="torch", dtype=torch.float32)
    assert isinstance(tensor, torch.Tensor)
    assert tensor.dtype == torch.float32

    back = convert_array(tensor, arrays="numpy", dtype=torch.float64)
    assert isinstance(back, np.ndarray)
    assert back.dtype == np.float64

    meta = convert_array(tensor, device="meta")
    assert meta.device.type == "meta"

    # read-only numpy arrays are copied before going to torch
    readonly = np.arange(3, dtype=np.int32)
    readonly.setflags(write=False)
    assert convert_array(readonly, arrays="torch").dtype == torch.int32
