"""Python-only helpers for the TorchScript classes.

The functions in this module are only called from the non-TorchScript branches
(``if torch.jit.is_scripting(): ... else: _eager.xxx(...)``) of the classes,
so they are never compiled and can use any Python feature (tuples, numpy,
files, ...). They import the classes lazily to avoid import cycles.
"""

import numbers
import re
from typing import Any, List, Set

import torch


_SMALL_LABELS = 256


def labels_names(names: Any) -> List[str]:
    """Normalize the ``names`` argument of ``Labels``."""
    if isinstance(names, str):
        return [names]
    if isinstance(names, (list, tuple)):
        for name in names:
            if not isinstance(name, str):
                kind = "list" if isinstance(names, list) else "tuple"
                raise TypeError(
                    f"names must be a {kind} of strings, got element with type "
                    f"'{type(name).__name__}' instead"
                )
        return list(names)
    raise TypeError(
        "names must be a string, list of strings or tuple of string, got "
        f"'{type(names).__name__}' instead"
    )


_VALID_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# names already validated (names are few and reused a lot)
_VALID_NAMES: Set[str] = set()


def check_names(names: List[str], context: str) -> None:
    """Eager version of ``_labels._check_names``, with a cache of valid names."""
    for name in names:
        if name not in _VALID_NAMES:
            if isinstance(name, str) and _VALID_NAME.match(name) and name.isascii():
                _VALID_NAMES.add(name)
            else:
                from ._labels import _check_names

                _check_names(names, context)
    if len(names) > 1 and len(set(names)) != len(names):
        from ._labels import _check_names

        _check_names(names, context)


def check_unique(values: torch.Tensor) -> None:
    """Check that all rows of ``values`` are distinct (fast paths for eager
    mode)."""
    count = values.shape[0]
    if count <= _SMALL_LABELS and values.device.type == "cpu":
        rows = values.tolist()
        if len(set(map(tuple, rows))) == count:
            return
    elif values.shape[1] == 1:
        if torch.unique(values[:, 0]).shape[0] == count:
            return

    from ._labels import _check_unique

    _check_unique(values)


def entry_like(entry: Any) -> Any:
    """Convert tuples and other sequences of integers to a list of integers."""
    from ._labels import LabelsEntry

    if isinstance(entry, (LabelsEntry, torch.Tensor, list)):
        return entry
    if isinstance(entry, tuple):
        return list(entry)
    try:
        import numpy as np

        if isinstance(entry, np.ndarray):
            return torch.from_numpy(np.asarray(entry, dtype=np.int32).copy())
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(
        "entry must be a LabelsEntry, a tensor or a sequence of integers, got "
        f"{type(entry)} instead"
    )


def dtype_name(dtype: Any) -> str:
    """Name of a torch dtype, as printed by Python."""
    return str(dtype)


def check_dtype_argument(context: str, arg: Any) -> None:
    if not isinstance(arg, torch.dtype):
        raise TypeError(f"unexpected type in {context}: {type(arg)}")


def check_block_types(values, samples, components, properties) -> List[Any]:
    """Check the types of the ``TensorBlock`` constructor arguments."""
    from ._labels import Labels

    if not isinstance(values, torch.Tensor):
        raise TypeError(f"`values` must be a torch.Tensor, not {type(values)}")
    if not isinstance(samples, Labels):
        raise TypeError(f"`samples` must be metatensor Labels, not {type(samples)}")
    components = list(components)
    for component in components:
        if not isinstance(component, Labels):
            raise TypeError(
                "`components` elements must be metatensor Labels, "
                f"not {type(component)}"
            )
    if not isinstance(properties, Labels):
        raise TypeError(
            f"`properties` must be metatensor Labels, not {type(properties)}"
        )
    return components


def check_map_types(keys, blocks) -> List[Any]:
    """Check the types of the ``TensorMap`` constructor arguments."""
    from ._block import TensorBlock
    from ._labels import Labels

    if not isinstance(keys, Labels):
        raise TypeError(f"`keys` must be metatensor Labels, not {type(keys)}")
    blocks = list(blocks)
    for block in blocks:
        if not isinstance(block, TensorBlock):
            raise TypeError(
                f"`blocks` elements must be metatensor TensorBlock, not {type(block)}"
            )
    return blocks


def check_selection(selection: Any, allow_list: bool) -> Any:
    """Check and normalize the ``selection`` argument of ``TensorMap.block(s)``."""
    from ._labels import Labels, LabelsEntry

    if selection is None or isinstance(selection, (Labels, LabelsEntry)):
        return selection
    if isinstance(selection, bool):
        raise TypeError(f"invalid type for block selection: {type(selection)}")
    if isinstance(selection, int):
        return selection
    if isinstance(selection, dict):
        for key, value in selection.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"expected string keys in selection, got {type(key)} instead"
                )
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(
                    f"expected integer values in selection, got {key}={value!r} of "
                    f"type {type(value)}"
                )
        return {key: int(value) for key, value in selection.items()}
    if allow_list and isinstance(selection, (list, tuple)):
        result = []
        for value in selection:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(
                    f"expected integer values in selection, got {type(value)}"
                )
            result.append(int(value))
        return result
    raise TypeError(f"invalid type for block selection: {type(selection)}")


def names_argument(names: Any) -> Any:
    """Accept tuples of names where TorchScript wants lists."""
    if isinstance(names, tuple):
        return list(names)
    return names


# serialization, implemented in `_io` (imported lazily: `_io` imports the classes)
def load(path):
    from . import _io

    return _io.load(path)


def load_block(path):
    from . import _io

    return _io.load_block(path)


def load_labels(path):
    from . import _io

    return _io.load_labels(path)


def load_buffer(buffer):
    from . import _io

    return _io.load_buffer(buffer)


def load_block_buffer(buffer):
    from . import _io

    return _io.load_block_buffer(buffer)


def load_labels_buffer(buffer):
    from . import _io

    return _io.load_labels_buffer(buffer)


def save(path, data):
    from . import _io

    return _io._save_eager(path, data)


def save_buffer(data):
    from . import _io

    return _io._save_buffer_eager(data)


def data_checks_enabled(values: torch.Tensor) -> bool:
    """Whether checks depending on the *values* of ``values`` can run: not while
    ``torch.compile`` / ``torch.export`` trace the code, nor on fake tensors."""
    if torch.compiler.is_compiling():
        return False
    if type(values) is torch.Tensor:
        # fake tensors and other tracing wrappers are subclasses
        return True
    try:
        from torch._subclasses.fake_tensor import is_fake

        if is_fake(values):
            return False
    except ImportError:  # pragma: no cover
        pass
    return True
