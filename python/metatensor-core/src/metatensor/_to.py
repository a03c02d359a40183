"""Argument parsing and conversions shared by ``Labels.to``, ``TensorBlock.to`` and
``TensorMap.to``."""

from typing import Any, NamedTuple, Optional, Tuple

import numpy as np

from . import _array


class ToArguments(NamedTuple):
    """Parsed arguments of a ``to()`` call."""

    dtype: Any
    device: Any
    arrays: Optional[str]
    non_blocking: bool


def _is_dtype_like(value: Any) -> bool:
    if _array.is_torch_dtype(value) or isinstance(value, np.dtype):
        return True
    if isinstance(value, str):
        return False
    try:
        dt = np.dtype(value)
    except (TypeError, ValueError):
        return False
    return np.issubdtype(dt, np.number) or np.issubdtype(dt, np.bool_)


def parse_to_arguments(
    context: str,
    args: Tuple[Any, ...],
    dtype: Any = None,
    device: Any = None,
    arrays: Optional[str] = None,
    non_blocking: bool = False,
) -> ToArguments:
    """Parse the positional and keyword arguments of ``to()``.

    :param context: name of the function for error messages, e.g.
        ``"`TensorBlock.to`"``
    :param args: positional arguments, each a device (``str`` or ``torch.device``)
        or a dtype (``torch.dtype``, ``np.dtype`` or anything ``np.dtype()`` maps
        to a number type)
    :param dtype: dtype given as keyword argument
    :param device: device given as keyword argument
    :param arrays: ``"numpy"``, ``"torch"`` or ``None`` to keep the current one
    :param non_blocking: passed on to torch when moving data between devices
    """
    for arg in args:
        if isinstance(arg, str) or _array.is_torch_device(arg):
            if device is not None:
                raise ValueError(f"can not give a device twice in {context}")
            device = arg
        elif _is_dtype_like(arg):
            if dtype is not None:
                raise ValueError(f"can not give a dtype twice in {context}")
            dtype = arg
        else:
            raise TypeError(f"unexpected type in {context}: {type(arg)}")

    if arrays is not None and arrays not in ("numpy", "torch"):
        raise ValueError(f"unknown array backend: '{arrays}'")

    return ToArguments(dtype, device, arrays, bool(non_blocking))


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "torch is required to convert arrays to torch tensors"
        ) from e
    return torch


def _numpy_dtype_of_torch(dtype: Any) -> Any:
    torch = _torch()
    # explicitly on the CPU: the default device of torch can be a GPU
    return torch.empty(0, dtype=dtype, device="cpu").numpy().dtype


def _torch_dtype_of_numpy(dtype: Any) -> Any:
    torch = _torch()
    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype


def convert_array(
    array: Any,
    dtype: Any = None,
    device: Any = None,
    arrays: Optional[str] = None,
    non_blocking: bool = False,
) -> Any:
    """Convert ``array`` to another backend, then dtype, then device.

    :param array: numpy array, torch tensor or array API array
    :param dtype: new dtype (numpy or torch dtype; converted to the backend's), or
        ``None`` to keep it
    :param device: new device, or ``None`` to keep it
    :param arrays: ``"numpy"``, ``"torch"`` or ``None``
    :param non_blocking: passed on to torch
    """
    kind = _array.array_kind(array)

    if arrays == "torch" and kind != _array.TORCH:
        torch = _torch()
        numpy_array = _array.to_numpy(array)
        if not numpy_array.flags.writeable:
            numpy_array = numpy_array.copy()
        array = torch.from_numpy(numpy_array)
        kind = _array.TORCH
    elif arrays == "numpy" and kind != _array.NUMPY:
        array = _array.to_numpy(array)
        kind = _array.NUMPY

    if dtype is not None:
        if kind == _array.NUMPY:
            if _array.is_torch_dtype(dtype):
                dtype = _numpy_dtype_of_torch(dtype)
            array = array.astype(dtype, copy=False)
        elif kind == _array.TORCH:
            if not _array.is_torch_dtype(dtype):
                dtype = _torch_dtype_of_numpy(dtype)
            array = array.to(dtype=dtype)
        else:
            array = _array.astype(array, dtype)

    if device is not None:
        if kind == _array.NUMPY:
            device_str = str(device)
            if device_str != "cpu":
                raise ValueError(
                    f"can not move numpy array to non-cpu device: {device}"
                )
        elif kind == _array.TORCH:
            array = array.to(device=device, non_blocking=non_blocking)
        else:
            array = _array.namespace(array).asarray(array, device=device)

    return array
