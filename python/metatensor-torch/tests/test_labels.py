import copy
import io
import pickle
from typing import List, Optional

import pytest
import torch

import metatensor_torch as mtt
from metatensor_torch import Labels, LabelsEntry


def test_constructor():
    labels = Labels("a", torch.tensor([[0], [1]]))
    assert labels.names == ["a"]
    assert labels.values.dtype == torch.int32
    assert len(labels) == 2

    labels = Labels(("a", "b"), torch.tensor([[0, 1], [1, 1]]))
    assert labels.names == ["a", "b"]
    labels = Labels(["a", "b"], torch.tensor([[0, 1], [1, 1]], dtype=torch.int16))
    assert labels.values.dtype == torch.int32

    empty = Labels(["a", "b"], torch.zeros((0, 2), dtype=torch.int64))
    assert empty.values.shape == (0, 2)
    assert empty.values.dtype == torch.int32

    no_names = Labels([], torch.zeros((3, 0), dtype=torch.int32), assume_unique=True)
    assert len(no_names) == 3


def test_constructor_errors():
    with pytest.raises(TypeError, match="names must be a list of strings, got element"):
        Labels(["a", 3], torch.zeros((1, 2), dtype=torch.int32))
    with pytest.raises(TypeError, match="names must be a tuple of strings"):
        Labels(("a", 3), torch.zeros((1, 2), dtype=torch.int32))
    with pytest.raises(TypeError, match="names must be a string, list of strings"):
        Labels(3, torch.zeros((1, 1), dtype=torch.int32))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        Labels("a", [[0]])

    with pytest.raises(ValueError, match="Labels values must be a Tensor of 32-bit"):
        Labels("a", torch.zeros((1, 1)))
    with pytest.raises(ValueError, match="Labels values must be a 2D Tensor"):
        Labels("a", torch.zeros(3, dtype=torch.int32))
    with pytest.raises(ValueError, match="the names must have an entry for each"):
        Labels(["a", "b"], torch.zeros((1, 1), dtype=torch.int32))

    with pytest.raises(RuntimeError, match="'0a' is not a valid label name"):
        Labels("0a", torch.zeros((1, 1), dtype=torch.int32))
    with pytest.raises(RuntimeError, match="'a b' is not a valid label name"):
        Labels("a b", torch.zeros((1, 1), dtype=torch.int32))
    with pytest.raises(RuntimeError, match="'a' is specified more than once"):
        Labels(["a", "a"], torch.zeros((1, 2), dtype=torch.int32))

    message = (
        "invalid parameter: can not have the same label entry multiple times: "
        r"\[1, 2\] is already present"
    )
    with pytest.raises(RuntimeError, match=message):
        Labels(["a", "b"], torch.tensor([[0, 1], [1, 2], [0, 2], [1, 2]]))
    big = torch.arange(1000).reshape(-1, 1).repeat(1, 2)
    big[700] = big[10]
    with pytest.raises(RuntimeError, match=r"\[10, 10\] is already present"):
        Labels(["a", "b"], big)
    with pytest.raises(RuntimeError, match=r"\[4\] is already present"):
        Labels(["a"], torch.tensor([[1], [4], [4]]))
    # no check with assume_unique
    Labels(["a"], torch.tensor([[1], [4], [4]]), assume_unique=True)


def test_static_constructors():
    single = Labels.single()
    assert single.names == ["_"]
    assert single.values.tolist() == [[0]]

    empty = Labels.empty(["a", "b"])
    assert empty.values.shape == (0, 2)
    assert Labels.empty("x").names == ["x"]

    labels = Labels.range("r", 4)
    assert labels.names == ["r"]
    assert labels.values.tolist() == [[0], [1], [2], [3]]


def test_indexing_and_iteration():
    labels = Labels(["a", "b"], torch.tensor([[0, 1], [1, 2], [2, 3]]))
    entry = labels[1]
    assert isinstance(entry, LabelsEntry)
    assert entry.names == ["a", "b"]
    assert entry.values.tolist() == [1, 2]
    assert entry["b"] == 2
    assert entry[0] == 1
    assert len(entry) == 2
    assert labels[-1].values.tolist() == [2, 3]
    assert labels["b"].tolist() == [1, 2, 3]
    assert labels.column("a").tolist() == [0, 1, 2]
    assert labels.entry(0) == labels[0]

    with pytest.raises(IndexError, match=r"out of range for tensor of size \[3, 2\]"):
        labels[3]
    with pytest.raises(TypeError, match="Labels can only be indexed by int or str"):
        labels[1.0]
    with pytest.raises(ValueError, match="'c' not found in the dimensions of these"):
        labels["c"]
    with pytest.raises(ValueError, match="'c' not found in the dimensions of this"):
        entry["c"]
    with pytest.raises(TypeError, match="LabelsEntry can only be indexed by int"):
        entry[(1, 2)]

    assert [tuple(e) for e in labels] == [(0, 1), (1, 2), (2, 3)]
    for a, b in labels:
        assert b == a + 1
    assert str(labels[0]) == "LabelsEntry(a=0, b=1)"
    assert repr(labels[0]) == "LabelsEntry(a=0, b=1)"
    assert labels[0].print() == "(a=0, b=1)"


def test_print():
    labels = Labels(["system", "atom", "type"], torch.tensor([[0, 1, 8], [0, 2, 1]]))
    expected = """Labels
    system  atom  type
      0      1     8
      0      2     1"""
    assert str(labels) == expected
    assert repr(labels) == expected

    labels = Labels.range("a", 100)
    text = str(labels)
    assert "..." in text
    assert len(text.split("\n")) == 1 + 1 + 4 + 1
    assert len(repr(labels).split("\n")) == 102
    assert labels.print(2, 0).split("\n")[1] == " 0"
    assert "<table>" in labels._repr_html_()


def test_position_contains():
    labels = Labels(["a", "b"], torch.tensor([[0, 1], [1, 2], [2, 3]]))
    assert labels.position([1, 2]) == 1
    assert labels.position((2, 3)) == 2
    assert labels.position(torch.tensor([0, 1])) == 0
    assert labels.position(labels[2]) == 2
    assert labels.position([5, 5]) is None
    assert labels.position([5]) is None
    assert [1, 2] in labels
    assert (7, 2) not in labels
    assert Labels.empty(["a", "b"]).position([0, 0]) is None


def test_equality():
    a = Labels(["a", "b"], torch.tensor([[0, 1], [1, 2]]))
    b = Labels(["a", "b"], torch.tensor([[0, 1], [1, 2]]))
    c = Labels(["a", "c"], torch.tensor([[0, 1], [1, 2]]))
    d = Labels(["a", "b"], torch.tensor([[1, 2], [0, 1]]))
    assert a == b
    assert not (a != b)
    assert a != c
    assert a != d
    # non-contiguous values
    values = torch.tensor([[0, 9, 1], [1, 9, 2]])[:, ::2]
    assert Labels(["a", "b"], values) == a
    assert a[0] == b[0]
    assert a[0] != a[1]


def test_set_operations():
    first = Labels(["a", "b"], torch.tensor([[0, 1], [1, 2], [2, 3], [3, 4]]))
    second = Labels(["a", "b"], torch.tensor([[2, 3], [5, 5], [0, 1]]))

    union, m1, m2 = first.union_and_mapping(second)
    assert union.values.tolist() == [[0, 1], [1, 2], [2, 3], [3, 4], [5, 5]]
    assert m1.tolist() == [0, 1, 2, 3]
    assert m2.tolist() == [2, 4, 0]
    assert m1.dtype == torch.int64
    assert first.union(second) == union

    inter, m1, m2 = first.intersection_and_mapping(second)
    assert inter.values.tolist() == [[0, 1], [2, 3]]
    assert m1.tolist() == [0, -1, 1, -1]
    assert m2.tolist() == [1, -1, 0]
    assert first.intersection(second) == inter

    diff, m1 = first.difference_and_mapping(second)
    assert diff.values.tolist() == [[1, 2], [3, 4]]
    assert m1.tolist() == [-1, 0, -1, 1]
    assert first.difference(second) == diff

    empty = Labels.empty(["a", "b"])
    assert first.union(empty) == first
    assert empty.union(first) == first
    assert len(first.intersection(empty)) == 0
    assert first.difference(empty) == first

    with pytest.raises(RuntimeError, match="different names"):
        first.union(Labels.range("a", 2))


def test_select():
    labels = Labels(["a", "b"], torch.tensor([[0, 1], [1, 2], [2, 1], [3, 1], [0, 3]]))
    selection = Labels(["b"], torch.tensor([[1], [7]]))
    assert labels.select(selection).tolist() == [0, 2, 3]
    assert labels.select(selection).dtype == torch.int64

    # same names: order of the selection
    selection = Labels(["a", "b"], torch.tensor([[3, 1], [9, 9], [0, 1]]))
    assert labels.select(selection).tolist() == [3, 0]

    with pytest.raises(RuntimeError, match="'c' in selection is not part of these"):
        labels.select(Labels(["c"], torch.tensor([[1]])))
    assert labels.select(
        Labels([], torch.zeros((1, 0), dtype=torch.int32))
    ).tolist() == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_dimension_manipulation():
    labels = Labels(["a", "b"], torch.tensor([[0, 1], [1, 2]]))

    new = labels.append("c", torch.tensor([5, 6]))
    assert new.names == ["a", "b", "c"]
    assert new.values.tolist() == [[0, 1, 5], [1, 2, 6]]

    new = labels.insert(0, "c", torch.tensor([5, 6]))
    assert new.names == ["c", "a", "b"]
    assert new.values.tolist() == [[5, 0, 1], [6, 1, 2]]
    with pytest.raises(IndexError):
        labels.insert(5, "c", torch.tensor([5, 6]))
    with pytest.raises(ValueError, match="1D"):
        labels.insert(0, "c", torch.tensor([[5, 6]]))
    with pytest.raises(ValueError, match="entries"):
        labels.insert(0, "c", torch.tensor([5, 6, 7]))

    new = labels.permute([1, 0])
    assert new.names == ["b", "a"]
    assert new.values.tolist() == [[1, 0], [2, 1]]
    assert labels.permute([-1, 0]) == new
    with pytest.raises(ValueError):
        labels.permute([0])
    with pytest.raises(IndexError):
        labels.permute([0, 4])
    with pytest.raises(ValueError):
        labels.permute([0, 0])

    new = labels.remove("a")
    assert new.names == ["b"]
    assert new.values.tolist() == [[1], [2]]
    duplicated = Labels(["a", "b"], torch.tensor([[0, 1], [1, 1]]))
    with pytest.raises(RuntimeError, match="is already present"):
        duplicated.remove("a")
    with pytest.raises(ValueError, match="'x' not found"):
        labels.remove("x")

    new = labels.rename("a", "z")
    assert new.names == ["z", "b"]
    assert labels.names == ["a", "b"]
    with pytest.raises(RuntimeError, match="not a valid label name"):
        labels.rename("a", "1")


def test_to_device():
    labels = Labels.range("a", 3)
    moved = labels.to("meta")
    assert moved.device.type == "meta"
    assert moved.values.device.type == "meta"
    assert labels.to(torch.device("cpu")) == labels
    assert labels.to(None) == labels
    # meta labels skip the uniqueness check
    meta = Labels("a", torch.zeros((3, 1), dtype=torch.int32, device="meta"))
    assert len(meta) == 3
    assert "meta" in str(meta)


def test_pickle_and_copy():
    labels = Labels(["a", "b"], torch.tensor([[0, 1], [1, 2]]))
    assert pickle.loads(pickle.dumps(labels)) == labels
    buffer = io.BytesIO()
    torch.save(labels, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=False) == labels
    assert copy.deepcopy(labels) == labels
    assert copy.copy(labels) == labels
    assert copy.deepcopy(labels[0]) == labels[0]


class LabelsWrapper:
    def __init__(self, labels: Labels):
        self.labels = labels

    def names(self) -> List[str]:
        return self.labels.names

    def entry(self, i: int) -> LabelsEntry:
        return self.labels.entry(i)

    def column(self, name: str) -> torch.Tensor:
        return self.labels.column(name)

    def position(self, entry: List[int]) -> Optional[int]:
        return self.labels.position(entry)

    def union(self, other: Labels) -> Labels:
        return self.labels.union(other)

    def everything(self) -> str:
        labels = self.labels
        new = labels.append("z", labels.column("a"))
        new = new.insert(0, "y", labels.column("a")).permute([1, 0, 2, 3])
        new = new.remove("y").rename("z", "w")
        single = Labels.single()
        named = Labels("a", labels.values[:, :1])
        assert named.names == ["a"]
        empty = Labels.empty(["a", "b"])
        r = Labels.range("a", 2)
        u, m1, m2 = labels.union_and_mapping(labels)
        i, m3, m4 = labels.intersection_and_mapping(labels)
        d, m5 = labels.difference_and_mapping(empty)
        s = labels.select(r)
        item = labels[0]
        assert isinstance(item, LabelsEntry)
        text = str(labels) + labels.print(2, 1) + labels.__repr__() + str(item)
        text += str(len(single)) + str(len(u)) + str(len(i)) + str(len(d))
        text += str(s.shape[0]) + str(m1.shape[0] + m2.shape[0] + m3.shape[0])
        text += str(m4.shape[0] + m5.shape[0]) + str(item["a"]) + str(item[1])
        text += str(labels == new) + str(labels != new) + str([0, 1] in labels)
        text += str(labels.to("cpu").device) + str(labels.values.dtype)
        return text


def test_script():
    wrapper = torch.jit.script(LabelsWrapper)
    labels = Labels(["a", "b"], torch.tensor([[0, 1], [1, 2]]))
    instance = wrapper(labels)
    assert instance.names() == ["a", "b"]
    assert instance.position([1, 2]) == 1
    assert instance.column("b").tolist() == [1, 2]
    text = instance.everything()
    assert "LabelsEntry(a=0, b=1)" in text

    @torch.jit.script
    def check_error(labels: Labels):
        Labels(["a"], torch.tensor([[1], [1]]))

    with pytest.raises(torch.jit.Error, match="is already present"):
        check_error(labels)

    @torch.jit.script
    def io_error(labels: Labels) -> torch.Tensor:
        return mtt.save_buffer(labels)

    with pytest.raises(torch.jit.Error, match="not supported in TorchScript"):
        io_error(labels)
