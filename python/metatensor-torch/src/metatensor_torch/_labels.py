"""TorchScript-compatible :py:class:`Labels` and :py:class:`LabelsEntry`.

The classes in this module are compiled with ``torch.jit.script`` when
:py:mod:`metatensor_torch` is imported. Their qualified names
(``__torch__.metatensor_torch._labels.Labels`` and
``__torch__.metatensor_torch._labels.LabelsEntry``) and their attributes
(``_names: List[str]`` and ``_values: Tensor``) are written in TorchScript model
files, and are therefore part of the model-file ABI: they must not change.

All helper functions used from the classes are free functions that do not
construct the classes (TorchScript can not compile recursive calls).
"""

import warnings
from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

from . import _eager


def _valid_name_characters() -> str:
    return "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789"


def _check_names(names: List[str], context: str):
    """Check that all ``names`` are valid and distinct identifiers."""
    characters = _valid_name_characters()
    for i, name in enumerate(names):
        valid = len(name) != 0 and not name[0].isdigit()
        if valid:
            for c in name:
                if c not in characters:
                    valid = False
                    break
        if not valid:
            raise RuntimeError(
                "invalid parameter: '" + name + "' is not a valid label name"
            )
        for j in range(i):
            if names[j] == name:
                raise RuntimeError(
                    "invalid parameter: the dimension name '"
                    + name
                    + "' is specified more than once in "
                    + context
                )


def _spaces(count: int) -> str:
    return "".join([" " for _ in range(count)])


def _format_row(row: List[int]) -> str:
    return "[" + ", ".join([str(v) for v in row]) + "]"


def _first_occurrences(values: Tensor) -> Tuple[Tensor, Tensor]:
    """Find the distinct rows of a 2-D tensor.

    :returns: ``(first, mapping)`` where ``first`` contains the index of the first
        occurrence of each distinct row (in order of first appearance), and
        ``mapping`` the position of each row of ``values`` in ``first``.
    """
    count = values.shape[0]
    device = values.device
    if count == 0:
        empty = torch.zeros(0, dtype=torch.int64, device=device)
        return empty, empty
    if values.shape[1] == 0:
        return torch.zeros(1, dtype=torch.int64, device=device), torch.zeros(
            count, dtype=torch.int64, device=device
        )
    if values.shape[1] == 1:
        _, inverse = torch.unique(values[:, 0], sorted=True, return_inverse=True)
    else:
        _, inverse = torch.unique(values, dim=0, sorted=True, return_inverse=True)
    n_groups = int(inverse.max()) + 1
    positions = torch.arange(count, dtype=torch.int64, device=device)
    first = torch.full((n_groups,), count, dtype=torch.int64, device=device)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    order = torch.argsort(first)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n_groups, dtype=torch.int64, device=device)
    return first[order], rank[inverse]


def _check_unique(values: Tensor):
    """Check that all rows of ``values`` are distinct, using torch operations."""
    count = values.shape[0]
    if count < 2:
        return
    first, mapping = _first_occurrences(values)
    if first.shape[0] != count:
        positions = torch.arange(count, dtype=torch.int64, device=values.device)
        duplicated = torch.nonzero(first[mapping] != positions)
        row: List[int] = values[int(duplicated[0, 0])].to(torch.int64).cpu().tolist()
        raise RuntimeError(
            "invalid parameter: can not have the same label entry multiple times: "
            + _format_row(row)
            + " is already present"
        )


def _should_check(values: Tensor) -> bool:
    if values.device.type == "meta":
        return False
    if torch.jit.is_scripting():
        return True
    else:
        return _eager.data_checks_enabled(values)


def _normalize_values(values: Tensor, n_names: int) -> Tensor:
    if values.is_floating_point() or values.is_complex():
        raise ValueError("Labels values must be a Tensor of 32-bit integers")
    if values.dim() != 2:
        raise ValueError("Labels values must be a 2D Tensor")
    if values.requires_grad:
        raise ValueError("Labels values can not require gradients")
    if values.shape[1] != n_names:
        raise ValueError(
            "invalid Labels: the names must have an entry for each column of the array"
        )
    return values.to(torch.int32)


def _name_position(names: List[str], name: str) -> int:
    for i, n in enumerate(names):
        if n == name:
            return i
    return -1


def _center(cell: str, width: int, last: bool) -> str:
    padding = width - len(cell)
    before = padding // 2
    if last:
        return _spaces(before) + cell
    return _spaces(before) + cell + _spaces(padding - before)


def _format_line(cells: List[str], widths: List[int]) -> str:
    parts: List[str] = []
    for j in range(len(cells)):
        parts.append(_center(cells[j], widths[j], j == len(cells) - 1))
    return "".join(parts)


def _print_labels(names: List[str], values: Tensor, max_entries: int, indent: int):
    """Format Labels as a table (implementation of ``Labels.print``)."""
    if values.device.type == "meta":
        widths = [len(name) + 2 for name in names]
        return (
            _format_line(names, widths)
            + "\n"
            + _spaces(indent)
            + "<values on the 'meta' device>"
        )

    count = values.shape[0]
    rows = values.to(torch.int64).cpu()
    before = rows
    after = rows[:0]
    truncated = False
    if max_entries >= 0 and max_entries < count:
        max_entries = max(max_entries, 2)
        if max_entries < count:
            n_after = max_entries // 2
            before = rows[: max_entries - n_after]
            after = rows[count - n_after :]
            truncated = True

    before_list: List[List[int]] = before.tolist()
    after_list: List[List[int]] = after.tolist()
    widths: List[int] = []
    for j, name in enumerate(names):
        width = len(name)
        for row in before_list:
            width = max(width, len(str(row[j])))
        for row in after_list:
            width = max(width, len(str(row[j])))
        widths.append(width + 2)

    prefix = _spaces(indent)
    lines = [_format_line(names, widths)]
    for row in before_list:
        lines.append(prefix + _format_line([str(v) for v in row], widths))
    if truncated:
        half = sum(widths) // 2
        if half > 3:
            half -= 3
        lines.append(prefix + _spaces(half + 1) + "...")
    for row in after_list:
        lines.append(prefix + _format_line([str(v) for v in row], widths))
    return "\n".join(lines)


def _check_same_names(first: List[str], second: List[str], operation: str):
    if first != second:
        raise RuntimeError(
            "invalid parameter: can not take the "
            + operation
            + " of these Labels, they have different names: ["
            + ", ".join(first)
            + "] vs ["
            + ", ".join(second)
            + "]"
        )


def _group_ids(first: Tensor, second: Tensor) -> Tuple[Tensor, Tensor]:
    """Give the same integer id to equal rows of ``first`` and ``second``."""
    n_first = first.shape[0]
    _, mapping = _first_occurrences(torch.cat([first, second.to(first.device)]))
    return mapping[:n_first], mapping[n_first:]


def _not_in_torchscript(name: str) -> str:
    return name + " is not supported in TorchScript, call it from Python instead"


class LabelsEntry:
    """A single entry (row) of :py:class:`Labels`, with the names of the
    dimensions.

    :param names: names of the dimensions
    :param values: 1-D int32 tensor with one value per dimension
    """

    def __init__(self, names: List[str], values: Tensor):
        self._names = names
        self._values = values

    @property
    def names(self) -> List[str]:
        """names of the dimensions of this entry"""
        return self._names

    @property
    def values(self) -> Tensor:
        """values of this entry, as a 1-D int32 tensor"""
        return self._values

    @property
    def device(self) -> torch.device:
        """device of the values"""
        return self._values.device

    def __len__(self) -> int:
        return len(self._names)

    def __getitem__(self, dimension: Union[int, str]) -> int:
        if torch.jit.is_scripting():
            if isinstance(dimension, int):
                return int(self._values[dimension])
            else:
                return int(self._values[self._position(dimension)])
        else:
            if isinstance(dimension, str):
                return int(self._values[self._position(dimension)])
            elif isinstance(dimension, int) and not isinstance(dimension, bool):
                return int(self._values[dimension])
            else:
                raise TypeError(
                    "LabelsEntry can only be indexed by int or str, got '"
                    + type(dimension).__name__
                    + "' instead"
                )

    def _position(self, dimension: str) -> int:
        position = _name_position(self._names, dimension)
        if position < 0:
            raise ValueError(
                "'" + dimension + "' not found in the dimensions of this LabelsEntry"
            )
        return position

    def __eq__(self, other: "LabelsEntry") -> bool:
        return self._names == other._names and bool(
            torch.equal(self._values, other._values.to(self._values.device))
        )

    def __ne__(self, other: "LabelsEntry") -> bool:
        return not self.__eq__(other)

    def print(self) -> str:
        """Format this entry as ``(name=value, ...)``."""
        values: List[int] = self._values.to(torch.int64).cpu().tolist()
        cells = [self._names[i] + "=" + str(values[i]) for i in range(len(values))]
        return "(" + ", ".join(cells) + ")"

    def __str__(self) -> str:
        return "LabelsEntry" + self.print()

    def __repr__(self) -> str:
        return "LabelsEntry" + self.print()


class Labels:
    """A set of metadata entries, with one name per dimension and one row per
    entry. The values are an int32 tensor, that can live on any device.

    :param names: name of each dimension: a single string, or a list of strings
        (tuples are also accepted in Python)
    :param values: 2-D tensor of integers, with one column per name. It is
        converted to int32 and stays on its device.
    :param assume_unique: skip the check that all entries are unique
    """

    def __init__(
        self,
        names: Union[str, List[str]],
        values: Tensor,
        assume_unique: bool = False,
    ):
        if torch.jit.is_scripting():
            if isinstance(names, str):
                names_list = [names]
            else:
                names_list = names
        else:
            names_list = _eager.labels_names(names)
            if not isinstance(values, torch.Tensor):
                raise TypeError(
                    "Labels values must be a torch.Tensor, got "
                    + str(type(values))
                    + " instead"
                )

        if torch.jit.is_scripting():
            _check_names(names_list, "Labels")
        else:
            _eager.check_names(names_list, "Labels")
        values = _normalize_values(values, len(names_list))
        if not assume_unique and values.shape[0] > 1 and _should_check(values):
            if torch.jit.is_scripting():
                _check_unique(values)
            else:
                _eager.check_unique(values)

        self._names = names_list
        self._values = values

    # ------------------------------------------------------------------ #
    # static constructors                                                  #
    # ------------------------------------------------------------------ #

    @staticmethod
    def single() -> "Labels":
        """Labels with a single dimension named ``"_"`` and a single entry
        ``0``, used for blocks without samples/properties or maps with a single
        block."""
        return Labels(["_"], torch.zeros((1, 1), dtype=torch.int32), True)

    @staticmethod
    def empty(names: Union[str, List[str]]) -> "Labels":
        """Labels with the given names and no entries."""
        if torch.jit.is_scripting():
            if isinstance(names, str):
                names_list = [names]
            else:
                names_list = names
        else:
            names_list = _eager.labels_names(names)
        values = torch.zeros((0, len(names_list)), dtype=torch.int32)
        return Labels(names_list, values, True)

    @staticmethod
    def range(name: str, end: int) -> "Labels":
        """Labels with a single dimension ``name`` and values ``0 ... end - 1``."""
        values = torch.arange(end, dtype=torch.int32).reshape(-1, 1)
        return Labels([name], values, True)

    @staticmethod
    def load(path: str) -> "Labels":
        """Load Labels from a file (see :py:func:`metatensor.torch.load_labels`)."""
        if torch.jit.is_scripting():
            raise RuntimeError(_not_in_torchscript("Labels.load"))
        else:
            return _eager.load_labels(path)

    @staticmethod
    def load_buffer(buffer: Tensor) -> "Labels":
        """Load Labels from a buffer (see
        :py:func:`metatensor.torch.load_labels_buffer`)."""
        if torch.jit.is_scripting():
            raise RuntimeError(_not_in_torchscript("Labels.load_buffer"))
        else:
            return _eager.load_labels_buffer(buffer)

    def save(self, path: str):
        """Save these Labels to a file (see :py:func:`metatensor.torch.save`)."""
        if torch.jit.is_scripting():
            raise RuntimeError(_not_in_torchscript("Labels.save"))
        else:
            _eager.save(path, self)

    def save_buffer(self) -> Tensor:
        """Save these Labels to an in-memory buffer (1-D uint8 tensor)."""
        if torch.jit.is_scripting():
            raise RuntimeError(_not_in_torchscript("Labels.save_buffer"))
        else:
            return _eager.save_buffer(self)

    # ------------------------------------------------------------------ #
    # accessors                                                            #
    # ------------------------------------------------------------------ #

    @property
    def names(self) -> List[str]:
        """names of the dimensions of these Labels"""
        return self._names

    @property
    def values(self) -> Tensor:
        """values of these Labels as a 2-D int32 tensor (do not modify)"""
        return self._values

    @property
    def device(self) -> torch.device:
        """device where the values of these Labels live"""
        return self._values.device

    def __len__(self) -> int:
        return self._values.shape[0]

    def _name_index(self, name: str) -> int:
        position = _name_position(self._names, name)
        if position < 0:
            raise ValueError(
                "'" + name + "' not found in the dimensions of these Labels"
            )
        return position

    def entry(self, index: int) -> LabelsEntry:
        """Get the entry at the given ``index`` (negative indexes are allowed)."""
        count = self._values.shape[0]
        if index >= count or index < -count:
            raise IndexError(
                "out of range for tensor of size ["
                + str(count)
                + ", "
                + str(len(self._names))
                + "] at dimension 0"
            )
        return LabelsEntry(self._names, self._values[index])

    def column(self, dimension: str) -> Tensor:
        """Get the values of a single dimension, as a 1-D int32 tensor."""
        return self._values[:, self._name_index(dimension)]

    def __getitem__(self, index: Union[int, str]) -> Union[LabelsEntry, Tensor]:
        if torch.jit.is_scripting():
            if isinstance(index, int):
                return self.entry(index)
            else:
                return self.column(index)
        else:
            if isinstance(index, str):
                return self.column(index)
            elif isinstance(index, int) and not isinstance(index, bool):
                return self.entry(index)
            else:
                raise TypeError(
                    "Labels can only be indexed by int or str, got '"
                    + type(index).__name__
                    + "' instead"
                )

    def _entry_values(self, entry: Union[LabelsEntry, Tensor, List[int]]) -> Tensor:
        if isinstance(entry, LabelsEntry):
            values = entry.values
        elif isinstance(entry, Tensor):
            values = entry
        else:
            values = torch.tensor(entry, dtype=torch.int32, device=self._values.device)
        return values.to(device=self._values.device, dtype=torch.int32)

    def position(self, entry: Union[LabelsEntry, Tensor, List[int]]) -> Optional[int]:
        """Get the position of ``entry`` in these Labels, or ``None``.

        :param entry: a :py:class:`LabelsEntry`, a 1-D integer tensor or a list
            of integers (or a tuple of integers in Python)
        """
        if not torch.jit.is_scripting():
            entry = _eager.entry_like(entry)
        values = self._entry_values(entry)
        if values.dim() != 1 or values.shape[0] != self._values.shape[1]:
            return None
        if self._values.shape[0] == 0:
            return None
        found = torch.nonzero((self._values == values).all(dim=1))
        if found.shape[0] == 0:
            return None
        return int(found[0, 0])

    def __contains__(self, entry: Union[LabelsEntry, Tensor, List[int]]) -> bool:
        return self.position(entry) is not None

    def __eq__(self, other: "Labels") -> bool:
        if self._names != other._names:
            return False
        if self._values.shape != other._values.shape:
            return False
        if self._values.device.type == "meta" or other._values.device.type == "meta":
            return self._values.shape == other._values.shape
        return bool(torch.equal(self._values, other._values.to(self._values.device)))

    def __ne__(self, other: "Labels") -> bool:
        return not self.__eq__(other)

    # ------------------------------------------------------------------ #
    # set operations                                                       #
    # ------------------------------------------------------------------ #

    def union(self, other: "Labels") -> "Labels":
        """Union of these Labels with ``other``: entries of ``self`` first, then
        the entries of ``other`` that are not in ``self``."""
        result, _, _ = self.union_and_mapping(other)
        return result

    def union_and_mapping(self, other: "Labels") -> Tuple["Labels", Tensor, Tensor]:
        """Union of these Labels with ``other``, and the position of each entry of
        ``self`` and ``other`` in the union (int64 tensors)."""
        _check_same_names(self._names, other._names, "union")
        combined = torch.cat([self._values, other._values.to(self._values.device)])
        first, mapping = _first_occurrences(combined)
        n_self = self._values.shape[0]
        result = Labels(self._names, combined[first], True)
        return result, mapping[:n_self], mapping[n_self:]

    def intersection(self, other: "Labels") -> "Labels":
        """Entries of ``self`` that are also in ``other``, in the order of
        ``self``."""
        result, _, _ = self.intersection_and_mapping(other)
        return result

    def intersection_and_mapping(
        self, other: "Labels"
    ) -> Tuple["Labels", Tensor, Tensor]:
        """Intersection with ``other``, and the position of each entry of ``self``
        and ``other`` in the intersection (``-1`` for absent entries)."""
        _check_same_names(self._names, other._names, "intersection")
        ids_self, ids_other = _group_ids(self._values, other._values)
        device = self._values.device
        kept = torch.isin(ids_self, ids_other)
        n_kept = int(kept.sum())
        mapping_self = torch.where(
            kept,
            torch.cumsum(kept.to(torch.int64), 0) - 1,
            torch.full_like(ids_self, -1),
        )
        n_groups = self._values.shape[0] + other._values.shape[0]
        group_position = torch.full((n_groups,), -1, dtype=torch.int64, device=device)
        group_position[ids_self[kept]] = torch.arange(
            n_kept, dtype=torch.int64, device=device
        )
        mapping_other = group_position[ids_other]
        result = Labels(self._names, self._values[kept], True)
        return result, mapping_self, mapping_other

    def difference(self, other: "Labels") -> "Labels":
        """Entries of ``self`` that are not in ``other``, in the order of
        ``self``."""
        result, _ = self.difference_and_mapping(other)
        return result

    def difference_and_mapping(self, other: "Labels") -> Tuple["Labels", Tensor]:
        """Difference with ``other``, and the position of each entry of ``self``
        in the difference (``-1`` for removed entries)."""
        _check_same_names(self._names, other._names, "difference")
        ids_self, ids_other = _group_ids(self._values, other._values)
        kept = torch.logical_not(torch.isin(ids_self, ids_other))
        mapping = torch.where(
            kept,
            torch.cumsum(kept.to(torch.int64), 0) - 1,
            torch.full_like(ids_self, -1),
        )
        result = Labels(self._names, self._values[kept], True)
        return result, mapping

    def select(self, selection: "Labels") -> Tensor:
        """Indices (int64) of the entries matching any entry of ``selection``.

        ``selection`` dimensions must be a subset of the dimensions of these
        Labels. When both have exactly the same names, the result follows the
        order of ``selection`` (entries that do not exist are skipped); otherwise
        it follows the order of these Labels.
        """
        device = self._values.device
        columns: List[int] = []
        for name in selection._names:
            position = _name_position(self._names, name)
            if position < 0:
                raise RuntimeError(
                    "invalid parameter: '"
                    + name
                    + "' in selection is not part of these Labels"
                )
            columns.append(position)

        count = self._values.shape[0]
        if len(columns) == 0:
            return torch.arange(count, dtype=torch.int64, device=device)

        if selection._names == self._names:
            ids_self, ids_selection = _group_ids(self._values, selection._values)
            n_groups = count + selection._values.shape[0]
            group_position = torch.full(
                (n_groups,), -1, dtype=torch.int64, device=device
            )
            group_position[ids_self] = torch.arange(
                count, dtype=torch.int64, device=device
            )
            result = group_position[ids_selection]
            return result[result >= 0]

        index = torch.tensor(columns, dtype=torch.int64, device=device)
        projected = self._values.index_select(1, index)
        ids_self, ids_selection = _group_ids(projected, selection._values)
        mask = torch.isin(ids_self, ids_selection)
        return torch.nonzero(mask).reshape(-1)

    # ------------------------------------------------------------------ #
    # dimension manipulation                                               #
    # ------------------------------------------------------------------ #

    def _new_column(self, values: Tensor) -> Tensor:
        if values.dim() != 1:
            raise ValueError(
                "`values` must be a 1D tensor, got a tensor with "
                + str(values.dim())
                + " dimensions"
            )
        if values.shape[0] != self._values.shape[0]:
            raise ValueError(
                "the new `values` contains "
                + str(values.shape[0])
                + " entries, but the Labels contains "
                + str(self._values.shape[0])
            )
        return values.to(device=self._values.device, dtype=torch.int32)

    def insert(self, index: int, name: str, values: Tensor) -> "Labels":
        """Insert a new dimension ``name`` at position ``index``."""
        size = len(self._names)
        if index < 0 or index > size:
            raise IndexError(
                "can not insert at index "
                + str(index)
                + ": out of range for Labels with "
                + str(size)
                + " dimensions"
            )
        column = self._new_column(values).reshape(-1, 1)
        names = self._names[:index] + [name] + self._names[index:]
        new_values = torch.cat(
            [self._values[:, :index], column, self._values[:, index:]], dim=1
        )
        return Labels(names, new_values, True)

    def append(self, name: str, values: Tensor) -> "Labels":
        """Append a new dimension ``name`` at the end."""
        return self.insert(len(self._names), name, values)

    def permute(self, dimensions_indexes: List[int]) -> "Labels":
        """Reorder the dimensions: the new dimension ``i`` is the old dimension
        ``dimensions_indexes[i]`` (negative indexes are allowed)."""
        size = len(self._names)
        if len(dimensions_indexes) != size:
            raise ValueError(
                "the length of `dimensions_indexes` ("
                + str(len(dimensions_indexes))
                + ") does not match the number of dimensions in the Labels ("
                + str(size)
                + ")"
            )
        indexes: List[int] = []
        for index in dimensions_indexes:
            if index < -size or index >= size:
                raise IndexError(
                    "out of range index "
                    + str(index)
                    + " for Labels with "
                    + str(size)
                    + " dimensions"
                )
            if index < 0:
                index = index + size
            if index in indexes:
                raise ValueError(
                    "the dimension index " + str(index) + " is given more than once"
                )
            indexes.append(index)
        names = [self._names[i] for i in indexes]
        index_tensor = torch.tensor(indexes, dtype=torch.int64, device=self.device)
        return Labels(names, self._values.index_select(1, index_tensor), True)

    def remove(self, name: str) -> "Labels":
        """Remove the dimension ``name``; the remaining entries must be unique."""
        position = self._name_index(name)
        names = self._names[:position] + self._names[position + 1 :]
        values = torch.cat(
            [self._values[:, :position], self._values[:, position + 1 :]], dim=1
        )
        return Labels(names, values, False)

    def rename(self, old: str, new: str) -> "Labels":
        """Rename the dimension ``old`` to ``new``."""
        position = self._name_index(old)
        names = [n for n in self._names]
        names[position] = new
        return Labels(names, self._values, True)

    def to(
        self,
        device: Optional[Union[str, torch.device]] = None,
        non_blocking: bool = False,
    ) -> "Labels":
        """Move these Labels to ``device``, returning new Labels."""
        if device is None:
            return Labels(self._names, self._values, True)
        if isinstance(device, str):
            target = torch.device(device)
        else:
            target = device
        values = self._values.to(device=target, non_blocking=non_blocking)
        return Labels(self._names, values, True)

    # ------------------------------------------------------------------ #
    # printing                                                             #
    # ------------------------------------------------------------------ #

    def print(self, max_entries: int, indent: int = 0) -> str:
        """Format these Labels as a table, printing at most ``max_entries``
        entries (all of them if negative), with ``indent`` spaces before each
        entry line."""
        return _print_labels(self._names, self._values, max_entries, indent)

    def __str__(self) -> str:
        return "Labels\n   " + self.print(4, 3)

    def __repr__(self) -> str:
        return "Labels\n   " + self.print(-1, 3)


# compile the class now (see `_classes.py`); TorchScript resolves names
# through the frame calling `torch.jit.script`, so this must stay here
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.jit.script(LabelsEntry)
    torch.jit.script(Labels)
