import copy

import numpy as np
import pytest

from metatensor import Labels, LabelsEntry, MetatensorError


# ======================================================================== #
# construction                                                             #
# ======================================================================== #


def test_constructor_names():
    labels = Labels("abc", np.array([[0], [1]]))
    assert labels.names == ["abc"]

    labels = Labels(("a", "b"), np.array([[0, 1]]))
    assert labels.names == ["a", "b"]

    # any iterable of str
    labels = Labels((n for n in ["x", "y"]), np.array([[0, 1]]))
    assert labels.names == ["x", "y"]

    labels = Labels("", np.empty((0, 0)))
    assert labels.names == []
    assert labels.values.shape == (0, 0)

    labels = Labels([], np.empty((0, 0)))
    assert labels.names == []
    assert len(labels) == 0

    # the names list is a copy
    names = labels.names
    names.append("foo")
    assert labels.names == []


def test_constructor_names_errors():
    message = "Labels names must be strings, got <class 'int'> instead"
    with pytest.raises(TypeError, match=message):
        Labels(["a", 3], np.array([[0, 1]]))

    with pytest.raises(TypeError, match=message):
        Labels(3, np.array([[0]]))

    message = "invalid parameter: 'not an ident' is not a valid label name"
    with pytest.raises(MetatensorError, match=message):
        Labels(["not an ident"], np.array([[0]]))

    for name in ["0a", "a-b", "é", "", "a.b"]:
        with pytest.raises(MetatensorError, match="is not a valid label name"):
            Labels(["x", name], np.array([[0, 1]]))

    # valid names
    Labels(["_", "_a0", "A_B", "class"], np.array([[0, 1, 2, 3]]))

    message = (
        "invalid parameter: label dimensions must be unique, got 'a' multiple times"
    )
    with pytest.raises(MetatensorError, match=message):
        Labels(["a", "b", "a"], np.array([[0, 1, 2]]))

    error = pytest.raises(MetatensorError, Labels, ["a a"], np.array([[0]])).value
    assert error.message == "invalid parameter: 'a a' is not a valid label name"


def test_constructor_values_errors():
    with pytest.raises(ValueError, match="must be a numpy ndarray or a torch Tensor"):
        Labels(["a"], [[0]])

    with pytest.raises(ValueError, match="`values` must be a 2D array"):
        Labels(["a"], np.array([0, 1]))

    with pytest.raises(ValueError, match="`values` must be a 2D array"):
        Labels(["a"], np.array(3))

    with pytest.raises(ValueError, match="`values` must be a 2D array"):
        Labels(["a"], np.zeros((2, 1, 1), dtype=np.int32))

    message = "`names` must have an entry for each column of the `values` array"
    with pytest.raises(ValueError, match=message):
        Labels(["a", "b"], np.array([[0, 1, 2]]))

    message = "Labels values must be convertible to integers"
    with pytest.raises(TypeError, match=message):
        Labels(["a"], np.array([[0.5]]))

    with pytest.raises(TypeError, match=message):
        Labels(["a"], np.array([[1j]]))


def test_constructor_dtypes():
    for dtype in [np.int8, np.int16, np.int64, np.uint8, np.uint32, np.bool_]:
        values = np.array([[0, 1], [1, 0]], dtype=dtype)
        labels = Labels(["a", "b"], values)
        assert labels.values.dtype == np.int32
        np.testing.assert_equal(labels.values, [[0, 1], [1, 0]])
        # the input is not modified
        assert values.flags.writeable

    # overflow wraps silently
    labels = Labels(["a"], np.array([[2**32 + 3]], dtype=np.int64))
    assert labels.values[0, 0] == 3


def test_values_read_only_and_shared():
    values = np.array([[0, 1], [1, 2]], dtype=np.int32)
    labels = Labels(["a", "b"], values)

    # int32 input is stored by reference and becomes read-only
    assert labels.values is values
    assert not values.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        values[0, 0] = 3
    with pytest.raises(ValueError, match="read-only"):
        labels.values[0, 0] = 3

    # same object on each access
    assert labels.values is labels.values

    values = np.array([[0, 1], [1, 2]], dtype=np.int64)
    labels = Labels(["a", "b"], values)
    assert labels.values is not values
    assert values.flags.writeable
    assert not labels.values.flags.writeable


def test_empty_values():
    labels = Labels(["a", "b"], np.empty((0, 5)))
    assert labels.values.shape == (0, 2)
    assert labels.values.dtype == np.int32
    assert not labels.values.flags.writeable
    assert len(labels) == 0

    labels = Labels(["a", "b"], np.array([]))
    assert labels.values.shape == (0, 2)

    labels = Labels.empty(["a", "b"])
    assert labels.names == ["a", "b"]
    assert labels.values.shape == (0, 2)

    labels = Labels.empty("x")
    assert labels.names == ["x"]
    assert labels.position([0]) is None
    assert [0] not in labels
    assert list(labels) == []


def test_zero_names_with_rows():
    labels = Labels([], np.empty((1, 0), dtype=np.int32))
    assert len(labels) == 1
    assert labels.position([]) == 0

    message = "can not have the same label entry multiple times: \\[\\] is already"
    with pytest.raises(MetatensorError, match=message):
        Labels([], np.empty((2, 0), dtype=np.int32))


def test_non_contiguous():
    values = np.arange(24, dtype=np.int32).reshape(6, 4)[::2, ::2]
    assert not values.flags.c_contiguous
    labels = Labels(["a", "b"], values)
    np.testing.assert_equal(labels.values, [[0, 2], [8, 10], [16, 18]])
    assert labels.position([8, 10]) == 1
    assert labels.position([8, 9]) is None

    values = np.asfortranarray(np.array([[1, 2], [3, 4], [1, 3]], dtype=np.int64))
    labels = Labels(["a", "b"], values)
    assert labels.position([1, 3]) == 2

    with pytest.raises(MetatensorError, match="\\[1, 2\\] is already present"):
        Labels(["a", "b"], np.array([[1, 2], [3, 4], [1, 2]]).T.copy().T)


def test_uniqueness():
    message = (
        "invalid parameter: can not have the same label entry multiple times: "
        "\\[3, 1\\] is already present"
    )
    with pytest.raises(MetatensorError, match=message):
        Labels(["a", "b"], np.array([[0, 1], [3, 1], [2, 2], [3, 1]]))

    # adjacent duplicates
    with pytest.raises(MetatensorError, match=message):
        Labels(["a", "b"], np.array([[0, 1], [3, 1], [3, 1]]))

    # negative values
    message = "\\[-3, -1\\] is already present"
    with pytest.raises(MetatensorError, match=message):
        Labels(["a", "b"], np.array([[-3, -1], [5, 2], [-3, -1]]))

    # values which need more than 63 bits
    big = np.array([[-(2**31), 2**31 - 1, 7]] * 2, dtype=np.int64)
    big[1, 2] = 8
    big = np.concatenate([big, big[:1]])
    message = "\\[-2147483648, 2147483647, 7\\] is already present"
    with pytest.raises(MetatensorError, match=message):
        Labels(["a", "b", "c"], big)

    # large range of values (sorting instead of counting)
    message = "\\[1000000\\] is already present"
    with pytest.raises(MetatensorError, match=message):
        Labels(["a"], np.array([[0], [10**6], [10**6], [5], [5]]))
    message = "\\[5\\] is already present"
    with pytest.raises(MetatensorError, match=message):
        Labels(["a"], np.array([[0], [10**6], [5], [10**5], [5]]))

    # wide values, sorted and unsorted
    wide = np.array([[-(2**31), 0, 1], [0, 2**31 - 1, -(2**31)], [2**31 - 1, 0, 0]])
    Labels(["a", "b", "c"], wide)
    Labels(["a", "b", "c"], wide[::-1])

    # unique labels (sorted or not) are fine
    Labels(["a", "b"], np.array([[3, 1], [0, 1], [2, 2], [3, 0]]))
    Labels(["a", "b"], np.array([[0, 1], [0, 2], [1, 0]]))

    # assume_unique skips the check
    labels = Labels(["a"], np.array([[1], [1]]), assume_unique=True)
    assert len(labels) == 2


def test_static_constructors():
    labels = Labels.single()
    assert labels.names == ["_"]
    np.testing.assert_equal(labels.values, [[0]])

    labels = Labels.range("foo", 4)
    assert labels.names == ["foo"]
    np.testing.assert_equal(labels.values, [[0], [1], [2], [3]])
    assert labels.values.dtype == np.int32

    assert len(Labels.range("foo", 0)) == 0
    assert len(Labels.range("foo", -3)) == 0
    assert Labels.range("foo", -3).values.shape == (0, 1)


# ======================================================================== #
# accessors                                                                #
# ======================================================================== #


def test_accessors():
    labels = Labels(["a", "bb"], np.array([[0, 1], [2, 3], [4, 5]]))
    assert len(labels) == 3
    assert labels.device == "cpu"

    entry = labels[1]
    assert isinstance(entry, LabelsEntry)
    assert entry.names == ["a", "bb"]
    np.testing.assert_equal(entry.values, [2, 3])

    assert labels[-1] == labels.entry(2)
    assert labels[np.int64(0)] == labels.entry(0)
    assert labels[np.int8(1)] == labels.entry(1)
    assert labels[np.uint16(1)] == labels.entry(1)

    np.testing.assert_equal(labels["bb"], [1, 3, 5])
    np.testing.assert_equal(labels.column("a"), [0, 2, 4])

    with pytest.raises(
        IndexError, match="index 3 is out of bounds for axis 0 with size 3"
    ):
        labels[3]
    with pytest.raises(
        IndexError, match="index -4 is out of bounds for axis 0 with size 3"
    ):
        labels.entry(-4)

    message = (
        "Labels can only be indexed by a single string or integer, got <class 'float'>"
    )
    with pytest.raises(TypeError, match=message):
        labels[3.0]
    with pytest.raises(TypeError, match="got <class 'slice'>"):
        labels[1:2]
    with pytest.raises(TypeError, match="got <class 'list'>"):
        labels[["a", "bb"]]

    message = "'cc' not found in the dimensions of these Labels"
    with pytest.raises(ValueError, match=message):
        labels["cc"]
    with pytest.raises(ValueError, match=message):
        labels.column("cc")
    with pytest.raises(TypeError):
        labels.column(0)


def test_iteration():
    values = np.array([[0, 1], [2, 3], [4, 5]])
    labels = Labels(["a", "b"], values)
    entries = list(labels)
    assert len(entries) == 3
    for i, entry in enumerate(entries):
        assert entry.names == ["a", "b"]
        np.testing.assert_equal(entry.values, values[i])

    for i, (a, b) in enumerate(labels):
        assert a == values[i, 0]
        assert b == values[i, 1]


def test_labels_entry():
    labels = Labels(["a", "b"], np.array([[0, 1], [2, 3]]))
    entry = labels[1]
    assert len(entry) == 2
    assert entry.device == "cpu"
    assert entry[0] == 2
    assert isinstance(entry[0], np.int32)
    assert entry[-1] == 3
    assert entry["b"] == 3
    assert entry[np.int64(1)] == 3

    with pytest.raises(IndexError):
        entry[2]
    with pytest.raises(
        ValueError, match="'c' not found in the dimensions of these Labels"
    ):
        entry["c"]
    message = "can only index LabelsEntry with str or int, got <class 'tuple'>"
    with pytest.raises(TypeError, match=message):
        entry[0, 1]

    # no __iter__, but tuple() and unpacking work through __getitem__
    assert not hasattr(LabelsEntry, "__iter__")
    assert tuple(entry) == (2, 3)
    a, b = entry
    assert (a, b) == (2, 3)

    assert entry.print() == "(a=2, b=3)"
    assert repr(entry) == "LabelsEntry(a=2, b=3)"
    assert str(entry) == "LabelsEntry(a=2, b=3)"

    assert entry == LabelsEntry(["a", "b"], np.array([2, 3], dtype=np.int32))
    assert entry != LabelsEntry(["a", "c"], np.array([2, 3], dtype=np.int32))
    assert entry != labels[0]
    with pytest.raises(TypeError):
        entry == (2, 3)  # noqa: B015
    with pytest.raises(TypeError):
        hash(entry)


def test_labels_entry_constructor():
    entry = LabelsEntry(["x"], np.array([4], dtype=np.int32))
    assert entry.names == ["x"]
    assert entry["x"] == 4

    with pytest.raises(ValueError):
        LabelsEntry(["x"], np.array([4, 5], dtype=np.int32))
    with pytest.raises(ValueError):
        LabelsEntry(["x"], np.array([[4]], dtype=np.int32))
    with pytest.raises(ValueError):
        LabelsEntry(["x"], np.array([4.0]))
    with pytest.raises(ValueError):
        LabelsEntry(["x"], [4])


def test_position_and_contains():
    labels = Labels(["a", "b"], np.array([[0, 1], [3, 1], [2, 2], [-5, 7]]))

    assert labels.position([3, 1]) == 1
    assert labels.position((2, 2)) == 2
    assert labels.position(np.array([-5, 7])) == 3
    assert labels.position([np.int64(0), np.int32(1)]) == 0
    assert isinstance(labels.position([2, 2]), int)
    assert labels.position([2, 3]) is None
    assert labels.position([100, 1]) is None
    assert labels.position([2**40, 1]) is None

    assert [3, 1] in labels
    assert (1, 3) not in labels

    # names of LabelsEntry are ignored
    other = Labels(["x", "y"], np.array([[2, 2], [9, 9]]))
    assert labels.position(other[0]) == 2
    assert other[0] in labels
    assert other[1] not in labels
    for i, entry in enumerate(labels):
        assert labels.position(entry) == i

    with pytest.raises(MetatensorError, match="invalid parameter"):
        labels.position([1, 2, 3])
    with pytest.raises(MetatensorError, match="invalid parameter"):
        [1] in labels  # noqa: B015

    with pytest.raises(TypeError):
        labels.position([1.5, 2])


def test_position_wide_values():
    # values which need more than 63 bits to be packed
    values = np.array(
        [[-(2**31), 2**31 - 1, 0], [2**31 - 1, -(2**31), 5], [0, 0, 0]],
        dtype=np.int64,
    )
    labels = Labels(["a", "b", "c"], values)
    for i, row in enumerate(values.tolist()):
        assert labels.position(row) == i
    assert labels.position([0, 0, 1]) is None
    assert labels.position([2**31, 0, 0]) is None


def test_equality():
    a = Labels(["a", "b"], np.array([[0, 1], [2, 3]]))
    b = Labels(["a", "b"], np.array([[0, 1], [2, 3]], dtype=np.int64))
    c = Labels(["a", "c"], np.array([[0, 1], [2, 3]]))
    d = Labels(["a", "b"], np.array([[0, 1], [2, 4]]))
    e = Labels(["a", "b"], np.array([[0, 1]]))

    assert a == b
    assert not (a != b)
    assert a != c
    assert a != d
    assert a != e
    assert a == a

    with pytest.raises(TypeError):
        a == 3  # noqa: B015
    with pytest.raises(TypeError):
        a == np.array([[0, 1], [2, 3]])  # noqa: B015

    with pytest.raises(TypeError, match="unhashable"):
        hash(a)


# ======================================================================== #
# printing                                                                 #
# ======================================================================== #


def test_print():
    labels = Labels(["aaa", "bbb"], np.array([[1, 2], [3, 4]]))
    assert str(labels) == "Labels\n    aaa  bbb\n     1    2\n     3    4"
    assert repr(labels) == str(labels)
    assert labels.print(-1) == " aaa  bbb\n  1    2\n  3    4"

    values = np.array([[i, 10 * i] for i in range(7)])
    labels = Labels(["system", "a"], values)
    expected = (
        "Labels\n    system  a\n      0     0\n      1     10\n       ...\n"
        "      5     50\n      6     60"
    )
    assert str(labels) == expected

    expected = "Labels\n    system  a\n" + "\n".join(
        f"      {i}     {10 * i}" for i in range(7)
    )
    assert repr(labels) == expected

    # max_entries is raised to at least 2
    assert labels.print(0) == labels.print(1) == labels.print(2)
    assert labels.print(2) == " system  a\n   0     0\n    ...\n   6     60"
    assert labels.print(3, 2) == (
        " system  a\n     0     0\n     1     10\n      ...\n     6     60"
    )
    assert labels.print(7) == labels.print(-1)

    # the width depends on the printed entries only
    values = np.array([[1, 1], [2, 123456], [3, 3], [4, 4], [5, 5], [6, 6]])
    labels = Labels(["a", "b"], values)
    assert labels.print(4) == " a    b\n 1    1\n 2  123456\n   ...\n 5    5\n 6    6"
    assert labels.print(2) == " a  b\n 1  1\n    ...\n 6  6"

    # negative values and wide names
    labels = Labels(["x", "long_name"], np.array([[-100, 0]]))
    assert labels.print(-1) == "  x    long_name\n -100      0"

    # empty Labels
    assert str(Labels.empty(["a", "b"])) == "Labels\n    a  b"
    assert str(Labels([], np.empty((0, 0)))) == "Labels\n   "


def test_repr_html():
    labels = Labels(["a", "b"], np.array([[0, 1], [2, 3]]))
    html = labels._repr_html_()
    assert html.startswith("<table>")
    assert "<th>a</th><th>b</th>" in html
    assert "<tr><td>2</td><td>3</td></tr>" in html

    labels = Labels.range("n", 1000)
    html = labels._repr_html_()
    assert "<td>...</td>" in html
    assert "<td>0</td>" in html
    assert "<td>999</td>" in html
    assert "<td>500</td>" not in html


# ======================================================================== #
# modifications                                                            #
# ======================================================================== #


def test_insert_append():
    labels = Labels(["a", "b"], np.array([[0, 1], [2, 3], [4, 5]]))

    new = labels.insert(1, "c", np.array([7, 8, 9]))
    assert new.names == ["a", "c", "b"]
    np.testing.assert_equal(new.values, [[0, 7, 1], [2, 8, 3], [4, 9, 5]])
    assert new.values.dtype == np.int32
    assert not new.values.flags.writeable
    # the original is not modified
    assert labels.names == ["a", "b"]

    new = labels.insert(0, "c", np.array([7, 8, 9]))
    assert new.names == ["c", "a", "b"]
    np.testing.assert_equal(new.values[:, 0], [7, 8, 9])

    new = labels.insert(-1, "c", np.array([7, 8, 9]))
    assert new.names == ["a", "c", "b"]
    np.testing.assert_equal(new.values[:, 1], [7, 8, 9])

    # append adds a dimension at the end (not a bug-for-bug copy of upstream)
    new = labels.append("c", np.array([7, 8, 9]))
    assert new.names == ["a", "b", "c"]
    np.testing.assert_equal(new.values, [[0, 1, 7], [2, 3, 8], [4, 5, 9]])

    with pytest.raises(ValueError, match="`values` must be a numpy ndarray"):
        labels.insert(0, "c", [7, 8, 9])
    with pytest.raises(ValueError, match="`values` must be a 1D array"):
        labels.insert(0, "c", np.array([[7, 8, 9]]))
    message = "the new `values` contains 2 entries, but the Labels contains 3"
    with pytest.raises(ValueError, match=message):
        labels.insert(0, "c", np.array([7, 8]))
    with pytest.raises(IndexError, match="index 42 is out of bounds"):
        labels.insert(42, "c", np.array([7, 8, 9]))

    with pytest.raises(MetatensorError, match="got 'a' multiple times"):
        labels.append("a", np.array([7, 8, 9]))
    with pytest.raises(MetatensorError, match="'1c' is not a valid label name"):
        labels.append("1c", np.array([7, 8, 9]))

    # on empty labels
    new = Labels.empty(["a"]).append("b", np.array([], dtype=np.int32))
    assert new.names == ["a", "b"]
    assert new.values.shape == (0, 2)


def test_permute():
    labels = Labels(["a", "b", "c"], np.array([[0, 1, 2], [3, 4, 5]]))

    new = labels.permute([2, 0, 1])
    assert new.names == ["c", "a", "b"]
    np.testing.assert_equal(new.values, [[2, 0, 1], [5, 3, 4]])

    new = labels.permute([-1, 0, 1])
    assert new.names == ["c", "a", "b"]

    message = (
        "the length of `dimensions_indexes` \\(2\\) does not match the number "
        "of dimensions in the Labels \\(3\\)"
    )
    with pytest.raises(ValueError, match=message):
        labels.permute([2, 0])

    with pytest.raises(MetatensorError, match="got 'a' multiple times"):
        labels.permute([0, 0, 1])


def test_remove():
    labels = Labels(["a", "b", "c"], np.array([[0, 1, 2], [3, 4, 5]]))

    new = labels.remove("b")
    assert new.names == ["a", "c"]
    np.testing.assert_equal(new.values, [[0, 2], [3, 5]])

    with pytest.raises(
        ValueError, match="'baz' not found in the dimensions of these Labels"
    ):
        labels.remove("baz")

    labels = Labels(["a", "b"], np.array([[0, 1], [0, 2]]))
    message = (
        "can not have the same label entry multiple times: \\[0\\] is already present"
    )
    with pytest.raises(MetatensorError, match=message):
        labels.remove("b")


def test_rename():
    labels = Labels(["a", "b"], np.array([[0, 1], [2, 3]]))
    new = labels.rename("a", "x")
    assert new.names == ["x", "b"]
    np.testing.assert_equal(new.values, labels.values)
    assert labels.names == ["a", "b"]

    with pytest.raises(
        ValueError, match="'c' not found in the dimensions of these Labels"
    ):
        labels.rename("c", "x")
    with pytest.raises(MetatensorError, match="got 'b' multiple times"):
        labels.rename("a", "b")
    with pytest.raises(MetatensorError, match="'x y' is not a valid label name"):
        labels.rename("a", "x y")


# ======================================================================== #
# to, copy                                                                 #
# ======================================================================== #


def test_to_numpy():
    labels = Labels(["a", "b"], np.array([[0, 1], [2, 3]]))
    assert labels.to("cpu") is labels
    assert labels.to(device="cpu") is labels
    assert labels.to(arrays="numpy") is labels
    assert labels.to() is labels

    message = "Labels values must be int32, `dtype` can not be changed"
    with pytest.raises(ValueError, match=message):
        labels.to(dtype=np.int32)
    with pytest.raises(ValueError, match=message):
        labels.to(np.float64)

    with pytest.raises(
        ValueError, match="can not move numpy array to non-cpu device: test"
    ):
        labels.to("test")
    with pytest.raises(ValueError, match="can not give a device twice in `Labels.to`"):
        labels.to("cpu", device="cpu")
    with pytest.raises(TypeError, match="unexpected type in `Labels.to`"):
        labels.to(np.array([1]))
    with pytest.raises(ValueError, match="unknown array backend: 'jax'"):
        labels.to(arrays="jax")


def test_copy():
    labels = Labels(["a", "b"], np.array([[0, 1], [2, 3]]))
    for other in [copy.copy(labels), copy.deepcopy(labels)]:
        assert other is not labels
        assert other.values is labels.values
        assert other == labels
        assert other.position([2, 3]) == 1
