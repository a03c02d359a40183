"""Classes describing a model and what is asked from it:
:py:class:`ModelOutput`, :py:class:`ModelCapabilities`,
:py:class:`ModelEvaluationOptions` (:py:class:`ModelMetadata` is in
``_metadata.py``).

All three are written in the TorchScript subset of Python and compiled when this
module is imported. They serialize to JSON (``__getstate__`` returns a 1-tuple
holding the JSON string, ``__setstate__`` reads it back): this is used by
``torch.jit.save`` / ``torch.jit.load`` for instances stored in scripted modules,
and by ``pickle`` / ``copy.deepcopy`` in Python. Floating point values
(``interaction_range``) are stored in JSON as the int64 bit pattern of the
double, for exact round trips.

Model-file ABI: TorchScript archives refer to the classes by their qualified
name and to their attributes by position. These must never change:

* ``__torch__.metatensor_torch.atomistic._outputs.ModelOutput``:
  ``_quantity: str``, ``_unit: str``, ``_sample_kind: str``,
  ``explicit_gradients: List[str]``, ``description: str``;
* ``__torch__.metatensor_torch.atomistic._outputs.ModelCapabilities``:
  ``_outputs: Dict[str, ModelOutput]``, ``atomic_types: List[int]``,
  ``interaction_range: float``, ``_length_unit: str``,
  ``supported_devices: List[str]``, ``_dtype: str``;
* ``__torch__.metatensor_torch.atomistic._outputs.ModelEvaluationOptions``:
  ``_length_unit: str``, ``outputs: Dict[str, ModelOutput]``,
  ``_selected_atoms: Optional[Labels]``;

Saved instances are stored through ``__getstate__`` (their JSON text), so the
JSON format is part of the ABI as well.
"""

import warnings
from typing import Dict, List, Optional, Tuple, Union

import torch

from .._labels import Labels
from ._json_text import (
    _bits_to_double,
    _double_to_bits,
    _json_int_array,
    _json_object,
    _json_optional_string,
    _json_string,
    _json_string_array,
    _JsonDocument,
    _parse_json,
)
from ._names import _base_name, check_quantity_name, unit_dimension_for_quantity
from ._units import _named_dimensions, unit_conversion_factor, validate_unit


# ============================================================================ #
# free functions (they never construct the classes of this module)


def _warn_deprecation(message: str):
    warnings.warn(message, category=DeprecationWarning, stacklevel=4)


def _deprecated(message: str):
    """Emit a deprecation warning (a plain warning in TorchScript, which does not
    support warning categories)."""
    if torch.jit.is_scripting():
        warnings.warn(message)
    else:
        _warn_deprecation(message)


def _warn_user(message: str):
    warnings.warn(message, stacklevel=4)


def _warn(message: str):
    if torch.jit.is_scripting():
        warnings.warn(message)
    else:
        _warn_user(message)


def _same_class(first, second) -> bool:
    """Eager-only check used by ``__eq__``: is ``second`` of the same class?"""
    return type(first) is type(second)


def _check_sample_kind(sample_kind: str):
    if sample_kind != "system" and sample_kind != "atom" and sample_kind != "atom_pair":
        raise ValueError(
            "invalid sample_kind '"
            + sample_kind
            + "': expected 'system', 'atom' or 'atom_pair'"
        )


def _check_json_class(document: _JsonDocument, expected: str):
    root = 0
    if document.kinds[root] != 5 or not document.has(root, "class"):
        raise ValueError(
            "invalid JSON data for " + expected + ": expected an object with a "
            "'class' key"
        )
    name = document.string(document.get(root, "class"), "'class'")
    if name != expected:
        raise ValueError(
            "invalid JSON data for "
            + expected
            + ": the 'class' is '"
            + name
            + "', expected '"
            + expected
            + "'"
        )


def _output_json(
    unit: str,
    sample_kind: str,
    explicit_gradients: List[str],
    description: str,
    depth: int,
) -> str:
    return _json_object(
        ["class", "unit", "sample_kind", "explicit_gradients", "description"],
        [
            _json_string("ModelOutput"),
            _json_string(unit),
            _json_string(sample_kind),
            _json_string_array(explicit_gradients, depth + 1),
            _json_string(description),
        ],
        depth,
    )


def _output_fields(
    document: _JsonDocument, node: int
) -> Tuple[str, str, List[str], str]:
    """Read ``(unit, sample_kind, explicit_gradients, description)`` from the
    JSON object of a ``ModelOutput``."""
    unit = _json_optional_string(document, node, "unit")

    sample_kind = "system"
    if document.has(node, "sample_kind"):
        sample_kind = document.string(
            document.get(node, "sample_kind"), "'sample_kind'"
        )
    elif document.has(node, "per_atom"):
        # legacy format
        if document.boolean(document.get(node, "per_atom"), "'per_atom'"):
            sample_kind = "atom"

    gradients: List[str] = []
    if document.has(node, "explicit_gradients"):
        gradients = document.string_list(
            document.get(node, "explicit_gradients"), "'explicit_gradients'"
        )

    description = _json_optional_string(document, node, "description")
    return unit, sample_kind, gradients, description


def _outputs_equal(first: Dict[str, "ModelOutput"], second: Dict[str, "ModelOutput"]):
    if len(first) != len(second):
        return False
    for name, output in first.items():
        if name not in second:
            return False
        other = second[name]
        if (
            output.unit != other.unit
            or output.sample_kind != other.sample_kind
            or output.explicit_gradients != other.explicit_gradients
            or output.description != other.description
        ):
            return False
    return True


def _outputs_json(outputs: Dict[str, "ModelOutput"], depth: int) -> str:
    names: List[str] = []
    values: List[str] = []
    for name, output in outputs.items():
        names.append(name)
        values.append(
            _output_json(
                output.unit,
                output.sample_kind,
                output.explicit_gradients,
                output.description,
                depth + 1,
            )
        )
    return _json_object(names, values, depth)


# ============================================================================ #
# ModelOutput


class ModelOutput:
    """Description of one output of a model (or of an input it requests).

    :param quantity: **deprecated**, the physical quantity of this output. If
        it is the name of a known dimension (``"energy"``, ``"length"``, ...),
        ``unit`` is checked against it.
    :param unit: the unit of the output (see
        :py:func:`unit_conversion_factor` for the syntax)
    :param per_atom_or_sample_kind: either ``per_atom`` (a ``bool``,
        deprecated) or ``sample_kind`` (a ``str``), given as the third
        positional argument
    :param explicit_gradients: gradients computed explicitly by the model and
        stored in the output blocks (e.g. ``["positions", "strain"]``)
    :param description: a free-form description of this output
    :param per_atom: **deprecated**, use ``sample_kind="atom"`` instead
    :param sample_kind: what the samples of this output are: ``"system"`` (one
        sample per system, the default), ``"atom"`` (one sample per atom) or
        ``"atom_pair"`` (one sample per pair of atoms)
    """

    def __init__(
        self,
        quantity: str = "",
        unit: str = "",
        per_atom_or_sample_kind: Union[None, bool, str] = None,
        explicit_gradients: Optional[List[str]] = None,
        description: str = "",
        per_atom: Optional[bool] = None,
        sample_kind: Optional[str] = None,
    ):
        self._quantity: str = ""
        self._unit: str = ""
        self._sample_kind: str = "system"
        gradients: List[str] = []
        if explicit_gradients is not None:
            for gradient in explicit_gradients:
                gradients.append(gradient)
        self.explicit_gradients: List[str] = gradients
        self.description: str = description

        if per_atom_or_sample_kind is not None:
            if isinstance(per_atom_or_sample_kind, bool):
                if per_atom is not None:
                    raise ValueError(
                        "ModelOutput got multiple values for argument 'per_atom'"
                    )
                per_atom = per_atom_or_sample_kind
            else:
                if sample_kind is not None:
                    raise ValueError(
                        "ModelOutput got multiple values for argument 'sample_kind'"
                    )
                sample_kind = per_atom_or_sample_kind

        if per_atom is not None:
            if sample_kind is not None:
                raise ValueError(
                    "cannot specify both `per_atom` and `sample_kind` in ModelOutput"
                )
            _deprecated(
                "`per_atom` is deprecated in ModelOutput, please use "
                + "`sample_kind='atom'` or `sample_kind='system'` instead"
            )
            if per_atom:
                self._sample_kind = "atom"
        elif sample_kind is not None:
            _check_sample_kind(sample_kind)
            self._sample_kind = sample_kind

        if len(quantity) != 0:
            _deprecated(
                "`quantity` is deprecated in ModelOutput and no longer used, "
                + "the unit is enough to convert outputs"
            )
            self._quantity = quantity
        self._set_unit(unit)

    def _set_unit(self, unit: str):
        if self._quantity in _named_dimensions():
            validate_unit(self._quantity, unit)
        else:
            validate_unit("", unit)
        self._unit = unit

    @property
    def quantity(self) -> str:
        """**Deprecated**: the physical quantity of this output."""
        return self._quantity

    @quantity.setter
    def quantity(self, quantity: str):
        if len(quantity) != 0:
            _deprecated(
                "`quantity` is deprecated in ModelOutput and no longer used, "
                + "the unit is enough to convert outputs"
            )
            if quantity in _named_dimensions():
                validate_unit(quantity, self._unit)
        self._quantity = quantity

    @property
    def unit(self) -> str:
        """The unit of this output."""
        return self._unit

    @unit.setter
    def unit(self, unit: str):
        self._set_unit(unit)

    @property
    def sample_kind(self) -> str:
        """What the samples of this output are: ``"system"``, ``"atom"`` or
        ``"atom_pair"``."""
        return self._sample_kind

    @sample_kind.setter
    def sample_kind(self, sample_kind: str):
        _check_sample_kind(sample_kind)
        self._sample_kind = sample_kind

    @property
    def per_atom(self) -> bool:
        """**Deprecated**: is this output defined per atom (``sample_kind ==
        "atom"``)?"""
        _deprecated(
            "`per_atom` is deprecated in ModelOutput, please use `sample_kind` "
            + "instead"
        )
        if self._sample_kind == "atom_pair":
            raise ValueError(
                "`per_atom` is not defined when `sample_kind` is 'atom_pair'"
            )
        return self._sample_kind == "atom"

    @per_atom.setter
    def per_atom(self, per_atom: bool):
        _deprecated(
            "`per_atom` is deprecated in ModelOutput, please use `sample_kind` "
            + "instead"
        )
        if per_atom:
            self._sample_kind = "atom"
        else:
            self._sample_kind = "system"

    def __eq__(self, other: "ModelOutput") -> bool:
        if not torch.jit.is_scripting():
            if not _same_class(self, other):
                return False
        return (
            self._unit == other._unit
            and self._sample_kind == other._sample_kind
            and self.explicit_gradients == other.explicit_gradients
            and self.description == other.description
        )

    def __ne__(self, other: "ModelOutput") -> bool:
        return not self.__eq__(other)

    def _to_json(self, depth: int) -> str:
        return _output_json(
            self._unit,
            self._sample_kind,
            self.explicit_gradients,
            self.description,
            depth,
        )

    def __getstate__(self) -> Tuple[str]:
        return (self._to_json(0),)

    def __setstate__(self, state: Tuple[str]):
        document = _parse_json(state[0])
        _check_json_class(document, "ModelOutput")
        unit, sample_kind, gradients, description = _output_fields(document, 0)
        _check_sample_kind(sample_kind)
        validate_unit("", unit)
        self._quantity = ""
        self._unit = unit
        self._sample_kind = sample_kind
        self.explicit_gradients = gradients
        self.description = description


def _read_outputs(document: _JsonDocument, root: int) -> Dict[str, ModelOutput]:
    """Read the ``"outputs"`` object of the JSON object ``root`` (an empty
    dictionary if it is missing). ``ModelOutput`` is compiled before the classes
    calling this."""
    outputs: Dict[str, ModelOutput] = {}
    if document.has(root, "outputs"):
        node = document.get(root, "outputs")
        names = document.object_keys(node, "'outputs'")
        children = document.children[node]
        for i in range(len(names)):
            unit, sample_kind, gradients, description = _output_fields(
                document, children[i]
            )
            outputs[names[i]] = ModelOutput(
                unit=unit,
                sample_kind=sample_kind,
                explicit_gradients=gradients,
                description=description,
            )
    return outputs


# ============================================================================ #
# ModelCapabilities


class ModelCapabilities:
    """Description of what a model can do.

    :param outputs: the outputs the model can compute, by name (see
        :py:func:`check_quantity_name` for the allowed names)
    :param atomic_types: the atomic types the model can handle
    :param interaction_range: how far (in ``length_unit``) the model's
        predictions for an atom depend on other atoms: the cutoff for local
        models, the cutoff times the number of layers for message-passing
        models, ``inf`` for models with long-range terms. ``-1`` means unset.
    :param length_unit: the unit of lengths (positions, cell, cutoffs) used by
        the model
    :param supported_devices: the device types the model can run on
        (``"cpu"``, ``"cuda"``, ...), in order of preference
    :param dtype: the floating point type used by the model, ``"float32"`` or
        ``"float64"`` (``""`` means unset)
    """

    def __init__(
        self,
        outputs: Optional[Dict[str, ModelOutput]] = None,
        atomic_types: Optional[List[int]] = None,
        interaction_range: float = -1.0,
        length_unit: str = "",
        supported_devices: Optional[List[str]] = None,
        dtype: str = "",
    ):
        no_outputs: Dict[str, ModelOutput] = {}
        self._outputs: Dict[str, ModelOutput] = no_outputs
        types: List[int] = []
        if atomic_types is not None:
            for atomic_type in atomic_types:
                types.append(atomic_type)
        self.atomic_types: List[int] = types
        self.interaction_range: float = float(interaction_range)
        self._length_unit: str = ""
        devices: List[str] = []
        if supported_devices is not None:
            for device in supported_devices:
                devices.append(device)
        self.supported_devices: List[str] = devices
        self._dtype: str = ""

        if outputs is not None:
            self._set_outputs(outputs)
        self._set_length_unit(length_unit)
        self._set_dtype(dtype)

    def _set_outputs(self, outputs: Dict[str, ModelOutput]):
        new_outputs: Dict[str, ModelOutput] = {}
        # base name => [count, number without description]
        variants: Dict[str, List[int]] = {}
        for name, output in outputs.items():
            check_quantity_name(name)

            base = _base_name(name)
            if base not in variants:
                variants[base] = [0, 0]
            counts = variants[base]
            counts[0] += 1
            if len(output.description) == 0:
                counts[1] += 1

            dimension = unit_dimension_for_quantity(name)
            unit = output.unit
            if dimension == "none":
                if len(unit) != 0:
                    _warn(
                        "the output '"
                        + name
                        + "' is dimensionless, but it has a unit ('"
                        + unit
                        + "')"
                    )
            elif len(dimension) != 0:
                if len(unit) == 0:
                    _warn(
                        "the output '"
                        + name
                        + "' has no unit, engines will not be able to convert it"
                    )
                else:
                    validate_unit(dimension, unit)
            new_outputs[name] = output

        for base, counts in variants.items():
            if counts[0] > 1 and counts[1] > 0:
                _warn(
                    "'"
                    + base
                    + "' has "
                    + str(counts[0])
                    + " variants but some of them have an empty description, "
                    + "please describe all variants so users can choose between them"
                )
        self._outputs = new_outputs

    def _set_length_unit(self, length_unit: str):
        validate_unit("length", length_unit)
        self._length_unit = length_unit

    def _set_dtype(self, dtype: str):
        if dtype != "" and dtype != "float32" and dtype != "float64":
            raise ValueError(
                "`dtype` can be one of ['float32', 'float64'], got '" + dtype + "'"
            )
        self._dtype = dtype

    @property
    def outputs(self) -> Dict[str, ModelOutput]:
        """The outputs this model can compute."""
        return self._outputs

    @outputs.setter
    def outputs(self, outputs: Dict[str, ModelOutput]):
        self._set_outputs(outputs)

    @property
    def length_unit(self) -> str:
        """The unit of lengths used by the model."""
        return self._length_unit

    @length_unit.setter
    def length_unit(self, length_unit: str):
        self._set_length_unit(length_unit)

    @property
    def dtype(self) -> str:
        """The floating point type used by the model (``"float32"`` or
        ``"float64"``, ``""`` if unset)."""
        return self._dtype

    @dtype.setter
    def dtype(self, dtype: str):
        self._set_dtype(dtype)

    def engine_interaction_range(self, engine_length_unit: str) -> float:
        """The interaction range, converted to the length unit of the engine.

        :param engine_length_unit: the length unit used by the engine
        """
        factor = unit_conversion_factor(self._length_unit, engine_length_unit)
        return self.interaction_range * factor

    def __eq__(self, other: "ModelCapabilities") -> bool:
        if not torch.jit.is_scripting():
            if not _same_class(self, other):
                return False
        return (
            _outputs_equal(self._outputs, other._outputs)
            and self.atomic_types == other.atomic_types
            and _double_to_bits(self.interaction_range)
            == _double_to_bits(other.interaction_range)
            and self._length_unit == other._length_unit
            and self.supported_devices == other.supported_devices
            and self._dtype == other._dtype
        )

    def __ne__(self, other: "ModelCapabilities") -> bool:
        return not self.__eq__(other)

    def _to_json(self, depth: int) -> str:
        return _json_object(
            [
                "class",
                "outputs",
                "atomic_types",
                "interaction_range",
                "length_unit",
                "supported_devices",
                "dtype",
            ],
            [
                _json_string("ModelCapabilities"),
                _outputs_json(self._outputs, depth + 1),
                _json_int_array(self.atomic_types, depth + 1),
                str(_double_to_bits(self.interaction_range)),
                _json_string(self._length_unit),
                _json_string_array(self.supported_devices, depth + 1),
                _json_string(self._dtype),
            ],
            depth,
        )

    def __getstate__(self) -> Tuple[str]:
        return (self._to_json(0),)

    def __setstate__(self, state: Tuple[str]):
        document = _parse_json(state[0])
        _check_json_class(document, "ModelCapabilities")
        root = 0

        outputs = _read_outputs(document, root)

        atomic_types: List[int] = []
        if document.has(root, "atomic_types"):
            atomic_types = document.integer_list(
                document.get(root, "atomic_types"), "'atomic_types'"
            )

        interaction_range = -1.0
        if document.has(root, "interaction_range"):
            interaction_range = _bits_to_double(
                document.integer(
                    document.get(root, "interaction_range"), "'interaction_range'"
                )
            )

        length_unit = _json_optional_string(document, root, "length_unit")

        devices: List[str] = []
        if document.has(root, "supported_devices"):
            devices = document.string_list(
                document.get(root, "supported_devices"), "'supported_devices'"
            )

        dtype = _json_optional_string(document, root, "dtype")

        # the data was validated when it was saved, do not warn again
        self._outputs = outputs
        self.atomic_types = atomic_types
        self.interaction_range = interaction_range
        validate_unit("length", length_unit)
        self._length_unit = length_unit
        self.supported_devices = devices
        self._dtype = ""
        self._set_dtype(dtype)


# ============================================================================ #
# ModelEvaluationOptions


def _check_selected_atoms(selected_atoms: Optional[Labels]):
    if selected_atoms is not None:
        if selected_atoms.names != ["system", "atom"]:
            raise ValueError(
                "invalid `selected_atoms`: expected Labels with names "
                + "['system', 'atom'], got ["
                + ", ".join(["'" + n + "'" for n in selected_atoms.names])
                + "]"
            )


class ModelEvaluationOptions:
    """Options given by the engine when running a model: which outputs to
    compute, for which atoms, and the unit of the lengths in the systems.

    :param length_unit: the unit of lengths in the systems given to the model
    :param outputs: the outputs to compute, by name
    :param selected_atoms: the atoms for which to compute the outputs, as
        Labels with names ``["system", "atom"]``; ``None`` for all atoms
    """

    def __init__(
        self,
        length_unit: str = "",
        outputs: Optional[Dict[str, ModelOutput]] = None,
        selected_atoms: Optional[Labels] = None,
    ):
        validate_unit("length", length_unit)
        self._length_unit: str = length_unit
        requested: Dict[str, ModelOutput] = {}
        if outputs is not None:
            for name, output in outputs.items():
                requested[name] = output
        self.outputs: Dict[str, ModelOutput] = requested
        _check_selected_atoms(selected_atoms)
        self._selected_atoms: Optional[Labels] = selected_atoms

    @property
    def length_unit(self) -> str:
        """The unit of lengths in the systems."""
        return self._length_unit

    @length_unit.setter
    def length_unit(self, length_unit: str):
        validate_unit("length", length_unit)
        self._length_unit = length_unit

    @property
    def selected_atoms(self) -> Optional[Labels]:
        """The atoms for which to compute the outputs (``None`` for all
        atoms)."""
        return self._selected_atoms

    @selected_atoms.setter
    def selected_atoms(self, selected_atoms: Optional[Labels]):
        _check_selected_atoms(selected_atoms)
        self._selected_atoms = selected_atoms

    def __eq__(self, other: "ModelEvaluationOptions") -> bool:
        if not torch.jit.is_scripting():
            if not _same_class(self, other):
                return False
        if self._length_unit != other._length_unit:
            return False
        if not _outputs_equal(self.outputs, other.outputs):
            return False
        selected = self._selected_atoms
        other_selected = other._selected_atoms
        if selected is None:
            return other_selected is None
        if other_selected is None:
            return False
        return selected == other_selected

    def __ne__(self, other: "ModelEvaluationOptions") -> bool:
        return not self.__eq__(other)

    def _to_json(self, depth: int) -> str:
        selected = self._selected_atoms
        if selected is None:
            selected_json = "null"
        else:
            values: List[int] = (
                selected.values.to(torch.int64).to(torch.device("cpu")).reshape(-1)
            ).tolist()
            selected_json = _json_object(
                ["names", "values"],
                [
                    _json_string_array(selected.names, depth + 2),
                    _json_int_array(values, depth + 2),
                ],
                depth + 1,
            )
        return _json_object(
            ["class", "length_unit", "selected_atoms", "outputs"],
            [
                _json_string("ModelEvaluationOptions"),
                _json_string(self._length_unit),
                selected_json,
                _outputs_json(self.outputs, depth + 1),
            ],
            depth,
        )

    def __getstate__(self) -> Tuple[str]:
        return (self._to_json(0),)

    def __setstate__(self, state: Tuple[str]):
        document = _parse_json(state[0])
        _check_json_class(document, "ModelEvaluationOptions")
        root = 0

        length_unit = _json_optional_string(document, root, "length_unit")

        outputs = _read_outputs(document, root)

        selected_atoms: Optional[Labels] = None
        if document.has(root, "selected_atoms"):
            node = document.get(root, "selected_atoms")
            if not document.is_null(node):
                names = document.string_list(
                    document.get(node, "names"), "'selected_atoms.names'"
                )
                flat = document.integer_list(
                    document.get(node, "values"), "'selected_atoms.values'"
                )
                values = torch.tensor(
                    flat, dtype=torch.int32, device=torch.device("cpu")
                ).reshape(-1, len(names))
                selected_atoms = Labels(names, values)

        validate_unit("length", length_unit)
        self._length_unit = length_unit
        self.outputs = outputs
        _check_selected_atoms(selected_atoms)
        self._selected_atoms = selected_atoms


# compile the classes now; TorchScript resolves names through the frame
# calling `torch.jit.script`, so this must stay here
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.jit.script(ModelOutput)
    torch.jit.script(ModelCapabilities)
    torch.jit.script(ModelEvaluationOptions)
