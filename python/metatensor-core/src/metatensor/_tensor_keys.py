"""Moving key dimensions to samples or properties, and components to properties.

These are the implementations behind :py:meth:`TensorMap.keys_to_samples`,
:py:meth:`TensorMap.keys_to_properties` and
:py:meth:`TensorMap.components_to_properties`.

All metadata work happens on CPU numpy copies of the labels, vectorized over the
label entries: rows are turned into ``int64`` codes that preserve the
lexicographic order (:py:func:`_row_codes`), so that merging, sorting and
matching rows are plain 1-D ``argsort``/``searchsorted`` calls. Data moves with
O(1) array calls per block: a concatenation (plus a gather to sort) when the
blocks tile the output exactly, otherwise one indexed assignment per block into
an array filled with ``fill_value``. Both are tracked by torch autograd. New
labels are created on the backend and device of the labels they derive from.
"""

from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _array
from ._errors import invalid_parameter
from ._labels import Labels


# rows whose packed code space is at most this large are packed arithmetically,
# others get their codes from a lexicographic sort
_MAX_PACKED = 2**62

# arrays with at most this many rows are "small" (numpy call overhead dominates)
_SMALL_ROWS = 4096

# placement of a block's data along an axis of the output: everything
_ALL = slice(None)


###############################################################################
# pure numpy helpers on 2-D integer arrays of label rows
###############################################################################


def _row_codes(rows: np.ndarray) -> np.ndarray:
    """``int64`` codes for the rows of a 2-D integer array: equal rows get equal
    codes, and the order of the codes is the lexicographic order of the rows.

    :param rows: 2-D integer array
    """
    n_rows, n_dims = rows.shape
    if n_rows == 0 or n_dims == 0:
        return np.zeros(n_rows, dtype=np.int64)
    if n_dims == 1:
        return rows[:, 0].astype(np.int64)

    if n_rows <= _SMALL_ROWS:
        # fewer numpy calls for small arrays, where their overhead dominates
        wide = rows.astype(np.int64)
        wide -= wide.min(axis=0)
        spans = [m + 1 for m in wide.max(axis=0).tolist()]
        multipliers = [1] * n_dims
        for dim in range(n_dims - 2, -1, -1):
            multipliers[dim] = multipliers[dim + 1] * spans[dim + 1]
        if multipliers[0] * spans[0] <= _MAX_PACKED:
            # mixed radix number, the first column is the most significant digit
            return wide @ np.array(multipliers, dtype=np.int64)

    # reductions along contiguous int32 columns are much faster than along
    # axis 0 or on int64
    columns = np.ascontiguousarray(rows.T)
    minimum = columns.min(axis=1).tolist()
    spans = [int(m) - n + 1 for m, n in zip(columns.max(axis=1).tolist(), minimum)]
    columns = columns.astype(np.int64)
    total = 1
    for span in spans:
        total *= span

    if total <= _MAX_PACKED:
        # mixed radix number, the first column is the most significant digit
        codes = columns[0]
        codes -= minimum[0]
        for dim in range(1, n_dims):
            codes *= spans[dim]
            codes += columns[dim]
            codes -= minimum[dim]
        return codes

    # dense ranks in lexicographic order
    order = np.lexsort(rows.T[::-1])
    sorted_rows = rows[order]
    changed = np.empty(n_rows, dtype=bool)
    changed[0] = True
    np.any(sorted_rows[1:] != sorted_rows[:-1], axis=1, out=changed[1:])
    codes = np.empty(n_rows, dtype=np.int64)
    codes[order] = np.cumsum(changed) - 1
    return codes


def _is_increasing(codes: np.ndarray) -> bool:
    """Are the codes strictly increasing (sorted and unique)?"""
    return len(codes) < 2 or bool((codes[1:] > codes[:-1]).all())


def _unique_rows(
    rows: np.ndarray, sort: bool
) -> Tuple[Optional[np.ndarray], np.ndarray]:
    """Find the unique rows of a 2-D integer array.

    :param rows: 2-D integer array
    :param sort: if ``True`` the unique rows are in lexicographic order,
        otherwise in order of first appearance
    :return: ``(first, inverse)`` where ``rows[first]`` are the unique rows
        (``first`` is ``None`` when the rows are already unique and in the
        requested order) and ``inverse[i]`` is the position of ``rows[i]`` among
        the unique rows
    """
    codes = _row_codes(rows)
    n_rows = len(codes)
    if _is_increasing(codes):
        return None, np.arange(n_rows)

    order = codes.argsort(kind="stable")
    sorted_codes = codes[order]
    new = np.empty(n_rows, dtype=bool)
    new[0] = True
    np.not_equal(sorted_codes[1:], sorted_codes[:-1], out=new[1:])
    # first occurrence of each unique row (stable sort), in sorted order
    first = order[new]
    rank = new.cumsum()
    rank -= 1
    inverse = np.empty(n_rows, dtype=np.int64)
    inverse[order] = rank
    if sort:
        return first, inverse

    permutation = first.argsort(kind="stable")
    position = np.empty(len(first), dtype=np.int64)
    position[permutation] = np.arange(len(first))
    return first[permutation], position[inverse]


def _segments(sizes: Sequence[int]) -> List[slice]:
    """Slices for consecutive segments with the given sizes."""
    slices = []
    start = 0
    for size in sizes:
        slices.append(slice(start, start + size))
        start += size
    return slices


def _starts(sizes: Sequence[int]) -> np.ndarray:
    """Start of consecutive segments with the given sizes, as an int64 array."""
    starts = np.zeros(len(sizes), dtype=np.int64)
    if len(sizes) > 1:
        np.cumsum(sizes[:-1], out=starts[1:])
    return starts


def _is_identity(positions: np.ndarray, count: int) -> bool:
    """Is ``positions`` exactly ``0, 1, ..., count - 1``?"""
    if len(positions) != count:
        return False
    return count == 0 or bool((positions == np.arange(count)).all())


###############################################################################
# labels and array helpers
###############################################################################


def _labels_values(labels: Labels) -> np.ndarray:
    """The values of some Labels as a (cached) CPU numpy array."""
    return labels._numpy_values()


def _new_labels(names: Sequence[str], values: np.ndarray, like: Labels) -> Labels:
    """Labels with the given valid names and unique rows, on the backend and
    device of the ``like`` Labels."""
    values = np.ascontiguousarray(values, dtype=np.int32)
    values.flags.writeable = False
    if _array.is_numpy(like.values):
        return Labels._new(tuple(names), values)
    return Labels._new(tuple(names), _array.from_numpy(values, like.values), values)


def _same_labels(a: Labels, b: Labels) -> bool:
    return a is b or a == b


def _filled(shape: Sequence[int], fill_value: Any, like: Any) -> Any:
    """A new array of ``shape`` filled with ``fill_value`` cast to the dtype of
    ``like`` (same kind and device as ``like``)."""
    if isinstance(like, np.ndarray):
        output = np.empty(tuple(shape), dtype=like.dtype)
        output.fill(np.array(fill_value, dtype=like.dtype))
        return output
    return _array.full(shape, fill_value, like)


def _assign(output: Any, rows, columns, values: Any) -> None:
    """``output[rows, ..., columns] = values`` with a single indexed assignment
    (tracked by torch autograd). ``rows`` are integer positions along the first
    axis or a slice, ``columns`` integer positions along the last axis or a
    slice."""
    if isinstance(output, np.ndarray) and not isinstance(columns, np.ndarray):
        # common case, without conversions
        output[rows, ..., columns] = values
        return

    kind = _array.array_kind(output)
    if kind != _array.NUMPY and kind != _array.TORCH:
        raise TypeError(f"unsupported array type: {type(output)}")

    rows_are_array = isinstance(rows, np.ndarray)
    if rows_are_array:
        rows = _array.index_tensor(rows, output)

    if isinstance(columns, np.ndarray):
        columns = _array.index_tensor(columns, output)
        if rows_are_array:
            # non adjacent advanced indexes: the indexed dimensions come first
            output[rows[:, None], ..., columns[None, :]] = _array.moveaxis(
                values, -1, 1
            )
            return

    output[rows, ..., columns] = values


###############################################################################
# argument handling and grouping of the keys
###############################################################################


def _parse_keys_to_move(keys_to_move) -> Tuple[List[str], Optional[Labels]]:
    """Normalize ``keys_to_move`` to a list of names, and Labels if given."""
    if isinstance(keys_to_move, Labels):
        return list(keys_to_move.names), keys_to_move

    if isinstance(keys_to_move, str):
        names = [keys_to_move]
    else:
        try:
            names = list(keys_to_move)
        except TypeError:
            raise TypeError(
                "`keys_to_move` must be a string, a list of strings or Labels, "
                f"got {type(keys_to_move)}"
            ) from None
        for name in names:
            if not isinstance(name, str):
                raise TypeError(
                    "`keys_to_move` must be a string, a list of strings or "
                    f"Labels, got an element of type {type(name)}"
                )

    # validate the names (valid identifiers, no duplicates) like the reference
    Labels(names, np.zeros((0, len(names)), dtype=np.int32))
    return names, None


def _split_keys(tensor, names: List[str]):
    """Group the blocks of ``tensor`` by the key dimensions not in ``names``.

    :return: ``(new_keys, moved, groups)``: the new keys (remaining dimensions,
        in order of first appearance), the ``(n_blocks, len(names))`` array of
        the moved dimensions for each block, and for each new key the list of
        block indexes (in key order)
    """
    keys = tensor.keys
    key_names = list(keys.names)
    for name in names:
        if name not in key_names:
            raise invalid_parameter(
                f"'{name}' is not part of the keys for this tensor map"
            )

    keys_values = _labels_values(keys)
    moved = keys_values[:, [key_names.index(name) for name in names]]
    remaining_names = [name for name in key_names if name not in names]
    if len(remaining_names) == 0:
        new_keys = _new_labels(["_"], np.zeros((1, 1), dtype=np.int32), keys)
        return new_keys, moved, [list(range(len(keys)))]

    remaining = keys_values[:, [key_names.index(name) for name in remaining_names]]
    first, inverse = _unique_rows(remaining, sort=False)
    if first is None:
        new_keys = _new_labels(remaining_names, remaining, keys)
        return new_keys, moved, [[i] for i in range(len(keys))]
    new_keys = _new_labels(remaining_names, remaining[first], keys)
    order = np.argsort(inverse, kind="stable").tolist()
    counts = np.bincount(inverse, minlength=len(first)).tolist()
    groups = [order[s] for s in _segments(counts)]
    return new_keys, moved, groups


def _check_components(blocks, axis: str) -> None:
    """All the blocks must have the same components."""
    reference = blocks[0].components
    for block in blocks[1:]:
        components = block.components
        if len(components) != len(reference) or not all(
            _same_labels(a, b) for a, b in zip(components, reference)
        ):
            raise invalid_parameter(
                f"can not move keys to {axis} if the blocks have different "
                "components labels, call components_to_properties first"
            )


def _gradients(blocks, function: str):
    """The gradient parameters, and the gradients of each block as a list of
    ``{parameter: gradient}``, rejecting gradients of gradients."""
    parameters = blocks[0].gradients_list()
    all_gradients = []
    for block in blocks:
        gradients = {}
        for parameter in parameters:
            gradient = block.gradient(parameter)
            if len(gradient.gradients_list()) != 0:
                raise invalid_parameter(
                    f"gradient of gradients are not supported yet in {function}"
                )
            gradients[parameter] = gradient
        all_gradients.append(gradients)
    return parameters, all_gradients


def _new_block(values, samples, components, properties, gradients=()):
    """A block from pieces that are valid by construction (no checks)."""
    from ._block import TensorBlock

    block = TensorBlock._unchecked(values, samples, components, properties)
    for parameter, gradient in gradients:
        block._add_gradient_unchecked(parameter, gradient)
    return block


def _finish(tensor, new_keys: Labels, new_blocks: list):
    """The output TensorMap, with the info of ``tensor``."""
    from ._tensor import TensorMap

    return TensorMap._unchecked(new_keys, new_blocks, tensor.info())


def _scatter(arrays, rows, columns, shape, fill_value, like):
    """A new array of ``shape`` filled with ``fill_value``, where each array in
    ``arrays`` is written at ``rows[i]`` along the first axis and
    ``columns[i]`` along the last one (``None`` columns: skipped)."""
    output = _filled(shape, fill_value, like)
    for array, block_rows, block_columns in zip(arrays, rows, columns):
        if block_columns is None:
            continue
        if isinstance(block_rows, np.ndarray) and len(block_rows) == 0:
            continue
        _assign(output, block_rows, block_columns, array)
    return output


class _SampleMap(NamedTuple):
    """New position of the samples of all the blocks in a group: the samples of
    block ``i`` are at ``rows[starts[i] : starts[i] + n_samples_i]``, or at
    ``rows`` for all blocks when ``starts`` is ``None``."""

    rows: np.ndarray
    starts: Optional[np.ndarray]


def _merge_gradient(
    gradients: list,
    sample_map: _SampleMap,
    columns: list,
    properties: Labels,
    fill_value: Any,
    concatenate_properties: bool,
):
    """Merge the gradients (with respect to one parameter) of the blocks in a
    group.

    The ``sample`` column is remapped through ``sample_map`` (the new sample of
    each of the block's samples), the rows are merged and sorted, and the data
    is placed at ``columns`` along the properties (blocks with ``None`` columns
    only contribute their samples).

    :param concatenate_properties: ``columns`` are consecutive slices covering
        all the properties, so that blocks covering all the merged rows in order
        can be concatenated along the properties
    """
    template = gradients[0]
    samples_values = [_labels_values(gradient.samples) for gradient in gradients]
    sizes = [len(values) for values in samples_values]
    merged = np.concatenate(samples_values, axis=0)
    if len(merged) != 0 and merged.shape[1] != 0:
        if sample_map.starts is None:
            merged[:, 0] = sample_map.rows[merged[:, 0]]
        else:
            index = sample_map.starts.repeat(sizes)
            index += merged[:, 0]
            merged[:, 0] = sample_map.rows[index]

    first, inverse = _unique_rows(merged, sort=True)
    if first is not None:
        merged = merged[first]
    samples = _new_labels(template.samples.names, merged, template.samples)

    arrays = [gradient.values for gradient in gradients]
    n_rows = len(merged)
    if all(c is _ALL for c in columns) and n_rows == len(inverse):
        # every merged row comes from exactly one gradient row
        values = _array.concatenate(arrays, axis=0)
        if first is not None:
            values = _array.take(values, first, axis=0)
    else:
        rows = [inverse[s] for s in _segments(sizes)]
        if concatenate_properties and all(_is_identity(r, n_rows) for r in rows):
            values = _array.concatenate(arrays, axis=-1)
        else:
            shape = _array.shape(template.values)
            values = _scatter(
                arrays,
                rows,
                columns,
                (n_rows, *shape[1:-1], len(properties)),
                fill_value,
                template.values,
            )
    return _new_block(values, samples, template.components, properties)


###############################################################################
# keys_to_samples
###############################################################################


def keys_to_samples(
    tensor,
    keys_to_move: Union[str, Sequence[str], Labels],
    fill_value: Any = 0.0,
    sort_samples: bool = True,
):
    """Merge the blocks of ``tensor`` with the same values for the key dimensions
    not in ``keys_to_move``, moving the ``keys_to_move`` dimensions to the samples.

    :param tensor: the :py:class:`TensorMap` to transform
    :param keys_to_move: name(s) of the key dimensions to move, as a string, a
        list of strings or :py:class:`Labels` without entries
    :param fill_value: value for the entries of the merged blocks that are not in
        any of the original blocks (cast to the values dtype)
    :param sort_samples: sort the merged samples lexicographically; otherwise
        they come block after block, in key order. Gradient samples are always
        sorted
    :return: a new :py:class:`TensorMap`
    """
    names, selection = _parse_keys_to_move(keys_to_move)
    if len(tensor.keys) == 0:
        raise invalid_parameter("there are no keys to move in an empty TensorMap")
    if selection is not None and len(selection) != 0:
        raise invalid_parameter(
            "user provided values for the keys to move is not yet implemented, "
            "`keys_to_move` should not contain any entry when calling "
            "keys_to_samples"
        )

    new_keys, moved, groups = _split_keys(tensor, names)
    blocks = [tensor.block_by_id(i) for i in range(len(tensor.keys))]

    sample_names = list(blocks[0].samples.names)
    for name in names:
        if name in sample_names:
            raise invalid_parameter(
                f"can not move '{name}' to the samples: there is already a "
                f"sample dimension named '{name}'"
            )

    new_blocks = [
        _keys_to_samples_group(
            [blocks[i] for i in group],
            moved[group],
            sample_names + names,
            fill_value,
            sort_samples,
        )
        for group in groups
    ]
    return _finish(tensor, new_keys, new_blocks)


def _union_properties(blocks) -> Tuple[Labels, list]:
    """Union of the properties of the blocks (block 0 first, then new entries as
    they appear), and the columns of each block in it (``_ALL`` when the block
    has exactly these properties)."""
    reference = blocks[0].properties
    if all(_same_labels(block.properties, reference) for block in blocks[1:]):
        return reference, [_ALL] * len(blocks)

    values = [_labels_values(block.properties) for block in blocks]
    merged = np.concatenate(values, axis=0)
    first, inverse = _unique_rows(merged, sort=False)
    if first is not None:
        merged = merged[first]
    properties = _new_labels(reference.names, merged, reference)
    return properties, [inverse[s] for s in _segments([len(v) for v in values])]


def _keys_to_samples_group(
    blocks, moved: np.ndarray, sample_names, fill_value, sort_samples: bool
):
    _check_components(blocks, "samples")
    parameters, gradients = _gradients(blocks, "keys_to_samples")
    first = blocks[0]

    # samples: old samples extended with the moved key values, block after block
    # (these rows are unique since the moved values differ between blocks)
    samples_values = [_labels_values(block.samples) for block in blocks]
    sizes = [len(values) for values in samples_values]
    segments = _segments(sizes)
    n_old = len(sample_names) - moved.shape[1]
    merged = np.empty((sum(sizes), len(sample_names)), dtype=np.int32)
    if n_old != 0:
        np.concatenate(samples_values, axis=0, out=merged[:, :n_old])
    merged[:, n_old:] = np.repeat(moved, sizes, axis=0)

    n_rows = len(merged)
    order = None
    if sort_samples:
        codes = _row_codes(merged)
        if not _is_increasing(codes):
            order = np.argsort(codes, kind="stable")
            merged = merged[order]

    if order is None:
        positions = np.arange(n_rows)
        rows = segments
    else:
        positions = np.empty(n_rows, dtype=np.int64)
        positions[order] = np.arange(n_rows)
        rows = [positions[s] for s in segments]
    sample_map = _SampleMap(positions, _starts(sizes))

    samples = _new_labels(sample_names, merged, first.samples)
    properties, columns = _union_properties(blocks)

    arrays = [block.values for block in blocks]
    if all(c is _ALL for c in columns):
        values = _array.concatenate(arrays, axis=0)
        if order is not None:
            values = _array.take(values, order, axis=0)
    else:
        shape = _array.shape(first.values)
        shape = (n_rows, *shape[1:-1], len(properties))
        values = _scatter(arrays, rows, columns, shape, fill_value, first.values)

    new_gradients = [
        (
            parameter,
            _merge_gradient(
                [g[parameter] for g in gradients],
                sample_map,
                columns,
                properties,
                fill_value,
                concatenate_properties=False,
            ),
        )
        for parameter in parameters
    ]
    return _new_block(values, samples, first.components, properties, new_gradients)


###############################################################################
# keys_to_properties
###############################################################################


def keys_to_properties(
    tensor,
    keys_to_move: Union[str, Sequence[str], Labels],
    fill_value: Any = 0.0,
    sort_samples: bool = True,
):
    """Merge the blocks of ``tensor`` with the same values for the key dimensions
    not in ``keys_to_move``, moving the ``keys_to_move`` dimensions to the
    properties.

    :param tensor: the :py:class:`TensorMap` to transform
    :param keys_to_move: name(s) of the key dimensions to move, as a string, a
        list of strings or :py:class:`Labels`. With Labels containing entries,
        the new properties are the product of these entries with the (shared)
        properties of the blocks, and blocks whose key is not listed are dropped
    :param fill_value: value for the entries of the merged blocks that are not in
        any of the original blocks (cast to the values dtype)
    :param sort_samples: sort the merged samples lexicographically; otherwise
        they are in order of first appearance. Gradient samples are always
        sorted
    :return: a new :py:class:`TensorMap`
    """
    names, selection = _parse_keys_to_move(keys_to_move)
    if len(tensor.keys) == 0:
        raise invalid_parameter("there are no keys to move in an empty TensorMap")

    new_keys, moved, groups = _split_keys(tensor, names)
    blocks = [tensor.block_by_id(i) for i in range(len(tensor.keys))]

    property_names = list(blocks[0].properties.names)
    for name in names:
        if name in property_names:
            raise invalid_parameter(
                f"can not move '{name}' to the properties: there is already a "
                f"property dimension named '{name}'"
            )

    selected = None
    if selection is not None and len(selection) != 0:
        selected = _labels_values(selection)

    new_blocks = [
        _keys_to_properties_group(
            [blocks[i] for i in group],
            moved[group],
            names,
            selected,
            fill_value,
            sort_samples,
        )
        for group in groups
    ]
    return _finish(tensor, new_keys, new_blocks)


def _merge_samples(blocks, sort_samples: bool):
    """Union of the samples of the blocks.

    :return: ``(samples, block_rows, order, sample_map)`` with the new samples
        Labels, the new position of each block's samples, ``order`` when all
        the blocks have the same samples (``None`` if they are in order, else
        the gather that sorts them) or ``False`` otherwise, and the new
        positions as a :py:class:`_SampleMap`
    """
    reference = blocks[0].samples
    if all(_same_labels(block.samples, reference) for block in blocks[1:]):
        values = _labels_values(reference)
        if not sort_samples:
            codes = None
        else:
            codes = _row_codes(values)
        if codes is None or _is_increasing(codes):
            positions = np.arange(len(values))
            sample_map = _SampleMap(positions, None)
            return reference, [positions] * len(blocks), None, sample_map
        order = codes.argsort(kind="stable")
        positions = np.empty(len(order), dtype=np.int64)
        positions[order] = np.arange(len(order))
        samples = _new_labels(reference.names, values[order], reference)
        sample_map = _SampleMap(positions, None)
        return samples, [positions] * len(blocks), order, sample_map

    samples_values = [_labels_values(block.samples) for block in blocks]
    merged = np.concatenate(samples_values, axis=0)
    first, inverse = _unique_rows(merged, sort=sort_samples)
    if first is not None:
        merged = merged[first]
    samples = _new_labels(reference.names, merged, reference)
    sizes = [len(v) for v in samples_values]
    block_rows = [inverse[s] for s in _segments(sizes)]
    return samples, block_rows, False, _SampleMap(inverse, _starts(sizes))


def _keys_to_properties_group(
    blocks,
    moved: np.ndarray,
    names: List[str],
    selected: Optional[np.ndarray],
    fill_value,
    sort_samples: bool,
):
    _check_components(blocks, "properties")
    parameters, gradients = _gradients(blocks, "keys_to_properties")
    first = blocks[0]
    samples, block_rows, order, sample_map = _merge_samples(blocks, sort_samples)

    old_properties = first.properties
    property_names = names + old_properties.names
    if selected is None:
        properties_values = [_labels_values(block.properties) for block in blocks]
        sizes = [len(v) for v in properties_values]
        new_values = np.empty((sum(sizes), len(property_names)), np.int32)
        new_values[:, : len(names)] = np.repeat(moved, sizes, axis=0)
        if len(property_names) != len(names):
            np.concatenate(properties_values, axis=0, out=new_values[:, len(names) :])
        columns = _segments(sizes)
    else:
        for block in blocks[1:]:
            if not _same_labels(block.properties, old_properties):
                raise invalid_parameter(
                    "can not provide values for the keys to move to properties "
                    "if the blocks have different property labels"
                )
        old_values = _labels_values(old_properties)
        n_selected, n_old = len(selected), len(old_values)
        new_values = np.empty((n_selected * n_old, len(property_names)), np.int32)
        new_values[:, : len(names)] = np.repeat(selected, n_old, axis=0)
        new_values[:, len(names) :] = np.tile(old_values, (n_selected, 1))

        # position of each block's moved key values in the selection
        codes = _row_codes(np.concatenate([selected, moved], axis=0))
        selected_codes, block_codes = codes[:n_selected], codes[n_selected:]
        sorter = np.argsort(selected_codes, kind="stable")
        found = np.searchsorted(selected_codes, block_codes, sorter=sorter)
        matches = sorter[np.minimum(found, n_selected - 1)]
        valid = (selected_codes[matches] == block_codes).tolist()
        columns = [
            slice(m * n_old, (m + 1) * n_old) if ok else None
            for m, ok in zip(matches.tolist(), valid)
        ]

    properties = _new_labels(property_names, new_values, old_properties)

    arrays = [block.values for block in blocks]
    if order is not False and selected is None:
        # all blocks have the same samples: concatenate the properties
        values = _array.concatenate(arrays, axis=-1)
        if order is not None:
            values = _array.take(values, order, axis=0)
    else:
        shape = _array.shape(first.values)
        shape = (len(samples), *shape[1:-1], len(properties))
        rows = [_ALL if _is_identity(r, len(samples)) else r for r in block_rows]
        values = _scatter(arrays, rows, columns, shape, fill_value, first.values)

    new_gradients = [
        (
            parameter,
            _merge_gradient(
                [g[parameter] for g in gradients],
                sample_map,
                columns,
                properties,
                fill_value,
                concatenate_properties=selected is None,
            ),
        )
        for parameter in parameters
    ]
    return _new_block(values, samples, first.components, properties, new_gradients)


###############################################################################
# components_to_properties
###############################################################################


def components_to_properties(tensor, dimensions: Union[str, Sequence[str]]):
    """Move the given component dimensions to the properties, for all blocks
    (see :py:mod:`metatensor._tensor_components`).

    :param tensor: the :py:class:`TensorMap` to transform
    :param dimensions: name(s) of the component dimensions to move
    :return: a new :py:class:`TensorMap`
    """
    from ._tensor_components import components_to_properties as implementation

    return implementation(tensor, dimensions)
