"""Writing and (safely) parsing NPY headers.

The header text written here reproduces the reference implementation byte for byte
(spaces, trailing commas, 64-byte padding, ``<b1``/``<i1`` descriptors). The parser
accepts the header of any NPY file (version 1, 2 or 3) written by numpy or by the
reference, with a small hand-written tokenizer: nothing in a file is ever evaluated
or unpickled.
"""

import re
import struct
from typing import List, Optional, Tuple, Union

import numpy as np

from .._errors import serialization_error


MAGIC = b"\x93NUMPY"

# dtype of the data (in native order, little-endian on disk) => descr code
_DTYPE_CODES = {
    np.dtype(np.float16): "f2",
    np.dtype(np.float32): "f4",
    np.dtype(np.float64): "f8",
    np.dtype(np.int8): "i1",
    np.dtype(np.int16): "i2",
    np.dtype(np.int32): "i4",
    np.dtype(np.int64): "i8",
    np.dtype(np.uint8): "u1",
    np.dtype(np.uint16): "u2",
    np.dtype(np.uint32): "u4",
    np.dtype(np.uint64): "u8",
    np.dtype(np.bool_): "b1",
    np.dtype(np.complex64): "c8",
    np.dtype(np.complex128): "c16",
}

# descr code => native dtype, used when reading
_CODE_DTYPES = {code: dtype for dtype, code in _DTYPE_CODES.items()}
_CODE_DTYPES["?"] = np.dtype(np.bool_)


def data_descr(dtype: np.dtype) -> Optional[str]:
    """The descr written for data of the given numpy ``dtype`` (``'<f8'``, ...),
    or ``None`` if this dtype can not be stored."""
    code = _DTYPE_CODES.get(dtype.newbyteorder("="))
    if code is None:
        return None
    return "<" + code


def _shape_text(shape: Tuple[int, ...]) -> str:
    return "(" + "".join(f"{int(s)}, " for s in shape) + ")"


def _finish_header(text: str) -> bytes:
    encoded = text.encode("latin1")
    # 10 bytes of prefix for version 1, the header must fit in a u16
    with_newline = 10 + len(encoded) + 1
    padding = 64 - (with_newline % 64)
    if len(encoded) + 1 + padding <= 0xFFFF:
        length = len(encoded) + padding + 1
        return (
            MAGIC
            + b"\x01\x00"
            + struct.pack("<H", length)
            + encoded
            + b" " * padding
            + b"\n"
        )

    with_newline = 12 + len(encoded) + 1
    padding = 64 - (with_newline % 64)
    length = len(encoded) + padding + 1
    return (
        MAGIC
        + b"\x02\x00"
        + struct.pack("<I", length)
        + encoded
        + b" " * padding
        + b"\n"
    )


def data_header(descr: str, shape: Tuple[int, ...]) -> bytes:
    """NPY header (magic, version, length and padded text) for a C-order array."""
    return _finish_header(
        "{ 'descr': '"
        + descr
        + "', 'fortran_order': False, 'shape': "
        + _shape_text(shape)
        + " }"
    )


def labels_header(names: List[str], count: int) -> bytes:
    """NPY header for Labels stored as ``count`` structured records of ``<i4``."""
    fields = "".join(f"('{name}', '<i4'), " for name in names)
    return _finish_header(
        "{ 'descr': ["
        + fields
        + "], 'fortran_order': False, 'shape': ("
        + str(int(count))
        + ", ) }"
    )


# ============================================================================ #
# parsing

# fast path for the headers written by us/the reference and by numpy
_SIMPLE_DATA_RE = re.compile(
    r"\{ ?'descr': '([<>|=]?[a-zA-Z?]\d*)', 'fortran_order': (True|False), "
    r"'shape': \(((?:\d+, ?)*\d*)\),? \}\s*\n\Z"
)
_SIMPLE_LABELS_RE = re.compile(
    r"\{ ?'descr': \[((?:\('[A-Za-z0-9_]*', '[<>|=]?[a-zA-Z]\d*'\), ?)*"
    r"(?:\('[A-Za-z0-9_]*', '[<>|=]?[a-zA-Z]\d*'\))?)\], "
    r"'fortran_order': (True|False), 'shape': \(((?:\d+, ?)*\d*)\),? \}\s*\n\Z"
)
_FIELD_RE = re.compile(r"\('([A-Za-z0-9_]*)', '([<>|=]?[a-zA-Z]\d*)'\)")

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<int>\d+)L?
      | (?P<const>True|False|None)
      | (?P<punct>[{}()\[\],:])
    )""",
    re.VERBOSE,
)

_MAX_DEPTH = 8


class _HeaderSyntaxError(Exception):
    pass


def _tokenize(text: str) -> List[Tuple[str, object]]:
    tokens = []
    position = 0
    end = len(text.rstrip())
    while position < end:
        match = _TOKEN_RE.match(text, position)
        if match is None:
            raise _HeaderSyntaxError(f"unexpected character at position {position}")
        position = match.end()
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "str":
            body = value[1:-1]
            if "\\" in body:
                body = re.sub(r"\\(.)", r"\1", body)
            tokens.append(("str", body))
        elif kind == "int":
            tokens.append(("int", int(value)))
        elif kind == "const":
            tokens.append(
                ("const", {"True": True, "False": False, "None": None}[value])
            )
        else:
            tokens.append(("punct", value))
    return tokens


class _Parser:
    """Recursive descent parser for the subset of python literals used in NPY
    headers: dict, list, tuple, str, int, True/False/None."""

    def __init__(self, tokens):
        self.tokens = tokens
        self.position = 0

    def _next(self):
        if self.position >= len(self.tokens):
            raise _HeaderSyntaxError("unexpected end of header")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _peek(self):
        if self.position >= len(self.tokens):
            raise _HeaderSyntaxError("unexpected end of header")
        return self.tokens[self.position]

    def parse(self):
        value = self._value(0)
        if self.position != len(self.tokens):
            raise _HeaderSyntaxError("unexpected data after the end of the header")
        return value

    def _sequence(self, closing: str, depth: int, is_dict: bool):
        items = []
        while True:
            if self._peek() == ("punct", closing):
                self._next()
                return items
            if is_dict:
                key = self._value(depth + 1)
                if self._next() != ("punct", ":"):
                    raise _HeaderSyntaxError("expected ':' in dictionary")
                items.append((key, self._value(depth + 1)))
            else:
                items.append(self._value(depth + 1))

            token = self._next()
            if token == ("punct", closing):
                return items
            if token != ("punct", ","):
                raise _HeaderSyntaxError(f"expected ',' or '{closing}'")

    def _value(self, depth: int):
        if depth > _MAX_DEPTH:
            raise _HeaderSyntaxError("header is nested too deeply")
        kind, value = self._next()
        if kind != "punct":
            return value
        if value == "{":
            result = {}
            for key, item in self._sequence("}", depth, is_dict=True):
                if not isinstance(key, str):
                    raise _HeaderSyntaxError("dictionary keys must be strings")
                if key in result:
                    raise _HeaderSyntaxError(f"duplicated key '{key}'")
                result[key] = item
            return result
        if value == "[":
            return self._sequence("]", depth, is_dict=False)
        if value == "(":
            return tuple(self._sequence(")", depth, is_dict=False))
        raise _HeaderSyntaxError(f"unexpected '{value}'")


Descr = Union[str, List[Tuple[str, str]]]


def _parse_shape(text: str) -> Tuple[int, ...]:
    return tuple(int(s) for s in text.replace(" ", "").split(",") if s)


def parse_header_text(text: str) -> Tuple[Descr, bool, Tuple[int, ...]]:
    """Parse the dictionary of an NPY header, returning ``(descr, fortran_order,
    shape)``. ``descr`` is either a string or a list of ``(name, type)`` pairs.

    :raises MetatensorError: if the header is not valid
    """
    match = _SIMPLE_DATA_RE.match(text)
    if match is not None:
        return match.group(1), match.group(2) == "True", _parse_shape(match.group(3))

    match = _SIMPLE_LABELS_RE.match(text)
    if match is not None:
        fields = _FIELD_RE.findall(match.group(1))
        return fields, match.group(2) == "True", _parse_shape(match.group(3))

    if not text.endswith("\n"):
        raise serialization_error("invalid NPY header: it must end with a newline")

    try:
        header = _Parser(_tokenize(text)).parse()
    except _HeaderSyntaxError as e:
        raise serialization_error(f"invalid NPY header: {e}") from None

    if not isinstance(header, dict):
        raise serialization_error("invalid NPY header: expected a dictionary")

    if set(header.keys()) != {"descr", "fortran_order", "shape"}:
        keys = ", ".join(sorted(repr(k) for k in header.keys()))
        raise serialization_error(
            "invalid NPY header: expected exactly the keys 'descr', 'fortran_order' "
            f"and 'shape', got {keys}"
        )

    fortran_order = header["fortran_order"]
    if not isinstance(fortran_order, bool):
        raise serialization_error(
            "invalid NPY header: 'fortran_order' must be True or False"
        )

    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in shape
    ):
        raise serialization_error("invalid NPY header: 'shape' must be a tuple of int")

    descr = header["descr"]
    if isinstance(descr, list):
        fields = []
        for field in descr:
            if (
                not isinstance(field, tuple)
                or len(field) != 2
                or not isinstance(field[0], str)
                or not isinstance(field[1], str)
            ):
                raise serialization_error("invalid dtype for labels")
            fields.append(field)
        descr = fields
    elif not isinstance(descr, str):
        raise serialization_error("invalid NPY header: invalid 'descr'")

    return descr, fortran_order, shape


def parse_header(data, offset: int = 0) -> Tuple[Descr, bool, Tuple[int, ...], int]:
    """Parse the NPY header starting at ``offset`` in ``data`` (a bytes-like
    object). Returns ``(descr, fortran_order, shape, data_start)`` where
    ``data_start`` is the offset of the array data.

    :raises MetatensorError: if the header is not valid
    """
    if bytes(data[offset : offset + 6]) != MAGIC:
        raise serialization_error("start does not match magic string")

    prefix = bytes(data[offset + 6 : offset + 12])
    if len(prefix) < 4:
        raise serialization_error("invalid NPY header: unexpected end of data")

    major = prefix[0]
    if major == 1:
        (length,) = struct.unpack_from("<H", prefix, 2)
        start = offset + 10
    elif major in (2, 3):
        if len(prefix) < 6:
            raise serialization_error("invalid NPY header: unexpected end of data")
        (length,) = struct.unpack_from("<I", prefix, 2)
        start = offset + 12
    else:
        raise serialization_error(f"unsupported NPY format version {major}.{prefix[1]}")

    raw = bytes(data[start : start + length])
    if len(raw) != length:
        raise serialization_error("invalid NPY header: unexpected end of data")

    try:
        text = raw.decode("utf8" if major == 3 else "latin1")
    except UnicodeDecodeError:
        raise serialization_error("invalid NPY header: invalid utf8 text") from None

    if not text.endswith("\n"):
        raise serialization_error("invalid NPY header: it must end with a newline")

    descr, fortran_order, shape = parse_header_text(text)
    return descr, fortran_order, shape, start + length


def header_size(data, offset: int = 0) -> Optional[int]:
    """Total size of the NPY header starting at ``offset`` in ``data``, if
    ``data`` contains enough bytes to tell, else ``None``."""
    if len(data) - offset < 12:
        return None
    major = data[offset + 6]
    if major == 1:
        return 10 + struct.unpack_from("<H", data, offset + 8)[0]
    return 12 + struct.unpack_from("<I", data, offset + 8)[0]


def data_dtype(descr: Descr, fortran_order: bool) -> np.dtype:
    """The dtype of stored data from its descr (in the stored byte order)."""
    if fortran_order:
        raise serialization_error("data can not be loaded from fortran-order arrays")

    if not isinstance(descr, str):
        raise serialization_error(
            "invalid dtype for data: structured arrays are not supported"
        )

    if descr[:1] in "<>|=" and len(descr) > 1:
        order, code = descr[0], descr[1:]
    else:
        order, code = "=", descr

    dtype = _CODE_DTYPES.get(code)
    if dtype is None:
        raise serialization_error(f"unsupported data type '{descr}' in NPY data")

    if order == ">" and dtype.itemsize > 1:
        return dtype.newbyteorder(">")
    elif order == "<" and dtype.itemsize > 1:
        return dtype.newbyteorder("<")
    return dtype


def labels_fields(descr: Descr, shape: Tuple[int, ...], fortran_order: bool):
    """Check the header of a Labels member, returning ``(names, dtype, count)``
    where ``dtype`` is ``<i4`` or ``>i4``."""
    if isinstance(descr, str) or len(shape) != 1:
        raise serialization_error("invalid dtype for labels")

    # fortran_order is ignored: 1-D arrays are the same in both orders
    types = {t for _, t in descr}
    if not descr:
        dtype = np.dtype("<i4")
    elif types == {"<i4"}:
        dtype = np.dtype("<i4")
    elif types == {">i4"}:
        dtype = np.dtype(">i4")
    else:
        raise serialization_error("invalid dtype for labels")

    return [name for name, _ in descr], dtype, shape[0]
