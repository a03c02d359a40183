"""Saving and loading metatensor data to and from ``.mts`` files.

A ``.mts`` file is a ZIP archive of NPY files (see the format description in the
documentation); a Labels file is a single NPY file. The files written here are
byte-for-byte identical to the ones written by the reference implementation of
metatensor, and all files written by it can be loaded.

Differences with the reference implementation:

- there are no C callbacks: ``create_array`` functions given to the
  ``*_custom_array`` functions receive the loaded data as a native-endian,
  C-contiguous, writable numpy array, and return the array to store in the
  blocks (see :py:func:`create_numpy_array` and :py:func:`create_torch_array`);
- :py:func:`load` and :py:func:`load_block` can memory-map the data of
  uncompressed files with ``mmap=True``;
- saving to a path is atomic: the data is written to a temporary file next to
  the destination (a new name for each call), flushed to the disk and renamed
  over the destination only once complete; the temporary files left by a
  killed save are removed by the next save of the same destination.

Loading never executes code from the file (NPY headers are parsed with a small
literal parser and ``np.load`` is always used with ``allow_pickle=False``), and
any malformed data raises :py:class:`metatensor.MetatensorError`.
"""

import pathlib
from typing import Any, BinaryIO, Callable, Union

import numpy as np

from . import _load, _save


__all__ = [
    "create_numpy_array",
    "create_torch_array",
    "load",
    "load_block",
    "load_block_buffer",
    "load_block_buffer_custom_array",
    "load_block_custom_array",
    "load_buffer",
    "load_buffer_custom_array",
    "load_custom_array",
    "load_labels",
    "load_labels_buffer",
    "save",
    "save_buffer",
]

PathOrFile = Union[str, pathlib.Path, BinaryIO]
Buffer = Union[bytes, bytearray, memoryview]
CreateArrayCallback = Callable[[np.ndarray], Any]


def create_numpy_array(array: np.ndarray) -> np.ndarray:
    """Callback for the ``*_custom_array`` functions creating numpy arrays: it
    returns the loaded data (a native-endian, C-contiguous, writable numpy array)
    as-is. This is what :py:func:`load` uses.

    :param array: the loaded data
    """
    return array


def create_torch_array(array: np.ndarray):
    """Callback for the ``*_custom_array`` functions creating torch tensors on
    CPU, sharing memory with the loaded data (``torch.from_numpy``).

    :param array: the loaded data
    """
    import torch

    return torch.from_numpy(array)


# ============================================================================ #
# saving


def save(file: PathOrFile, data, use_numpy: bool = False) -> None:
    """Save ``data`` (:py:class:`Labels`, :py:class:`TensorBlock` or
    :py:class:`TensorMap`) to ``file``.

    With the native writer (the default), a str or :py:class:`pathlib.Path`
    that does not end with ``.mts`` gets this extension appended (with a
    warning). Saving to a path is atomic: the data goes to a temporary file in
    the same folder, which is flushed to disk and then moved to its final
    location; on failure the temporary file is removed and any previous file is
    left untouched. Binary file-like objects receive the bytes directly.

    With ``use_numpy=True``, TensorBlock and TensorMap are written with
    ``np.savez`` to exactly the given path (``info.json`` is then appended with
    :py:mod:`zipfile`). This option is ignored for Labels.

    Data is always written in C order and little-endian, whatever the layout of
    the arrays; torch tensors are detached and copied to CPU if needed.

    :param file: where to save the data: a str, a :py:class:`pathlib.Path` or a
        writable binary file-like object
    :param data: the data to save
    :param use_numpy: use numpy to write the file instead of the native writer
    """
    kind = _save.check_data(data)
    if isinstance(file, (str, pathlib.PurePath)):
        _save.save_path(file, data, kind, use_numpy)
    elif hasattr(file, "write"):
        file.write(_save.save_bytes(data, kind, use_numpy))
    else:
        raise TypeError(
            "`file` must be a str, a pathlib.Path or a binary file-like object, "
            f"not {type(file)}"
        )


def save_buffer(data, use_numpy: bool = False) -> memoryview:
    """Serialize ``data`` (:py:class:`Labels`, :py:class:`TensorBlock` or
    :py:class:`TensorMap`) to an in-memory buffer, with the same content as
    :py:func:`save` would write to a file.

    :param data: the data to save
    :param use_numpy: use numpy to write the data instead of the native writer
        (ignored for Labels)
    """
    kind = _save.check_data(data)
    return memoryview(_save.save_bytes(data, kind, use_numpy))


# ============================================================================ #
# loading


def _read_file_like(file) -> bytes:
    if not hasattr(file, "read"):
        hint = ""
        if isinstance(file, (bytes, bytearray, memoryview)):
            hint = ", use the `*_buffer` functions to load data from a buffer"
        raise TypeError(
            "`file` must be a str, a pathlib.Path or a binary file-like object, "
            f"not {type(file)}{hint}"
        )
    buffer = file.read()
    if not isinstance(buffer, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"the file-like object must be opened in binary mode, read() returned "
            f"{type(buffer)}"
        )
    return buffer


def _load_any(file, kind: str, create_array, mmap: bool):
    if isinstance(file, (str, pathlib.PurePath)):
        return _load.load_path(file, kind, create_array, mmap=mmap)
    return _load.load_buffer(_read_file_like(file), kind, create_array)


def load(file: PathOrFile, use_numpy: bool = False, mmap: bool = False):
    """Load a :py:class:`TensorMap` from ``file``.

    :param file: a str, a :py:class:`pathlib.Path` or a binary file-like object
    :param use_numpy: load the data with ``np.load`` instead of the native loader
    :param mmap: memory-map the data instead of reading it (only for paths to
        files with uncompressed members, otherwise the data is read). The arrays
        are mapped copy-on-write: they are writable, and modifications are never
        written back to the file. Checksums are not verified in this mode, and the
        arrays might not be aligned in memory. The file must not be modified in
        place while the data is in use (:py:func:`save` is safe: it replaces the
        file instead of overwriting it).
    """
    if use_numpy:
        return _load.load_numpy(_numpy_file(file), "tensor")
    return _load_any(file, "tensor", create_numpy_array, mmap)


def load_buffer(buffer: Buffer, use_numpy: bool = False):
    """Load a :py:class:`TensorMap` from an in-memory ``buffer``.

    :param buffer: the serialized data (bytes, bytearray or memoryview)
    :param use_numpy: load the data with ``np.load`` instead of the native loader
    """
    if use_numpy:
        return _load.load_numpy(_numpy_buffer(buffer, "TensorMap"), "tensor")
    return _load.load_buffer(buffer, "tensor", create_numpy_array)


def load_block(file: PathOrFile, use_numpy: bool = False, mmap: bool = False):
    """Load a :py:class:`TensorBlock` from ``file``.

    :param file: a str, a :py:class:`pathlib.Path` or a binary file-like object
    :param use_numpy: load the data with ``np.load`` instead of the native loader
    :param mmap: memory-map the data instead of reading it, see :py:func:`load`
    """
    if use_numpy:
        return _load.load_numpy(_numpy_file(file), "block")
    return _load_any(file, "block", create_numpy_array, mmap)


def load_block_buffer(buffer: Buffer, use_numpy: bool = False):
    """Load a :py:class:`TensorBlock` from an in-memory ``buffer``.

    :param buffer: the serialized data (bytes, bytearray or memoryview)
    :param use_numpy: load the data with ``np.load`` instead of the native loader
    """
    if use_numpy:
        return _load.load_numpy(_numpy_buffer(buffer, "TensorBlock"), "block")
    return _load.load_buffer(buffer, "block", create_numpy_array)


def load_labels(file: PathOrFile):
    """Load :py:class:`Labels` from ``file``. The values are always a read-only
    numpy array.

    :param file: a str, a :py:class:`pathlib.Path` or a binary file-like object
    """
    return _load_any(file, "labels", create_numpy_array, False)


def load_labels_buffer(buffer: Buffer):
    """Load :py:class:`Labels` from an in-memory ``buffer``.

    :param buffer: the serialized data (bytes, bytearray or memoryview)
    """
    return _load.load_buffer(buffer, "labels", create_numpy_array)


def load_custom_array(
    path: PathOrFile, create_array: CreateArrayCallback, mmap: bool = False
):
    """Load a :py:class:`TensorMap` from ``path``, creating the arrays with
    ``create_array``.

    :param path: a str, a :py:class:`pathlib.Path` or a binary file-like object
    :param create_array: function taking the loaded data (a native-endian,
        C-contiguous, writable numpy array) and returning the array to store in
        the blocks, for example :py:func:`create_numpy_array` or
        :py:func:`create_torch_array`
    :param mmap: memory-map the data instead of reading it, see :py:func:`load`
    """
    return _load_any(path, "tensor", create_array, mmap)


def load_buffer_custom_array(buffer: Buffer, create_array: CreateArrayCallback):
    """Load a :py:class:`TensorMap` from an in-memory ``buffer``, creating the
    arrays with ``create_array`` (see :py:func:`load_custom_array`).

    :param buffer: the serialized data (bytes, bytearray or memoryview)
    :param create_array: function creating the arrays from numpy data
    """
    return _load.load_buffer(buffer, "tensor", create_array)


def load_block_custom_array(
    path: PathOrFile, create_array: CreateArrayCallback, mmap: bool = False
):
    """Load a :py:class:`TensorBlock` from ``path``, creating the arrays with
    ``create_array`` (see :py:func:`load_custom_array`).

    :param path: a str, a :py:class:`pathlib.Path` or a binary file-like object
    :param create_array: function creating the arrays from numpy data
    :param mmap: memory-map the data instead of reading it, see :py:func:`load`
    """
    return _load_any(path, "block", create_array, mmap)


def load_block_buffer_custom_array(buffer: Buffer, create_array: CreateArrayCallback):
    """Load a :py:class:`TensorBlock` from an in-memory ``buffer``, creating the
    arrays with ``create_array`` (see :py:func:`load_custom_array`).

    :param buffer: the serialized data (bytes, bytearray or memoryview)
    :param create_array: function creating the arrays from numpy data
    """
    return _load.load_buffer(buffer, "block", create_array)


# ============================================================================ #
# helpers for the numpy loader


def _numpy_file(file):
    if isinstance(file, (str, pathlib.PurePath)):
        return file
    import io

    return io.BytesIO(_read_file_like(file))


def _numpy_buffer(buffer, name: str):
    import io

    from .._errors import serialization_error

    try:
        data = memoryview(buffer).tobytes()
    except TypeError:
        raise TypeError(
            f"`buffer` must be bytes, bytearray or memoryview, not {type(buffer)}"
        ) from None
    if len(data) == 0:
        raise serialization_error(f"unable to load {name} from empty buffer")
    return io.BytesIO(data)
