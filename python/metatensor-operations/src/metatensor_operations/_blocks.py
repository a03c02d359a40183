"""Selection of the blocks of a TensorMap: ``drop_blocks``,
``drop_empty_blocks`` and ``filter_blocks``."""

from typing import Any, List

from . import _dispatch
from ._backend import (
    Labels,
    TensorBlock,
    TensorMap,
    torch_jit_annotate,
    torch_jit_is_scripting,
    torch_jit_script,
)
from ._utils import _check_labels_type, _check_tensor_type


def _check_copy_type(copy: Any) -> None:
    if not torch_jit_is_scripting():
        if not isinstance(copy, bool):
            raise TypeError(f"`copy` must be a boolean, not {type(copy)}")


def _keep_blocks(tensor: TensorMap, indices: List[int], copy: bool) -> TensorMap:
    """A new TensorMap with the blocks at ``indices`` (in this order)."""
    keys = tensor.keys
    keys = Labels(
        keys.names, _dispatch.take_list(keys.values, indices, 0), assume_unique=True
    )
    blocks = torch_jit_annotate(List[TensorBlock], [])
    for i in indices:
        block = tensor.block_by_id(i)
        if copy:
            block = block.copy()
        blocks.append(block)
    return TensorMap(keys, blocks)


@torch_jit_script
def drop_blocks(tensor: TensorMap, keys: Labels, copy: bool = False) -> TensorMap:
    """Remove the blocks matching ``keys`` from ``tensor``.

    ``keys`` can contain all the key dimensions of ``tensor`` (each entry
    identifies one block; entries not in ``tensor`` are ignored) or a subset of
    them (all the blocks matching one of the entries on these dimensions are
    removed). The remaining blocks keep their order.

    :param tensor: input :py:class:`TensorMap`
    :param keys: the keys of the blocks to remove
    :param copy: with ``False``, the returned blocks share their arrays with
        ``tensor``; with ``True`` they are copies
    :return: a new :py:class:`TensorMap` without the selected blocks
    """
    _check_tensor_type(tensor, "tensor")
    _check_labels_type(keys, "keys")
    _check_copy_type(copy)

    selected = tensor.keys.select(keys)
    indices = _dispatch.complement_positions(selected, len(tensor))
    return _keep_blocks(tensor, indices, copy)


@torch_jit_script
def filter_blocks(tensor: TensorMap, keys: Labels, copy: bool = False) -> TensorMap:
    """Keep only the blocks of ``tensor`` matching ``keys``.

    If ``keys`` has the same dimensions as the keys of ``tensor``, the blocks
    come out in the order of ``keys`` (entries not in ``tensor`` are ignored);
    with a subset of the dimensions, all the blocks matching one of the entries
    come out in the order of ``tensor``.

    :param tensor: input :py:class:`TensorMap`
    :param keys: the keys of the blocks to keep
    :param copy: with ``False``, the returned blocks share their arrays with
        ``tensor``; with ``True`` they are copies
    :return: a new :py:class:`TensorMap` with the selected blocks
    """
    _check_tensor_type(tensor, "tensor")
    _check_labels_type(keys, "keys")
    _check_copy_type(copy)

    selected = tensor.keys.select(keys)
    indices = [int(i) for i in selected]
    return _keep_blocks(tensor, indices, copy)


@torch_jit_script
def drop_empty_blocks(tensor: TensorMap, copy: bool = False) -> TensorMap:
    """Remove the empty blocks of ``tensor``: the blocks whose values have a
    zero-sized dimension (no samples, no properties, or an empty component).

    :param tensor: input :py:class:`TensorMap`
    :param copy: with ``False``, the returned blocks share their arrays with
        ``tensor``; with ``True`` they are copies
    :return: a new :py:class:`TensorMap` without the empty blocks
    """
    _check_tensor_type(tensor, "tensor")
    _check_copy_type(copy)

    indices = torch_jit_annotate(List[int], [])
    for i in range(len(tensor)):
        empty = False
        for size in tensor.block_by_id(i).values.shape:
            if int(size) == 0:
                empty = True
        if not empty:
            indices.append(i)
    return _keep_blocks(tensor, indices, copy)


__all__ = [
    "drop_blocks",
    "drop_empty_blocks",
    "filter_blocks",
]
