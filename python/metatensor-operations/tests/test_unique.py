import numpy as np
import pytest

import metatensor as mts
from metatensor import Labels, TensorBlock, TensorMap

from ._tensors import DATA_DIR, tensor


def _tensor() -> TensorMap:
    blocks = []
    for samples in [
        [[3, 1], [0, 0], [3, 0]],
        [[1, 0], [0, 0]],
    ]:
        samples = Labels(["system", "atom"], np.array(samples))
        block = TensorBlock(
            np.zeros((len(samples), 2)),
            samples,
            [],
            Labels(["n", "l"], np.array([[0, 1], [2, 1]])),
        )
        block.add_gradient(
            "positions",
            TensorBlock(
                np.zeros((2, 3, 2)),
                Labels(["sample", "system", "atom"], np.array([[0, 5, 7], [1, 4, 7]])),
                [Labels.range("xyz", 3)],
                block.properties,
            ),
        )
        blocks.append(block)
    return TensorMap(Labels.range("key", 2), blocks)


def test_unique_metadata_samples():
    A = _tensor()
    result = mts.unique_metadata(A, "samples", "system")
    assert result == Labels(["system"], np.array([[0], [1], [3]]))

    result = mts.unique_metadata(A, "samples", ["atom", "system"])
    assert result == Labels(
        ["atom", "system"], np.array([[0, 0], [0, 1], [0, 3], [1, 3]])
    )

    result = mts.unique_metadata(A, "samples", ("system", "atom"))
    assert result == Labels(
        ["system", "atom"], np.array([[0, 0], [1, 0], [3, 0], [3, 1]])
    )


def test_unique_metadata_properties_and_gradients():
    A = _tensor()
    result = mts.unique_metadata(A, "properties", "l")
    assert result == Labels(["l"], np.array([[1]]))

    result = mts.unique_metadata(A, "samples", "system", gradient="positions")
    assert result == Labels(["system"], np.array([[4], [5]]))

    result = mts.unique_metadata_block(A.block(0), "samples", ["atom"])
    assert result == Labels(["atom"], np.array([[0], [1]]))

    result = mts.unique_metadata_block(
        A.block(1), "samples", "atom", gradient="positions"
    )
    assert result == Labels(["atom"], np.array([[7]]))


def test_unique_metadata_empty():
    empty = TensorMap(Labels.empty(["key"]), [])
    result = mts.unique_metadata(empty, "samples", ["system", "atom"])
    assert result.names == ["system", "atom"]
    assert len(result) == 0


def test_unique_metadata_errors():
    A = _tensor()
    with pytest.raises(ValueError, match="'species' not found in the dimensions"):
        mts.unique_metadata(A, "samples", "species")
    with pytest.raises(ValueError, match="'components' is not a valid axis"):
        mts.unique_metadata(A, "components", "system")
    with pytest.raises(TypeError, match="`names` must be a string"):
        mts.unique_metadata(A, "samples", 3)
    with pytest.raises(TypeError, match="`names` must be a string"):
        mts.unique_metadata(A, "samples", ["system", 3])
    with pytest.raises(TypeError, match="`tensor` must be a metatensor TensorMap"):
        mts.unique_metadata(A.block(0), "samples", "system")
    with pytest.raises(TypeError, match="`block` must be a metatensor TensorBlock"):
        mts.unique_metadata_block(A, "samples", "system")
    with pytest.raises(TypeError, match="`gradient` must be a string"):
        mts.unique_metadata(A, "samples", "system", gradient=1)


def test_unique_metadata_real_data():
    ps = mts.load(DATA_DIR / "qm7-power-spectrum.mts")
    result = mts.unique_metadata(ps, "samples", "system")
    expected = np.unique(
        np.concatenate([b.samples.column("system") for b in ps.blocks()])
    )
    np.testing.assert_array_equal(result.values[:, 0], expected)

    result = mts.unique_metadata(ps, "samples", ["system", "atom"], "positions")
    assert np.all(np.diff(result.values[:, 0]) >= 0)
    assert len(np.unique(result.values, axis=0)) == len(result)


def test_unique_metadata_torch(torch):
    A = tensor(0).to(arrays="torch")
    result = mts.unique_metadata(A, "samples", "system")
    assert isinstance(result.values, torch.Tensor)
    assert result.values.tolist() == [[0], [1], [2]]
