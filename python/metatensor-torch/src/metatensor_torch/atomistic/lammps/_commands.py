"""Parsing of the ``pair_style metatensor`` and ``pair_coeff`` commands and
of LAMMPS inputs."""

from typing import Any, Dict, List, Sequence


_NON_CONSERVATIVE = {"off": False, "on": True, "forces": "forces", "stress": "stress"}
_BOOLEANS = {"on": True, "yes": True, "true": True, "off": False, "no": False}
_FALSE = {"off", "no", "false"}


class PairStyleError(ValueError):
    """An error in the ``pair_style metatensor`` or ``pair_coeff`` commands, or
    in the setup of a model for LAMMPS."""


# ============================================================================ #
# parsing of the LAMMPS commands


def parse_pair_style(arguments: Sequence[str]) -> Dict[str, Any]:
    """Parse the arguments of ``pair_style metatensor`` (after the style name):
    the model path and the keywords of the LAMMPS plugin of metatomic.

    :param arguments: ``["model.pt", "keyword", "value", ...]``
    :return: the keyword arguments of :py:class:`LammpsModel` (``model``,
        ``device``, ``check_consistency``, ``non_conservative``, ``scale``,
        ``uncertainty_threshold``, ``variants`` and ``extensions_directory``)
    """
    if len(arguments) == 0:
        raise PairStyleError(
            "missing model path: the syntax is 'pair_style metatensor model.pt "
            "[keyword value ...]'"
        )
    options: Dict[str, Any] = {"model": arguments[0], "variants": {}}
    rest = list(arguments[1:])
    if len(rest) % 2 != 0:
        raise PairStyleError(
            f"keyword '{rest[-1]}' of pair_style metatensor has no value "
            "(keywords come as 'keyword value' pairs)"
        )
    for keyword, value in zip(rest[0::2], rest[1::2]):
        if keyword == "device":
            options["device"] = value
        elif keyword == "extensions":
            options["extensions_directory"] = value
        elif keyword == "check_consistency":
            options["check_consistency"] = _boolean(keyword, value)
        elif keyword == "non_conservative":
            if value not in _NON_CONSERVATIVE:
                raise PairStyleError(
                    "the value of 'non_conservative' must be one of "
                    f"{sorted(_NON_CONSERVATIVE)}, got '{value}'"
                )
            options["non_conservative"] = _NON_CONSERVATIVE[value]
        elif keyword == "scale":
            options["scale"] = _number(keyword, value)
        elif keyword == "uncertainty_threshold":
            options["uncertainty_threshold"] = _number(keyword, value)
        elif keyword == "variant":
            options["variants"]["energy"] = None if value in _FALSE else value
        elif keyword.startswith("variant/"):
            output = keyword[len("variant/") :]
            options["variants"][output] = None if value in _FALSE else value
        else:
            raise PairStyleError(
                f"unknown keyword '{keyword}' for pair_style metatensor, expected "
                "one of device, extensions, check_consistency, non_conservative, "
                "scale, uncertainty_threshold, variant, variant/<output>"
            )
    return options


def parse_pair_coeff(arguments: Sequence[str], n_types: int) -> List[int]:
    """Parse the arguments of ``pair_coeff * * Z1 Z2 ...``: the atomic number of
    each LAMMPS atom type.

    :param arguments: ``["*", "*", "29", "13"]``
    :param n_types: the number of atom types of the LAMMPS simulation
    :return: the atomic number of each atom type (type 1 first)
    """
    if len(arguments) < 2 or arguments[0] != "*" or arguments[1] != "*":
        raise PairStyleError(
            "pair_coeff for pair_style metatensor must be 'pair_coeff * * <atomic "
            f"number of each of the {n_types} atom types>', got 'pair_coeff "
            + " ".join(arguments)
            + "'"
        )
    values = list(arguments[2:])
    if len(values) < n_types:
        missing = ", ".join(str(t) for t in range(len(values) + 1, n_types + 1))
        raise PairStyleError(
            f"no atomic number for atom type(s) {missing} in 'pair_coeff "
            + " ".join(arguments)
            + f"': give one atomic number for each of the {n_types} atom types"
        )
    if len(values) > n_types:
        raise PairStyleError(
            "too many atomic numbers in 'pair_coeff "
            + " ".join(arguments)
            + f"': the simulation has {n_types} atom types"
        )
    numbers: List[int] = []
    for atom_type, value in enumerate(values, start=1):
        try:
            number = int(value)
        except ValueError:
            number = -1
        if number <= 0:
            raise PairStyleError(
                f"the atomic number of atom type {atom_type} in pair_coeff must be "
                f"a positive integer, got '{value}'"
            )
        numbers.append(number)
    return numbers


def _boolean(keyword: str, value: str) -> bool:
    if value.lower() not in _BOOLEANS:
        raise PairStyleError(
            f"the value of '{keyword}' must be on or off, got '{value}'"
        )
    return _BOOLEANS[value.lower()]


def _number(keyword: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise PairStyleError(
            f"the value of '{keyword}' must be a number, got '{value}'"
        ) from None


def split_commands(text: str) -> List[str]:
    """Split a LAMMPS input into commands: lines joined at a trailing ``&``,
    comments removed, empty lines skipped.

    :param text: the content of the input file
    """
    commands: List[str] = []
    current = ""
    for line in text.splitlines():
        stripped = line.rstrip()
        if stripped.endswith("&"):
            current += stripped[:-1] + " "
            continue
        current += line
        command = _strip_comment(current).strip()
        current = ""
        if command:
            commands.append(command)
    command = _strip_comment(current).strip()
    if command:
        commands.append(command)
    return commands


def _strip_comment(line: str) -> str:
    quote = None
    for index, character in enumerate(line):
        if quote is not None:
            if character == quote:
                quote = None
        elif character in "'\"":
            quote = character
        elif character == "#":
            return line[:index]
    return line
