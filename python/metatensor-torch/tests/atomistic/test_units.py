import io
import math
import re
import warnings

import pytest
import torch

from metatensor.torch.atomistic import unit_conversion_factor, validate_unit
from metatensor_torch.atomistic import _units


# ============================================================================ #
# conversion factors


def test_verified_values():
    assert unit_conversion_factor("eV", "kJ/mol") == 96.48533212331002
    assert unit_conversion_factor("angstrom", "bohr") == 1.8897261259048541
    assert unit_conversion_factor("(eV*u)^(1/2)", "u*A/fs") == 0.09822694743376074


@pytest.mark.parametrize(
    "from_unit, to_unit, expected",
    [
        # length
        ("A", "m", 1e-10),
        ("nm", "A", 10.0),
        ("nanometer", "angstrom", 10.0),
        ("cm", "m", 1e-2),
        ("centimeter", "mm", 10.0),
        ("millimeter", "m", 1e-3),
        ("um", "m", 1e-6),
        ("micrometer", "m", 1e-6),
        ("meter", "m", 1.0),
        ("bohr", "m", 5.2917721054482e-11),
        # energy
        ("eV", "J", 1.602176634e-19),
        ("electronvolt", "joule", 1.602176634e-19),
        ("meV", "eV", 1e-3),
        ("hartree", "J", 4.359744722206048e-18),
        ("Ry", "J", 2.179872361103024e-18),
        ("rydberg", "hartree", 0.5),
        ("kcal", "J", 4184.0),
        ("kJ", "J", 1000.0),
        ("kcal", "kJ", 4.184),
        # time
        ("s", "fs", 1e15),
        ("second", "s", 1.0),
        ("ms", "s", 1e-3),
        ("millisecond", "s", 1e-3),
        ("us", "s", 1e-6),
        ("microsecond", "s", 1e-6),
        ("ns", "s", 1e-9),
        ("nanosecond", "s", 1e-9),
        ("ps", "fs", 1000.0),
        ("picosecond", "s", 1e-12),
        ("femtosecond", "s", 1e-15),
        # mass
        ("u", "kg", 1.6605390689252e-27),
        ("dalton", "u", 1.0),
        ("kilogram", "g", 1000.0),
        ("gram", "kg", 1e-3),
        ("electron_mass", "kg", 9.109383713928e-31),
        ("m_e", "electron_mass", 1.0),
        # charge
        ("e", "C", 1.602176634e-19),
        ("coulomb", "c", 1.0),
        # pressure
        ("Pa", "pascal", 1.0),
        ("kPa", "Pa", 1e3),
        ("kilopascal", "Pa", 1e3),
        ("MPa", "megapascal", 1.0),
        ("GPa", "Pa", 1e9),
        ("gigapascal", "Pa", 1e9),
        ("bar", "Pa", 1e5),
        ("atm", "Pa", 101325.0),
        ("eV/A^3", "GPa", 160.21766339999996),
        # temperature
        ("K", "kelvin", 1.0),
        # others
        ("debye", "C*m", 1e-21 / 299792458.0),
        ("D", "e*A", 1e-21 / 299792458.0 / 1.602176634e-19 / 1e-10),
        ("mol", "1", 6.02214076e23),
        ("hbar", "J*s", 1.0545718176462e-34),
    ],
)
def test_base_units(from_unit, to_unit, expected):
    assert unit_conversion_factor(from_unit, to_unit) == pytest.approx(
        expected, rel=1e-14
    )


def test_compound_expressions():
    # left associative: kJ/mol/A^2 = ((kJ/mol)/(A^2))
    expected = 1000.0 / 6.02214076e23 / 1e-20 / 1.602176634e-19 * 1e-20
    assert unit_conversion_factor("kJ/mol/A^2", "eV/A^2") == pytest.approx(
        expected, rel=1e-14
    )
    assert unit_conversion_factor("kJ/mol/A^2", "(kJ/mol)/(A^2)") == 1.0
    assert unit_conversion_factor("eV/A/A", "eV/(A*A)") == 1.0
    assert unit_conversion_factor("eV/A/A", "eV/A^2") == pytest.approx(1.0)
    # `^` binds tighter than `*` and `/`
    assert unit_conversion_factor("A*A^2", "A^3") == pytest.approx(1.0)
    assert unit_conversion_factor("2*A", "A") == 2.0
    assert unit_conversion_factor("A^-1", "nm^-1") == pytest.approx(10.0)
    assert unit_conversion_factor("A^(-1)", "nm^-1") == pytest.approx(10.0)
    # hbar / bohr momentum in atomic units
    assert unit_conversion_factor("hbar/bohr", "kg*m/s") == pytest.approx(
        1.0545718176462e-34 / 5.2917721054482e-11, rel=1e-14
    )


def test_fractional_exponents():
    assert unit_conversion_factor("A^0.5", "m^(1/2)") == pytest.approx(1e-5)
    assert unit_conversion_factor("(eV/u)^(1/2)", "A/fs") == pytest.approx(
        math.sqrt(1.602176634e-19 / 1.6605390689252e-27) * 1e-5, rel=1e-14
    )
    # (eV*u)^(1/2) is a momentum
    validate_unit("momentum", "(eV*u)^(1/2)")
    validate_unit("velocity", "(eV/u)^(1/2)")


def test_case_whitespace_and_micro_sign():
    assert unit_conversion_factor("EV", "ev") == 1.0
    assert unit_conversion_factor("Angstrom", "ANGSTROM") == 1.0
    assert unit_conversion_factor("  kJ / mol  ", "kJ/mol") == 1.0
    assert unit_conversion_factor("( eV * u ) ^ ( 1 / 2 )", "(eV*u)^(1/2)") == 1.0
    # micro sign (U+00B5) and greek mu (U+03BC)
    assert unit_conversion_factor("\u00b5m", "um") == 1.0
    assert unit_conversion_factor("\u03bcs", "us") == 1.0
    assert unit_conversion_factor("\u00b5s", "s") == 1e-6
    # "MeV" is milli-electronvolt (case-insensitive names)
    assert unit_conversion_factor("MeV", "eV") == pytest.approx(1e-3)


def test_empty_units():
    assert unit_conversion_factor("", "eV") == 1.0
    assert unit_conversion_factor("eV", "") == 1.0
    assert unit_conversion_factor("", "") == 1.0
    # no dimension check with an empty unit
    assert unit_conversion_factor("", "m") == 1.0


def test_dimension_mismatch():
    message = (
        "dimension mismatch in unit conversion: 'eV' has dimension L^2 T^-2 M "
        "but 'A' has dimension L"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        unit_conversion_factor("eV", "A")

    with pytest.raises(ValueError, match="'e' has dimension T I but 'K' has dimension"):
        unit_conversion_factor("e", "K")

    with pytest.raises(
        ValueError,
        match=re.escape("'A' has dimension L but 'A^0.5' has dimension L^0.5"),
    ):
        unit_conversion_factor("A", "A^0.5")


@pytest.mark.parametrize(
    "unit, message",
    [
        ("foo", "unknown unit 'foo'"),
        ("eV/bar2", "unknown unit 'bar2'"),
        ("eV A", "unknown unit 'eva'"),
        ("(eV", "unbalanced parentheses in unit '\\(eV': missing '\\)'"),
        ("eV)", "unbalanced parentheses in unit 'eV\\)': unexpected '\\)'"),
        ("eV^", "missing operand for '\\^'"),
        ("*eV", "missing operand for '\\*'"),
        ("()", "invalid unit expression '\\(\\)'"),
        ("eV^A", "exponents must be dimensionless"),
        ("kJ^200", "unit conversion factor overflows"),
        ("A^40", "unit conversion factor overflows"),
        ("0*A", "unit conversion factor overflows"),
        ("A/0", "division by zero"),
    ],
)
def test_invalid_units(unit, message):
    with pytest.raises(ValueError, match=message):
        unit_conversion_factor(unit, "eV")


def test_overflow_of_the_ratio():
    # each unit is finite, but the ratio is not
    with pytest.raises(ValueError, match="unit conversion factor overflows"):
        unit_conversion_factor("1e200*kg", "1e-200*kg")


def test_parse_cache():
    _units._PARSED_UNITS.pop("kcal/mol/nm", None)
    unit_conversion_factor("kcal/mol/nm", "eV/A")
    assert "kcal/mol/nm" in _units._PARSED_UNITS
    factor, dimension = _units._PARSED_UNITS["kcal/mol/nm"]
    assert dimension == [1.0, -2.0, 1.0, 0.0, 0.0]
    assert factor == pytest.approx(4184.0 / 6.02214076e23 / 1e-9)


# ============================================================================ #
# deprecated three-argument form


def test_three_arguments_positional():
    with pytest.warns(DeprecationWarning, match="`quantity` argument"):
        assert unit_conversion_factor("energy", "eV", "meV") == 1000.0


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (("energy",), {"from_unit": "eV", "to_unit": "meV"}),
        (("energy", "eV"), {"to_unit": "meV"}),
        ((), {"quantity": "energy", "from_unit": "eV", "to_unit": "meV"}),
    ],
)
def test_three_arguments_keywords(args, kwargs):
    with pytest.warns(DeprecationWarning, match="`quantity` argument"):
        assert unit_conversion_factor(*args, **kwargs) == 1000.0


def test_two_arguments_keywords():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert unit_conversion_factor("eV", to_unit="meV") == 1000.0
        assert unit_conversion_factor(from_unit="eV", to_unit="meV") == 1000.0
        assert unit_conversion_factor(to_unit="meV", from_unit="eV") == 1000.0


def test_invalid_arguments():
    with pytest.raises(TypeError, match="unexpected keyword argument 'unit'"):
        unit_conversion_factor("eV", unit="meV")

    with pytest.raises(TypeError, match="multiple values for argument 'from_unit'"):
        unit_conversion_factor("eV", "meV", from_unit="eV")

    with pytest.raises(TypeError, match="missing required argument 'to_unit'"):
        unit_conversion_factor("eV")

    with pytest.raises(TypeError, match="takes 2 positional arguments but 4"):
        unit_conversion_factor("a", "b", "c", "d")

    with pytest.raises(TypeError, match="`from_unit` must be a string, got int"):
        unit_conversion_factor(3, "eV")


# ============================================================================ #
# validate_unit


def test_validate_unit():
    validate_unit("length", "A")
    validate_unit("length", "bohr")
    validate_unit("energy", "kcal/mol")
    validate_unit("force", "eV/A")
    validate_unit("pressure", "eV/A^3")
    validate_unit("pressure", "GPa")
    validate_unit("momentum", "u*A/fs")
    validate_unit("mass", "u")
    validate_unit("velocity", "A/fs")
    validate_unit("charge", "e")
    validate_unit("heat_flux", "eV*A/fs")
    # empty units are always fine
    validate_unit("energy", "")
    # "" and "none" only parse the unit
    validate_unit("", "eV/K")
    validate_unit("none", "eV/K")

    with pytest.raises(ValueError, match="unknown unit 'foo'"):
        validate_unit("", "foo")


def test_validate_unit_errors():
    message = (
        "unit 'eV' has dimension L^2 T^-2 M which is incompatible with 'length' (L)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        validate_unit("length", "eV")

    with pytest.raises(ValueError, match="incompatible with 'force' \\(L T\\^-2 M\\)"):
        validate_unit("force", "eV")

    with pytest.raises(
        ValueError, match="unit 'mol' has dimension 1 \\(dimensionless\\)"
    ):
        validate_unit("energy", "mol")


def test_validate_unit_unknown_dimension():
    _units._WARNED_DIMENSIONS.pop("flux_capacity", None)
    with pytest.warns(UserWarning, match="unknown dimension 'flux_capacity'"):
        validate_unit("flux_capacity", "eV")

    # only once
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_unit("flux_capacity", "eV")


# ============================================================================ #
# TorchScript


def test_torchscript_function():
    @torch.jit.script
    def convert(value: float, from_unit: str, to_unit: str) -> float:
        validate_unit("energy", from_unit)
        return value * unit_conversion_factor(from_unit, to_unit)

    assert convert(1.0, "eV", "kJ/mol") == 96.48533212331002
    assert convert(2.0, "", "kJ/mol") == 2.0
    assert convert(1.0, " kJ / mol ", "eV") == pytest.approx(1 / 96.48533212331002)

    # errors raised inside scripted code
    with pytest.raises(torch.jit.Error, match="unknown unit 'foo'"):
        convert(1.0, "foo", "eV")

    message = "'eV' has dimension L^2 T^-2 M but 'A' has dimension L"
    with pytest.raises(torch.jit.Error, match=re.escape(message)):
        convert(1.0, "eV", "A")

    with pytest.raises(torch.jit.Error, match="incompatible with 'energy'"):
        convert(1.0, "A", "m")


def test_torchscript_direct():
    scripted = torch.jit.script(unit_conversion_factor)
    assert scripted("eV", "meV") == 1000.0

    scripted = torch.jit.script(validate_unit)
    scripted("length", "A")


class UnitModule(torch.nn.Module):
    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def forward(self, x: torch.Tensor, unit: str) -> torch.Tensor:
        validate_unit("length", unit)
        return x * unit_conversion_factor(self.unit, unit)


def test_torchscript_save_load():
    module = torch.jit.script(UnitModule("\u00b5m"))
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)

    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert torch.equal(loaded(x, "m"), x * 1e-6)
    # whitespace, fractional powers and non-ASCII names still work after
    # reloading the code from the archive
    assert torch.allclose(loaded(x, " (\u00b5m^2)^(1/2) "), x)

    with pytest.raises(torch.jit.Error, match="unknown unit 'bar2'"):
        loaded(x, "bar2")
    with pytest.raises(torch.jit.Error, match="dimension T which is incompatible"):
        loaded(x, "fs")
