"""Physical units: parsing of unit expressions, conversion factors and
validation of units against named physical dimensions.

A unit expression combines unit names (case-insensitive, see
:py:func:`unit_conversion_factor` for the list) and numbers with ``*``, ``/``,
``^`` and parentheses, for example ``"kJ/mol/A^2"`` or ``"(eV*u)^(1/2)"``.
Whitespace is ignored and the micro sign (``µ``) is accepted. The expression is
converted to reverse polish notation with the shunting-yard algorithm (``*`` and
``/`` have precedence 10, ``^`` precedence 20, all operators are left
associative), and evaluated to a factor to SI units and a dimension: a vector of
five exponents for length (L), time (T), mass (M), electric current (I) and
temperature (Θ).

Everything here is written in the TorchScript subset of Python: a scripted model
can call :py:func:`unit_conversion_factor` and :py:func:`validate_unit`.
Eager calls keep the result of parsing every expression in a cache.
"""

import math
import warnings
from typing import Dict, List, Tuple

import torch


# ============================================================================ #
# base units


def _dimension_names() -> List[str]:
    return ["L", "T", "M", "I", "Θ"]


def _base_units() -> Dict[str, List[float]]:
    """All known unit names (lowercase), mapped to ``[factor to SI, L, T, M, I,
    Θ]``."""
    ev = 1.602176634e-19
    length = [1.0, 0.0, 0.0, 0.0, 0.0]
    time = [0.0, 1.0, 0.0, 0.0, 0.0]
    mass = [0.0, 0.0, 1.0, 0.0, 0.0]
    energy = [2.0, -2.0, 1.0, 0.0, 0.0]
    charge = [0.0, 1.0, 0.0, 1.0, 0.0]
    pressure = [-1.0, -2.0, 1.0, 0.0, 0.0]
    temperature = [0.0, 0.0, 0.0, 0.0, 1.0]

    units: Dict[str, List[float]] = {}
    # temperature
    for name in ["kelvin", "k"]:
        units[name] = [1.0] + temperature
    # length
    for name in ["angstrom", "a"]:
        units[name] = [1e-10] + length
    units["bohr"] = [5.2917721054482e-11] + length
    for name in ["nm", "nanometer"]:
        units[name] = [1e-9] + length
    for name in ["meter", "m"]:
        units[name] = [1.0] + length
    for name in ["cm", "centimeter"]:
        units[name] = [1e-2] + length
    for name in ["mm", "millimeter"]:
        units[name] = [1e-3] + length
    for name in ["um", "micrometer"]:
        units[name] = [1e-6] + length
    # energy
    for name in ["electronvolt", "ev"]:
        units[name] = [ev] + energy
    units["mev"] = [1e-3 * ev] + energy
    units["hartree"] = [4.359744722206048e-18] + energy
    for name in ["ry", "rydberg"]:
        units[name] = [2.179872361103024e-18] + energy
    for name in ["joule", "j"]:
        units[name] = [1.0] + energy
    units["kcal"] = [4184.0] + energy
    units["kj"] = [1000.0] + energy
    # time
    for name in ["s", "second"]:
        units[name] = [1.0] + time
    for name in ["ms", "millisecond"]:
        units[name] = [1e-3] + time
    for name in ["us", "microsecond"]:
        units[name] = [1e-6] + time
    for name in ["ns", "nanosecond"]:
        units[name] = [1e-9] + time
    for name in ["ps", "picosecond"]:
        units[name] = [1e-12] + time
    for name in ["fs", "femtosecond"]:
        units[name] = [1e-15] + time
    # mass
    for name in ["u", "dalton"]:
        units[name] = [1.6605390689252e-27] + mass
    for name in ["kg", "kilogram"]:
        units[name] = [1.0] + mass
    for name in ["g", "gram"]:
        units[name] = [1e-3] + mass
    for name in ["electron_mass", "m_e"]:
        units[name] = [9.109383713928e-31] + mass
    # charge
    units["e"] = [ev] + charge
    for name in ["coulomb", "c"]:
        units[name] = [1.0] + charge
    # pressure
    for name in ["pa", "pascal"]:
        units[name] = [1.0] + pressure
    for name in ["kpa", "kilopascal"]:
        units[name] = [1e3] + pressure
    for name in ["mpa", "megapascal"]:
        units[name] = [1e6] + pressure
    for name in ["gpa", "gigapascal"]:
        units[name] = [1e9] + pressure
    units["bar"] = [1e5] + pressure
    units["atm"] = [101325.0] + pressure
    # dipole moment (charge x length)
    for name in ["debye", "d"]:
        units[name] = [1e-21 / 299792458.0, 1.0, 1.0, 0.0, 1.0, 0.0]
    # dimensionless
    units["mol"] = [6.02214076e23, 0.0, 0.0, 0.0, 0.0, 0.0]
    # derived constants (energy x time)
    units["hbar"] = [1.0545718176462e-34, 2.0, -1.0, 1.0, 0.0, 0.0]
    return units


def _named_dimensions() -> Dict[str, List[float]]:
    """The physical dimensions that units can be validated against."""
    return {
        "length": [1.0, 0.0, 0.0, 0.0, 0.0],
        "energy": [2.0, -2.0, 1.0, 0.0, 0.0],
        "force": [1.0, -2.0, 1.0, 0.0, 0.0],
        "pressure": [-1.0, -2.0, 1.0, 0.0, 0.0],
        "momentum": [1.0, -1.0, 1.0, 0.0, 0.0],
        "mass": [0.0, 0.0, 1.0, 0.0, 0.0],
        "velocity": [1.0, -1.0, 0.0, 0.0, 0.0],
        "charge": [0.0, 1.0, 0.0, 1.0, 0.0],
        "heat_flux": [3.0, -3.0, 1.0, 0.0, 0.0],
    }


# ============================================================================ #
# parsing


def _is_operator(token: str) -> bool:
    return token == "*" or token == "/" or token == "^" or token == "(" or token == ")"


def _is_number(token: str) -> bool:
    """Does ``token`` look like a (signed, decimal) floating point number?"""
    n = len(token)
    i = 0
    if i < n and (token[i] == "+" or token[i] == "-"):
        i += 1
    digits = 0
    while i < n and token[i].isdigit():
        i += 1
        digits += 1
    if i < n and token[i] == ".":
        i += 1
        while i < n and token[i].isdigit():
            i += 1
            digits += 1
    if digits == 0:
        return False
    if i < n and token[i] == "e":
        i += 1
        if i < n and (token[i] == "+" or token[i] == "-"):
            i += 1
        exponent_digits = 0
        while i < n and token[i].isdigit():
            i += 1
            exponent_digits += 1
        if exponent_digits == 0:
            return False
    return i == n


def _tokenize(unit: str) -> List[str]:
    """Split a (lowercase) unit expression into operators and values."""
    tokens: List[str] = []
    current = ""
    for c in unit:
        if c.isspace():
            continue
        if _is_operator(c):
            if len(current) != 0:
                tokens.append(current)
                current = ""
            tokens.append(c)
        else:
            current += c
    if len(current) != 0:
        tokens.append(current)
    return tokens


def _precedence(operator: str) -> int:
    if operator == "^":
        return 20
    return 10


def _to_rpn(tokens: List[str], unit: str) -> List[str]:
    """Shunting-yard: convert infix ``tokens`` to reverse polish notation."""
    output: List[str] = []
    operators: List[str] = []
    for token in tokens:
        if token == "(":
            operators.append(token)
        elif token == ")":
            found = False
            while len(operators) != 0:
                top = operators.pop()
                if top == "(":
                    found = True
                    break
                output.append(top)
            if not found:
                raise ValueError(
                    "unbalanced parentheses in unit '" + unit + "': unexpected ')'"
                )
        elif _is_operator(token):
            # all operators are left associative
            while len(operators) != 0:
                top = operators[-1]
                if top == "(" or _precedence(top) < _precedence(token):
                    break
                output.append(operators.pop())
            operators.append(token)
        else:
            output.append(token)
    while len(operators) != 0:
        top = operators.pop()
        if top == "(":
            raise ValueError(
                "unbalanced parentheses in unit '" + unit + "': missing ')'"
            )
        output.append(top)
    return output


def _format_dimension(dimension: List[float]) -> str:
    names = _dimension_names()
    parts: List[str] = []
    for i in range(5):
        power = dimension[i]
        if abs(power) < 1e-10:
            continue
        if abs(power - 1.0) < 1e-10:
            parts.append(names[i])
        elif abs(power - round(power)) < 1e-10:
            parts.append(names[i] + "^" + str(int(round(power))))
        else:
            parts.append(names[i] + "^" + str(power))
    if len(parts) == 0:
        return "1 (dimensionless)"
    return " ".join(parts)


def _same_dimension(first: List[float], second: List[float]) -> bool:
    for i in range(5):
        if abs(first[i] - second[i]) > 1e-10:
            return False
    return True


def _parse_unit(unit: str) -> Tuple[float, List[float]]:
    """Parse a unit expression into its factor to SI units and its dimension.

    :param unit: the unit expression, it must not be empty
    """
    normalized = unit.replace("µ", "u").replace("μ", "u").lower()
    tokens = _tokenize(normalized)
    if len(tokens) == 0:
        raise ValueError("invalid unit expression '" + unit + "': it is empty")

    rpn = _to_rpn(tokens, unit)
    known = _base_units()
    factors: List[float] = []
    dimensions: List[List[float]] = []
    for token in rpn:
        if _is_operator(token):
            if len(factors) < 2:
                raise ValueError(
                    "invalid unit expression '"
                    + unit
                    + "': missing operand for '"
                    + token
                    + "'"
                )
            rhs_factor = factors.pop()
            rhs_dimension = dimensions.pop()
            lhs_factor = factors.pop()
            lhs_dimension = dimensions.pop()
            if token == "*":
                factors.append(lhs_factor * rhs_factor)
                dimensions.append(
                    [lhs_dimension[i] + rhs_dimension[i] for i in range(5)]
                )
            elif token == "/":
                if rhs_factor == 0.0:
                    raise ValueError(
                        "invalid unit expression '" + unit + "': division by zero"
                    )
                factors.append(lhs_factor / rhs_factor)
                dimensions.append(
                    [lhs_dimension[i] - rhs_dimension[i] for i in range(5)]
                )
            else:
                if not _same_dimension(rhs_dimension, [0.0, 0.0, 0.0, 0.0, 0.0]):
                    raise ValueError(
                        "invalid unit expression '"
                        + unit
                        + "': exponents must be dimensionless, got an exponent "
                        + "with dimension "
                        + _format_dimension(rhs_dimension)
                    )
                if lhs_factor > 0.0:
                    # Python raises OverflowError instead of returning inf
                    if abs(rhs_factor * math.log(lhs_factor)) > 709.78:
                        raise ValueError(
                            "unit conversion factor overflows for '" + unit + "'"
                        )
                factors.append(math.pow(lhs_factor, rhs_factor))
                dimensions.append([lhs_dimension[i] * rhs_factor for i in range(5)])
        elif _is_number(token):
            factors.append(float(token))
            dimensions.append([0.0, 0.0, 0.0, 0.0, 0.0])
        elif token in known:
            base = known[token]
            factors.append(base[0])
            dimensions.append(base[1:])
        else:
            raise ValueError("unknown unit '" + token + "' in '" + unit + "'")

    if len(factors) != 1:
        raise ValueError(
            "invalid unit expression '" + unit + "': missing operator between values"
        )
    factor = factors[0]
    if not math.isfinite(factor) or factor == 0.0:
        raise ValueError("unit conversion factor overflows for '" + unit + "'")
    return factor, dimensions[0]


# cache of parsed units, only used in eager mode
_PARSED_UNITS: Dict[str, Tuple[float, List[float]]] = {}


def _parse_unit_cached(unit: str) -> Tuple[float, List[float]]:
    parsed = _PARSED_UNITS.get(unit)
    if parsed is None:
        parsed = _parse_unit(unit)
        _PARSED_UNITS[unit] = parsed
    return parsed


def _parse(unit: str) -> Tuple[float, List[float]]:
    if torch.jit.is_scripting():
        return _parse_unit(unit)
    else:
        return _parse_unit_cached(unit)


# ============================================================================ #
# public functions


def _unit_conversion_factor(from_unit: str, to_unit: str) -> float:
    """Get the factor converting values from ``from_unit`` to ``to_unit``.

    This is the TorchScript version of :py:func:`unit_conversion_factor`.

    :param from_unit: the unit of the data
    :param to_unit: the unit the data should be converted to
    """
    if len(from_unit.strip()) == 0 or len(to_unit.strip()) == 0:
        return 1.0

    from_factor, from_dimension = _parse(from_unit)
    to_factor, to_dimension = _parse(to_unit)
    if not _same_dimension(from_dimension, to_dimension):
        raise ValueError(
            "dimension mismatch in unit conversion: '"
            + from_unit
            + "' has dimension "
            + _format_dimension(from_dimension)
            + " but '"
            + to_unit
            + "' has dimension "
            + _format_dimension(to_dimension)
        )

    factor = from_factor / to_factor
    if not math.isfinite(factor) or factor == 0.0:
        raise ValueError(
            "unit conversion factor overflows when converting from '"
            + from_unit
            + "' to '"
            + to_unit
            + "'"
        )
    return factor


def unit_conversion_factor(*args, **kwargs) -> float:
    """
    Get the multiplicative factor converting values from ``from_unit`` to
    ``to_unit``, i.e. ``value_in_to_unit = factor * value_in_from_unit``.

    Units are expressions combining unit names and numbers with ``*``, ``/``,
    ``^`` and parentheses (e.g. ``"kJ/mol/A^2"``, ``"(eV*u)^(1/2)"``). Unit
    names are case-insensitive and whitespace is ignored. The known names are:

    - length: ``angstrom``/``A``, ``bohr``, ``nm``/``nanometer``, ``meter``/``m``,
      ``cm``/``centimeter``, ``mm``/``millimeter``, ``um``/``µm``/``micrometer``;
    - energy: ``electronvolt``/``eV``, ``meV`` (milli-electronvolt), ``hartree``,
      ``ry``/``rydberg``, ``joule``/``J``, ``kcal``, ``kJ``;
    - time: ``s``/``second``, ``ms``/``millisecond``, ``us``/``µs``/``microsecond``,
      ``ns``/``nanosecond``, ``ps``/``picosecond``, ``fs``/``femtosecond``;
    - mass: ``u``/``dalton``, ``kg``/``kilogram``, ``g``/``gram``,
      ``electron_mass``/``m_e``;
    - charge: ``e`` (elementary charge), ``coulomb``/``C``;
    - pressure: ``Pa``/``pascal``, ``kPa``/``kilopascal``, ``MPa``/``megapascal``,
      ``GPa``/``gigapascal``, ``bar``, ``atm``;
    - temperature: ``kelvin``/``K``;
    - others: ``debye``/``D`` (dipole), ``mol`` (Avogadro number), ``hbar``.

    If either unit is empty, the factor is ``1.0``.

    This function can be used from TorchScript code with two arguments. The
    deprecated three-argument form ``unit_conversion_factor(quantity,
    from_unit, to_unit)`` (positional or keyword arguments, the quantity is
    ignored) is only supported in Python, and emits a ``DeprecationWarning``.

    :param from_unit: the unit of the data
    :param to_unit: the unit the data should be converted to

    :raises ValueError: if one of the units can not be parsed, if the units
        have different physical dimensions, or if the factor is not finite
    """
    from_unit, to_unit = _conversion_arguments(args, kwargs)
    return _unit_conversion_factor(from_unit, to_unit)


def _conversion_arguments(args, kwargs) -> Tuple[str, str]:
    """Resolve the 2- and deprecated 3-argument forms of
    :py:func:`unit_conversion_factor`."""
    unknown = set(kwargs) - {"quantity", "from_unit", "to_unit"}
    if unknown:
        raise TypeError(
            "unit_conversion_factor() got an unexpected keyword argument "
            f"'{sorted(unknown)[0]}'"
        )

    names = ["from_unit", "to_unit"]
    if len(args) == 3 or "quantity" in kwargs or len(args) + len(kwargs) == 3:
        names = ["quantity", "from_unit", "to_unit"]
    if len(args) > len(names):
        raise TypeError(
            f"unit_conversion_factor() takes 2 positional arguments but {len(args)} "
            "were given"
        )

    values = dict(zip(names, args))
    for name, value in kwargs.items():
        if name in values:
            raise TypeError(
                f"unit_conversion_factor() got multiple values for argument '{name}'"
            )
        values[name] = value

    missing = [name for name in names if name not in values]
    if missing:
        raise TypeError(
            f"unit_conversion_factor() missing required argument '{missing[0]}'"
        )

    if "quantity" in values:
        warnings.warn(
            "the `quantity` argument of `unit_conversion_factor` is deprecated and "
            "ignored, call `unit_conversion_factor(from_unit, to_unit)` instead",
            category=DeprecationWarning,
            stacklevel=3,
        )

    for name in ["from_unit", "to_unit"]:
        if not isinstance(values[name], str):
            raise TypeError(
                f"`{name}` must be a string, got {type(values[name]).__name__}"
            )
    return values["from_unit"], values["to_unit"]


# when a scripted function calls `unit_conversion_factor`, TorchScript compiles
# the two-argument version instead of the Python wrapper
unit_conversion_factor.__prepare_scriptable__ = lambda: _unit_conversion_factor


# names of dimensions for which `validate_unit` already warned (eager only)
_WARNED_DIMENSIONS: Dict[str, bool] = {}


def _warn_unknown_dimension(dimension: str):
    if dimension not in _WARNED_DIMENSIONS:
        _WARNED_DIMENSIONS[dimension] = True
        warnings.warn(
            "unknown dimension '" + dimension + "', the unit will not be checked",
            stacklevel=3,
        )


def validate_unit(dimension: str, unit: str) -> None:
    """
    Check that ``unit`` is a valid unit expression, with the given physical
    ``dimension``.

    :param dimension: one of ``"length"``, ``"energy"``, ``"force"``,
        ``"pressure"``, ``"momentum"``, ``"mass"``, ``"velocity"``, ``"charge"``,
        ``"heat_flux"``; ``""`` and ``"none"`` accept any valid unit. Other
        dimension names only emit a warning (once per name), and the unit is
        then only parsed.
    :param unit: the unit expression to check, an empty unit is always accepted

    :raises ValueError: if the unit can not be parsed or has another dimension
    """
    if len(unit.strip()) == 0:
        return

    _, unit_dimension = _parse(unit)
    if len(dimension) == 0 or dimension == "none":
        return

    dimensions = _named_dimensions()
    if dimension not in dimensions:
        if torch.jit.is_scripting():
            warnings.warn(
                "unknown dimension '" + dimension + "', the unit will not be checked"
            )
        else:
            _warn_unknown_dimension(dimension)
        return

    expected = dimensions[dimension]
    if not _same_dimension(unit_dimension, expected):
        raise ValueError(
            "unit '"
            + unit
            + "' has dimension "
            + _format_dimension(unit_dimension)
            + " which is incompatible with '"
            + dimension
            + "' ("
            + _format_dimension(expected)
            + ")"
        )
