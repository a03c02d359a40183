"""The TensorMap / TensorBlock operators of metatensor-core delegate to the
operations."""

import os
import subprocess
import sys

import numpy as np
import pytest

import metatensor as mts
from metatensor.operations import NotEqualError

from ._tensors import tensor


def test_equality_operators():
    A = tensor(0)
    B = A.copy()
    assert A == B
    assert not (A != B)
    assert A.block(0) == B.block(0)
    assert not (A.block(0) != B.block(0))

    C = mts.add(A, 1.0)
    assert A != C
    assert not (A == C)
    assert A.block(1) != C.block(1)


def test_arithmetic_operators():
    A = tensor(0, components=True)
    B = tensor(1, components=True)
    assert mts.equal(A + B, mts.add(A, B))
    assert mts.equal(A + 2, mts.add(A, 2))
    assert mts.equal(A - B, mts.subtract(A, B))
    assert mts.equal(A - 1.5, mts.subtract(A, 1.5))
    assert mts.equal(A * B, mts.multiply(A, B))
    assert mts.equal(A * 3, mts.multiply(A, 3))
    assert mts.equal(A / B, mts.divide(A, B))
    assert mts.equal(A / 4.0, mts.divide(A, 4.0))
    assert mts.equal(A**2, mts.pow(A, 2))
    assert mts.equal(-A, mts.multiply(A, -1))
    assert mts.equal(+A, A)


def test_matmul_operator():
    A = tensor(0)
    W = mts.remove_gradients(tensor(1))
    # weights with the properties of A, samples become the new properties
    assert mts.equal(A @ W, mts.dot(A, W))


def test_no_reflected_operators():
    A = tensor(0)
    with pytest.raises(TypeError):
        1 + A
    with pytest.raises(TypeError):
        2 * A


def test_operator_errors():
    A = tensor(0)
    with pytest.raises(TypeError, match="`B` must be a scalar value"):
        A ** tensor(1)
    with pytest.raises(NotEqualError, match="inputs to 'add' should have the same"):
        A + tensor(0, components=True)


def test_operators_torch(torch):
    A = tensor(0).to(arrays="torch")
    assert A == A.copy()
    assert mts.allclose(A + A - A, A)
    assert mts.allclose((A * A) / A, A)


def test_numpy_only_import_does_not_import_torch():
    code = (
        "import sys, numpy as np, metatensor, metatensor.operations as ops\n"
        "from metatensor import Labels, TensorBlock, TensorMap\n"
        "b = TensorBlock(np.ones((2, 1)), Labels.range('s', 2), [], "
        "Labels.range('p', 1))\n"
        "t = TensorMap(Labels.range('k', 1), [b])\n"
        "t = ops.multiply(ops.add(t, t), 2)\n"
        "ops.lstsq(t, t, rcond=-1); ops.zeros_like(t); ops.requires_grad(t, False)\n"
        "ops.unique_metadata(t, 'samples', 's'); ops.one_hot(b.samples, b.samples)\n"
        "assert t == t\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = dict(os.environ)
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert np.__name__ == "numpy"
