import warnings

import numpy as np
import pytest

import metatensor as mts
from metatensor import Labels, TensorBlock, TensorMap

from ._tensors import DATA_DIR, tensor


# ======================================================================== #
# requires_grad / detach                                                   #
# ======================================================================== #


def test_requires_grad_numpy():
    A = tensor(0)
    message = "`requires_grad=True` does nothing for numpy arrays"
    with pytest.warns(UserWarning, match=message):
        result = mts.requires_grad(A)
    assert mts.equal(result, A)
    assert result.block(0).values is A.block(0).values

    with pytest.warns(UserWarning, match=message):
        mts.requires_grad_block(A.block(0))

    # no warning when disabling
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mts.equal(mts.requires_grad(A, False), A)
        assert mts.equal(mts.detach(A), A)
        assert mts.equal_block(mts.detach_block(A.block(0)), A.block(0))


def test_requires_grad_torch(torch):
    A = tensor(0, components=True).to(arrays="torch")
    result = mts.requires_grad(A)
    assert mts.equal(result, A)
    for block in result.blocks():
        assert block.values.requires_grad
        for _, gradient in block.gradients():
            assert gradient.values.requires_grad

    message = "setting `requires_grad=True` again on a Tensor will detach the Tensor"
    with pytest.warns(UserWarning, match=message):
        again = mts.requires_grad(result)
    assert again.block(0).values.requires_grad
    assert again.block(0).values.grad_fn is None

    disabled = mts.requires_grad(result, requires_grad=False)
    assert not disabled.block(0).values.requires_grad
    assert not disabled.block(0).gradient("strain").values.requires_grad

    block = mts.requires_grad_block(A.block(1))
    assert block.values.requires_grad
    assert block.gradient("positions").values.requires_grad


def test_detach_torch(torch):
    A = mts.requires_grad(tensor(0).to(arrays="torch"))
    B = mts.multiply(A, 2.0)
    assert B.block(0).values.grad_fn is not None
    detached = mts.detach(B)
    assert mts.equal(detached, B)
    for block in detached.blocks():
        assert not block.values.requires_grad
        assert block.values.grad_fn is None
        for _, gradient in block.gradients():
            assert not gradient.values.requires_grad

    block = mts.detach_block(B.block(0))
    assert not block.values.requires_grad
    assert not block.gradient("positions").values.requires_grad


def test_requires_grad_backward(torch):
    A = mts.requires_grad(tensor(0).to(arrays="torch"))
    loss = mts.pow(A, 2).block(0).gradient("strain").values.sum()
    loss.backward()
    assert A.block(0).values.grad is not None
    assert A.block(0).gradient("strain").values.grad is not None


# ======================================================================== #
# contiguity                                                               #
# ======================================================================== #


def _non_contiguous(A: TensorMap) -> TensorMap:
    blocks = []
    for block in A.blocks():
        # a non-contiguous view with the same content
        values = np.asfortranarray(block.values)
        new = TensorBlock(values, block.samples, block.components, block.properties)
        for parameter, gradient in block.gradients():
            new.add_gradient(
                parameter,
                TensorBlock(
                    np.asfortranarray(gradient.values),
                    gradient.samples,
                    gradient.components,
                    gradient.properties,
                ),
            )
        blocks.append(new)
    return TensorMap(A.keys, blocks)


def test_contiguous():
    A = tensor(0, components=True)
    assert mts.is_contiguous(A)
    assert mts.is_contiguous_block(A.block(0))

    B = _non_contiguous(A)
    assert not mts.is_contiguous(B)
    assert not mts.is_contiguous_block(B.block(0))

    C = mts.make_contiguous(B)
    assert mts.is_contiguous(C)
    assert mts.equal(C, A)
    assert mts.is_contiguous_block(mts.make_contiguous_block(B.block(1)))

    # contiguous arrays are not copied
    D = mts.make_contiguous(A)
    assert D.block(0).values is A.block(0).values


def test_only_gradient_non_contiguous():
    A = tensor(0, components=True)
    block = A.block(0)
    new = TensorBlock(block.values, block.samples, block.components, block.properties)
    gradient = block.gradient("strain")
    new.add_gradient(
        "strain",
        TensorBlock(
            np.asfortranarray(gradient.values),
            gradient.samples,
            gradient.components,
            gradient.properties,
        ),
    )
    assert not mts.is_contiguous_block(new)
    assert mts.is_contiguous_block(mts.make_contiguous_block(new))


def test_contiguous_torch(torch):
    A = tensor(0, components=True).to(arrays="torch")
    assert mts.is_contiguous(A)
    block = A.block(0)
    values = block.values.transpose(0, 1).contiguous().transpose(0, 1)
    assert not values.is_contiguous()
    B = TensorMap(
        Labels.range("key", 1),
        [TensorBlock(values, block.samples, block.components, block.properties)],
    )
    assert not mts.is_contiguous(B)
    C = mts.make_contiguous(B)
    assert mts.is_contiguous(C)
    assert mts.equal_block(C.block(0), mts.remove_gradients_block(block))


# ======================================================================== #
# remove_gradients                                                         #
# ======================================================================== #


def test_remove_gradients():
    A = tensor(0)
    result = mts.remove_gradients(A)
    for block, a in zip(result.blocks(), A.blocks()):
        assert block.gradients_list() == []
        # arrays are shared
        assert block.values is a.values

    result = mts.remove_gradients(A, ["positions"])
    for block, a in zip(result.blocks(), A.blocks()):
        assert block.gradients_list() == ["strain"]
        assert block.gradient("strain").values is a.gradient("strain").values

    result = mts.remove_gradients(A, [])
    assert mts.equal(result, A)

    # unknown gradients are ignored
    result = mts.remove_gradients(A, ["cell"])
    assert mts.equal(result, A)

    block = mts.remove_gradients_block(A.block(0))
    assert block.gradients_list() == []
    block = mts.remove_gradients_block(A.block(0), ["strain"])
    assert block.gradients_list() == ["positions"]


def test_remove_gradients_empty_tensor():
    empty = TensorMap(Labels.empty(["key"]), [])
    assert len(mts.remove_gradients(empty)) == 0


def test_remove_gradients_real_data():
    ps = mts.load(DATA_DIR / "qm7-power-spectrum.mts")
    result = mts.remove_gradients(ps)
    assert mts.equal_metadata(result, ps, check_gradients=False)
    for block in result.blocks():
        assert block.gradients_list() == []


def test_type_errors():
    with pytest.raises(TypeError, match="`tensor` must be a metatensor TensorMap"):
        mts.detach(tensor(0).block(0))
    with pytest.raises(TypeError, match="`block` must be a metatensor TensorBlock"):
        mts.remove_gradients_block(tensor(0))


def test_gradients_of_gradients():
    block = TensorBlock(np.ones((1, 1)), Labels.range("s", 1), [], Labels.range("p", 1))
    gradient = TensorBlock(
        np.ones((1, 1)), Labels.range("sample", 1), [], Labels.range("p", 1)
    )
    gradient.add_gradient(
        "other",
        TensorBlock(
            np.ones((1, 1)), Labels.range("sample", 1), [], Labels.range("p", 1)
        ),
    )
    block.add_gradient("g", gradient)
    A = TensorMap(Labels.range("key", 1), [block])
    message = "gradients of gradients are not supported"
    with pytest.raises(NotImplementedError, match=message):
        mts.detach(A)
    with pytest.raises(NotImplementedError, match=message):
        mts.is_contiguous(A)
    with pytest.raises(NotImplementedError, match=message):
        mts.equal(A, A)
    # removing gradients keeps the gradients of the kept gradients
    kept = mts.remove_gradients(A, ["x"])
    assert kept.block(0).gradient("g").gradients_list() == ["other"]
