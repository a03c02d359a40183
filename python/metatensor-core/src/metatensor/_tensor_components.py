"""Moving component dimensions to the properties: the implementation behind
:py:meth:`TensorMap.components_to_properties`.

Each moved component is removed from the components and *prepended* to the
properties, which become the product ``(component, old property)``. The data
is moved with a real axis permutation (the reference swaps axes instead, which
scrambles the data when moving a component that is not one of the last two of
three or more) and one contiguous copy per array.
"""

from typing import Any, List, Sequence, Union

import numpy as np

from . import _array
from ._errors import invalid_parameter
from ._labels import Labels
from ._tensor_keys import _finish, _labels_values, _new_block, _new_labels


def components_to_properties(tensor, dimensions: Union[str, Sequence[str]]):
    """Move the given component dimensions to the properties, for all blocks.

    The names are processed in order; each moved component is removed from the
    components and *prepended* to the properties, which become the product
    ``(component, old property)`` (component-major). Gradients get the same
    treatment.

    :param tensor: the :py:class:`TensorMap` to transform
    :param dimensions: name(s) of the component dimensions to move
    :return: a new :py:class:`TensorMap` (a deep copy when ``dimensions`` is
        empty)
    """
    if isinstance(dimensions, str):
        dimensions = [dimensions]
    else:
        dimensions = list(dimensions)
        for name in dimensions:
            if not isinstance(name, str):
                raise TypeError(
                    "`dimensions` must be a string or a list of strings, got an "
                    f"element of type {type(name)}"
                )

    new_blocks = []
    for i in range(len(tensor.keys)):
        block = tensor.block_by_id(i)
        if len(dimensions) == 0:
            new_blocks.append(block.copy())
        else:
            new_blocks.append(_components_to_properties_block(block, dimensions))
    return _finish(tensor, tensor.keys, new_blocks)


def _moved_properties(components: list, properties: Labels, dimensions: List[str]):
    """Compute the components and properties after moving ``dimensions``.

    :return: ``(components, properties, moved)`` where ``moved`` lists the
        original index (among the block components) of each moved component, in
        processing order
    """
    remaining = list(range(len(components)))
    names = [c.names[0] for c in components]
    property_names = properties.names
    new_values = _labels_values(properties)
    moved = []
    for name in dimensions:
        index = names.index(name) if name in names else -1
        if index < 0 or index in moved:
            raise invalid_parameter(f"unable to find '{name}' in the components ")
        if name in property_names:
            raise invalid_parameter(
                f"can not move '{name}' to the properties: there is already a "
                f"property dimension named '{name}'"
            )
        component = _labels_values(components[index])
        n_old = len(new_values)
        merged = np.empty((len(component) * n_old, new_values.shape[1] + 1), np.int32)
        merged[:, 0] = np.repeat(component[:, 0], n_old)
        width = new_values.shape[1]
        merged[:, 1:].reshape(len(component), n_old, width)[:] = new_values
        new_values = merged
        property_names.insert(0, name)
        moved.append(index)
        remaining.remove(index)

    new_properties = _new_labels(property_names, new_values, properties)
    return [components[i] for i in remaining], new_properties, moved


def _permute(array: Any, permutation: List[int]) -> Any:
    """Permute the axes of an array (a view when possible)."""
    if _array.is_numpy(array):
        return np.transpose(array, permutation)
    elif _array.is_torch(array):
        return array.permute(permutation)
    return _array.namespace(array).permute_dims(array, tuple(permutation))


def _contiguous_copy(array: Any) -> Any:
    """A C-contiguous copy of an array (keeps autograd history for torch)."""
    if _array.is_numpy(array):
        return array.copy(order="C")
    elif _array.is_torch(array):
        torch = _array.torch_module()
        return array.clone(memory_format=torch.contiguous_format)
    return _array.copy(array)


def _move_data(values: Any, moved: List[int], n_components: int) -> Any:
    """Move the ``moved`` components (indexes among the ``n_components`` last
    components) of ``values`` in front of the properties and merge them with the
    properties: the last moved component becomes the slowest varying one.

    Always returns a new array, never a view of ``values``.
    """
    shape = tuple(values.shape)
    first_component = len(shape) - 1 - n_components
    axes = [first_component + index for index in moved]
    kept = [a for a in range(len(shape) - 1) if a not in axes]
    # a real move of the axes, keeping the order of the other ones
    permutation = kept + axes[::-1] + [len(shape) - 1]
    if permutation == list(range(len(shape))):
        values = _array.copy(values)
    else:
        values = _contiguous_copy(_permute(values, permutation))

    size = shape[-1]
    for axis in axes:
        size *= shape[axis]
    return _array.reshape(values, (*[shape[a] for a in kept], size))


def _components_to_properties_block(block, dimensions: List[str]):
    n_components = len(block.components)
    components, properties, moved = _moved_properties(
        block.components, block.properties, dimensions
    )
    values = _move_data(block.values, moved, n_components)

    new_gradients = []
    for parameter in block.gradients_list():
        gradient = block.gradient(parameter)
        if len(gradient.gradients_list()) != 0:
            raise invalid_parameter(
                "gradient of gradients are not supported yet in "
                "components_to_properties"
            )
        gradient_components = list(gradient.components)
        n_extra = len(gradient_components) - n_components
        new_gradient = _new_block(
            _move_data(gradient.values, moved, n_components),
            gradient.samples,
            gradient_components[:n_extra] + components,
            properties,
        )
        new_gradients.append((parameter, new_gradient))

    return _new_block(values, block.samples, components, properties, new_gradients)
