"""metatensor: a self-describing sparse tensor data format for atomistic machine
learning.

The core classes are :py:class:`Labels`, :py:class:`TensorBlock` and
:py:class:`TensorMap`, saved to and loaded from ``.mts`` files with
:py:func:`save` and :py:func:`load`.

When ``metatensor-operations`` is installed, its functions are also available
directly from this module (``metatensor.add``, ``metatensor.join``, ...), and
``metatensor.operations``, ``metatensor.learn`` and ``metatensor.torch`` are the
other distributions of the project. They are looked up lazily, so importing
``metatensor`` never imports torch nor any higher-level package.
"""

import importlib
import pkgutil


# sub-packages (`metatensor.operations`, ...) are installed by other distributions,
# possibly in other folders of `sys.path` (e.g. editable installs)
__path__ = pkgutil.extend_path(__path__, __name__)

from . import io
from ._block import TensorBlock
from ._errors import MetatensorError
from ._labels import Labels, LabelsEntry
from ._tensor import TensorMap
from ._version import __version__
from .io import load, load_block, load_labels, save


# show the classes under their public name (`metatensor.TensorMap` in
# `type(tensor)` and tracebacks), as the reference does
for _cls in (Labels, LabelsEntry, TensorBlock, TensorMap):
    _cls.__module__ = "metatensor"
del _cls


__all__ = [
    "__version__",
    "Labels",
    "LabelsEntry",
    "MetatensorError",
    "TensorBlock",
    "TensorMap",
    "io",
    "load",
    "load_block",
    "load_labels",
    "save",
]

_SUBPACKAGES = ("operations", "learn", "torch")


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        try:
            return importlib.import_module(f"metatensor.{name}")
        except ModuleNotFoundError as e:
            if e.name in (f"metatensor.{name}", f"metatensor_{name}"):
                raise AttributeError(
                    f"module 'metatensor' has no attribute '{name}', is the "
                    f"metatensor-{name} package installed?"
                ) from None
            raise

    if not name.startswith("_"):
        # re-export the operations (`metatensor.add`, ...) when available
        try:
            operations = importlib.import_module("metatensor_operations")
        except ModuleNotFoundError as e:
            if e.name != "metatensor_operations":
                raise
        else:
            if name in getattr(operations, "__all__", ()):
                return getattr(operations, name)

    raise AttributeError(f"module 'metatensor' has no attribute '{name}'")
