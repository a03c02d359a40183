"""Eager-only (never compiled by TorchScript) parts of the array dispatch: type
checks, and the numpy implementations used by :py:mod:`._dispatch` outside of
TorchScript.

Torch is never imported here: an object can only be a torch tensor if torch was
already imported by someone else, which :py:func:`metatensor._array.is_torch`
checks through ``sys.modules``.
"""

import builtins
import sys
import warnings
from typing import Any, Optional, Tuple

import numpy as np

from metatensor import _array

from . import _backend


class _LazyTorch:
    """Stand-in for the ``torch`` module with the core classes: torch is only
    looked up (never imported) when a torch tensor was given."""

    def __getattr__(self, name: str) -> Any:
        return getattr(sys.modules["torch"], name)


if hasattr(_backend, "torch"):
    torch = _backend.torch
else:
    torch = _LazyTorch()


_UNKNOWN_ARRAY = "unknown array type, only numpy arrays and torch tensors are supported"


def is_torch_array(array: Any) -> bool:
    """Is ``array`` a torch tensor? Never imports torch."""
    return _array.array_kind(array) == _array.TORCH


def is_numpy_array(array: Any) -> bool:
    """Is ``array`` a numpy array?"""
    return _array.array_kind(array) == _array.NUMPY


def is_numpy_scalar(value: Any) -> bool:
    """Is ``value`` a numpy integer or floating point scalar?"""
    return isinstance(value, (np.integer, np.floating))


def _check_numpy(array: Any) -> None:
    if not isinstance(array, np.ndarray):
        raise TypeError(_UNKNOWN_ARRAY)


def _check_same_kind(first: Any, second: Any) -> bool:
    """Check both arrays are of the same kind, returns ``True`` for torch."""
    first_torch = is_torch_array(first)
    second_torch = is_torch_array(second)
    if first_torch and second_torch:
        return True
    if first_torch or second_torch:
        if first_torch:
            _check_numpy(second)
        else:
            _check_numpy(first)
        raise TypeError("can not mix numpy arrays and torch tensors")
    _check_numpy(first)
    _check_numpy(second)
    return False


def _eager_int_array_like(values: Any, like: Any) -> Any:
    if not is_torch_array(like):
        _check_numpy(like)
        return np.asarray(values, dtype=np.int64)
    if isinstance(values, np.ndarray):
        values = np.asarray(values, dtype=np.int64)
        return torch.from_numpy(values).to(like.device)
    return None


def _eager_index_like(indices: Any, like: Any) -> Any:
    if is_torch_array(like):
        if is_torch_array(indices):
            return indices.to(dtype=torch.int64, device=like.device)
        indices = np.asarray(indices, dtype=np.int64)
        return torch.as_tensor(indices, device=like.device)
    _check_numpy(like)
    if is_torch_array(indices):
        indices = indices.detach().cpu().numpy()
    return np.asarray(indices, dtype=np.intp)


def _eager_find_positions(values: Any, reference: Any) -> Tuple[Any, Optional[int]]:
    values = to_numpy(values)
    reference = to_numpy(reference)
    order = np.argsort(reference, kind="stable")
    sorted_reference = reference[order]
    positions = np.searchsorted(sorted_reference, values)
    clipped = np.minimum(positions, builtins.max(len(reference) - 1, 0))
    if len(reference) == 0:
        found = np.zeros(len(values), dtype=np.bool_)
    else:
        found = sorted_reference[clipped] == values
    if not np.all(found):
        missing = int(values[np.flatnonzero(~found)[0]])
        return np.zeros(0, dtype=np.int64), missing
    return order[clipped].astype(np.int64), None


def _eager_mask(array: Any, axis: int, mask: Any) -> Any:
    if not is_torch_array(array):
        _check_numpy(array)
        return np.compress(np.asarray(mask, dtype=np.bool_), array, axis=axis)
    if not is_torch_array(mask):
        mask = torch.from_numpy(np.asarray(mask, dtype=np.bool_))
    indices = torch.nonzero(mask.to(array.device)).reshape(-1)
    return array.index_select(axis, indices)


def _numpy_index_add(output: Any, input: Any, index: Any) -> Any:
    _check_numpy(output)
    index = _eager_index_like(index, output)
    if input.ndim == 1:
        output += np.bincount(index, weights=input, minlength=output.shape[0])[
            : output.shape[0]
        ].astype(output.dtype, copy=False)
    else:
        np.add.at(output, index, input)
    return output


def to_numpy(array: Any) -> np.ndarray:
    """A CPU numpy version of the array (detached for torch). Not available in
    TorchScript."""
    if is_torch_array(array):
        return array.detach().cpu().numpy()
    _check_numpy(array)
    return array


def _numpy_requires_grad(array: Any, value: bool) -> Any:
    _check_numpy(array)
    if value:
        warnings.warn(
            "`requires_grad=True` does nothing for numpy arrays",
            UserWarning,
            stacklevel=5,
        )
    return array


def _eager_unique(array: Any, axis: Optional[int], return_inverse: bool) -> Any:
    if is_torch_array(array):
        if return_inverse:
            result, inverse = torch.unique(
                array, sorted=True, return_inverse=True, dim=axis
            )
            return result, inverse.reshape(-1)
        return torch.unique(array, sorted=True, dim=axis)
    _check_numpy(array)
    if return_inverse:
        result, inverse = np.unique(array, axis=axis, return_inverse=True)
        return result, inverse.reshape(-1)
    return np.unique(array, axis=axis)


def _eager_argsort_labels_values(values: Any, reverse: bool) -> Any:
    if is_torch_array(values):
        numpy_values = values.detach().cpu().numpy()
    else:
        _check_numpy(values)
        numpy_values = values
    if numpy_values.shape[1] == 0:
        order = np.arange(numpy_values.shape[0])
    else:
        order = np.lexsort(numpy_values.T[::-1])
    if reverse:
        order = order[::-1].copy()
    if is_torch_array(values):
        return torch.from_numpy(order.astype(np.int64)).to(values.device)
    return order


def _numpy_segment_sum(array: Any, index: Any, n_segments: int, axis: int) -> Any:
    _check_numpy(array)
    index = _eager_index_like(index, array)
    shape = list(array.shape)
    shape[axis] = n_segments
    if index.shape[0] == 0 or n_segments == 0:
        return np.zeros(shape, dtype=array.dtype)

    steps = np.diff(index)
    if not np.all(steps >= 0):
        order = np.argsort(index, kind="stable")
        index = index[order]
        array = np.take(array, order, axis=axis)
        steps = np.diff(index)

    starts = np.flatnonzero(np.concatenate([[True], steps != 0]))
    summed = np.add.reduceat(array, starts, axis=axis)
    if starts.shape[0] == n_segments:
        # every segment is present, and they are sorted
        return summed

    output = np.zeros(shape, dtype=summed.dtype)
    selector = [builtins.slice(None)] * len(shape)
    selector[axis] = index[starts]
    output[tuple(selector)] = summed
    return output


def _unique_rows_numpy(values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Sorted unique rows of a 2-D integer array and the inverse mapping, by
    packing the columns into a single int64 key (much faster than
    ``np.unique(axis=0)``)."""
    count, n_columns = values.shape
    if count == 0 or n_columns == 0:
        unique = values[: builtins.min(count, 1)]
        return unique, np.zeros(count, dtype=np.int64)

    minimum = values.min(axis=0).astype(np.int64)
    extent = values.max(axis=0).astype(np.int64) - minimum + 1
    total = 1
    for e in extent.tolist():
        total *= e
    if total >= 2**62:
        # the packed keys could overflow, use numpy
        unique, inverse = np.unique(values, axis=0, return_inverse=True)
        return unique, inverse.reshape(-1).astype(np.int64)

    key = values[:, 0].astype(np.int64) - minimum[0]
    for j in range(1, n_columns):
        key *= extent[j]
        key += values[:, j].astype(np.int64) - minimum[j]

    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    new_group = np.empty(count, dtype=np.bool_)
    new_group[0] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=new_group[1:])
    inverse = np.empty(count, dtype=np.int64)
    inverse[order] = np.cumsum(new_group) - 1
    return values[order[new_group]], inverse


def _eager_unique_rows(values: Any) -> Any:
    if is_torch_array(values):
        if values.device.type != "cpu":
            return None
        unique, inverse = _unique_rows_numpy(values.detach().numpy())
        return torch.from_numpy(np.ascontiguousarray(unique)), torch.from_numpy(inverse)
    _check_numpy(values)
    return _unique_rows_numpy(values)


def _eager_merge_gradient_rows(gradient_samples: Any, sample_groups: Any) -> Any:
    if is_torch_array(gradient_samples) and gradient_samples.device.type != "cpu":
        return None
    samples = to_numpy(gradient_samples)
    groups = to_numpy(sample_groups)
    merged = samples.copy()
    merged[:, 0] = groups[samples[:, 0]]
    new_samples, inverse = _unique_rows_numpy(merged)
    if is_torch_array(gradient_samples):
        return (
            torch.from_numpy(np.ascontiguousarray(new_samples)),
            torch.from_numpy(inverse),
        )
    _check_numpy(gradient_samples)
    return new_samples, inverse


def _eager_select_gradient_rows(
    gradient_samples: Any, positions: Any, n_samples: int
) -> Any:
    if is_torch_array(gradient_samples) and gradient_samples.device.type != "cpu":
        return None
    samples = to_numpy(gradient_samples)
    new_position = np.full(n_samples, -1, dtype=np.int64)
    new_position[to_numpy(positions)] = np.arange(len(positions), dtype=np.int64)
    row_sample = new_position[samples[:, 0]]
    keep = np.flatnonzero(row_sample >= 0)
    new_samples = samples[keep]
    new_samples[:, 0] = row_sample[keep]
    if is_torch_array(gradient_samples):
        return torch.from_numpy(keep), torch.from_numpy(new_samples)
    _check_numpy(gradient_samples)
    return keep, new_samples
