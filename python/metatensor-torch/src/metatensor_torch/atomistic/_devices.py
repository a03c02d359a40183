"""Selection of the device to run a model on (:py:func:`pick_device`)."""

import warnings
from typing import List, Optional

import torch


# device types known to torch (``torch.device`` accepts these names)
_KNOWN_DEVICE_TYPES = [
    "cpu",
    "cuda",
    "mps",
    "hip",
    "xla",
    "ipu",
    "xpu",
    "ve",
    "opencl",
    "opengl",
    "vulkan",
    "mkldnn",
    "ideep",
    "mtia",
    "meta",
    "hpu",
]


def _is_available(device_type: str) -> bool:
    """Whether devices of type ``device_type`` can be used in this process."""
    if device_type in ("cpu", "meta"):
        return True
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.version.hip is None
    if device_type == "hip":
        return torch.cuda.is_available() and torch.version.hip is not None
    if device_type == "mps":
        mps = getattr(torch.backends, "mps", None)
        return mps is not None and bool(mps.is_available())
    backend = getattr(torch, device_type, None)
    is_available = getattr(backend, "is_available", None)
    if callable(is_available):
        try:
            return bool(is_available())
        except Exception:  # noqa: BLE001 - a broken backend is not available
            return False
    return False


def pick_device(model_devices: List[str], desired_device: Optional[str] = None) -> str:
    """Pick the device to use to run a model.

    The devices supported by the model (``capabilities.supported_devices``, in
    order of preference) are filtered to keep only the ones known to torch and
    available in this process. Without ``desired_device``, the first of them is
    returned; otherwise ``desired_device`` (a device type such as ``"cuda"``,
    optionally with an index such as ``"cuda:1"``) is returned if the model
    supports it and it is available.

    :param model_devices: device types supported by the model, in order of
        preference
    :param desired_device: device requested by the user, or ``None`` to use
        the model's preferred available device
    :return: the device to use, as a string that ``torch.device`` accepts
    """
    if not isinstance(model_devices, (list, tuple)) or not all(
        isinstance(device, str) for device in model_devices
    ):
        raise TypeError(
            f"`model_devices` must be a list of strings, got {model_devices!r}"
        )

    available = []
    for device in model_devices:
        if device not in _KNOWN_DEVICE_TYPES:
            warnings.warn(
                f"the model declares support for an unknown device type "
                f"'{device}', it will be ignored",
                stacklevel=2,
            )
            continue
        if _is_available(device) and device not in available:
            available.append(device)

    if desired_device is None:
        if len(available) == 0:
            raise ValueError(
                "no available device found: the model supports "
                f"{list(model_devices)}, but none of them can be used here"
            )
        return available[0]

    if not isinstance(desired_device, str):
        raise TypeError(
            f"`desired_device` must be a string, got {type(desired_device).__name__}"
        )
    try:
        device = torch.device(desired_device)
    except RuntimeError as e:
        raise ValueError(f"invalid desired device '{desired_device}': {e}") from e

    if device.type not in model_devices:
        raise ValueError(
            f"failed to find requested device ({desired_device}): it is not "
            f"supported by this model (supported devices are {list(model_devices)})"
        )
    if device.type not in available:
        raise ValueError(
            f"failed to find requested device ({desired_device}): it is not "
            "available on this system"
        )
    return str(device)
