"""A small JSON writer and reader written in the TorchScript subset of Python.

TorchScript has no ``json`` module, but the model description classes
(:py:class:`ModelOutput`, :py:class:`ModelCapabilities`, ...) and the neighbor
list options serialize themselves to JSON inside ``__getstate__`` /
``__setstate__``, which are compiled. This module provides what they need:

* writing: :py:func:`_json_string` (ASCII-only, with escapes),
  :py:func:`_json_object` (sorted keys) and :py:func:`_json_array`, producing
  the same text as ``json.dumps(value, indent=4, sort_keys=True,
  ensure_ascii=True)``;
* reading: :py:func:`_parse_json` returns a :py:class:`_JsonDocument`, a flat
  tree of nodes (TorchScript classes can not contain themselves) with typed
  accessors raising ``ValueError`` for unexpected content;
* :py:func:`_double_to_bits` / :py:func:`_bits_to_double`: the IEEE-754 bit
  pattern of a double as an int64 (used to store floating point values
  exactly), computed with integer arithmetic since TorchScript can not
  reinterpret bytes.

TorchScript strings are sequences of UTF-8 bytes while Python strings are
sequences of code points; the functions here handle both.

TorchScript ABI: ``__torch__.metatensor_torch.atomistic._json_text._JsonDocument``
is only used while parsing, it is never stored in a model.
"""

import math
import warnings
from typing import List, Tuple

import torch


# ============================================================================ #
# floating point values as int64 bit patterns


def _double_to_bits(value: float) -> int:
    """The IEEE-754 binary64 representation of ``value``, as a signed int64."""
    min_int64 = -9223372036854775807 - 1
    if math.isnan(value):
        return 0x7FF8000000000000

    sign = math.copysign(1.0, value) < 0.0
    magnitude = abs(value)
    if math.isinf(magnitude):
        bits = 0x7FF0000000000000
    elif magnitude == 0.0:
        bits = 0
    else:
        mantissa, exponent = math.frexp(magnitude)
        # magnitude = mantissa * 2^exponent with 0.5 <= mantissa < 1
        biased = exponent + 1022
        if biased >= 1:
            fraction = int((mantissa * 2.0 - 1.0) * 4503599627370496.0)
            bits = (biased << 52) | fraction
        else:
            # subnormal numbers: magnitude = fraction * 2^-1074
            bits = int(math.ldexp(magnitude, 1074))

    if sign:
        return bits + min_int64
    return bits


def _bits_to_double(bits: int) -> float:
    """Inverse of :py:func:`_double_to_bits`."""
    min_int64 = -9223372036854775807 - 1
    negative = bits < 0
    if negative:
        bits = bits - min_int64

    exponent = bits >> 52
    fraction = bits & 0xFFFFFFFFFFFFF
    if exponent == 0x7FF:
        if fraction != 0:
            return math.nan
        value = math.inf
    elif exponent == 0:
        value = math.ldexp(float(fraction), -1074)
    else:
        value = math.ldexp(float(fraction + 4503599627370496), exponent - 1075)

    if negative:
        return -value
    return value


# ============================================================================ #
# writing


def _hex4(value: int) -> str:
    digits = "0123456789abcdef"
    return (
        digits[(value >> 12) & 15]
        + digits[(value >> 8) & 15]
        + digits[(value >> 4) & 15]
        + digits[value & 15]
    )


def _utf8_code_points(text: str) -> List[int]:
    """Decode the UTF-8 bytes of a TorchScript string into code points."""
    points: List[int] = []
    n = len(text)
    i = 0
    while i < n:
        byte = ord(text[i])
        if byte < 0x80:
            points.append(byte)
            i += 1
            continue
        if byte >= 0xF0:
            count = 3
            point = byte & 0x07
        elif byte >= 0xE0:
            count = 2
            point = byte & 0x0F
        else:
            count = 1
            point = byte & 0x1F
        for j in range(count):
            if i + 1 + j < n:
                point = (point << 6) | (ord(text[i + 1 + j]) & 0x3F)
        points.append(point)
        i += 1 + count
    return points


def _code_points(text: str) -> List[int]:
    if torch.jit.is_scripting():
        return _utf8_code_points(text)
    else:
        return [ord(c) for c in text]


def _json_string(text: str) -> str:
    """Quote and escape ``text`` as an ASCII-only JSON string."""
    output: List[str] = ['"']
    for point in _code_points(text):
        if point == 0x22:
            output.append('\\"')
        elif point == 0x5C:
            output.append("\\\\")
        elif point >= 0x20 and point < 0x7F:
            output.append(chr(point))
        elif point == 0x08:
            output.append("\\b")
        elif point == 0x09:
            output.append("\\t")
        elif point == 0x0A:
            output.append("\\n")
        elif point == 0x0C:
            output.append("\\f")
        elif point == 0x0D:
            output.append("\\r")
        elif point < 0x10000:
            output.append("\\u" + _hex4(point))
        else:
            point -= 0x10000
            output.append("\\u" + _hex4(0xD800 + (point >> 10)))
            output.append("\\u" + _hex4(0xDC00 + (point & 0x3FF)))
    output.append('"')
    return "".join(output)


def _json_bool(value: bool) -> str:
    if value:
        return "true"
    return "false"


def _indent(depth: int) -> str:
    return "".join(["    " for _ in range(depth)])


def _json_array(values: List[str], depth: int) -> str:
    """Format a JSON array from already formatted ``values``, for an array
    starting at indentation level ``depth``."""
    if len(values) == 0:
        return "[]"
    inner = _indent(depth + 1)
    lines = [inner + value for value in values]
    return "[\n" + ",\n".join(lines) + "\n" + _indent(depth) + "]"


def _json_object(keys: List[str], values: List[str], depth: int) -> str:
    """Format a JSON object from its ``keys`` (plain strings) and already
    formatted ``values``, for an object starting at indentation level ``depth``.
    The keys are sorted."""
    if len(keys) == 0:
        return "{}"
    order: List[str] = []
    for key in keys:
        order.append(key)
    order.sort()
    inner = _indent(depth + 1)
    lines: List[str] = []
    for key in order:
        lines.append(inner + _json_string(key) + ": " + values[keys.index(key)])
    return "{\n" + ",\n".join(lines) + "\n" + _indent(depth) + "}"


def _json_string_array(values: List[str], depth: int) -> str:
    return _json_array([_json_string(v) for v in values], depth)


def _json_int_array(values: List[int], depth: int) -> str:
    return _json_array([str(v) for v in values], depth)


# ============================================================================ #
# reading


def _kind_name(kind: int) -> str:
    names = ["null", "boolean", "number", "string", "array", "object"]
    return names[kind]


class _JsonDocument:
    """A parsed JSON document, stored as a flat list of nodes.

    Node kinds are 0 (null), 1 (boolean), 2 (number), 3 (string), 4 (array) and
    5 (object). The root node has index 0.
    """

    def __init__(self, size: int):
        # The lists are created from a runtime value and emptied: with empty
        # list literals, the optimized code of reloaded models was observed to
        # share the lists between documents (parsing a second document then
        # read the nodes of the first one)
        self.kinds: List[int] = [size]
        self.kinds.clear()
        # the text of numbers and strings, "true"/"false" for booleans
        self.texts: List[str] = [str(size)]
        self.texts.clear()
        # children of arrays and objects
        self.children: List[List[int]] = [[size]]
        self.children.clear()
        # keys of objects (empty for arrays)
        self.keys: List[List[str]] = [[str(size)]]
        self.keys.clear()

    def _add(self, kind: int, text: str) -> int:
        self.kinds.append(kind)
        self.texts.append(text)
        no_children: List[int] = [kind]
        no_children.clear()
        self.children.append(no_children)
        no_keys: List[str] = [text]
        no_keys.clear()
        self.keys.append(no_keys)
        return len(self.kinds) - 1

    def _expect(self, node: int, kind: int, context: str):
        if self.kinds[node] != kind:
            raise ValueError(
                "invalid JSON data: expected "
                + context
                + " to be "
                + _kind_name(kind)
                + ", got "
                + _kind_name(self.kinds[node])
            )

    def is_null(self, node: int) -> bool:
        return self.kinds[node] == 0

    def has(self, node: int, key: str) -> bool:
        self._expect(node, 5, "the value")
        return key in self.keys[node]

    def get(self, node: int, key: str) -> int:
        self._expect(node, 5, "the value")
        keys = self.keys[node]
        if key not in keys:
            raise ValueError("invalid JSON data: missing '" + key + "' key")
        return self.children[node][keys.index(key)]

    def object_keys(self, node: int, context: str) -> List[str]:
        self._expect(node, 5, context)
        return self.keys[node]

    def items(self, node: int, context: str) -> List[int]:
        self._expect(node, 4, context)
        return self.children[node]

    def string(self, node: int, context: str) -> str:
        self._expect(node, 3, context)
        return self.texts[node]

    def boolean(self, node: int, context: str) -> bool:
        self._expect(node, 1, context)
        return self.texts[node] == "true"

    def integer(self, node: int, context: str) -> int:
        self._expect(node, 2, context)
        text = self.texts[node]
        if "." in text or "e" in text or "E" in text:
            raise ValueError(
                "invalid JSON data: expected " + context + " to be an integer"
            )
        return int(text)

    def string_list(self, node: int, context: str) -> List[str]:
        output: List[str] = []
        for child in self.items(node, context):
            output.append(self.string(child, context + " entries"))
        return output

    def integer_list(self, node: int, context: str) -> List[int]:
        output: List[int] = []
        for child in self.items(node, context):
            output.append(self.integer(child, context + " entries"))
        return output


def _json_optional_string(document: _JsonDocument, node: int, key: str) -> str:
    """The string value of ``key`` in the JSON object ``node``, ``""`` if the key
    is missing (errors name the key as ``'key'``)."""
    if document.has(node, key):
        return document.string(document.get(node, key), "'" + key + "'")
    return ""


def _json_error(message: str, position: int) -> str:
    return "invalid JSON: " + message + " at position " + str(position)


def _is_json_space(c: str) -> bool:
    return c == " " or c == "\n" or c.isspace()


def _hex_value(text: str, start: int) -> int:
    if start + 4 > len(text):
        raise ValueError(_json_error("incomplete unicode escape", start))
    value = 0
    for i in range(start, start + 4):
        digit = "0123456789abcdef".find(text[i].lower())
        if digit < 0:
            raise ValueError(_json_error("invalid unicode escape", start))
        value = value * 16 + digit
    return value


def _encode_code_point(point: int) -> str:
    if not torch.jit.is_scripting():
        return chr(point)
    # TorchScript strings are UTF-8 bytes
    if point < 0x80:
        return chr(point)
    elif point < 0x800:
        return chr(0xC0 | (point >> 6)) + chr(0x80 | (point & 0x3F))
    elif point < 0x10000:
        return (
            chr(0xE0 | (point >> 12))
            + chr(0x80 | ((point >> 6) & 0x3F))
            + chr(0x80 | (point & 0x3F))
        )
    else:
        return (
            chr(0xF0 | (point >> 18))
            + chr(0x80 | ((point >> 12) & 0x3F))
            + chr(0x80 | ((point >> 6) & 0x3F))
            + chr(0x80 | (point & 0x3F))
        )


def _read_string(text: str, start: int) -> Tuple[str, int]:
    """Read the JSON string starting after the quote at ``start - 1``. Returns
    the string and the position after the closing quote."""
    pieces: List[str] = []
    n = len(text)
    i = start
    chunk_start = start
    while i < n:
        c = text[i]
        if c == '"':
            pieces.append(text[chunk_start:i])
            return "".join(pieces), i + 1
        if c == "\\":
            pieces.append(text[chunk_start:i])
            if i + 1 >= n:
                raise ValueError(_json_error("unterminated string", start - 1))
            escape = text[i + 1]
            i += 2
            if escape == '"' or escape == "\\" or escape == "/":
                pieces.append(escape)
            elif "bfnrt".find(escape) >= 0:
                # no "\\r" or "\\t" literals here: TorchScript can not read them
                # back from the archive of a saved model
                codes = [8, 12, 10, 13, 9]
                pieces.append(chr(codes["bfnrt".find(escape)]))
            elif escape == "u":
                point = _hex_value(text, i)
                i += 4
                if point >= 0xD800 and point < 0xDC00:
                    if i + 6 <= n and text[i] == "\\" and text[i + 1] == "u":
                        low = _hex_value(text, i + 2)
                        if low >= 0xDC00 and low < 0xE000:
                            point = 0x10000 + ((point - 0xD800) << 10) + (low - 0xDC00)
                            i += 6
                pieces.append(_encode_code_point(point))
            else:
                raise ValueError(_json_error("invalid escape '\\" + escape + "'", i))
            chunk_start = i
        else:
            i += 1
    raise ValueError(_json_error("unterminated string", start - 1))


def _close_container(stack: List[int], pending_keys: List[str]) -> bool:
    """Close the innermost open array or object while parsing; returns whether
    this completed the document."""
    stack.pop()
    pending_keys.pop()
    return len(stack) == 0


def _parse_json(text: str) -> _JsonDocument:
    """Parse a JSON document (without recursion, TorchScript does not allow
    it)."""
    document = _JsonDocument(len(text))
    # open containers, and for objects the pending key
    stack: List[int] = []
    pending_keys: List[str] = []
    n = len(text)
    i = 0
    # what is allowed next: 0 = a value, 1 = ',' or a closing bracket,
    # 2 = a key or '}' (just after '{'), 3 = a key (after ','), 4 = ':'
    # 5 = a value or ']' (just after '[')
    state = 0
    done = False
    while True:
        while i < n and _is_json_space(text[i]):
            i += 1
        if done:
            if i != n:
                raise ValueError(_json_error("unexpected data after the end", i))
            break
        if i >= n:
            raise ValueError(_json_error("unexpected end of data", i))

        c = text[i]
        if state == 1:
            if len(stack) == 0:
                done = True
                continue
            container = stack[-1]
            is_object = document.kinds[container] == 5
            if c == ",":
                i += 1
                if is_object:
                    state = 3
                else:
                    state = 0
            elif (c == "}" and is_object) or (c == "]" and not is_object):
                i += 1
                state = 1
                done = _close_container(stack, pending_keys)
            else:
                raise ValueError(_json_error("expected ',' or a closing bracket", i))
            continue

        if state == 2 or state == 3:
            if c == "}" and state == 2:
                i += 1
                state = 1
                done = _close_container(stack, pending_keys)
                continue
            if c != '"':
                raise ValueError(_json_error("expected an object key", i))
            key, i = _read_string(text, i + 1)
            pending_keys[-1] = key
            state = 4
            continue

        if state == 4:
            if c != ":":
                raise ValueError(_json_error("expected ':'", i))
            i += 1
            state = 0
            continue

        # state 0 or 5: a value
        if state == 5 and c == "]":
            i += 1
            state = 1
            done = _close_container(stack, pending_keys)
            continue

        if c == "{":
            node = document._add(5, "")
            i += 1
            next_state = 2
        elif c == "[":
            node = document._add(4, "")
            i += 1
            next_state = 5
        elif c == '"':
            value, i = _read_string(text, i + 1)
            node = document._add(3, value)
            next_state = 1
        elif text.startswith("true", i):
            node = document._add(1, "true")
            i += 4
            next_state = 1
        elif text.startswith("false", i):
            node = document._add(1, "false")
            i += 5
            next_state = 1
        elif text.startswith("null", i):
            node = document._add(0, "")
            i += 4
            next_state = 1
        elif c == "-" or c.isdigit():
            end = i + 1
            while end < n and (
                text[end].isdigit()
                or text[end] == "."
                or text[end] == "e"
                or text[end] == "E"
                or text[end] == "+"
                or text[end] == "-"
            ):
                end += 1
            node = document._add(2, text[i:end])
            i = end
            next_state = 1
        else:
            raise ValueError(_json_error("unexpected character '" + c + "'", i))

        if len(stack) != 0:
            parent = stack[-1]
            document.children[parent].append(node)
            if document.kinds[parent] == 5:
                document.keys[parent].append(pending_keys[-1])
        if next_state == 2 or next_state == 5:
            stack.append(node)
            pending_keys.append("")
        elif len(stack) == 0:
            done = True
        state = next_state
    return document


with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.jit.script(_JsonDocument)
