"""Vectorized helpers working on 2-D integer arrays of label entries (rows).

Everything here works on CPU numpy arrays and never loops in Python over rows:
rows are packed into sortable ``int64`` keys (one key per row, with the same
lexicographic order as the rows), and lookups use sorting + ``searchsorted``.

Other modules may reuse these helpers:

* :py:func:`pack_rows` packs one or several arrays into comparable int64 keys;
* :py:func:`lookup_rows` finds the position of rows inside another array;
* :py:func:`unique_rows` deduplicates rows (first-appearance or sorted order), with
  the inverse mapping;
* :py:func:`find_duplicate_row` and :py:func:`first_duplicate` find a repeated
  row (in an array, or in packed keys);
* :py:func:`rows_strictly_increasing` checks if rows are sorted and unique;
* :py:func:`hash_rows` computes a 64-bit hash of each row;
* :py:class:`RowIndex` is the lazily built index used by ``Labels``.
"""

from bisect import bisect_left as _bisect_left
from operator import index as _index
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np


_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1

# below this number of rows, single lookups go through a python dict, which is
# faster than ``searchsorted`` and cheap to build
_DICT_INDEX_MAX_ROWS = 4096

# build a direct-address table (or count keys instead of sorting them) when the
# range of keys is at most this many times the number of rows (or below
# _TABLE_MIN)
_TABLE_RATIO = 4
_TABLE_MIN = 1024

# sort keys with a radix sort (see ``argsort_keys``) when there are at least
# this many, and they fit in this many bits
_RADIX_MIN_KEYS = 256
_RADIX_MAX_BITS = 48

# number of vectorized rounds of the bulk bucket search before falling back to a
# binary search for the remaining keys
_BUCKET_ROUNDS = 4


class PackSpec(NamedTuple):
    """How to pack the rows of an array into int64 keys: column ``j`` contributes
    ``(value - mins[j]) << shifts[j]``. Packing this way preserves the
    lexicographic order of rows."""

    mins: List[int]
    maxs: List[int]
    shifts: List[int]


def _column_range(arrays: Sequence[np.ndarray], j: int) -> Tuple[int, int]:
    mins = []
    maxs = []
    for array in arrays:
        if array.shape[0] != 0:
            column = array[:, j]
            mins.append(int(column.min()))
            maxs.append(int(column.max()))
    return min(mins), max(maxs)


def pack_spec(values: np.ndarray) -> Optional[PackSpec]:
    """Compute the :py:class:`PackSpec` of a 2-D integer array, i.e. offsets and
    bit shifts so that each row fits in a single non-negative int64.

    :param values: 2-D integer array, with at least one row
    :return: the spec, or ``None`` if the rows need more than 63 bits (or the
        array is empty)
    """
    n_rows, n_columns = values.shape
    if n_rows == 0:
        return None

    mins = []
    maxs = []
    bits = []
    for j in range(n_columns):
        column = values[:, j]
        mn = int(column.min())
        mx = int(column.max())
        mins.append(mn)
        maxs.append(mx)
        bits.append((mx - mn).bit_length())

    if sum(bits) > 63:
        return None

    shifts = [0] * n_columns
    shift = 0
    for j in reversed(range(n_columns)):
        shifts[j] = shift
        shift += bits[j]

    return PackSpec(mins, maxs, shifts)


def pack_with_spec(
    values: np.ndarray, spec: PackSpec, check_range: bool = False
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Pack the rows of ``values`` into int64 keys according to ``spec``.

    :param values: 2-D integer array with the same number of columns as the spec
    :param spec: the packing specification, from :py:func:`pack_spec`
    :param check_range: if ``True``, also compute which rows have all their
        values inside the range covered by the spec (the keys of the other rows
        are meaningless)
    :return: ``(keys, valid)``, where ``valid`` is ``None`` if ``check_range`` is
        ``False``
    """
    n_rows = values.shape[0]
    keys = np.zeros(n_rows, dtype=np.int64)
    invalid = np.zeros(n_rows, dtype=np.bool_) if check_range else None
    for j, (mn, mx, shift) in enumerate(zip(spec.mins, spec.maxs, spec.shifts)):
        if mx == mn and not check_range:
            continue
        column = values[:, j].astype(np.int64)
        column -= mn
        if check_range:
            # negative values become huge when seen as unsigned
            invalid |= column.view(np.uint64) > (mx - mn)
        if mx == mn:
            continue
        if shift != 0:
            column <<= shift
        keys |= column

    if check_range:
        if invalid.any():
            # keep the keys of invalid rows inside the valid range, they are
            # ignored anyway
            keys[invalid] = 0
        return keys, ~invalid
    return keys, None


def _dense_ranks(keys: List[np.ndarray]) -> Tuple[List[np.ndarray], int]:
    all_keys = np.concatenate(keys)
    unique, inverse = np.unique(all_keys, return_inverse=True)
    inverse = inverse.astype(np.int64, copy=False).reshape(-1)
    bits = (len(unique) - 1).bit_length()
    splits = np.cumsum([len(k) for k in keys])[:-1]
    return list(np.split(inverse, splits)), bits


def pack_rows(*arrays: np.ndarray) -> List[np.ndarray]:
    """Pack the rows of one or more 2-D integer arrays (all with the same number
    of columns) into int64 keys.

    The keys of all arrays live in the same key space: two rows are equal if and
    only if their keys are equal, and comparing keys compares the rows in
    lexicographic order. This always succeeds: when the value ranges need more
    than 63 bits, the partial keys are replaced by their dense rank (which needs
    at most ``log2(number of rows)`` bits) before adding more columns.

    :param arrays: 2-D integer arrays (any integer dtype)
    :return: one 1-D int64 array of keys per input array
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    n_columns = arrays[0].shape[1]
    sizes = [a.shape[0] for a in arrays]
    if sum(sizes) == 0 or n_columns == 0:
        return [np.zeros(size, dtype=np.int64) for size in sizes]

    keys: Optional[List[np.ndarray]] = None
    key_bits = 0
    for j in range(n_columns):
        mn, mx = _column_range(arrays, j)
        bits = (mx - mn).bit_length()
        if bits == 0:
            # constant column, it does not change the keys
            if keys is None:
                keys = [np.zeros(size, dtype=np.int64) for size in sizes]
            continue

        if bits > 62:
            # very wide integer column (not int32), replace it by its rank
            ranks, bits = _dense_ranks([a[:, j] for a in arrays])
            columns = ranks
        else:
            columns = []
            for array in arrays:
                column = array[:, j].astype(np.int64)
                column -= mn
                columns.append(column)

        if keys is None:
            keys = columns
            key_bits = bits
            continue

        if key_bits + bits > 63:
            keys, key_bits = _dense_ranks(keys)

        for key, column in zip(keys, columns):
            key <<= bits
            key |= column
        key_bits += bits

    assert keys is not None
    return keys


def rows_strictly_increasing(values: np.ndarray) -> bool:
    """Are the rows of a 2-D integer array strictly increasing in lexicographic
    order (which implies that they are unique)?

    :param values: 2-D integer array
    """
    n_rows, n_columns = values.shape
    if n_rows < 2:
        return True
    if n_columns == 0:
        return False

    before = values[:-1]
    after = values[1:]
    increasing = np.zeros(n_rows - 1, dtype=np.bool_)
    undecided = np.ones(n_rows - 1, dtype=np.bool_)
    for j in range(n_columns):
        a = before[:, j]
        b = after[:, j]
        increasing |= undecided & (a < b)
        if j != n_columns - 1:
            undecided &= a == b
    return bool(increasing.all())


def hash_rows(values: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of a 2-D integer array. Equal rows have equal
    hashes; different rows may (rarely) collide.

    :param values: 2-D integer array
    :return: 1-D uint64 array
    """
    n_rows, n_columns = values.shape
    hashes = np.full(n_rows, 0x9E3779B97F4A7C15, dtype=np.uint64)
    multiplier = np.uint64(0xBF58476D1CE4E5B9)
    for j in range(n_columns):
        column = values[:, j].astype(np.int64).view(np.uint64)
        hashes ^= column
        hashes *= multiplier
        hashes ^= hashes >> np.uint64(31)
    return hashes


def find_duplicate_row(values: np.ndarray) -> Optional[int]:
    """Find a duplicated row in a 2-D integer array, with the same rules as
    :py:func:`first_duplicate` to choose which one is reported.

    :param values: 2-D integer array
    :return: the index of the first occurrence of a duplicated row, or ``None``
        if all rows are unique
    """
    if values.shape[0] < 2:
        return None

    spec = pack_spec(values)
    if spec is not None:
        keys, _ = pack_with_spec(values, spec)
        return first_duplicate(keys, _key_range(spec))

    # the rows need more than 63 bits: only do the (slower) exact packing if
    # some rows might be equal
    if rows_strictly_increasing(values):
        return None
    hashes = np.sort(hash_rows(values))
    if not np.any(hashes[1:] == hashes[:-1]):
        return None

    (keys,) = pack_rows(values)
    return first_duplicate(keys)


def first_duplicate(keys: np.ndarray, key_range: Optional[int] = None) -> Optional[int]:
    """Find a duplicated entry in ``keys`` (for example the result of
    :py:func:`pack_rows`).

    Like the reference implementation, this scans adjacent entries: if they are
    all strictly increasing, there are no duplicates. At the first pair which is
    not increasing, either the two entries are equal (and this is the duplicate),
    or the smallest duplicated entry is reported.

    :param keys: 1-D array of keys
    :param key_range: if given, all keys are in ``[0, key_range)``, which allows
        to count them instead of sorting when the range is small
    :return: the index of the first occurrence of a duplicated key, or ``None``
    """
    n = len(keys)
    if n < 2:
        return None

    increasing = keys[1:] > keys[:-1]
    i = int(np.argmin(increasing))
    if increasing[i]:
        return None

    if keys[i] == keys[i + 1]:
        return i

    if key_range is not None and key_range <= _TABLE_RATIO * n:
        repeated = np.bincount(keys, minlength=key_range) > 1
        k = int(np.argmax(repeated))
        if not repeated[k]:
            return None
        return int(np.argmax(keys == k))

    sorted_keys = np.sort(keys)
    equal = sorted_keys[1:] == sorted_keys[:-1]
    k = int(np.argmax(equal))
    if not equal[k]:
        return None
    return int(np.argmax(keys == sorted_keys[k]))


def unique_rows(
    values: np.ndarray, order: str = "first"
) -> Tuple[np.ndarray, np.ndarray]:
    """Deduplicate the rows of a 2-D integer array.

    :param values: 2-D integer array
    :param order: ``"first"`` to keep the unique rows in order of first
        appearance, ``"sorted"`` to sort them lexicographically
    :return: ``(unique, inverse)`` with ``unique`` the unique rows (same dtype as
        ``values``) and ``inverse`` an int64 array such that
        ``unique[inverse] == values``
    """
    if order not in ("first", "sorted"):
        raise ValueError(f"invalid order '{order}', expected 'first' or 'sorted'")

    values = np.asarray(values)
    if values.shape[0] == 0:
        return values[:0].copy(), np.zeros(0, dtype=np.int64)

    (keys,) = pack_rows(values)
    _, first_index, inverse = np.unique(keys, return_index=True, return_inverse=True)
    inverse = inverse.astype(np.int64, copy=False).reshape(-1)

    if order == "first":
        permutation = np.argsort(first_index, kind="stable")
        rank = np.empty(len(permutation), dtype=np.int64)
        rank[permutation] = np.arange(len(permutation), dtype=np.int64)
        first_index = first_index[permutation]
        inverse = rank[inverse]

    return values[first_index], inverse


def lookup_rows(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """Find the position of each row of ``needles`` in ``haystack``.

    :param haystack: 2-D integer array with unique rows
    :param needles: 2-D integer array with the same number of columns
    :return: int64 array with one entry per needle: the row of ``haystack``
        equal to this needle, or ``-1`` when there is none
    """
    haystack_keys, needle_keys = pack_rows(haystack, needles)
    return _search_keys(_sort_keys(haystack_keys), needle_keys)


def argsort_keys(keys: np.ndarray, key_range: Optional[int] = None) -> np.ndarray:
    """Stable ``argsort`` of non-negative int64 keys.

    Keys which fit in 48 bits are sorted as 16-bit digits with ``np.lexsort``
    (numpy sorts 16-bit integers with a radix sort), which is several times
    faster than a comparison sort for large arrays.

    :param keys: 1-D array of non-negative int64 keys
    :param key_range: all keys are in ``[0, key_range)``, computed if not given
    """
    n = len(keys)
    if n < _RADIX_MIN_KEYS:
        return np.argsort(keys, kind="stable")
    if key_range is None:
        key_range = int(keys.max()) + 1
    bits = (key_range - 1).bit_length()
    if bits > _RADIX_MAX_BITS:
        return np.argsort(keys, kind="stable")
    if bits <= 16:
        return np.argsort(keys.astype(np.uint16), kind="stable")

    # least significant digit first for lexsort
    digits = []
    for shift in range(0, bits, 16):
        digit = keys >> shift if shift != 0 else keys.copy()
        digit &= 0xFFFF
        digits.append(digit.astype(np.uint16))
    return np.lexsort(digits)


def _sort_keys(
    keys: np.ndarray, key_range: Optional[int] = None
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    if len(keys) < 2 or bool(np.all(keys[1:] > keys[:-1])):
        return keys, None
    order = argsort_keys(keys, key_range)
    return keys[order], order


def _search_keys(
    sorted_keys: Tuple[np.ndarray, Optional[np.ndarray]],
    needles: np.ndarray,
    valid: Optional[np.ndarray] = None,
) -> np.ndarray:
    sorted_values, order = sorted_keys
    n = len(sorted_values)
    if n == 0 or len(needles) == 0:
        return np.full(len(needles), -1, dtype=np.int64)

    position = np.searchsorted(sorted_values, needles)
    np.minimum(position, n - 1, out=position)
    found = sorted_values[position] == needles
    if valid is not None:
        found &= valid

    if order is not None:
        result = order[position].astype(np.int64, copy=False)
    else:
        result = position.astype(np.int64, copy=False)
    result[~found] = -1
    return result


class RowIndex:
    """An immutable index over the (unique) rows of a 2-D int32 array, used to find
    the position of one or many rows.

    When the rows fit in 63 bits, they are packed into int64 keys (see
    :py:func:`pack_spec`). If the range of keys is small enough, a direct-address
    table maps keys to positions. Otherwise the keys are sorted, and split in
    buckets (on their high bits, about one key per bucket) with the start of each
    bucket in the sorted keys: a lookup only searches its bucket. Small arrays
    also get a dict from key to position for single lookups. When the rows do
    not fit in 63 bits, single lookups use a dict from the row bytes to the
    position, and bulk lookups pack both arrays together.

    Single lookups (:py:meth:`position`) read the arrays through memoryviews,
    which give python integers much faster than indexing numpy arrays.

    :param values: 2-D int32 CPU numpy array with unique rows
    """

    def __init__(self, values: np.ndarray):
        self._values = values
        self._count, self._size = values.shape
        self._spec = pack_spec(values) if self._count != 0 else None
        # packs a single row into its key
        self._pack: Optional[Callable[[Sequence[int]], int]] = None
        self._key_range = 0
        self._table: Optional[np.ndarray] = None
        self._table_view: Optional[memoryview] = None
        self._dict = None
        self._sorted: Optional[Tuple[np.ndarray, Optional[np.ndarray]]] = None
        self._keys_view: Optional[memoryview] = None
        self._order_view: Optional[memoryview] = None
        self._bucket_shift = 0
        self._bucket_starts: Optional[np.ndarray] = None
        self._starts_view: Optional[memoryview] = None
        self._bytes_dict = None

        if self._count == 0:
            return

        spec = self._spec
        if spec is not None:
            self._pack = _row_packer(spec)
            keys, _ = pack_with_spec(values, spec)
            key_range = _key_range(spec)
            self._key_range = key_range
            if key_range <= max(_TABLE_RATIO * self._count, _TABLE_MIN):
                table = np.full(key_range, -1, dtype=np.int32)
                table[keys] = np.arange(self._count, dtype=np.int32)
                self._table = table
                self._table_view = memoryview(table)
                return

            sorted_keys, order = _sort_keys(keys, key_range)
            self._sorted = (sorted_keys, order)
            if self._count <= _DICT_INDEX_MAX_ROWS:
                self._dict = dict(zip(keys.tolist(), range(self._count)))

            # about one key per bucket
            shift = max((key_range - 1).bit_length() - self._count.bit_length(), 0)
            n_buckets = ((key_range - 1) >> shift) + 1
            counts = np.bincount(sorted_keys >> shift, minlength=n_buckets)
            starts = np.zeros(n_buckets + 1, dtype=np.int64)
            np.cumsum(counts, out=starts[1:])
            self._bucket_shift = shift
            self._bucket_starts = starts
            self._starts_view = memoryview(starts)
            self._keys_view = memoryview(np.ascontiguousarray(sorted_keys))
            if order is not None:
                self._order_view = memoryview(np.ascontiguousarray(order))
        else:
            contiguous = np.ascontiguousarray(values, dtype=np.int32)
            rows = contiguous.view(np.dtype((np.void, 4 * self._size))).reshape(-1)
            self._bytes_dict = dict(zip(rows.tolist(), range(self._count)))

    @property
    def size(self) -> int:
        """Number of values in each row."""
        return self._size

    def position(self, row: Sequence[int]) -> Optional[int]:
        """Position of a single row.

        :param row: sequence of exactly :py:attr:`size` integers (python
            integers or anything accepted by :py:func:`operator.index`, which
            raises a ``TypeError`` for other values)
        :return: the position of this row, or ``None``
        """
        pack = self._pack
        if pack is None:
            return self._position_unpacked(row)

        key = pack(row)
        if key < 0 or key >= self._key_range:
            return None

        table = self._table_view
        if table is not None:
            position = table[key]
            return None if position < 0 else position

        if self._dict is not None:
            return self._dict.get(key)

        starts = self._starts_view
        bucket = key >> self._bucket_shift
        end = starts[bucket + 1]
        keys = self._keys_view
        i = _bisect_left(keys, key, starts[bucket], end)
        if i < end and keys[i] == key:
            order = self._order_view
            return i if order is None else order[i]
        return None

    def _position_unpacked(self, row: Sequence[int]) -> Optional[int]:
        row = [_index(value) for value in row]
        if self._count == 0:
            return None
        for value in row:
            if value < _INT32_MIN or value > _INT32_MAX:
                return None
        array = np.array(row, dtype=np.int32).reshape(1, -1)
        key = array.view(np.dtype((np.void, 4 * self._size))).reshape(-1)
        return self._bytes_dict.get(key.tolist()[0])

    def lookup(self, rows: np.ndarray) -> np.ndarray:
        """Positions of many rows at once.

        :param rows: 2-D integer array with :py:attr:`size` columns
        :return: int64 array, with ``-1`` for rows which are not in the index
        """
        n_rows = rows.shape[0]
        if self._count == 0 or n_rows == 0:
            return np.full(n_rows, -1, dtype=np.int64)

        if self._spec is not None:
            keys, valid = pack_with_spec(rows, self._spec, check_range=True)
            if self._table is not None:
                result = self._table[keys].astype(np.int64)
                result[~valid] = -1
                return result
            return self._search_buckets(keys, valid)

        return lookup_rows(self._values, rows)

    def _search_buckets(self, keys: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Bulk version of the bucket search in :py:meth:`position`: all the keys
        look at the first entry of their bucket, then the keys not found yet (and
        larger than this entry) at the next one, and so on. The keys left after a
        few rounds (large buckets, for unevenly distributed keys) use a binary
        search in all the sorted keys. Compared to a binary search of all keys,
        this touches much less memory (the keys are in random order)."""
        sorted_keys, order = self._sorted
        count = len(sorted_keys)
        buckets = keys >> self._bucket_shift
        current = self._bucket_starts[buckets]
        buckets += 1
        end = self._bucket_starts[buckets]

        # first round on all the keys
        found = sorted_keys[np.minimum(current, count - 1)]
        equal = found == keys
        equal &= current < end
        equal &= valid
        result = np.where(equal, current, -1)
        current += 1
        more = found < keys
        more &= current < end
        more &= valid

        candidates = np.flatnonzero(more)
        current = current[candidates]
        end = end[candidates]
        needles = keys[candidates]
        for _ in range(_BUCKET_ROUNDS):
            if len(candidates) == 0:
                break
            found = sorted_keys[current]
            equal = found == needles
            result[candidates[equal]] = current[equal]
            current += 1
            more = found < needles
            more &= current < end
            candidates = candidates[more]
            current = current[more]
            end = end[more]
            needles = needles[more]

        if len(candidates) != 0:
            position = np.searchsorted(sorted_keys, needles)
            np.minimum(position, count - 1, out=position)
            equal = sorted_keys[position] == needles
            result[candidates[equal]] = position[equal]

        if order is not None:
            found = np.flatnonzero(result >= 0)
            result[found] = order[result[found]]
        return result


def _row_packer(spec: PackSpec) -> Callable[[Sequence[int]], int]:
    """A function packing a single row (a sequence of integers, converted with
    :py:func:`operator.index`) into its key for ``spec``, or returning ``-1``
    when some value is outside of the range covered by the spec. This is the
    scalar version of :py:func:`pack_with_spec`, specialized for rows with up
    to 3 values (the common case) to avoid the cost of a python loop."""
    fields = [
        (mn, (mx - mn).bit_length(), shift)
        for mn, mx, shift in zip(spec.mins, spec.maxs, spec.shifts)
    ]
    # ``value >> bits`` is non-zero for negative values and for values which
    # need more than ``bits`` bits, i.e. values outside of ``[min, max]``
    # (values in ``(max, 2**bits)`` give keys of rows which are not there)
    if len(fields) == 1:
        ((m0, b0, _),) = fields

        def pack(row: Sequence[int]) -> int:
            (a,) = row
            a = _index(a) - m0
            return -1 if a >> b0 else a

    elif len(fields) == 2:
        (m0, b0, s0), (m1, b1, _) = fields

        def pack(row: Sequence[int]) -> int:
            a, b = row
            a = _index(a) - m0
            b = _index(b) - m1
            if (a >> b0) | (b >> b1):
                return -1
            return (a << s0) | b

    elif len(fields) == 3:
        (m0, b0, s0), (m1, b1, s1), (m2, b2, _) = fields

        def pack(row: Sequence[int]) -> int:
            a, b, c = row
            a = _index(a) - m0
            b = _index(b) - m1
            c = _index(c) - m2
            if (a >> b0) | (b >> b1) | (c >> b2):
                return -1
            return (a << s0) | (b << s1) | c

    else:

        def pack(row: Sequence[int]) -> int:
            key = 0
            outside = 0
            for value, (mn, bits, shift) in zip(row, fields):
                value = _index(value) - mn
                outside |= value >> bits
                key |= value << shift
            return -1 if outside else key

    return pack


def _key_range(spec: PackSpec) -> int:
    """Number of possible keys (largest key + 1) for a pack spec."""
    key = 0
    for mn, mx, shift in zip(spec.mins, spec.maxs, spec.shifts):
        key |= (mx - mn) << shift
    return key + 1
