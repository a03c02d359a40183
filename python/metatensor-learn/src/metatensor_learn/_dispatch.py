"""Small array helpers shared by the learn modules, written so that TorchScript
can compile them in ``metatensor.torch.learn`` (where every array is a
``torch.Tensor``), while the core flavour also accepts numpy arrays (e.g. the
values of Labels)."""

from typing import List

import numpy as np
import torch

from ._backend import torch_jit_is_scripting


def _eager_int_array_like(values: List[int], like):
    if isinstance(like, torch.Tensor):
        return torch.tensor(values, dtype=torch.int64, device=like.device)
    return np.array(values, dtype=np.int64)


def int_array_like(int_list: List[int], like: torch.Tensor) -> torch.Tensor:
    """An int64 array holding ``int_list``: a torch tensor on the device of
    ``like`` when ``like`` is a tensor, a numpy array otherwise."""
    if not torch_jit_is_scripting():
        return _eager_int_array_like(int_list, like)
    return torch.tensor(int_list, dtype=torch.int64, device=like.device)


def _eager_index_tensor(indices, like: torch.Tensor) -> torch.Tensor:
    if isinstance(indices, torch.Tensor):
        return indices.to(dtype=torch.int64, device=like.device)
    # copy: numpy arrays of Labels are read-only, torch wants writable ones
    array = np.array(indices, dtype=np.int64, copy=True)
    return torch.from_numpy(array).to(like.device)


def index_tensor(indices: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``indices`` (a torch tensor or a numpy array, e.g. a Labels column) as an
    int64 torch tensor on the device of ``like``, usable to index ``like``."""
    if not torch_jit_is_scripting():
        return _eager_index_tensor(indices, like)
    return indices.to(dtype=torch.int64, device=like.device)


def range_labels_values(count: int, like: torch.Tensor) -> torch.Tensor:
    """The ``(count, 1)`` values of ``Labels.range(name, count)``, as int32 on
    the device of ``like``."""
    return torch.arange(count, dtype=torch.int32, device=like.device).reshape(-1, 1)
