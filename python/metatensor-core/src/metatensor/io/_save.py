"""Serialization of Labels, TensorBlock and TensorMap to ``.mts`` data."""

import collections
import io
import json
import os
import pathlib
import sys
import warnings
import zipfile
from typing import Any, BinaryIO, Deque, Iterator, List, Tuple, Union

import numpy as np

from .. import _array
from .._errors import io_error, serialization_error
from . import _npy, _zip
from ._atomic import write_atomically


# (member name, npy header or b"", data as a flat bytes-like object)
Member = Tuple[bytes, bytes, Any]

# archives larger than this are built in an uninitialized numpy buffer
_LARGE_ARCHIVE = 8 * 1024 * 1024
# maximal size of the members prepared in advance when writing to a file
_WINDOW = 256 * 1024 * 1024


_CLASSES: Any = None


def _classes():
    # imported lazily (the classes import this module lazily too), then cached
    global _CLASSES
    if _CLASSES is None:
        from .._block import TensorBlock
        from .._labels import Labels
        from .._tensor import TensorMap

        _CLASSES = (Labels, TensorBlock, TensorMap)
    return _CLASSES


def check_data(data) -> str:
    """Which kind of object is ``data``: ``"labels"``, ``"block"`` or
    ``"tensor"``; raises ``TypeError`` for anything else."""
    Labels, TensorBlock, TensorMap = _classes()
    if isinstance(data, TensorMap):
        return "tensor"
    elif isinstance(data, TensorBlock):
        return "block"
    elif isinstance(data, Labels):
        return "labels"
    raise TypeError(
        "`data` must be one of 'Labels', 'TensorBlock' or 'TensorMap', "
        f"not {type(data)}"
    )


# ============================================================================ #
# conversion of arrays to bytes


def _as_bytes(array: np.ndarray):
    """Flat ``uint8`` view of a C-contiguous numpy array (no copy)."""
    if array.size == 0:
        return b""
    return array.reshape(-1).view(np.uint8)


def to_numpy_data(array) -> np.ndarray:
    """Convert values (numpy, torch on any device, array API) to a C-contiguous
    little-endian numpy array with one of the supported dtypes."""
    kind = _array.array_kind(array)
    if kind == _array.TORCH:
        torch = _array.torch_module()
        if array.dtype not in _TORCH_DTYPES(torch):
            raise serialization_error(
                f"can not save data with dtype {_array.dtype_name(array)}, only "
                "numeric types supported by numpy can be saved"
            )
        array = array.detach()
        if array.device.type != "cpu":
            array = array.to("cpu")
        array = array.resolve_conj().resolve_neg().numpy()
    elif kind == _array.NUMPY:
        pass
    elif kind == _array.ARRAY_API:
        array = _array.to_numpy(array)
    else:
        raise TypeError(f"unsupported array type: {type(array)}")

    array = np.asarray(array)
    descr = _npy.data_descr(array.dtype)
    if descr is None:
        raise serialization_error(
            f"can not save data with dtype {array.dtype}, only f16, f32, f64, "
            "i8-i64, u8-u64, bool, complex64 and complex128 are supported"
        )

    little = array.dtype.newbyteorder("<")
    if array.dtype != little or not array.flags.c_contiguous:
        array = np.ascontiguousarray(array, dtype=little)
    return array


def _TORCH_DTYPES(torch):
    return (
        torch.float16,
        torch.float32,
        torch.float64,
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.uint8,
        torch.uint16,
        torch.uint32,
        torch.uint64,
        torch.bool,
        torch.complex64,
        torch.complex128,
    )


def labels_values(labels) -> np.ndarray:
    """The values of some Labels as a C-contiguous little-endian int32 array."""
    values = labels.values
    if not _array.is_numpy(values):
        values = _array.to_numpy(values)
    values = np.asarray(values)
    if values.dtype != np.dtype("<i4") or not values.flags.c_contiguous:
        values = np.ascontiguousarray(values, dtype="<i4")
    return values.reshape(len(values), len(labels.names))


def labels_member(labels) -> Tuple[bytes, Any]:
    """NPY header and data for Labels."""
    values = labels_values(labels)
    return _npy.labels_header(list(labels.names), values.shape[0]), _as_bytes(values)


def array_member(array) -> Tuple[bytes, Any]:
    """NPY header and data for block values."""
    array = to_numpy_data(array)
    descr = _npy.data_descr(array.dtype)
    return _npy.data_header(descr, array.shape), _as_bytes(array)


# ============================================================================ #
# members of the archive


class _LabelsMemo:
    """Serialized Labels, re-used when the same Labels object appears multiple
    times in the data (Labels are often shared between blocks)."""

    def __init__(self):
        # id => (labels, header, data); keeping a reference to the labels makes
        # sure the id is not re-used by another object during the save
        self.cache: dict = {}

    def member(self, labels) -> Tuple[bytes, Any]:
        cached = self.cache.get(id(labels))
        if cached is not None and cached[0] is labels:
            return cached[1], cached[2]
        header, data = labels_member(labels)
        self.cache[id(labels)] = (labels, header, data)
        return header, data


def _block_members(
    block, prefix: str, is_gradient: bool, memo: _LabelsMemo
) -> Iterator[Member]:
    header, data = array_member(block.values)
    yield (prefix + "values.npy").encode("utf8"), header, data

    header, data = memo.member(block.samples)
    yield (prefix + "samples.npy").encode("utf8"), header, data

    for i, component in enumerate(block.components):
        header, data = memo.member(component)
        yield (prefix + f"components/{i}.npy").encode("utf8"), header, data

    if not is_gradient:
        header, data = memo.member(block.properties)
        yield (prefix + "properties.npy").encode("utf8"), header, data

    for parameter in sorted(block.gradients_list()):
        yield from _block_members(
            block.gradient(parameter), prefix + f"gradients/{parameter}/", True, memo
        )


def info_json(info) -> bytes:
    """The content of ``info.json``."""
    return json.dumps(dict(info), indent=2, sort_keys=True, ensure_ascii=False).encode(
        "utf8"
    )


def archive_members(data, kind: str) -> Iterator[Member]:
    """All the members of the archive for a TensorMap or a TensorBlock, in
    order."""
    memo = _LabelsMemo()
    if kind == "block":
        yield from _block_members(data, "", False, memo)
        return

    header, payload = labels_member(data.keys)
    yield b"keys.npy", header, payload
    for i in range(len(data.keys)):
        yield from _block_members(data.block_by_id(i), f"blocks/{i}/", False, memo)

    info = data.info()
    if info:
        yield b"info.json", b"", info_json(info)


# ============================================================================ #
# native writer


def _member_crc(header: bytes, data) -> "_zip.CRCResult":
    if len(header) == 0:
        return _zip.crc32_start([data])
    return _zip.crc32_start([header, data])


def _layout(members: List[Member]):
    """Offsets of the local headers of all members, and the offset of the
    central directory."""
    offsets = []
    offset = 0
    for name, header, data in members:
        offsets.append(offset)
        offset += _zip.local_header_size(name) + len(header) + len(data)
    return offsets, offset


def build_archive(members: Iterator[Member]):
    """Build a full archive in memory, returning a bytes-like object."""
    members = list(members)
    # start all CRC computations, large ones run in a thread pool while we copy
    # the data below
    crcs = [_member_crc(header, data) for _, header, data in members]
    offsets, end = _layout(members)

    def entries():
        return [
            _zip.WrittenEntry(name, crc.result(), len(header) + len(data), offset)
            for (name, header, data), crc, offset in zip(members, crcs, offsets)
        ]

    if end < _LARGE_ARCHIVE:
        parts: List[Any] = []
        all_entries = entries()
        for entry, (_, header, data) in zip(all_entries, members):
            parts.append(_zip.local_header(entry.name, entry.crc, entry.size))
            if header:
                parts.append(header)
            parts.append(data)
        parts.append(_zip.central_directory(all_entries, end))
        return b"".join(parts)

    # large archives: copy the data in an uninitialized buffer, without zeroing
    # it first and while the checksums are computed, then fill the headers
    directory_size = len(
        _zip.central_directory(entries_without_crc(members, offsets), end)
    )
    output = np.empty(end + directory_size, dtype=np.uint8)
    for (name, header, data), offset in zip(members, offsets):
        start = offset + _zip.local_header_size(name)
        output[start : start + len(header)] = np.frombuffer(header, dtype=np.uint8)
        start += len(header)
        if len(data) != 0:
            output[start : start + len(data)] = np.frombuffer(data, dtype=np.uint8)

    all_entries = entries()
    for entry in all_entries:
        local = _zip.local_header(entry.name, entry.crc, entry.size)
        output[entry.offset : entry.offset + len(local)] = np.frombuffer(
            local, np.uint8
        )
    directory = _zip.central_directory(all_entries, end)
    output[end:] = np.frombuffer(directory, dtype=np.uint8)
    return output


def entries_without_crc(members: List[Member], offsets: List[int]):
    return [
        _zip.WrittenEntry(name, 0, len(header) + len(data), offset)
        for (name, header, data), offset in zip(members, offsets)
    ]


def write_archive(file: BinaryIO, members: Iterator[Member]) -> None:
    """Write a full archive to ``file``, streaming the members. The checksums
    of the next members are computed in a thread pool while the current one is
    written, keeping at most ~``_WINDOW`` bytes of members in flight."""
    entries = []
    offset = 0
    window: Deque = collections.deque()
    window_bytes = 0
    iterator = iter(members)
    exhausted = False
    while True:
        while not exhausted and (not window or window_bytes < _WINDOW):
            try:
                name, header, data = next(iterator)
            except StopIteration:
                exhausted = True
                break
            window.append((name, header, data, _member_crc(header, data)))
            window_bytes += len(data)

        if not window:
            break

        name, header, data, crc = window.popleft()
        window_bytes -= len(data)

        size = len(header) + len(data)
        crc = crc.result()
        local = _zip.local_header(name, crc, size)
        file.write(local)
        if header:
            file.write(header)
        if len(data) != 0:
            file.write(data)
        entries.append(_zip.WrittenEntry(name, crc, size, offset))
        offset += len(local) + size

    file.write(_zip.central_directory(entries, offset))


def labels_file(labels) -> bytes:
    """The content of a Labels file (a bare NPY file)."""
    header, data = labels_member(labels)
    return header + bytes(data)


# ============================================================================ #
# numpy writer


def _structured_labels(labels) -> np.ndarray:
    values = labels_values(labels)
    names = list(labels.names)
    dtype = np.dtype([(name, "<i4") for name in names])
    if len(names) == 0:
        return np.zeros(values.shape[0], dtype=dtype)
    return values.view(dtype).reshape(values.shape[0])


def _numpy_block_arrays(block, prefix: str, is_gradient: bool, output: dict):
    output[prefix + "values"] = to_numpy_data(block.values)
    output[prefix + "samples"] = _structured_labels(block.samples)
    for i, component in enumerate(block.components):
        output[prefix + f"components/{i}"] = _structured_labels(component)
    if not is_gradient:
        output[prefix + "properties"] = _structured_labels(block.properties)
    for parameter in sorted(block.gradients_list()):
        _numpy_block_arrays(
            block.gradient(parameter), prefix + f"gradients/{parameter}/", True, output
        )


def write_numpy(file: BinaryIO, data, kind: str) -> None:
    """Write ``data`` with ``np.savez`` to a seekable file opened for reading and
    writing, appending ``info.json`` with ``zipfile`` for TensorMap."""
    arrays: dict = {}
    if kind == "block":
        _numpy_block_arrays(data, "", False, arrays)
    else:
        arrays["keys"] = _structured_labels(data.keys)
        for i in range(len(data.keys)):
            _numpy_block_arrays(data.block_by_id(i), f"blocks/{i}/", False, arrays)

    np.savez(file, **arrays)

    if kind == "tensor":
        info = data.info()
        if info:
            file.seek(0)
            with zipfile.ZipFile(file, mode="a") as archive:
                with archive.open("info.json", "w", force_zip64=True) as member:
                    member.write(info_json(info))


# ============================================================================ #
# saving to a path, atomically


def os_error(error: OSError):
    """Convert an ``OSError`` to an ``io error`` :py:class:`MetatensorError`,
    with the same message as the reference."""
    if error.errno is not None and error.strerror:
        return io_error(f"{error.strerror} (os error {error.errno})")
    return io_error(str(error))


def write_file_atomically(path: str, write) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then ``fsync``
    and move it to ``path`` (see :py:mod:`metatensor.io._atomic`). On failure,
    the temporary file is removed and an existing file at ``path`` is left
    untouched."""
    try:
        write_atomically(path, write)
    except OSError as e:
        raise os_error(e) from e


def _user_stacklevel() -> int:
    """``stacklevel`` for a warning emitted by the caller of this function,
    pointing to the first frame outside of metatensor."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(
        "metatensor."
    ):
        frame = frame.f_back
        level += 1
    return level


def save_path(path: Union[str, pathlib.Path], data, kind: str, use_numpy: bool):
    """Save to a path (str or Path), with the ``.mts`` extension rule."""
    if kind == "labels":
        use_numpy = False

    if not use_numpy:
        if isinstance(path, pathlib.PurePath):
            if not path.name.endswith(".mts"):
                path = path.with_name(path.name + ".mts")
                warnings.warn(
                    f"adding '.mts' extension, the file will be saved at '{path.name}'",
                    UserWarning,
                    stacklevel=_user_stacklevel(),
                )
        elif not path.endswith(".mts"):
            path = path + ".mts"
            warnings.warn(
                f"adding '.mts' extension, the file will be saved at '{path}'",
                UserWarning,
                stacklevel=_user_stacklevel(),
            )

    path = os.fspath(path)

    if use_numpy:

        def write(file):
            write_numpy(file, data, kind)

    elif kind == "labels":
        content = labels_file(data)

        def write(file):
            file.write(content)

    else:

        def write(file):
            write_archive(file, archive_members(data, kind))

    write_file_atomically(path, write)


def save_bytes(data, kind: str, use_numpy: bool):
    """The serialized data, as a bytes-like object."""
    if kind == "labels":
        return labels_file(data)

    if use_numpy:
        buffer = io.BytesIO()
        write_numpy(buffer, data, kind)
        return buffer.getvalue()

    return build_archive(archive_members(data, kind))
