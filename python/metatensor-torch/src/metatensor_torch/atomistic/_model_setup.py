"""Construction-time helpers of :py:class:`AtomisticModel` (eager Python
only, never compiled by TorchScript): checks of the capabilities and of the
``forward`` signature, gathering of the neighbor lists and inputs requested by
a model and its sub-modules, aliases for deprecated quantity names, and the
TorchScript conversion used when saving a model.
"""

import inspect
import math
import types
import typing
import warnings
from typing import Dict, List, Optional, Tuple

import torch

from .._labels import Labels
from .._tensor import TensorMap
from ._names import new_quantity_name, old_quantity_name
from ._outputs import ModelCapabilities, ModelOutput
from ._system import NeighborListOptions, System


# attributes describing the model, copied to the TorchScript module when saving
# a model loaded from a file
_STATE_ATTRIBUTES = [
    "_capabilities",
    "_metadata",
    "_requested_neighbor_lists",
    "_declared_outputs",
    "_output_names",
    "_output_units",
    "_outputs",
    "_requested_inputs",
    "_input_aliases",
    "_new_names",
    "_atomic_types",
    "_length_unit",
    "_dtype_name",
]

# messages of the TorchScript deprecation warnings emitted by torch itself
TORCHSCRIPT_DEPRECATION = r".*(torch\.jit|TorchScript).* deprecated"


def scripted_for_saving(model: torch.nn.Module) -> torch.jit.RecursiveScriptModule:
    """The TorchScript version of the :py:class:`AtomisticModel` ``model``, to
    be saved.

    Models wrapping a module loaded with ``torch.jit.load`` can not be compiled
    again (the loaded module uses its own copy of the TorchScript classes): for
    them, the loaded TorchScript ``AtomisticModel`` is updated with the
    attributes of ``model`` and returned.
    """
    loaded = model.__dict__.get("_loaded_model")
    if loaded is not None and loaded.module is model.module:
        for name in _STATE_ATTRIBUTES:
            setattr(loaded, name, getattr(model, name))
        return loaded

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", TORCHSCRIPT_DEPRECATION, DeprecationWarning
            )
            return torch.jit.script(model)
    except Exception as e:
        message = "could not convert the module to TorchScript"
        inner = model.module
        if isinstance(inner, torch.jit.RecursiveScriptModule) and (
            uses_foreign_classes(inner)
        ):
            message += (
                ": the wrapped module was loaded from a file with "
                "`torch.jit.load` and uses its own copy of the metatensor "
                "classes, it can not be compiled again. Wrap the Python "
                "module instead"
            )
        raise RuntimeError(message) from e


def warn_deprecated(message: str):
    warnings.warn(message, DeprecationWarning, stacklevel=4)


def current_name(name: str) -> str:
    """The current spelling of the quantity name ``name`` (variants
    included)."""
    return new_quantity_name(name)


def deprecated_name(name: str) -> Optional[str]:
    """The deprecated spelling of the quantity name ``name``, if any."""
    old_name = old_quantity_name(name)
    if old_name == name:
        return None
    return old_name


def output_aliases(
    outputs: Dict[str, ModelOutput],
) -> Tuple[Dict[str, str], Dict[str, str]]:
    """Add the other spelling of every output name that was renamed.

    :return: ``(output_names, new_names)``: every output name (declared or
        alias) to the declared name, and deprecated names to new names
    """
    output_names = {name: name for name in outputs}
    new_names = {}
    for name in outputs:
        new_name = current_name(name)
        if new_name != name:
            warnings.warn(
                f"the '{name}' output name is deprecated, please use "
                f"'{new_name}' instead",
                DeprecationWarning,
                stacklevel=4,
            )
            if new_name in outputs:
                raise ValueError(
                    f"the model declares both the '{name}' and '{new_name}' outputs, "
                    f"which are the same quantity ('{name}' is deprecated)"
                )
            output_names[new_name] = name
            new_names[name] = new_name
        else:
            old_name = deprecated_name(name)
            if old_name is not None:
                output_names[old_name] = name
                new_names[old_name] = name
    return output_names, new_names


def check_capabilities(capabilities: ModelCapabilities):
    interaction_range = capabilities.interaction_range
    if math.isnan(interaction_range):
        raise ValueError(
            "`capabilities.interaction_range` should be a number between 0 and "
            "infinity, got NaN"
        )
    if interaction_range < 0:
        raise ValueError(
            "`capabilities.interaction_range` was not set, but it is required to "
            "run simulations (it should be the cutoff radius of the model, times "
            "the number of message-passing layers, or infinity for long-range "
            "models)"
        )
    if len(capabilities.supported_devices) == 0:
        raise ValueError(
            "`capabilities.supported_devices` can not be empty: it should list the "
            "device types the model can run on (e.g. ['cuda', 'cpu'])"
        )
    if capabilities.dtype not in ("float32", "float64"):
        if capabilities.dtype == "":
            raise ValueError(
                "`capabilities.dtype` was not set, but it is required to run "
                "simulations (it should be 'float32' or 'float64')"
            )
        raise ValueError(
            "`capabilities.dtype` should be 'float32' or 'float64', got "
            f"'{capabilities.dtype}'"
        )


def _module_name(module: torch.nn.Module) -> str:
    if isinstance(module, torch.jit.RecursiveScriptModule):
        return module.original_name
    return type(module).__name__


def _request_methods(module: torch.nn.Module, method_name: str):
    """``(requestor name, method)`` for every (sub-)module of ``module``
    defining ``method_name``."""
    root = _module_name(module)
    for prefix, child in module.named_modules():
        try:
            method = getattr(child, method_name)
        except AttributeError:
            continue
        if not callable(method):
            continue
        yield (root if prefix == "" else f"{root}.{prefix}"), method


def copy_neighbor_lists(
    requests: List[NeighborListOptions], length_unit: str
) -> List[NeighborListOptions]:
    result = []
    for options in requests:
        _merge_neighbor_list(result, options, "", length_unit)
    return result


def _merge_neighbor_list(
    requests: List[NeighborListOptions],
    options: NeighborListOptions,
    requestor: str,
    length_unit: str,
):
    for existing in requests:
        if existing == options:
            for name in options.requestors():
                existing.add_requestor(name)
            existing.add_requestor(requestor)
            return

    merged = NeighborListOptions(
        cutoff=options.cutoff, full_list=options.full_list, strict=options.strict
    )
    for name in options.requestors():
        merged.add_requestor(name)
    merged.add_requestor(requestor)
    merged.length_unit = length_unit
    requests.append(merged)


def gather_neighbor_lists(
    module: torch.nn.Module, length_unit: str
) -> List[NeighborListOptions]:
    """All the neighbor lists requested by ``module`` and its sub-modules."""
    requests: List[NeighborListOptions] = []
    for requestor, method in _request_methods(module, "requested_neighbor_lists"):
        for options in method():
            if not isinstance(options, NeighborListOptions):
                raise TypeError(
                    f"`{requestor}.requested_neighbor_lists()` must return a list of "
                    f"NeighborListOptions, got an element of type "
                    f"{type(options).__name__}"
                )
            if options.length_unit not in ("", length_unit):
                raise ValueError(
                    f"the neighbor list {options} requested by {requestor} has a "
                    f"length unit ('{options.length_unit}') different from the "
                    f"length unit of the model ('{length_unit}')"
                )
            _merge_neighbor_list(requests, options, requestor, length_unit)
    return requests


def gather_inputs(module: torch.nn.Module) -> Dict[str, ModelOutput]:
    """All the inputs requested by ``module`` and its sub-modules."""
    inputs: Dict[str, ModelOutput] = {}
    for requestor, method in _request_methods(module, "requested_inputs"):
        for name, request in method().items():
            if not isinstance(request, ModelOutput):
                raise TypeError(
                    f"`{requestor}.requested_inputs()` must return a dictionary of "
                    f"ModelOutput, got a value of type {type(request).__name__} "
                    f"for '{name}'"
                )
            new_name = current_name(name)
            if new_name != name:
                warnings.warn(
                    f"the '{name}' input requested by {requestor} uses a deprecated "
                    f"name, please use '{new_name}' instead",
                    DeprecationWarning,
                    stacklevel=4,
                )
            for other_name in inputs:
                if other_name != name and current_name(other_name) == new_name:
                    raise ValueError(
                        f"the '{new_name}' input is requested under two names "
                        f"('{other_name}' and '{name}'), please use '{new_name}' "
                        "everywhere"
                    )
            if name in inputs:
                existing = inputs[name]
                if (
                    existing.unit != request.unit
                    or existing.sample_kind != request.sample_kind
                ):
                    raise NotImplementedError(
                        f"the '{name}' input is requested several times with "
                        f"different units or sample kinds (unit '{existing.unit}' "
                        f"and '{request.unit}', sample_kind '{existing.sample_kind}' "
                        f"and '{request.sample_kind}'), this is not supported"
                    )
            else:
                inputs[name] = request
    return inputs


def _qualified_name(cls) -> str:
    return torch._jit_internal._qualified_name(cls)


def _expected_signature() -> str:
    return (
        "forward(self, systems: List[System], outputs: Dict[str, ModelOutput], "
        "selected_atoms: Optional[Labels]) -> Dict[str, TensorMap]"
    )


def _is_list_of(annotation, cls) -> bool:
    origin = typing.get_origin(annotation)
    return origin in (list, List) and typing.get_args(annotation) == (cls,)


def _is_dict_of(annotation, cls) -> bool:
    origin = typing.get_origin(annotation)
    return origin in (dict, Dict) and typing.get_args(annotation) == (str, cls)


def _is_optional(annotation, cls) -> bool:
    origin = typing.get_origin(annotation)
    union_types = [typing.Union]
    if hasattr(types, "UnionType"):
        union_types.append(types.UnionType)
    if origin not in union_types:
        return False
    return set(typing.get_args(annotation)) == {cls, type(None)}


def check_forward_signature(module: torch.nn.Module):
    """Check that ``module.forward`` follows :py:class:`ModelInterface`."""
    if isinstance(module, torch.jit.ScriptModule):
        _check_scripted_forward(module)
        return

    forward = module.forward
    names = list(inspect.signature(forward).parameters)
    if names != ["systems", "outputs", "selected_atoms"]:
        raise TypeError(
            f"`{_module_name(module)}.forward()` takes unexpected arguments "
            f"({', '.join(names)}), the expected signature is "
            f"`{_expected_signature()}`"
        )

    try:
        hints = typing.get_type_hints(forward)
    except Exception:  # noqa: BLE001 - annotations that can not be resolved
        hints = dict(getattr(forward, "__annotations__", {}))

    expected = [
        ("systems", "List[System]", lambda a: _is_list_of(a, System)),
        ("outputs", "Dict[str, ModelOutput]", lambda a: _is_dict_of(a, ModelOutput)),
        ("selected_atoms", "Optional[Labels]", lambda a: _is_optional(a, Labels)),
    ]
    for name, type_name, check in expected:
        if name not in hints:
            raise TypeError(
                f"`{name}` argument of `{_module_name(module)}.forward()` must be "
                f"annotated as `{type_name}`"
            )
        if not check(hints[name]):
            raise TypeError(
                f"`{name}` argument of `{_module_name(module)}.forward()` must be "
                f"annotated as `{type_name}`, got `{_annotation_name(hints[name])}`"
            )

    if "return" not in hints:
        raise TypeError(
            f"the return value of `{_module_name(module)}.forward()` must be "
            "annotated as `Dict[str, TensorMap]`"
        )
    if not _is_dict_of(hints["return"], TensorMap):
        raise TypeError(
            f"the return value of `{_module_name(module)}.forward()` must be "
            "annotated as `Dict[str, TensorMap]`, got "
            f"`{_annotation_name(hints['return'])}`"
        )


def _annotation_name(annotation) -> str:
    if isinstance(annotation, type):
        return annotation.__qualname__
    return str(annotation)


def uses_foreign_classes(module: torch.jit.RecursiveScriptModule) -> bool:
    """Whether the ``forward`` of a TorchScript module uses another copy of the
    ``System`` class than the one of this process (this happens for modules
    loaded with ``torch.jit.load``, which creates a new compilation unit)."""
    arguments = module.forward.schema.arguments
    if len(arguments) < 2 or not isinstance(arguments[1].type, torch.ListType):
        return False
    element = arguments[1].type.getElementType()
    if not isinstance(element, torch.ClassType):
        return False
    return element != torch._C.ClassType(_qualified_name(System))


def _check_scripted_forward(module: torch.jit.ScriptModule):
    system = _qualified_name(System)
    output = _qualified_name(ModelOutput)
    labels = _qualified_name(Labels)
    tensor_map = _qualified_name(TensorMap)

    schema = module.forward.schema
    arguments = [(a.name, str(a.type)) for a in schema.arguments[1:]]
    expected = [
        ("systems", f"List[{system}]"),
        ("outputs", f"Dict[str, {output}]"),
        ("selected_atoms", f"Optional[{labels}]"),
    ]
    if [name for name, _ in arguments] != [name for name, _ in expected]:
        raise TypeError(
            f"`{_module_name(module)}.forward()` takes unexpected arguments "
            f"({', '.join(name for name, _ in arguments)}), the expected signature "
            f"is `{_expected_signature()}`"
        )
    for (name, actual), (_, wanted) in zip(arguments, expected):
        if actual != wanted:
            raise TypeError(
                f"`{name}` argument of `{_module_name(module)}.forward()` must have "
                f"type `{wanted}`, got `{actual}`"
            )
    returns = [str(r.type) for r in schema.returns]
    if returns != [f"Dict[str, {tensor_map}]"]:
        raise TypeError(
            f"the return value of `{_module_name(module)}.forward()` must have type "
            f"`Dict[str, {tensor_map}]`, got `{', '.join(returns)}`"
        )
