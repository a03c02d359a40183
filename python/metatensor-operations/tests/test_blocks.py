import numpy as np
import pytest

import metatensor as mts
from metatensor import Labels, TensorBlock, TensorMap

from ._tensors import DATA_DIR, tensor


def test_drop_blocks_full_keys():
    A = tensor(0)
    keys = Labels(["key_1", "key_2"], np.array([[1, 0], [5, 5]]))
    result = mts.drop_blocks(A, keys)
    assert result.keys == Labels(["key_1", "key_2"], np.array([[0, 0], [1, 2]]))
    assert mts.equal_block(result.block(0), A.block(0))
    assert mts.equal_block(result.block(1), A.block(2))
    # no copy by default
    assert result.block(0).values is A.block(0).values


def test_drop_blocks_subset_of_names():
    A = tensor(0)
    result = mts.drop_blocks(A, Labels(["key_1"], np.array([[1]])))
    assert result.keys == Labels(["key_1", "key_2"], np.array([[0, 0]]))

    result = mts.drop_blocks(A, Labels(["key_1"], np.array([[0], [1]])))
    assert len(result) == 0
    assert result.keys.names == ["key_1", "key_2"]
    assert result.keys.values.shape == (0, 2)


def test_drop_blocks_copy():
    A = tensor(0)
    result = mts.drop_blocks(A, Labels(["key_1"], np.array([[0]])), copy=True)
    assert mts.equal(result, mts.drop_blocks(A, Labels(["key_1"], np.array([[0]]))))
    assert result.block(0).values is not A.block(1).values
    assert not np.shares_memory(result.block(0).values, A.block(1).values)
    gradient = result.block(0).gradient("positions").values
    assert not np.shares_memory(gradient, A.block(1).gradient("positions").values)


def test_filter_blocks_order():
    A = tensor(0)
    # same names: selection order
    keys = Labels(["key_1", "key_2"], np.array([[1, 2], [9, 9], [0, 0]]))
    result = mts.filter_blocks(A, keys)
    assert result.keys == Labels(["key_1", "key_2"], np.array([[1, 2], [0, 0]]))
    assert mts.equal_block(result.block(0), A.block(2))
    assert result.block(0).values is A.block(2).values

    # subset of names: tensor order
    keys = Labels(["key_2"], np.array([[2], [0]]))
    result = mts.filter_blocks(A, keys)
    assert result.keys == A.keys

    result = mts.filter_blocks(A, Labels(["key_2"], np.array([[7]])))
    assert len(result) == 0
    assert result.keys.names == ["key_1", "key_2"]


def test_filter_blocks_copy():
    A = tensor(0)
    result = mts.filter_blocks(A, A.keys, copy=True)
    assert mts.equal(result, A)
    assert not np.shares_memory(result.block(0).values, A.block(0).values)


def test_drop_empty_blocks():
    A = tensor(0)
    empty_samples = TensorBlock(
        np.zeros((0, 2)), Labels.empty(["system", "atom"]), [], Labels.range("n", 2)
    )
    empty_properties = TensorBlock(
        np.zeros((3, 0)),
        Labels(["system", "atom"], np.array([[0, 0], [0, 1], [1, 0]])),
        [],
        Labels.empty(["n"]),
    )
    keys = Labels(["key_1", "key_2"], np.array([[0, 0], [5, 0], [1, 0], [6, 0]]))
    blocks = [
        mts.remove_gradients_block(A.block(0)),
        empty_samples,
        mts.remove_gradients_block(A.block(1)),
        empty_properties,
    ]
    B = TensorMap(keys, blocks)
    result = mts.drop_empty_blocks(B)
    assert result.keys == Labels(["key_1", "key_2"], np.array([[0, 0], [1, 0]]))
    assert result.block(0).values is blocks[0].values

    result = mts.drop_empty_blocks(B, copy=True)
    assert not np.shares_memory(result.block(0).values, blocks[0].values)

    assert mts.equal(mts.drop_empty_blocks(A), A)


def test_errors():
    A = tensor(0)
    keys = Labels(["key_1"], np.array([[0]]))
    message = "`tensor` must be a metatensor TensorMap, not <class"
    with pytest.raises(TypeError, match=message):
        mts.drop_blocks(A.block(0), keys)
    with pytest.raises(TypeError, match=message):
        mts.filter_blocks(A.block(0), keys)
    with pytest.raises(TypeError, match=message):
        mts.drop_empty_blocks(A.block(0))

    message = "`keys` must be metatensor Labels, not <class 'numpy.ndarray'>"
    with pytest.raises(TypeError, match=message):
        mts.drop_blocks(A, np.array([[0]]))
    with pytest.raises(TypeError, match=message):
        mts.filter_blocks(A, np.array([[0]]))

    message = "`copy` must be a boolean, not <class 'int'>"
    with pytest.raises(TypeError, match=message):
        mts.drop_blocks(A, keys, copy=1)
    with pytest.raises(TypeError, match=message):
        mts.drop_empty_blocks(A, copy=0)

    message = "'other' in selection is not part of these Labels"
    with pytest.raises(mts.MetatensorError, match=message):
        mts.filter_blocks(A, Labels(["other"], np.array([[0]])))


def test_real_data():
    se = mts.load(DATA_DIR / "qm7-spherical-expansion.mts")
    selection = Labels(["o3_lambda"], np.array([[0], [2]]))
    kept = mts.filter_blocks(se, selection)
    dropped = mts.drop_blocks(se, selection)
    assert len(kept) + len(dropped) == len(se)
    assert set(kept.keys.column("o3_lambda").tolist()) == {0, 2}
    assert 0 not in dropped.keys.column("o3_lambda").tolist()
    for key, block in kept.items():
        assert mts.equal_block(block, se.block(key))


def test_torch(torch):
    A = tensor(0).to(arrays="torch")
    keys = Labels(["key_1"], torch.tensor([[1]], dtype=torch.int32))
    result = mts.drop_blocks(A, keys)
    assert isinstance(result.keys.values, torch.Tensor)
    assert result.keys.values.tolist() == [[0, 0]]
    result = mts.filter_blocks(A, keys, copy=True)
    assert isinstance(result.keys.values, torch.Tensor)
    assert result.keys.values.tolist() == [[1, 0], [1, 2]]
    assert isinstance(result.block(0).values, torch.Tensor)
    assert len(mts.drop_empty_blocks(A)) == 3
