"""Manipulation of the dimensions (names/columns) of the metadata of a
TensorMap: :py:func:`insert_dimension`, :py:func:`append_dimension`,
:py:func:`permute_dimensions`, :py:func:`remove_dimension` and
:py:func:`rename_dimension`.

These functions only change metadata: the values (and gradient values) of the
result are the **same arrays** as the values of the input, not copies.

Choice made where the reference implementation has a bug (see the
specification, S9): components Labels always have a single dimension, so
inserting, appending, permuting or removing dimensions along ``"components"`` is
impossible, and raises a ``ValueError`` (the reference silently did nothing).
Renaming a component dimension works.
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
from ._utils import _check_tensor_type


def _check_axis(axis: str) -> None:
    if axis not in ["keys", "samples", "components", "properties"]:
        raise ValueError(
            f"'{axis}' is not a valid axis. Choose from 'keys', 'samples', "
            "'components', or 'properties'."
        )


def _check_not_components(axis: str) -> None:
    _check_axis(axis)
    if axis == "components":
        raise ValueError(
            "'components' is not a valid axis. Choose from 'keys', 'samples' or "
            "'properties'."
        )


def _new_column(labels: Labels, values: Union[Array, int]) -> Array:
    """The values of a new dimension for ``labels``: an integer broadcast to all
    entries, or an array given by the user."""
    if isinstance(values, int):
        return _dispatch.full_like(labels.values, values, [len(labels)])
    if not torch_jit_is_scripting():
        if _dispatch.is_numpy_scalar(values):
            return _dispatch.full_like(labels.values, int(values), [len(labels)])
    return values


def _with_samples(block: TensorBlock, samples: Labels) -> TensorBlock:
    """The same block with different samples. Gradients are shared (they refer
    to samples by position)."""
    result = TensorBlock(block.values, samples, block.components, block.properties)
    for parameter, gradient in block.gradients():
        result.add_gradient(parameter, gradient)
    return result


def _with_properties(block: TensorBlock, properties: Labels) -> TensorBlock:
    """The same block with different properties, also for the gradients."""
    result = TensorBlock(block.values, block.samples, block.components, properties)
    for parameter, gradient in block.gradients():
        result.add_gradient(
            parameter,
            TensorBlock(
                gradient.values, gradient.samples, gradient.components, properties
            ),
        )
    return result


def _shallow_blocks(tensor: TensorMap) -> List[TensorBlock]:
    blocks = torch_jit_annotate(List[TensorBlock], [])
    for block in tensor.blocks():
        blocks.append(block.copy(deep=False))
    return blocks


@torch_jit_script
def insert_dimension(
    tensor: TensorMap,
    axis: str,
    index: int,
    name: str,
    values: Union[Array, int],
) -> TensorMap:
    """Insert a new dimension ``name`` at position ``index`` in the metadata of
    ``axis`` (``"keys"``, ``"samples"`` or ``"properties"``), for all blocks.

    The gradient samples are not modified (they refer to the samples by
    position); the gradient properties follow the properties of the values.

    :param tensor: the input tensor
    :param axis: ``"keys"``, ``"samples"`` or ``"properties"``; components have
        a single dimension and give a ``ValueError``
    :param index: position of the new dimension among the existing ones
    :param name: name of the new dimension
    :param values: values of the new dimension: an integer used for all entries,
        or a 1-D array with one value per entry (of the keys, or of the samples
        or properties of each block)
    :return: a new tensor sharing the values arrays of ``tensor``
    """
    _check_tensor_type(tensor, "tensor")
    _check_not_components(axis)

    keys = tensor.keys
    if axis == "keys":
        keys = keys.insert(index, name, _new_column(keys, values))
        return TensorMap(keys, _shallow_blocks(tensor))

    blocks = torch_jit_annotate(List[TensorBlock], [])
    for block in tensor.blocks():
        if axis == "samples":
            samples = block.samples
            samples = samples.insert(index, name, _new_column(samples, values))
            blocks.append(_with_samples(block, samples))
        else:
            properties = block.properties
            properties = properties.insert(index, name, _new_column(properties, values))
            blocks.append(_with_properties(block, properties))
    return TensorMap(keys, blocks)


@torch_jit_script
def append_dimension(
    tensor: TensorMap,
    axis: str,
    name: str,
    values: Union[Array, int],
) -> TensorMap:
    """Add a new dimension ``name`` after the existing ones in the metadata of
    ``axis``, see :py:func:`insert_dimension`.

    :param tensor: the input tensor
    :param axis: ``"keys"``, ``"samples"`` or ``"properties"``
    :param name: name of the new dimension
    :param values: an integer used for all entries, or a 1-D array with one
        value per entry
    :return: a new tensor sharing the values arrays of ``tensor``
    """
    _check_tensor_type(tensor, "tensor")
    _check_not_components(axis)

    if axis == "keys":
        index = len(tensor.keys.names)
    elif axis == "samples":
        index = len(tensor.sample_names)
    else:
        index = len(tensor.property_names)
    return insert_dimension(tensor, axis, index, name, values)


@torch_jit_script
def permute_dimensions(
    tensor: TensorMap,
    axis: str,
    dimensions_indexes: List[int],
) -> TensorMap:
    """Permute the dimensions of the metadata of ``axis``: the new dimension
    ``i`` is the old dimension ``dimensions_indexes[i]``. For example,
    ``[2, 0, 1]`` on dimensions ``(l, n_1, n_2)`` gives ``(n_2, l, n_1)``.

    The gradient samples are not modified; the gradient properties follow the
    properties of the values.

    :param tensor: the input tensor
    :param axis: ``"keys"``, ``"samples"`` or ``"properties"``
    :param dimensions_indexes: the old position of each of the new dimensions
    :return: a new tensor sharing the values arrays of ``tensor``
    """
    _check_tensor_type(tensor, "tensor")
    _check_not_components(axis)

    keys = tensor.keys
    if axis == "keys":
        return TensorMap(keys.permute(dimensions_indexes), _shallow_blocks(tensor))

    blocks = torch_jit_annotate(List[TensorBlock], [])
    for block in tensor.blocks():
        if axis == "samples":
            blocks.append(
                _with_samples(block, block.samples.permute(dimensions_indexes))
            )
        else:
            blocks.append(
                _with_properties(block, block.properties.permute(dimensions_indexes))
            )
    return TensorMap(keys, blocks)


@torch_jit_script
def remove_dimension(tensor: TensorMap, axis: str, name: str) -> TensorMap:
    """Remove the dimension ``name`` from the metadata of ``axis``. The
    remaining entries must still be unique.

    The gradient samples are not modified; the gradient properties follow the
    properties of the values.

    :param tensor: the input tensor
    :param axis: ``"keys"``, ``"samples"`` or ``"properties"``
    :param name: name of the dimension to remove
    :return: a new tensor sharing the values arrays of ``tensor``
    """
    _check_tensor_type(tensor, "tensor")
    _check_not_components(axis)

    keys = tensor.keys
    if axis == "keys":
        return TensorMap(keys.remove(name), _shallow_blocks(tensor))

    blocks = torch_jit_annotate(List[TensorBlock], [])
    for block in tensor.blocks():
        if axis == "samples":
            blocks.append(_with_samples(block, block.samples.remove(name)))
        else:
            blocks.append(_with_properties(block, block.properties.remove(name)))
    return TensorMap(keys, blocks)


def _rename_components(
    components: List[Labels], n_values_components: int, old: str, new: str
) -> List[Labels]:
    """Rename ``old`` to ``new`` in the last ``n_values_components`` components
    (the ones corresponding to the components of the values)."""
    result = torch_jit_annotate(List[Labels], [])
    start = len(components) - n_values_components
    for i, component in enumerate(components):
        if i >= start and component.names[0] == old:
            result.append(component.rename(old, new))
        else:
            result.append(component)
    return result


@torch_jit_script
def rename_dimension(tensor: TensorMap, axis: str, old: str, new: str) -> TensorMap:
    """Rename the dimension ``old`` of the metadata of ``axis`` to ``new``.

    For ``"samples"``, a dimension with the same name in the gradient samples
    (like ``system`` or ``atom`` for ``positions`` gradients) is renamed too.
    For ``"components"``, the component named ``old`` is renamed in the values
    and in the gradients. For ``"properties"``, gradient properties follow.

    :param tensor: the input tensor
    :param axis: ``"keys"``, ``"samples"``, ``"components"`` or ``"properties"``
    :param old: current name of the dimension
    :param new: new name of the dimension
    :return: a new tensor sharing the values arrays of ``tensor``
    """
    _check_tensor_type(tensor, "tensor")
    _check_axis(axis)

    keys = tensor.keys
    if axis == "keys":
        return TensorMap(keys.rename(old, new), _shallow_blocks(tensor))

    if axis == "components":
        if len(tensor) != 0 and old not in tensor.component_names:
            raise ValueError(f"'{old}' not found in the dimensions of these Labels")

    blocks = torch_jit_annotate(List[TensorBlock], [])
    for block in tensor.blocks():
        if axis == "samples":
            result = TensorBlock(
                block.values,
                block.samples.rename(old, new),
                block.components,
                block.properties,
            )
            for parameter, gradient in block.gradients():
                gradient_samples = gradient.samples
                # the first dimension (`sample`) refers to the values rows
                if old in gradient_samples.names[1:]:
                    gradient_samples = gradient_samples.rename(old, new)
                result.add_gradient(
                    parameter,
                    TensorBlock(
                        gradient.values,
                        gradient_samples,
                        gradient.components,
                        gradient.properties,
                    ),
                )
            blocks.append(result)
        elif axis == "components":
            n_components = len(block.components)
            result = TensorBlock(
                block.values,
                block.samples,
                _rename_components(block.components, n_components, old, new),
                block.properties,
            )
            for parameter, gradient in block.gradients():
                result.add_gradient(
                    parameter,
                    TensorBlock(
                        gradient.values,
                        gradient.samples,
                        _rename_components(gradient.components, n_components, old, new),
                        gradient.properties,
                    ),
                )
            blocks.append(result)
        else:
            blocks.append(_with_properties(block, block.properties.rename(old, new)))
    return TensorMap(keys, blocks)


__all__ = [
    "append_dimension",
    "insert_dimension",
    "permute_dimensions",
    "remove_dimension",
    "rename_dimension",
]
