"""Execute the source of a pure-Python metatensor package a second time, with a
``_backend`` module holding the ``metatensor.torch`` classes.

This is how ``metatensor.torch.operations`` and ``metatensor.torch.learn`` are
built from ``metatensor_operations`` and ``metatensor_learn``: one implementation,
two flavours (core classes and TorchScript classes).
"""

import importlib.util
import os
import sys
import types
import warnings
from typing import Any, Dict

import torch

from ._classes import Labels, LabelsEntry, TensorBlock, TensorMap


def isinstance_metatensor(value: Any, typename: str) -> bool:
    """Is ``value`` an instance of the ``metatensor.torch`` class called
    ``typename`` (``"Labels"``, ``"LabelsEntry"``, ``"TensorBlock"`` or
    ``"TensorMap"``)?"""
    if typename == "Labels":
        return isinstance(value, Labels)
    elif typename == "LabelsEntry":
        return isinstance(value, LabelsEntry)
    elif typename == "TensorBlock":
        return isinstance(value, TensorBlock)
    elif typename == "TensorMap":
        return isinstance(value, TensorMap)
    else:
        return False


def _identity(function):
    return function


def create_backend(name: str, extra: Dict[str, Any]) -> types.ModuleType:
    """A ``_backend`` module for the torch flavour of a package.

    :param name: full name of the backend module
    :param extra: additional attributes of the backend module
    """
    backend = types.ModuleType(
        name, "Classes and TorchScript helpers of the torch flavour."
    )
    attributes = {
        "torch": torch,
        "Labels": Labels,
        "LabelsEntry": LabelsEntry,
        "TensorBlock": TensorBlock,
        "TensorMap": TensorMap,
        "Array": torch.Tensor,
        "torch_jit_is_scripting": torch.jit.is_scripting,
        "torch_jit_annotate": torch.jit.annotate,
        "torch_jit_script": (
            _identity
            if os.environ.get("METATENSOR_IMPORT_FOR_SPHINX", "0") != "0"
            else torch.jit.script
        ),
        "isinstance_metatensor": isinstance_metatensor,
    }
    attributes.update(extra)
    for key, value in attributes.items():
        setattr(backend, key, value)
    backend.__all__ = sorted(k for k in attributes if k != "torch")
    return backend


def execute_with_backend(
    name: str, source_package: str, backend_extra: Dict[str, Any]
) -> types.ModuleType:
    """Execute the package ``source_package`` again, as module ``name``, with a
    torch ``_backend``. Nothing is left in ``sys.modules`` if this fails.

    :param name: name of the new module (e.g. ``"metatensor_torch.operations"``)
    :param source_package: the package to execute (e.g. ``"metatensor_operations"``)
    :param backend_extra: additional attributes of the ``_backend`` module
    """
    spec = importlib.util.find_spec(source_package)
    if spec is None or spec.origin is None:
        raise ImportError(f"the {source_package} package is not installed")

    directory = os.path.dirname(spec.origin)
    spec = importlib.util.spec_from_file_location(
        name, spec.origin, submodule_search_locations=[directory]
    )
    module = importlib.util.module_from_spec(spec)

    backend = create_backend(f"{name}._backend", backend_extra)
    previous = sys.modules.get(name)
    sys.modules[backend.__name__] = backend
    sys.modules[name] = module
    try:
        with warnings.catch_warnings():
            # torch >= 2.10 deprecates TorchScript, the users of metatensor can
            # not do anything about it
            warnings.filterwarnings(
                "ignore",
                message=r".*torch\.jit\..* is deprecated",
                category=DeprecationWarning,
            )
            spec.loader.exec_module(module)
    except BaseException:
        # leave no half-initialized module behind
        for key in list(sys.modules):
            if key.startswith(name + "."):
                del sys.modules[key]
        if previous is not None:
            sys.modules[name] = previous
        else:
            sys.modules.pop(name, None)
        raise

    module._backend = backend
    return module
