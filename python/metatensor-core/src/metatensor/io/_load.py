"""Deserialization of ``.mts`` data (native loader and ``np.load`` based loader).

Loading never executes anything from the file: NPY headers are parsed by
:py:mod:`._npy`, and ``np.load`` is always called with ``allow_pickle=False``.
"""

import json
import mmap as _mmap
import os
import struct
import zipfile
import zlib
from typing import Any, Callable, Dict, List, Optional, Set

import numpy as np

from .._errors import MetatensorError, serialization_error
from . import _npy, _zip


CreateArray = Callable[[np.ndarray], Any]

# Labels stored in members up to this size are de-duplicated when loading
_CACHED_LABELS = 4096
# files up to this size are read in memory at once, larger ones member by member
_SMALL_FILE = 16 * 1024 * 1024


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


# ============================================================================ #
# data sources


class BufferSource:
    """Data in memory (bytes, bytearray, memoryview or mmap)."""

    def __init__(self, buffer, zero_copy: bool = False):
        self.buffer = buffer
        self.view = memoryview(buffer)
        self.size = len(self.view)
        self.zero_copy = zero_copy
        self.verify_crc = not zero_copy
        self.pending: List[Any] = []

    def read(self, offset: int, length: int):
        return self.view[offset : offset + length]

    def array(self, offset: int, dtype: np.dtype, count: int, entry) -> np.ndarray:
        if count == 0:
            return np.empty(0, dtype=dtype)
        array = np.frombuffer(self.buffer, dtype=dtype, count=count, offset=offset)
        if self.zero_copy and dtype.isnative and dtype != np.bool_:
            return array
        return array.copy()

    def check_crc(self, entry: _zip.ZipEntry, data_offset: int):
        if self.verify_crc:
            data = self.view[data_offset : data_offset + entry.size]
            if len(data) >= _zip.PARALLEL_CRC_THRESHOLD:
                self.pending.append((_zip.crc32_start([data]), entry))
            else:
                _zip.check_crc(zlib.crc32(data), entry)

    def finish(self):
        for crc, entry in self.pending:
            _zip.check_crc(crc.result(), entry)
        self.pending = []


class FileSource:
    """Data read from a (large) file, member by member."""

    def __init__(self, file, size: int):
        self.file = file
        self.size = size
        self.zero_copy = False
        self.verify_crc = True
        self.pending: List[Any] = []
        self._header_crcs: Dict[str, int] = {}

    def read(self, offset: int, length: int):
        length = max(0, min(length, self.size - offset))
        self.file.seek(offset)
        return self.file.read(length)

    def array(self, offset: int, dtype: np.dtype, count: int, entry) -> np.ndarray:
        array = np.empty(count, dtype=dtype)
        if count != 0:
            view = array.view(np.uint8)
            self.file.seek(offset)
            read = 0
            while read < len(view):
                n = self.file.readinto(view[read:])
                if not n:
                    raise serialization_error(
                        f"unexpected end of file while reading '{entry.name}'"
                    )
                read += n
        if entry is not None and self.verify_crc:
            header_crc = self._header_crcs.pop(entry.name)
            data = array.view(np.uint8) if count != 0 else b""
            if len(data) >= _zip.PARALLEL_CRC_THRESHOLD:
                crc = _zip.crc32_start([data])
                self.pending.append((header_crc, crc, len(data), entry))
            else:
                crc = zlib.crc32(data, header_crc)
                _zip.check_crc(crc, entry)
        return array

    def check_crc(self, entry: _zip.ZipEntry, data_offset: int):
        # the CRC of the header is computed here, the CRC of the data when it is
        # read in `array`
        self._header_crcs[entry.name] = None

    def finish(self):
        for header_crc, crc, length, entry in self.pending:
            _zip.check_crc(_zip.crc32_combine(header_crc, crc.result(), length), entry)
        self.pending = []


# ============================================================================ #
# archive


class Archive:
    """A ZIP archive in a data source, giving access to NPY members."""

    def __init__(self, source):
        self.source = source
        size = source.size
        tail_start = max(0, size - (22 + 0xFFFF + 20 + 56))
        tail = bytes(source.read(tail_start, size - tail_start))
        cd_offset, cd_size, count = _zip.find_central_directory(tail, tail_start, size)
        if cd_offset >= tail_start:
            directory = tail[cd_offset - tail_start : cd_offset - tail_start + cd_size]
        else:
            directory = source.read(cd_offset, cd_size)
        self.entries = _zip.parse_central_directory(directory, count)

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def names(self):
        return self.entries.keys()

    def _entry(self, name: str) -> _zip.ZipEntry:
        entry = self.entries.get(name)
        if entry is None:
            raise serialization_error(
                f"specified file not found in archive: at '{name}'"
            )
        _zip.check_entry(entry)
        return entry

    def _member_start(self, entry: _zip.ZipEntry):
        header = self.source.read(entry.header_offset, 30)
        data_offset = _zip.local_data_offset(header, entry)
        if data_offset + entry.compressed_size > self.source.size:
            raise serialization_error(
                f"invalid Zip archive: '{entry.name}' extends past the end of the file"
            )
        return data_offset

    def raw(self, name: str) -> bytes:
        """Full content of a member."""
        entry = self._entry(name)
        offset = self._member_start(entry)
        data = bytes(self.source.read(offset, entry.compressed_size))
        if entry.method == 8:
            return _zip.inflate(data, entry)
        _zip.check_crc(zlib.crc32(data), entry)
        return data

    def npy(self, name: str):
        """Parse the NPY header of a member, returning ``(descr, fortran_order,
        shape, reader)`` where ``reader(dtype, count)`` gives the data."""
        entry = self._entry(name)
        offset = self._member_start(entry)

        if entry.method == 8:
            content = _zip.inflate(
                self.source.read(offset, entry.compressed_size), entry
            )
            return parse_npy(BufferSource(content), 0, len(content), None)

        self.source.check_crc(entry, offset)
        return parse_npy(self.source, offset, entry.size, entry)


def parse_npy(source, offset: int, size: int, entry):
    """Parse the NPY data of ``size`` bytes starting at ``offset`` in
    ``source``."""
    start = source.read(offset, min(size, 128))
    header_size = _npy.header_size(start)
    if header_size is not None and header_size > len(start):
        if header_size > size:
            raise serialization_error("invalid NPY header: unexpected end of data")
        start = source.read(offset, header_size)

    if len(start) < 10 and bytes(start[:6]) == _npy.MAGIC:
        raise serialization_error("invalid NPY header: unexpected end of data")
    descr, fortran_order, shape, data_start = _npy.parse_header(start)
    if data_start > size:
        raise serialization_error("invalid NPY header: unexpected end of data")

    if isinstance(source, FileSource) and entry is not None:
        source._header_crcs[entry.name] = zlib.crc32(start[:data_start])

    data_offset = offset + data_start
    data_size = size - data_start

    def reader(dtype: np.dtype, count: int) -> np.ndarray:
        expected = count * dtype.itemsize
        if data_size > expected:
            raise serialization_error(
                f"found {data_size - expected} extra bytes after the expected end "
                "of data"
            )
        elif data_size < expected:
            raise serialization_error(
                f"not enough data: expected {expected} bytes, got {data_size}"
            )
        return source.array(data_offset, dtype, count, entry)

    return descr, fortran_order, shape, reader


def _count(shape) -> int:
    count = 1
    for s in shape:
        count *= s
    return count


def read_data(descr, fortran_order, shape, reader) -> np.ndarray:
    """Read array data from a parsed NPY member as a native-endian C-contiguous
    writable array."""
    dtype = _npy.data_dtype(descr, fortran_order)
    array = reader(dtype, _count(shape))

    if not dtype.isnative:
        native = dtype.newbyteorder("=")
        if array.flags.owndata:
            array = array.byteswap(inplace=True).view(native)
        else:
            array = array.astype(native)
    elif dtype == np.bool_:
        # normalize the booleans, any non-zero byte is True
        raw = array.view(np.uint8)
        np.minimum(raw, 1, out=raw)

    return array.reshape(shape)


def read_labels(descr, fortran_order, shape, reader):
    """Read Labels from a parsed NPY member."""
    Labels, _, _ = _classes()
    names, dtype, count = _npy.labels_fields(descr, shape, fortran_order)
    if len(names) == 0:
        reader(dtype, 0)
        if count > 1:
            raise serialization_error(
                "invalid labels: can not have the same label entry multiple times: "
                "[] is already present"
            )
        values = np.empty((count, 0), dtype=np.int32)
    else:
        values = reader(dtype, count * len(names))
        if not dtype.isnative:
            values = values.astype(np.int32)
        values = values.reshape(count, len(names))
    return Labels(names, values)


# ============================================================================ #
# TensorBlock and TensorMap


def _gradient_parameters(names) -> Dict[str, Set[str]]:
    """For each prefix, the set of gradient parameters found in the archive:
    the first path segment after ``<prefix>gradients/`` in member names ending
    with ``/samples.npy``."""
    result: Dict[str, Set[str]] = {}
    for name in names:
        if not name.endswith("/samples.npy"):
            continue
        position = name.find("gradients/")
        while position >= 0:
            if position == 0 or name[position - 1] == "/":
                rest = name[position + 10 :]
                parameter = rest.split("/", 1)[0]
                result.setdefault(name[:position], set()).add(parameter)
            position = name.find("gradients/", position + 1)
    return result


class _Loader:
    def __init__(self, archive: Archive, create_array: CreateArray):
        self.archive = archive
        self.create_array = create_array
        self.gradients = _gradient_parameters(archive.names())
        self.labels_cache: Dict[bytes, Any] = {}

    def labels(self, name: str):
        entry = self.archive.entries.get(name)
        if entry is not None and entry.method == 0 and entry.size <= _CACHED_LABELS:
            # identical small Labels (components, properties, ...) are shared
            # between blocks instead of being created and checked again
            raw = bytes(self.archive.raw(name))
            labels = self.labels_cache.get(raw)
            if labels is None:
                labels = read_labels(*parse_npy(BufferSource(raw), 0, len(raw), None))
                self.labels_cache[raw] = labels
            return labels
        return read_labels(*self.archive.npy(name))

    def block(self, prefix: str, properties=None):
        _, TensorBlock, _ = _classes()
        values = read_data(*self.archive.npy(prefix + "values.npy"))
        if values.ndim < 2:
            raise serialization_error(
                f"invalid data in '{prefix}values.npy': values must have at least "
                f"2 dimensions, got {values.ndim}"
            )

        samples = self.labels(prefix + "samples.npy")
        components = [
            self.labels(prefix + f"components/{i}.npy") for i in range(values.ndim - 2)
        ]
        if properties is None:
            properties = self.labels(prefix + "properties.npy")

        block = TensorBlock(self.create_array(values), samples, components, properties)

        for parameter in sorted(self.gradients.get(prefix, ())):
            gradient = self.block(prefix + f"gradients/{parameter}/", properties)
            block.add_gradient(parameter, gradient)

        return block

    def tensor(self):
        _, _, TensorMap = _classes()
        keys = self.labels("keys.npy")
        blocks = [self.block(f"blocks/{i}/") for i in range(len(keys))]
        tensor = TensorMap(keys, blocks)

        if "info.json" in self.archive:
            for key, value in parse_info(self.archive.raw("info.json")).items():
                tensor.set_info(key, value)

        return tensor


def parse_info(data: bytes) -> Dict[str, str]:
    """Parse ``info.json``, which must be an object with string values."""
    try:
        info = json.loads(data.decode("utf8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise serialization_error(f"invalid info.json: {e}") from e
    if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
        raise serialization_error(
            "invalid info.json: expected an object with string values"
        )
    return info


# ============================================================================ #
# entry points


def _convert_errors(function, *args):
    """Call ``function(*args)``, converting unexpected errors to
    :py:class:`MetatensorError`."""
    try:
        return function(*args)
    except MetatensorError:
        raise
    except (
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        OverflowError,
        struct.error,
        zlib.error,
        zipfile.BadZipFile,
        UnicodeError,
        EOFError,
    ) as e:
        raise serialization_error(str(e)) from e


def _load_with_source(source, kind: str, create_array: CreateArray):
    def load():
        if kind == "labels":
            content = source.read(0, source.size)
            descr, fortran_order, shape, reader = parse_npy(
                BufferSource(content), 0, len(content), None
            )
            return read_labels(descr, fortran_order, shape, reader)

        loader = _Loader(Archive(source), create_array)
        if kind == "tensor":
            result = loader.tensor()
        else:
            result = loader.block("")
        source.finish()
        return result

    return _convert_errors(load)


_TYPE_NAMES = {"tensor": "a TensorMap", "block": "a TensorBlock", "labels": "Labels"}


def _hint(source, kind: str, buffer: bool) -> Optional[str]:
    """Is this data of another kind than ``kind``? Returns a hint for the error
    message."""
    try:
        start = bytes(source.read(0, 6))
        if start == _npy.MAGIC:
            if kind != "labels":
                return "use `load_labels_buffer`" if buffer else "use `load_labels`"
            return None
        if start[:2] != b"PK":
            return None

        names = Archive(source).names()
    except Exception:
        names = ()

    suffix = "_buffer" if buffer else ""
    if kind == "labels":
        if "values.npy" in names and "keys.npy" not in names:
            return f"use `load_block{suffix}` to load TensorBlock"
        return f"use `load{suffix}` to load TensorMap"
    elif kind == "tensor" and "values.npy" in names:
        return f"use `load_block{suffix}` to load TensorBlock"
    elif kind == "block" and "keys.npy" in names:
        return f"use `load{suffix}` to load TensorMap"
    return None


def _with_hint(source, kind: str, origin: str, create_array: CreateArray):
    try:
        return _load_with_source(source, kind, create_array)
    except MetatensorError as e:
        prefix = "serialization format error: "
        if not e.message.startswith(prefix):
            raise
        hint = _hint(source, kind, origin == "buffer")
        if hint is None:
            raise
        if hint.endswith("`"):
            hint += " to load Labels"
        raise serialization_error(
            f"unable to load {_TYPE_NAMES[kind]} from {origin}, {hint}: "
            + e.message[len(prefix) :]
        ) from e


_EMPTY_NAMES = {"tensor": "TensorMap", "block": "TensorBlock", "labels": "Labels"}


def load_buffer(buffer, kind: str, create_array: CreateArray):
    """Load from an in-memory buffer."""
    try:
        view = memoryview(buffer)
    except TypeError:
        raise TypeError(
            f"`buffer` must be bytes, bytearray or memoryview, not {type(buffer)}"
        ) from None
    if view.format != "B" or view.ndim != 1:
        view = memoryview(view.tobytes())

    if len(view) == 0:
        raise serialization_error(
            f"unable to load {_EMPTY_NAMES[kind]} from empty buffer"
        )
    return _with_hint(BufferSource(view), kind, "buffer", create_array)


def load_path(path, kind: str, create_array: CreateArray, mmap: bool = False):
    """Load from a path on disk. With ``mmap=True``, uncompressed data is memory
    mapped (copy-on-write) instead of read."""
    from ._save import os_error

    path = os.fspath(path)
    try:
        file = open(path, "rb", buffering=0)
    except OSError as e:
        raise os_error(e) from e

    origin = f"'{path}'"
    with file:
        try:
            size = os.fstat(file.fileno()).st_size
        except OSError as e:
            raise os_error(e) from e

        if mmap and size > 0 and kind != "labels":
            try:
                mapped = _mmap.mmap(file.fileno(), 0, access=_mmap.ACCESS_COPY)
            except (OSError, ValueError):
                mapped = None
            if mapped is not None:
                source = BufferSource(mapped, zero_copy=True)
                return _with_hint(source, kind, origin, create_array)

        if size <= _SMALL_FILE or kind == "labels":
            try:
                content = file.read()
            except OSError as e:
                raise os_error(e) from e
            return _with_hint(BufferSource(content), kind, origin, create_array)

        return _with_hint(FileSource(file, size), kind, origin, create_array)


# ============================================================================ #
# numpy-based loader (use_numpy=True)


def _labels_from_numpy(array: np.ndarray):
    Labels, _, _ = _classes()
    if array.dtype.names is None or array.ndim != 1:
        raise serialization_error("invalid dtype for labels")
    names = list(array.dtype.names)
    if len(names) == 0:
        return Labels([], np.empty((len(array), 0), dtype=np.int32))
    for name in names:
        field = array.dtype.fields[name][0]
        if field.kind != "i" or field.itemsize != 4:
            raise serialization_error("invalid dtype for labels")
    values = np.stack([array[name] for name in names], axis=1).astype(np.int32)
    return Labels(names, values)


def _numpy_values(array: np.ndarray) -> np.ndarray:
    if array.dtype.names is not None:
        raise serialization_error(
            "invalid dtype for data: structured arrays are not supported"
        )
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))


def _numpy_block(npz, prefix: str, gradients, properties=None):
    _, TensorBlock, _ = _classes()
    values = _numpy_values(npz[prefix + "values"])
    if values.ndim < 2:
        raise serialization_error("values must have at least 2 dimensions")
    samples = _labels_from_numpy(npz[prefix + "samples"])
    components = [
        _labels_from_numpy(npz[prefix + f"components/{i}"])
        for i in range(values.ndim - 2)
    ]
    if properties is None:
        properties = _labels_from_numpy(npz[prefix + "properties"])
    block = TensorBlock(values, samples, components, properties)
    for parameter in sorted(gradients.get(prefix, ())):
        gradient = _numpy_block(
            npz, prefix + f"gradients/{parameter}/", gradients, properties
        )
        block.add_gradient(parameter, gradient)
    return block


def load_numpy(file, kind: str):
    """Load a TensorMap or TensorBlock with ``np.load``."""
    from ._save import os_error

    _, _, TensorMap = _classes()

    def load():
        try:
            npz = np.load(file, allow_pickle=False)
        except OSError as e:
            if isinstance(e, FileNotFoundError) or e.errno is not None:
                raise os_error(e) from e
            raise serialization_error(str(e)) from e

        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise serialization_error("expected a ZIP archive of NPY files")

        with npz:
            names = [n + ".npy" for n in npz.files if not n.endswith(".json")]
            gradients = _gradient_parameters(names)
            if kind == "block":
                return _numpy_block(npz, "", gradients)

            keys = _labels_from_numpy(npz["keys"])
            blocks = [
                _numpy_block(npz, f"blocks/{i}/", gradients) for i in range(len(keys))
            ]
            tensor = TensorMap(keys, blocks)
            if "info.json" in npz.zip.namelist():
                for key, value in parse_info(npz.zip.read("info.json")).items():
                    tensor.set_info(key, value)
            return tensor

    return _convert_errors(load)
