"""Sorting the metadata of TensorMaps (:py:func:`sort`) and TensorBlocks
(:py:func:`sort_block`), permuting the values to match.

Choices made where the reference implementation has bugs (see the
specification, S7 and S8):

- blocks with 0 samples (with or without gradients) are sorted without error;
- the ``axes`` list given by the caller is never modified.
"""

from typing import List, Union

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


def _normalize_axes(axes: Union[str, List[str]], allow_keys: bool) -> List[str]:
    """Turn ``axes`` into a new list of axes names, checking them."""
    valid = ["samples", "components", "properties"]
    if allow_keys:
        valid = ["keys"] + valid

    result = torch_jit_annotate(List[str], [])
    if isinstance(axes, str):
        if axes == "all":
            for axis in valid:
                result.append(axis)
            return result
        result.append(axes)
    else:
        if not torch_jit_is_scripting():
            if not isinstance(axes, (list, tuple)):
                raise TypeError(
                    f"`axes` must be a string or a list of strings, not {type(axes)}"
                )
            for axis in axes:
                if not isinstance(axis, str):
                    raise TypeError(
                        f"`axes` must be a string or a list of strings, got an "
                        f"element of type {type(axis)}"
                    )
        for axis in axes:
            result.append(axis)

    for axis in result:
        if axis not in valid:
            if allow_keys:
                raise ValueError(
                    "`axes` must be one of 'keys', 'samples', 'components' or "
                    f"'properties', not '{axis}'"
                )
            raise ValueError(
                "`axes` must be one of 'samples', 'components' or 'properties', "
                f"not '{axis}'"
            )
    return result


def _is_identity(order: Array) -> bool:
    """Is this permutation the identity?"""
    return _dispatch.array_equal(order, _dispatch.arange_like(order.shape[0], order))


def _take(array: Array, order: Array, axis: int, identity: bool) -> Array:
    """``take(array, order, axis)``, skipping the copy for identity orders (the
    final copy is done by ``_copy_shared``)."""
    if identity:
        return array
    return _dispatch.take(array, order, axis)


def _sorted_labels(labels: Labels, order: Array) -> Labels:
    return Labels(
        labels.names, _dispatch.take(labels.values, order, 0), assume_unique=True
    )


def _sort_samples(block: TensorBlock, descending: bool) -> TensorBlock:
    samples = block.samples
    order = _dispatch.argsort_labels_values(samples.values, descending)
    result = TensorBlock(
        _take(block.values, order, 0, _is_identity(order)),
        _sorted_labels(samples, order),
        block.components,
        block.properties,
    )

    for parameter, gradient in block.gradients():
        gradient_samples = gradient.samples.values
        # new position of each old sample
        new_position = _dispatch.inverse_positions(
            _dispatch.index_like(order, gradient_samples), len(samples)
        )
        sample_column = new_position[_dispatch.to_index_array(gradient_samples[:, 0])]
        sample_column = _dispatch.astype_like(sample_column, gradient_samples)
        new_samples = _dispatch.concatenate(
            [_dispatch.reshape(sample_column, [-1, 1]), gradient_samples[:, 1:]], 1
        )
        # sort the gradient rows on all their dimensions
        gradient_order = _dispatch.argsort_labels_values(new_samples, descending)
        result.add_gradient(
            parameter,
            TensorBlock(
                _take(gradient.values, gradient_order, 0, _is_identity(gradient_order)),
                Labels(
                    gradient.samples.names,
                    _dispatch.take(new_samples, gradient_order, 0),
                    assume_unique=True,
                ),
                gradient.components,
                gradient.properties,
            ),
        )
    return result


def _sort_components(block: TensorBlock, descending: bool) -> TensorBlock:
    values = block.values
    components = torch_jit_annotate(List[Labels], [])
    orders = torch_jit_annotate(List[Array], [])
    for i, component in enumerate(block.components):
        order = _dispatch.argsort_labels_values(component.values, descending)
        values = _take(values, order, i + 1, _is_identity(order))
        components.append(_sorted_labels(component, order))
        orders.append(order)

    result = TensorBlock(values, block.samples, components, block.properties)
    n_components = len(components)
    for parameter, gradient in block.gradients():
        gradient_values = gradient.values
        gradient_components = gradient.components
        # the components of the values are the last components of the gradients
        start = len(gradient_components) - n_components
        for i in range(n_components):
            gradient_values = _take(
                gradient_values, orders[i], start + i + 1, _is_identity(orders[i])
            )
            gradient_components[start + i] = components[i]
        result.add_gradient(
            parameter,
            TensorBlock(
                gradient_values,
                gradient.samples,
                gradient_components,
                gradient.properties,
            ),
        )
    return result


def _sort_properties(block: TensorBlock, descending: bool) -> TensorBlock:
    properties = block.properties
    order = _dispatch.argsort_labels_values(properties.values, descending)
    identity = _is_identity(order)
    new_properties = _sorted_labels(properties, order)
    result = TensorBlock(
        _take(block.values, order, len(block.values.shape) - 1, identity),
        block.samples,
        block.components,
        new_properties,
    )
    for parameter, gradient in block.gradients():
        result.add_gradient(
            parameter,
            TensorBlock(
                _take(gradient.values, order, len(gradient.values.shape) - 1, identity),
                gradient.samples,
                gradient.components,
                new_properties,
            ),
        )
    return result


def _copy_shared(result: TensorBlock, block: TensorBlock) -> TensorBlock:
    """Copy the arrays of ``result`` which are still shared with ``block``, so the
    output of sort never shares data with its input."""
    values = result.values
    if values is block.values:
        values = _dispatch.copy(values)
    new = TensorBlock(values, result.samples, result.components, result.properties)
    for parameter, gradient in result.gradients():
        gradient_values = gradient.values
        if gradient_values is block.gradient(parameter).values:
            gradient_values = _dispatch.copy(gradient_values)
        new.add_gradient(
            parameter,
            TensorBlock(
                gradient_values,
                gradient.samples,
                gradient.components,
                gradient.properties,
            ),
        )
    return new


def _sort_block_impl(
    block: TensorBlock, axes: List[str], descending: bool
) -> TensorBlock:
    result = block
    if "samples" in axes:
        result = _sort_samples(result, descending)
    if "components" in axes and len(result.components) != 0:
        result = _sort_components(result, descending)
    if "properties" in axes:
        result = _sort_properties(result, descending)
    return _copy_shared(result, block)


@torch_jit_script
def sort_block(
    block: TensorBlock,
    axes: Union[str, List[str]] = "all",
    descending: bool = False,
) -> TensorBlock:
    """Sort the ``samples``, ``components`` and/or ``properties`` of a
    :py:class:`TensorBlock`, permuting the values (and gradients) to match.

    Label entries are sorted lexicographically, comparing the values of their
    first dimension, then the second, and so on. The rows of the gradients
    are re-numbered to follow their sample, and sorted on all their dimensions
    when sorting samples; gradient components and properties follow the values.

    :param block: the block to sort
    :param axes: ``"all"`` (the default, same as ``["samples", "components",
        "properties"]``), one of these names, or a list of them
    :param descending: sort in descending instead of ascending order
    :return: a new sorted block
    """
    _check_block_type(block, "block")
    axes_list = _normalize_axes(axes, False)
    return _sort_block_impl(block, axes_list, descending)


@torch_jit_script
def sort(
    tensor: TensorMap,
    axes: Union[str, List[str]] = "all",
    descending: bool = False,
) -> TensorMap:
    """Sort the ``keys``, ``samples``, ``components`` and/or ``properties`` of a
    :py:class:`TensorMap`, see :py:func:`sort_block`. Sorting the keys changes
    the order of the blocks.

    :param tensor: the tensor to sort
    :param axes: ``"all"`` (the default, same as ``["keys", "samples",
        "components", "properties"]``), one of these names, or a list of them
        (the list is not modified)
    :param descending: sort in descending instead of ascending order
    :return: a new sorted tensor
    """
    _check_tensor_type(tensor, "tensor")
    axes_list = _normalize_axes(axes, True)

    keys = tensor.keys
    block_order = torch_jit_annotate(List[int], [])
    if "keys" in axes_list:
        order = _dispatch.argsort_labels_values(keys.values, descending)
        keys = _sorted_labels(keys, order)
        for i in range(len(keys)):
            block_order.append(int(order[i]))
    else:
        for i in range(len(keys)):
            block_order.append(i)

    blocks = torch_jit_annotate(List[TensorBlock], [])
    for position in block_order:
        blocks.append(
            _sort_block_impl(tensor.block_by_id(position), axes_list, descending)
        )
    return TensorMap(keys, blocks)


__all__ = ["sort", "sort_block"]
