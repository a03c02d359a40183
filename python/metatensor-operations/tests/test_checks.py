"""Global checks toggle, shared metadata-check helpers and array dispatch."""

import os
import subprocess
import sys

import numpy as np
import pytest

import metatensor as mts
from metatensor import Labels, TensorBlock
from metatensor.operations import (
    NotEqualError,
    checks_enabled,
    unsafe_disable_checks,
    unsafe_enable_checks,
)
from metatensor_operations import _dispatch, _utils

from ._tensors import tensor


def test_checks_toggle():
    assert checks_enabled()
    with unsafe_disable_checks() as context:
        assert not checks_enabled()
        assert repr(context) == "checks disabled"
        with unsafe_enable_checks() as inner:
            assert checks_enabled()
            assert repr(inner) == "checks enabled"
        assert not checks_enabled()
    assert checks_enabled()

    # the state changes at construction
    toggle = unsafe_disable_checks()
    assert not checks_enabled()
    toggle.__exit__(None, None, None)
    assert checks_enabled()


@pytest.mark.parametrize(
    "value, expected", [("1", False), ("on", False), ("YES", False), ("0", True)]
)
def test_checks_environment(value, expected):
    env = dict(os.environ)
    env["METATENSOR_UNSAFE_DISABLE_CHECKS"] = value
    code = "import metatensor.operations as o; print(o.checks_enabled())"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(expected)


def test_not_equal_error():
    assert issubclass(NotEqualError, Exception)
    assert mts.NotEqualError is NotEqualError


def test_check_helpers():
    A = tensor(0, components=True)
    B = tensor(0, components=False)
    assert _utils._check_same_keys(A, B, "test")
    _utils._check_same_keys_raise(A, B, "test")

    assert not _utils._check_blocks(A.block(0), B.block(0), "test")
    assert _utils._check_blocks(
        A.block(0), B.block(0), "test", check=["samples", "properties"]
    )
    message = (
        "inputs to 'test' should have the same components:\n"
        "components of the two `TensorBlock` have different lengths"
    )
    with pytest.raises(NotEqualError, match=message):
        _utils._check_blocks_raise(A.block(0), B.block(0), "test")

    block = A.block(0)
    other = TensorBlock(
        block.values,
        block.samples,
        [Labels(["other"], block.components[0].values)],
        block.properties,
    )
    message = (
        "inputs to 'test' should have the same components:\n"
        "components names are not the same or not in the same order"
    )
    with pytest.raises(NotEqualError, match=message):
        _utils._check_blocks_raise(block, other, "test", check=["components"])
    message = (
        "inputs to 'test' should have the same gradients:\n"
        "the two `TensorBlock` have different numbers of gradients"
    )
    with pytest.raises(NotEqualError, match=message):
        _utils._check_same_gradients_raise(block, other, "test")
    assert _utils._check_same_gradients(block, block, "test")

    with pytest.raises(ValueError, match="requested gradient 'x' in 'test'"):
        _utils._check_gradient_presence_raise(block, ["positions", "x"], "test")


def test_dispatch_type_errors():
    message = "unknown array type, only numpy arrays and torch tensors are supported"
    with pytest.raises(TypeError, match=message):
        _dispatch.abs([1, 2])
    with pytest.raises(TypeError, match=message):
        _dispatch.zeros_like([1.0], [2])
    with pytest.raises(TypeError, match=message):
        _dispatch.allclose([1.0], np.ones(1))


def test_dispatch_mixed_types(torch):
    with pytest.raises(TypeError, match="can not mix numpy arrays and torch tensors"):
        _dispatch.allclose(torch.ones(2), np.ones(2))
    with pytest.raises(TypeError, match="can not mix numpy arrays and torch tensors"):
        _dispatch.dot(np.ones((2, 2)), torch.ones(2, 2))


def test_dispatch_index_add():
    output = np.zeros((3, 2))
    _dispatch.index_add(output, np.ones((4, 2)), np.array([0, 2, 0, 1]))
    np.testing.assert_array_equal(output, [[2, 2], [1, 1], [1, 1]])
    output = np.zeros(3)
    _dispatch.index_add(output, np.arange(4.0), np.array([0, 2, 0, 1]))
    np.testing.assert_array_equal(output, [2, 3, 1])


def test_dispatch_unique_and_argsort(torch):
    values = np.array([[1, 2], [0, 5], [1, 0], [0, 5]], dtype=np.int32)
    unique, inverse = _dispatch.unique(values, 0, return_inverse=True)
    np.testing.assert_array_equal(unique, [[0, 5], [1, 0], [1, 2]])
    np.testing.assert_array_equal(unique[inverse], values)
    unique_t, inverse_t = _dispatch.unique(torch.from_numpy(values), 0, True)
    assert unique_t.tolist() == unique.tolist()
    assert inverse_t.tolist() == inverse.tolist()

    order = _dispatch.argsort_labels_values(values)
    np.testing.assert_array_equal(values[order], [[0, 5], [0, 5], [1, 0], [1, 2]])
    order = _dispatch.argsort_labels_values(torch.from_numpy(values), reverse=True)
    assert values[order.numpy()].tolist() == [[1, 2], [1, 0], [0, 5], [0, 5]]
