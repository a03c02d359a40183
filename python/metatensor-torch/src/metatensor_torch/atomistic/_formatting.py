"""Formatting of floating point numbers in the TorchScript subset of Python
(TorchScript's ``str(float)`` and ``format`` do not support precisions), giving
the same text in Python and TorchScript."""

import math


def _special_float(value: float) -> str:
    """Text for NaN and infinities, ``""`` for finite values."""
    if value != value:
        return "nan"
    if value == math.inf:
        return "inf"
    if value == -math.inf:
        return "-inf"
    return ""


def _zero_pad(text: str, width: int) -> str:
    while len(text) < width:
        text = "0" + text
    return text


def _format_fixed(value: float) -> str:
    """Format ``value`` with six decimals, like C++ ``std::to_string``."""
    special = _special_float(value)
    if special != "":
        return special
    sign = ""
    if value < 0 or math.copysign(1.0, value) < 0:
        sign = "-"
        value = -value
    if value >= 1e12:
        return sign + str(value)
    scaled = int(round(value * 1e6))
    return sign + str(scaled // 1000000) + "." + _zero_pad(str(scaled % 1000000), 6)


def _strip_zeros(digits: str) -> str:
    return digits.rstrip("0")


def _format_general(value: float) -> str:
    """Format ``value`` with six significant digits, like ``printf("%g")``."""
    special = _special_float(value)
    if special != "":
        return special
    if value == 0.0:
        return "0"
    sign = ""
    if value < 0:
        sign = "-"
        value = -value
    exponent = int(math.floor(math.log10(value)))
    digits = int(round(value / 10.0 ** (exponent - 5)))
    if digits >= 1000000:
        exponent += 1
        digits = int(round(value / 10.0 ** (exponent - 5)))
    elif digits < 100000:
        exponent -= 1
        digits = int(round(value / 10.0 ** (exponent - 5)))
    text = str(digits)
    if exponent >= -4 and exponent < 6:
        if exponent >= 0:
            integer = text[: exponent + 1]
            fraction = _strip_zeros(text[exponent + 1 :])
        else:
            integer = "0"
            fraction = _strip_zeros(_zero_pad("", -exponent - 1) + text)
        if fraction == "":
            return sign + integer
        return sign + integer + "." + fraction
    mantissa = text[:1]
    fraction = _strip_zeros(text[1:])
    if fraction != "":
        mantissa += "." + fraction
    if exponent < 0:
        return sign + mantissa + "e-" + _zero_pad(str(-exponent), 2)
    return sign + mantissa + "e+" + _zero_pad(str(exponent), 2)
