"""Tests for TensorMap.keys_to_samples, keys_to_properties and
components_to_properties, checked against naive implementations written here
with explicit loops and dict lookups."""

import numpy as np
import pytest

import metatensor
from metatensor import Labels, MetatensorError, TensorBlock, TensorMap


###############################################################################
# helpers
###############################################################################


def _np(array):
    if isinstance(array, np.ndarray):
        return array
    return array.detach().cpu().numpy()


def _rows(labels):
    return [tuple(int(x) for x in row) for row in _np(labels.values)]


def _labels(names, rows):
    return Labels(names, np.array(rows, dtype=np.int32).reshape(len(rows), -1))


def _simple_block(value, samples, components, properties, gradient_samples):
    """A block filled with ``value``, with a gradient "g" filled with
    ``10 + value``."""
    shape = (len(samples), *(len(c) for c in components), len(properties))
    block = TensorBlock(
        np.full(shape, float(value)),
        _labels(["s"], samples),
        components,
        _labels(["p"], properties),
    )
    block.add_gradient(
        "g",
        TensorBlock(
            np.full((len(gradient_samples), *shape[1:]), 10.0 + value),
            _labels(["sample", "g"], gradient_samples),
            components,
            block.properties,
        ),
    )
    return block


def _tensor():
    """The classic test map: 4 blocks with keys (key_1, key_2), one gradient."""
    c1 = [_labels(["c"], [[0]])]
    c3 = [_labels(["c"], [[0], [1], [2]])]
    blocks = [
        _simple_block(1, [[0], [2], [4]], c1, [[0]], [[0, -2], [2, 3]]),
        _simple_block(
            2, [[0], [1], [3]], c1, [[3], [4], [5]], [[0, -2], [0, 3], [2, -2]]
        ),
        _simple_block(3, [[0], [3], [6], [8]], c3, [[0]], [[1, -2]]),
        _simple_block(4, [[0], [1], [2], [5]], c3, [[0]], [[0, 1], [3, 3]]),
    ]
    keys = _labels(["key_1", "key_2"], [[0, 0], [1, 0], [2, 2], [2, 3]])
    return TensorMap(keys, blocks)


def _random_tensor(seed=0, n_keys=6, components=True, gradients=True):
    """Random map with keys (a, b), different samples and properties per block,
    a `positions`-like gradient with an extra component."""
    rng = np.random.default_rng(seed)
    keys = []
    while len(keys) < n_keys:
        key = (int(rng.integers(0, 4)), int(rng.integers(0, 3)))
        if key not in keys:
            keys.append(key)

    component = [_labels(["c"], [[0], [1]])] if components else []
    xyz = _labels(["xyz"], [[0], [1], [2]])
    blocks = []
    for _ in keys:
        n_samples = int(rng.integers(1, 6))
        samples = rng.choice(20, size=n_samples, replace=False).reshape(-1, 1)
        samples = np.hstack([samples // 5, samples % 5])
        n_properties = int(rng.integers(1, 4))
        properties = rng.choice(6, size=n_properties, replace=False).reshape(-1, 1)
        shape = (n_samples, *(len(c) for c in component), n_properties)
        block = TensorBlock(
            rng.random(shape),
            Labels(["system", "atom"], samples.astype(np.int32)),
            component,
            Labels(["n"], properties.astype(np.int32)),
        )
        if gradients:
            rows = [
                (s, a) for s in range(n_samples) for a in range(3) if rng.random() < 0.5
            ]
            grad_samples = np.array(rows, dtype=np.int32).reshape(-1, 2)
            block.add_gradient(
                "positions",
                TensorBlock(
                    rng.random((len(rows), 3, *shape[1:])),
                    Labels(["sample", "atom"], grad_samples),
                    [xyz, *component],
                    block.properties,
                ),
            )
        blocks.append(block)

    return TensorMap(_labels(["a", "b"], keys), blocks)


def _groups(tensor, names):
    """{remaining key: [(block index, moved key values)]}, in order of first
    appearance, with python loops."""
    key_names = list(tensor.keys.names)
    groups = {}
    for i, key in enumerate(_rows(tensor.keys)):
        remaining = tuple(v for n, v in zip(key_names, key) if n not in names)
        moved = tuple(key[key_names.index(n)] for n in names)
        groups.setdefault(remaining, []).append((i, moved))
    return groups


def _naive_gradient(parameter, members, sample_map, property_map, n_properties, fill):
    """Expected merged gradient: {row tuple: data}, with the `sample` column
    remapped through sample_map[(member, old sample)]. Blocks without entries in
    property_map contribute their rows but no data."""
    data = {}
    for member, block in members:
        gradient = block.gradient(parameter)
        values = _np(gradient.values)
        for g, row in enumerate(_rows(gradient.samples)):
            new_row = (sample_map[(member, row[0])], *row[1:])
            if new_row not in data:
                data[new_row] = np.full((*values.shape[1:-1], n_properties), fill)
            for p in range(values.shape[-1]):
                if (member, p) in property_map:
                    column = property_map[(member, p)]
                    data[new_row][..., column] = values[g, ..., p]
    return data


def _check_block(block, samples, properties, values, gradients):
    assert _rows(block.samples) == samples
    assert _rows(block.properties) == properties
    np.testing.assert_equal(_np(block.values), values)
    assert sorted(block.gradients_list()) == sorted(gradients)
    for parameter, data in gradients.items():
        gradient = block.gradient(parameter)
        rows = sorted(data)
        assert _rows(gradient.samples) == rows
        assert _rows(gradient.properties) == properties
        if rows:
            np.testing.assert_equal(
                _np(gradient.values), np.stack([data[r] for r in rows])
            )
        else:
            assert _np(gradient.values).shape[0] == 0


def _naive_keys_to_samples(tensor, names, fill=0.0, sort=True):
    return [
        _naive_samples_group(tensor, members, fill, sort)
        for members in _groups(tensor, names).values()
    ]


def _naive_samples_group(tensor, members, fill, sort):
    samples = []
    properties = []
    cells = {}
    sample_of = {}
    blocks = []
    for member, (i, moved) in enumerate(members):
        block = tensor.block_by_id(i)
        blocks.append((member, block))
        values = _np(block.values)
        block_properties = _rows(block.properties)
        for prop in block_properties:
            if prop not in properties:
                properties.append(prop)
        for s, sample in enumerate(_rows(block.samples)):
            new_sample = (*sample, *moved)
            samples.append(new_sample)
            sample_of[(member, s)] = new_sample
            for p, prop in enumerate(block_properties):
                cells[(new_sample, prop)] = values[s, ..., p]
    if sort:
        samples = sorted(samples)

    shape = _np(blocks[0][1].values).shape[1:-1]
    expected = np.full((len(samples), *shape, len(properties)), fill)
    for s, sample in enumerate(samples):
        for p, prop in enumerate(properties):
            if (sample, prop) in cells:
                expected[s, ..., p] = cells[(sample, prop)]

    sample_index = {sample: s for s, sample in enumerate(samples)}
    sample_map = {key: sample_index[value] for key, value in sample_of.items()}
    property_map = {}
    for member, block in blocks:
        for p, prop in enumerate(_rows(block.properties)):
            property_map[(member, p)] = properties.index(prop)

    gradients = {}
    for parameter in blocks[0][1].gradients_list():
        gradients[parameter] = _naive_gradient(
            parameter, blocks, sample_map, property_map, len(properties), fill
        )
    return samples, properties, expected, gradients


def _naive_keys_to_properties(tensor, names, fill=0.0, sort=True, selection=None):
    return [
        _naive_properties_group(tensor, members, fill, sort, selection)
        for members in _groups(tensor, names).values()
    ]


def _naive_properties_group(tensor, members, fill, sort, selection):
    samples = {}
    blocks = []
    for member, (i, moved) in enumerate(members):
        block = tensor.block_by_id(i)
        blocks.append((member, block, moved))
        for sample in _rows(block.samples):
            samples.setdefault(sample, None)
    samples = list(samples)
    if sort:
        samples = sorted(samples)
    sample_index = {sample: s for s, sample in enumerate(samples)}

    properties = []
    property_map = {}
    if selection is None:
        for member, block, moved in blocks:
            for p, prop in enumerate(_rows(block.properties)):
                property_map[(member, p)] = len(properties)
                properties.append((*moved, *prop))
    else:
        old = _rows(blocks[0][1].properties)
        for entry in selection:
            for prop in old:
                properties.append((*entry, *prop))
        for member, block, moved in blocks:
            for p, prop in enumerate(_rows(block.properties)):
                if (*moved, *prop) in properties:
                    property_map[(member, p)] = properties.index((*moved, *prop))

    shape = _np(blocks[0][1].values).shape[1:-1]
    expected = np.full((len(samples), *shape, len(properties)), fill)
    sample_map = {}
    for member, block, _ in blocks:
        values = _np(block.values)
        for s, sample in enumerate(_rows(block.samples)):
            sample_map[(member, s)] = sample_index[sample]
            for p in range(values.shape[-1]):
                if (member, p) in property_map:
                    column = property_map[(member, p)]
                    expected[sample_index[sample], ..., column] = values[s, ..., p]

    gradients = {}
    members = [(member, block) for member, block, _ in blocks]
    for parameter in blocks[0][1].gradients_list():
        gradients[parameter] = _naive_gradient(
            parameter, members, sample_map, property_map, len(properties), fill
        )
    return samples, properties, expected, gradients


def _check_against(result, expected_blocks):
    assert len(result) == len(expected_blocks)
    for i, (samples, properties, values, gradients) in enumerate(expected_blocks):
        _check_block(result.block_by_id(i), samples, properties, values, gradients)


###############################################################################
# keys_to_samples
###############################################################################


def test_keys_to_samples():
    tensor = _tensor()
    result = tensor.keys_to_samples("key_2")

    assert result.keys.names == ["key_1"]
    assert _rows(result.keys) == [(0,), (1,), (2,)]
    block = result.block(key_1=2)
    assert block.samples.names == ["s", "key_2"]
    assert _rows(block.samples) == [
        (0, 2),
        (0, 3),
        (1, 3),
        (2, 3),
        (3, 2),
        (5, 3),
        (6, 2),
        (8, 2),
    ]
    np.testing.assert_equal(block.values[:, 0, 0], [3, 4, 4, 4, 3, 4, 3, 3])

    gradient = block.gradient("g")
    assert gradient.samples.names == ["sample", "g"]
    assert _rows(gradient.samples) == [(1, 1), (4, -2), (5, 3)]
    np.testing.assert_equal(gradient.values[:, 0, 0], [14, 13, 14])

    _check_against(result, _naive_keys_to_samples(tensor, ["key_2"]))


def test_keys_to_samples_unsorted():
    tensor = _tensor()
    result = tensor.keys_to_samples("key_2", sort_samples=False)
    block = result.block(key_1=2)
    assert _rows(block.samples) == [
        (0, 2),
        (3, 2),
        (6, 2),
        (8, 2),
        (0, 3),
        (1, 3),
        (2, 3),
        (5, 3),
    ]
    # gradient samples are sorted anyway
    assert _rows(block.gradient("g").samples) == [(1, -2), (4, 1), (7, 3)]
    _check_against(result, _naive_keys_to_samples(tensor, ["key_2"], sort=False))


@pytest.mark.parametrize("sort", [True, False])
@pytest.mark.parametrize("names", [["a"], ["b"], ["a", "b"], ["b", "a"], []])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_keys_to_samples_random(seed, names, sort):
    tensor = _random_tensor(seed)
    result = tensor.keys_to_samples(names, sort_samples=sort, fill_value=-1.5)
    _check_against(result, _naive_keys_to_samples(tensor, names, -1.5, sort))
    assert result.sample_names == ["system", "atom", *names]
    if len(names) == 2:
        assert result.keys == Labels(["_"], np.array([[0]], dtype=np.int32))


def test_keys_to_samples_new_keys_order():
    # remaining keys are in order of first appearance, not sorted
    tensor = _random_tensor(3, n_keys=8, components=False, gradients=False)
    result = tensor.keys_to_samples("a")
    expected = []
    for key in _rows(tensor.keys):
        if (key[1],) not in expected:
            expected.append((key[1],))
    assert _rows(result.keys) == expected


def test_keys_to_samples_different_properties_and_fill():
    tensor = _tensor()
    result = tensor.keys_to_samples("key_1", fill_value=np.nan)
    block = result.block(key_2=0)
    assert _rows(block.properties) == [(0,), (3,), (4,), (5,)]
    assert np.isnan(block.values[0, 0, 1])
    _check_against(result, _naive_keys_to_samples(tensor, ["key_1"], np.nan))

    # the default fill is zero
    block = tensor.keys_to_samples("key_1").block(key_2=0)
    assert block.values[0, 0, 1] == 0.0
    assert block.gradient("g").values[0, 0, 1] == 0.0


def test_fill_value_cast():
    block = TensorBlock(
        np.array([[1, 2]], dtype=np.int32),
        _labels(["s"], [[0]]),
        [],
        _labels(["p"], [[0], [1]]),
    )
    other = TensorBlock(
        np.array([[3]], dtype=np.int32),
        _labels(["s"], [[1]]),
        [],
        _labels(["p"], [[1]]),
    )
    tensor = TensorMap(_labels(["k"], [[0], [1]]), [block, other])
    result = tensor.keys_to_samples("k", fill_value=7.9)
    assert result.block().values.dtype == np.int32
    np.testing.assert_equal(result.block().values, [[1, 2], [7, 3]])


def test_keys_to_samples_labels_argument():
    tensor = _tensor()
    result = tensor.keys_to_samples(Labels.empty(["key_2"]))
    _check_against(result, _naive_keys_to_samples(tensor, ["key_2"]))

    message = (
        "invalid parameter: user provided values for the keys to move is not yet "
        "implemented, `keys_to_move` should not contain any entry when calling "
        "keys_to_samples"
    )
    with pytest.raises(MetatensorError, match=message):
        tensor.keys_to_samples(_labels(["key_2"], [[0]]))


def test_keys_to_samples_errors():
    tensor = _tensor()
    message = "invalid parameter: 'zz' is not part of the keys for this tensor map"
    with pytest.raises(MetatensorError, match=message):
        tensor.keys_to_samples("zz")
    with pytest.raises(MetatensorError, match=message):
        tensor.keys_to_samples(["key_1", "zz"])

    message = (
        "invalid parameter: can not move keys to samples if the blocks have "
        "different components labels, call components_to_properties first"
    )
    with pytest.raises(MetatensorError, match=message):
        tensor.keys_to_samples(["key_1", "key_2"])
    message = message.replace("to samples", "to properties")
    with pytest.raises(MetatensorError, match=message):
        tensor.keys_to_properties(["key_2", "key_1"])

    empty = TensorMap(Labels.empty(["key"]), [])
    message = "invalid parameter: there are no keys to move in an empty TensorMap"
    with pytest.raises(MetatensorError, match=message):
        empty.keys_to_samples("key")
    with pytest.raises(MetatensorError, match=message):
        empty.keys_to_properties("key")

    with pytest.raises(MetatensorError, match="label dimensions must be unique"):
        tensor.keys_to_samples(["key_2", "key_2"])
    with pytest.raises(TypeError, match="`keys_to_move` must be"):
        tensor.keys_to_samples([3])


def test_name_clash():
    block = TensorBlock(
        np.ones((1, 1)), _labels(["s"], [[0]]), [], _labels(["p"], [[0]])
    )
    tensor = TensorMap(_labels(["s"], [[0]]), [block])
    message = "invalid parameter: can not move 's' to the samples"
    with pytest.raises(MetatensorError, match=message):
        tensor.keys_to_samples("s")

    block = TensorBlock(
        np.ones((1, 1)), _labels(["s"], [[0]]), [], _labels(["p"], [[0]])
    )
    tensor = TensorMap(_labels(["p"], [[0]]), [block])
    message = "invalid parameter: can not move 'p' to the properties"
    with pytest.raises(MetatensorError, match=message):
        tensor.keys_to_properties("p")


def _nested_gradients_tensor():
    block = TensorBlock(
        np.ones((1, 1)), _labels(["s"], [[0]]), [], _labels(["p"], [[0]])
    )
    gradient = TensorBlock(
        np.ones((1, 1)), _labels(["sample"], [[0]]), [], _labels(["p"], [[0]])
    )
    gradient.add_gradient(
        "h",
        TensorBlock(
            np.ones((1, 1)), _labels(["sample"], [[0]]), [], _labels(["p"], [[0]])
        ),
    )
    block.add_gradient("g", gradient)
    return TensorMap(_labels(["k"], [[0]]), [block])


def test_gradients_of_gradients():
    tensor = _nested_gradients_tensor()
    message = "gradient of gradients are not supported yet in keys_to_samples"
    with pytest.raises(MetatensorError, match=message):
        tensor.keys_to_samples("k")
    message = "gradient of gradients are not supported yet in keys_to_properties"
    with pytest.raises(MetatensorError, match=message):
        tensor.keys_to_properties("k")


def test_info_preserved():
    from metatensor import _tensor_keys

    tensor = _tensor()
    tensor.set_info("creator", "me")
    tensor.set_info("units", "eV")
    expected = [("creator", "me"), ("units", "eV")]
    for result in [
        tensor.keys_to_samples("key_2"),
        tensor.keys_to_properties("key_1", fill_value=1.0),
        tensor.components_to_properties("c"),
        _tensor_keys.keys_to_samples(tensor, "key_2"),
        _tensor_keys.keys_to_properties(tensor, "key_1"),
        _tensor_keys.components_to_properties(tensor, ["c"]),
    ]:
        assert list(result.info().items()) == expected


def test_no_shared_memory():
    tensor = _random_tensor(9)
    for result in [
        tensor.keys_to_samples([]),
        tensor.keys_to_properties([]),
        tensor.keys_to_samples("a"),
        tensor.keys_to_properties("b"),
        tensor.components_to_properties("c"),
    ]:
        for i in range(len(result)):
            block = result.block_by_id(i)
            block.values[:] = 1e6
            block.gradient("positions").values[:] = 1e6

    for i in range(len(tensor)):
        block = tensor.block_by_id(i)
        assert np.all(block.values < 1)
        assert np.all(block.gradient("positions").values < 1)


def test_all_keys_moved():
    tensor = _random_tensor(10, components=False)
    expected = Labels(["_"], np.array([[0]], dtype=np.int32))
    assert tensor.keys_to_samples(["a", "b"]).keys == expected
    assert tensor.keys_to_properties(("b", "a")).keys == expected

    single = TensorMap(_labels(["k"], [[4]]), [tensor.block_by_id(0).copy()])
    result = single.keys_to_properties("k")
    assert result.keys == expected
    assert _rows(result.block().properties) == [
        (4, *p) for p in _rows(tensor.block_by_id(0).properties)
    ]


###############################################################################
# keys_to_properties
###############################################################################


def test_keys_to_properties():
    tensor = _tensor()
    result = tensor.keys_to_properties("key_1")

    assert result.keys.names == ["key_2"]
    assert _rows(result.keys) == [(0,), (2,), (3,)]
    block = result.block(key_2=0)
    assert block.properties.names == ["key_1", "p"]
    assert _rows(block.properties) == [(0, 0), (1, 3), (1, 4), (1, 5)]
    assert _rows(block.samples) == [(0,), (1,), (2,), (3,), (4,)]
    np.testing.assert_equal(
        block.values[:, 0, :],
        [[1, 2, 2, 2], [0, 2, 2, 2], [1, 0, 0, 0], [0, 2, 2, 2], [1, 0, 0, 0]],
    )
    gradient = block.gradient("g")
    assert _rows(gradient.samples) == [(0, -2), (0, 3), (3, -2), (4, 3)]
    np.testing.assert_equal(
        gradient.values[:, 0, :],
        [[11, 12, 12, 12], [0, 12, 12, 12], [0, 12, 12, 12], [11, 0, 0, 0]],
    )

    _check_against(result, _naive_keys_to_properties(tensor, ["key_1"]))


def test_keys_to_properties_unsorted():
    tensor = _tensor()
    result = tensor.keys_to_properties("key_1", sort_samples=False)
    block = result.block(key_2=0)
    assert _rows(block.samples) == [(0,), (2,), (4,), (1,), (3,)]
    # gradient samples are still sorted
    assert _rows(block.gradient("g").samples) == [(0, -2), (0, 3), (2, 3), (4, -2)]
    _check_against(result, _naive_keys_to_properties(tensor, ["key_1"], sort=False))


@pytest.mark.parametrize("sort", [True, False])
@pytest.mark.parametrize("names", [["a"], ["b"], ["a", "b"], ["b", "a"], []])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_keys_to_properties_random(seed, names, sort):
    tensor = _random_tensor(seed)
    result = tensor.keys_to_properties(names, sort_samples=sort, fill_value=np.nan)
    _check_against(result, _naive_keys_to_properties(tensor, names, np.nan, sort))
    assert result.property_names == [*names, "n"]

    # the same with empty Labels
    result = tensor.keys_to_properties(Labels.empty(names), sort_samples=sort)
    _check_against(result, _naive_keys_to_properties(tensor, names, 0.0, sort))


def test_keys_to_properties_selection():
    tensor = _random_tensor(4, components=False)
    # give all blocks the same properties
    blocks = []
    for i in range(len(tensor)):
        block = tensor.block_by_id(i)
        values = np.asarray(block.values)[:, :1]
        new = TensorBlock(values.copy(), block.samples, [], _labels(["n"], [[2]]))
        gradient = block.gradient("positions")
        new.add_gradient(
            "positions",
            TensorBlock(
                np.asarray(gradient.values)[..., :1].copy(),
                gradient.samples,
                gradient.components,
                new.properties,
            ),
        )
        blocks.append(new)
    tensor = TensorMap(tensor.keys, blocks)

    key_values = sorted({key[0] for key in _rows(tensor.keys)})
    # reversed order, one missing key and one key not in the map
    selection = [(99,)] + [(v,) for v in key_values[1:][::-1]]
    result = tensor.keys_to_properties(_labels(["a"], selection), fill_value=np.nan)
    _check_against(
        result,
        _naive_keys_to_properties(tensor, ["a"], np.nan, True, selection),
    )
    for i in range(len(result)):
        assert _rows(result.block_by_id(i).properties) == [(v, 2) for (v,) in selection]

    # blocks with different properties
    tensor = _tensor()
    message = (
        "invalid parameter: can not provide values for the keys to move to "
        "properties if the blocks have different property labels"
    )
    with pytest.raises(MetatensorError, match=message):
        tensor.keys_to_properties(_labels(["key_1"], [[0], [1]]))


def test_keys_to_properties_zero_properties():
    blocks = [
        TensorBlock(
            np.ones((2, 0)), _labels(["s"], [[0], [1]]), [], Labels.empty(["p"])
        ),
        TensorBlock(np.ones((1, 1)), _labels(["s"], [[2]]), [], _labels(["p"], [[0]])),
    ]
    tensor = TensorMap(_labels(["k"], [[0], [1]]), blocks)
    result = tensor.keys_to_properties("k")
    block = result.block()
    assert _rows(block.properties) == [(1, 0)]
    assert _rows(block.samples) == [(0,), (1,), (2,)]
    np.testing.assert_equal(block.values, [[0], [0], [1]])


def test_keys_to_properties_inverse():
    """Slicing the result of keys_to_properties back gives the original blocks."""
    tensor = _random_tensor(5)
    result = tensor.keys_to_properties("a", sort_samples=False)
    groups = _groups(tensor, ["a"])
    for g, members in enumerate(groups.values()):
        merged = result.block_by_id(g)
        properties = _rows(merged.properties)
        samples = _rows(merged.samples)
        gradient = merged.gradient("positions")
        gradient_rows = _rows(gradient.samples)
        for i, (a,) in members:
            block = tensor.block_by_id(i)
            columns = [properties.index((a, *p)) for p in _rows(block.properties)]
            rows = [samples.index(s) for s in _rows(block.samples)]
            np.testing.assert_equal(
                np.asarray(merged.values)[rows][..., columns], block.values
            )
            original = block.gradient("positions")
            grad_rows = [
                gradient_rows.index((rows[r[0]], *r[1:]))
                for r in _rows(original.samples)
            ]
            np.testing.assert_equal(
                np.asarray(gradient.values)[grad_rows][..., columns],
                original.values,
            )


###############################################################################
# components_to_properties
###############################################################################


def test_components_to_properties_simple():
    tensor = _tensor()
    result = tensor.components_to_properties("c")
    block = result.block(key_1=2, key_2=2)
    assert block.properties.names == ["c", "p"]
    assert _rows(block.properties) == [(0, 0), (1, 0), (2, 0)]
    assert block.components == []
    assert block.values.shape == (4, 3)
    assert block.gradient("g").values.shape == (1, 3)

    # after this, keys_to_samples works
    result.keys_to_samples("key_1")


###############################################################################
# torch
###############################################################################


def _to_torch(tensor, torch, requires_grad=False):
    tensor = tensor.to(arrays="torch")
    if not requires_grad:
        return tensor
    blocks = []
    for i in range(len(tensor)):
        block = tensor.block_by_id(i)
        values = block.values.clone().requires_grad_(True)
        new = TensorBlock(values, block.samples, block.components, block.properties)
        for parameter in block.gradients_list():
            new.add_gradient(parameter, block.gradient(parameter).copy())
        blocks.append(new)
    return TensorMap(tensor.keys, blocks)


def _check_torch_labels(tensor, torch):
    assert isinstance(tensor.keys.values, torch.Tensor)
    for i in range(len(tensor)):
        block = tensor.block_by_id(i)
        assert isinstance(block.values, torch.Tensor)
        assert isinstance(block.samples.values, torch.Tensor)
        assert isinstance(block.properties.values, torch.Tensor)
        for parameter in block.gradients_list():
            gradient = block.gradient(parameter)
            assert isinstance(gradient.values, torch.Tensor)
            assert isinstance(gradient.samples.values, torch.Tensor)


@pytest.mark.parametrize("sort", [True, False])
def test_torch(torch, sort):
    tensor = _random_tensor(7)
    torch_tensor = _to_torch(tensor, torch)

    result = torch_tensor.keys_to_samples("a", sort_samples=sort, fill_value=np.nan)
    _check_torch_labels(result, torch)
    _check_against(result, _naive_keys_to_samples(tensor, ["a"], np.nan, sort))

    result = torch_tensor.keys_to_properties(["b", "a"], sort_samples=sort)
    _check_torch_labels(result, torch)
    assert result.keys == Labels(["_"], np.array([[0]], dtype=np.int32))
    _check_against(result, _naive_keys_to_properties(tensor, ["b", "a"], 0.0, sort))


def test_torch_selection(torch):
    tensor = _tensor()
    blocks = [tensor.block_by_id(i).copy() for i in (2, 3)]
    keys = _labels(["key_1", "key_2"], [[2, 2], [2, 3]])
    tensor = TensorMap(keys, blocks)
    torch_tensor = _to_torch(tensor, torch)

    selection = Labels(["key_2"], torch.tensor([[3], [7], [2]], dtype=torch.int32))
    result = torch_tensor.keys_to_properties(selection, fill_value=-1.0)
    _check_torch_labels(result, torch)
    selection = [(3,), (7,), (2,)]
    _check_against(
        result,
        _naive_keys_to_properties(tensor, ["key_2"], -1.0, True, selection),
    )

    message = "user provided values for the keys to move is not yet implemented"
    with pytest.raises(MetatensorError, match=message):
        torch_tensor.keys_to_samples(
            Labels(["key_2"], torch.tensor([[3]], dtype=torch.int32))
        )


def test_torch_autograd(torch):
    tensor = _random_tensor(8)
    torch_tensor = _to_torch(tensor, torch, requires_grad=True)
    inputs = [torch_tensor.block_by_id(i).values for i in range(len(torch_tensor))]
    weights = torch.arange(1.0, 100.0, dtype=torch.float64)

    for function in [
        lambda t: t.keys_to_samples("a"),
        lambda t: t.keys_to_properties("b", sort_samples=False),
        lambda t: t.components_to_properties("c"),
    ]:
        for x in inputs:
            x.grad = None
        result = function(torch_tensor)
        loss = 0
        for i in range(len(result)):
            values = result.block_by_id(i).values
            assert values.requires_grad
            loss = loss + (values * weights[: values.shape[-1]]).sum()
        loss.backward()
        for x in inputs:
            # each input value appears exactly once in the output
            assert x.grad is not None
            assert torch.all(x.grad >= 1)
        # the total gradient is the sum of weights over all output cells that
        # come from an input
        total = sum(float(x.grad.sum()) for x in inputs)
        expected = 0.0
        for i in range(len(result)):
            values = result.block_by_id(i).values
            n = values.shape[-1]
            mask = ~torch.isnan(values) & (values != 0)
            expected += float((mask * weights[:n]).sum())
        assert total == pytest.approx(expected)


###############################################################################
# real files
###############################################################################


def _load(data_dir, name):
    if not hasattr(metatensor, "load"):
        pytest.skip("metatensor.load is not available")
    return metatensor.load(str(data_dir / name))


@pytest.mark.parametrize("name", ["data.mts", "qm7-spherical-expansion.mts"])
def test_real_files_keys_to_properties(data_dir, name):
    tensor = _load(data_dir, name)
    tensor.set_info("file", name)
    result = tensor.keys_to_properties("neighbor_type")
    assert result.info() == {**tensor.info()}
    _check_against(result, _naive_keys_to_properties(tensor, ["neighbor_type"]))


@pytest.mark.parametrize("name", ["data.mts", "qm7-spherical-expansion.mts"])
def test_real_files_keys_to_samples(data_dir, name):
    tensor = _load(data_dir, name)
    result = tensor.keys_to_samples("center_type", sort_samples=False)
    _check_against(result, _naive_keys_to_samples(tensor, ["center_type"], 0.0, False))
    result = tensor.keys_to_samples(["neighbor_type", "center_type"])
    assert result.sample_names == ["system", "atom", "neighbor_type", "center_type"]
    _check_against(
        result, _naive_keys_to_samples(tensor, ["neighbor_type", "center_type"])
    )
