"""Implementation of ``TensorMap.keys_to_samples``, ``keys_to_properties`` and
``components_to_properties`` with torch operations (TorchScript-compatible).

The functions take the keys and blocks of a map, and return the new keys and
blocks; the :py:class:`TensorMap` itself is built by the caller (TorchScript
does not allow a function called from a class to construct this same class).
"""

from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

from ._block import TensorBlock
from ._labels import Labels, _first_occurrences


def _full(
    shape: List[int],
    fill_value: Union[int, float, complex],
    dtype: torch.dtype,
    device: torch.device,
) -> Tensor:
    result = torch.empty(shape, dtype=dtype, device=device)
    if isinstance(fill_value, int):
        result.fill_(fill_value)
    elif isinstance(fill_value, float):
        result.fill_(fill_value)
    else:
        result.fill_(fill_value)
    return result


def _unique_rows(rows: Tensor, sort: bool) -> Tuple[Tensor, Tensor]:
    """Distinct rows of ``rows`` (in first-appearance order, or sorted), and the
    position of each input row in the result."""
    if rows.shape[0] == 0:
        return rows, torch.zeros(0, dtype=torch.int64, device=rows.device)
    if sort and rows.shape[1] != 0:
        if rows.shape[1] == 1:
            unique, inverse = torch.unique(rows[:, 0], sorted=True, return_inverse=True)
            return unique.reshape(-1, 1), inverse
        unique, inverse = torch.unique(rows, dim=0, sorted=True, return_inverse=True)
        return unique, inverse
    first, mapping = _first_occurrences(rows)
    return rows[first], mapping


def _names_to_move(
    keys: Labels, keys_to_move: Union[str, List[str], Labels], target: str
) -> Tuple[List[str], Optional[Labels]]:
    selection: Optional[Labels] = None
    if isinstance(keys_to_move, str):
        names = [keys_to_move]
    elif isinstance(keys_to_move, Labels):
        names = keys_to_move.names
        if keys_to_move.values.shape[0] != 0:
            selection = keys_to_move
    else:
        names = keys_to_move

    if keys.values.shape[0] == 0:
        raise ValueError(
            "invalid parameter: there are no keys to move in an empty TensorMap"
        )
    for name in names:
        if name not in keys.names:
            raise ValueError(
                "invalid parameter: '"
                + name
                + "' is not part of the keys for this tensor map"
            )
    if selection is not None and target == "samples":
        raise ValueError(
            "invalid parameter: user provided values for the keys to move is not "
            + "yet implemented, use Labels with no entries instead"
        )
    return names, selection


def _group_keys(
    keys: Labels, names: List[str]
) -> Tuple[Labels, List[List[int]], Tensor]:
    """Group the keys by the values of the dimensions that stay in the keys.

    :returns: new keys, the block indices of each group, and the values of the
        moved dimensions for each block
    """
    remaining: List[str] = []
    for name in keys.names:
        if name not in names:
            remaining.append(name)
    device = keys.values.device
    moved_columns = torch.tensor(
        [keys.names.index(n) for n in names], dtype=torch.int64, device=device
    )
    moved = keys.values.index_select(1, moved_columns)
    count = keys.values.shape[0]
    if len(remaining) == 0:
        new_keys = Labels(["_"], torch.zeros((1, 1), dtype=torch.int32, device=device))
        return new_keys, [list(range(count))], moved

    remaining_columns = torch.tensor(
        [keys.names.index(n) for n in remaining], dtype=torch.int64, device=device
    )
    projected = keys.values.index_select(1, remaining_columns)
    first, mapping = _first_occurrences(projected)
    new_keys = Labels(remaining, projected[first], True)
    groups: List[List[int]] = []
    for _group in range(first.shape[0]):
        empty: List[int] = []
        groups.append(empty)
    mapping_list: List[int] = mapping.cpu().tolist()
    for i, group in enumerate(mapping_list):
        groups[group].append(i)
    return new_keys, groups, moved


def _check_no_nested_gradients(block: TensorBlock, target: str):
    for _parameter, gradient in block.gradients():
        if len(gradient.gradients_list()) != 0:
            raise ValueError(
                "invalid parameter: gradient of gradients are not supported yet in "
                + "keys_to_"
                + target
            )


def _check_new_names(names: List[str], existing: List[str], target: str, kind: str):
    """The key dimensions ``names`` moved to the ``target`` (samples or
    properties) must not already be ``kind`` dimensions of the blocks."""
    for name in names:
        if name in existing:
            raise ValueError(
                "invalid parameter: can not move '"
                + name
                + "' to the "
                + target
                + ", there is already a "
                + kind
                + " dimension with this name"
            )


def _write(new: Tensor, rows: Tensor, columns: Tensor, values: Tensor):
    """``new[rows, ..., columns] = values`` for tensors with any number of
    components."""
    n_new = new.shape[0]
    n_props = new.shape[-1]
    # the number of component entries, computed explicitly: `reshape(0, -1, n)`
    # is ambiguous for blocks without samples
    n_components = 1
    for size in new.shape[1:-1]:
        n_components *= size
    new3 = new.reshape(n_new, n_components, n_props)
    values3 = values.reshape(values.shape[0], n_components, values.shape[-1])
    components = torch.arange(n_components, dtype=torch.int64, device=new.device)
    indices: List[Optional[Tensor]] = [
        rows.reshape(-1, 1, 1),
        components.reshape(1, -1, 1),
        columns.reshape(1, 1, -1),
    ]
    new3.index_put_(indices, values3)


def _scatter_group(
    new_values: Tensor,
    blocks: List[TensorBlock],
    group: List[int],
    sample_mapping: Tensor,
    property_mapping: Tensor,
) -> Tuple[List[Tensor], List[Tensor]]:
    """Write the values of the ``blocks`` in ``group`` into ``new_values``, at the
    rows given by ``sample_mapping`` and columns given by ``property_mapping`` (the
    concatenation over the group of each block's sample / property positions).
    Returns each block's slice of the two mappings."""
    sample_mappings: List[Tensor] = []
    property_mappings: List[Tensor] = []
    sample_offset = 0
    property_offset = 0
    for index in group:
        block = blocks[index]
        n_samples = block.values.shape[0]
        n_properties = block.values.shape[-1]
        block_samples = sample_mapping[sample_offset : sample_offset + n_samples]
        block_properties = property_mapping[
            property_offset : property_offset + n_properties
        ]
        _write(new_values, block_samples, block_properties, block.values)
        sample_mappings.append(block_samples)
        property_mappings.append(block_properties)
        sample_offset += n_samples
        property_offset += n_properties
    return sample_mappings, property_mappings


def _gradient_blocks(
    blocks: List[TensorBlock],
    sample_mappings: List[Tensor],
    property_mappings: List[Tensor],
    n_properties: int,
    properties: Labels,
    fill_value: Union[int, float, complex],
) -> List[Tuple[str, TensorBlock]]:
    """Merge the gradients of ``blocks``, remapping the ``sample`` dimension and
    the properties. The gradient samples are always sorted."""
    result: List[Tuple[str, TensorBlock]] = []
    first = blocks[0]
    for parameter in first.gradients_list():
        rows: List[Tensor] = []
        gradients: List[TensorBlock] = []
        for i, block in enumerate(blocks):
            gradient = block.gradient(parameter)
            gradients.append(gradient)
            samples = gradient.samples.values
            new_sample = sample_mappings[i][samples[:, 0].to(torch.int64)]
            rows.append(
                torch.cat(
                    [new_sample.to(torch.int32).reshape(-1, 1), samples[:, 1:]], 1
                )
            )
        all_rows = torch.cat(rows)
        unique, mapping = _unique_rows(all_rows, True)
        template = gradients[0]
        shape = [unique.shape[0]] + template.shape[1:-1] + [n_properties]
        new_values = _full(shape, fill_value, template.dtype, template.device)
        offset = 0
        for i, gradient in enumerate(gradients):
            n = gradient.values.shape[0]
            _write(
                new_values,
                mapping[offset : offset + n],
                property_mappings[i],
                gradient.values,
            )
            offset += n
        samples = Labels(template.samples.names, unique, True)
        result.append(
            (
                parameter,
                TensorBlock(new_values, samples, template.components, properties),
            )
        )
    return result


def keys_to_samples(
    keys: Labels,
    blocks: List[TensorBlock],
    keys_to_move: Union[str, List[str], Labels],
    fill_value: Union[int, float, complex],
    sort_samples: bool,
) -> Tuple[Labels, List[TensorBlock]]:
    """Move the key dimensions ``keys_to_move`` to the samples."""
    names, _ = _names_to_move(keys, keys_to_move, "samples")
    new_keys, groups, moved = _group_keys(keys, names)
    new_blocks: List[TensorBlock] = []
    for group in groups:
        first = blocks[group[0]]
        _check_new_names(names, first.samples.names, "samples", "sample")
        rows: List[Tensor] = []
        properties: List[Tensor] = []
        for index in group:
            block = blocks[index]
            _check_no_nested_gradients(block, "samples")
            if len(block.components) != len(first.components):
                raise ValueError(
                    "invalid parameter: can not move keys to samples if the blocks "
                    + "have different components labels, call "
                    + "components_to_properties first"
                )
            for c1, c2 in zip(block.components, first.components):
                if c1 != c2:
                    raise ValueError(
                        "invalid parameter: can not move keys to samples if the "
                        + "blocks have different components labels, call "
                        + "components_to_properties first"
                    )
            samples = block.samples.values
            extra = moved[index].reshape(1, -1).expand(samples.shape[0], -1)
            rows.append(torch.cat([samples, extra], 1))
            properties.append(block.properties.values)

        unique, sample_mapping = _unique_rows(torch.cat(rows), sort_samples)
        all_properties = torch.cat(properties)
        first_property, property_mapping = _first_occurrences(all_properties)
        new_properties = Labels(
            first.properties.names, all_properties[first_property], True
        )
        n_properties = first_property.shape[0]
        shape = [unique.shape[0]] + first.shape[1:-1] + [n_properties]
        new_values = _full(shape, fill_value, first.dtype, first.device)

        sample_mappings, property_mappings = _scatter_group(
            new_values, blocks, group, sample_mapping, property_mapping
        )

        new_samples = Labels(first.samples.names + names, unique, True)
        new_block = TensorBlock(
            new_values, new_samples, first.components, new_properties
        )
        group_blocks = [blocks[i] for i in group]
        for parameter, gradient in _gradient_blocks(
            group_blocks,
            sample_mappings,
            property_mappings,
            n_properties,
            new_properties,
            fill_value,
        ):
            new_block.add_gradient(parameter, gradient)
        new_blocks.append(new_block)
    return new_keys, new_blocks


def keys_to_properties(
    keys: Labels,
    blocks: List[TensorBlock],
    keys_to_move: Union[str, List[str], Labels],
    fill_value: Union[int, float, complex],
    sort_samples: bool,
) -> Tuple[Labels, List[TensorBlock]]:
    """Move the key dimensions ``keys_to_move`` to the properties."""
    names, selection = _names_to_move(keys, keys_to_move, "properties")
    new_keys, groups, moved = _group_keys(keys, names)
    new_blocks: List[TensorBlock] = []
    kept_groups: List[int] = []
    for group_index, group in enumerate(groups):
        if selection is not None:
            selected: List[int] = []
            positions: List[int] = []
            for index in group:
                position = selection.position(moved[index])
                if position is not None:
                    selected.append(index)
                    positions.append(position)
            group = selected
            if len(group) == 0:
                continue
        else:
            positions = [0 for _ in group]

        first = blocks[group[0]]
        _check_new_names(names, first.properties.names, "properties", "property")
        samples: List[Tensor] = []
        properties: List[Tensor] = []
        for index in group:
            block = blocks[index]
            _check_no_nested_gradients(block, "properties")
            for c1, c2 in zip(block.components, first.components):
                if c1 != c2:
                    raise ValueError(
                        "invalid parameter: can not move keys to properties if the "
                        + "blocks have different components labels, call "
                        + "components_to_properties first"
                    )
            samples.append(block.samples.values)
            block_properties = block.properties.values
            if selection is None:
                extra = moved[index].reshape(1, -1)
                extra = extra.expand(block_properties.shape[0], -1)
                properties.append(torch.cat([extra, block_properties], 1))
            elif block.properties != first.properties:
                raise ValueError(
                    "invalid parameter: can not provide values for the keys to move "
                    + "to properties if the blocks have different property labels"
                )

        unique, sample_mapping = _unique_rows(torch.cat(samples), sort_samples)
        n_old = first.values.shape[-1]
        device = first.device
        if selection is None:
            all_properties = torch.cat(properties)
            first_property, property_mapping = _first_occurrences(all_properties)
            property_values = all_properties[first_property]
        else:
            selected_values = selection.values.to(device)
            n_selected = selected_values.shape[0]
            old = first.properties.values
            property_values = torch.cat(
                [
                    selected_values.repeat_interleave(n_old, dim=0),
                    old.repeat(n_selected, 1),
                ],
                1,
            )
            offsets = torch.tensor(positions, dtype=torch.int64, device=device) * n_old
            local = torch.arange(n_old, dtype=torch.int64, device=device)
            property_mapping = (offsets.reshape(-1, 1) + local.reshape(1, -1)).reshape(
                -1
            )

        new_properties = Labels(names + first.properties.names, property_values, True)
        n_properties = property_values.shape[0]
        shape = [unique.shape[0]] + first.shape[1:-1] + [n_properties]
        new_values = _full(shape, fill_value, first.dtype, device)

        sample_mappings, property_mappings = _scatter_group(
            new_values, blocks, group, sample_mapping, property_mapping
        )

        new_samples = Labels(first.samples.names, unique, True)
        new_block = TensorBlock(
            new_values, new_samples, first.components, new_properties
        )
        group_blocks = [blocks[i] for i in group]
        for parameter, gradient in _gradient_blocks(
            group_blocks,
            sample_mappings,
            property_mappings,
            n_properties,
            new_properties,
            fill_value,
        ):
            new_block.add_gradient(parameter, gradient)
        new_blocks.append(new_block)
        kept_groups.append(group_index)

    if len(kept_groups) != new_keys.values.shape[0]:
        # blocks whose moved key is not part of the user-provided values are
        # dropped, remove the corresponding keys
        index = torch.tensor(kept_groups, dtype=torch.int64, device=new_keys.device)
        new_keys = Labels(new_keys.names, new_keys.values[index], True)
    return new_keys, new_blocks


def _move_component(
    values: Tensor, components: List[Labels], properties: Labels, name: str
) -> Tuple[Tensor, List[Labels], Labels]:
    position = -1
    for i, component in enumerate(components):
        if component.names[0] == name:
            position = i
    if position < 0:
        raise ValueError(
            "invalid parameter: unable to find '" + name + "' in the components "
        )
    component = components[position]
    n_component = component.values.shape[0]
    n_properties = properties.values.shape[0]
    axis = position + 1
    moved = torch.movedim(values, axis, values.dim() - 2)
    shape = list(moved.shape[:-2]) + [n_component * n_properties]
    new_values = moved.reshape(shape)
    new_components = components[:position] + components[position + 1 :]
    new_properties = torch.cat(
        [
            component.values.repeat_interleave(n_properties, dim=0),
            properties.values.repeat(n_component, 1),
        ],
        1,
    )
    return (
        new_values,
        new_components,
        Labels(component.names + properties.names, new_properties, True),
    )


def components_to_properties(
    blocks: List[TensorBlock], dimensions: Union[str, List[str]]
) -> List[TensorBlock]:
    """Move the given component dimensions to the properties of all blocks."""
    if isinstance(dimensions, str):
        names = [dimensions]
    else:
        names = dimensions
    new_blocks: List[TensorBlock] = []
    for block in blocks:
        current = block.copy(False)
        for name in names:
            values, components, properties = _move_component(
                current.values, current.components, current.properties, name
            )
            result = TensorBlock(values, current.samples, components, properties)
            for parameter, gradient in current.gradients():
                if len(gradient.gradients_list()) != 0:
                    raise ValueError(
                        "invalid parameter: gradient of gradients are not supported "
                        + "yet in components_to_properties"
                    )
                g_values, g_components, _ = _move_component(
                    gradient.values,
                    gradient.components,
                    current.properties,
                    name,
                )
                result.add_gradient(
                    parameter,
                    TensorBlock(g_values, gradient.samples, g_components, properties),
                )
            current = result
        new_blocks.append(current)
    return new_blocks
