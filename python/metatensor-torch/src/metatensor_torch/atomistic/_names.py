"""Names of the quantities that models can compute or request as inputs.

A valid name is either

* a standard quantity (``"energy"``, ``"feature"``, ``"momentum"``, ...);
* a variant of a standard quantity, ``"<quantity>/<variant>"`` (for example
  ``"energy/pbe0"``);
* a non-standard quantity, ``"<domain>::<name>"`` with an optional
  ``"/<variant>"`` (for example ``"mtt::aux::energy/pbe"``).

The plural names used in earlier versions (``"features"``, ``"momenta"``, ...)
are still accepted, with a ``DeprecationWarning``, and mapped to the new ones by
:py:func:`new_quantity_name`.

These functions are written in the TorchScript subset of Python.
"""

import warnings
from typing import Dict, List

import torch


def _standard_quantities() -> Dict[str, str]:
    """The standard quantities, mapped to the name of their physical dimension
    (``"none"`` for dimensionless quantities)."""
    return {
        "energy": "energy",
        "energy_ensemble": "energy",
        "energy_uncertainty": "energy",
        "feature": "none",
        "spin_multiplicity": "none",
        "non_conservative_force": "force",
        "non_conservative_stress": "pressure",
        "position": "length",
        "momentum": "momentum",
        "velocity": "velocity",
        "mass": "mass",
        "charge": "charge",
        "heat_flux": "heat_flux",
    }


def _deprecated_quantities() -> Dict[str, str]:
    """Deprecated (plural) quantity names, mapped to the new names."""
    return {
        "features": "feature",
        "non_conservative_forces": "non_conservative_force",
        "positions": "position",
        "momenta": "momentum",
        "masses": "mass",
        "velocities": "velocity",
        "charges": "charge",
    }


def _invalid_name_message(name: str) -> str:
    return (
        "'"
        + name
        + "' is not a valid quantity name. Variant names should look like "
        + "'<quantity>/<variant>'. Non-standard names should look like "
        + "'<domain>::<quantity>[/<variant>]'"
    )


def _is_custom(name: str) -> bool:
    return "::" in name


def _base_name(name: str) -> str:
    """The name without its ``/<variant>`` part (the domain of custom names may
    not contain ``/``)."""
    slash = name.find("/")
    if slash < 0:
        return name
    return name[:slash]


# deprecated names for which a warning was already emitted (eager mode only)
_WARNED_NAMES: Dict[str, bool] = {}


def _warn_deprecated_name_once(name: str, new_name: str):
    if name not in _WARNED_NAMES:
        _WARNED_NAMES[name] = True
        warnings.warn(
            "'" + name + "' is deprecated, please use '" + new_name + "' instead",
            category=DeprecationWarning,
            stacklevel=4,
        )


def _warn_deprecated_name(name: str, new_name: str):
    if torch.jit.is_scripting():
        warnings.warn(
            "'" + name + "' is deprecated, please use '" + new_name + "' instead"
        )
    else:
        _warn_deprecated_name_once(name, new_name)


def check_quantity_name(name: str, warn_deprecated: bool = True) -> None:
    """Check that ``name`` is a valid name for a model output or input.

    Deprecated names are accepted, and emit a ``DeprecationWarning`` (once per
    name) unless ``warn_deprecated`` is ``False``.

    :param name: the name to check
    :param warn_deprecated: should deprecated names emit a warning?

    :raises ValueError: if the name is not a standard quantity, a variant of a
        standard quantity or a ``<domain>::<quantity>[/<variant>]`` name
    """
    if len(name) == 0:
        raise ValueError("quantity names can not be empty")

    if _is_custom(name):
        separator = name.find("::")
        domain = name[:separator]
        rest = name[separator + 2 :]
        if len(domain) == 0 or "/" in domain:
            raise ValueError(_invalid_name_message(name))
        slash = rest.find("/")
        if slash == 0 or len(rest) == 0:
            raise ValueError(_invalid_name_message(name))
        if slash > 0 and slash == len(rest) - 1:
            raise ValueError(_invalid_name_message(name))
        return

    base = _base_name(name)
    if len(base) != len(name) and len(base) + 1 == len(name):
        # empty variant
        raise ValueError(_invalid_name_message(name))

    deprecated = _deprecated_quantities()
    if base in deprecated:
        if warn_deprecated:
            _warn_deprecated_name(base, deprecated[base])
    elif base not in _standard_quantities():
        raise ValueError(_invalid_name_message(name))


def new_quantity_name(name: str) -> str:
    """Map a deprecated quantity name (and its variants) to the new name, for
    example ``"features/pca"`` to ``"feature/pca"``. Other names are returned
    unchanged.

    :param name: the quantity name
    """
    if _is_custom(name):
        return name
    base = _base_name(name)
    deprecated = _deprecated_quantities()
    if base in deprecated:
        return deprecated[base] + name[len(base) :]
    return name


def old_quantity_name(name: str) -> str:
    """Map a new quantity name (and its variants) to the deprecated name it
    replaced, for example ``"feature/pca"`` to ``"features/pca"``. Names that
    did not change are returned unchanged.

    :param name: the quantity name
    """
    if _is_custom(name):
        return name
    base = _base_name(name)
    deprecated = _deprecated_quantities()
    for old in deprecated.keys():
        if deprecated[old] == base:
            return old + name[len(base) :]
    return name


def unit_dimension_for_quantity(name: str) -> str:
    """Get the physical dimension of the unit of a quantity.

    The dimension is one of the names accepted by
    :py:func:`validate_unit` (``"energy"``, ``"length"``, ``"force"``, ...),
    ``"none"`` for dimensionless quantities (``feature``,
    ``spin_multiplicity``), and ``""`` for non-standard (``<domain>::<name>``)
    and unknown quantities. Variants have the dimension of their base quantity
    and deprecated names the dimension of the new name.

    :param name: the quantity name
    """
    if _is_custom(name):
        return ""
    base = _base_name(new_quantity_name(name))
    quantities = _standard_quantities()
    if base in quantities:
        return quantities[base]
    return ""


def _quantity_names() -> List[str]:
    """All the standard quantity names."""
    return list(_standard_quantities().keys())
