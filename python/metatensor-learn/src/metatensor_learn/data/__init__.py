"""Datasets, collate functions and data loader for metatensor data.

:py:class:`Dataset`, :py:class:`IndexedDataset`, :py:func:`group` and
:py:func:`group_and_join` only need Python (and torch to join torch tensors);
:py:class:`DataLoader` needs torch.
"""

from ._collate import group, group_and_join
from ._dataset import Dataset, IndexedDataset


__all__ = ["Dataset", "IndexedDataset", "group", "group_and_join"]

try:
    import torch as _torch  # noqa: F401
except ImportError as _error:
    _TORCH_ERROR = str(_error)

    def __getattr__(name):
        if name == "DataLoader":
            raise ImportError(
                "metatensor.learn.data.DataLoader requires torch, which could not "
                f"be imported: {_TORCH_ERROR}"
            )
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

else:
    from ._dataloader import DataLoader  # noqa: F401

    __all__.insert(0, "DataLoader")
