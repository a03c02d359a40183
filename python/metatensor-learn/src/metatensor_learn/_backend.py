"""Classes and TorchScript helpers used by ``metatensor.learn``.

The learn modules import ``Labels``, ``TensorBlock``, ``TensorMap`` and the
TorchScript helpers ONLY from this module. ``metatensor.torch.learn`` executes the
same source files a second time with another ``_backend`` module (holding the
``metatensor.torch`` classes and ``torch.jit.is_scripting``), so one
implementation serves both flavours.

A replacement backend must provide every name in ``__all__``.
"""

import warnings
from typing import Any

from metatensor import Labels, LabelsEntry, TensorBlock, TensorMap


# the classes of this backend are the core ones (with numpy metadata), the torch
# flavour of the learn modules (``metatensor.torch.learn``) uses another backend
# without this attribute
CORE_CLASSES = True


def torch_jit_is_scripting() -> bool:
    """Are we running inside TorchScript? Never the case with core classes."""
    return False


_CLASSES = {
    "Labels": Labels,
    "LabelsEntry": LabelsEntry,
    "TensorBlock": TensorBlock,
    "TensorMap": TensorMap,
}


def _is_torch_flavour(value: Any) -> bool:
    """Is ``value`` one of the metatensor-torch classes (a TorchScript object or
    an instance of a class defined in ``metatensor_torch``)?"""
    cls = type(value)
    module = getattr(cls, "__module__", "") or ""
    if module.startswith("metatensor_torch") or module.startswith("metatensor.torch"):
        return True
    if cls.__name__ == "ScriptObject":
        qualified = str(getattr(value, "_type", lambda: "")())
        return "metatensor" in qualified
    return False


def isinstance_metatensor(value: Any, typename: str) -> bool:
    """Is ``value`` an instance of the metatensor class called ``typename``
    (``"Labels"``, ``"LabelsEntry"``, ``"TensorBlock"`` or ``"TensorMap"``) of
    this backend? Objects of the metatensor-torch classes are not, and produce a
    warning pointing to ``metatensor.torch.learn``."""
    if isinstance(value, _CLASSES[typename]):
        return True
    if _is_torch_flavour(value) and type(value).__name__ in (typename, "ScriptObject"):
        warnings.warn(
            "Trying to use code from ``metatensor.learn`` with objects from "
            "metatensor-torch, you should use the code from "
            "``metatensor.torch.learn`` instead",
            stacklevel=2,
        )
    return False


__all__ = [
    "Labels",
    "LabelsEntry",
    "TensorBlock",
    "TensorMap",
    "isinstance_metatensor",
    "torch_jit_is_scripting",
]
