"""metatensor-operations: operations on :py:class:`metatensor.TensorMap` that keep
metadata and gradients consistent.

Importable as ``metatensor_operations`` and ``metatensor.operations``; every
operation is also available as ``metatensor.<operation>``.
"""

import importlib
import sys

from ._version import __version__


# one entry per module: each module lists its public functions in `__all__`
_MODULES = [
    "_utils",
    "_comparison",
    "_math",
    "_linalg",
    "_creation",
    "_autograd",
    "_blocks",
    "_unique",
    "_join",
    "_slice",
    "_sort",
    "_dimensions",
    "_reduce",
]

__all__ = ["__version__"]
for _name in _MODULES:
    _module = importlib.import_module(f"{__name__}.{_name}")
    for _function in _module.__all__:
        globals()[_function] = getattr(_module, _function)
        __all__.append(_function)

if __name__ == "metatensor_operations":
    # only the core flavour is `metatensor.operations`: these files are also
    # executed as `metatensor_torch.operations` (with the torch classes)
    sys.modules.setdefault("metatensor.operations", sys.modules[__name__])
