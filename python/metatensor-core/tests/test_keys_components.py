"""Tests for TensorMap.components_to_properties, checking every value with
explicit label lookups."""

import itertools

import numpy as np
import pytest

import metatensor
from metatensor import Labels, MetatensorError, TensorBlock, TensorMap


def _np(array):
    if isinstance(array, np.ndarray):
        return array
    return array.detach().cpu().numpy()


def _rows(labels):
    return [tuple(int(x) for x in row) for row in _np(labels.values)]


def _labels(names, rows):
    return Labels(names, np.array(rows, dtype=np.int32).reshape(len(rows), -1))


def _three_components_tensor():
    rng = np.random.default_rng(12)
    components = [
        _labels([f"c{i}"], [[j] for j in range(n)]) for i, n in enumerate([2, 3, 4])
    ]
    block = TensorBlock(
        rng.random((3, 2, 3, 4, 2)),
        _labels(["s"], [[0], [1], [2]]),
        components,
        _labels(["p"], [[0], [5]]),
    )
    block.add_gradient(
        "g",
        TensorBlock(
            rng.random((2, 3, 2, 3, 4, 2)),
            _labels(["sample", "x"], [[0, 1], [2, 0]]),
            [_labels(["xyz"], [[0], [1], [2]]), *components],
            block.properties,
        ),
    )
    return TensorMap(_labels(["k"], [[0]]), [block])


def _check_components_moved(original, moved, n_extra=0):
    """Check every value with explicit label lookups (``n_extra`` leading
    gradient components are left alone)."""
    # label value -> position, for each component of the original block
    old_positions = {
        c.names[0]: {row[0]: i for i, row in enumerate(_rows(c))}
        for c in original.components[n_extra:]
    }
    new_components = [(c.names[0], _rows(c)) for c in moved.components[n_extra:]]
    old_properties = {row: i for i, row in enumerate(_rows(original.properties))}
    property_names = moved.properties.names
    old = _np(original.values)
    new = _np(moved.values)
    assert new.shape[0] == old.shape[0]
    extra_shape = new.shape[1 : 1 + n_extra]
    for s in range(new.shape[0]):
        for extra in itertools.product(*(range(n) for n in extra_shape)):
            for index in itertools.product(*(range(len(c)) for _, c in new_components)):
                for j, prop in enumerate(_rows(moved.properties)):
                    entry = dict(zip(property_names, prop))
                    for (name, rows), i in zip(new_components, index):
                        entry[name] = rows[i][0]
                    old_prop = tuple(entry[n] for n in original.properties.names)
                    old_index = tuple(
                        positions[entry[name]]
                        for name, positions in old_positions.items()
                    )
                    expected = old[(s, *extra, *old_index, old_properties[old_prop])]
                    assert new[(s, *extra, *index, j)] == expected


@pytest.mark.parametrize(
    "dimensions",
    ["c0", "c1", "c2", ["c1"], ["c2", "c0"], ["c0", "c1", "c2"], ["c1", "c2", "c0"]],
)
def test_components_to_properties(dimensions):
    tensor = _three_components_tensor()
    result = tensor.components_to_properties(dimensions)
    if isinstance(dimensions, str):
        dimensions = [dimensions]

    block = result.block()
    original = tensor.block()
    assert block.properties.names == [*dimensions[::-1], "p"]
    remaining = [n for n in ["c0", "c1", "c2"] if n not in dimensions]
    assert [c.names[0] for c in block.components] == remaining
    assert block.samples == original.samples
    _check_components_moved(original, block)

    gradient = block.gradient("g")
    assert gradient.properties == block.properties
    assert [c.names[0] for c in gradient.components] == ["xyz", *remaining]
    _check_components_moved(original.gradient("g"), gradient, n_extra=1)


def test_components_to_properties_first_of_three():
    # the reference swaps axes instead of moving them, which gives wrong data
    # here; check explicitly
    tensor = _three_components_tensor()
    values = np.asarray(tensor.block().values)
    result = tensor.components_to_properties("c0").block()
    expected = np.moveaxis(values, 1, -2).reshape(3, 3, 4, 4)
    np.testing.assert_equal(result.values, expected)
    assert _rows(result.properties) == [(0, 0), (0, 5), (1, 0), (1, 5)]


def test_components_to_properties_copy_and_errors():
    tensor = _three_components_tensor()
    copy = tensor.components_to_properties([])
    for i in range(len(tensor)):
        assert copy.block_by_id(i).values is not tensor.block_by_id(i).values
        np.testing.assert_equal(
            copy.block_by_id(i).values, tensor.block_by_id(i).values
        )
        assert copy.block_by_id(i).components == tensor.block_by_id(i).components

    # the result never shares memory with the input
    result = tensor.components_to_properties("c1")
    result.block_by_id(0).values[:] = 42
    assert np.all(tensor.block_by_id(0).values < 1)

    with pytest.raises(
        MetatensorError,
        match="invalid parameter: unable to find 'zz' in the components ",
    ):
        tensor.components_to_properties("zz")

    with pytest.raises(
        MetatensorError,
        match="invalid parameter: unable to find 'c1' in the components ",
    ):
        tensor.components_to_properties(["c1", "c1"])

    empty = TensorMap(Labels.empty(["key"]), [])
    assert len(empty.components_to_properties("zz")) == 0


def test_torch(torch):
    tensor = _three_components_tensor()
    torch_tensor = tensor.to(arrays="torch")
    values = torch_tensor.block().values.clone().requires_grad_(True)
    block = torch_tensor.block()
    new = TensorBlock(values, block.samples, block.components, block.properties)
    new.add_gradient("g", block.gradient("g").copy())
    torch_tensor = TensorMap(torch_tensor.keys, [new])

    result = torch_tensor.components_to_properties(["c1", "c0"])
    block = result.block()
    assert isinstance(block.values, torch.Tensor)
    assert isinstance(block.properties.values, torch.Tensor)
    assert isinstance(block.gradient("g").properties.values, torch.Tensor)
    _check_components_moved(tensor.block(), block)
    _check_components_moved(tensor.block().gradient("g"), block.gradient("g"), 1)

    weights = torch.arange(block.values.numel(), dtype=torch.float64)
    (block.values * weights.reshape(block.values.shape)).sum().backward()
    # each input gets the weight of its position in the output
    expected = np.zeros(tensor.block().values.shape)
    moved = np.arange(block.values.numel()).reshape(block.values.shape)
    # undo the move with explicit loops over the labels
    names = block.properties.names
    c0 = _rows(tensor.block().components[0])
    c1 = _rows(tensor.block().components[1])
    props = _rows(tensor.block().properties)
    for j, prop in enumerate(_rows(block.properties)):
        entry = dict(zip(names, prop))
        i0 = c0.index((entry["c0"],))
        i1 = c1.index((entry["c1"],))
        p = props.index((entry["p"],))
        expected[:, i0, i1, :, p] = moved[:, :, j]
    np.testing.assert_equal(values.grad.numpy(), expected)


def test_real_files_components_to_properties(data_dir):
    tensor = metatensor.load(str(data_dir / "data.mts"))
    result = tensor.components_to_properties("o3_mu")
    for i in range(len(tensor)):
        _check_components_moved(tensor.block_by_id(i), result.block_by_id(i))
    # all blocks now have the same (no) components
    result.keys_to_properties(["o3_lambda", "neighbor_type"])


def test_zero_properties_and_samples():
    block = TensorBlock(
        np.zeros((0, 2, 0)),
        Labels(["s"], np.zeros((0, 1), dtype=np.int32)),
        [_labels(["c"], [[0], [1]])],
        Labels(["p"], np.zeros((0, 1), dtype=np.int32)),
    )
    tensor = TensorMap(_labels(["k"], [[0]]), [block])
    result = tensor.components_to_properties("c").block()
    assert result.values.shape == (0, 0)
    assert result.properties.names == ["c", "p"]
    assert len(result.properties) == 0
    assert result.samples == block.samples
