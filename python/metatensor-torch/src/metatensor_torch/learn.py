"""``metatensor.torch.learn``: the modules and datasets of ``metatensor-learn``
for the classes of ``metatensor.torch``, so that models built from them can be
compiled with ``torch.jit.script``.

The source files of ``metatensor_learn`` are executed a second time, under the
module name ``metatensor_torch.learn``, with a ``_backend`` module holding the
torch classes. Modules are not scripted at import: call ``torch.jit.script`` on
the model you build.

Importing this module replaces it in ``sys.modules`` by the torch flavour.
"""

import sys

from ._single_source import execute_with_backend


_NAME = "metatensor_torch.learn"

_learn = execute_with_backend(_NAME, "metatensor_learn", {})

sys.modules[_NAME] = _learn
sys.modules["metatensor.torch.learn"] = _learn
for _submodule in ("nn", "data"):
    if hasattr(_learn, _submodule):
        sys.modules[f"{_NAME}.{_submodule}"] = getattr(_learn, _submodule)
        sys.modules[f"metatensor.torch.learn.{_submodule}"] = getattr(
            _learn, _submodule
        )
