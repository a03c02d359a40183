import numpy as np
import pytest

import metatensor as mts
from metatensor import Labels, TensorBlock, TensorMap
from metatensor.operations import NotEqualError

from ._tensors import DATA_DIR, reorder_keys, tensor


def _with_block(A: TensorMap, index: int, block: TensorBlock) -> TensorMap:
    blocks = [b.copy() for b in A.blocks()]
    blocks[index] = block
    return TensorMap(A.keys, blocks)


def _rebuild(block: TensorBlock, values=None, samples=None, gradient=None):
    """Copy of ``block`` with some parts replaced; ``gradient`` is a function
    applied to each (parameter, gradient) pair."""
    new = TensorBlock(
        block.values.copy() if values is None else values,
        block.samples if samples is None else samples,
        block.components,
        block.properties,
    )
    for parameter, g in block.gradients():
        if gradient is not None:
            g = gradient(parameter, g)
        if g is not None:
            new.add_gradient(parameter, g)
    return new


# ======================================================================== #
# equal                                                                    #
# ======================================================================== #


def test_equal_self_and_copy():
    A = tensor(0, components=True)
    assert mts.equal(A, A)
    assert mts.equal(A, A.copy())
    mts.equal_raise(A, A.copy())
    assert A == A.copy()
    assert not (A != A.copy())
    for block in A.blocks():
        assert mts.equal_block(block, block.copy())
        mts.equal_block_raise(block, block.copy())
        assert block == block.copy()


def test_equal_keys_order_free():
    A = tensor(0)
    assert mts.equal(A, reorder_keys(A, [2, 1, 0]))
    assert mts.allclose(A, reorder_keys(A, [1, 2, 0]))


def test_equal_values():
    A = tensor(0)
    B = A.copy()
    B.block(1).values[0, 0] += 1e-15
    assert not mts.equal(A, B)
    assert mts.allclose(A, B)
    key = "\\(key_1=1, key_2=0\\)"
    message = f"blocks for key {key} are different: values are not equal"
    with pytest.raises(NotEqualError, match=message):
        mts.equal_raise(A, B)
    with pytest.raises(NotEqualError, match="^values are not equal$"):
        mts.equal_block_raise(A.block(1), B.block(1))
    assert not mts.equal_block(A.block(1), B.block(1))


def test_equal_nan():
    block = TensorBlock(
        np.array([[np.nan, 1.0]]), Labels.range("s", 1), [], Labels.range("p", 2)
    )
    assert not mts.equal_block(block, block.copy())
    assert not mts.allclose_block(block, block.copy())
    assert mts.allclose_block(block, block.copy(), equal_nan=True)


def test_equal_shapes():
    A = tensor(0)
    block = A.block(0)
    other = TensorBlock(
        block.values[:2],
        Labels(block.samples.names, block.samples.values[:2]),
        [],
        block.properties,
    )
    with pytest.raises(NotEqualError, match="^values shapes are different$"):
        mts.equal_block_raise(block, other)
    with pytest.raises(NotEqualError, match="^values shapes are different$"):
        mts.allclose_block_raise(block, other)


def test_equal_metadata_differences():
    A = tensor(0)
    block = A.block(0)
    values = block.samples.values.copy()[::-1]
    reordered = _rebuild(block, samples=Labels(block.samples.names, values))
    message = (
        "inputs to 'equal' should have the same samples:\n"
        "samples are not the same or not in the same order"
    )
    with pytest.raises(NotEqualError, match=message):
        mts.equal_block_raise(block, reordered)
    message = message.replace("'equal'", "'allclose'")
    with pytest.raises(NotEqualError, match=message):
        mts.allclose_block_raise(block, reordered)


def test_equal_gradients():
    A = tensor(0)
    block = A.block(0)

    def drop_strain(parameter, g):
        return None if parameter == "strain" else g

    message = (
        "inputs to 'equal' should have the same gradients:\n"
        "the two `TensorBlock` have different numbers of gradients"
    )
    with pytest.raises(NotEqualError, match=message):
        mts.equal_block_raise(block, _rebuild(block, gradient=drop_strain))

    def change(parameter, g):
        values = g.values.copy()
        if parameter == "strain":
            values[0, 0, 0, 0] += 1e-15
        return TensorBlock(values, g.samples, g.components, g.properties)

    other = _rebuild(block, gradient=change)
    with pytest.raises(NotEqualError, match="^gradient 'strain' values are not equal$"):
        mts.equal_block_raise(block, other)
    assert mts.allclose_block(block, other)
    with pytest.raises(
        NotEqualError, match="^gradient 'strain' values are not allclose$"
    ):
        mts.allclose_block_raise(block, other, rtol=0, atol=0)


def test_equal_keys_errors():
    A = tensor(0)
    B = TensorMap(Labels(A.keys.names, A.keys.values[:2]), A.blocks()[:2])
    message = "inputs to 'equal' should have the same number of blocks, got 3 and 2"
    with pytest.raises(NotEqualError, match=message):
        mts.equal_raise(A, B)
    assert not mts.equal(A, B)
    assert not mts.allclose(A, B)
    message = "inputs to 'allclose' should have the same keys names"
    with pytest.raises(NotEqualError, match=message):
        mts.allclose_raise(A, TensorMap(Labels(["a", "b"], A.keys.values), A.blocks()))


def test_type_errors():
    A = tensor(0)
    with pytest.raises(TypeError, match="`tensor_2` must be a metatensor TensorMap"):
        mts.equal(A, A.block(0))
    with pytest.raises(TypeError, match="`block_1` must be a metatensor TensorBlock"):
        mts.allclose_block(A, A.block(0))


# ======================================================================== #
# allclose                                                                 #
# ======================================================================== #


def test_allclose_tolerances():
    A = tensor(0)
    B = mts.multiply(A, 1.0 + 1e-8)
    assert not mts.allclose(A, B)
    assert mts.allclose(A, B, rtol=1e-7)
    assert mts.allclose(A, B, atol=1e-6, rtol=0)
    message = (
        "blocks for key \\(key_1=0, key_2=0\\) are different: values are not allclose"
    )
    with pytest.raises(NotEqualError, match=message):
        mts.allclose_raise(A, B)
    mts.allclose_raise(A, B, rtol=1e-7)
    assert mts.allclose_block(A.block(0), B.block(0), rtol=1e-7)
    mts.allclose_block_raise(A.block(0), B.block(0), rtol=1e-7)


def test_real_data():
    ps = mts.load(DATA_DIR / "qm7-power-spectrum.mts")
    assert mts.equal(ps, mts.load(DATA_DIR / "qm7-power-spectrum.mts"))
    assert mts.equal_metadata(ps, mts.multiply(ps, 2))
    assert not mts.equal(ps, mts.multiply(ps, 2))


# ======================================================================== #
# equal_metadata                                                           #
# ======================================================================== #


def test_equal_metadata_values_ignored():
    A = tensor(0)
    B = tensor(1)
    assert not mts.equal(A, B)
    assert mts.equal_metadata(A, B)
    mts.equal_metadata_raise(A, B)
    assert mts.equal_metadata_block(A.block(0), B.block(0))
    mts.equal_metadata_block_raise(A.block(0), B.block(0))


def test_equal_metadata_check_lists():
    A = tensor(0)
    block = A.block(0)
    values = block.samples.values.copy()[::-1]
    reordered = _rebuild(block, samples=Labels(block.samples.names, values))
    B = _with_block(A, 0, reordered)

    assert not mts.equal_metadata(A, B)
    assert not mts.equal_metadata(A, B, check=["samples"])
    assert mts.equal_metadata(A, B, check=["components", "properties"])
    assert mts.equal_metadata(A, B, check=[])
    message = (
        "blocks for key \\(key_1=0, key_2=0\\) are different: "
        "inputs to 'equal_metadata' should have the same samples:\n"
        "samples are not the same or not in the same order"
    )
    with pytest.raises(NotEqualError, match=message):
        mts.equal_metadata_raise(A, B)
    assert not mts.equal_metadata_block(block, reordered, check=["samples"])
    assert mts.equal_metadata_block(block, reordered, check=["properties"])


def test_equal_metadata_gradients():
    A = tensor(0)
    block = A.block(0)

    def change(parameter, g):
        if parameter != "positions":
            return g
        values = g.samples.values.copy()
        values[:, 2] = 1 - values[:, 2]
        return TensorBlock(
            g.values, Labels(g.samples.names, values), g.components, g.properties
        )

    other = _rebuild(block, gradient=change)
    assert not mts.equal_metadata_block(block, other)
    assert mts.equal_metadata_block(block, other, check_gradients=False)
    assert mts.equal_metadata_block(block, other, check=["properties"])
    message = (
        "inputs to 'equal_metadata' should have the same gradients:\n"
        "gradient 'positions' samples are not the same or not in the same order"
    )
    with pytest.raises(NotEqualError, match=message):
        mts.equal_metadata_block_raise(block, other)

    assert not mts.equal_metadata(A, mts.remove_gradients(A))
    assert mts.equal_metadata(A, mts.remove_gradients(A), check_gradients=False)


def test_equal_metadata_components():
    A = tensor(0, components=True)
    B = tensor(0, components=False)
    assert not mts.equal_metadata(A, B, check_gradients=False)
    assert mts.equal_metadata(
        A, B, check=["samples", "properties"], check_gradients=False
    )
    message = (
        "inputs to 'equal_metadata' should have the same components:\n"
        "components of the two `TensorBlock` have different lengths"
    )
    with pytest.raises(NotEqualError, match=message):
        mts.equal_metadata_block_raise(A.block(0), B.block(0))


def test_equal_metadata_keys():
    A = tensor(0)
    assert mts.equal_metadata(A, reorder_keys(A, [2, 0, 1]))
    B = TensorMap(Labels(A.keys.names, A.keys.values[:1]), A.blocks()[:1])
    assert not mts.equal_metadata(A, B)
    with pytest.raises(NotEqualError, match="inputs to 'equal_metadata' should have"):
        mts.equal_metadata_raise(A, B)


def test_equal_metadata_not_a_tensor():
    A = tensor(0)
    assert not mts.equal_metadata(A, A.block(0))
    assert not mts.equal_metadata(3, A)
    assert not mts.equal_metadata_block(A, A.block(0))
    message = "`tensor_2` must be a metatensor TensorMap, not <class"
    with pytest.raises(NotEqualError, match=message):
        mts.equal_metadata_raise(A, A.block(0))
    message = "`block_1` must be a metatensor TensorBlock, not <class"
    with pytest.raises(NotEqualError, match=message):
        mts.equal_metadata_block_raise(A, A.block(0))


def test_equal_metadata_check_errors():
    A = tensor(0)
    with pytest.raises(ValueError, match="`check` must be a list of strings or 'all'"):
        mts.equal_metadata(A, A, check="samples")
    with pytest.raises(ValueError, match="Invalid metadata to check: values"):
        mts.equal_metadata(A, A, check=["samples", "values"])
    with pytest.raises(ValueError, match="Invalid metadata to check: values"):
        mts.equal_metadata_block_raise(A.block(0), A.block(0), check=["values"])


# ======================================================================== #
# torch                                                                    #
# ======================================================================== #


def test_torch(torch):
    A = tensor(0, components=True)
    At = A.to(arrays="torch")
    assert mts.equal(At, At.copy())
    assert mts.allclose(At, mts.multiply(At, 1 + 1e-15))
    assert not mts.equal(At, mts.add(At, 1.0))
    assert mts.equal_metadata(A, At)
    assert At == At

    with pytest.raises(TypeError):
        mts.equal(A, At)
    with pytest.raises(TypeError):
        mts.allclose(A, At)

    nan = TensorBlock(
        torch.tensor([[float("nan")]]), Labels.range("s", 1), [], Labels.range("p", 1)
    )
    assert not mts.equal_block(nan, nan.copy())
    assert mts.allclose_block(nan, nan.copy(), equal_nan=True)
