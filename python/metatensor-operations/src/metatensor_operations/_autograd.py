"""Autograd and storage helpers: ``requires_grad``, ``detach``,
``make_contiguous``, ``is_contiguous`` and ``remove_gradients``.

All of them (except ``is_contiguous``) return new TensorMaps/TensorBlocks with the
same metadata; the arrays are only copied where needed.
"""

from typing import List, Optional

from . import _dispatch
from ._backend import (
    TensorBlock,
    TensorMap,
    torch_jit_annotate,
    torch_jit_script,
)
from ._utils import _check_block_type, _check_tensor_type


def _convert(kind: str, array, flag: bool):
    if kind == "requires_grad":
        return _dispatch.requires_grad(array, flag)
    elif kind == "detach":
        return _dispatch.detach(array)
    else:
        return _dispatch.make_contiguous(array)


def _map_arrays(block: TensorBlock, kind: str, flag: bool) -> TensorBlock:
    """A new block with the values and gradients arrays converted with the
    ``kind`` conversion."""
    result = TensorBlock(
        _convert(kind, block.values, flag),
        block.samples,
        block.components,
        block.properties,
    )
    for parameter, gradient in block.gradients():
        if len(gradient.gradients_list()) != 0:
            raise NotImplementedError("gradients of gradients are not supported")
        result.add_gradient(
            parameter,
            TensorBlock(
                _convert(kind, gradient.values, flag),
                gradient.samples,
                gradient.components,
                gradient.properties,
            ),
        )
    return result


def _map_tensor(tensor: TensorMap, kind: str, flag: bool) -> TensorMap:
    blocks = torch_jit_annotate(List[TensorBlock], [])
    for block in tensor.blocks():
        blocks.append(_map_arrays(block, kind, flag))
    return TensorMap(tensor.keys, blocks)


# ======================================================================== #
# requires_grad / detach                                                   #
# ======================================================================== #


@torch_jit_script
def requires_grad(tensor: TensorMap, requires_grad: bool = True) -> TensorMap:
    """Set ``requires_grad`` on all the arrays (values and gradients) of
    ``tensor``: each torch tensor ``x`` becomes ``x.detach().requires_grad_(
    requires_grad)``.

    A ``UserWarning`` is emitted when setting ``requires_grad=True`` on a tensor
    which already requires gradients (it is detached from its graph) and when
    setting ``requires_grad=True`` on numpy arrays (which does nothing).

    :param tensor: input :py:class:`TensorMap`
    :param requires_grad: should autograd record operations on the arrays?
    :return: a new :py:class:`TensorMap` with the same metadata
    """
    _check_tensor_type(tensor, "tensor")
    return _map_tensor(tensor, "requires_grad", requires_grad)


@torch_jit_script
def requires_grad_block(block: TensorBlock, requires_grad: bool = True) -> TensorBlock:
    """Set ``requires_grad`` on all the arrays of ``block``, see
    :py:func:`requires_grad`.

    :param block: input :py:class:`TensorBlock`
    :param requires_grad: should autograd record operations on the arrays?
    :return: a new :py:class:`TensorBlock` with the same metadata
    """
    _check_block_type(block, "block")
    return _map_arrays(block, "requires_grad", requires_grad)


@torch_jit_script
def detach(tensor: TensorMap) -> TensorMap:
    """Detach all the arrays (values and gradients) of ``tensor`` from any
    computational graph (numpy arrays are kept as they are).

    :param tensor: input :py:class:`TensorMap`
    :return: a new :py:class:`TensorMap` with the same metadata
    """
    _check_tensor_type(tensor, "tensor")
    return _map_tensor(tensor, "detach", False)


@torch_jit_script
def detach_block(block: TensorBlock) -> TensorBlock:
    """Detach all the arrays of ``block`` from any computational graph, see
    :py:func:`detach`.

    :param block: input :py:class:`TensorBlock`
    :return: a new :py:class:`TensorBlock` with the same metadata
    """
    _check_block_type(block, "block")
    return _map_arrays(block, "detach", False)


# ======================================================================== #
# contiguity                                                               #
# ======================================================================== #


@torch_jit_script
def make_contiguous(tensor: TensorMap) -> TensorMap:
    """Make all the arrays (values and gradients) of ``tensor`` C-contiguous.
    Arrays which already are contiguous are shared, the others are copied.

    :param tensor: input :py:class:`TensorMap`
    :return: a new :py:class:`TensorMap` with the same metadata
    """
    _check_tensor_type(tensor, "tensor")
    return _map_tensor(tensor, "contiguous", False)


@torch_jit_script
def make_contiguous_block(block: TensorBlock) -> TensorBlock:
    """Make all the arrays of ``block`` C-contiguous, see
    :py:func:`make_contiguous`.

    :param block: input :py:class:`TensorBlock`
    :return: a new :py:class:`TensorBlock` with the same metadata
    """
    _check_block_type(block, "block")
    return _map_arrays(block, "contiguous", False)


def _is_contiguous_block(block: TensorBlock) -> bool:
    if not _dispatch.is_contiguous(block.values):
        return False
    for _, gradient in block.gradients():
        if not _dispatch.is_contiguous(gradient.values):
            return False
        if len(gradient.gradients_list()) != 0:
            raise NotImplementedError("gradients of gradients are not supported")
    return True


@torch_jit_script
def is_contiguous_block(block: TensorBlock) -> bool:
    """Are the values and all the gradients of ``block`` C-contiguous arrays?

    :param block: input :py:class:`TensorBlock`
    """
    _check_block_type(block, "block")
    return _is_contiguous_block(block)


@torch_jit_script
def is_contiguous(tensor: TensorMap) -> bool:
    """Are the values and all the gradients of all the blocks of ``tensor``
    C-contiguous arrays?

    :param tensor: input :py:class:`TensorMap`
    """
    _check_tensor_type(tensor, "tensor")
    for block in tensor.blocks():
        if not _is_contiguous_block(block):
            return False
    return True


# ======================================================================== #
# remove_gradients                                                         #
# ======================================================================== #


def _remove_gradients_block(block: TensorBlock, remove: List[str]) -> TensorBlock:
    result = TensorBlock(
        block.values, block.samples, block.components, block.properties
    )
    for parameter, gradient in block.gradients():
        if parameter not in remove:
            result.add_gradient(parameter, gradient)
    return result


@torch_jit_script
def remove_gradients_block(
    block: TensorBlock, remove: Optional[List[str]] = None
) -> TensorBlock:
    """Remove some (or all) gradients from ``block``. The arrays are shared with
    ``block``.

    :param block: input :py:class:`TensorBlock`
    :param remove: names of the gradients to remove, ``None`` to remove all of
        them. Names which are not gradients of ``block`` are ignored.
    :return: a new :py:class:`TensorBlock` with the remaining gradients
    """
    _check_block_type(block, "block")
    if remove is None:
        remove = block.gradients_list()
    return _remove_gradients_block(block, remove)


@torch_jit_script
def remove_gradients(
    tensor: TensorMap, remove: Optional[List[str]] = None
) -> TensorMap:
    """Remove some (or all) gradients from ``tensor``. The arrays are shared with
    ``tensor``.

    :param tensor: input :py:class:`TensorMap`
    :param remove: names of the gradients to remove, ``None`` to remove all of
        them (all the gradients of the first block, which are the same as the
        gradients of every block). Names which are not gradients of ``tensor``
        are ignored.
    :return: a new :py:class:`TensorMap` with the remaining gradients
    """
    _check_tensor_type(tensor, "tensor")
    if remove is None:
        if len(tensor) == 0:
            remove = torch_jit_annotate(List[str], [])
        else:
            remove = tensor.block_by_id(0).gradients_list()
    blocks = torch_jit_annotate(List[TensorBlock], [])
    for block in tensor.blocks():
        blocks.append(_remove_gradients_block(block, remove))
    return TensorMap(tensor.keys, blocks)


__all__ = [
    "detach",
    "detach_block",
    "is_contiguous",
    "is_contiguous_block",
    "make_contiguous",
    "make_contiguous_block",
    "remove_gradients",
    "remove_gradients_block",
    "requires_grad",
    "requires_grad_block",
]
