"""Array dispatch for the operations: every array-specific call of an operation
goes through one of these small functions, which branch between torch tensors
and numpy arrays.

Torch is never imported here: an object can only be a torch tensor if torch was
already imported by someone else, which :py:func:`metatensor._array.is_torch`
checks through ``sys.modules``. Any other array type raises a ``TypeError``.

Functions which take several arrays require all of them to be of the same kind
(all numpy or all torch), and raise ``TypeError`` otherwise.
"""

import builtins
import warnings
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from metatensor import _array


Array = Any

_UNKNOWN_ARRAY = "unknown array type, only numpy arrays and torch tensors are supported"


def _torch():
    return _array.torch_module()


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


# ======================================================================== #
# creation                                                                 #
# ======================================================================== #


def _shape(array: Array, shape: Optional[Sequence[int]]) -> Tuple[int, ...]:
    if shape is None:
        return tuple(int(s) for s in array.shape)
    return tuple(int(s) for s in shape)


def zeros_like(
    array: Array, shape: Optional[Sequence[int]] = None, requires_grad: bool = False
) -> Array:
    """Zeros with the kind, dtype and device of ``array`` and the given ``shape``
    (default: the shape of ``array``). ``requires_grad`` only applies to torch."""
    shape = _shape(array, shape)
    if is_torch_array(array):
        return _torch().zeros(
            shape, dtype=array.dtype, device=array.device, requires_grad=requires_grad
        )
    _check_numpy(array)
    return np.zeros(shape, dtype=array.dtype)


def ones_like(
    array: Array, shape: Optional[Sequence[int]] = None, requires_grad: bool = False
) -> Array:
    """Ones with the kind, dtype and device of ``array``."""
    shape = _shape(array, shape)
    if is_torch_array(array):
        return _torch().ones(
            shape, dtype=array.dtype, device=array.device, requires_grad=requires_grad
        )
    _check_numpy(array)
    return np.ones(shape, dtype=array.dtype)


def empty_like(
    array: Array, shape: Optional[Sequence[int]] = None, requires_grad: bool = False
) -> Array:
    """Uninitialized array with the kind, dtype and device of ``array``."""
    shape = _shape(array, shape)
    if is_torch_array(array):
        return _torch().empty(
            shape, dtype=array.dtype, device=array.device, requires_grad=requires_grad
        )
    _check_numpy(array)
    return np.empty(shape, dtype=array.dtype)


def full_like(
    array: Array,
    fill_value: Union[int, float, bool],
    shape: Optional[Sequence[int]] = None,
) -> Array:
    """Array filled with ``fill_value``, with the kind, dtype and device of
    ``array``."""
    shape = _shape(array, shape)
    if is_torch_array(array):
        return _torch().full(shape, fill_value, dtype=array.dtype, device=array.device)
    _check_numpy(array)
    return np.full(shape, fill_value, dtype=array.dtype)


def rand_like(
    array: Array, shape: Optional[Sequence[int]] = None, requires_grad: bool = False
) -> Array:
    """Uniform random numbers in ``[0, 1)`` with the kind, dtype and device of
    ``array``: ``torch.rand`` for torch, the global ``np.random.rand`` for
    numpy."""
    shape = _shape(array, shape)
    if is_torch_array(array):
        return _torch().rand(
            shape, dtype=array.dtype, device=array.device, requires_grad=requires_grad
        )
    _check_numpy(array)
    return np.asarray(np.random.rand(*shape)).astype(array.dtype, copy=False)


def eye_like(array: Array, size: int) -> Array:
    """Identity matrix of shape ``(size, size)`` with the kind, dtype and device
    of ``array``."""
    if is_torch_array(array):
        return _torch().eye(size, dtype=array.dtype, device=array.device)
    _check_numpy(array)
    return np.eye(size, dtype=array.dtype)


def bool_array_like(values: List[bool], like: Array) -> Array:
    """A 1-D boolean array from a list of bools, on the device of ``like``."""
    if is_torch_array(like):
        return _torch().tensor(values, dtype=_torch().bool, device=like.device)
    _check_numpy(like)
    return np.array(values, dtype=np.bool_)


def int_array_like(values: Union[List[int], np.ndarray], like: Array) -> Array:
    """A 1-D int64 array from ``values``, with the kind and device of ``like``."""
    if is_torch_array(like):
        torch = _torch()
        if isinstance(values, np.ndarray):
            return torch.from_numpy(np.asarray(values, dtype=np.int64)).to(like.device)
        return torch.tensor(values, dtype=torch.int64, device=like.device)
    _check_numpy(like)
    return np.asarray(values, dtype=np.int64)


def to_index_array(array: Array) -> Array:
    """Convert an integer array to an array usable for indexing (int64 for
    torch, intp for numpy)."""
    if is_torch_array(array):
        return array.to(_torch().int64)
    _check_numpy(array)
    return np.asarray(array, dtype=np.intp)


def index_like(indices: Any, like: Array) -> Array:
    """Convert integer ``indices`` (numpy array, list or torch tensor) to an index
    array usable on ``like`` (same kind and device)."""
    if is_torch_array(like):
        torch = _torch()
        if is_torch_array(indices):
            return indices.to(dtype=torch.int64, device=like.device)
        return torch.as_tensor(np.asarray(indices, dtype=np.int64)).to(like.device)
    _check_numpy(like)
    if is_torch_array(indices):
        indices = indices.detach().cpu().numpy()
    return np.asarray(indices, dtype=np.intp)


def index_grid(shape: List[int], like: Array) -> Array:
    """All the points of the integer grid of the given ``shape``, in row-major
    order, as a ``(prod(shape), len(shape))`` int32 array with the kind and
    device of ``like`` (i.e. the transpose of the flattened ``np.indices``)."""
    grid = np.indices(shape, dtype=np.int32).reshape(len(shape), -1).T
    grid = np.ascontiguousarray(grid)
    if is_torch_array(like):
        return _torch().from_numpy(grid).to(like.device)
    _check_numpy(like)
    return grid


def find_positions(values: Array, reference: Array) -> Tuple[np.ndarray, Any]:
    """For each entry of the 1-D integer array ``values``, its position in the 1-D
    array ``reference`` (which has unique entries). Returns the positions (numpy
    int64) and the first value which is missing from ``reference`` (or
    ``None``)."""
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


def complement_positions(positions: Array, count: int) -> List[int]:
    """The integers in ``range(count)`` which are not in ``positions``, in
    increasing order."""
    keep = np.ones(count, dtype=np.bool_)
    keep[to_numpy(positions).astype(np.int64)] = False
    return np.flatnonzero(keep).tolist()


# ======================================================================== #
# element-wise math                                                        #
# ======================================================================== #


def abs(array: Array) -> Array:
    """Element-wise absolute value."""
    if is_torch_array(array):
        return _torch().abs(array)
    _check_numpy(array)
    return np.abs(array)


def sign(array: Array) -> Array:
    """Element-wise sign (``torch.sgn`` for torch, 0 at 0)."""
    if is_torch_array(array):
        return _torch().sgn(array)
    _check_numpy(array)
    return np.sign(array)


def sqrt(array: Array) -> Array:
    """Element-wise square root."""
    if is_torch_array(array):
        return _torch().sqrt(array)
    _check_numpy(array)
    return np.sqrt(array)


def power(array: Array, exponent: float) -> Array:
    """Element-wise ``array ** exponent``."""
    if is_torch_array(array):
        return _torch().pow(array, exponent)
    _check_numpy(array)
    return np.power(array, exponent)


def where(condition: Array, first: Array, second: Array) -> Array:
    """Element-wise ``first if condition else second`` (arrays or scalars)."""
    if is_torch_array(condition):
        torch = _torch()
        return torch.where(condition, first, second)
    _check_numpy(condition)
    return np.where(condition, first, second)


def nan_to_num(
    array: Array,
    nan: float = 0.0,
    posinf: Optional[float] = None,
    neginf: Optional[float] = None,
) -> Array:
    """Replace NaN (and infinities) with finite numbers, out-of-place."""
    if is_torch_array(array):
        return _torch().nan_to_num(array, nan=nan, posinf=posinf, neginf=neginf)
    _check_numpy(array)
    return np.nan_to_num(array, nan=nan, posinf=posinf, neginf=neginf)


def isfinite(array: Array) -> Array:
    """Element-wise finiteness test."""
    if is_torch_array(array):
        return _torch().isfinite(array)
    _check_numpy(array)
    return np.isfinite(array)


# ======================================================================== #
# comparison                                                               #
# ======================================================================== #


def allclose(
    a: Array,
    b: Array,
    rtol: float = 1e-13,
    atol: float = 1e-12,
    equal_nan: bool = False,
) -> bool:
    """Are all the entries of ``a`` and ``b`` close? Shapes must be equal (else
    ``False``); mixing numpy and torch raises ``TypeError``."""
    is_torch = _check_same_kind(a, b)
    if tuple(a.shape) != tuple(b.shape):
        return False
    if is_torch:
        torch = _torch()
        if a.device != b.device:
            b = b.to(a.device)
        if a.dtype != b.dtype:
            b = b.to(a.dtype)
        return builtins.bool(
            torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)
        )
    return builtins.bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def array_equal(a: Array, b: Array) -> bool:
    """Do ``a`` and ``b`` have the same shape and exactly equal entries (NaN are
    never equal)? Mixing numpy and torch raises ``TypeError``."""
    is_torch = _check_same_kind(a, b)
    if tuple(a.shape) != tuple(b.shape):
        return False
    if is_torch:
        torch = _torch()
        if a.device != b.device:
            b = b.to(a.device)
        return builtins.bool(torch.equal(a, b))
    return builtins.bool(np.array_equal(a, b))


def all(array: Array, axis: Optional[int] = None) -> Any:
    """Are all entries true (along ``axis``, or everywhere)? Returns a python
    bool when ``axis`` is ``None``."""
    if is_torch_array(array):
        if axis is None:
            return builtins.bool(_torch().all(array))
        return _torch().all(array, dim=axis)
    _check_numpy(array)
    if axis is None:
        return builtins.bool(np.all(array))
    return np.all(array, axis=axis)


def any(array: Array) -> bool:
    """Is any entry true?"""
    if is_torch_array(array):
        return builtins.bool(_torch().any(array))
    _check_numpy(array)
    return builtins.bool(np.any(array))


# ======================================================================== #
# shape & indexing                                                         #
# ======================================================================== #


def concatenate(arrays: List[Array], axis: int = 0) -> Array:
    """Concatenate arrays of the same kind along ``axis``."""
    if is_torch_array(arrays[0]):
        return _torch().cat(arrays, dim=axis)
    _check_numpy(arrays[0])
    return np.concatenate(arrays, axis=axis)


def stack(arrays: List[Array], axis: int = 0) -> Array:
    """Stack arrays of the same kind along a new ``axis``."""
    if is_torch_array(arrays[0]):
        return _torch().stack(arrays, dim=axis)
    _check_numpy(arrays[0])
    return np.stack(arrays, axis=axis)


def take(array: Array, indices: Any, axis: int = 0) -> Array:
    """Select entries along ``axis`` with integer ``indices`` (numpy array, list
    or torch tensor), returns a new array."""
    if is_torch_array(array):
        return array.index_select(axis, index_like(indices, array))
    _check_numpy(array)
    return np.take(array, index_like(indices, array), axis=axis)


def mask(array: Array, axis: int, mask: Array) -> Array:
    """Select the entries along ``axis`` where the boolean ``mask`` is true."""
    if is_torch_array(array):
        torch = _torch()
        if not is_torch_array(mask):
            mask = torch.from_numpy(np.asarray(mask, dtype=np.bool_))
        indices = torch.nonzero(mask.to(array.device)).reshape(-1)
        return array.index_select(axis, indices)
    _check_numpy(array)
    return np.compress(np.asarray(mask, dtype=np.bool_), array, axis=axis)


def index_add(output: Array, input: Array, index: Any) -> Array:
    """``output[index[i]] += input[i]`` along the first axis, accumulating
    repeated indices. Modifies ``output`` in place (it should be a freshly
    created array) and returns it."""
    if is_torch_array(output):
        output.index_add_(0, index_like(index, output), input)
        return output
    _check_numpy(output)
    index = index_like(index, output)
    if input.ndim == 1:
        output += np.bincount(index, weights=input, minlength=output.shape[0])[
            : output.shape[0]
        ].astype(output.dtype, copy=False)
    else:
        np.add.at(output, index, input)
    return output


def reshape(array: Array, shape: Sequence[int]) -> Array:
    """Reshape an array."""
    if is_torch_array(array):
        return array.reshape([int(s) for s in shape])
    _check_numpy(array)
    return array.reshape(tuple(int(s) for s in shape))


def swapaxes(array: Array, axis1: int, axis2: int) -> Array:
    """Swap two axes of an array (a view)."""
    if is_torch_array(array):
        return array.swapaxes(axis1, axis2)
    _check_numpy(array)
    return np.swapaxes(array, axis1, axis2)


def copy(array: Array) -> Array:
    """A copy of the array (keeps autograd history for torch)."""
    if is_torch_array(array):
        return array.clone()
    _check_numpy(array)
    return array.copy()


def make_contiguous(array: Array) -> Array:
    """A C-contiguous version of the array (no copy if it already is)."""
    if is_torch_array(array):
        return array.contiguous()
    _check_numpy(array)
    return np.ascontiguousarray(array)


def is_contiguous(array: Array) -> bool:
    """Is this array C-contiguous?"""
    if is_torch_array(array):
        return builtins.bool(array.is_contiguous())
    _check_numpy(array)
    return builtins.bool(array.flags["C_CONTIGUOUS"])


def get_device(array: Array) -> Any:
    """The device of an array (``"cpu"`` for numpy)."""
    if is_torch_array(array):
        return array.device
    _check_numpy(array)
    return "cpu"


def to_numpy(array: Array) -> np.ndarray:
    """A CPU numpy version of the array (detached for torch)."""
    if is_torch_array(array):
        return array.detach().cpu().numpy()
    _check_numpy(array)
    return array


# ======================================================================== #
# autograd                                                                 #
# ======================================================================== #


def requires_grad(array: Array, value: bool = True) -> Array:
    """``array.detach().requires_grad_(value)`` for torch; numpy arrays are
    returned unchanged.

    Warns when setting ``requires_grad=True`` on a tensor which already requires
    gradients (since this detaches it from its graph), and when setting
    ``requires_grad=True`` on a numpy array (which does nothing)."""
    if is_torch_array(array):
        if value and array.requires_grad:
            warnings.warn(
                "setting `requires_grad=True` again on a Tensor will detach the Tensor",
                UserWarning,
                stacklevel=4,
            )
        return array.detach().requires_grad_(value)
    _check_numpy(array)
    if value:
        warnings.warn(
            "`requires_grad=True` does nothing for numpy arrays",
            UserWarning,
            stacklevel=4,
        )
    return array


def array_requires_grad(array: Array) -> bool:
    """Does this array require gradients? Always ``False`` for numpy."""
    if is_torch_array(array):
        return builtins.bool(array.requires_grad)
    _check_numpy(array)
    return False


def detach(array: Array) -> Array:
    """Detach a torch tensor from the autograd graph; numpy arrays are returned
    unchanged."""
    if is_torch_array(array):
        return array.detach()
    _check_numpy(array)
    return array


# ======================================================================== #
# linear algebra                                                           #
# ======================================================================== #


def dot(a: Array, b: Array) -> Array:
    """``a @ b.T`` for ``a`` of shape ``(..., n)`` and 2-D ``b`` of shape
    ``(m, n)``, giving shape ``(..., m)``."""
    if _check_same_kind(a, b):
        return _torch().matmul(a, b.T)
    return np.matmul(a, b.T)


def matmul(a: Array, b: Array) -> Array:
    """Matrix product ``a @ b``."""
    if _check_same_kind(a, b):
        return _torch().matmul(a, b)
    return np.matmul(a, b)


def lstsq(
    X: Array, Y: Array, rcond: Optional[float], driver: Optional[str] = None
) -> Array:
    """Least-squares solution ``w`` of ``X w = Y`` (2-D arrays). ``driver`` is
    only used by torch."""
    if _check_same_kind(X, Y):
        torch = _torch()
        result = torch.linalg.lstsq(X, Y, rcond=rcond, driver=driver)
        return result.solution
    return np.linalg.lstsq(X, Y, rcond=rcond)[0]


def solve(X: Array, Y: Array) -> Array:
    """Solution ``w`` of the square linear system ``X w = Y``."""
    if _check_same_kind(X, Y):
        return _torch().linalg.solve(X, Y)
    return np.linalg.solve(X, Y)


# ======================================================================== #
# labels helpers                                                           #
# ======================================================================== #


def unique(array: Array, axis: Optional[int] = None, return_inverse: bool = False):
    """Sorted unique entries (rows with ``axis=0``) of ``array``, and optionally
    the inverse mapping (a 1-D int array, for each input entry the position of
    its unique entry)."""
    if is_torch_array(array):
        torch = _torch()
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


def argsort_labels_values(values: Array, reverse: bool = False) -> Array:
    """Positions sorting the rows of a 2-D integer array lexicographically (first
    column first), reversed if ``reverse``. Returns a numpy ``intp`` array for
    numpy input and an int64 tensor for torch input."""
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
        return _torch().from_numpy(order.astype(np.int64)).to(values.device)
    return order


# ======================================================================== #
# join / slice / sort / reductions helpers                                 #
# ======================================================================== #


def arange_like(count: int, like: Array) -> Array:
    """``[0, 1, ..., count - 1]`` as a 1-D int64 array with the kind and device of
    ``like``."""
    if is_torch_array(like):
        torch = _torch()
        return torch.arange(count, dtype=torch.int64, device=like.device)
    _check_numpy(like)
    return np.arange(count, dtype=np.int64)


def nonzero(mask: Array) -> Array:
    """Positions of the true entries of a 1-D boolean ``mask`` (int64 for
    torch, intp for numpy)."""
    if is_torch_array(mask):
        return _torch().nonzero(mask).reshape(-1)
    _check_numpy(mask)
    return np.flatnonzero(mask)


def bincount(index: Array, minlength: int, like: Array) -> Array:
    """How many times each integer of ``[0, minlength)`` appears in the 1-D
    ``index``, with the kind, dtype and device of ``like``."""
    if is_torch_array(like):
        torch = _torch()
        index = index_like(index, like)
        counts = torch.bincount(index, minlength=minlength)
        return counts.to(dtype=like.dtype)
    _check_numpy(like)
    index = index_like(index, like)
    return np.bincount(index, minlength=minlength).astype(like.dtype)


def segment_sum(array: Array, index: Any, n_segments: int, axis: int = 0) -> Array:
    """Sum the entries of ``array`` along ``axis`` into ``n_segments`` groups:
    ``output[..., index[i], ...] += array[..., i, ...]``. The output is a new
    array (differentiable with torch: ``index_add`` on fresh zeros).

    With numpy, this sorts the entries by group (no-op when ``index`` is already
    sorted) and uses ``np.add.reduceat``, much faster than ``np.add.at``.
    """
    if axis < 0:
        axis = len(array.shape) + axis
    if n_segments == 1 and int(array.shape[axis]) != 0:
        # everything goes to the same segment
        if is_torch_array(array):
            return array.sum(dim=axis, keepdim=True)
        _check_numpy(array)
        return np.sum(array, axis=axis, keepdims=True)
    if is_torch_array(array):
        shape = [int(s) for s in array.shape]
        shape[axis] = n_segments
        output = _torch().zeros(shape, dtype=array.dtype, device=array.device)
        return output.index_add(axis, index_like(index, array), array)

    _check_numpy(array)
    index = index_like(index, array)
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


def inverse_positions(positions: Array, count: int) -> Array:
    """For ``positions``, a 1-D integer array of distinct entries of ``[0,
    count)``, the int64 array ``result`` of size ``count`` such that
    ``result[positions[i]] = i``, with -1 for the entries not in ``positions``.
    The result has the kind and device of ``positions``."""
    if is_torch_array(positions):
        torch = _torch()
        result = torch.full((count,), -1, dtype=torch.int64, device=positions.device)
        n_positions = int(positions.shape[0])
        result[positions.to(torch.int64)] = torch.arange(
            n_positions, dtype=torch.int64, device=positions.device
        )
        return result
    _check_numpy(positions)
    result = np.full(count, -1, dtype=np.int64)
    result[positions] = np.arange(positions.shape[0], dtype=np.int64)
    return result


def astype_like(array: Array, like: Array) -> Array:
    """Convert ``array`` to the dtype of ``like`` (no copy if it already has
    it)."""
    if is_torch_array(array):
        return array.to(dtype=like.dtype)
    _check_numpy(array)
    return array.astype(like.dtype, copy=False)


def scatter_rows(array: Array, index: Any, n_rows: int) -> Array:
    """A new array with ``n_rows`` rows (the other dimensions as ``array``),
    containing ``array[i]`` at row ``index[i]`` and zeros in the other rows
    (differentiable with torch: ``index_copy`` on fresh zeros)."""
    shape = [int(s) for s in array.shape]
    shape[0] = n_rows
    if is_torch_array(array):
        output = _torch().zeros(shape, dtype=array.dtype, device=array.device)
        return output.index_copy(0, index_like(index, array), array)
    _check_numpy(array)
    output = np.zeros(shape, dtype=array.dtype)
    output[index_like(index, array)] = array
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


def unique_rows(values: Array) -> Tuple[Array, Array]:
    """Sorted (lexicographically) unique rows of a 2-D integer array, and for each
    row the position of its unique row (int64). Both results have the kind and
    device of ``values``."""
    if is_torch_array(values):
        torch = _torch()
        if values.device.type != "cpu":
            unique, inverse = torch.unique(
                values, sorted=True, return_inverse=True, dim=0
            )
            return unique, inverse.reshape(-1)
        unique, inverse = _unique_rows_numpy(values.detach().numpy())
        return torch.from_numpy(np.ascontiguousarray(unique)), torch.from_numpy(inverse)
    _check_numpy(values)
    return _unique_rows_numpy(values)


def merge_gradient_rows(
    gradient_samples: Array, sample_groups: Array
) -> Tuple[Array, Array]:
    """Group the rows of gradient samples after a reduction over samples.

    ``gradient_samples`` are the values of the gradient samples Labels (first
    column: the row of the values), ``sample_groups`` the new position of each
    row of the values. Returns the (sorted, unique) new gradient samples values,
    with the first column replaced by the new position, and for each gradient
    row the position of its new row (int64). The results have the kind and
    device of ``gradient_samples``.
    """
    if is_torch_array(gradient_samples) and gradient_samples.device.type != "cpu":
        torch = _torch()
        groups = index_like(sample_groups, gradient_samples)
        rows = groups[gradient_samples[:, 0].to(torch.int64)]
        merged = torch.cat(
            [rows.to(gradient_samples.dtype).reshape(-1, 1), gradient_samples[:, 1:]],
            dim=1,
        )
        if merged.shape[0] == 0:
            return merged, torch.zeros(0, dtype=torch.int64, device=merged.device)
        return unique_rows(merged)

    # labels on CPU: do everything with numpy
    samples = to_numpy(gradient_samples)
    groups = to_numpy(sample_groups)
    merged = samples.copy()
    merged[:, 0] = groups[samples[:, 0]]
    new_samples, inverse = _unique_rows_numpy(merged)
    if is_torch_array(gradient_samples):
        torch = _torch()
        return (
            torch.from_numpy(np.ascontiguousarray(new_samples)),
            torch.from_numpy(inverse),
        )
    _check_numpy(gradient_samples)
    return new_samples, inverse


def select_gradient_rows(
    gradient_samples: Array, positions: Array, n_samples: int
) -> Tuple[Array, Array]:
    """Select the gradient rows referring to the samples at ``positions`` (1-D,
    distinct entries of ``[0, n_samples)``) after slicing the samples.

    Returns the positions of the kept gradient rows (in their original order) and
    the new gradient samples values, where the first column refers to the
    position of the sample in ``positions``. The results have the kind and
    device of ``gradient_samples``.
    """
    if is_torch_array(gradient_samples) and gradient_samples.device.type != "cpu":
        torch = _torch()
        new_position = inverse_positions(
            index_like(positions, gradient_samples), n_samples
        )
        row_sample = new_position[gradient_samples[:, 0].to(torch.int64)]
        keep = torch.nonzero(row_sample >= 0).reshape(-1)
        new_samples = gradient_samples.index_select(0, keep)
        first = row_sample.index_select(0, keep).to(gradient_samples.dtype)
        new_samples = torch.cat([first.reshape(-1, 1), new_samples[:, 1:]], dim=1)
        return keep, new_samples

    # labels on CPU: do everything with numpy
    samples = to_numpy(gradient_samples)
    new_position = np.full(n_samples, -1, dtype=np.int64)
    new_position[to_numpy(positions)] = np.arange(len(positions), dtype=np.int64)
    row_sample = new_position[samples[:, 0]]
    keep = np.flatnonzero(row_sample >= 0)
    new_samples = samples[keep]
    new_samples[:, 0] = row_sample[keep]
    if is_torch_array(gradient_samples):
        torch = _torch()
        return torch.from_numpy(keep), torch.from_numpy(new_samples)
    _check_numpy(gradient_samples)
    return keep, new_samples
