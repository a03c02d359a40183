"""metatensor-learn: building blocks for machine learning models on metatensor
data, with an interface close to PyTorch.

Importable as ``metatensor_learn`` and ``metatensor.learn``. Everything here
needs torch: without it, the package only exposes ``HAS_TORCH = False``.
"""

import importlib.util
import sys

from ._version import __version__


HAS_TORCH = importlib.util.find_spec("torch") is not None

__all__ = ["HAS_TORCH", "__version__"]

if HAS_TORCH:
    from . import data, nn  # noqa: F401
    from .data import DataLoader, Dataset, IndexedDataset  # noqa: F401
    from .nn import Linear, ModuleMap  # noqa: F401

    __all__ += [
        "DataLoader",
        "Dataset",
        "IndexedDataset",
        "Linear",
        "ModuleMap",
        "data",
        "nn",
    ]

if __name__ == "metatensor_learn":
    # only the core flavour is `metatensor.learn`: these files are also executed
    # as `metatensor_torch.learn` (with the torch classes)
    sys.modules.setdefault("metatensor.learn", sys.modules[__name__])
    if HAS_TORCH:
        # `import metatensor.learn.nn` must give the same module objects
        sys.modules.setdefault("metatensor.learn.data", data)
        sys.modules.setdefault("metatensor.learn.nn", nn)
