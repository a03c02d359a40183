"""Unique metadata entries: ``unique_metadata`` and ``unique_metadata_block``."""

from typing import List, Optional, Union

from . import _dispatch
from ._backend import (
    Array,
    Labels,
    TensorBlock,
    TensorMap,
    torch_jit_annotate,
    torch_jit_is_scripting,
    torch_jit_script,
)
from ._utils import _check_block_type, _check_tensor_type


def _normalize_names(names: Union[List[str], str]) -> List[str]:
    if isinstance(names, str):
        return [names]
    if not torch_jit_is_scripting():
        if not isinstance(names, (list, tuple)) or not all(
            isinstance(name, str) for name in names
        ):
            raise TypeError(
                "`names` must be a string, or a list or tuple of strings, "
                f"not {type(names)}"
            )
    result = torch_jit_annotate(List[str], [])
    for name in names:
        result.append(name)
    return result


def _check_arguments(axis: str, gradient: Optional[str]) -> None:
    if not torch_jit_is_scripting():
        if not isinstance(axis, str):
            raise TypeError(f"`axis` must be a string, not {type(axis)}")
        if gradient is not None and not isinstance(gradient, str):
            raise TypeError(f"`gradient` must be a string, not {type(gradient)}")
    if axis not in ["samples", "properties"]:
        raise ValueError(
            f"'{axis}' is not a valid axis. Choose from 'samples' or 'properties'"
        )


def _selected_columns(
    block: TensorBlock, axis: str, names: List[str], gradient: Optional[str]
):
    """The values of the ``names`` columns of the ``axis`` labels of ``block``
    (or of its ``gradient``)."""
    if gradient is not None:
        block = block.gradient(gradient)
    if axis == "samples":
        labels = block.samples
    else:
        labels = block.properties

    columns = torch_jit_annotate(List[int], [])
    labels_names = labels.names
    for name in names:
        if name not in labels_names:
            raise ValueError(f"'{name}' not found in the dimensions of these Labels")
        columns.append(labels_names.index(name))
    return _dispatch.take_list(labels.values, columns, 1)


def _unique_labels(names: List[str], values: Array) -> Labels:
    unique = _dispatch.unique(values, 0)
    return Labels(names, unique, assume_unique=True)


@torch_jit_script
def unique_metadata_block(
    block: TensorBlock,
    axis: str,
    names: Union[List[str], str],
    gradient: Optional[str] = None,
) -> Labels:
    """The unique entries of some dimensions of the samples or properties of a
    block (or of one of its gradients), sorted lexicographically.

    :param block: input :py:class:`TensorBlock`
    :param axis: ``"samples"`` or ``"properties"``
    :param names: name(s) of the dimensions to look at
    :param gradient: look at the metadata of this gradient of ``block`` instead
        of the metadata of the values
    :return: sorted :py:class:`Labels` with the ``names`` dimensions
    """
    _check_block_type(block, "block")
    _check_arguments(axis, gradient)
    names = _normalize_names(names)
    return _unique_labels(names, _selected_columns(block, axis, names, gradient))


@torch_jit_script
def unique_metadata(
    tensor: TensorMap,
    axis: str,
    names: Union[List[str], str],
    gradient: Optional[str] = None,
) -> Labels:
    """The unique entries of some dimensions of the samples or properties of all
    the blocks of a tensor (or of one of their gradients), sorted
    lexicographically.

    >>> import numpy as np
    >>> from metatensor import Labels, TensorBlock, TensorMap
    >>> block = TensorBlock(
    ...     values=np.zeros((3, 1)),
    ...     samples=Labels(["system", "atom"], np.array([[2, 0], [0, 1], [2, 1]])),
    ...     components=[],
    ...     properties=Labels.range("property", 1),
    ... )
    >>> tensor = TensorMap(Labels.range("key", 1), [block])
    >>> unique_metadata(tensor, "samples", "system").values
    array([[0],
           [2]], dtype=int32)

    :param tensor: input :py:class:`TensorMap`
    :param axis: ``"samples"`` or ``"properties"``
    :param names: name(s) of the dimensions to look at
    :param gradient: look at the metadata of this gradient of each block instead
        of the metadata of the values
    :return: sorted :py:class:`Labels` with the ``names`` dimensions
    """
    _check_tensor_type(tensor, "tensor")
    _check_arguments(axis, gradient)
    names = _normalize_names(names)

    columns = []
    for block in tensor.blocks():
        columns.append(_selected_columns(block, axis, names, gradient))

    if len(columns) == 0:
        values = _dispatch.zeros_like(tensor.keys.values, [0, len(names)])
        return Labels(names, values, assume_unique=True)
    return _unique_labels(names, _dispatch.concatenate(columns, 0))


__all__ = [
    "unique_metadata",
    "unique_metadata_block",
]
