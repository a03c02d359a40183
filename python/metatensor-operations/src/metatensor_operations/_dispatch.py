"""Array dispatch for the operations: every array-specific call of an operation
goes through one of these small functions, which branch between torch tensors
and numpy arrays.

This file is compiled by TorchScript in ``metatensor.torch.operations``, where
``Array`` is ``torch.Tensor``. Each function is written as

.. code-block:: python

    def function(array: Array) -> Array:
        if not torch_jit_is_scripting():
            if not is_torch_array(array):
                ...  # numpy version, never compiled by TorchScript
        ...  # torch version

The numpy versions and type checks live in :py:mod:`._dispatch_eager`. Torch is
never imported for the core classes (``torch`` is then a stand-in which looks
the module up in ``sys.modules`` when a torch tensor was given). Any other array
type raises a ``TypeError``.

Functions which take several arrays require all of them to be of the same kind
(all numpy or all torch), and raise ``TypeError`` otherwise.
"""

import warnings
from typing import List, Optional, Tuple

import numpy as np

from . import _backend
from ._backend import Array, torch_jit_is_scripting
from ._dispatch_eager import (  # noqa: F401 (re-exported)
    _check_numpy,
    _check_same_kind,
    _eager_argsort_labels_values,
    _eager_find_positions,
    _eager_index_like,
    _eager_int_array_like,
    _eager_mask,
    _eager_merge_gradient_rows,
    _eager_select_gradient_rows,
    _eager_unique,
    _eager_unique_rows,
    _LazyTorch,
    _numpy_index_add,
    _numpy_requires_grad,
    _numpy_segment_sum,
    _unique_rows_numpy,
    is_numpy_array,
    is_numpy_scalar,
    is_torch_array,
    to_numpy,
)


if hasattr(_backend, "torch"):
    torch = _backend.torch
else:
    torch = _LazyTorch()


def _shape(array: Array, shape: Optional[List[int]]) -> List[int]:
    if shape is None:
        return [int(s) for s in array.shape]
    return [int(s) for s in shape]


# ======================================================================== #
# creation                                                                 #
# ======================================================================== #


def zeros_like(
    array: Array, shape: Optional[List[int]] = None, requires_grad: bool = False
) -> Array:
    """Zeros with the kind, dtype and device of ``array`` and the given ``shape``
    (default: the shape of ``array``). ``requires_grad`` only applies to torch."""
    new_shape = _shape(array, shape)
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return np.zeros(new_shape, dtype=array.dtype)
    result = torch.zeros(new_shape, dtype=array.dtype, device=array.device)
    if requires_grad:
        result.requires_grad_(True)
    return result


def ones_like(
    array: Array, shape: Optional[List[int]] = None, requires_grad: bool = False
) -> Array:
    """Ones with the kind, dtype and device of ``array``."""
    new_shape = _shape(array, shape)
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return np.ones(new_shape, dtype=array.dtype)
    result = torch.ones(new_shape, dtype=array.dtype, device=array.device)
    if requires_grad:
        result.requires_grad_(True)
    return result


def empty_like(
    array: Array, shape: Optional[List[int]] = None, requires_grad: bool = False
) -> Array:
    """Uninitialized array with the kind, dtype and device of ``array``."""
    new_shape = _shape(array, shape)
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return np.empty(new_shape, dtype=array.dtype)
    result = torch.empty(new_shape, dtype=array.dtype, device=array.device)
    if requires_grad:
        result.requires_grad_(True)
    return result


def full_like(
    array: Array,
    fill_value: int,
    shape: Optional[List[int]] = None,
) -> Array:
    """Array filled with ``fill_value``, with the kind, dtype and device of
    ``array``."""
    new_shape = _shape(array, shape)
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return np.full(new_shape, fill_value, dtype=array.dtype)
    return torch.full(new_shape, fill_value, dtype=array.dtype, device=array.device)


def rand_like(
    array: Array, shape: Optional[List[int]] = None, requires_grad: bool = False
) -> Array:
    """Uniform random numbers in ``[0, 1)`` with the kind, dtype and device of
    ``array``: ``torch.rand`` for torch, the global ``np.random.rand`` for
    numpy."""
    new_shape = _shape(array, shape)
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            values = np.asarray(np.random.rand(*new_shape))
            return values.astype(array.dtype, copy=False)
    result = torch.rand(new_shape, dtype=array.dtype, device=array.device)
    if requires_grad:
        result.requires_grad_(True)
    return result


def eye_like(array: Array, size: int) -> Array:
    """Identity matrix of shape ``(size, size)`` with the kind, dtype and device
    of ``array``."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return np.eye(size, dtype=array.dtype)
    return torch.eye(size, dtype=array.dtype, device=array.device)


def bool_array_like(values: List[bool], like: Array) -> Array:
    """A 1-D boolean array from a list of bools, on the device of ``like``."""
    if not torch_jit_is_scripting():
        if not is_torch_array(like):
            _check_numpy(like)
            return np.array(values, dtype=np.bool_)
    return torch.tensor(values, dtype=torch.bool, device=like.device)


def int_array_like(values: List[int], like: Array) -> Array:
    """A 1-D int64 array from ``values`` (a list, or a numpy array outside
    TorchScript), with the kind and device of ``like``."""
    if not torch_jit_is_scripting():
        result = _eager_int_array_like(values, like)
        if result is not None:
            return result
    return torch.tensor(values, dtype=torch.int64, device=like.device)


def to_index_array(array: Array) -> Array:
    """Convert an integer array to an array usable for indexing (int64 for
    torch, intp for numpy)."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return np.asarray(array, dtype=np.intp)
    return array.to(torch.int64)


def index_like(indices: Array, like: Array) -> Array:
    """Convert integer ``indices`` (a torch tensor, or outside TorchScript also a
    numpy array or a list) to an index array usable on ``like`` (same kind and
    device)."""
    if not torch_jit_is_scripting():
        return _eager_index_like(indices, like)
    return indices.to(dtype=torch.int64, device=like.device)


def index_grid(shape: List[int], like: Array) -> Array:
    """All the points of the integer grid of the given ``shape``, in row-major
    order, as a ``(prod(shape), len(shape))`` int32 array with the kind and
    device of ``like`` (i.e. the transpose of the flattened ``np.indices``)."""
    if not torch_jit_is_scripting():
        grid = np.indices(shape, dtype=np.int32).reshape(len(shape), -1).T
        grid = np.ascontiguousarray(grid)
        if not is_torch_array(like):
            _check_numpy(like)
            return grid
        return torch.from_numpy(grid).to(like.device)

    total = 1
    for size in shape:
        total *= size
    points = torch.arange(total, dtype=torch.int64, device=like.device)
    columns: List[Array] = []
    stride = total
    for size in shape:
        stride = stride // size if size != 0 else 0
        if stride == 0:
            columns.append(torch.zeros_like(points))
        else:
            columns.append(
                torch.remainder(torch.div(points, stride, rounding_mode="floor"), size)
            )
    if len(columns) == 0:
        return torch.zeros((total, 0), dtype=torch.int32, device=like.device)
    return torch.stack(columns, dim=1).to(torch.int32)


def find_positions(values: Array, reference: Array) -> Tuple[Array, Optional[int]]:
    """For each entry of the 1-D integer array ``values``, its position in the 1-D
    array ``reference`` (which has unique entries). Returns the positions (int64,
    numpy outside TorchScript) and the first value which is missing from
    ``reference`` (or ``None``)."""
    if not torch_jit_is_scripting():
        return _eager_find_positions(values, reference)

    sorted_reference, order = torch.sort(reference.contiguous(), stable=True)
    values = values.to(device=reference.device, dtype=sorted_reference.dtype)
    values = values.contiguous()
    positions = torch.searchsorted(sorted_reference, values)
    n_reference = int(reference.shape[0])
    nothing = torch.zeros(0, dtype=torch.int64, device=reference.device)
    if n_reference == 0:
        if int(values.shape[0]) != 0:
            return nothing, int(values[0])
        return nothing, None
    clipped = torch.clamp(positions, max=n_reference - 1)
    found = sorted_reference[clipped] == values
    if not bool(torch.all(found)):
        missing = torch.nonzero(torch.logical_not(found)).reshape(-1)
        return nothing, int(values[missing[0]])
    return order[clipped].to(torch.int64), None


def complement_positions(positions: Array, count: int) -> List[int]:
    """The integers in ``range(count)`` which are not in ``positions``, in
    increasing order."""
    if not torch_jit_is_scripting():
        keep = np.ones(count, dtype=np.bool_)
        keep[to_numpy(positions).astype(np.int64)] = False
        return np.flatnonzero(keep).tolist()
    keep = torch.ones(count, dtype=torch.bool, device=positions.device)
    keep[positions.to(torch.int64)] = False
    return torch.nonzero(keep).reshape(-1).to(torch.int64).tolist()


# ======================================================================== #
# element-wise math                                                        #
# ======================================================================== #


def abs(array: Array) -> Array:
    """Element-wise absolute value."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return np.abs(array)
    return torch.abs(array)


def sign(array: Array) -> Array:
    """Element-wise sign (``torch.sgn`` for torch, 0 at 0)."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return np.sign(array)
    return torch.sgn(array)


def sqrt(array: Array) -> Array:
    """Element-wise square root."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return np.sqrt(array)
    return torch.sqrt(array)


def power(array: Array, exponent: float) -> Array:
    """Element-wise ``array ** exponent``."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return np.power(array, exponent)
    return torch.pow(array, exponent)


def where(condition: Array, first: Array, second: Array) -> Array:
    """Element-wise ``first if condition else second``."""
    if not torch_jit_is_scripting():
        if not is_torch_array(condition):
            _check_numpy(condition)
            return np.where(condition, first, second)
    return torch.where(condition, first, second)


def nan_to_num(
    array: Array,
    nan: float = 0.0,
    posinf: Optional[float] = None,
    neginf: Optional[float] = None,
) -> Array:
    """Replace NaN (and infinities) with finite numbers, out-of-place."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return np.nan_to_num(array, nan=nan, posinf=posinf, neginf=neginf)
    return torch.nan_to_num(array, nan=nan, posinf=posinf, neginf=neginf)


def isfinite(array: Array) -> Array:
    """Element-wise finiteness test."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return np.isfinite(array)
    return torch.isfinite(array)


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
    if not torch_jit_is_scripting():
        if not _check_same_kind(a, b):
            if tuple(a.shape) != tuple(b.shape):
                return False
            return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))
    if a.shape != b.shape:
        return False
    if a.device != b.device:
        b = b.to(a.device)
    if a.dtype != b.dtype:
        b = b.to(a.dtype)
    return bool(torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def array_equal(a: Array, b: Array) -> bool:
    """Do ``a`` and ``b`` have the same shape and exactly equal entries (NaN are
    never equal)? Mixing numpy and torch raises ``TypeError``."""
    if not torch_jit_is_scripting():
        if not _check_same_kind(a, b):
            if tuple(a.shape) != tuple(b.shape):
                return False
            return bool(np.array_equal(a, b))
    if a.shape != b.shape:
        return False
    if a.device != b.device:
        b = b.to(a.device)
    return torch.equal(a, b)


def any(array: Array) -> bool:
    """Is any entry true?"""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return bool(np.any(array))
    return bool(torch.any(array))


# ======================================================================== #
# shape & indexing                                                         #
# ======================================================================== #


def concatenate(arrays: List[Array], axis: int = 0) -> Array:
    """Concatenate arrays of the same kind along ``axis``."""
    if not torch_jit_is_scripting():
        if not is_torch_array(arrays[0]):
            _check_numpy(arrays[0])
            return np.concatenate(arrays, axis=axis)
    return torch.cat(arrays, dim=axis)


def stack(arrays: List[Array], axis: int = 0) -> Array:
    """Stack arrays of the same kind along a new ``axis``."""
    if not torch_jit_is_scripting():
        if not is_torch_array(arrays[0]):
            _check_numpy(arrays[0])
            return np.stack(arrays, axis=axis)
    return torch.stack(arrays, dim=axis)


def take(array: Array, indices: Array, axis: int = 0) -> Array:
    """Select entries along ``axis`` with integer ``indices`` (a torch tensor,
    or outside TorchScript also a numpy array or a list), returns a new
    array."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return np.take(array, index_like(indices, array), axis=axis)
    return array.index_select(axis, index_like(indices, array))


def take_list(array: Array, indices: List[int], axis: int = 0) -> Array:
    """Select entries along ``axis`` with a list of integer ``indices``."""
    return take(array, int_array_like(indices, array), axis)


def mask(array: Array, axis: int, mask: Array) -> Array:
    """Select the entries along ``axis`` where the boolean ``mask`` is true."""
    if not torch_jit_is_scripting():
        return _eager_mask(array, axis, mask)
    indices = torch.nonzero(mask.to(array.device)).reshape(-1)
    return array.index_select(axis, indices)


def index_add(output: Array, input: Array, index: Array) -> Array:
    """``output[index[i]] += input[i]`` along the first axis, accumulating
    repeated indices. Modifies ``output`` in place (it should be a freshly
    created array) and returns it."""
    if not torch_jit_is_scripting():
        if not is_torch_array(output):
            return _numpy_index_add(output, input, index)
    output.index_add_(0, index_like(index, output), input)
    return output


def reshape(array: Array, shape: List[int]) -> Array:
    """Reshape an array."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return array.reshape(tuple(int(s) for s in shape))
    return array.reshape([int(s) for s in shape])


def swapaxes(array: Array, axis1: int, axis2: int) -> Array:
    """Swap two axes of an array (a view)."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return np.swapaxes(array, axis1, axis2)
    return array.swapaxes(axis1, axis2)


def copy(array: Array) -> Array:
    """A copy of the array (keeps autograd history for torch)."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return array.copy()
    return array.clone()


def make_contiguous(array: Array) -> Array:
    """A C-contiguous version of the array (no copy if it already is)."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return np.ascontiguousarray(array)
    return array.contiguous()


def is_contiguous(array: Array) -> bool:
    """Is this array C-contiguous?"""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return bool(array.flags["C_CONTIGUOUS"])
    return bool(array.is_contiguous())


# ======================================================================== #
# autograd                                                                 #
# ======================================================================== #


def requires_grad(array: Array, value: bool = True) -> Array:
    """``array.detach().requires_grad_(value)`` for torch; numpy arrays are
    returned unchanged.

    Warns when setting ``requires_grad=True`` on a tensor which already requires
    gradients (since this detaches it from its graph), and when setting
    ``requires_grad=True`` on a numpy array (which does nothing)."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            return _numpy_requires_grad(array, value)
    if value and array.requires_grad:
        warnings.warn(
            "setting `requires_grad=True` again on a Tensor will detach the Tensor",
            stacklevel=4,
        )
    return array.detach().requires_grad_(value)


def array_requires_grad(array: Array) -> bool:
    """Does this array require gradients? Always ``False`` for numpy."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return False
    return bool(array.requires_grad)


def detach(array: Array) -> Array:
    """Detach a torch tensor from the autograd graph; numpy arrays are returned
    unchanged."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return array
    return array.detach()


# ======================================================================== #
# linear algebra                                                           #
# ======================================================================== #


def dot(a: Array, b: Array) -> Array:
    """``a @ b.T`` for ``a`` of shape ``(..., n)`` and 2-D ``b`` of shape
    ``(m, n)``, giving shape ``(..., m)``."""
    if not torch_jit_is_scripting():
        if not _check_same_kind(a, b):
            return np.matmul(a, b.T)
    return torch.matmul(a, b.T)


def matmul(a: Array, b: Array) -> Array:
    """Matrix product ``a @ b``."""
    if not torch_jit_is_scripting():
        if not _check_same_kind(a, b):
            return np.matmul(a, b)
    return torch.matmul(a, b)


def lstsq(
    X: Array, Y: Array, rcond: Optional[float], driver: Optional[str] = None
) -> Array:
    """Least-squares solution ``w`` of ``X w = Y`` (2-D arrays). ``driver`` is
    only used by torch."""
    if not torch_jit_is_scripting():
        if not _check_same_kind(X, Y):
            return np.linalg.lstsq(X, Y, rcond=rcond)[0]
    result = torch.linalg.lstsq(X, Y, rcond=rcond, driver=driver)
    return result.solution


def solve(X: Array, Y: Array) -> Array:
    """Solution ``w`` of the square linear system ``X w = Y``."""
    if not torch_jit_is_scripting():
        if not _check_same_kind(X, Y):
            return np.linalg.solve(X, Y)
    return torch.linalg.solve(X, Y)


# ======================================================================== #
# labels helpers                                                           #
# ======================================================================== #


def unique(array: Array, axis: Optional[int] = None, return_inverse: bool = False):
    """Sorted unique entries (rows with ``axis=0``) of ``array``, and optionally
    (outside TorchScript) the inverse mapping (a 1-D int array, for each input
    entry the position of its unique entry)."""
    if not torch_jit_is_scripting():
        return _eager_unique(array, axis, return_inverse)
    if return_inverse:
        raise ValueError("use `unique_rows` to get the inverse mapping in TorchScript")
    result = torch.unique(array, sorted=True, dim=axis)
    return result


def argsort_labels_values(values: Array, reverse: bool = False) -> Array:
    """Positions sorting the rows of a 2-D integer array lexicographically (first
    column first), reversed if ``reverse``. Returns a numpy ``intp`` array for
    numpy input and an int64 tensor for torch input."""
    if not torch_jit_is_scripting():
        return _eager_argsort_labels_values(values, reverse)
    count = int(values.shape[0])
    order = torch.arange(count, dtype=torch.int64, device=values.device)
    n_columns = int(values.shape[1])
    for i in range(n_columns):
        column = values[:, n_columns - 1 - i].index_select(0, order)
        _, sorted_order = torch.sort(column, stable=True)
        order = order.index_select(0, sorted_order)
    if reverse:
        order = torch.flip(order, [0])
    return order


# ======================================================================== #
# join / slice / sort / reductions helpers                                 #
# ======================================================================== #


def arange_like(count: int, like: Array) -> Array:
    """``[0, 1, ..., count - 1]`` as a 1-D int64 array with the kind and device of
    ``like``."""
    if not torch_jit_is_scripting():
        if not is_torch_array(like):
            _check_numpy(like)
            return np.arange(count, dtype=np.int64)
    return torch.arange(count, dtype=torch.int64, device=like.device)


def nonzero(mask: Array) -> Array:
    """Positions of the true entries of a 1-D boolean ``mask`` (int64 for
    torch, intp for numpy)."""
    if not torch_jit_is_scripting():
        if not is_torch_array(mask):
            _check_numpy(mask)
            return np.flatnonzero(mask)
    return torch.nonzero(mask).reshape(-1)


def bincount(index: Array, minlength: int, like: Array) -> Array:
    """How many times each integer of ``[0, minlength)`` appears in the 1-D
    ``index``, with the kind, dtype and device of ``like``."""
    if not torch_jit_is_scripting():
        if not is_torch_array(like):
            _check_numpy(like)
            index = index_like(index, like)
            return np.bincount(index, minlength=minlength).astype(like.dtype)
    counts = torch.bincount(index_like(index, like), minlength=minlength)
    return counts.to(dtype=like.dtype)


def segment_sum(array: Array, index: Array, n_segments: int, axis: int = 0) -> Array:
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
        if not torch_jit_is_scripting():
            if not is_torch_array(array):
                _check_numpy(array)
                return np.sum(array, axis=axis, keepdims=True)
        return array.sum(dim=axis, keepdim=True)

    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            return _numpy_segment_sum(array, index, n_segments, axis)

    shape = [int(s) for s in array.shape]
    shape[axis] = n_segments
    output = torch.zeros(shape, dtype=array.dtype, device=array.device)
    return output.index_add(axis, index_like(index, array), array)


def inverse_positions(positions: Array, count: int) -> Array:
    """For ``positions``, a 1-D integer array of distinct entries of ``[0,
    count)``, the int64 array ``result`` of size ``count`` such that
    ``result[positions[i]] = i``, with -1 for the entries not in ``positions``.
    The result has the kind and device of ``positions``."""
    if not torch_jit_is_scripting():
        if not is_torch_array(positions):
            _check_numpy(positions)
            result = np.full(count, -1, dtype=np.int64)
            result[positions] = np.arange(positions.shape[0], dtype=np.int64)
            return result
    result = torch.full((count,), -1, dtype=torch.int64, device=positions.device)
    n_positions = int(positions.shape[0])
    result[positions.to(torch.int64)] = torch.arange(
        n_positions, dtype=torch.int64, device=positions.device
    )
    return result


def astype_like(array: Array, like: Array) -> Array:
    """Convert ``array`` to the dtype of ``like`` (no copy if it already has
    it)."""
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            return array.astype(like.dtype, copy=False)
    return array.to(dtype=like.dtype)


def scatter_rows(array: Array, index: Array, n_rows: int) -> Array:
    """A new array with ``n_rows`` rows (the other dimensions as ``array``),
    containing ``array[i]`` at row ``index[i]`` and zeros in the other rows
    (differentiable with torch: ``index_copy`` on fresh zeros)."""
    shape = [int(s) for s in array.shape]
    shape[0] = n_rows
    if not torch_jit_is_scripting():
        if not is_torch_array(array):
            _check_numpy(array)
            output = np.zeros(shape, dtype=array.dtype)
            output[index_like(index, array)] = array
            return output
    output = torch.zeros(shape, dtype=array.dtype, device=array.device)
    return output.index_copy(0, index_like(index, array), array)


def unique_rows(values: Array) -> Tuple[Array, Array]:
    """Sorted (lexicographically) unique rows of a 2-D integer array, and for each
    row the position of its unique row (int64). Both results have the kind and
    device of ``values``."""
    if not torch_jit_is_scripting():
        result = _eager_unique_rows(values)
        if result is not None:
            return result
    count = int(values.shape[0])
    if count == 0 or int(values.shape[1]) == 0:
        unique = values[: (0 if count == 0 else 1)]
        return unique, torch.zeros(count, dtype=torch.int64, device=values.device)
    unique, inverse = torch.unique(values, sorted=True, return_inverse=True, dim=0)
    return unique, inverse.reshape(-1)


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
    if not torch_jit_is_scripting():
        # labels on CPU: do everything with numpy
        result = _eager_merge_gradient_rows(gradient_samples, sample_groups)
        if result is not None:
            return result
    groups = index_like(sample_groups, gradient_samples)
    rows = groups[gradient_samples[:, 0].to(torch.int64)]
    merged = torch.cat(
        [rows.to(gradient_samples.dtype).reshape(-1, 1), gradient_samples[:, 1:]],
        dim=1,
    )
    if merged.shape[0] == 0:
        return merged, torch.zeros(0, dtype=torch.int64, device=merged.device)
    return unique_rows(merged)


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
    if not torch_jit_is_scripting():
        # labels on CPU: do everything with numpy
        result = _eager_select_gradient_rows(gradient_samples, positions, n_samples)
        if result is not None:
            return result
    new_position = inverse_positions(index_like(positions, gradient_samples), n_samples)
    row_sample = new_position[gradient_samples[:, 0].to(torch.int64)]
    keep = torch.nonzero(row_sample >= 0).reshape(-1)
    new_samples = gradient_samples.index_select(0, keep)
    first = row_sample.index_select(0, keep).to(gradient_samples.dtype)
    new_samples = torch.cat([first.reshape(-1, 1), new_samples[:, 1:]], dim=1)
    return keep, new_samples
