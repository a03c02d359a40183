"""Property-based tests (hypothesis) of identities between join, slice, split,
sort and the reductions."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from metatensor import Labels, TensorBlock, TensorMap
from metatensor.operations import (
    equal,
    join,
    join_blocks,
    remove_dimension,
    slice,
    sort,
    split,
    split_block,
    sum_over_samples,
)

from ._ops_data import assert_same_data


@st.composite
def tensors(draw, gradients=True):
    """Random TensorMaps: 1-3 blocks, unique random samples ``(system, atom)``,
    properties ``(n,)``, optional components and positions gradients."""
    n_blocks = draw(st.integers(1, 3))
    n_properties = draw(st.integers(1, 4))
    with_components = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)

    components = [Labels.range("o3_mu", 2)] if with_components else []
    comp_shape = [2] if with_components else []
    properties = Labels(
        ["n"], rng.permutation(10)[:n_properties].reshape(-1, 1).astype(np.int32)
    )

    blocks = []
    for _ in range(n_blocks):
        n_samples = draw(st.integers(0, 6))
        entries = rng.permutation(12)[:n_samples]
        samples = Labels(
            ["system", "atom"], np.stack([entries // 4, entries % 4], axis=1)
        )
        block = TensorBlock(
            rng.normal(size=[n_samples] + comp_shape + [n_properties]),
            samples,
            components,
            properties,
        )
        if gradients:
            rows = []
            for s in range(n_samples):
                for atom in rng.permutation(3)[: rng.integers(0, 3)]:
                    rows.append([s, entries[s] // 4, atom])
            rows = np.array(rows, dtype=np.int32).reshape(-1, 3)
            block.add_gradient(
                "positions",
                TensorBlock(
                    rng.normal(size=[len(rows), 3] + comp_shape + [n_properties]),
                    Labels(["sample", "system", "atom"], rows),
                    [Labels.range("xyz", 3)] + components,
                    properties,
                ),
            )
        blocks.append(block)

    keys = Labels(["key"], rng.permutation(5)[:n_blocks].reshape(-1, 1))
    return TensorMap(keys, blocks)


def _sorted_gradients(tensor):
    """Sort the gradient rows only (the order of gradient rows is free)."""
    blocks = []
    for block in tensor.blocks():
        new = TensorBlock(
            block.values, block.samples, block.components, block.properties
        )
        for parameter, gradient in block.gradients():
            rows = gradient.samples.values
            order = np.lexsort(rows.T[::-1])
            new.add_gradient(
                parameter,
                TensorBlock(
                    gradient.values[order],
                    Labels(gradient.samples.names, rows[order]),
                    gradient.components,
                    gradient.properties,
                ),
            )
        blocks.append(new)
    return TensorMap(tensor.keys, blocks)


@settings(max_examples=40, deadline=None)
@given(tensors(), st.integers(1, 4), st.sampled_from(["samples", "properties"]))
def test_join_split_is_identity(tensor, n_parts, axis):
    # split in consecutive chunks (positions), then join back
    if axis == "samples":
        # same chunks for all blocks: use the system dimension
        selections = [
            Labels(["system"], np.arange(i, 3, n_parts).reshape(-1, 1))
            for i in range(n_parts)
        ]
        parts = split(tensor, axis, selections)
        joined = join(parts, axis)
        for block, new in zip(tensor.blocks(), joined.blocks()):
            assert len(new.samples) == len(block.samples)
            assert_same_data(block, new)
    else:
        n_properties = len(tensor.block(0).properties)
        bounds = np.linspace(0, n_properties, n_parts + 1).astype(int)
        selections = [list(range(bounds[i], bounds[i + 1])) for i in range(n_parts)]
        parts = split(tensor, axis, selections)
        joined = join(parts, axis)
        assert equal(joined, tensor)


@settings(max_examples=40, deadline=None)
@given(tensors(), st.sampled_from(["samples", "properties"]))
def test_slice_everything_is_identity(tensor, axis):
    everything = Labels([], np.empty((1, 0), dtype=np.int32))
    assert equal(slice(tensor, axis, everything), tensor)

    if axis == "samples":
        # all positions in order
        for block in tensor.blocks():
            positions = list(range(len(block.samples)))
            new = slice(TensorMap(Labels.range("k", 1), [block]), axis, positions)
            assert equal(new, TensorMap(Labels.range("k", 1), [block]))
    else:
        positions = list(range(len(tensor.block(0).properties)))
        assert equal(slice(tensor, axis, positions), tensor)


@settings(max_examples=40, deadline=None)
@given(tensors(), st.booleans())
def test_sort_is_idempotent(tensor, descending):
    once = sort(tensor, descending=descending)
    twice = sort(once, descending=descending)
    assert equal(once, twice)
    # sorting only reorders the data
    for key, block in once.items():
        assert_same_data(block, tensor.block(key))


@settings(max_examples=40, deadline=None)
@given(tensors())
def test_sum_over_all_samples(tensor):
    summed = sum_over_samples(tensor, ["system", "atom"])
    for block, new in zip(tensor.blocks(), summed.blocks()):
        if len(block.samples) == 0:
            assert len(new.samples) == 0
            continue
        assert new.samples == Labels("_", np.array([[0]]))
        np.testing.assert_allclose(
            new.values[0], block.values.sum(axis=0), rtol=1e-12, atol=1e-12
        )
        gradient = block.gradient("positions")
        new_gradient = new.gradient("positions")
        if len(gradient.samples) != 0:
            np.testing.assert_allclose(
                new_gradient.values.sum(axis=0),
                gradient.values.sum(axis=0),
                rtol=1e-12,
                atol=1e-12,
            )


@settings(max_examples=40, deadline=None)
@given(tensors(gradients=True))
def test_keys_to_properties_inverse(tensor):
    moved = tensor.keys_to_properties("key")
    for key, original in tensor.items():
        # take back the properties of this key, then the samples of this block
        selection = Labels(["key"], np.array([[key["key"]]], dtype=np.int32))
        sliced = slice(moved, "properties", selection)
        sliced = slice(sliced, "samples", original.samples)
        sliced = remove_dimension(sliced, "properties", "key")
        new = sliced.block(0)
        assert new.samples == original.samples
        assert new.properties == original.properties
        np.testing.assert_equal(new.values, original.values)
        # gradients: the rows of the merged block contain zeros for the
        # entries of other keys; compare the non-zero entries
        for parameter, gradient in original.gradients():
            expected = _dense(original, parameter)
            actual = _dense(new, parameter)
            zero = np.zeros(gradient.values.shape[1:])
            for k in set(expected) | set(actual):
                np.testing.assert_equal(actual.get(k, zero), expected.get(k, zero))


def _dense(block, parameter):
    gradient = block.gradient(parameter)
    result = {}
    for row, value in zip(gradient.samples.values, gradient.values):
        key = (tuple(block.samples.values[row[0]]), tuple(row[1:]))
        result[key] = value
    return result


@settings(max_examples=20, deadline=None)
@given(tensors())
def test_sort_then_join_split_gradients(tensor):
    # joining a tensor with itself along samples (with a new dimension) then
    # taking each part back gives the input
    joined = join([tensor, sort(tensor, "samples")], "samples", add_dimension="part")
    first = slice(joined, "samples", Labels(["part"], np.array([[0]])))
    first = remove_dimension(first, "samples", "part")
    assert equal(_sorted_gradients(first), _sorted_gradients(tensor))


@settings(max_examples=40, deadline=None)
@given(tensors(), st.data())
def test_join_blocks_split_block_is_identity(tensor, data):
    # contiguous chunks of positions: joining them gives back the exact input
    # (up to the order of gradient rows, which is free)
    for block in tensor.blocks():
        for axis in ["samples", "properties"]:
            size = len(block.samples) if axis == "samples" else len(block.properties)
            cuts = sorted(
                data.draw(st.lists(st.integers(0, size), min_size=0, max_size=3))
            )
            bounds = [0] + cuts + [size]
            selections = [
                list(range(bounds[i], bounds[i + 1])) for i in range(len(bounds) - 1)
            ]
            parts = split_block(block, axis, selections)
            joined = join_blocks(parts, axis)
            single = Labels.range("k", 1)
            assert equal(
                _sorted_gradients(TensorMap(single, [joined])),
                _sorted_gradients(TensorMap(single, [block])),
            )
