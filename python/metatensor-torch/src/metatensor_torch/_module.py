"""Moving metatensor data stored in ``torch.nn.Module`` attributes.

Metatensor values are neither parameters nor buffers, so ``module.to()``,
``.double()``, ``.cuda()`` and ``state_dict()`` ignore them. Two pieces fix
this:

* :py:class:`Module` (eager): a ``torch.nn.Module`` whose ``register_buffer``
  also accepts metatensor values (and dict/list/tuple of them). A zero-size
  ``_mts_helper`` tensor buffer tracks the device/dtype changes done by
  ``_apply``; registered metatensor values follow it. They are also saved in the
  ``state_dict`` through ``get_extra_state`` / ``set_extra_state``.
* :py:func:`patch_torch_jit_module`: patches
  ``torch.jit.RecursiveScriptModule._apply`` so that scripted or loaded modules
  containing ``_mts_helper`` also move the attributes listed in
  ``_mts_buffer_names``.

C++ engines loading such a model must do the same loop themselves: for each
name in the ``_mts_buffer_names`` attribute, call ``to(dtype, device)`` on the
attribute (``run_method("to", ...)``) and re-assign it with
``module.setattr(name, new_value)``.
"""

from typing import Any, Dict, List

import torch

from ._block import TensorBlock
from ._labels import Labels
from ._tensor import TensorMap


_METATENSOR_TYPES = (Labels, TensorBlock, TensorMap)


def _is_metatensor(value: Any) -> bool:
    if isinstance(value, _METATENSOR_TYPES):
        return True
    if isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        return False
    if len(items) == 0:
        return False
    kinds = [_is_metatensor(v) for v in items]
    if all(kinds):
        return True
    if any(kinds):
        raise ValueError(
            "can not mix metatensor and non-metatensor values in a buffer container"
        )
    return False


def _target_dtype(fn):
    """Find the dtype that ``fn`` (given to ``Module._apply``) converts
    floating point tensors to, or ``None`` if it does not change dtypes."""
    try:
        # small CPU probes, whatever the default device of torch is
        single = fn(torch.zeros(0, dtype=torch.float32, device="cpu"))
        double = fn(torch.zeros(0, dtype=torch.float64, device="cpu"))
    except Exception:  # noqa: BLE001 - functions that do not work on plain tensors
        return None
    if not isinstance(single, torch.Tensor) or not isinstance(double, torch.Tensor):
        return None
    if single.dtype == double.dtype:
        return single.dtype
    return None


def _convert(value: Any, device, dtype) -> Any:
    if isinstance(value, Labels):
        return value.to(device)
    if isinstance(value, (TensorBlock, TensorMap)):
        return value.to(device=device, dtype=dtype)
    if isinstance(value, dict):
        return {k: _convert(v, device, dtype) for k, v in value.items()}
    if isinstance(value, list):
        return [_convert(v, device, dtype) for v in value]
    if isinstance(value, tuple):
        return tuple(_convert(v, device, dtype) for v in value)
    return value


def _serialize(value: Any) -> Any:
    from ._io import save_buffer

    if isinstance(value, _METATENSOR_TYPES):
        return (type(value).__name__, save_buffer(value))
    if isinstance(value, dict):
        return ("dict", {k: _serialize(v) for k, v in value.items()})
    if isinstance(value, list):
        return ("list", [_serialize(v) for v in value])
    return ("tuple", [_serialize(v) for v in value])


def _deserialize(data: Any) -> Any:
    from ._io import load_block_buffer, load_buffer, load_labels_buffer

    kind, content = data
    if isinstance(content, torch.Tensor):
        # buffers are saved on the CPU, but `torch.load(map_location=...)` can
        # move them to another device
        content = content.cpu()
    if kind == "Labels":
        return load_labels_buffer(content)
    if kind == "TensorBlock":
        return load_block_buffer(content)
    if kind == "TensorMap":
        return load_buffer(content)
    if kind == "dict":
        return {k: _deserialize(v) for k, v in content.items()}
    if kind == "list":
        return [_deserialize(v) for v in content]
    return tuple(_deserialize(v) for v in content)


class Module(torch.nn.Module):
    """A ``torch.nn.Module`` that can register metatensor values (Labels,
    TensorBlock, TensorMap, or dict/list/tuple of them) as buffers: they are
    moved by ``module.to()`` and friends, and stored in the ``state_dict``.

    Labels only change device; blocks and maps also change dtype when the
    conversion function changes the dtype of all floating point tensors (as in
    ``module.to(torch.float32)`` or ``module.double()``)."""

    _mts_buffer_names: List[str]
    _mts_non_persistent_buffers: List[str]

    def __init__(self):
        super().__init__()
        self._mts_buffer_names = []
        self._mts_non_persistent_buffers = []
        self.register_buffer("_mts_helper", torch.zeros(0), persistent=False)

    def register_buffer(self, name: str, value: Any, persistent: bool = True):
        """Register a buffer: ``value`` can be a tensor (or ``None``), a
        metatensor value or a dict/list/tuple of metatensor values.

        :param name: name of the buffer
        :param value: value of the buffer
        :param persistent: whether the buffer is part of the ``state_dict``
        """
        if value is None or isinstance(value, torch.Tensor):
            return super().register_buffer(name, value, persistent)
        if not _is_metatensor(value):
            raise ValueError(
                f"can not register '{name}' as a buffer: expected a tensor, a "
                f"metatensor value or a container of metatensor values, got "
                f"{type(value)}"
            )
        object.__setattr__(self, name, value)
        if name not in self._mts_buffer_names:
            self._mts_buffer_names.append(name)
        if not persistent and name not in self._mts_non_persistent_buffers:
            self._mts_non_persistent_buffers.append(name)
        elif persistent and name in self._mts_non_persistent_buffers:
            self._mts_non_persistent_buffers.remove(name)

    def _apply(self, fn, recurse=True):
        result = super()._apply(fn, recurse)
        helper = self._mts_helper
        new_dtype = _target_dtype(fn)
        for name in self._mts_buffer_names:
            value = getattr(self, name)
            object.__setattr__(self, name, _convert(value, helper.device, new_dtype))
        return result

    @torch.jit.ignore
    def get_extra_state(self) -> Dict[str, Any]:
        """Serialized persistent metatensor buffers (used by ``state_dict``)."""
        return {
            name: _serialize(getattr(self, name))
            for name in self._mts_buffer_names
            if name not in self._mts_non_persistent_buffers
        }

    @torch.jit.ignore
    def set_extra_state(self, state: Dict[str, Any]):
        """Restore metatensor buffers from ``state`` (used by
        ``load_state_dict``)."""
        helper = self._mts_helper
        for name, data in state.items():
            value = _convert(_deserialize(data), helper.device, None)
            object.__setattr__(self, name, value)
            if name not in self._mts_buffer_names:
                self._mts_buffer_names.append(name)


def _script_module_apply(self, fn, recurse=True):
    has_helper = self._c.hasattr("_mts_helper") and self._c.hasattr("_mts_buffer_names")
    if not has_helper:
        return _ORIGINAL_APPLY(self, fn, recurse)
    result = _ORIGINAL_APPLY(self, fn, recurse)
    helper = self._mts_helper
    new_dtype = _target_dtype(fn)
    for name in self._c.getattr("_mts_buffer_names"):
        value = getattr(self, name)
        setattr(self, name, _convert(value, helper.device, new_dtype))
    return result


_ORIGINAL_APPLY = None


def patch_torch_jit_module():
    """Patch ``torch.jit.RecursiveScriptModule._apply`` so that scripted or
    loaded modules move their registered metatensor attributes in ``.to()``,
    ``.double()``, ... (only once)."""
    global _ORIGINAL_APPLY
    if _ORIGINAL_APPLY is not None:
        return
    _ORIGINAL_APPLY = torch.jit.RecursiveScriptModule._apply
    torch.jit.RecursiveScriptModule._apply = _script_module_apply
