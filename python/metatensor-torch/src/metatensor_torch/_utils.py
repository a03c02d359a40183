"""Small TorchScript-compatible utilities."""

import torch

from ._version import __version__


def _version() -> str:
    return "0.3.0"


def version() -> str:
    """Version of the metatensor-torch library (the same as ``__version__``)."""
    return _version()


def dtype_name(dtype: torch.dtype) -> str:
    """Name of a torch dtype, for example ``"torch.float64"`` (this also works
    in TorchScript, where dtypes are integers).

    :param dtype: the dtype
    """
    if dtype == torch.float64:
        return "torch.float64"
    elif dtype == torch.float32:
        return "torch.float32"
    elif dtype == torch.float16:
        return "torch.float16"
    elif dtype == torch.bfloat16:
        return "torch.bfloat16"
    elif dtype == torch.int64:
        return "torch.int64"
    elif dtype == torch.int32:
        return "torch.int32"
    elif dtype == torch.int16:
        return "torch.int16"
    elif dtype == torch.int8:
        return "torch.int8"
    elif dtype == torch.uint8:
        return "torch.uint8"
    elif dtype == torch.bool:
        return "torch.bool"
    elif dtype == torch.complex64:
        return "torch.complex64"
    elif dtype == torch.complex128:
        return "torch.complex128"
    else:
        return "unknown dtype " + str(dtype)


assert _version() == __version__, "update `_version` in metatensor_torch/_utils.py"
