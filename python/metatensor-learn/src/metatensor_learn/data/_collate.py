"""Collate functions, turning a list of samples into a batch.

Choices made where the reference implementation (metatensor-learn 0.6) is
surprising:

- :py:func:`group_and_join` joins each field with the operations matching the
  type of its values (specification S7): core :py:class:`metatensor.TensorMap`
  with :py:func:`metatensor.join`, and ``metatensor.torch.TensorMap`` with
  ``metatensor.torch.operations.join`` (the reference used the core ``join``
  for both). The same function is used whichever flavour of
  ``metatensor-learn`` (core or torch) is imported;
- names in ``fields_to_join`` that are not fields of the batch raise a
  :py:class:`ValueError` (the reference silently ignored them, hiding typos);
- ``join_kwargs`` may override the joining ``axis`` (``"samples"`` by default).
"""

import importlib
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

from ._namedtuple import namedtuple


def _is_core_tensormap(value: Any) -> bool:
    metatensor = sys.modules.get("metatensor")
    if metatensor is None:
        return False
    return isinstance(value, metatensor.TensorMap)


def _is_torch_tensormap(value: Any) -> bool:
    """Is ``value`` a ``metatensor.torch.TensorMap``: an instance of the class,
    or a TorchScript object of this class (returned by TorchScript code)?"""
    metatensor_torch = sys.modules.get("metatensor_torch")
    if metatensor_torch is not None:
        if isinstance(value, getattr(metatensor_torch, "TensorMap", ())):
            return True

    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.ScriptObject):
        try:
            name = value._type().qualified_name()
        except Exception:  # pragma: no cover - not a class instance
            return False
        return name.startswith("__torch__.metatensor") and name.endswith(".TensorMap")
    return False


def _is_torch_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _core_join() -> Callable:
    return importlib.import_module("metatensor_operations").join


def _torch_join() -> Callable:
    return importlib.import_module("metatensor_torch.operations").join


def _join_field(values: Sequence[Any], join_kwargs: Dict[str, Any]) -> Any:
    """Join the ``values`` of one field if they are TensorMaps or tensors (the
    first value decides), or return them as a tuple."""
    first = values[0]
    if _is_core_tensormap(first):
        return _core_join()(list(values), **join_kwargs)
    elif _is_torch_tensormap(first):
        return _torch_join()(list(values), **join_kwargs)
    elif _is_torch_tensor(first):
        torch = sys.modules["torch"]
        return torch.vstack(list(values))
    return tuple(values)


def _check_batch(batch: Sequence[Any]) -> Sequence[str]:
    if not isinstance(batch, (list, tuple)):
        raise TypeError(f"`batch` must be a list of samples, not {type(batch)}")
    if len(batch) == 0:
        raise ValueError("`batch` must contain at least one sample")
    fields = getattr(batch[0], "_fields", None)
    if fields is None:
        raise TypeError(
            "the samples in `batch` must be named tuples (as returned by "
            f"`Dataset` and `IndexedDataset`), got {type(batch[0])}"
        )
    for sample in batch:
        if getattr(sample, "_fields", None) != fields:
            raise ValueError(
                "all the samples in `batch` must have the same fields, got "
                f"{list(fields)} and {list(getattr(sample, '_fields', ()))}"
            )
    return fields


def group(batch: List[Any]) -> Any:
    """Collate a list of samples into a batch by grouping the values of each
    field into a tuple.

    >>> from metatensor.learn import Dataset
    >>> from metatensor.learn.data import group
    >>> dataset = Dataset(x=[1, 2, 3], y=["a", "b", "c"])
    >>> group([dataset[0], dataset[2]])
    Batch(x=(1, 3), y=('a', 'c'))

    :param batch: a list of samples (named tuples) with the same fields, as
        returned by :py:class:`Dataset` and :py:class:`IndexedDataset`
    :return: a named tuple ``Batch`` with the same fields, each being a tuple of
        the values of all samples
    """
    fields = _check_batch(batch)
    batch_class = namedtuple("Batch", fields, module=__name__)
    return batch_class._make(tuple(values) for values in zip(*batch))


def group_and_join(
    batch: List[Any],
    fields_to_join: Optional[List[str]] = None,
    join_kwargs: Optional[dict] = None,
) -> Any:
    """Collate a list of samples into a batch, joining the TensorMaps and the
    torch tensors of each field.

    For each field (in ``fields_to_join``), the type of the first value decides:

    - :py:class:`metatensor.TensorMap`: the values are joined with
      :py:func:`metatensor.join` along the samples;
    - ``metatensor.torch.TensorMap``: joined with ``metatensor.torch``'s
      ``join`` along the samples;
    - :py:class:`torch.Tensor`: stacked with :py:func:`torch.vstack`, so
      ``(n,)``-shaped tensors give a ``(batch_size, n)`` tensor, scalars a
      ``(batch_size, 1)`` tensor and ``(n, m)`` tensors a
      ``(batch_size * n, m)`` tensor;
    - anything else: the values are grouped in a tuple, as by :py:func:`group`.

    The ``sample_id`` field of :py:class:`IndexedDataset` is always grouped in a
    tuple.

    The TensorMaps are joined with ``different_keys="error"`` unless
    ``join_kwargs`` says otherwise: all samples must have the same keys (use
    ``join_kwargs={"different_keys": "union"}`` to join samples with different
    keys), and the joined samples must be unique, so per-sample TensorMaps
    usually have a sample dimension identifying the sample (such as
    ``system``); ``join_kwargs={"add_dimension": "batch"}`` adds one
    otherwise.

    Joining B TensorMaps is one concatenation per block, so the cost grows
    linearly with the batch size.

    :param batch: a list of samples (named tuples) with the same fields
    :param fields_to_join: names of the fields to join, defaults to all of them.
        The other fields are grouped in tuples. Unknown names raise a
        :py:class:`ValueError`.
    :param join_kwargs: keyword arguments given to ``join`` (``axis``,
        ``different_keys``, ``add_dimension``); ``axis`` defaults to
        ``"samples"``
    :return: a named tuple ``Batch`` with the same fields as the samples
    """
    fields = _check_batch(batch)
    if fields_to_join is None:
        to_join = set(fields)
    else:
        if isinstance(fields_to_join, str):
            raise TypeError("`fields_to_join` must be a list of field names")
        to_join = set(fields_to_join)
        unknown = sorted(name for name in to_join if name not in fields)
        if unknown:
            raise ValueError(
                f"`fields_to_join` contains names that are not fields of the batch: "
                f"{unknown}, the fields are {list(fields)}"
            )
    to_join.discard("sample_id")

    kwargs: Dict[str, Any] = {"axis": "samples"}
    if join_kwargs is not None:
        if not isinstance(join_kwargs, dict):
            raise TypeError(
                f"`join_kwargs` must be a dictionary, not {type(join_kwargs)}"
            )
        kwargs.update(join_kwargs)

    joined = []
    for name, values in zip(fields, zip(*batch)):
        if name in to_join:
            joined.append(_join_field(values, kwargs))
        else:
            joined.append(tuple(values))

    batch_class = namedtuple("Batch", fields, module=__name__)
    return batch_class._make(joined)
