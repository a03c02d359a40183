"""Joining several TensorMaps (:py:func:`join`) or TensorBlocks
(:py:func:`join_blocks`) along the samples or properties axis.

Choices made where the reference implementation has bugs (see the
specification, S4 and S11):

- when joining along samples (or properties with the same names), the inputs
  must have the same *set* of dimension names; names in a different order are
  **aligned** on the names of the first input (the reference concatenated the
  columns without looking at the names);
- ``add_dimension`` is honoured even when a single tensor or block is given
  (the new dimension then only contains 0);
- the extra ``add_dimension`` dimension is only added to the samples of the
  values, **not** to the samples of the gradients: gradient samples refer to the
  values through their ``sample`` dimension (and then contain the parameter
  dimensions, like ``system`` and ``atom`` for positions), so the tensor index
  is already available through the values samples.
"""

from typing import List, Optional

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
from ._utils import (
    NotEqualError,
    _check_blocks_raise,
    _check_same_gradients_raise,
    _check_same_keys_raise,
)


def _check_axis(axis: str) -> None:
    if axis not in ["samples", "properties"]:
        raise ValueError(
            "Only `'properties'` or `'samples'` are valid values for the `axis` "
            f"parameter, got '{axis}'"
        )


def _aligned_columns(
    reference: List[str], names: List[str], kind: str, fname: str
) -> Optional[List[int]]:
    """For ``names`` containing the same names as ``reference`` (maybe in a
    different order), the columns to take to align them on ``reference``, or
    ``None`` if they are already aligned. Raises ``ValueError`` for different
    sets of names."""
    if names == reference:
        return None

    different = len(names) != len(reference)
    if not different:
        for name in reference:
            if name not in names:
                different = True
    if different:
        raise ValueError(
            f"Different tensor have different {kind} names in `{fname}`. The "
            f"{kind} names must be the same (in any order) for all inputs, got "
            f"{reference} and {names}"
        )

    columns = torch_jit_annotate(List[int], [])
    for name in reference:
        columns.append(names.index(name))
    return columns


def _same_name_set(first: List[str], second: List[str]) -> bool:
    if len(first) != len(second):
        return False
    for name in first:
        if name not in second:
            return False
    return True


def _labels_values(labels: Labels, columns: Optional[List[int]]) -> Array:
    values = labels.values
    if columns is not None:
        values = _dispatch.take_list(values, columns, 1)
    return values


def _with_index_column(values: Array, index: int) -> Array:
    """Append a column filled with ``index`` to the 2-D labels ``values``."""
    column = _dispatch.full_like(values, index, [values.shape[0], 1])
    return _dispatch.concatenate([values, column], 1)


# ======================================================================== #
# join along samples                                                       #
# ======================================================================== #


def _join_samples(
    blocks: List[TensorBlock], add_dimension: Optional[str], fname: str
) -> TensorBlock:
    first = blocks[0]
    names = first.samples.names
    parameters = first.gradients_list()

    samples_values = torch_jit_annotate(List[Array], [])
    values = torch_jit_annotate(List[Array], [])
    for i, block in enumerate(blocks):
        columns = _aligned_columns(names, block.samples.names, "sample", fname)
        if i != 0:
            _check_blocks_raise(first, block, fname, ["components", "properties"])
            _check_same_gradients_raise(first, block, fname, ["components"])

        block_samples = _labels_values(block.samples, columns)
        if add_dimension is not None:
            block_samples = _with_index_column(block_samples, i)
        samples_values.append(block_samples)
        values.append(block.values)

    new_names = names
    if add_dimension is not None:
        new_names = names + [add_dimension]

    # rows from different blocks are different thanks to the new dimension,
    # otherwise we need to check it
    samples = Labels(
        new_names,
        _dispatch.concatenate(samples_values, 0),
        assume_unique=add_dimension is not None,
    )

    result = TensorBlock(
        _dispatch.concatenate(values, 0),
        samples,
        first.components,
        first.properties,
    )

    for parameter in parameters:
        first_gradient = first.gradient(parameter)
        gradient_names = first_gradient.samples.names

        gradient_samples = torch_jit_annotate(List[Array], [])
        gradient_values = torch_jit_annotate(List[Array], [])
        offset = 0
        for block in blocks:
            gradient = block.gradient(parameter)
            columns = _aligned_columns(
                gradient_names, gradient.samples.names, "gradient sample", fname
            )
            sample_values = _labels_values(gradient.samples, columns)
            if offset != 0:
                shifted = _dispatch.reshape(sample_values[:, 0] + offset, [-1, 1])
                sample_values = _dispatch.concatenate(
                    [shifted, sample_values[:, 1:]], 1
                )
            gradient_samples.append(sample_values)
            gradient_values.append(gradient.values)
            offset += len(block.samples)

        # the `sample` dimension is different for each block, so the rows are
        # unique
        new_gradient = TensorBlock(
            _dispatch.concatenate(gradient_values, 0),
            Labels(
                gradient_names,
                _dispatch.concatenate(gradient_samples, 0),
                assume_unique=True,
            ),
            first_gradient.components,
            first.properties,
        )
        result.add_gradient(parameter, new_gradient)

    return result


# ======================================================================== #
# join along properties                                                    #
# ======================================================================== #


def _joined_properties(
    blocks: List[TensorBlock], add_dimension: Optional[str], fname: str
) -> Labels:
    first = blocks[0].properties
    names = first.names

    same_names = True
    for block in blocks:
        if not _same_name_set(names, block.properties.names):
            same_names = False

    if same_names:
        properties_values = torch_jit_annotate(List[Array], [])
        for i, block in enumerate(blocks):
            columns = _aligned_columns(names, block.properties.names, "property", fname)
            block_properties = _labels_values(block.properties, columns)
            if add_dimension is not None:
                block_properties = _with_index_column(block_properties, i)
            properties_values.append(block_properties)

        new_names = names
        if add_dimension is not None:
            new_names = names + [add_dimension]
        return Labels(
            new_names,
            _dispatch.concatenate(properties_values, 0),
            assume_unique=add_dimension is not None,
        )

    if add_dimension is not None:
        raise ValueError(
            "We can not add an extra dimension to properties when the inputs have "
            "different property names"
        )

    # different names: properties are (index of the input, position in input)
    properties_values = torch_jit_annotate(List[Array], [])
    for i, block in enumerate(blocks):
        count = len(block.properties)
        position = _dispatch.astype_like(
            _dispatch.arange_like(count, first.values), first.values
        )
        index = _dispatch.full_like(first.values, i, [count])
        properties_values.append(_dispatch.stack([index, position], 1))

    return Labels(
        ["joined_index", "property"],
        _dispatch.concatenate(properties_values, 0),
        assume_unique=True,
    )


def _join_properties(
    blocks: List[TensorBlock], add_dimension: Optional[str], fname: str
) -> TensorBlock:
    first = blocks[0]
    for block in blocks[1:]:
        _check_blocks_raise(first, block, fname, ["samples", "components"])
        _check_same_gradients_raise(first, block, fname, ["components"])

    properties = _joined_properties(blocks, add_dimension, fname)

    values = torch_jit_annotate(List[Array], [])
    for block in blocks:
        values.append(block.values)
    last_axis = len(first.values.shape) - 1
    result = TensorBlock(
        _dispatch.concatenate(values, last_axis),
        first.samples,
        first.components,
        properties,
    )

    for parameter in first.gradients_list():
        gradients = torch_jit_annotate(List[TensorBlock], [])
        for block in blocks:
            gradients.append(block.gradient(parameter))
        first_gradient = gradients[0]

        all_same_samples = True
        for gradient in gradients[1:]:
            if not gradient.samples == first_gradient.samples:
                all_same_samples = False

        gradient_values = torch_jit_annotate(List[Array], [])
        if all_same_samples:
            gradient_samples = first_gradient.samples
            for gradient in gradients:
                gradient_values.append(gradient.values)
        else:
            # the gradient samples are the union of all gradient samples, the
            # missing rows of each input are zeros
            gradient_samples = first_gradient.samples
            mappings = torch_jit_annotate(List[Array], [])
            for gradient in gradients:
                union = gradient_samples.union_and_mapping(gradient.samples)
                gradient_samples = union[0]
                mappings.append(union[2])
            n_rows = len(gradient_samples)
            for gradient, mapping in zip(gradients, mappings):
                gradient_values.append(
                    _dispatch.scatter_rows(gradient.values, mapping, n_rows)
                )

        gradient_axis = len(first_gradient.values.shape) - 1
        result.add_gradient(
            parameter,
            TensorBlock(
                _dispatch.concatenate(gradient_values, gradient_axis),
                gradient_samples,
                first_gradient.components,
                properties,
            ),
        )

    return result


def _join_blocks_impl(
    blocks: List[TensorBlock], axis: str, add_dimension: Optional[str], fname: str
) -> TensorBlock:
    if axis == "samples":
        return _join_samples(blocks, add_dimension, fname)
    else:
        return _join_properties(blocks, add_dimension, fname)


@torch_jit_script
def join_blocks(
    blocks: List[TensorBlock],
    axis: str,
    add_dimension: Optional[str] = None,
) -> TensorBlock:
    """Join a list of :py:class:`TensorBlock` along the ``samples`` or
    ``properties`` ``axis``, see :py:func:`join` for the details.

    A single block without ``add_dimension`` is returned unchanged.

    :param blocks: the blocks to join
    :param axis: ``"samples"`` or ``"properties"``
    :param add_dimension: name of an extra dimension added to the joined axis,
        containing the index of the block each entry comes from
    :return: the joined block
    """
    if not torch_jit_is_scripting():
        if not isinstance(blocks, (list, tuple)):
            raise TypeError(f"`blocks` must be a list or a tuple, not {type(blocks)}")
        for block in blocks:
            if not isinstance(block, TensorBlock):
                raise TypeError(
                    "`blocks` elements must be metatensor TensorBlock, "
                    f"not {type(block)}"
                )

    if len(blocks) == 0:
        raise ValueError("provide at least one `TensorBlock` for joining")
    _check_axis(axis)

    if len(blocks) == 1 and add_dimension is None:
        return blocks[0]
    return _join_blocks_impl(blocks, axis, add_dimension, "join_blocks")


# ======================================================================== #
# join of TensorMaps                                                       #
# ======================================================================== #


def _key_positions(reference: Labels, keys: Labels) -> List[int]:
    """For each entry of ``reference``, its position in ``keys`` or -1 (both
    Labels have the same names)."""
    positions = torch_jit_annotate(List[int], [])
    if reference == keys:
        for i in range(len(reference)):
            positions.append(i)
        return positions

    # a single vectorized matching (and a single transfer to the CPU for data
    # on a GPU), not one search per entry
    _, reference_common, keys_common = reference.intersection_and_mapping(keys)
    reference_list = torch_jit_annotate(List[int], reference_common.tolist())
    keys_list = torch_jit_annotate(List[int], keys_common.tolist())
    # position in `keys` of each entry of the intersection
    common_in_keys = torch_jit_annotate(List[int], [-1] * len(reference_list))
    for position, common in enumerate(keys_list):
        if common >= 0:
            common_in_keys[common] = position
    for common in reference_list:
        if common >= 0:
            positions.append(common_in_keys[common])
        else:
            positions.append(-1)
    return positions


def _empty_labels(labels: Labels, names: List[str]) -> Labels:
    """Labels with the given ``names`` (and the array kind of ``labels``), but
    no entries."""
    empty = _dispatch.full_like(labels.values, 0, [0, len(names)])
    return Labels(names, empty, assume_unique=True)


def _empty_block(model: TensorBlock, axis: str, names: List[str]) -> TensorBlock:
    """A block like ``model`` with 0 samples or 0 properties (with the given
    dimension ``names``) and empty gradients, used for missing keys with
    ``different_keys="union"``."""
    shape = [int(s) for s in model.values.shape]
    samples = model.samples
    properties = model.properties
    if axis == "samples":
        shape[0] = 0
        samples = _empty_labels(samples, names)
    else:
        shape[len(shape) - 1] = 0
        properties = _empty_labels(properties, names)

    block = TensorBlock(
        _dispatch.zeros_like(model.values, shape),
        samples,
        model.components,
        properties,
    )
    for parameter, gradient in model.gradients():
        gradient_shape = [int(s) for s in gradient.values.shape]
        gradient_shape[0] = 0
        if axis == "properties":
            gradient_shape[len(gradient_shape) - 1] = 0
        block.add_gradient(
            parameter,
            TensorBlock(
                _dispatch.zeros_like(gradient.values, gradient_shape),
                _empty_labels(gradient.samples, gradient.samples.names),
                gradient.components,
                properties,
            ),
        )
    return block


def _check_keys_names(tensors: List[TensorMap]) -> None:
    names = tensors[0].keys.names
    for tensor in tensors[1:]:
        if tensor.keys.names != names:
            raise NotEqualError(
                "inputs to 'join' should have the same keys names, "
                f"got '{names}' and '{tensor.keys.names}'"
            )


@torch_jit_script
def join(
    tensors: List[TensorMap],
    axis: str,
    different_keys: str = "error",
    add_dimension: Optional[str] = None,
) -> TensorMap:
    """Join a list of :py:class:`TensorMap` with the same kind of metadata along
    the ``samples`` or ``properties`` ``axis``.

    The blocks with the same key are joined together, and the result has the
    keys of the first tensor (after handling ``different_keys``).

    Along **samples**, all blocks must have the same components and properties
    (:py:class:`NotEqualError` otherwise) and the same sample names (in any
    order, they are aligned on the first tensor). The values and sample entries
    are concatenated in order; the result must not contain the same sample
    twice (use ``add_dimension`` to join tensors with the same samples).
    Gradient rows are concatenated, with their ``sample`` dimension shifted to
    point to the right row. ``add_dimension`` is not added to gradient samples.

    Along **properties**, all blocks must have the same samples and components.
    If all inputs have the same property names, the properties are
    concatenated; otherwise the new properties are named ``["joined_index",
    "property"]`` and contain the index of the input and the position of the
    property in this input (``add_dimension`` can not be used then). The
    gradient samples are the union of the gradient samples of the inputs, and
    the gradients missing for some rows are zero.

    :param tensors: the tensors to join
    :param axis: ``"samples"`` or ``"properties"``
    :param different_keys: what to do when the tensors have different keys:
        ``"error"`` raises a :py:class:`NotEqualError`; ``"intersection"`` only
        keeps the keys present in all tensors; ``"union"`` keeps all keys, using
        empty blocks (0 samples or 0 properties) for the missing ones
    :param add_dimension: name of an extra dimension added to the joined axis,
        containing the index of the tensor each entry comes from
    :return: the joined tensor. A single tensor without ``add_dimension`` is
        returned as-is.
    """
    if not torch_jit_is_scripting():
        if not isinstance(tensors, (list, tuple)):
            raise TypeError(f"`tensors` must be a list or a tuple, not {type(tensors)}")
        for tensor in tensors:
            if not isinstance(tensor, TensorMap):
                raise TypeError(
                    "`tensors` elements must be metatensor TensorMap, "
                    f"not {type(tensor)}"
                )

    if len(tensors) == 0:
        raise ValueError("provide at least one `TensorMap` for joining")
    _check_axis(axis)
    if different_keys not in ["error", "intersection", "union"]:
        raise ValueError(
            f"'{different_keys}' is not a valid option for `different_keys`. "
            "Choose either 'error', 'intersection' or 'union'."
        )

    if len(tensors) == 1 and add_dimension is None:
        return tensors[0]

    keys = tensors[0].keys
    # for each tensor, the blocks matching each of the keys
    all_blocks = torch_jit_annotate(List[List[TensorBlock]], [])

    if different_keys == "error":
        for tensor in tensors:
            _check_same_keys_raise(tensors[0], tensor, "join")
        for tensor in tensors:
            positions = _key_positions(keys, tensor.keys)
            all_blocks.append(tensor.blocks_by_id(positions))
    elif different_keys == "intersection":
        _check_keys_names(tensors)
        all_positions = torch_jit_annotate(List[List[int]], [])
        keep = torch_jit_annotate(List[bool], [True] * len(keys))
        for tensor in tensors:
            positions = _key_positions(keys, tensor.keys)
            for i, position in enumerate(positions):
                if position < 0:
                    keep[i] = False
            all_positions.append(positions)

        kept = torch_jit_annotate(List[int], [])
        for i, keep_i in enumerate(keep):
            if keep_i:
                kept.append(i)
        keys = Labels(
            keys.names, _dispatch.take_list(keys.values, kept, 0), assume_unique=True
        )
        for tensor, positions in zip(tensors, all_positions):
            tensor_positions = torch_jit_annotate(List[int], [])
            for i in kept:
                tensor_positions.append(positions[i])
            all_blocks.append(tensor.blocks_by_id(tensor_positions))
    else:
        _check_keys_names(tensors)
        for tensor in tensors[1:]:
            keys = keys.union(tensor.keys)

        all_positions = torch_jit_annotate(List[List[int]], [])
        for tensor in tensors:
            all_positions.append(_key_positions(keys, tensor.keys))

        for tensor, positions in zip(tensors, all_positions):
            blocks = torch_jit_annotate(List[TensorBlock], [])
            for i, position in enumerate(positions):
                if position >= 0:
                    blocks.append(tensor.block_by_id(position))
                else:
                    # find the first tensor with this key, and use its block as
                    # a model for an empty block
                    model_block: Optional[TensorBlock] = None
                    for other, other_positions in zip(tensors, all_positions):
                        if model_block is None and other_positions[i] >= 0:
                            model_block = other.block_by_id(other_positions[i])
                    assert model_block is not None
                    # use the names of this tensor for the empty axis
                    if len(tensor) == 0:
                        if axis == "samples":
                            names = model_block.samples.names
                        else:
                            names = model_block.properties.names
                    elif axis == "samples":
                        names = tensor.sample_names
                    else:
                        names = tensor.property_names
                    blocks.append(_empty_block(model_block, axis, names))
            all_blocks.append(blocks)

    joined = torch_jit_annotate(List[TensorBlock], [])
    for k in range(len(keys)):
        blocks_to_join = torch_jit_annotate(List[TensorBlock], [])
        for blocks in all_blocks:
            blocks_to_join.append(blocks[k])
        joined.append(_join_blocks_impl(blocks_to_join, axis, add_dimension, "join"))

    return TensorMap(keys, joined)


__all__ = ["join", "join_blocks"]
