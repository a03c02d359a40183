"""Slicing of TensorMaps and TensorBlocks along samples or properties
(:py:func:`slice`, :py:func:`slice_block`), and splitting them into several
pieces (:py:func:`split`, :py:func:`split_block`).

Choices made where the reference implementation has bugs (see the
specification, S5 and S13):

- the selected entries come out **in the order of the selection** along both
  axes (the positions of a ``List[int]``/array selection, the rows of a
  :py:class:`Labels` selection with exactly the same names), or in the original
  order for a :py:class:`Labels` selection using a subset of the names;
- an integer selection containing the same position multiple times raises a
  ``ValueError`` instead of creating duplicated (invalid) Labels entries;
- a TensorMap without any block can be sliced and split (giving empty
  TensorMaps).
"""

import numbers
from typing import Any, List, Union

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


def _check_axis(axis: str) -> None:
    if not torch_jit_is_scripting():
        if not isinstance(axis, str):
            raise TypeError(f"`axis` must be a string, not {type(axis)}")
    if axis not in ["samples", "properties"]:
        raise ValueError(
            f"`axis` must be either 'samples' or 'properties', not '{axis}'"
        )


def _check_selection_type(selection: Any) -> None:
    """Check the type of a single selection (Python only)."""
    if not torch_jit_is_scripting():
        if isinstance(selection, Labels):
            return
        if isinstance(selection, (list, tuple)):
            for value in selection:
                if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                    raise TypeError(
                        "`selection` must be a list of integers, got an "
                        f"element of type {type(value)}"
                    )
            return
        if _dispatch.is_numpy_array(selection) or _dispatch.is_torch_array(selection):
            if len(selection.shape) != 1:
                raise ValueError("`selection` must be a 1-D array of integers")
            kind = str(selection.dtype)
            if "int" not in kind:
                raise TypeError(
                    "`selection` must be a 1-D array of integers, got an array "
                    f"with dtype {selection.dtype}"
                )
            return
        raise TypeError(
            "`selection` must be metatensor Labels, a list of integers or a 1-D "
            f"array of integers, not {type(selection)}"
        )


def _check_selection_names(labels_names: List[str], selection: Labels, axis: str):
    """Check that a Labels selection only uses names from ``labels_names``."""
    for name in selection.names:
        if name not in labels_names:
            kind = "sample" if axis == "samples" else "property"
            raise ValueError(
                f"invalid {kind} name '{name}' which is not part of the input"
            )


def _positions_array(selection: Union[List[int], Array], like: Array) -> Array:
    """Integer positions (a list or an array) as an index array like ``like``."""
    if not torch_jit_is_scripting():
        return _dispatch.index_like(selection, like)
    if isinstance(selection, Array):
        return _dispatch.index_like(selection, like)
    else:
        return _dispatch.int_array_like(selection, like)


def _selected_positions(
    labels: Labels, selection: Union[List[int], Array, Labels], axis: str
) -> Array:
    """Positions of the entries of ``labels`` selected by ``selection``, as an
    index array with the kind and device of ``labels.values``."""
    if isinstance(selection, Labels):
        _check_selection_names(labels.names, selection, axis)
        return _dispatch.index_like(labels.select(selection), labels.values)
    else:
        return _checked_positions(
            len(labels), _positions_array(selection, labels.values), axis
        )


def _checked_positions(count: int, positions: Array, axis: str) -> Array:
    """Check integer positions (in bounds, no duplicates) and make them
    positive."""
    if positions.shape[0] == 0:
        return positions

    if not torch_jit_is_scripting():
        if len(positions.shape) != 1:
            raise ValueError("`selection` must be a 1-D array of integers")

    too_small = positions < -count
    too_large = positions >= count
    if _dispatch.any(too_small) or _dispatch.any(too_large):
        invalid = _dispatch.mask(positions, 0, too_small | too_large)
        raise IndexError(
            f"index {int(invalid[0])} in `selection` is out of bounds for the "
            f"{axis} of size {count}"
        )
    positions = _dispatch.where(positions < 0, positions + count, positions)

    counts = _dispatch.bincount(positions, count, positions)
    if _dispatch.any(counts > 1):
        raise ValueError(
            "`selection` contains the same position multiple times, which would "
            f"create duplicated {axis}"
        )
    return positions


def _slice_samples(block: TensorBlock, positions: Array) -> TensorBlock:
    samples = block.samples
    new_samples = Labels(
        samples.names,
        _dispatch.take(samples.values, positions, 0),
        assume_unique=True,
    )
    new_block = TensorBlock(
        _dispatch.take(block.values, positions, 0),
        new_samples,
        block.components,
        block.properties,
    )

    for parameter, gradient in block.gradients():
        keep, new_gradient_samples = _dispatch.select_gradient_rows(
            gradient.samples.values, positions, len(samples)
        )
        new_gradient = TensorBlock(
            _dispatch.take(gradient.values, keep, 0),
            Labels(gradient.samples.names, new_gradient_samples, assume_unique=True),
            gradient.components,
            gradient.properties,
        )
        new_block.add_gradient(parameter, new_gradient)

    return new_block


def _slice_properties(block: TensorBlock, positions: Array) -> TensorBlock:
    properties = block.properties
    new_properties = Labels(
        properties.names,
        _dispatch.take(properties.values, positions, 0),
        assume_unique=True,
    )
    axis = len(block.values.shape) - 1
    new_block = TensorBlock(
        _dispatch.take(block.values, positions, axis),
        block.samples,
        block.components,
        new_properties,
    )

    for parameter, gradient in block.gradients():
        gradient_axis = len(gradient.values.shape) - 1
        new_gradient = TensorBlock(
            _dispatch.take(gradient.values, positions, gradient_axis),
            gradient.samples,
            gradient.components,
            new_properties,
        )
        new_block.add_gradient(parameter, new_gradient)

    return new_block


def _slice_block_impl(
    block: TensorBlock, axis: str, selection: Union[List[int], Array, Labels]
) -> TensorBlock:
    if axis == "samples":
        positions = _selected_positions(block.samples, selection, axis)
        return _slice_samples(block, positions)
    else:
        positions = _selected_positions(block.properties, selection, axis)
        return _slice_properties(block, positions)


@torch_jit_script
def slice_block(
    block: TensorBlock,
    axis: str,
    selection: Union[List[int], Array, Labels],
) -> TensorBlock:
    """Slice a :py:class:`TensorBlock` along the ``samples`` or ``properties``
    ``axis``, keeping only the entries in ``selection``.

    The selected entries come out in the order given by ``selection`` (for
    positions, and for :py:class:`Labels` with the same names as the axis), or
    in their original order for :py:class:`Labels` using only some of the
    names. Gradients are sliced consistently: when slicing samples, the
    gradient rows of the kept samples are kept (in their original order) and
    their ``sample`` dimension is renumbered; when slicing properties, the
    gradient properties follow the values.

    :param block: the block to slice
    :param axis: ``"samples"`` or ``"properties"``
    :param selection: which entries to keep: :py:class:`Labels` (with some or all
        of the names of the axis; entries matching any of the selection entries
        are kept), or the positions of the entries to keep (a list of integers or
        a 1-D integer array). A position can only be given once.
    :return: a new block with the selected entries
    """
    _check_block_type(block, "block")
    _check_axis(axis)
    _check_selection_type(selection)
    return _slice_block_impl(block, axis, selection)


@torch_jit_script
def slice(
    tensor: TensorMap,
    axis: str,
    selection: Union[List[int], Array, Labels],
) -> TensorMap:
    """Slice all the blocks of a :py:class:`TensorMap` along the ``samples`` or
    ``properties`` ``axis``, see :py:func:`slice_block`.

    Blocks left with no samples or no properties are kept in the result; use
    :py:func:`drop_empty_blocks` to remove them.

    :param tensor: the tensor to slice
    :param axis: ``"samples"`` or ``"properties"``
    :param selection: :py:class:`Labels` or positions of the entries to keep in
        each block
    :return: a new tensor with the same keys
    """
    _check_tensor_type(tensor, "tensor")
    _check_axis(axis)
    _check_selection_type(selection)
    blocks = torch_jit_annotate(List[TensorBlock], [])
    for block in tensor.blocks():
        blocks.append(_slice_block_impl(block, axis, selection))
    return TensorMap(tensor.keys, blocks)


def _check_selections(selections: Any) -> None:
    if not torch_jit_is_scripting():
        if not isinstance(selections, list):
            raise TypeError(f"`selections` must be a list, not {type(selections)}")
        for selection in selections:
            _check_selection_type(selection)


@torch_jit_script
def split_block(
    block: TensorBlock,
    axis: str,
    selections: List[Union[List[int], Array, Labels]],
) -> List[TensorBlock]:
    """Split a :py:class:`TensorBlock` into several blocks, one for each entry
    of ``selections``: ``[slice_block(block, axis, s) for s in selections]``.

    :param block: the block to split
    :param axis: ``"samples"`` or ``"properties"``
    :param selections: a list of selections (:py:class:`Labels` or positions,
        see :py:func:`slice_block`); they can overlap and do not need to cover
        all entries
    :return: a list of new blocks
    """
    _check_block_type(block, "block")
    _check_axis(axis)
    _check_selections(selections)
    result = torch_jit_annotate(List[TensorBlock], [])
    for selection in selections:
        result.append(_slice_block_impl(block, axis, selection))
    return result


@torch_jit_script
def split(
    tensor: TensorMap,
    axis: str,
    selections: List[Union[List[int], Array, Labels]],
) -> List[TensorMap]:
    """Split a :py:class:`TensorMap` into several tensors, one for each entry of
    ``selections``: ``[slice(tensor, axis, s) for s in selections]``.

    :param tensor: the tensor to split
    :param axis: ``"samples"`` or ``"properties"``
    :param selections: a list of selections (:py:class:`Labels` or positions,
        see :py:func:`slice_block`); they can overlap and do not need to cover
        all entries
    :return: a list of new tensors, all with the keys of ``tensor``
    """
    _check_tensor_type(tensor, "tensor")
    _check_axis(axis)
    _check_selections(selections)
    result = torch_jit_annotate(List[TensorMap], [])
    for selection in selections:
        blocks = torch_jit_annotate(List[TensorBlock], [])
        for block in tensor.blocks():
            blocks.append(_slice_block_impl(block, axis, selection))
        result.append(TensorMap(tensor.keys, blocks))
    return result


__all__ = ["slice", "slice_block", "split", "split_block"]
