"""A ``torch.nn.Module`` that knows how to move and save metatensor data.

Metatensor objects (``Labels``, ``TensorBlock``, ``TensorMap``) stored as
attributes of a ``torch.nn.Module`` are neither parameters nor buffers, so
``module.to()`` and ``module.state_dict()`` ignore them. :py:class:`Module`
fixes this: metatensor values registered with :py:meth:`Module.register_buffer`
(or assigned wrapped in :py:class:`Buffer`) follow the device and dtype changes
of the module, and are saved in its ``state_dict`` under ``_extra_state``.
"""

from typing import Any, Dict, List, Optional, Tuple

import torch

from .._backend import Labels, TensorBlock, TensorMap, isinstance_metatensor


_TAG_LABELS = "metatensor.Labels"
_TAG_BLOCK = "metatensor.TensorBlock"
_TAG_MAP = "metatensor.TensorMap"


class Buffer:
    """Mark a value to be registered as a buffer when assigned as an attribute
    of a :py:class:`Module`: ``self.x = Buffer(value)`` is the same as
    ``self.register_buffer("x", value)``.

    :param value: the value of the buffer
    :param persistent: whether the buffer is part of the module's ``state_dict``
    """

    def __init__(self, value: Any, persistent: bool = True):
        self.data = value
        self.persistent = persistent

    def __repr__(self) -> str:
        return f"Buffer({self.data!r}, persistent={self.persistent})"


def _metatensor_kind(value: Any) -> Optional[str]:
    """The serialization tag of a single metatensor object, or ``None``."""
    if isinstance_metatensor(value, "Labels"):
        return _TAG_LABELS
    if isinstance_metatensor(value, "TensorBlock"):
        return _TAG_BLOCK
    if isinstance_metatensor(value, "TensorMap"):
        return _TAG_MAP
    return None


def _children(value: Any) -> Optional[List[Any]]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, (list, tuple)):
        return list(value)
    return None


def _is_metatensor_data(value: Any) -> bool:
    """Is ``value`` a metatensor object, or a (nested) dict/list/tuple containing
    only metatensor objects (and empty containers)? Raises ``ValueError`` for
    containers mixing metatensor objects with other data."""
    if _metatensor_kind(value) is not None:
        return True
    children = _children(value)
    if children is None:
        return False
    kinds = [_is_metatensor_data(child) or _is_empty(child) for child in children]
    if all(kinds):
        return True
    if any(kinds):
        raise ValueError(
            "containers registered as buffers can not mix metatensor data "
            "(Labels, TensorBlock, TensorMap) with other types of data"
        )
    return False


def _is_empty(value: Any) -> bool:
    """Is ``value`` a container containing only (nested) empty containers?"""
    children = _children(value)
    if children is None:
        return False
    return all(_is_empty(child) for child in children)


def _map_containers(value: Any, function) -> Any:
    """Apply ``function`` to every metatensor object in ``value``, rebuilding the
    containers around them."""
    if _metatensor_kind(value) is not None:
        return function(value)
    if isinstance(value, dict):
        return {key: _map_containers(item, function) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_containers(item, function) for item in value]
    if isinstance(value, tuple):
        return tuple(_map_containers(item, function) for item in value)
    raise ValueError(
        "buffers can only contain metatensor data (Labels, TensorBlock, TensorMap) "
        f"and dict/list/tuple of them, got {type(value).__name__}"
    )


def _target(fn, device: torch.device) -> Tuple[Optional[torch.dtype], torch.device]:
    """Where ``fn`` (as given to ``Module._apply``) sends floating point tensors
    currently on ``device``: their new dtype (``None`` if ``fn`` does not change
    dtypes) and their new device."""
    try:
        single = fn(torch.zeros(0, dtype=torch.float32, device=device))
        double = fn(torch.zeros(0, dtype=torch.float64, device=device))
    except Exception:  # noqa: BLE001 - fn may not accept our probes
        return None, device
    if not isinstance(single, torch.Tensor) or not isinstance(double, torch.Tensor):
        return None, device
    if single.dtype == double.dtype and single.dtype.is_floating_point:
        return single.dtype, single.device
    return None, single.device


def _is_numpy(array: Any) -> bool:
    return not isinstance(array, torch.Tensor)


def _device_of(value: Any) -> torch.device:
    """The device of a single metatensor object (the CPU for numpy arrays)."""
    if isinstance_metatensor(value, "Labels"):
        return _labels_device(value)
    values = _first_values(value)
    if values is None:
        return _labels_device(value.keys)
    if _is_numpy(values):
        return torch.device("cpu")
    return values.device


def _move(value: Any, dtype: Optional[torch.dtype], device: torch.device) -> Any:
    """Move a single metatensor object to ``device``, and its values to
    ``dtype`` if it is not ``None``. Core objects with numpy arrays switch to
    torch arrays when needed."""
    if isinstance_metatensor(value, "Labels"):
        if device.type != "cpu" and _is_numpy(value.values):
            # core Labels with numpy values
            value = value.to(arrays="torch")
        return value.to(device)

    values = _first_values(value)
    numpy_values = values is not None and _is_numpy(values)
    # the keys of an empty core map give no array to follow
    numpy_keys = values is None and _is_numpy(value.keys.values)
    if (dtype is not None and numpy_values) or (
        device.type != "cpu" and (numpy_values or numpy_keys)
    ):
        value = value.to(arrays="torch")
    if dtype is None:
        return value.to(device=device)
    return value.to(dtype=dtype, device=device)


# ----------------------------------------------------------------------------- #
# serialization of metatensor values in `state_dict()`                          #
# ----------------------------------------------------------------------------- #


def _bytes_buffer(value: Any) -> Any:
    buffer = value.save_buffer()
    if isinstance(buffer, torch.Tensor):
        return buffer
    return bytes(buffer)


def _serialize_one(value: Any) -> tuple:
    kind = _metatensor_kind(value)
    if kind == _TAG_LABELS:
        marker = torch.empty(0, dtype=torch.int32, device=_labels_device(value))
        return (kind, _bytes_buffer(value), marker)

    values = _first_values(value)
    assert values is None or isinstance(values, torch.Tensor), (
        "metatensor buffers of torch modules must contain torch tensors"
    )
    if values is None:
        # an empty map: only the keys have a device
        marker = torch.empty(0, device=_labels_device(value.keys))
    else:
        marker = torch.empty(0, dtype=values.dtype, device=values.device)
    if values is not None and values.device.type != "cpu":
        buffer = _bytes_buffer(value.to(device="cpu"))
    else:
        buffer = _bytes_buffer(value)
    return (kind, buffer, marker)


def _labels_device(labels: Any) -> torch.device:
    values = labels.values
    if isinstance(values, torch.Tensor):
        return values.device
    return torch.device("cpu")


def _first_values(value: Any) -> Optional[Any]:
    if isinstance_metatensor(value, "TensorBlock"):
        return value.values
    if len(value.keys) == 0:
        return None
    return value.block_by_id(0).values


def _serialize(value: Any) -> Any:
    if _metatensor_kind(value) is not None:
        return _serialize_one(value)
    if isinstance(value, dict):
        return {key: _serialize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_serialize(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_serialize(item) for item in value)
    raise TypeError(
        "buffers can only contain metatensor data (Labels, TensorBlock, TensorMap) "
        f"and dict/list/tuple of them, got {type(value).__name__}"
    )


def _is_serialized(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 3
        and isinstance(value[0], str)
        and value[0].startswith("metatensor.")
    )


def _as_load_buffer(buffer: Any, like_torch: bool) -> Any:
    """Convert a serialized buffer (bytes or uint8 tensor) to what ``load_buffer``
    of this backend expects."""
    if like_torch:
        if isinstance(buffer, torch.Tensor):
            return buffer
        return torch.frombuffer(bytearray(buffer), dtype=torch.uint8)
    if isinstance(buffer, torch.Tensor):
        return buffer.detach().cpu().numpy().tobytes()
    return buffer


def _backend_uses_torch_buffers() -> bool:
    """Does ``save_buffer`` of this backend return torch tensors (the
    metatensor-torch classes), rather than bytes (the core classes)?"""
    import metatensor

    return not issubclass(Labels, metatensor.Labels)


def _deserialize_one(entry: tuple) -> Any:
    kind, buffer, marker = entry
    buffer = _as_load_buffer(buffer, _backend_uses_torch_buffers())
    if kind == _TAG_LABELS:
        return _move(Labels.load_buffer(buffer), None, marker.device)
    if kind == _TAG_BLOCK:
        loaded = TensorBlock.load_buffer(buffer)
    elif kind == _TAG_MAP:
        loaded = TensorMap.load_buffer(buffer)
    else:
        raise ValueError(f"unknown metatensor class '{kind}' in extra state")
    return loaded.to(dtype=marker.dtype, device=marker.device, arrays="torch")


def _deserialize(value: Any) -> Any:
    if _is_serialized(value):
        return _deserialize_one(value)
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[0], str):
        raise ValueError(f"unknown metatensor class '{value[0]}' in extra state")
    if isinstance(value, dict):
        return {key: _deserialize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deserialize(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_deserialize(item) for item in value)
    raise TypeError(
        "invalid extra state: expected serialized metatensor data or dict/list/tuple "
        f"of them, got {type(value).__name__}"
    )


def _check_serialized_container(value: Any) -> None:
    """Raise ``TypeError`` for containers mixing serialized metatensor data with
    other values."""
    if _is_serialized(value):
        return
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[0], str):
        # unknown class tag, `_deserialize` raises a ValueError
        return
    children = _children(value)
    if children is None:
        raise TypeError(
            "invalid extra state: containers can not mix metatensor data with "
            f"other values, got {type(value).__name__}"
        )
    for child in children:
        _check_serialized_container(child)


class Module(torch.nn.Module):
    """A :py:class:`torch.nn.Module` that can store metatensor data as buffers.

    Metatensor values (``Labels``, ``TensorBlock``, ``TensorMap``, and
    dict/list/tuple nesting them) registered with :py:meth:`register_buffer`
    move with the module in ``module.to(...)``/``.double()``/... (``Labels``
    only change device), and are saved in ``state_dict()`` (through
    :py:meth:`get_extra_state`) unless registered with ``persistent=False``.
    """

    def __init__(self):
        super().__init__()
        self._mts_buffer_names: List[str] = []
        self._mts_non_persistent_buffers: List[str] = []
        # follows the dtype/device changes of the module (metatensor buffers
        # follow them on their own, see `_apply`)
        self.register_buffer("_mts_helper", torch.zeros(0, dtype=torch.float32))

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Buffer):
            self.register_buffer(name, value.data, value.persistent)
        else:
            super().__setattr__(name, value)

    def register_buffer(self, name: str, value: Any, persistent: bool = True) -> None:
        """Register a buffer: a ``torch.Tensor`` (see
        :py:meth:`torch.nn.Module.register_buffer`), or metatensor data
        (``Labels``, ``TensorBlock``, ``TensorMap``, dict/list/tuple containing
        them, ``None`` or an empty container).

        :param name: name of the buffer, the value is then available as
            ``self.<name>``
        :param value: the value to register
        :param persistent: whether the buffer is part of the ``state_dict``
        """
        if isinstance(value, torch.Tensor):
            super().register_buffer(name, value, persistent)
            return

        if value is not None and not _is_empty(value):
            if not _is_metatensor_data(value):
                raise TypeError(
                    "register_buffer expects a torch.Tensor, None, or a value "
                    "containing metatensor types (Labels, TensorBlock, TensorMap), "
                    f"got {type(value).__name__}"
                )

        if name in self._mts_buffer_names:
            raise KeyError(f"buffer '{name}' is already registered")
        if hasattr(self, name) and name not in self.__dict__:
            raise KeyError(f"attribute '{name}' already exists")

        torch.nn.Module.__setattr__(self, name, value)
        self._mts_buffer_names.append(name)
        if not persistent:
            self._mts_non_persistent_buffers.append(name)

    def _apply(self, fn, recurse=True):
        module = super()._apply(fn, recurse)
        if len(self._mts_buffer_names) == 0:
            return module

        # each value follows what `fn` does to tensors on its own device: the
        # module's device is not known (its parameters, or `_mts_helper`, may
        # have been created on another device than its metatensor data)
        targets: Dict[torch.device, Tuple[Optional[torch.dtype], torch.device]] = {}

        def move(value: Any) -> Any:
            current = _device_of(value)
            if current not in targets:
                targets[current] = _target(fn, current)
            dtype, device = targets[current]
            return _move(value, dtype, device)

        for name in self._mts_buffer_names:
            value = getattr(self, name)
            if value is None or _is_empty(value):
                continue
            torch.nn.Module.__setattr__(self, name, _map_containers(value, move))
        return module

    def get_extra_state(self) -> Dict[str, Any]:
        """The serialized persistent metatensor buffers, stored as
        ``_extra_state`` in the ``state_dict``: for each buffer name, a tuple
        ``(class tag, buffer, empty tensor with the dtype/device)``, or nested
        dict/list/tuple of them."""
        extra: Dict[str, Any] = {}
        for name in self._mts_buffer_names:
            if name in self._mts_non_persistent_buffers:
                continue
            value = getattr(self, name)
            if value is None:
                continue
            extra[name] = _serialize(value)
        return extra

    def set_extra_state(self, extra: Dict[str, Any]) -> None:
        """Restore the metatensor buffers saved by :py:meth:`get_extra_state`.

        :param extra: the ``_extra_state`` entry of a ``state_dict``
        """
        for name, value in extra.items():
            _check_serialized_container(value)
            loaded = _deserialize(value)
            torch.nn.Module.__setattr__(self, name, loaded)
            if name not in self._mts_buffer_names:
                self._mts_buffer_names.append(name)
