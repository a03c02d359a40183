import numpy as np
import pytest

import metatensor
from metatensor import Labels, TensorMap
from metatensor.operations import equal, equal_block, join, slice, split, split_block

from ._ops_data import DATA_DIR, assert_same_data, random_tensor, to_numpy


def test_split_samples():
    tensor = random_tensor(components=True)
    selections = [
        Labels(["system"], np.array([[0]])),
        Labels(["system"], np.array([[1], [2]])),
    ]
    parts = split(tensor, "samples", selections)
    assert isinstance(parts, list)
    assert len(parts) == 2
    for part, selection in zip(parts, selections):
        assert equal(part, slice(tensor, "samples", selection))

    # the parts cover everything
    for i, block in enumerate(tensor.blocks()):
        assert len(parts[0].block(i).samples) + len(parts[1].block(i).samples) == len(
            block.samples
        )


def test_split_properties_mixed_selections():
    tensor = random_tensor()
    selections = [Labels(["l"], np.array([[1]])), [0, 2], np.array([3])]
    parts = split(tensor, "properties", selections)
    assert len(parts) == 3
    for part, selection in zip(parts, selections):
        assert equal(part, slice(tensor, "properties", selection))
    assert parts[1].block(0).properties == Labels(
        ["n", "l"], np.array([[2, 0], [1, 0]])
    )


def test_split_block():
    block = random_tensor(components=True).block(1)
    parts = split_block(block, "samples", [[0, 1, 2], [3, 4, 5, 6, 7]])
    assert len(parts) == 2
    joined = metatensor.operations.join_blocks(parts, "samples")
    # same samples and values; the gradient rows are grouped by part
    assert joined.samples == block.samples
    np.testing.assert_equal(joined.values, block.values)
    assert_same_data(joined, block)

    assert split_block(block, "properties", []) == []


def test_split_empty_list():
    assert split(random_tensor(), "samples", []) == []


def test_split_no_blocks():
    tensor = TensorMap(Labels.empty(["key"]), [])
    parts = split(tensor, "samples", [[0], Labels(["system"], np.array([[0]]))])
    assert len(parts) == 2
    assert all(len(part) == 0 for part in parts)


def test_split_errors():
    tensor = random_tensor()
    with pytest.raises(TypeError, match="`selections` must be a list"):
        split(tensor, "samples", (Labels(["system"], np.array([[0]])),))
    with pytest.raises(TypeError, match="`selections` must be a list"):
        split(tensor, "samples", Labels(["system"], np.array([[0]])))
    with pytest.raises(TypeError, match="`tensor` must be a metatensor TensorMap"):
        split(tensor.block(0), "samples", [])
    with pytest.raises(TypeError, match="`block` must be a metatensor TensorBlock"):
        split_block(tensor, "samples", [])
    with pytest.raises(ValueError, match="must be either 'samples' or 'properties'"):
        split(tensor, "keys", [[0]])
    with pytest.raises(TypeError, match="`selection` must be metatensor Labels"):
        split(tensor, "samples", [[0], "system"])


def test_split_torch(torch):
    tensor = random_tensor().to(arrays="torch")
    parts = split(tensor, "samples", [[0, 1], torch.tensor([2])])
    for part in parts:
        for block in part.blocks():
            assert isinstance(block.values, torch.Tensor)
    assert parts[1].block(0).values.shape[0] == 1
    np.testing.assert_equal(
        to_numpy(parts[1].block(0).values), to_numpy(tensor.block(0).values)[[2]]
    )


def test_split_join_qm7():
    tensor = metatensor.load(DATA_DIR / "qm7-power-spectrum.mts")
    systems = np.unique(tensor.block(0).samples.column("system"))
    selections = [Labels(["system"], systems[:3].reshape(-1, 1))]
    selections.append(Labels(["system"], systems[3:].reshape(-1, 1)))
    parts = split(tensor, "samples", selections)
    joined = join(parts, "samples", different_keys="union")
    for block, new in zip(tensor.blocks(), joined.blocks()):
        # the blocks are sorted by system, so joining gives back the same order
        assert equal_block(block, new)
