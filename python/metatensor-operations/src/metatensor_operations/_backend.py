"""Classes and TorchScript helpers used by every operation.

Operations import ``Labels``, ``TensorBlock``, ``TensorMap`` and the TorchScript
helpers ONLY from this module. ``metatensor.torch.operations`` runs the same source
files a second time with another ``_backend`` module (torch classes,
``torch.jit.script``, ...), so one implementation serves both; see
``metatensor_torch/operations.py``. That backend also provides the ``torch``
module, which :py:mod:`._dispatch` uses (with the core classes, ``torch`` is
only looked up when a torch tensor is given, and never imported).

Everything the operations call on arrays must be TorchScript-compatible for
``Array = torch.Tensor``: numpy code only runs in ``if not
torch_jit_is_scripting():`` branches, which TorchScript does not compile.
"""

from typing import Any

from metatensor import Labels, LabelsEntry, TensorBlock, TensorMap


# the array type of the classes used by this backend (numpy arrays, torch
# tensors, or array API arrays for the core classes)
Array = Any


def torch_jit_is_scripting() -> bool:
    """Are we running inside TorchScript? Never the case with core classes."""
    return False


def torch_jit_script(function):
    """Compile ``function`` with TorchScript: identity for core classes."""
    return function


def torch_jit_annotate(annotation, value):
    """``torch.jit.annotate``: identity for core classes."""
    return value


def isinstance_metatensor(value: Any, typename: str) -> bool:
    """Is ``value`` an instance of the metatensor class called ``typename``
    (``"Labels"``, ``"LabelsEntry"``, ``"TensorBlock"`` or ``"TensorMap"``) of
    this backend?"""
    classes = {
        "Labels": Labels,
        "LabelsEntry": LabelsEntry,
        "TensorBlock": TensorBlock,
        "TensorMap": TensorMap,
    }
    return isinstance(value, classes[typename])


__all__ = [
    "Array",
    "Labels",
    "LabelsEntry",
    "TensorBlock",
    "TensorMap",
    "isinstance_metatensor",
    "torch_jit_annotate",
    "torch_jit_is_scripting",
    "torch_jit_script",
]
