"""Helpers to validate Labels names and values, and :py:class:`LabelsEntry`."""

import operator
from typing import Any, List, Sequence, Tuple, Union

import numpy as np

from . import _array
from ._errors import invalid_parameter


Array = Any

# names which already passed validation, to make the check cheaper
_VALID_NAMES: set = set()
_VALID_NAMES_MAX = 65536


def _check_names(names: Sequence[str]) -> None:
    seen = set()
    for name in names:
        if name not in _VALID_NAMES:
            if not (name.isascii() and name.isidentifier()):
                raise invalid_parameter(f"'{name}' is not a valid label name")
            if len(_VALID_NAMES) < _VALID_NAMES_MAX:
                _VALID_NAMES.add(name)
        if name in seen:
            raise invalid_parameter(
                f"label dimensions must be unique, got '{name}' multiple times"
            )
        seen.add(name)


def normalize_names(names: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """Validate Labels names (``str`` or iterable of ``str``; valid and unique
    identifiers) and return them as a tuple.

    :param names: a single name, ``""`` for no names, or an iterable of names
    """
    if isinstance(names, str):
        result: Tuple[str, ...] = (names,) if names != "" else ()
    else:
        try:
            result = tuple(names)
        except TypeError:
            raise TypeError(
                f"Labels names must be strings, got {type(names)} instead"
            ) from None
        for name in result:
            if not isinstance(name, str):
                raise TypeError(
                    f"Labels names must be strings, got {type(name)} instead"
                )
    _check_names(result)
    return result


def normalize_values(values: Array, n_names: int) -> Array:
    """Validate and convert Labels values to a 2-D int32 array (read-only numpy,
    or torch on the same device).

    :param values: numpy array or torch tensor
    :param n_names: number of dimensions of the Labels
    """
    if isinstance(values, np.ndarray):
        if values.ndim != 0 and values.shape[0] == 0:
            result = np.empty((0, n_names), dtype=np.int32)
        else:
            _check_shape(values.ndim, values.shape, n_names)
            try:
                result = values.astype(np.int32, casting="same_kind", copy=False)
            except TypeError:
                raise TypeError(
                    "Labels values must be convertible to integers"
                ) from None
        result.setflags(write=False)
        return result

    if _array.is_torch(values):
        torch = _array.torch_module()
        if values.ndim != 0 and values.shape[0] == 0:
            return torch.empty((0, n_names), dtype=torch.int32, device=values.device)

        _check_shape(values.ndim, values.shape, n_names)
        if values.requires_grad:
            raise ValueError("Labels values can not require gradients")
        if values.is_floating_point() or values.is_complex():
            raise TypeError("Labels values must be convertible to integers")
        return values.to(torch.int32)

    raise ValueError(
        f"`values` must be a numpy ndarray or a torch Tensor, got {type(values)}"
    )


def _check_shape(ndim: int, shape: Tuple[int, ...], n_names: int) -> None:
    if ndim != 2:
        raise ValueError("`values` must be a 2D array")
    if shape[1] != n_names:
        raise ValueError(
            "`names` must have an entry for each column of the `values` array"
        )


def format_row(row: np.ndarray) -> str:
    """Format an entry as ``[1, 2, 3]``, for error messages."""
    return "[" + ", ".join(str(v) for v in row.tolist()) + "]"


def values_device(values: Array):
    """``"cpu"`` for numpy, the ``torch.device`` of torch values."""
    if isinstance(values, np.ndarray):
        return "cpu"
    return values.device


def to_numpy_readonly(values: Array) -> np.ndarray:
    """CPU numpy int32 view (or copy) of torch ``values``."""
    if values.device.type == "meta":
        raise invalid_parameter(
            "can not access the entries of Labels on the 'meta' device, they "
            "do not contain any data"
        )
    tensor = values.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    array = tensor.numpy()
    array.setflags(write=False)
    return array


def entry_to_row(entry: Any) -> List[int]:
    """Convert a :py:class:`LabelsEntry`, 1-D array or sequence of integers to
    a list of python ints."""
    if isinstance(entry, LabelsEntry):
        return entry._values.tolist()

    if _array.array_kind(entry) is not None:
        if len(entry.shape) != 1:
            raise TypeError("Labels entries must be 1-dimensional")
        entry = entry.tolist()

    return [operator.index(v) for v in entry]


def dimension_index(names: Tuple[str, ...], name: str) -> int:
    """Index of ``name`` in ``names``, raising the ``ValueError`` of
    ``Labels.column`` if it is not there."""
    try:
        return names.index(name)
    except ValueError:
        raise ValueError(
            f"'{name}' not found in the dimensions of these Labels"
        ) from None


class LabelsEntry:
    """A single entry (i.e. row) in a set of :py:class:`Labels`.

    The main way to create a :py:class:`LabelsEntry` is to index a
    :py:class:`Labels` or to iterate over them.

    :param names: names of the dimensions of this entry
    :param values: 1-D int32 array (numpy or torch) with one value per name
    """

    def __init__(self, names: Sequence[str], values: Array):
        if isinstance(names, str):
            names = (names,) if names != "" else ()
        names = tuple(names)
        for name in names:
            if not isinstance(name, str):
                raise ValueError(
                    f"LabelsEntry names must be strings, got {type(name)} instead"
                )

        kind = _array.array_kind(values)
        if kind not in (_array.NUMPY, _array.TORCH):
            raise ValueError(
                f"LabelsEntry values must be a numpy ndarray or a torch Tensor, "
                f"got {type(values)}"
            )
        if len(values.shape) != 1 or values.shape[0] != len(names):
            raise ValueError(
                "LabelsEntry values must be a 1-D array with one entry per name, "
                f"got an array with shape {tuple(values.shape)} for {len(names)} names"
            )
        if _array.dtype_name(values) != "i32":
            raise ValueError(
                f"LabelsEntry values must have int32 dtype, got {values.dtype}"
            )

        self._names = names
        self._values = values

    @staticmethod
    def _new(names: Tuple[str, ...], values: Array) -> "LabelsEntry":
        entry = object.__new__(LabelsEntry)
        entry._names = names
        entry._values = values
        return entry

    @property
    def names(self) -> List[str]:
        """names of the dimensions for this entry"""
        return list(self._names)

    @property
    def values(self) -> Array:
        """values associated with each dimensions of this entry, as a 1-D array"""
        return self._values

    @property
    def device(self):
        """device of the values: ``"cpu"`` for numpy, a ``torch.device`` for torch"""
        return values_device(self._values)

    def __len__(self) -> int:
        return len(self._names)

    def __getitem__(self, dimension: Union[str, int]):
        if isinstance(dimension, str):
            return self._values[dimension_index(self._names, dimension)]
        elif isinstance(dimension, (int, np.integer)):
            return self._values[dimension]
        raise TypeError(
            f"can only index LabelsEntry with str or int, got {type(dimension)}"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelsEntry):
            raise TypeError(
                "can only compare LabelsEntry with another LabelsEntry, "
                f"got {type(other)}"
            )
        return (
            self._names == other._names
            and self._values.tolist() == other._values.tolist()
        )

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def print(self) -> str:
        """print this entry as a named tuple (i.e. ``(key_1=2, key_2=4)``)"""
        values = self._values.tolist()
        return "(" + ", ".join(f"{n}={v}" for n, v in zip(self._names, values)) + ")"

    def __repr__(self) -> str:
        return "LabelsEntry" + self.print()
