"""metatensor-torch: TorchScript-, ``torch.compile``- and ``torch.export``-ready
versions of the metatensor classes (:py:class:`Labels`, :py:class:`LabelsEntry`,
:py:class:`TensorBlock` and :py:class:`TensorMap`).

The classes are plain Python classes written in the TorchScript subset of
Python, compiled with ``torch.jit.script`` when this module is imported. Their
qualified names (``__torch__.metatensor_torch._labels.Labels``, ...) and
attributes are part of the model-file ABI, see :py:mod:`metatensor_torch._classes`.
"""

import importlib.util
import sys

import torch

from . import _alias, _export
from ._classes import Labels, LabelsEntry, TensorBlock, TensorMap  # noqa: I001
from ._convert import from_core, to_core
from ._io import (
    load,
    load_block,
    load_block_buffer,
    load_buffer,
    load_labels,
    load_labels_buffer,
    save,
    save_buffer,
)
from ._module import Module, patch_torch_jit_module
from ._utils import dtype_name, version
from ._version import __version__


_export.register_pytree_nodes()
patch_torch_jit_module()

# the operations of metatensor-operations, compiled for these classes, are
# available as `metatensor.torch.operations` and `metatensor.torch.<operation>`
_OPERATIONS_SPEC = importlib.util.find_spec("metatensor_operations")
HAS_METATENSOR_OPERATIONS = _OPERATIONS_SPEC is not None
if HAS_METATENSOR_OPERATIONS:
    from . import operations

    for _name in operations.__all__:
        if _name != "__version__":
            globals()[_name] = getattr(operations, _name)
else:

    def __getattr__(name):
        raise AttributeError(
            f"metatensor.torch.{name} is not defined, are you sure you have the "
            "metatensor-operations package installed?"
        )


# the modules and datasets of metatensor-learn, for these classes, are available
# as `metatensor.torch.learn`. They are imported here, so that
# `import metatensor.torch.learn` never loads a second copy of this package under
# the `metatensor.torch` name
HAS_METATENSOR_LEARN = importlib.util.find_spec("metatensor_learn") is not None
if HAS_METATENSOR_OPERATIONS and HAS_METATENSOR_LEARN:
    from . import learn  # noqa: F401

# make this module available as `metatensor.torch` as well, and its submodules
# (`metatensor.torch.atomistic`, ...) as `metatensor.torch.<name>`
sys.modules.setdefault("metatensor.torch", sys.modules[__name__])
_alias.install_alias_finder()

__all__ = [
    "__version__",
    "Labels",
    "LabelsEntry",
    "Module",
    "TensorBlock",
    "TensorMap",
    "dtype_name",
    "from_core",
    "load",
    "load_block",
    "load_block_buffer",
    "load_buffer",
    "load_labels",
    "load_labels_buffer",
    "save",
    "save_buffer",
    "to_core",
    "version",
]

del torch
