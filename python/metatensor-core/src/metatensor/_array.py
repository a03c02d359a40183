"""Internal array dispatch layer.

Answers "what kind of array is this" without importing optional libraries (torch is
only looked up in ``sys.modules``: if torch was never imported, no object can be a
torch tensor), and provides the handful of array functions the core needs for numpy
arrays, torch tensors and any array implementing the Python array API standard
(``__array_namespace__``).

Everything here takes and returns arrays of the same kind as its input, except
:py:func:`to_numpy` which always returns a CPU numpy array.
"""

import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np


NUMPY = "numpy"
TORCH = "torch"
ARRAY_API = "array_api"

_KIND_CACHE: Dict[type, Optional[str]] = {np.ndarray: NUMPY}


def torch_module():
    """The ``torch`` module if it was already imported by someone, else ``None``."""
    return sys.modules.get("torch")


def array_kind(array: Any) -> Optional[str]:
    """Which kind of array ``array`` is: ``"numpy"``, ``"torch"``, ``"array_api"``,
    or ``None`` if this is not an array we support.

    Numpy scalars and subclasses of ``np.ndarray`` count as numpy. The answer is
    cached by type, so this is cheap in hot paths.
    """
    cls = type(array)
    try:
        return _KIND_CACHE[cls]
    except KeyError:
        pass

    kind: Optional[str] = None
    if issubclass(cls, np.ndarray):
        kind = NUMPY
    else:
        torch = torch_module()
        if torch is not None and issubclass(cls, torch.Tensor):
            kind = TORCH
        elif hasattr(cls, "__array_namespace__"):
            kind = ARRAY_API
    _KIND_CACHE[cls] = kind
    return kind


def is_numpy(array: Any) -> bool:
    """Is ``array`` a numpy array?"""
    return array_kind(array) == NUMPY


def is_torch(array: Any) -> bool:
    """Is ``array`` a torch tensor? Never imports torch."""
    return array_kind(array) == TORCH


def is_array(array: Any) -> bool:
    """Is ``array`` any supported array (numpy, torch or array API)?"""
    return array_kind(array) is not None


def is_torch_device(obj: Any) -> bool:
    """Is ``obj`` a ``torch.device``? Never imports torch."""
    torch = torch_module()
    return torch is not None and isinstance(obj, torch.device)


def is_torch_dtype(obj: Any) -> bool:
    """Is ``obj`` a ``torch.dtype``? Never imports torch."""
    torch = torch_module()
    return torch is not None and isinstance(obj, torch.dtype)


def namespace(array: Any):
    """The array API namespace of an array API array."""
    return array.__array_namespace__()


def origin(array: Any) -> str:
    """The "origin" of an array, used in error messages and to check that blocks
    and gradients use the same kind of arrays: ``"python.numpy"``,
    ``"python.torch"`` or ``"python.<module>"`` for array API arrays."""
    kind = array_kind(array)
    if kind == NUMPY:
        return "python.numpy"
    elif kind == TORCH:
        return "python.torch"
    elif kind == ARRAY_API:
        return "python." + type(array).__module__.split(".")[0]
    raise TypeError(f"unsupported array type: {type(array)}")


def device(array: Any):
    """The device of an array: ``"cpu"`` for numpy, a ``torch.device`` for torch
    and the array's own ``device`` attribute for array API arrays."""
    kind = array_kind(array)
    if kind == NUMPY:
        return "cpu"
    return array.device


def device_name(device_or_array: Any) -> str:
    """A normalized device name, like the reference's ``CPU:0``, ``CUDA:0``,
    ``ExtDev:0`` (torch ``meta``) or ``Metal:0``. Accepts an array or a device."""
    dev = device_or_array
    if is_array(device_or_array):
        dev = device(device_or_array)

    if is_torch_device(dev):
        index = dev.index if dev.index is not None else 0
        if dev.type == "cpu":
            return "CPU:0"
        elif dev.type == "cuda":
            return f"CUDA:{index}"
        elif dev.type == "mps":
            return f"Metal:{index}"
        else:
            return f"ExtDev:{index}"

    text = str(dev).lower()
    if text == "cpu" or "cpu" in text:
        return "CPU:0"
    elif text.startswith("cuda"):
        return "CUDA:" + (text.split(":")[1] if ":" in text else "0")
    return str(dev)


def same_device(a: Any, b: Any) -> bool:
    """Are the two arrays on the same device?"""
    return device_name(a) == device_name(b)


_NUMPY_DTYPE_NAMES = {
    np.dtype(np.float16): "f16",
    np.dtype(np.float32): "f32",
    np.dtype(np.float64): "f64",
    np.dtype(np.int8): "i8",
    np.dtype(np.int16): "i16",
    np.dtype(np.int32): "i32",
    np.dtype(np.int64): "i64",
    np.dtype(np.uint8): "u8",
    np.dtype(np.uint16): "u16",
    np.dtype(np.uint32): "u32",
    np.dtype(np.uint64): "u64",
    np.dtype(np.bool_): "bool",
    np.dtype(np.complex64): "complex64",
    np.dtype(np.complex128): "complex128",
}


def dtype(array: Any):
    """The dtype of an array (a numpy, torch or array API dtype object)."""
    return array.dtype


def dtype_name(array_or_dtype: Any) -> str:
    """Short dtype name used in error messages (``f64``, ``i32``, ``bool``,
    ``complex128``, ``bfloat16``, ...). Accepts an array or a dtype."""
    dt = array_or_dtype.dtype if is_array(array_or_dtype) else array_or_dtype
    if is_torch_dtype(dt) or not isinstance(dt, (np.dtype, type)):
        # torch dtypes and array API dtypes like `array_api_strict.float64`
        name = str(dt).split(".")[-1]
        mapping = {
            "float16": "f16",
            "float32": "f32",
            "float64": "f64",
            "int8": "i8",
            "int16": "i16",
            "int32": "i32",
            "int64": "i64",
            "uint8": "u8",
            "uint16": "u16",
            "uint32": "u32",
            "uint64": "u64",
            "bool": "bool",
            "complex64": "complex64",
            "complex128": "complex128",
            "bfloat16": "bfloat16",
        }
        return mapping.get(name, name)
    try:
        return _NUMPY_DTYPE_NAMES[np.dtype(dt)]
    except (TypeError, KeyError):
        return str(dt)


def shape(array: Any) -> Tuple[int, ...]:
    """The shape of an array as a tuple of python ints."""
    return tuple(int(s) for s in array.shape)


def to_numpy(array: Any) -> np.ndarray:
    """Convert any supported array to a CPU numpy array (detached from autograd
    for torch). Shares memory when possible."""
    kind = array_kind(array)
    if kind == NUMPY:
        return array
    elif kind == TORCH:
        array = array.detach()
        if array.device.type != "cpu":
            array = array.cpu()
        return array.numpy()
    elif kind == ARRAY_API:
        try:
            return np.from_dlpack(array)
        except Exception:
            return np.asarray(array)
    raise TypeError(f"unsupported array type: {type(array)}")


def from_numpy(array: np.ndarray, like: Any) -> Any:
    """Create an array of the same kind and device as ``like`` from a numpy array.
    The dtype is the one of ``array``. Shares memory when possible (numpy, torch
    CPU)."""
    kind = array_kind(like)
    if kind == NUMPY:
        return array
    elif kind == TORCH:
        torch = torch_module()
        if not array.flags.writeable:
            array = array.copy()
        tensor = torch.from_numpy(array)
        if like.device.type != "cpu":
            tensor = tensor.to(like.device)
        return tensor
    elif kind == ARRAY_API:
        xp = namespace(like)
        return xp.asarray(array, device=like.device)
    raise TypeError(f"unsupported array type: {type(like)}")


def full(shape: Sequence[int], fill_value: Any, like: Any) -> Any:
    """An array of the given shape filled with ``fill_value``, with the kind,
    dtype and device of ``like``."""
    shape = tuple(int(s) for s in shape)
    kind = array_kind(like)
    if kind == NUMPY:
        return np.full(shape, fill_value, dtype=like.dtype)
    elif kind == TORCH:
        torch = torch_module()
        return torch.full(shape, fill_value, dtype=like.dtype, device=like.device)
    elif kind == ARRAY_API:
        xp = namespace(like)
        return xp.full(shape, fill_value, dtype=like.dtype, device=like.device)
    raise TypeError(f"unsupported array type: {type(like)}")


def zeros(shape: Sequence[int], like: Any) -> Any:
    """An array of zeros with the kind, dtype and device of ``like``."""
    return full(shape, 0, like)


def copy(array: Any) -> Any:
    """A deep copy of the array (keeps autograd history for torch)."""
    kind = array_kind(array)
    if kind == NUMPY:
        return array.copy()
    elif kind == TORCH:
        return array.clone()
    elif kind == ARRAY_API:
        xp = namespace(array)
        return xp.asarray(array, copy=True)
    raise TypeError(f"unsupported array type: {type(array)}")


def reshape(array: Any, shape: Sequence[int]) -> Any:
    """Reshape an array."""
    shape = tuple(int(s) for s in shape)
    if array_kind(array) == ARRAY_API:
        return namespace(array).reshape(array, shape)
    return array.reshape(shape)


def moveaxis(array: Any, source: int, destination: int) -> Any:
    """Move one axis of an array to another position."""
    kind = array_kind(array)
    if kind == NUMPY:
        return np.moveaxis(array, source, destination)
    elif kind == TORCH:
        return array.movedim(source, destination)
    elif kind == ARRAY_API:
        xp = namespace(array)
        if hasattr(xp, "moveaxis"):
            return xp.moveaxis(array, source, destination)
        axes = list(range(array.ndim))
        axes.insert(destination % array.ndim, axes.pop(source % array.ndim))
        return xp.permute_dims(array, tuple(axes))
    raise TypeError(f"unsupported array type: {type(array)}")


def concatenate(arrays: List[Any], axis: int = 0) -> Any:
    """Concatenate arrays of the same kind along ``axis``."""
    kind = array_kind(arrays[0])
    if kind == NUMPY:
        return np.concatenate(arrays, axis=axis)
    elif kind == TORCH:
        return torch_module().cat(arrays, dim=axis)
    elif kind == ARRAY_API:
        return namespace(arrays[0]).concat(arrays, axis=axis)
    raise TypeError(f"unsupported array type: {type(arrays[0])}")


def index_tensor(indices: np.ndarray, like: Any) -> Any:
    """Convert integer ``indices`` (numpy) to an index array usable on ``like``."""
    kind = array_kind(like)
    if kind == NUMPY:
        return indices
    elif kind == TORCH:
        torch = torch_module()
        return torch.from_numpy(np.asarray(indices, dtype=np.int64)).to(like.device)
    elif kind == ARRAY_API:
        xp = namespace(like)
        return xp.asarray(np.asarray(indices, dtype=np.int64), device=like.device)
    raise TypeError(f"unsupported array type: {type(like)}")


def take(array: Any, indices: np.ndarray, axis: int = 0) -> Any:
    """Select entries along ``axis`` with integer ``indices`` (a numpy array)."""
    kind = array_kind(array)
    if kind == NUMPY:
        return np.take(array, indices, axis=axis)
    elif kind == TORCH:
        return array.index_select(axis, index_tensor(indices, array))
    elif kind == ARRAY_API:
        xp = namespace(array)
        return xp.take(array, index_tensor(indices, array), axis=axis)
    raise TypeError(f"unsupported array type: {type(array)}")


def set_rows(output: Any, indices: np.ndarray, values: Any) -> None:
    """In-place ``output[indices] = values`` along the first axis."""
    kind = array_kind(output)
    if kind == NUMPY or kind == TORCH:
        output[index_tensor(indices, output)] = values
        return
    elif kind == ARRAY_API:
        # the array API has no integer-array assignment, go through a loop over
        # contiguous chunks
        for i, row in enumerate(np.asarray(indices)):
            output[int(row), ...] = values[i, ...]
        return
    raise TypeError(f"unsupported array type: {type(output)}")


def astype(array: Any, dtype: Any) -> Any:
    """Convert an array to another dtype (no copy if it already has it)."""
    kind = array_kind(array)
    if kind == NUMPY:
        return array.astype(dtype, copy=False)
    elif kind == TORCH:
        return array.to(dtype=dtype)
    elif kind == ARRAY_API:
        return namespace(array).astype(array, dtype, copy=False)
    raise TypeError(f"unsupported array type: {type(array)}")


def requires_grad(array: Any) -> bool:
    """Does this array require gradients (torch only)?"""
    return array_kind(array) == TORCH and bool(array.requires_grad)
