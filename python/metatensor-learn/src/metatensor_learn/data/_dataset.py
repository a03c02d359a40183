"""Datasets of named fields, usable with :py:class:`torch.utils.data.DataLoader`.

Choices made where the reference implementation (metatensor-learn 0.6) is
surprising (specification S6):

- **negative indices** count from the end, as for Python lists
  (``dataset[-1]`` is the last sample). An index out of range raises an error
  that is both an :py:class:`IndexError` (what sequences raise) and a
  :py:class:`ValueError` (what the reference raised);
- a field can be given as a **list or a tuple** (the reference rejected
  tuples); the ``size`` argument must be a non-negative integer;
- the check that the elements of a field have the same type is **symmetric**:
  an element may be an instance of the type of the first element, or the
  reverse (the reference accepted ``[True, 1]`` but not ``[1, True]``);
- indices must be integers (``operator.index``: Python and numpy integers,
  integer 0-d torch tensors); the reference silently truncated floats.

As in the reference, callable fields of :py:class:`Dataset` receive the
position of the sample, and the ones of :py:class:`IndexedDataset` receive the
sample ID: the ID is what a loading function for an indexed dataset needs.
"""

import operator
from typing import Any, Callable, Dict, List, Optional, Union

from ._namedtuple import namedtuple


class _IndexOutOfRange(IndexError, ValueError):
    """Index out of range for a dataset: an :py:class:`IndexError` like for any
    Python sequence, and a :py:class:`ValueError` for compatibility with the
    reference implementation."""


class _Fields:
    """Validated data fields: names, lists or callables, and the size."""

    def __init__(
        self, data: Dict[str, Any], size: Optional[int], size_name: str = "size"
    ):
        if not isinstance(data, dict):
            raise TypeError(f"`data` must be a dictionary, not {type(data)}")
        if size is not None:
            if isinstance(size, bool):
                raise TypeError("`size` must be an integer, not <class 'bool'>")
            try:
                size = operator.index(size)
            except TypeError:
                raise TypeError(
                    f"`size` must be an integer, not {type(size)}"
                ) from None
            if size < 0:
                raise ValueError(f"`size` must be positive or zero, got {size}")

        self.names: List[str] = []
        self.values: List[Union[list, tuple, Callable]] = []
        self.is_callable: List[bool] = []
        lengths: List[int] = []
        for name, field in data.items():
            if not isinstance(name, str):
                raise TypeError(f"data field names must be strings, not {type(name)}")
            if name == "sample_id":
                raise ValueError(
                    "'sample_id' can not be used as a data field name in `Dataset`, "
                    "use `IndexedDataset` to give an ID to each sample"
                )
            if isinstance(field, (list, tuple)):
                _check_same_type(name, field)
                lengths.append(len(field))
                self.is_callable.append(False)
            elif callable(field):
                self.is_callable.append(True)
            else:
                raise TypeError(
                    f"Data field must be a List or Callable, not {type(field)} "
                    f"(for field '{name}')"
                )
            self.names.append(name)
            self.values.append(field)

        if len(set(lengths)) > 1:
            raise ValueError(
                f"Number of samples inconsistent between data fields: {lengths}"
            )

        if size is None:
            if len(lengths) == 0:
                raise ValueError(
                    "If passing all data fields as callables, argument 'size' must "
                    "also be provided."
                )
            size = lengths[0]
        elif len(lengths) != 0 and lengths[0] != size:
            if size_name == "size":
                size_name = "argument 'size'"
            raise ValueError(
                f"Number of samples inconsistent between {size_name} "
                f"({size}) and data fields: ({lengths[0]})"
            )
        self.size: int = size


def _check_same_type(name: str, field: Union[list, tuple]) -> None:
    """Check that all the elements of ``field`` have the type of the first one
    (or a parent/child type of it)."""
    if len(field) == 0:
        return
    first = type(field[0])
    for kind in set(map(type, field)):
        if not (issubclass(kind, first) or issubclass(first, kind)):
            raise TypeError(
                f"Data field {name} must be a list of the same type, found "
                f"{first} and {kind}"
            )


def _normalize_index(idx: Any, size: int) -> int:
    try:
        position = operator.index(idx)
    except TypeError:
        raise TypeError(
            f"dataset indices must be integers, not {type(idx)}; use "
            "`IndexedDataset.get_sample` to get samples by ID"
        ) from None
    given = position
    if position < 0:
        position += size
    if position < 0 or position >= size:
        raise _IndexOutOfRange(f"Index {given} not in dataset")
    return position


class _BaseDataset:
    """Shared implementation of :py:class:`Dataset` and
    :py:class:`IndexedDataset`."""

    def __init__(self, fields: _Fields, sample_ids: Optional[list]):
        self._field_names = fields.names
        self._data = fields.values
        self._is_callable = fields.is_callable
        self._size = fields.size
        self._sample_ids = sample_ids

        self._sample_class = self._create_sample_class()

    def _create_sample_class(self) -> type:
        names = list(self._field_names)
        if self._sample_ids is not None:
            names = ["sample_id"] + names
        return namedtuple("Sample", names, module=type(self).__module__)

    def __getstate__(self):
        # the class of the samples is created at runtime and can not be pickled
        # by reference: create it again when unpickling (for example in the
        # worker processes of a DataLoader)
        state = dict(self.__dict__)
        del state["_sample_class"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._sample_class = self._create_sample_class()

    def _load(self, position: int, argument: Any):
        values = []
        if self._sample_ids is not None:
            values.append(self._sample_ids[position])
        for name, field, is_callable in zip(
            self._field_names, self._data, self._is_callable
        ):
            if is_callable:
                try:
                    values.append(field(argument))
                except Exception as error:
                    if self._sample_ids is None:
                        where = f"at sample index {argument!r}"
                    else:
                        where = f"for sample ID {argument!r}"
                    raise ValueError(
                        f"Error loading data field '{name}' {where}"
                    ) from error
            else:
                values.append(field[position])
        return self._sample_class._make(values)

    def __len__(self) -> int:
        return self._size

    def __iter__(self):
        for position in range(self._size):
            yield self[position]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self._size}, fields={self._field_names})"


class Dataset(_BaseDataset):
    """A dataset of named fields, each sample being a named tuple with one entry
    per field (in the order the fields were given).

    Fields are given as keyword arguments. Each one is either a list (or tuple)
    with one element per sample, all of the same type, or a callable taking the
    index of the sample and returning its data, called every time a sample is
    accessed (to load data lazily, for example from files).

    >>> from metatensor.learn import Dataset
    >>> dataset = Dataset(x=[1.0, 2.0, 3.0], y=lambda i: 10 * i)
    >>> len(dataset)
    3
    >>> dataset[1]
    Sample(x=2.0, y=10)
    >>> dataset[-1].y
    20

    Negative indices count from the end; an index out of range raises an error
    that is both an :py:class:`IndexError` and a :py:class:`ValueError`.

    :param size: the number of samples; needed when all fields are callables,
        checked against the length of the lists otherwise
    :param kwargs: the data fields. ``sample_id`` is reserved for
        :py:class:`IndexedDataset`; field names that are not identifiers can be
        used through :py:meth:`from_dict`.
    """

    def __init__(self, size: Optional[int] = None, **kwargs):
        super().__init__(_Fields(kwargs, size), sample_ids=None)

    @staticmethod
    def from_dict(
        data: Dict[str, Union[List, Callable]], size: Optional[int] = None
    ) -> "Dataset":
        """Create a dataset from a dictionary of fields, whose names can be any
        string (``"with space"``, ``"class"``, ...). Such fields are accessed
        with ``sample["with space"]`` (or by position) instead of attributes.

        :param data: the data fields, as for the constructor
        :param size: the number of samples, as for the constructor
        :return: the new dataset
        """
        dataset = Dataset.__new__(Dataset)
        _BaseDataset.__init__(dataset, _Fields(data, size), sample_ids=None)
        return dataset

    def __getitem__(self, idx: int):
        """Get the sample at position ``idx`` (callable fields are called with
        the non-negative position).

        :param idx: the position of the sample, negative values count from the
            end
        :return: a named tuple with one entry per field
        """
        position = _normalize_index(idx, self._size)
        return self._load(position, position)


class IndexedDataset(_BaseDataset):
    """A dataset where each sample has a unique ID, stored in the ``sample_id``
    field (the first entry of each sample).

    Like :py:class:`Dataset`, fields are lists or callables, but **callables
    receive the sample ID** (not the position). ``dataset[i]`` still gets the
    sample at position ``i``; :py:meth:`get_sample` gets a sample by ID.

    >>> from metatensor.learn import IndexedDataset
    >>> dataset = IndexedDataset(sample_id=["a", "b"], x=lambda id: id * 2)
    >>> dataset[0]
    Sample(sample_id='a', x='aa')
    >>> dataset.get_sample("b").x
    'bb'

    :param sample_id: the IDs of the samples: unique and hashable, and they may
        have different types
    :param kwargs: the data fields
    """

    def __init__(self, sample_id: List, **kwargs):
        if "size" in kwargs:
            raise ValueError(
                "argument 'size' is not used by `IndexedDataset`, the size is the "
                "number of sample IDs"
            )
        fields, ids = _indexed_fields(kwargs, sample_id)
        super().__init__(fields, sample_ids=ids)
        self._positions = _positions(ids)

    @staticmethod
    def from_dict(data: Dict[str, Any], sample_id: List) -> "IndexedDataset":
        """Create an indexed dataset from a dictionary of fields, whose names can
        be any string (see :py:meth:`Dataset.from_dict`).

        :param data: the data fields
        :param sample_id: the IDs of the samples
        :return: the new dataset
        """
        fields, ids = _indexed_fields(data, sample_id)
        dataset = IndexedDataset.__new__(IndexedDataset)
        _BaseDataset.__init__(dataset, fields, sample_ids=ids)
        dataset._positions = _positions(ids)
        return dataset

    def __getitem__(self, idx: int):
        """Get the sample at position ``idx`` (callable fields are called with
        the ID of this sample).

        :param idx: the position of the sample, negative values count from the
            end
        :return: a named tuple with the sample ID and one entry per field
        """
        position = _normalize_index(idx, self._size)
        return self._load(position, self._sample_ids[position])

    def get_sample(self, sample_id):
        """Get a sample from its ID (a dictionary lookup).

        :param sample_id: the ID of the sample
        :return: a named tuple with the sample ID and one entry per field
        """
        try:
            position = self._positions.get(sample_id)
        except TypeError:  # unhashable
            position = None
        if position is None:
            raise ValueError(f"Sample ID {sample_id!r} not in dataset")
        return self._load(position, self._sample_ids[position])


def _indexed_fields(data: Dict[str, Any], sample_id: List):
    if not isinstance(sample_id, (list, tuple)):
        raise TypeError(f"`sample_id` must be a list, not {type(sample_id)}")
    if isinstance(data, dict) and "sample_id" in data:
        raise ValueError("'sample_id' is given both as argument and as data field")
    ids = list(sample_id)
    return _Fields(data, len(ids), "the sample IDs"), ids


def _positions(ids: list) -> Dict[Any, int]:
    try:
        positions = {value: i for i, value in enumerate(ids)}
    except TypeError as error:
        raise TypeError(f"Sample IDs must be hashable: {error}") from None
    if len(positions) != len(ids):
        raise ValueError("Sample IDs must be unique, found some duplicate")
    return positions
