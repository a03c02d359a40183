"""Minimal ZIP writer and reader for ``.mts`` archives.

The writer reproduces the archives written by the reference implementation byte
for byte: STORED members, local headers with a ZIP64 extra field holding the sizes,
fixed time/date (2000-01-01 00:00), unix ``0644`` attributes, no data descriptor.

The reader accepts any ZIP archive with STORED or DEFLATE members (including
ZIP64 archives) and checks the CRC32 of everything it reads.
"""

import os
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, NamedTuple, Optional

from .._errors import serialization_error


_LOCAL_SIGNATURE = 0x04034B50
_CENTRAL_SIGNATURE = 0x02014B50
_EOCD_SIGNATURE = 0x06054B50
_ZIP64_EOCD_SIGNATURE = 0x06064B50
_ZIP64_LOCATOR_SIGNATURE = 0x07064B50

_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_CENTRAL_HEADER = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<IHHHHIIH")
_ZIP64_EOCD = struct.Struct("<IQHHIIQQQQ")
_ZIP64_LOCATOR = struct.Struct("<IIQI")

_VERSION_NEEDED = 20
_VERSION_MADE_BY = 0x032E
_DOS_TIME = 0x0000
_DOS_DATE = 0x2821
_EXTERNAL_ATTRIBUTES = 0x81A40000

_U32_MAX = 0xFFFFFFFF
_U16_MAX = 0xFFFF

# members larger than this get their CRC computed in multiple threads
PARALLEL_CRC_THRESHOLD = 1024 * 1024
_CRC_CHUNK = 4 * 1024 * 1024


# ============================================================================ #
# CRC32 helpers

_CRC_POLY = 0xEDB88320


def _multmodp(a: int, b: int) -> int:
    """Multiply two polynomials modulo the CRC32 polynomial (reflected)."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if (a & (m - 1)) == 0:
                break
        m >>= 1
        b = (b >> 1) ^ _CRC_POLY if b & 1 else b >> 1
    return p


def _build_x2n_table():
    table = [0] * 32
    p = 1 << 30  # x^1
    table[0] = p
    for n in range(1, 32):
        p = _multmodp(p, p)
        table[n] = p
    return table


_X2N_TABLE = _build_x2n_table()


def _x2nmodp(n: int, k: int) -> int:
    p = 1 << 31  # x^0
    while n:
        if n & 1:
            p = _multmodp(_X2N_TABLE[k & 31], p)
        n >>= 1
        k += 1
    return p


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC32 of the concatenation ``A + B`` from ``crc1 = crc32(A)``,
    ``crc2 = crc32(B)`` and ``length2 = len(B)``."""
    return _multmodp(_x2nmodp(length2, 3), crc1) ^ crc2


_EXECUTOR: Optional[ThreadPoolExecutor] = None
_EXECUTOR_LOCK = threading.Lock()


def executor() -> ThreadPoolExecutor:
    """A shared thread pool for CRC computations (``zlib.crc32`` releases the
    GIL, so this runs in parallel)."""
    global _EXECUTOR
    if _EXECUTOR is None:
        with _EXECUTOR_LOCK:
            if _EXECUTOR is None:
                workers = max(1, min(8, os.cpu_count() or 1))
                _EXECUTOR = ThreadPoolExecutor(
                    max_workers=workers, thread_name_prefix="metatensor-crc"
                )
    return _EXECUTOR


class ParallelCRC:
    """CRC32 of a large buffer, computed in chunks in the shared thread pool."""

    def __init__(self, data: memoryview, initial: int = 0):
        self.initial = initial
        self.length = len(data)
        pool = executor()
        self.chunks = []
        for start in range(0, len(data), _CRC_CHUNK):
            chunk = data[start : start + _CRC_CHUNK]
            self.chunks.append((pool.submit(zlib.crc32, chunk), len(chunk)))

    def result(self) -> int:
        crc = self.initial
        for future, length in self.chunks:
            crc = crc32_combine(crc, future.result(), length)
        return crc


def crc32_start(parts) -> "CRCResult":
    """Start computing the CRC32 of the concatenation of ``parts`` (bytes-like
    objects, already cast to bytes). Large parts are processed in parallel."""
    crc = 0
    pending = []
    for part in parts:
        if len(part) >= PARALLEL_CRC_THRESHOLD:
            pending.append(ParallelCRC(part))
        elif pending:
            pending.append((zlib.crc32(part), len(part)))
        else:
            crc = zlib.crc32(part, crc)
    return CRCResult(crc, pending)


class CRCResult:
    def __init__(self, crc, pending):
        self.crc = crc
        self.pending = pending

    def result(self) -> int:
        crc = self.crc
        for item in self.pending:
            if isinstance(item, ParallelCRC):
                for future, length in item.chunks:
                    crc = crc32_combine(crc, future.result(), length)
            else:
                value, length = item
                crc = crc32_combine(crc, value, length)
        return crc


# ============================================================================ #
# writing


def _name_flags(name: bytes) -> int:
    # general purpose flags: bit 11 marks UTF-8 names
    return 0 if name.isascii() else 0x0800


def local_header(name: bytes, crc: int, size: int) -> bytes:
    """The local file header (with its ZIP64 extra field) of a STORED member."""
    return (
        _LOCAL_HEADER.pack(
            _LOCAL_SIGNATURE,
            _VERSION_NEEDED,
            _name_flags(name),
            0,
            _DOS_TIME,
            _DOS_DATE,
            crc,
            _U32_MAX,
            _U32_MAX,
            len(name),
            20,
        )
        + name
        + struct.pack("<HHQQ", 0x0001, 16, size, size)
    )


def local_header_size(name: bytes) -> int:
    return 30 + len(name) + 20


# offset of the CRC field in the local header
LOCAL_CRC_OFFSET = 14


def central_directory(entries: List["WrittenEntry"], start: int) -> bytes:
    """The central directory and end of central directory records for the given
    entries, with the central directory starting at offset ``start``."""
    parts = []
    for entry in entries:
        extra = b""
        size32 = entry.size
        offset32 = entry.offset
        if entry.size >= _U32_MAX or entry.offset >= _U32_MAX:
            fields = b""
            if entry.size >= _U32_MAX:
                fields += struct.pack("<QQ", entry.size, entry.size)
                size32 = _U32_MAX
            if entry.offset >= _U32_MAX:
                fields += struct.pack("<Q", entry.offset)
                offset32 = _U32_MAX
            extra = struct.pack("<HH", 0x0001, len(fields)) + fields

        parts.append(
            _CENTRAL_HEADER.pack(
                _CENTRAL_SIGNATURE,
                _VERSION_MADE_BY,
                _VERSION_NEEDED,
                _name_flags(entry.name),
                0,
                _DOS_TIME,
                _DOS_DATE,
                entry.crc,
                size32,
                size32,
                len(entry.name),
                len(extra),
                0,
                0,
                0,
                _EXTERNAL_ATTRIBUTES,
                offset32,
            )
        )
        parts.append(entry.name)
        parts.append(extra)

    directory = b"".join(parts)
    count = len(entries)
    end = start + len(directory)

    zip64 = count >= _U16_MAX or start >= _U32_MAX or len(directory) >= _U32_MAX
    if zip64:
        record = _ZIP64_EOCD.pack(
            _ZIP64_EOCD_SIGNATURE,
            44,
            _VERSION_MADE_BY,
            45,
            0,
            0,
            count,
            count,
            len(directory),
            start,
        )
        locator = _ZIP64_LOCATOR.pack(_ZIP64_LOCATOR_SIGNATURE, 0, end, 1)
        eocd = _EOCD.pack(
            _EOCD_SIGNATURE,
            0,
            0,
            min(count, _U16_MAX),
            min(count, _U16_MAX),
            min(len(directory), _U32_MAX),
            min(start, _U32_MAX),
            0,
        )
        return directory + record + locator + eocd

    eocd = _EOCD.pack(_EOCD_SIGNATURE, 0, 0, count, count, len(directory), start, 0)
    return directory + eocd


class WrittenEntry(NamedTuple):
    name: bytes
    crc: int
    size: int
    offset: int


# ============================================================================ #
# reading


class ZipEntry(NamedTuple):
    name: str
    method: int
    flags: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int


def _parse_zip64_extra(extra: bytes, size, compressed_size, offset):
    position = 0
    while position + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, position)
        position += 4
        if tag == 0x0001:
            needed = [size, compressed_size, offset].count(_U32_MAX)
            if length < 8 * needed or position + 8 * needed > len(extra):
                raise serialization_error(
                    "invalid Zip archive: invalid ZIP64 extra field"
                )
            values = iter(struct.unpack_from(f"<{needed}Q", extra, position))
            if size == _U32_MAX:
                size = next(values)
            if compressed_size == _U32_MAX:
                compressed_size = next(values)
            if offset == _U32_MAX:
                offset = next(values)
            break
        position += length
    return size, compressed_size, offset


def find_central_directory(tail: bytes, tail_offset: int, file_size: int):
    """Locate the central directory from the last bytes of an archive. Returns
    ``(cd_offset, cd_size, count)``."""
    position = tail.rfind(b"PK\x05\x06")
    while position >= 0 and position + 22 > len(tail):
        position = tail.rfind(b"PK\x05\x06", 0, position)
    if position < 0:
        raise serialization_error(
            "invalid Zip archive: Could not find central directory end"
        )

    (_, disk, cd_disk, _, count, cd_size, cd_offset, _) = _EOCD.unpack_from(
        tail, position
    )

    if cd_offset == _U32_MAX or cd_size == _U32_MAX or count == _U16_MAX:
        locator = position - _ZIP64_LOCATOR.size
        if locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
            (_, _, record_offset, _) = _ZIP64_LOCATOR.unpack_from(tail, locator)
            local = record_offset - tail_offset
            if local < 0 or local + _ZIP64_EOCD.size > len(tail):
                raise serialization_error("invalid Zip archive: invalid ZIP64 record")
            record = _ZIP64_EOCD.unpack_from(tail, local)
            if record[0] != _ZIP64_EOCD_SIGNATURE:
                raise serialization_error("invalid Zip archive: invalid ZIP64 record")
            count, cd_size, cd_offset = record[7], record[8], record[9]

    if disk != 0 or cd_disk != 0:
        raise serialization_error(
            "invalid Zip archive: multi-disk archives are not supported"
        )

    if cd_offset + cd_size > file_size:
        raise serialization_error(
            "invalid Zip archive: central directory is outside of the file"
        )

    return cd_offset, cd_size, count


def parse_central_directory(data, count: int) -> Dict[str, ZipEntry]:
    """Parse the central directory records in ``data``."""
    entries: Dict[str, ZipEntry] = {}
    position = 0
    size = len(data)
    for _ in range(count):
        if position + 46 > size:
            raise serialization_error(
                "invalid Zip archive: truncated central directory"
            )
        (
            signature,
            _,
            _,
            flags,
            method,
            _,
            _,
            crc,
            compressed_size,
            uncompressed_size,
            name_length,
            extra_length,
            comment_length,
            _,
            _,
            _,
            offset,
        ) = _CENTRAL_HEADER.unpack_from(data, position)
        if signature != _CENTRAL_SIGNATURE:
            raise serialization_error("invalid Zip archive: invalid central directory")

        position += 46
        end = position + name_length + extra_length + comment_length
        if end > size:
            raise serialization_error(
                "invalid Zip archive: truncated central directory"
            )

        raw_name = bytes(data[position : position + name_length])
        extra = bytes(
            data[position + name_length : position + name_length + extra_length]
        )
        position = end

        if _U32_MAX in (compressed_size, uncompressed_size, offset):
            uncompressed_size, compressed_size, offset = _parse_zip64_extra(
                extra, uncompressed_size, compressed_size, offset
            )

        try:
            name = raw_name.decode("utf8")
        except UnicodeDecodeError:
            name = raw_name.decode("cp437")

        if name not in entries:
            entries[name] = ZipEntry(
                name, method, flags, crc, compressed_size, uncompressed_size, offset
            )

    return entries


def local_data_offset(header: bytes, entry: ZipEntry) -> int:
    """Offset of the member data, from the first 30 bytes of its local header."""
    if len(header) < 30:
        raise serialization_error(
            f"invalid Zip archive: truncated local header for '{entry.name}'"
        )
    fields = _LOCAL_HEADER.unpack_from(header, 0)
    if fields[0] != _LOCAL_SIGNATURE:
        raise serialization_error(
            f"invalid Zip archive: invalid local header for '{entry.name}'"
        )
    return entry.header_offset + 30 + fields[9] + fields[10]


def check_entry(entry: ZipEntry):
    """Check that we know how to read this entry."""
    if entry.flags & 0x1:
        raise serialization_error(
            f"unsupported Zip archive: '{entry.name}' is encrypted"
        )
    if entry.method not in (0, 8):
        raise serialization_error(
            f"unsupported Zip archive: compression method {entry.method} used for "
            f"'{entry.name}' is not supported"
        )
    if entry.method == 0 and entry.compressed_size != entry.size:
        raise serialization_error(
            f"invalid Zip archive: inconsistent sizes for '{entry.name}'"
        )


def inflate(data, entry: ZipEntry) -> bytes:
    """Decompress a DEFLATE member, checking its size and CRC."""
    try:
        decompressor = zlib.decompressobj(-15)
        result = decompressor.decompress(data, entry.size + 1)
    except zlib.error as e:
        raise serialization_error(
            f"invalid Zip archive: failed to decompress '{entry.name}': {e}"
        ) from e
    if len(result) != entry.size:
        raise serialization_error(
            f"invalid Zip archive: '{entry.name}' does not have the expected size"
        )
    check_crc(zlib.crc32(result), entry)
    return result


def check_crc(crc: int, entry: ZipEntry):
    if crc != entry.crc:
        raise serialization_error(
            f"invalid Zip archive: invalid checksum for '{entry.name}'"
        )
