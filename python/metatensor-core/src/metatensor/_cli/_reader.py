"""Reading the metadata of ``.mts`` files without reading the values.

The file is memory-mapped (read-only): only the ZIP central directory, the NPY
headers of the members and the Labels members that are asked for are read. For
DEFLATE-compressed members, only the start of the member is decompressed to get
its NPY header.
"""

import json
import mmap
import os
import zlib
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from .._errors import MetatensorError, serialization_error
from ..io import _load, _npy, _zip


class CliError(Exception):
    """An error reported to the user as one line, with exit status 2.

    :param message: what went wrong
    :param path: the file concerned, if any
    """

    def __init__(self, message: str, path: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.path = path


class Header(NamedTuple):
    """NPY header of a member."""

    descr: Any
    shape: Tuple[int, ...]
    #: offset of the array data in the file (only for uncompressed members)
    data_offset: Optional[int]
    compressed: bool


class LabelsInfo(NamedTuple):
    names: List[str]
    count: int


class ArrayInfo(NamedTuple):
    dtype: str
    shape: Tuple[int, ...]
    nbytes: int


_KINDS = {"tensor": "TensorMap", "block": "TensorBlock", "labels": "Labels"}


class MtsFile:
    """An ``.mts`` file (TensorMap or TensorBlock archive, or a Labels file),
    opened for metadata queries.

    :param path: path to the file
    """

    def __init__(self, path: str):
        self.path = path
        try:
            with open(path, "rb") as file:
                self.size = os.fstat(file.fileno()).st_size
                if self.size == 0:
                    raise CliError("the file is empty")
                self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as e:
            raise CliError(e.strerror or str(e)) from None

        self.view = memoryview(self._map)
        start = bytes(self.view[:6])
        if start == _npy.MAGIC:
            self.kind = "labels"
            self.entries: Dict[str, _zip.ZipEntry] = {}
        elif start[:2] == b"PK":
            try:
                source = _load.BufferSource(self._map, zero_copy=True)
                archive = _load.Archive(source)
            except MetatensorError as e:
                raise CliError(
                    f"invalid or truncated ZIP archive ({e.message.split(': ')[-1]})"
                ) from None
            self.entries = archive.entries
            if "keys.npy" in self.entries:
                self.kind = "tensor"
            elif "values.npy" in self.entries:
                self.kind = "block"
            else:
                raise CliError(
                    "not a metatensor file: the ZIP archive contains neither "
                    "'keys.npy' nor 'values.npy'"
                )
        else:
            raise CliError("not a metatensor file (neither a ZIP archive nor NPY)")

        self.gradients = _load._gradient_parameters(self.entries.keys())
        self._parsed: Dict[bytes, Any] = {}

    def close(self):
        """Release the memory map."""
        self.view.release()
        self._map.close()

    @property
    def kind_name(self) -> str:
        """``TensorMap``, ``TensorBlock`` or ``Labels``."""
        return _KINDS[self.kind]

    @property
    def compressed_members(self) -> int:
        """Number of DEFLATE-compressed members."""
        return sum(1 for entry in self.entries.values() if entry.method != 0)

    # ------------------------------------------------------------------------ #
    # members

    def _entry(self, name: str) -> _zip.ZipEntry:
        entry = self.entries.get(name)
        if entry is None:
            raise serialization_error(f"'{name}' is missing from the archive")
        _zip.check_entry(entry)
        return entry

    def _member_offset(self, entry: _zip.ZipEntry) -> int:
        header = bytes(self.view[entry.header_offset : entry.header_offset + 30])
        offset = _zip.local_data_offset(header, entry)
        if offset + entry.compressed_size > self.size:
            raise serialization_error(
                f"'{entry.name}' extends past the end of the file (truncated file?)"
            )
        return offset

    def header(self, name: str) -> Header:
        """The NPY header of a member.

        :param name: the name of the member (ignored for a Labels file)
        """
        if self.kind == "labels":
            descr, _, shape, start = _npy.parse_header(self.view[: 65536 + 12])
            return Header(descr, shape, start, False)

        entry = self._entry(name)
        offset = self._member_offset(entry)
        if entry.method == 0:
            size = _npy.header_size(self.view, offset) or 0
            size = min(max(size, 12), entry.size)
            raw = bytes(self.view[offset : offset + size])
            # the same headers (Labels shared between blocks, blocks of the
            # same shape) are parsed once
            parsed = self._parsed.get(raw)
            if parsed is None:
                descr, _, shape, start = _npy.parse_header(raw)
                parsed = (descr, shape, start)
                self._parsed[raw] = parsed
            descr, shape, start = parsed
            return Header(descr, shape, offset + start, False)

        # decompress only the start of the member, until the header is complete
        decompressor = zlib.decompressobj(-15)
        data = b""
        position = offset
        end = offset + entry.compressed_size
        while True:
            chunk = self.view[position : min(position + 4096, end)]
            position += len(chunk)
            try:
                data += decompressor.decompress(chunk)
            except zlib.error as e:
                raise serialization_error(
                    f"failed to decompress '{name}': {e}"
                ) from None
            size = _npy.header_size(data)
            if (size is not None and len(data) >= size) or position >= end:
                break
        descr, _, shape, _ = _npy.parse_header(data)
        return Header(descr, shape, None, True)

    def array_info(self, name: str) -> ArrayInfo:
        """dtype, shape and size in bytes of the array stored in a member.

        :param name: the name of the member
        """
        header = self.header(name)
        dtype = _npy.data_dtype(header.descr, False)
        count = int(np.prod(header.shape, dtype=np.int64))
        name = dtype.newbyteorder("=").name
        return ArrayInfo(name, header.shape, count * dtype.itemsize)

    def labels_info(self, name: str) -> LabelsInfo:
        """Names and number of entries of the Labels stored in a member.

        :param name: the name of the member
        """
        header = self.header(name)
        names, _, count = _npy.labels_fields(header.descr, header.shape, False)
        return LabelsInfo(names, count)

    def labels_values(
        self, name: str, start: int = 0, stop: Optional[int] = None
    ) -> Tuple[List[str], np.ndarray, int]:
        """Names, values of the entries ``[start, stop)`` and total count of
        the Labels stored in member ``name``. Only these entries are read from
        uncompressed members.

        :param name: the name of the member (ignored for a Labels file)
        :param start: the first entry to read
        :param stop: one past the last entry to read (all if ``None``)
        """
        header = self.header(name)
        names, dtype, count = _npy.labels_fields(header.descr, header.shape, False)
        stop = count if stop is None else min(stop, count)
        start = min(max(start, 0), stop)
        n_names = len(names)
        if n_names == 0:
            return names, np.empty((stop - start, 0), dtype=np.int32), count

        if header.data_offset is not None:
            expected = header.data_offset + count * n_names * 4
            if expected > self.size:
                raise serialization_error(
                    f"'{name or self.path}' extends past the end of the file "
                    "(truncated file?)"
                )
            values = np.frombuffer(
                self._map,
                dtype=dtype,
                count=(stop - start) * n_names,
                offset=header.data_offset + start * n_names * 4,
            )
        else:
            entry = self.entries[name]
            offset = self._member_offset(entry)
            end = offset + entry.compressed_size
            raw = _zip.inflate(self.view[offset:end], entry)
            _, _, _, data_start = _npy.parse_header(raw)
            values = np.frombuffer(
                raw,
                dtype=dtype,
                count=(stop - start) * n_names,
                offset=data_start + start * n_names * 4,
            )
        values = values.astype(np.int32).reshape(stop - start, n_names)
        return names, values, count

    def info(self) -> Dict[str, str]:
        """The content of ``info.json`` (empty if there is none)."""
        if "info.json" not in self.entries:
            return {}
        entry = self._entry("info.json")
        offset = self._member_offset(entry)
        data = bytes(self.view[offset : offset + entry.compressed_size])
        if entry.method == 8:
            data = _zip.inflate(data, entry)
        try:
            info = json.loads(data.decode("utf8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise serialization_error(f"invalid info.json: {e}") from None
        if not isinstance(info, dict):
            raise serialization_error("invalid info.json: expected an object")
        return {str(k): str(v) for k, v in info.items()}

    # ------------------------------------------------------------------------ #
    # structure

    def block_description(self, prefix: str, properties=None) -> Dict[str, Any]:
        """Shapes, dtypes and Labels names/counts of the block (and its
        gradients) stored under ``prefix``.

        :param prefix: the path of the block in the archive (``blocks/<i>/``,
            ``""`` for a TensorBlock file, ``.../gradients/<parameter>/``)
        :param properties: for gradients, the properties of the parent block
        """
        values = self.array_info(prefix + "values.npy")
        if len(values.shape) < 2:
            raise serialization_error(
                f"'{prefix}values.npy' must have at least 2 dimensions"
            )
        samples = self.labels_info(prefix + "samples.npy")
        components = [
            self.labels_info(prefix + f"components/{i}.npy")
            for i in range(len(values.shape) - 2)
        ]
        if properties is None:
            properties = self.labels_info(prefix + "properties.npy")

        expected = (
            samples.count,
            *(c.count for c in components),
            properties.count,
        )
        if tuple(values.shape) != expected:
            raise serialization_error(
                f"'{prefix}values.npy' has shape {tuple(values.shape)}, but the "
                f"Labels have {expected} entries"
            )

        labels_bytes = 4 * (
            samples.count * len(samples.names)
            + sum(c.count * len(c.names) for c in components)
            + properties.count * len(properties.names)
        )
        gradients = []
        size = values.nbytes + labels_bytes
        for parameter in sorted(self.gradients.get(prefix, ())):
            gradient = self.block_description(
                prefix + f"gradients/{parameter}/", properties
            )
            gradient["parameter"] = parameter
            gradients.append(gradient)
            size += gradient["size"]

        return {
            "shape": list(values.shape),
            "dtype": values.dtype,
            "samples": {"names": samples.names, "count": samples.count},
            "components": [{"names": c.names, "count": c.count} for c in components],
            "properties": {"names": properties.names, "count": properties.count},
            "gradients": gradients,
            "size": size,
        }


def convert_errors(function, *args, path: Optional[str] = None, **kwargs):
    """Call ``function``, converting errors about the file content to
    :py:class:`CliError` (naming ``path``).

    :param function: the function to call with ``args`` and ``kwargs``
    :param path: the file the errors are about
    """
    try:
        return function(*args, **kwargs)
    except CliError as e:
        if e.path is None and path is not None:
            e.path = path
        raise
    except MetatensorError as e:
        message = e.message
        for prefix in ("serialization format error: ", "io error: "):
            if message.startswith(prefix):
                message = message[len(prefix) :]
        raise CliError(message, path) from None
    except OSError as e:
        raise CliError(e.strerror or str(e), path) from None
    except (ValueError, TypeError, IndexError, KeyError, OverflowError) as e:
        raise CliError(f"invalid file: {e}", path) from None
