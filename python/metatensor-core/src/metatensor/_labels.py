"""Metadata describing the axes of a :py:class:`TensorBlock`: :py:class:`Labels`
and their entries (:py:class:`LabelsEntry`)."""

import operator
import pickle
from typing import (
    TYPE_CHECKING,
    Any,
    BinaryIO,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np

from . import _array
from ._errors import invalid_parameter
from ._labels_entry import (
    LabelsEntry,
    dimension_index,
    entry_to_row,
    format_row,
    normalize_names,
    normalize_values,
    to_numpy_readonly,
    values_device,
)
from ._labels_print import format_labels, labels_html
from ._labels_utils import RowIndex, find_duplicate_row
from ._to import convert_array, parse_to_arguments


if TYPE_CHECKING:  # pragma: no cover
    import pathlib


Array = Any

# below this number of entries, the uniqueness check uses a python set
_SMALL_LABELS = 64

# below this number of values, Labels are compared through their bytes
_SMALL_COMPARE = 4096


class Labels:
    """A set of metadata used to describe the different axes of a
    :py:class:`TensorBlock`: a list of dimension ``names`` and a 2-D int32 array
    of ``values``, with one row per entry and one column per name. All entries
    must be unique.

    :param names: names of the dimensions; a single string is a single dimension
        (and ``""`` means no dimensions). Each name must be a valid identifier.
    :param values: 2-D numpy array or torch tensor of integers, with shape
        ``(n_entries, len(names))``. Numpy arrays are converted to int32 without
        copy when possible and made read-only; torch tensors are converted to
        ``torch.int32`` and kept on their device.
    :param assume_unique: skip the check that all entries are unique
    """

    def __init__(
        self,
        names: Union[str, Sequence[str]],
        values: Array,
        assume_unique: bool = False,
    ):
        names = normalize_names(names)
        values = normalize_values(values, len(names))

        self._names: Tuple[str, ...] = names
        self._values = values
        self._numpy: Optional[np.ndarray] = (
            values if isinstance(values, np.ndarray) else None
        )
        self._index: Optional[RowIndex] = None

        if not assume_unique:
            self._check_unique()

    @staticmethod
    def _new(
        names: Tuple[str, ...],
        values: Array,
        numpy_values: Optional[np.ndarray] = None,
        index: Optional[RowIndex] = None,
    ) -> "Labels":
        """Create Labels without any check. ``names`` must be a tuple of valid
        names, ``values`` a 2-D int32 array (read-only for numpy) with unique rows.
        ``numpy_values`` and ``index`` are caches for these values."""
        labels = object.__new__(Labels)
        labels._names = names
        labels._values = values
        if isinstance(values, np.ndarray):
            numpy_values = values
        labels._numpy = numpy_values
        labels._index = index
        return labels

    def _check_unique(self) -> None:
        if _array.is_torch(self._values) and self._values.device.type == "meta":
            raise invalid_parameter(
                "can not check the uniqueness of Labels on the 'meta' device, "
                "use `assume_unique=True` to create them"
            )
        values = self._numpy_values()
        count = values.shape[0]
        if count < 2:
            return
        if count <= _SMALL_LABELS and len(set(map(tuple, values.tolist()))) == count:
            # faster than numpy for small labels
            return
        duplicate = find_duplicate_row(values)
        if duplicate is not None:
            raise invalid_parameter(
                "can not have the same label entry multiple times: "
                f"{format_row(values[duplicate])} is already present"
            )

    def _numpy_values(self) -> np.ndarray:
        """The values of these Labels as a read-only CPU numpy int32 array (the
        values themselves for numpy, a cached view/copy for torch)."""
        array = self._numpy
        if array is None:
            array = to_numpy_readonly(self._values)
            self._numpy = array
        return array

    def _row_index(self) -> RowIndex:
        """The lazily built (thread-safe) index used to find entries."""
        index = self._index
        if index is None:
            index = RowIndex(self._numpy_values())
            self._index = index
        return index

    def _with_numpy_values(
        self, names: Tuple[str, ...], values: np.ndarray
    ) -> "Labels":
        """New Labels (without checks) in the same backend and device as ``self``,
        from the CPU numpy int32 ``values``."""
        values = np.ascontiguousarray(values, dtype=np.int32)
        if isinstance(self._values, np.ndarray):
            values.setflags(write=False)
            return Labels._new(names, values)

        converted = _array.from_numpy(values, like=self._values)
        values.setflags(write=False)
        return Labels._new(names, converted, numpy_values=values)

    # ==================================================================== #
    # constructors                                                         #
    # ==================================================================== #

    @staticmethod
    def single() -> "Labels":
        """Labels with a single dimension ``"_"`` and a single entry ``0``, to use
        when there is no relevant metadata."""
        return Labels(["_"], np.zeros((1, 1), dtype=np.int32), assume_unique=True)

    @staticmethod
    def empty(names: Union[str, Sequence[str]]) -> "Labels":
        """Labels with the given ``names`` and no entries.

        :param names: names of the dimensions
        """
        names = normalize_names(names)
        return Labels(names, np.empty((0, len(names)), dtype=np.int32))

    @staticmethod
    def range(name: str, end: int) -> "Labels":
        """Labels with a single dimension ``name`` and entries ``0, 1, ..., end - 1``.

        :param name: name of the single dimension
        :param end: end of the range (excluded)
        """
        values = np.arange(max(int(end), 0), dtype=np.int32).reshape(-1, 1)
        return Labels([name], values, assume_unique=True)

    @staticmethod
    def load(file: Union[str, "pathlib.Path", BinaryIO]) -> "Labels":
        """Load Labels previously saved with :py:meth:`save`.

        :param file: path or file-like object to load from
        """
        from .io import load_labels

        return load_labels(file)

    @staticmethod
    def load_buffer(buffer: Union[bytes, bytearray, memoryview]) -> "Labels":
        """Load Labels from an in-memory buffer (see :py:meth:`save_buffer`).

        :param buffer: the serialized Labels
        """
        from .io import load_labels_buffer

        return load_labels_buffer(buffer)

    def save(self, file: Union[str, "pathlib.Path", BinaryIO]):
        """Save these Labels to a file or file-like object.

        :param file: path or file-like object; a ``.mts`` extension is added to
            paths without it
        """
        from .io import save

        save(file, self)

    def save_buffer(self) -> memoryview:
        """Save these Labels to an in-memory buffer."""
        from .io import save_buffer

        return save_buffer(self)

    # ==================================================================== #
    # python protocols                                                     #
    # ==================================================================== #

    def __copy__(self) -> "Labels":
        return Labels._new(self._names, self._values, self._numpy, self._index)

    def __deepcopy__(self, memo) -> "Labels":
        return self.__copy__()

    def __reduce_ex__(self, protocol: int):
        buffer = self.save_buffer()
        if protocol >= 5:
            return Labels._from_pickle, (pickle.PickleBuffer(buffer),)
        return Labels._from_pickle, (bytes(buffer),)

    @staticmethod
    def _from_pickle(buffer: Union[bytes, bytearray, memoryview]) -> "Labels":
        return Labels.load_buffer(buffer)

    def __len__(self) -> int:
        return int(self._values.shape[0])

    def __iter__(self) -> Iterator[LabelsEntry]:
        names = self._names
        for row in self._values:
            yield LabelsEntry._new(names, row)

    def __getitem__(self, index: Union[int, str]):
        if isinstance(index, str):
            return self.column(index)
        elif isinstance(index, (int, np.integer)):
            return self.entry(index)
        raise TypeError(
            "Labels can only be indexed by a single string or integer, "
            f"got {type(index)}"
        )

    def __contains__(self, entry: Union[LabelsEntry, Sequence[int]]) -> bool:
        return self.position(entry) is not None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Labels):
            raise TypeError(f"can only compare Labels with Labels, got {type(other)}")
        if self is other:
            return True
        if self._names != other._names:
            return False
        if self._values.shape != other._values.shape:
            return False
        values = self._numpy_values()
        other_values = other._numpy_values()
        if values.size <= _SMALL_COMPARE:
            # much faster than numpy comparisons for small arrays (both arrays
            # are int32 with the same shape)
            return values.tobytes() == other_values.tobytes()
        return bool(np.array_equal(values, other_values))

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return "Labels\n   " + self.print(4, 3)

    def __repr__(self) -> str:
        return "Labels\n   " + self.print(-1, 3)

    # ==================================================================== #
    # properties and accessors                                             #
    # ==================================================================== #

    @property
    def names(self) -> List[str]:
        """names of the dimensions of these Labels"""
        return list(self._names)

    @property
    def values(self) -> Array:
        """values of these Labels, as a 2-D int32 array (the same object each
        time; read-only for numpy)"""
        return self._values

    @property
    def device(self):
        """device of the values: ``"cpu"`` for numpy, a ``torch.device`` for torch"""
        return values_device(self._values)

    def entry(self, index: int) -> LabelsEntry:
        """Get a single entry (row) of these Labels.

        :param index: index of the entry, negative values count from the end
        """
        index = operator.index(index)
        count = self._values.shape[0]
        if index < -count or index >= count:
            raise IndexError(
                f"index {index} is out of bounds for axis 0 with size {count}"
            )
        if index < 0:
            index += count
        return LabelsEntry._new(self._names, self._values[index])

    def column(self, dimension: str) -> Array:
        """Get the values of a single dimension, as a 1-D array.

        :param dimension: name of the dimension
        """
        if not isinstance(dimension, str):
            raise TypeError(
                f"column name must be a string, got {type(dimension)} instead"
            )
        return self._values[:, dimension_index(self._names, dimension)]

    def position(self, entry: Union[LabelsEntry, Sequence[int]]) -> Optional[int]:
        """Position of ``entry`` in these Labels, or ``None`` if it is not there.
        The names of a :py:class:`LabelsEntry` are ignored.

        :param entry: a :py:class:`LabelsEntry` or a sequence of integers
        """
        index = self._index
        if (
            index is not None
            and (type(entry) is tuple or type(entry) is list)
            and len(entry) == index.size
        ):
            # fast path for the common case, with the same checks: the index
            # converts the values with ``operator.index``
            return index.position(entry)

        row = entry_to_row(entry)
        if len(row) != len(self._names):
            raise invalid_parameter(
                f"the entry has {len(row)} values, but these Labels have "
                f"{len(self._names)} dimensions"
            )
        return self._row_index().position(row)

    # ==================================================================== #
    # modifications (they return new Labels)                               #
    # ==================================================================== #

    def insert(self, index: int, name: str, values: np.ndarray) -> "Labels":
        """New Labels with an additional dimension ``name`` inserted before
        ``index``.

        :param index: position of the new dimension
        :param name: name of the new dimension
        :param values: 1-D array with one value per entry
        """
        if isinstance(values, np.ndarray):
            new_column = values
        elif _array.is_torch(values):
            new_column = _array.to_numpy(values)
        else:
            raise ValueError("`values` must be a numpy ndarray")

        if new_column.ndim != 1:
            raise ValueError("`values` must be a 1D array")
        if new_column.shape[0] != len(self):
            raise ValueError(
                f"the new `values` contains {new_column.shape[0]} entries, "
                f"but the Labels contains {len(self)}"
            )

        new_values = np.insert(self._numpy_values(), index, new_column, axis=1)
        names = list(self._names)
        names.insert(index, name)
        names = normalize_names(names)
        return self._with_numpy_values(names, new_values)

    def append(self, name: str, values: np.ndarray) -> "Labels":
        """New Labels with an additional dimension ``name`` at the end.

        :param name: name of the new dimension
        :param values: 1-D array with one value per entry
        """
        return self.insert(len(self._names), name, values)

    def permute(self, dimensions_indexes: List[int]) -> "Labels":
        """New Labels with the dimensions in a different order.

        :param dimensions_indexes: for each new dimension, the index of the
            existing dimension to use
        """
        indexes = [operator.index(i) for i in dimensions_indexes]
        if len(indexes) != len(self._names):
            raise ValueError(
                f"the length of `dimensions_indexes` ({len(indexes)}) does not "
                "match the number of dimensions in the Labels "
                f"({len(self._names)})"
            )
        names = normalize_names([self._names[i] for i in indexes])
        return self._with_numpy_values(names, self._numpy_values()[:, indexes])

    def remove(self, name: str) -> "Labels":
        """New Labels without the dimension ``name``.

        :param name: name of the dimension to remove
        """
        j = dimension_index(self._names, name)
        names = self._names[:j] + self._names[j + 1 :]
        values = np.delete(self._numpy_values(), j, axis=1)
        # check the uniqueness of the new entries
        Labels(names, values)
        return self._with_numpy_values(names, values)

    def rename(self, old: str, new: str) -> "Labels":
        """New Labels with the dimension ``old`` renamed to ``new``.

        :param old: current name of the dimension
        :param new: new name of the dimension
        """
        j = dimension_index(self._names, old)
        names = list(self._names)
        names[j] = new
        names = normalize_names(names)
        return Labels._new(names, self._values, self._numpy, self._index)

    def to(
        self,
        *args,
        dtype=None,
        device=None,
        arrays: Optional[str] = None,
        non_blocking: bool = False,
    ) -> "Labels":
        """Move these Labels to another array backend and/or device.

        :param args: a device (``str`` or ``torch.device``)
        :param dtype: must be ``None``, Labels are always int32
        :param device: the new device
        :param arrays: the new array backend, ``"numpy"`` or ``"torch"``
        :param non_blocking: passed on to torch
        :return: ``self`` when nothing changes, else new Labels
        """
        parsed = parse_to_arguments(
            "`Labels.to`", args, dtype, device, arrays, non_blocking
        )
        if parsed.dtype is not None:
            raise ValueError("Labels values must be int32, `dtype` can not be changed")

        kind = _array.array_kind(self._values)
        change_backend = parsed.arrays is not None and parsed.arrays != kind
        change_device = parsed.device is not None and not self._on_device(parsed.device)
        if not change_backend and not change_device:
            return self

        values = convert_array(
            self._values,
            dtype=None,
            device=parsed.device,
            arrays=parsed.arrays,
            non_blocking=parsed.non_blocking,
        )
        if isinstance(values, np.ndarray):
            values.setflags(write=False)
            return Labels._new(self._names, values, index=self._index)
        if values.device.type == "meta":
            # no data on this device, do not keep the caches
            return Labels._new(self._names, values)
        return Labels._new(self._names, values, self._numpy, self._index)

    def _on_device(self, device) -> bool:
        values = self._values
        if isinstance(values, np.ndarray):
            return str(device) == "cpu"
        torch = _array.torch_module()
        device = torch.device(device)
        current = values.device
        return device.type == current.type and (
            device.index is None or device.index == current.index
        )

    # ==================================================================== #
    # set operations and selection                                         #
    # ==================================================================== #

    def _check_same_names(self, other: "Labels", operation: str) -> None:
        if not isinstance(other, Labels):
            raise TypeError(f"`other` must be metatensor Labels, not {type(other)}")
        if self._names != other._names:
            raise invalid_parameter(
                f"can not take the {operation} of these Labels, they have "
                "different names"
            )

    def _position_of_other(self, other: "Labels") -> np.ndarray:
        return self._row_index().lookup(other._numpy_values())

    def _in_other(self, other: "Labels") -> np.ndarray:
        """Boolean mask of the entries of ``self`` which are also in ``other``."""
        if other._index is not None and self._index is None:
            # use the index we already have
            return other._position_of_other(self) >= 0
        position = self._position_of_other(other)
        mask = np.zeros(len(self), dtype=np.bool_)
        mask[position[position >= 0]] = True
        return mask

    def union(self, other: "Labels") -> "Labels":
        """Union of these Labels with ``other``: all entries of ``self``, then the
        entries of ``other`` not already in ``self``.

        :param other: Labels with the same names
        """
        return self.union_and_mapping(other)[0]

    def union_and_mapping(
        self, other: "Labels"
    ) -> Tuple["Labels", np.ndarray, np.ndarray]:
        """Union of these Labels with ``other``, and the position of the entries
        of ``self`` and ``other`` in the union.

        :param other: Labels with the same names
        :return: ``(union, mapping_self, mapping_other)``, with int64 mappings
        """
        self._check_same_names(other, "union")
        count = len(self)
        position = self._position_of_other(other)
        new = position < 0
        other_values = other._numpy_values()

        if new.any():
            values = np.concatenate([self._numpy_values(), other_values[new]])
            union = self._with_numpy_values(self._names, values)
        else:
            union = self.__copy__()

        mapping_self = np.arange(count, dtype=np.int64)
        mapping_other = position
        mapping_other[new] = count + np.arange(int(new.sum()), dtype=np.int64)
        return union, mapping_self, mapping_other

    def intersection(self, other: "Labels") -> "Labels":
        """Intersection of these Labels with ``other``, in the order of the input
        with fewer entries (``self`` in case of a tie).

        :param other: Labels with the same names
        """
        self._check_same_names(other, "intersection")
        if len(self) <= len(other):
            values = self._numpy_values()[self._in_other(other)]
        else:
            values = other._numpy_values()[other._in_other(self)]
        return self._with_numpy_values(self._names, values)

    def intersection_and_mapping(
        self, other: "Labels"
    ) -> Tuple["Labels", np.ndarray, np.ndarray]:
        """Intersection of these Labels with ``other``, and the position of the
        entries of ``self`` and ``other`` in the intersection (``-1`` for entries
        which are not part of it).

        :param other: Labels with the same names
        :return: ``(intersection, mapping_self, mapping_other)``, with int64
            mappings
        """
        self._check_same_names(other, "intersection")
        # position of the entries of other in self, and of self in other
        other_in_self = self._position_of_other(other)
        found = other_in_self >= 0
        self_in_other = np.full(len(self), -1, dtype=np.int64)
        self_in_other[other_in_self[found]] = np.flatnonzero(found)

        if len(self) <= len(other):
            keep = self_in_other >= 0
            values = self._numpy_values()[keep]
            mapping_self = _compact_mapping(keep)
            mapping_other = _compose(mapping_self, other_in_self)
        else:
            keep = found
            values = other._numpy_values()[keep]
            mapping_other = _compact_mapping(keep)
            mapping_self = _compose(mapping_other, self_in_other)

        result = self._with_numpy_values(self._names, values)
        return result, mapping_self, mapping_other

    def difference(self, other: "Labels") -> "Labels":
        """Entries of these Labels which are not in ``other``, in order.

        :param other: Labels with the same names
        """
        self._check_same_names(other, "difference")
        values = self._numpy_values()[~self._in_other(other)]
        return self._with_numpy_values(self._names, values)

    def difference_and_mapping(self, other: "Labels") -> Tuple["Labels", np.ndarray]:
        """Entries of these Labels which are not in ``other``, and the position of
        the entries of ``self`` in the difference (``-1`` for removed entries).

        :param other: Labels with the same names
        :return: ``(difference, mapping)``, with an int64 mapping
        """
        self._check_same_names(other, "difference")
        other_in_self = self._position_of_other(other)
        keep = np.ones(len(self), dtype=np.bool_)
        keep[other_in_self[other_in_self >= 0]] = False
        values = self._numpy_values()[keep]
        result = self._with_numpy_values(self._names, values)
        return result, _compact_mapping(keep)

    def select(self, selection: "Labels") -> np.ndarray:
        """Find the entries of these Labels matching ``selection``.

        If ``selection`` has exactly the same names as these Labels, the result
        contains the position of each of its entries (in the order of
        ``selection``, skipping entries which are not there). Otherwise, the
        names of ``selection`` must be a subset of these names, and the result
        contains (in order) the positions of all entries which match one of the
        ``selection`` entries on these dimensions.

        :param selection: Labels describing the entries to select
        :return: 1-D ``np.uint64`` array of positions
        """
        if not isinstance(selection, Labels):
            raise TypeError(
                f"`selection` must be metatensor Labels, not {type(selection)}"
            )

        selection_names = selection._names
        if len(selection_names) == 0:
            return np.arange(len(self), dtype=np.uint64)

        if selection_names == self._names:
            position = self._position_of_other(selection)
            return position[position >= 0].astype(np.uint64)

        columns = []
        for name in selection_names:
            if name not in self._names:
                raise invalid_parameter(
                    f"'{name}' in selection is not part of these Labels"
                )
            columns.append(self._names.index(name))

        values = self._numpy_values()
        selection_values = selection._numpy_values()
        if selection_values.shape[0] == 1:
            # common case (e.g. `TensorMap.block(key=3)`): compare directly
            row = selection_values[0].tolist()
            found = values[:, columns[0]] == row[0]
            for j, value in zip(columns[1:], row[1:]):
                found &= values[:, j] == value
        else:
            found = selection._row_index().lookup(values[:, columns]) >= 0
        return np.flatnonzero(found).astype(np.uint64)

    # ==================================================================== #
    # printing                                                             #
    # ==================================================================== #

    def _printable_values(self) -> Optional[np.ndarray]:
        if _array.is_torch(self._values) and self._values.device.type == "meta":
            return None
        return self._numpy_values()

    def print(self, max_entries: int, indent: int = 0) -> str:
        """Print these Labels to a string.

        :param max_entries: how many entries to print; a negative value prints
            all of them
        :param indent: number of spaces at the start of each entry line (the
            first line, with the names, is not indented)
        """
        return format_labels(self._names, self._printable_values(), max_entries, indent)

    def _repr_html_(self) -> str:
        return labels_html(self._names, self._printable_values())


def _compact_mapping(keep: np.ndarray) -> np.ndarray:
    """For a boolean mask, the position of each kept entry among the kept entries,
    and -1 for the others."""
    mapping = np.cumsum(keep, dtype=np.int64)
    mapping -= 1
    mapping[~keep] = -1
    return mapping


def _compose(mapping: np.ndarray, position: np.ndarray) -> np.ndarray:
    """``mapping[position]``, with -1 where ``position`` is -1."""
    result = np.full(len(position), -1, dtype=np.int64)
    valid = position >= 0
    result[valid] = mapping[position[valid]]
    return result
