"""Labels and LabelsEntry with torch tensors as values (run with the ``torch``
fixture, skipped when torch is not installed)."""

import numpy as np
import pytest

from metatensor import Labels, MetatensorError


def test_torch_constructor(torch):
    values = torch.tensor([[0, 1], [2, 3]])
    labels = Labels(["a", "b"], values)
    assert isinstance(labels.values, torch.Tensor)
    assert labels.values.dtype == torch.int32
    assert labels.values is labels.values
    assert labels.device == torch.device("cpu")
    assert len(labels) == 2

    values = torch.tensor([[0, 1], [2, 3]], dtype=torch.int32)
    labels = Labels(["a", "b"], values)
    assert labels.values is values

    labels = Labels(["a", "b"], torch.tensor([[0, 1], [2, 3]], dtype=torch.uint8))
    assert labels.values.dtype == torch.int32

    labels = Labels(["a", "b"], torch.zeros((0, 5)))
    assert labels.values.shape == (0, 2)
    assert labels.values.dtype == torch.int32
    assert isinstance(labels.values, torch.Tensor)

    with pytest.raises(
        TypeError, match="Labels values must be convertible to integers"
    ):
        Labels(["a"], torch.tensor([[0.5]]))
    with pytest.raises(ValueError):
        Labels(["a"], torch.tensor([[0.5]], requires_grad=True))
    with pytest.raises(ValueError, match="`values` must be a 2D array"):
        Labels(["a"], torch.tensor([1, 2]))

    with pytest.raises(MetatensorError, match="\\[2, 3\\] is already present"):
        Labels(["a", "b"], torch.tensor([[2, 3], [0, 1], [2, 3]]))

    # non-contiguous tensors
    values = torch.arange(12, dtype=torch.int32).reshape(4, 3)[:, ::2]
    labels = Labels(["a", "b"], values)
    assert labels.position([6, 8]) == 2


def test_torch_accessors(torch):
    labels = Labels(["a", "b"], torch.tensor([[0, 1], [2, 3]]))
    entry = labels[1]
    assert isinstance(entry.values, torch.Tensor)
    assert entry.device == torch.device("cpu")
    assert entry["b"] == 3
    assert tuple(int(v) for v in entry) == (2, 3)
    assert entry.print() == "(a=2, b=3)"
    assert torch.equal(labels["a"], torch.tensor([0, 2], dtype=torch.int32))

    with pytest.raises(
        IndexError, match="index 2 is out of bounds for axis 0 with size 2"
    ):
        labels[2]

    assert labels.position([2, 3]) == 1
    assert labels.position(torch.tensor([0, 1])) == 0
    assert [5, 5] not in labels
    assert str(labels) == "Labels\n    a  b\n    0  1\n    2  3"

    numpy_labels = Labels(["a", "b"], np.array([[0, 1], [2, 3]]))
    assert labels == numpy_labels
    assert numpy_labels == labels
    assert labels[0] == numpy_labels[0]


def test_torch_to(torch):
    labels = Labels(["a", "b"], np.array([[0, 1], [2, 3]]))

    torch_labels = labels.to(arrays="torch")
    assert isinstance(torch_labels.values, torch.Tensor)
    assert torch_labels.values.dtype == torch.int32
    assert torch_labels == labels
    assert torch_labels.position([2, 3]) == 1

    assert torch_labels.to("cpu") is torch_labels
    assert torch_labels.to(torch.device("cpu")) is torch_labels
    assert torch_labels.to(arrays="torch") is torch_labels

    back = torch_labels.to(arrays="numpy")
    assert isinstance(back.values, np.ndarray)
    assert not back.values.flags.writeable
    assert back == labels

    meta = torch_labels.to("meta")
    assert meta.device.type == "meta"
    assert meta.values.dtype == torch.int32
    assert len(meta) == 2
    with pytest.raises(MetatensorError, match="'meta' device"):
        meta.position([0, 1])

    meta = labels.to(arrays="torch", device="meta")
    assert meta.device.type == "meta"
    with pytest.raises(MetatensorError, match="'meta' device"):
        meta.position([0, 1])

    with pytest.raises(ValueError, match="`dtype` can not be changed"):
        torch_labels.to(torch.int32)


def test_torch_set_operations(torch):
    a = Labels(["a"], torch.tensor([[5], [4], [3], [2]]))
    b = Labels(["a"], np.array([[2], [3], [7]]))

    union, mapping_a, mapping_b = a.union_and_mapping(b)
    assert isinstance(union.values, torch.Tensor)
    assert union.values.tolist() == [[5], [4], [3], [2], [7]]
    assert mapping_a.tolist() == [0, 1, 2, 3]
    assert mapping_b.tolist() == [3, 2, 4]
    assert mapping_a.dtype == np.int64

    intersection = a.intersection(b)
    assert isinstance(intersection.values, torch.Tensor)
    assert intersection.values.tolist() == [[2], [3]]

    difference = a.difference(b)
    assert isinstance(difference.values, torch.Tensor)
    assert difference.values.tolist() == [[5], [4]]

    # numpy in -> numpy out
    union = b.union(a)
    assert isinstance(union.values, np.ndarray)
    assert union.values.tolist() == [[2], [3], [7], [5], [4]]

    selection = Labels(["a"], torch.tensor([[3], [9], [5]]))
    assert a.select(selection).tolist() == [2, 0]
    assert a.select(selection).dtype == np.uint64


def test_torch_meta(torch):
    values = torch.zeros((3, 2), dtype=torch.int32, device="meta")
    with pytest.raises(MetatensorError, match="assume_unique=True"):
        Labels(["a", "b"], values)

    labels = Labels(["a", "b"], values, assume_unique=True)
    assert labels.device == torch.device("meta")
    assert labels.values is values
    assert len(labels) == 3
    assert labels.names == ["a", "b"]
    assert "meta" in repr(labels)
    assert "meta" in str(labels)

    with pytest.raises(MetatensorError, match="'meta' device"):
        labels.position([0, 0])
    with pytest.raises(MetatensorError, match="'meta' device"):
        labels.union(labels)

    renamed = labels.rename("a", "c")
    assert renamed.names == ["c", "b"]
    assert renamed.values is values


def test_torch_cuda(torch):
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")

    values = torch.tensor([[0, 1], [2, 3], [4, 5]], device="cuda")
    labels = Labels(["a", "b"], values)
    assert labels.device.type == "cuda"
    assert labels.values.device.type == "cuda"
    assert labels.position([2, 3]) == 1
    assert labels[1].device.type == "cuda"

    other = Labels(["a", "b"], np.array([[4, 5], [6, 7]]))
    union = labels.union(other)
    assert union.values.device.type == "cuda"
    assert union.values.tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert labels.select(other).tolist() == [2]

    cpu = labels.to("cpu")
    assert cpu.device == torch.device("cpu")
    assert cpu == labels
    assert cpu.to("cuda").device.type == "cuda"
    assert labels.to(arrays="numpy").device == "cpu"
