"""Serialization of metatensor.torch data to the ``.mts`` format.

The files and buffers are the same as the ones of metatensor-core: the data is
converted to metatensor-core classes (holding the same torch tensors) and
written by :py:mod:`metatensor.io`.

In TorchScript, these functions compile (so that code using them can be
scripted) but raise a ``RuntimeError`` when called: TorchScript has no way to
write raw bytes or reinterpret tensors (see the documentation). Use them from
Python code.
"""

import pathlib
from typing import Union

import torch

from ._block import TensorBlock
from ._labels import Labels, _not_in_torchscript
from ._tensor import TensorMap


def _check_buffer(buffer) -> bytes:
    if not isinstance(buffer, torch.Tensor):
        raise TypeError(f"`buffer` must be a torch.Tensor, not {type(buffer)}")
    if buffer.dtype != torch.uint8:
        raise ValueError(f"`buffer` must be a tensor of uint8, not {buffer.dtype}")
    if buffer.dim() != 1:
        raise ValueError(
            f"`buffer` must be a 1-dimensional tensor, got {buffer.dim()} dimensions"
        )
    if buffer.device.type != "cpu":
        raise ValueError(f"`buffer` must be on the CPU device, not {buffer.device}")
    if not buffer.is_contiguous():
        raise ValueError("`buffer` must be a contiguous tensor")
    return memoryview(buffer.numpy())


def _path_or_bytes(file):
    if isinstance(file, (str, pathlib.Path)):
        return file
    if hasattr(file, "read"):
        return file
    raise TypeError(
        f"`file` must be a str, a pathlib.Path or a file-like object, not {type(file)}"
    )


def _load_eager(loader: str, source):
    """Load data with the ``metatensor.io`` function called ``loader`` and
    convert it to the classes of this package. The ``*_custom_array`` loaders
    create torch tensors directly."""
    import metatensor.io

    from ._convert import from_core

    load = getattr(metatensor.io, loader)
    if loader.endswith("_custom_array"):
        return from_core(load(source, metatensor.io.create_torch_array))
    return from_core(load(source))


def _core_data(data):
    from ._convert import to_core

    if not isinstance(data, (Labels, TensorBlock, TensorMap)):
        raise TypeError(
            "`data` must be one of 'Labels', 'TensorBlock' or 'TensorMap', "
            f"not {type(data)}"
        )
    return to_core(data)


def _save_eager(file, data):
    import metatensor.io

    metatensor.io.save(_path_or_bytes(file), _core_data(data))


def _save_buffer_eager(data) -> torch.Tensor:
    import metatensor.io

    buffer = metatensor.io.save_buffer(_core_data(data))
    return torch.frombuffer(bytearray(buffer), dtype=torch.uint8)


def load(file: str) -> TensorMap:
    """Load a :py:class:`TensorMap` from a ``.mts`` file.

    :param file: path to the file (``str``; ``pathlib.Path`` and binary
        file-like objects are also accepted from Python)
    """
    if torch.jit.is_scripting():
        raise RuntimeError(_not_in_torchscript("metatensor.torch.load"))
    else:
        return _load_eager("load_custom_array", _path_or_bytes(file))


def load_block(file: str) -> TensorBlock:
    """Load a :py:class:`TensorBlock` from a ``.mts`` file.

    :param file: path to the file (see :py:func:`load`)
    """
    if torch.jit.is_scripting():
        raise RuntimeError(_not_in_torchscript("metatensor.torch.load_block"))
    else:
        return _load_eager("load_block_custom_array", _path_or_bytes(file))


def load_labels(file: str) -> Labels:
    """Load :py:class:`Labels` from a ``.mts`` file.

    :param file: path to the file (see :py:func:`load`)
    """
    if torch.jit.is_scripting():
        raise RuntimeError(_not_in_torchscript("metatensor.torch.load_labels"))
    else:
        return _load_eager("load_labels", _path_or_bytes(file))


def load_buffer(buffer: torch.Tensor) -> TensorMap:
    """Load a :py:class:`TensorMap` from an in-memory buffer.

    :param buffer: 1-D, contiguous, CPU tensor of ``uint8``
    """
    if torch.jit.is_scripting():
        raise RuntimeError(_not_in_torchscript("metatensor.torch.load_buffer"))
    else:
        return _load_eager("load_buffer_custom_array", _check_buffer(buffer))


def load_block_buffer(buffer: torch.Tensor) -> TensorBlock:
    """Load a :py:class:`TensorBlock` from an in-memory buffer.

    :param buffer: 1-D, contiguous, CPU tensor of ``uint8``
    """
    if torch.jit.is_scripting():
        raise RuntimeError(_not_in_torchscript("metatensor.torch.load_block_buffer"))
    else:
        return _load_eager("load_block_buffer_custom_array", _check_buffer(buffer))


def load_labels_buffer(buffer: torch.Tensor) -> Labels:
    """Load :py:class:`Labels` from an in-memory buffer.

    :param buffer: 1-D, contiguous, CPU tensor of ``uint8``
    """
    if torch.jit.is_scripting():
        raise RuntimeError(_not_in_torchscript("metatensor.torch.load_labels_buffer"))
    else:
        return _load_eager("load_labels_buffer", _check_buffer(buffer))


def save(file: str, data: Union[TensorMap, TensorBlock, Labels]):
    """Save ``data`` to a ``.mts`` file (the extension is added if missing).

    :param file: path to the file (``str``; ``pathlib.Path`` and binary
        file-like objects are also accepted from Python)
    :param data: the data to save
    """
    if torch.jit.is_scripting():
        raise RuntimeError(_not_in_torchscript("metatensor.torch.save"))
    else:
        _save_eager(file, data)


def save_buffer(data: Union[TensorMap, TensorBlock, Labels]) -> torch.Tensor:
    """Save ``data`` to an in-memory buffer, a 1-D ``uint8`` CPU tensor with the
    same content as a ``.mts`` file.

    :param data: the data to save
    """
    if torch.jit.is_scripting():
        raise RuntimeError(_not_in_torchscript("metatensor.torch.save_buffer"))
    else:
        return _save_buffer_eager(data)
