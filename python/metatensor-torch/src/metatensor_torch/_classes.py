"""Compile the TorchScript classes and add the eager-only conveniences.

The classes are compiled explicitly here, *before* adding Python-only methods
(``__iter__``, pickling, ``_repr_html_``, ...): TorchScript caches the compiled
type, so it never sees these additions.

Model-file ABI: TorchScript archives refer to the classes by their qualified
name and store their attributes by position. These must not change once
released (a new layout needs a new module path):

* ``__torch__.metatensor_torch._labels.LabelsEntry``: ``_names: List[str]``,
  ``_values: Tensor``;
* ``__torch__.metatensor_torch._labels.Labels``: ``_names: List[str]``,
  ``_values: Tensor`` (2-D int32);
* ``__torch__.metatensor_torch._block._GradientData``: ``path: str``,
  ``values: Tensor``, ``samples: Labels``, ``components: List[Labels]``,
  ``parameters: List[str]``;
* ``__torch__.metatensor_torch._block.TensorBlock``: ``_values: Tensor``,
  ``_samples: Labels``, ``_components: List[Labels]``, ``_properties: Labels``,
  ``_parameters: List[str]``, ``_gradients: List[_GradientData]``,
  ``_path: str``, ``_is_view: bool``;
* ``__torch__.metatensor_torch._tensor.TensorMap``: ``_keys: Labels``,
  ``_blocks: List[TensorBlock]``, ``_info_keys: List[str]``,
  ``_info_values: List[str]``.

The layout is chosen for the cost of crossing the Python/TorchScript boundary:
calling scripted code with an eager object converts it attribute by attribute
(about 0.35 µs per object and 0.15 µs per attribute going in, 1.7 µs per object
coming out), and a Python ``dict`` costs ~3 µs to convert (a ``list`` 0.3 µs),
so the classes hold no dictionary, and a block without gradients no gradient
object.
"""

import html

import torch

from ._block import TensorBlock, _GradientData
from ._labels import Labels, LabelsEntry
from ._tensor import TensorMap


# the classes are compiled at the end of their own module (TorchScript
# resolves names through the frame calling `torch.jit.script`)
_ = _GradientData


# ============================================================================ #
# iteration


def _labels_iter(self):
    for i in range(len(self)):
        yield self.entry(i)


def _entry_iter(self):
    yield from self.values.tolist()


def _tensor_iter(self):
    yield from self._blocks


Labels.__iter__ = _labels_iter
LabelsEntry.__iter__ = _entry_iter
TensorMap.__iter__ = _tensor_iter

# identity-based hash (as ScriptObject): use `tuple(entry)` as dictionary keys
LabelsEntry.__hash__ = object.__hash__
Labels.__hash__ = object.__hash__


# ============================================================================ #
# pickling and copies


def _labels_from_buffer(data: bytes) -> Labels:
    from ._io import load_labels_buffer

    return load_labels_buffer(torch.frombuffer(bytearray(data), dtype=torch.uint8))


def _block_from_buffer(data: bytes) -> TensorBlock:
    from ._io import load_block_buffer

    return load_block_buffer(torch.frombuffer(bytearray(data), dtype=torch.uint8))


def _tensor_from_buffer(data: bytes) -> TensorMap:
    from ._io import load_buffer

    return load_buffer(torch.frombuffer(bytearray(data), dtype=torch.uint8))


def _reduce(loader):
    def __reduce__(self):
        from ._io import save_buffer

        return (loader, (save_buffer(self).numpy().tobytes(),))

    return __reduce__


Labels.__reduce__ = _reduce(_labels_from_buffer)
TensorBlock.__reduce__ = _reduce(_block_from_buffer)
TensorMap.__reduce__ = _reduce(_tensor_from_buffer)


def _labels_copy(self):
    return Labels(self.names, self.values, assume_unique=True)


def _labels_deepcopy(self, memo):
    return Labels(list(self.names), self.values.clone(), assume_unique=True)


def _entry_deepcopy(self, memo):
    return LabelsEntry(list(self.names), self.values.clone())


Labels.__copy__ = _labels_copy
Labels.__deepcopy__ = _labels_deepcopy
LabelsEntry.__deepcopy__ = _entry_deepcopy
TensorBlock.__copy__ = lambda self: self.copy(deep=False)
TensorBlock.__deepcopy__ = lambda self, memo: self.copy(deep=True)
TensorMap.__copy__ = lambda self: self.copy(deep=False)
TensorMap.__deepcopy__ = lambda self, memo: self.copy(deep=True)


# ============================================================================ #
# HTML representation (jupyter)


def _labels_html(self) -> str:
    names = self.names
    rows = self.values
    count = rows.shape[0]
    truncated = count > 20
    if rows.device.type == "meta":
        before, after, truncated = [], [], True
    elif truncated:
        before = rows[:10].tolist()
        after = rows[count - 10 :].tolist()
    else:
        before, after = rows.tolist(), []
    lines = ["<table>", "<thead><tr>"]
    lines += [f"<th>{html.escape(n)}</th>" for n in names]
    lines += ["</tr></thead>", "<tbody>"]
    for row in before:
        lines.append("<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>")
    if truncated:
        lines.append("<tr>" + "<td>...</td>" * len(names) + "</tr>")
    for row in after:
        lines.append("<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>")
    lines += ["</tbody>", "</table>"]
    return "".join(lines)


def _text_html(self) -> str:
    return "<pre>" + html.escape(repr(self)) + "</pre>"


Labels._repr_html_ = _labels_html
LabelsEntry._repr_html_ = _text_html
TensorBlock._repr_html_ = _text_html
TensorMap._repr_html_ = _text_html


# ============================================================================ #
# public names


def _use_public_names():
    """Show the classes under their public name (``metatensor.torch.TensorMap``
    in ``type(tensor)``, tracebacks and documentation) instead of the private
    module defining them.

    TorchScript finds a compiled class by its qualified name, which it builds
    from ``__module__``: ``_jit_override_qualname`` keeps the name the classes
    were compiled with (``__torch__.metatensor_torch._tensor.TensorMap``, ...),
    so the code compiled later and the model files are the same as before."""
    for cls in (Labels, LabelsEntry, TensorBlock, TensorMap):
        cls._jit_override_qualname = torch._jit_internal._qualified_name(cls)
        cls.__module__ = "metatensor.torch"


_use_public_names()

__all__ = ["Labels", "LabelsEntry", "TensorBlock", "TensorMap"]
