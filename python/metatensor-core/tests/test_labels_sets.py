import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from metatensor import Labels, MetatensorError
from metatensor._labels_utils import (
    RowIndex,
    argsort_keys,
    find_duplicate_row,
    first_duplicate,
    hash_rows,
    lookup_rows,
    pack_rows,
    rows_strictly_increasing,
    unique_rows,
)


def _rows(labels):
    return [tuple(row) for row in np.asarray(labels.values).tolist()]


def _unique_random(rng, count, size, low, high):
    values = rng.integers(low, high, (count, size), dtype=np.int64)
    _, index = np.unique(values, axis=0, return_index=True)
    values = values[np.sort(index)]
    rng.shuffle(values)
    return values


# ======================================================================== #
# set operations                                                           #
# ======================================================================== #


def test_union():
    a = Labels(["a", "b"], np.array([[0, 1], [2, 3], [4, 5]]))
    b = Labels(["a", "b"], np.array([[9, 9], [2, 3], [0, 0]]))

    union = a.union(b)
    assert union.names == ["a", "b"]
    assert _rows(union) == [(0, 1), (2, 3), (4, 5), (9, 9), (0, 0)]

    union, mapping_a, mapping_b = a.union_and_mapping(b)
    assert _rows(union) == [(0, 1), (2, 3), (4, 5), (9, 9), (0, 0)]
    assert mapping_a.dtype == np.int64
    assert mapping_b.dtype == np.int64
    assert mapping_a.tolist() == [0, 1, 2]
    assert mapping_b.tolist() == [3, 1, 4]

    # union with itself and with empty labels
    union, mapping_a, mapping_b = a.union_and_mapping(a)
    assert union == a
    assert mapping_b.tolist() == [0, 1, 2]

    empty = Labels.empty(["a", "b"])
    union, mapping_a, mapping_b = empty.union_and_mapping(a)
    assert union == a
    assert mapping_a.tolist() == []
    assert mapping_b.tolist() == [0, 1, 2]

    union, mapping_a, mapping_b = a.union_and_mapping(empty)
    assert union == a
    assert mapping_b.tolist() == []

    with pytest.raises(MetatensorError, match="invalid parameter"):
        a.union(Labels(["a", "c"], np.array([[0, 1]])))
    with pytest.raises(MetatensorError, match="invalid parameter"):
        a.union(Labels(["b", "a"], np.array([[0, 1]])))


def test_intersection():
    a = Labels(["a"], np.array([[5], [4], [3], [2]]))
    b = Labels(["a"], np.array([[2], [3]]))

    intersection, mapping_a, mapping_b = a.intersection_and_mapping(b)
    assert _rows(intersection) == [(2,), (3,)]
    assert mapping_a.tolist() == [-1, -1, 1, 0]
    assert mapping_b.tolist() == [0, 1]
    assert mapping_a.dtype == np.int64
    assert a.intersection(b) == intersection

    # the order follows the input with fewer entries
    intersection, mapping_b, mapping_a = b.intersection_and_mapping(a)
    assert _rows(intersection) == [(2,), (3,)]
    assert mapping_b.tolist() == [0, 1]
    assert mapping_a.tolist() == [-1, -1, 1, 0]

    # self on a tie
    c = Labels(["a"], np.array([[3], [2], [7], [8]]))
    intersection, mapping_a, mapping_c = a.intersection_and_mapping(c)
    assert _rows(intersection) == [(3,), (2,)]
    assert mapping_a.tolist() == [-1, -1, 0, 1]
    assert mapping_c.tolist() == [0, 1, -1, -1]

    intersection = c.intersection(a)
    assert _rows(intersection) == [(3,), (2,)]

    empty = Labels.empty(["a"])
    intersection, mapping_a, mapping_e = a.intersection_and_mapping(empty)
    assert len(intersection) == 0
    assert intersection.names == ["a"]
    assert mapping_a.tolist() == [-1, -1, -1, -1]
    assert mapping_e.tolist() == []

    with pytest.raises(MetatensorError, match="invalid parameter"):
        a.intersection(Labels(["b"], np.array([[0]])))


def test_difference():
    a = Labels(["a", "b"], np.array([[0, 1], [2, 3], [4, 5], [6, 7]]))
    b = Labels(["a", "b"], np.array([[4, 5], [9, 9], [0, 1]]))

    difference, mapping = a.difference_and_mapping(b)
    assert _rows(difference) == [(2, 3), (6, 7)]
    assert mapping.tolist() == [-1, 0, -1, 1]
    assert mapping.dtype == np.int64
    assert a.difference(b) == difference

    difference, mapping = a.difference_and_mapping(a)
    assert len(difference) == 0
    assert difference.values.shape == (0, 2)
    assert mapping.tolist() == [-1, -1, -1, -1]

    difference, mapping = a.difference_and_mapping(Labels.empty(["a", "b"]))
    assert difference == a
    assert mapping.tolist() == [0, 1, 2, 3]

    with pytest.raises(MetatensorError, match="invalid parameter"):
        a.difference(Labels(["b"], np.array([[0]])))


def test_set_operations_results():
    a = Labels(["a", "b"], np.array([[0, 1], [2, 3]]))
    b = Labels(["a", "b"], np.array([[2, 3], [5, 6]]))
    for result in [a.union(b), a.intersection(b), a.difference(b)]:
        assert isinstance(result.values, np.ndarray)
        assert result.values.dtype == np.int32
        assert not result.values.flags.writeable
        # the results can be used for further lookups
        for i, entry in enumerate(result):
            assert result.position(entry) == i


def test_large_random_against_naive():
    rng = np.random.default_rng(42)
    for low, high in [(0, 30), (-(2**31), 2**31 - 1)]:
        size = 3
        all_values = _unique_random(rng, 6000, size, low, high)
        count = len(all_values)
        a_values = all_values[:4000]
        b_values = all_values[2000:][rng.permutation(count - 2000)][:3500]
        a = Labels(["x", "y", "z"], a_values)
        b = Labels(["x", "y", "z"], b_values)

        a_rows = [tuple(r) for r in a_values.tolist()]
        b_rows = [tuple(r) for r in b_values.tolist()]
        a_set = set(a_rows)
        b_set = set(b_rows)
        a_pos = {r: i for i, r in enumerate(a_rows)}
        b_pos = {r: i for i, r in enumerate(b_rows)}

        union, map_a, map_b = a.union_and_mapping(b)
        expected = a_rows + [r for r in b_rows if r not in a_set]
        assert _rows(union) == expected
        expected_pos = {r: i for i, r in enumerate(expected)}
        assert map_a.tolist() == list(range(len(a_rows)))
        assert map_b.tolist() == [expected_pos[r] for r in b_rows]

        inter, map_a, map_b = a.intersection_and_mapping(b)
        # b has fewer entries
        expected = [r for r in b_rows if r in a_set]
        assert _rows(inter) == expected
        expected_pos = {r: i for i, r in enumerate(expected)}
        assert map_a.tolist() == [expected_pos.get(r, -1) for r in a_rows]
        assert map_b.tolist() == [expected_pos.get(r, -1) for r in b_rows]

        diff, mapping = a.difference_and_mapping(b)
        expected = [r for r in a_rows if r not in b_set]
        assert _rows(diff) == expected
        expected_pos = {r: i for i, r in enumerate(expected)}
        assert mapping.tolist() == [expected_pos.get(r, -1) for r in a_rows]

        for row in b_rows[:500]:
            assert a.position(row) == a_pos.get(row)
            assert b.position(row) == b_pos[row]

        # select with a subset of the names
        selection_values = np.unique(b_values[:50][:, [2, 0]], axis=0)
        selection = Labels(["z", "x"], selection_values)
        selected = {(r[0], r[1]) for r in selection_values.tolist()}
        expected = [i for i, r in enumerate(a_rows) if (r[2], r[0]) in selected]
        assert a.select(selection).tolist() == expected

        # select with the same names
        expected = [a_pos[r] for r in b_rows if r in a_pos]
        assert a.select(b).tolist() == expected


def test_large_duplicates_detection():
    rng = np.random.default_rng(1)
    values = _unique_random(rng, 20000, 4, -1000, 1000)
    Labels(["a", "b", "c", "d"], values)

    duplicated = np.concatenate([values, values[1234:1235]])
    rng.shuffle(duplicated)
    row = values[1234].tolist()
    message = "\\[" + ", ".join(str(v) for v in row) + "\\] is already present"
    with pytest.raises(MetatensorError, match=message):
        Labels(["a", "b", "c", "d"], duplicated)


# ======================================================================== #
# select                                                                   #
# ======================================================================== #


def test_select():
    labels = Labels(
        ["aa", "bb", "cc"],
        np.array([[1, 1, 1], [1, 1, 2], [1, 2, 3], [2, 1, 1], [4, 3, 2]]),
    )

    # subset of the names: result in the order of self
    selection = Labels(["aa", "bb"], np.array([[1, 1], [4, 3]]))
    selected = labels.select(selection)
    assert selected.dtype == np.uint64
    assert selected.tolist() == [0, 1, 4]

    selection = Labels(["cc"], np.array([[2], [1]]))
    assert labels.select(selection).tolist() == [0, 1, 3, 4]

    # names in a different order
    selection = Labels(["bb", "aa"], np.array([[1, 2], [3, 4]]))
    assert labels.select(selection).tolist() == [3, 4]

    # same names: result in the order of the selection, missing entries skipped
    selection = Labels(["aa", "bb", "cc"], np.array([[4, 3, 2], [9, 9, 9], [1, 1, 1]]))
    assert labels.select(selection).tolist() == [4, 0]

    # no names selects everything
    selection = Labels([], np.empty((0, 0)))
    assert labels.select(selection).tolist() == [0, 1, 2, 3, 4]

    # no entries selects nothing
    selection = Labels.empty(["aa"])
    assert labels.select(selection).tolist() == []
    assert labels.select(selection).dtype == np.uint64

    selection = Labels(["aaaa"], np.array([[1]]))
    message = "invalid parameter: 'aaaa' in selection is not part of these Labels"
    with pytest.raises(MetatensorError, match=message):
        labels.select(selection)

    with pytest.raises(TypeError):
        labels.select({"aa": 1})


def test_select_empty_labels():
    labels = Labels.empty(["a", "b"])
    assert labels.select(Labels(["a"], np.array([[1]]))).tolist() == []
    assert labels.select(Labels(["a", "b"], np.array([[1, 2]]))).tolist() == []


# ======================================================================== #
# thread safety                                                            #
# ======================================================================== #


def test_position_threads():
    rng = np.random.default_rng(3)
    values = _unique_random(rng, 20000, 3, 0, 100)
    expected = {tuple(r): i for i, r in enumerate(values.tolist())}
    queries = list(expected.items())

    for _ in range(3):
        labels = Labels(["a", "b", "c"], values, assume_unique=True)
        barrier = threading.Barrier(8)
        errors = []

        def work(start, labels=labels, barrier=barrier, errors=errors):
            barrier.wait()
            try:
                for row, i in queries[start::7][:2000]:
                    assert labels.position(row) == i
                assert labels.position([1000, 0, 0]) is None
            except BaseException as e:  # pragma: no cover
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []


# ======================================================================== #
# property tests                                                           #
# ======================================================================== #


def _labels_values(max_rows=40, size=2, low=-5, high=5):
    return hnp.arrays(
        np.int32,
        st.tuples(st.integers(0, max_rows), st.just(size)),
        elements=st.integers(low, high),
    )


def _unique_in_order(values):
    seen = set()
    result = []
    for row in values.tolist():
        if tuple(row) not in seen:
            seen.add(tuple(row))
            result.append(row)
    return np.array(result, dtype=np.int32).reshape(-1, values.shape[1])


@settings(max_examples=200, deadline=None)
@given(_labels_values(), _labels_values())
def test_property_set_operations(a_values, b_values):
    a_values = _unique_in_order(a_values)
    b_values = _unique_in_order(b_values)
    a = Labels(["x", "y"], a_values)
    b = Labels(["x", "y"], b_values)
    a_set = {tuple(r) for r in a_values.tolist()}
    b_set = {tuple(r) for r in b_values.tolist()}

    union, map_a, map_b = a.union_and_mapping(b)
    assert set(_rows(union)) == a_set | b_set
    assert len(union) == len(a_set | b_set)
    np.testing.assert_equal(union.values[map_a], a_values)
    np.testing.assert_equal(union.values[map_b], b_values)

    inter, map_a, map_b = a.intersection_and_mapping(b)
    assert set(_rows(inter)) == a_set & b_set
    assert len(inter) == len(a_set & b_set)
    for values, mapping in [(a_values, map_a), (b_values, map_b)]:
        kept = mapping >= 0
        np.testing.assert_equal(inter.values[mapping[kept]], values[kept])
        assert all(tuple(r) not in (a_set & b_set) for r in values[~kept].tolist())

    diff, mapping = a.difference_and_mapping(b)
    assert _rows(diff) == [r for r in _rows(a) if r not in b_set]
    kept = mapping >= 0
    np.testing.assert_equal(diff.values[mapping[kept]], a_values[kept])

    # identities
    assert set(_rows(a.difference(b).union(a.intersection(b)))) == a_set
    assert len(a.difference(b).intersection(b)) == 0


@settings(max_examples=200, deadline=None)
@given(_labels_values(max_rows=30, size=3, low=-3, high=3))
def test_property_uniqueness(values):
    rows = [tuple(r) for r in values.tolist()]
    if len(set(rows)) == len(rows):
        labels = Labels(["a", "b", "c"], values)
        for i, row in enumerate(rows):
            assert labels.position(row) == i
    else:
        with pytest.raises(MetatensorError, match="is already present"):
            Labels(["a", "b", "c"], values)
        keys = pack_rows(values)[0]
        duplicate = rows[first_duplicate(keys)]
        assert rows.count(duplicate) > 1


@settings(max_examples=100, deadline=None)
@given(_labels_values(max_rows=30, size=2, low=-(2**31), high=2**31 - 1))
def test_property_wide_values(values):
    values = _unique_in_order(values)
    labels = Labels(["a", "b"], values)
    for i, row in enumerate(values.tolist()):
        assert labels.position(row) == i
    selection = Labels(["b"], np.unique(values[:3, 1:], axis=0))
    expected = [i for i, r in enumerate(values.tolist()) if [r[1]] in selection]
    assert labels.select(selection).tolist() == expected


# ======================================================================== #
# helpers                                                                  #
# ======================================================================== #


def test_pack_rows_order():
    rng = np.random.default_rng(5)
    for low, high, size in [(0, 10, 3), (-(2**31), 2**31 - 1, 4), (-3, 3, 1)]:
        a = rng.integers(low, high, (300, size), dtype=np.int64).astype(np.int32)
        b = rng.integers(low, high, (200, size), dtype=np.int64).astype(np.int32)
        keys_a, keys_b = pack_rows(a, b)
        assert keys_a.dtype == np.int64
        values = np.concatenate([a, b])
        keys = np.concatenate([keys_a, keys_b])
        # same lexicographic order as the rows
        order = np.lexsort(values.T[::-1])
        sorted_keys = keys[order]
        assert np.all(sorted_keys[1:] >= sorted_keys[:-1])
        # equal keys <=> equal rows
        rows = [tuple(r) for r in values.tolist()]
        for i in range(0, 500, 7):
            for j in range(0, 500, 11):
                assert (keys[i] == keys[j]) == (rows[i] == rows[j])

    # int64 values with a very wide range
    wide = np.array([[-(2**62), 0], [2**62, 1], [0, 2]], dtype=np.int64)
    (keys,) = pack_rows(wide)
    assert keys[0] < keys[2] < keys[1]

    assert pack_rows(np.empty((0, 2), dtype=np.int32))[0].shape == (0,)
    assert pack_rows(np.empty((3, 0), dtype=np.int32))[0].tolist() == [0, 0, 0]


def test_unique_rows():
    values = np.array([[3, 1], [0, 0], [3, 1], [1, 2], [0, 0]], dtype=np.int32)

    unique, inverse = unique_rows(values)
    assert unique.tolist() == [[3, 1], [0, 0], [1, 2]]
    assert inverse.tolist() == [0, 1, 0, 2, 1]
    assert inverse.dtype == np.int64
    assert unique.dtype == np.int32

    unique, inverse = unique_rows(values, order="sorted")
    assert unique.tolist() == [[0, 0], [1, 2], [3, 1]]
    np.testing.assert_equal(unique[inverse], values)

    unique, inverse = unique_rows(np.empty((0, 2), dtype=np.int32))
    assert unique.shape == (0, 2)
    assert inverse.shape == (0,)

    with pytest.raises(ValueError):
        unique_rows(values, order="other")


def test_lookup_rows_and_index():
    haystack = np.array([[3, 1], [0, 0], [1, 2]], dtype=np.int32)
    needles = np.array([[1, 2], [5, 5], [3, 1], [-1, 0]], dtype=np.int32)
    assert lookup_rows(haystack, needles).tolist() == [2, -1, 0, -1]

    index = RowIndex(haystack)
    assert index.lookup(needles).tolist() == [2, -1, 0, -1]
    assert index.position([0, 0]) == 1
    assert index.position([0, 1]) is None

    # large index (searchsorted instead of a dict)
    values = np.arange(30000, dtype=np.int32)[::-1].reshape(-1, 2)
    index = RowIndex(values)
    assert index.position([29999, 29998]) == 0
    assert index.position([29998, 29999]) is None
    assert index.position(values[17].tolist()) == 17
    assert index.lookup(values[::-1]).tolist() == list(range(len(values)))[::-1]

    empty = RowIndex(np.empty((0, 2), dtype=np.int32))
    assert empty.position([0, 0]) is None
    assert empty.lookup(needles).tolist() == [-1, -1, -1, -1]


def test_duplicate_helpers():
    values = np.array([[0, 1], [0, 2], [1, 0]], dtype=np.int32)
    assert rows_strictly_increasing(values)
    assert not rows_strictly_increasing(values[::-1])
    assert not rows_strictly_increasing(values[[0, 0, 1]])
    assert rows_strictly_increasing(values[:1])
    assert not rows_strictly_increasing(np.empty((2, 0), dtype=np.int32))

    hashes = hash_rows(np.array([[1, 2], [2, 1], [1, 2]], dtype=np.int32))
    assert hashes.dtype == np.uint64
    assert hashes[0] == hashes[2]
    assert hashes[0] != hashes[1]

    assert find_duplicate_row(values) is None
    assert find_duplicate_row(values[[2, 0, 1, 0]]) == 1
    wide = np.array([[2**31 - 1, -(2**31), 3]] * 2 + [[0, 0, 0]], dtype=np.int64)
    assert find_duplicate_row(wide[[2, 0, 1]]) == 1
    assert find_duplicate_row(wide[1:]) is None

    keys = np.array([5, 3, 9, 3, 5], dtype=np.int64)
    assert first_duplicate(keys) == 1
    assert first_duplicate(keys, key_range=10) == 1
    assert first_duplicate(np.array([1, 2, 2]), key_range=3) == 1
    assert first_duplicate(np.array([3, 1, 2]), key_range=4) is None


def test_row_index_strategies():
    rng = np.random.default_rng(7)
    cases = [
        # (values, attribute which must be set)
        (np.indices((10, 10)).reshape(2, -1).T, "_table"),
        (_unique_random(rng, 300, 2, 0, 10**6), "_dict"),
        (_unique_random(rng, 6000, 2, 0, 10**6), "_sorted"),
        (_unique_random(rng, 300, 3, -(2**31), 2**31 - 1), "_bytes_dict"),
    ]
    for values, attribute in cases:
        values = values.astype(np.int32)
        index = RowIndex(values)
        assert getattr(index, attribute) is not None

        for i in range(0, len(values), 7):
            assert index.position(values[i].tolist()) == i

        missing = values.copy()
        missing[:, 0] += 1
        expected = lookup_rows(values, missing)
        np.testing.assert_equal(index.lookup(missing), expected)
        np.testing.assert_equal(index.lookup(values), np.arange(len(values)))

        labels = Labels(["a", "b", "c"][: values.shape[1]], values)
        for i in range(0, len(values), 13):
            assert labels.position(values[i]) == i
            position = labels.position(missing[i])
            assert (-1 if position is None else position) == expected[i]


def test_position_with_built_index():
    # the first call builds the index, the next ones use the fast path for
    # tuples and lists, which must behave exactly like the general one
    rng = np.random.default_rng(11)
    for count, size in [(20, 1), (20, 2), (20, 3), (20, 4), (6000, 2), (6000, 3)]:
        values = _unique_random(rng, count, size, -1000, 1000).astype(np.int32)
        labels = Labels(["a", "b", "c", "d"][:size], values)
        assert labels.position(values[0]) == 0
        assert labels._index is not None
        for i in range(0, count, 97):
            row = values[i].tolist()
            assert labels.position(row) == i
            assert labels.position(tuple(row)) == i
            assert labels.position([np.int64(v) for v in row]) == i
            assert labels.position(tuple(np.int32(v) for v in row)) == i

        # values outside of the range of the labels, in any column
        for j in range(size):
            for value in [-1001, 1000, 2**40, -(2**40)]:
                row = values[0].tolist()
                row[j] = value
                assert labels.position(row) is None
                assert labels.position(tuple(row)) is None

        with pytest.raises(TypeError):
            labels.position((1.5,) + (0,) * (size - 1))
        with pytest.raises(TypeError):
            # the error is raised even if an earlier value is out of range
            labels.position((5000,) + (0,) * (size - 2) + ("x",))
        with pytest.raises(MetatensorError, match="invalid parameter"):
            labels.position((0,) * (size + 1))
        with pytest.raises(MetatensorError, match="invalid parameter"):
            labels.position([0] * (size + 1))


def test_row_index_uneven_keys():
    # most rows in a few buckets: the bulk search needs its binary search
    # fallback, and single lookups search large buckets
    rng = np.random.default_rng(12)
    dense = np.stack([np.zeros(5000), rng.permutation(5000)], axis=1)
    sparse = _unique_random(rng, 3000, 2, 0, 2**20)
    values = np.concatenate([dense, sparse + [1, 0]]).astype(np.int32)
    values = np.unique(values, axis=0)[rng.permutation(len(values))]

    index = RowIndex(values)
    assert index._sorted is not None
    np.testing.assert_equal(index.lookup(values), np.arange(len(values)))
    for i in range(0, len(values), 37):
        assert index.position(values[i].tolist()) == i

    missing = values.copy()
    missing[:, 1] += 1
    needles = np.concatenate([missing, values[::-1], [[0, -1], [2**20, 0]]])
    needles = needles.astype(np.int32)
    expected = lookup_rows(values, needles)
    np.testing.assert_equal(index.lookup(needles), expected)
    for i in range(0, len(needles), 41):
        position = index.position(needles[i].tolist())
        assert (-1 if position is None else position) == expected[i]


def test_argsort_keys():
    rng = np.random.default_rng(13)
    for count in [0, 1, 10, 300, 5000]:
        for bits in [1, 16, 17, 30, 48, 49, 62]:
            keys = rng.integers(0, 2**bits, count, dtype=np.int64)
            expected = np.argsort(keys, kind="stable")
            np.testing.assert_equal(argsort_keys(keys), expected)
            np.testing.assert_equal(argsort_keys(keys, 2**bits), expected)


def test_set_operations_with_cached_index():
    rng = np.random.default_rng(14)
    a_values = _unique_random(rng, 3000, 2, 0, 100)
    b_values = _unique_random(rng, 2000, 2, 0, 100)
    reference_a = Labels(["x", "y"], a_values)
    reference_b = Labels(["x", "y"], b_values)
    expected_intersection = reference_a.intersection(reference_b)
    expected_difference = reference_a.difference(reference_b)
    assert expected_intersection == reference_a.intersection_and_mapping(reference_b)[0]
    assert expected_difference == reference_a.difference_and_mapping(reference_b)[0]
    assert len(expected_difference) + len(expected_intersection) == len(a_values)

    for cached in ["a", "b", "both"]:
        a = Labels(["x", "y"], a_values)
        b = Labels(["x", "y"], b_values)
        if cached in ("a", "both"):
            a.position([0, 0])
        if cached in ("b", "both"):
            b.position([0, 0])
        assert a.intersection(b) == expected_intersection
        assert a.difference(b) == expected_difference
        assert b.intersection(a) == reference_b.intersection(reference_a)
        assert b.difference(a) == reference_b.difference(reference_a)


def test_labels_equality_sizes():
    values = np.arange(20000, dtype=np.int32).reshape(-1, 2)
    for count in [1, 100, 10000]:
        a = Labels(["a", "b"], values[:count])
        b = Labels(["a", "b"], values[:count].copy())
        assert a == b
        changed = values[:count].copy()
        changed[-1, 1] = -1
        assert a != Labels(["a", "b"], changed)
        # non-contiguous values
        strided = np.asfortranarray(values[:count])
        assert a == Labels(["a", "b"], strided)
