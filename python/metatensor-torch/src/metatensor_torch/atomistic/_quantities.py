"""Standard quantities: their names (see :py:mod:`._names`), choosing between
variants of an output with :py:func:`pick_output`, and checking that the data
produced by a model (or given to it as inputs) has the metadata the standard
quantities require, with :py:func:`check_quantities`.

Everything here is written in the TorchScript subset of Python.
"""

import warnings
from typing import Dict, List, Optional

import torch

from .._labels import Labels
from .._tensor import TensorMap
from .._utils import dtype_name
from ._names import (
    _base_name,
    _is_custom,
    check_quantity_name,
    new_quantity_name,
    old_quantity_name,
    unit_dimension_for_quantity,
)
from ._outputs import ModelOutput
from ._system import System


__all__ = [
    "check_quantities",
    "check_quantity_name",
    "new_quantity_name",
    "old_quantity_name",
    "pick_output",
    "unit_dimension_for_quantity",
]


# ============================================================================ #
# pick_output


def _describe_variants(matching: List[str], outputs: Dict[str, ModelOutput]) -> str:
    lines: List[str] = []
    for name in matching:
        description = outputs[name].description
        if len(description) == 0:
            description = "(no description)"
        lines.append("\n - '" + name + "': " + description)
    return "".join(lines)


def pick_output(
    requested: str,
    outputs: Dict[str, ModelOutput],
    desired_variant: Optional[str] = None,
) -> str:
    """Pick the output to use for ``requested`` among the ``outputs`` of a
    model, taking variants (``"<requested>/<variant>"``) into account.

    :param requested: the name of the base output (e.g. ``"energy"``)
    :param outputs: the outputs of a model (e.g.
        ``model.capabilities().outputs``)
    :param desired_variant: the variant to use, ``None`` (or ``""``) for the
        default (non-variant) output

    :return: ``requested`` or ``"<requested>/<desired_variant>"``

    :raises ValueError: if the output (or the variant) does not exist. When no
        variant is given and only variants exist, the error lists them with
        their descriptions
    """
    prefix = requested + "/"
    matching: List[str] = []
    for name in outputs.keys():
        if name == requested or name.startswith(prefix):
            matching.append(name)
    matching.sort()

    if len(matching) == 0:
        raise ValueError("output '" + requested + "' not found in the outputs")

    if desired_variant is not None and len(desired_variant) != 0:
        name = prefix + desired_variant
        if name in outputs:
            return name
        raise ValueError(
            "variant '"
            + desired_variant
            + "' for output '"
            + requested
            + "' not found, the available variants are:"
            + _describe_variants(matching, outputs)
        )

    if requested in outputs:
        return requested

    raise ValueError(
        "output '"
        + requested
        + "' has no default variant, and no variant was given. Please pick one "
        + "of the available variants:"
        + _describe_variants(matching, outputs)
    )


# ============================================================================ #
# check_quantities


def _format_names(names: List[str]) -> str:
    return "[" + ", ".join(["'" + name + "'" for name in names]) + "]"


def _what(name: str, kind: str) -> str:
    return "'" + name + "' " + kind


def _allowed_sample_kinds(quantity: str) -> List[str]:
    if (
        quantity == "energy"
        or quantity == "energy_uncertainty"
        or quantity == "energy_ensemble"
        or quantity == "feature"
        or quantity == "charge"
    ):
        return ["system", "atom"]
    elif (
        quantity == "non_conservative_stress"
        or quantity == "heat_flux"
        or quantity == "spin_multiplicity"
    ):
        return ["system"]
    else:
        return ["atom"]


def _expected_sample_names(sample_kind: str) -> List[str]:
    if sample_kind == "system":
        return ["system"]
    elif sample_kind == "atom":
        return ["system", "atom"]
    else:
        return [
            "system",
            "first_atom",
            "second_atom",
            "cell_shift_a",
            "cell_shift_b",
            "cell_shift_c",
        ]


def _check_samples(
    what: str,
    samples: Labels,
    sample_kind: str,
    systems: List[System],
    selected_atoms: Optional[Labels],
):
    """Check that ``samples`` are a subset of the expected samples for
    ``sample_kind``, given the ``systems`` and ``selected_atoms``."""
    expected_names = _expected_sample_names(sample_kind)
    if samples.names != expected_names:
        raise ValueError(
            "invalid samples for "
            + what
            + ": expected sample names to be "
            + _format_names(expected_names)
            + " (sample_kind='"
            + sample_kind
            + "'), got "
            + _format_names(samples.names)
        )

    values = samples.values.to(torch.int64)
    device = values.device
    n_systems = len(systems)
    system = values[:, 0]
    if bool(((system < 0) | (system >= n_systems)).any()):
        raise ValueError(
            "invalid samples for "
            + what
            + ": the 'system' dimension should be between 0 and "
            + str(n_systems - 1)
        )

    if sample_kind == "system":
        if selected_atoms is not None:
            allowed = torch.zeros(n_systems, dtype=torch.bool, device=device)
            selected = selected_atoms.values[:, 0].to(torch.int64).to(device)
            selected = selected[(selected >= 0) & (selected < n_systems)]
            allowed[selected] = True
            if not bool(allowed[system].all()):
                raise ValueError(
                    "invalid samples for "
                    + what
                    + ": some samples refer to systems without any atom in "
                    + "`selected_atoms`"
                )
        return

    n_atoms_list: List[int] = [len(s) for s in systems]
    n_atoms = torch.tensor(n_atoms_list, dtype=torch.int64, device=device)
    system_n_atoms = n_atoms[system]

    if sample_kind == "atom":
        atom_columns = [1]
    else:
        atom_columns = [1, 2]
    for column in atom_columns:
        atom = values[:, column]
        if bool(((atom < 0) | (atom >= system_n_atoms)).any()):
            raise ValueError(
                "invalid samples for "
                + what
                + ": the '"
                + expected_names[column]
                + "' dimension refers to atoms which are not in the systems"
            )

    if sample_kind == "atom" and selected_atoms is not None:
        offsets = torch.cumsum(n_atoms, dim=0) - n_atoms
        total = int(n_atoms.sum())
        selected = selected_atoms.values.to(torch.int64).to(device)
        selected_system = selected[:, 0]
        selected_atom = selected[:, 1]
        valid = (selected_system >= 0) & (selected_system < n_systems)
        selected_system = selected_system[valid]
        selected_atom = selected_atom[valid]
        valid = (selected_atom >= 0) & (selected_atom < n_atoms[selected_system])
        allowed = torch.zeros(total, dtype=torch.bool, device=device)
        allowed[offsets[selected_system[valid]] + selected_atom[valid]] = True
        if not bool(allowed[offsets[system] + values[:, 1]].all()):
            raise ValueError(
                "invalid samples for "
                + what
                + ": some samples refer to atoms which are not in `selected_atoms`"
            )


def _check_xyz(labels: Labels, name: str) -> bool:
    if labels.names != [name]:
        return False
    values = labels.values
    if values.shape[0] != 3 or values.shape[1] != 1:
        return False
    expected = torch.arange(3, dtype=values.dtype, device=values.device)
    return bool((values.reshape(3) == expected).all())


def _check_components(what: str, components: List[Labels], kind: str):
    """``kind`` is "none", "xyz" or "stress"."""
    if kind == "none":
        if len(components) != 0:
            raise ValueError("invalid components for " + what + ": expected none")
    elif kind == "xyz":
        if len(components) != 1 or not _check_xyz(components[0], "xyz"):
            raise ValueError(
                "invalid components for "
                + what
                + ": expected one component named 'xyz' with values [0, 1, 2]"
            )
    else:
        if (
            len(components) != 2
            or not _check_xyz(components[0], "xyz_1")
            or not _check_xyz(components[1], "xyz_2")
        ):
            raise ValueError(
                "invalid components for "
                + what
                + ": expected two components named 'xyz_1' and 'xyz_2' with "
                + "values [0, 1, 2]"
            )


def _is_single_zero(labels: Labels) -> bool:
    values = labels.values
    return values.shape[0] == 1 and values.shape[1] == 1 and int(values[0, 0]) == 0


def _warn_legacy_property(what: str, old: str, new: str):
    message = (
        "the property name '"
        + old
        + "' for "
        + what
        + " is deprecated, please use '"
        + new
        + "' instead"
    )
    if torch.jit.is_scripting():
        warnings.warn(message)
    else:
        _warn_deprecation(message)


def _warn_deprecation(message: str):
    warnings.warn(message, category=DeprecationWarning, stacklevel=5)


def _check_properties(what: str, properties: Labels, quantity: str):
    if quantity == "feature":
        return

    if quantity == "energy_ensemble":
        values = properties.values
        count = values.shape[0]
        expected = torch.arange(count, dtype=values.dtype, device=values.device)
        if (
            properties.names != ["energy"]
            or count == 0
            or not bool((values[:, 0] == expected).all())
        ):
            raise ValueError(
                "invalid properties for "
                + what
                + ": expected a single 'energy' property dimension with values "
                + "0, 1, ..., n_members - 1"
            )
        return

    if (
        quantity == "energy"
        or quantity == "energy_uncertainty"
        or quantity == "non_conservative_stress"
    ):
        expected_name = "energy"
        if quantity == "non_conservative_stress":
            expected_name = quantity
    else:
        expected_name = quantity

    names = properties.names
    if len(names) == 1 and names[0] != expected_name:
        legacy = old_quantity_name(expected_name)
        if legacy != expected_name and names[0] == legacy:
            _warn_legacy_property(what, legacy, expected_name)
            names = [expected_name]

    if names != [expected_name] or not _is_single_zero(properties):
        raise ValueError(
            "invalid properties for "
            + what
            + ": expected `Labels('"
            + expected_name
            + "', [[0]])`"
        )


def _check_gradients(what: str, block_gradients: List[str], energy_like: bool):
    for parameter in block_gradients:
        if not energy_like or (parameter != "positions" and parameter != "strain"):
            raise ValueError(
                "invalid gradients for "
                + what
                + ": unexpected gradient with respect to '"
                + parameter
                + "'"
            )


def _check_quantity(
    name: str,
    kind: str,
    tensor: TensorMap,
    request: ModelOutput,
    systems: List[System],
    selected_atoms: Optional[Labels],
    dtype: torch.dtype,
):
    what = _what(name, kind)
    for block in tensor.blocks():
        if block.values.dtype != dtype:
            raise ValueError(
                "wrong dtype for the "
                + what
                + ": expected "
                + dtype_name(dtype)
                + ", got "
                + dtype_name(block.values.dtype)
            )

    if _is_custom(name):
        return

    check_quantity_name(name, False)
    quantity = new_quantity_name(_base_name(name))

    keys = tensor.keys
    if keys.names != ["_"] or not _is_single_zero(keys):
        raise ValueError("invalid keys for " + what + ": expected `Labels('_', [[0]])`")
    block = tensor.block_by_id(0)

    sample_kind = request.sample_kind
    allowed = _allowed_sample_kinds(quantity)
    if sample_kind not in allowed:
        raise ValueError(
            "invalid sample_kind for "
            + what
            + ": expected one of "
            + _format_names(allowed)
            + ", got '"
            + sample_kind
            + "'"
        )
    _check_samples(what, block.samples, sample_kind, systems, selected_atoms)

    if quantity == "non_conservative_stress":
        components = "stress"
    elif (
        quantity == "non_conservative_force"
        or quantity == "position"
        or quantity == "momentum"
        or quantity == "velocity"
        or quantity == "heat_flux"
    ):
        components = "xyz"
    else:
        components = "none"
    _check_components(what, block.components, components)
    _check_properties(what, block.properties, quantity)

    energy_like = (
        quantity == "energy"
        or quantity == "energy_uncertainty"
        or quantity == "energy_ensemble"
    )
    _check_gradients(what, block.gradients_list(), energy_like)
    for parameter in block.gradients_list():
        gradient = block.gradient(parameter)
        gradient_what = "the '" + parameter + "' gradient of the " + what
        if parameter == "positions":
            expected = ["sample", "system", "atom"]
            component = "xyz"
        else:
            expected = ["sample"]
            component = "stress"
        if gradient.samples.names != expected:
            raise ValueError(
                "invalid samples for "
                + gradient_what
                + ": expected "
                + _format_names(expected)
                + ", got "
                + _format_names(gradient.samples.names)
            )
        _check_components(gradient_what, gradient.components, component)


def check_quantities(
    systems: List[System],
    values: Dict[str, TensorMap],
    requested: Dict[str, ModelOutput],
    selected_atoms: Optional[Labels],
    dtype: torch.dtype,
    kind: str,
) -> None:
    """Check the metadata of the outputs of a model (``kind="output"``) or of
    the inputs given to a model (``kind="input"``) against the requirements
    of the standard quantities.

    For outputs, every output must have been requested, and every requested
    output must be present. For inputs, every requested input must be present
    (other data is allowed); the function is called once per system with
    ``systems=[system]``, and the ``"system"`` dimension of the samples must
    then be ``0``.

    For each standard quantity (and its variants), the keys must be
    ``Labels("_", [[0]])``; the samples must match the requested
    ``sample_kind`` (``["system"]``, ``["system", "atom"]`` or the atom pair
    names), and be a subset of the samples expected for the ``systems`` and
    ``selected_atoms``; components, properties and gradients must follow the
    definition of the quantity. Non-standard quantities (``<domain>::<name>``)
    are only checked for their dtype.

    :param systems: the systems given to the model
    :param values: the data to check, by name
    :param requested: the requested outputs (or inputs), by name
    :param selected_atoms: the atoms selected by the engine (``None`` for all
        atoms)
    :param dtype: the dtype of the model, all values must use it
    :param kind: ``"output"`` or ``"input"``

    :raises ValueError: if any of the checks fails
    """
    if kind != "output" and kind != "input":
        raise ValueError("`kind` must be 'output' or 'input', got '" + kind + "'")

    for name in values.keys():
        if len(name) == 0:
            if kind == "output":
                raise ValueError("the model produced an output with an empty name")
            else:
                raise ValueError("the model was given an input with an empty name")
        if kind == "output" and name not in requested:
            raise ValueError(
                "the model produced an output named '"
                + name
                + "', which was not requested by the engine"
            )

    for name, request in requested.items():
        if len(name) == 0:
            raise ValueError("empty names are not allowed for " + kind + "s")
        if name not in values:
            if kind == "output":
                raise ValueError(
                    "the model did not produce the '"
                    + name
                    + "' output requested by the engine"
                )
            else:
                raise ValueError(
                    "the '" + name + "' input requested by the model is missing"
                )
        _check_quantity(
            name, kind, values[name], request, systems, selected_atoms, dtype
        )
