import copy
import sys

import numpy as np
import pytest

from metatensor import Labels, LabelsEntry, MetatensorError, TensorBlock, TensorMap


def _block(values, samples, n_properties, components=(), gradient_rows=0):
    n_samples = len(samples)
    comps = [Labels.range(name, n) for name, n in components]
    shape = (n_samples, *[n for _, n in components], n_properties)
    block = TensorBlock(
        np.full(shape, float(values)),
        Labels(["s"], np.array(samples, dtype=np.int32).reshape(-1, 1)),
        comps,
        Labels.range("p", n_properties),
    )
    if gradient_rows:
        gradient = TensorBlock(
            np.full((gradient_rows, *shape[1:]), 10.0 + values),
            Labels(
                ["sample", "g"],
                np.array([[i % n_samples, i] for i in range(gradient_rows)]),
            ),
            comps,
            block.properties,
        )
        block.add_gradient("g", gradient)
    return block


@pytest.fixture
def tensor():
    """Four blocks, with the same shapes as the reference test fixture."""
    blocks = [
        _block(1, [0, 2, 4], 1, [("c", 1)], gradient_rows=2),
        _block(2, [0, 1, 3], 3, [("c", 1)], gradient_rows=3),
        _block(3, [0, 3, 6, 8], 1, [("c", 3)], gradient_rows=1),
        _block(4, [0, 1, 2, 5], 1, [("c", 3)], gradient_rows=2),
    ]
    keys = Labels(
        ["key_1", "key_2"], np.array([[0, 0], [1, 0], [2, 2], [2, 3]], dtype=np.int32)
    )
    return TensorMap(keys, blocks)


def test_constructor(tensor):
    assert len(tensor) == 4
    assert tensor.keys.names == ["key_1", "key_2"]
    assert tensor.sample_names == ["s"]
    assert tensor.component_names == ["c"]
    assert tensor.property_names == ["p"]
    assert tensor.device == "cpu"
    assert tensor.dtype == np.float64
    assert not tensor.is_view


def test_blocks_not_consumed():
    block = _block(1, [0, 1], 2, gradient_rows=1)
    keys = Labels.range("key", 1)
    tensor = TensorMap(keys, [block])

    # the block given to the map is still usable
    assert block.values.shape == (2, 2)
    assert tensor.keys is keys
    assert tensor.block(0).values is block.values
    assert tensor.block(0).samples is block.samples

    # the same block can be used in another map or twice in the same map
    other = TensorMap(Labels.range("key", 2), [block, block])
    assert other.block(1).values is block.values

    # adding gradients to the user's block does not change the map
    gradient = TensorBlock(
        np.zeros((1, 2)), Labels(["sample"], np.array([[0]])), [], block.properties
    )
    block.add_gradient("other", gradient)
    assert tensor.block(0).gradients_list() == ["g"]

    # views can be used to build new maps
    third = TensorMap(keys, [tensor.block(0)])
    assert third.block(0).values is block.values
    assert third.block(0).samples is not None


def test_constructor_types():
    block = _block(1, [0], 1)
    message = "`keys` must be metatensor Labels, not <class 'str'>"
    with pytest.raises(TypeError, match=message):
        TensorMap("keys", [block])

    message = "`blocks` elements must be metatensor TensorBlock, not <class 'str'>"
    with pytest.raises(TypeError, match=message):
        TensorMap(Labels.range("key", 1), ["block"])


def test_constructor_errors():
    message = (
        "invalid parameter: expected the same number of blocks as the number of "
        "entries in the keys \\(2\\) when creating a `TensorMap`, got 1"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorMap(Labels.range("key", 2), [_block(1, [0], 1)])

    keys = Labels.range("key", 2)
    first = _block(1, [0], 1)

    other = TensorBlock(
        first.values.astype(np.float32), first.samples, [], first.properties
    )
    message = (
        "invalid parameter: invalid tensor map: got blocks with different dtypes, "
        "at least 'f64' and 'f32' were detected"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorMap(keys, [first, other])

    other = TensorBlock(
        np.zeros((1, 1)), Labels(["b"], np.array([[0]])), [], first.properties
    )
    message = "all blocks must have the same sample dimensions, got \\[b\\] and \\[s\\]"
    with pytest.raises(MetatensorError, match=message):
        TensorMap(keys, [first, other])

    other = _block(1, [0], 1, [("c", 1)])
    message = (
        "all blocks must contains the same set of components, the current block "
        "has 1 components while the first block has 0"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorMap(keys, [first, other])

    message = (
        "all blocks must have the same component dimensions, got \\[d\\] and \\[c\\]"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorMap(keys, [_block(1, [0], 1, [("c", 1)]), _block(1, [0], 1, [("d", 1)])])

    other = TensorBlock(np.zeros((1, 1)), first.samples, [], Labels.range("q", 1))
    message = (
        "invalid parameter: all blocks must have the same property dimensions, "
        "got \\[q\\] and \\[p\\]"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorMap(keys, [first, other])

    message = (
        "invalid parameter: all blocks must have the same set of gradients, with "
        "the same sample, property and component dimensions, and the same must be "
        "true for gradients of gradients"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorMap(keys, [first, _block(1, [0], 1, gradient_rows=1)])
    with pytest.raises(MetatensorError, match=message):
        TensorMap(keys, [_block(1, [0], 1, gradient_rows=1), first])

    # different gradient sample names
    with_gradient = _block(1, [0], 1, gradient_rows=1)
    other = _block(1, [0], 1)
    other.add_gradient(
        "g",
        TensorBlock(
            np.zeros((1, 1)),
            Labels(["sample", "other"], np.array([[0, 0]])),
            [],
            other.properties,
        ),
    )
    with pytest.raises(MetatensorError, match=message):
        TensorMap(keys, [with_gradient, other])

    # different gradient of gradients
    nested = _block(1, [0], 1)
    gradient = TensorBlock(
        np.zeros((1, 1)),
        Labels(["sample", "g"], np.array([[0, 0]])),
        [],
        nested.properties,
    )
    gradient.add_gradient(
        "h",
        TensorBlock(
            np.zeros((1, 1)), Labels(["sample"], np.array([[0]])), [], nested.properties
        ),
    )
    nested.add_gradient("g", gradient)
    with pytest.raises(MetatensorError, match=message):
        TensorMap(keys, [with_gradient, nested])

    # gradients are compared without order
    a = _block(1, [0], 1, gradient_rows=1)
    b = _block(1, [0], 1)
    for parameter in ["x", "g"]:
        a_gradient = TensorBlock(
            np.zeros((1, 1)), Labels(["sample"], np.array([[0]])), [], a.properties
        )
        if parameter == "x":
            a.add_gradient("x", a_gradient)
    b.add_gradient(
        "x",
        TensorBlock(
            np.zeros((1, 1)), Labels(["sample"], np.array([[0]])), [], b.properties
        ),
    )
    b.add_gradient(
        "g",
        TensorBlock(
            np.zeros((1, 1)),
            Labels(["sample", "g"], np.array([[0, 0]])),
            [],
            b.properties,
        ),
    )
    TensorMap(keys, [a, b])


def test_constructor_check_order():
    keys = Labels.range("key", 2)
    first = _block(1, [0], 1)
    # dtypes are checked before names
    other = TensorBlock(
        np.zeros((1, 1), dtype=np.float32),
        Labels(["b"], np.array([[0]])),
        [],
        first.properties,
    )
    with pytest.raises(MetatensorError, match="different dtypes"):
        TensorMap(keys, [first, other])

    # samples names are checked before properties names
    other = TensorBlock(
        np.zeros((1, 1)), Labels(["b"], np.array([[0]])), [], Labels.range("q", 1)
    )
    with pytest.raises(MetatensorError, match="same sample dimensions"):
        TensorMap(keys, [first, other])


def test_empty():
    tensor = TensorMap(Labels.empty(["key"]), [])
    assert len(tensor) == 0
    assert tensor.sample_names == []
    assert tensor.component_names == []
    assert tensor.property_names == []
    assert tensor.device == "cpu"
    assert tensor.dtype is None
    assert tensor.blocks() == []
    assert tensor.blocks(key=3) == []

    message = "there are no blocks in this TensorMap"
    with pytest.raises(ValueError, match=message):
        tensor.block(key=3)
    with pytest.raises(ValueError, match=message):
        tensor.block()

    message = "invalid parameter: 'bad' in selection is not part of these Labels"
    with pytest.raises(MetatensorError, match=message):
        tensor.blocks(bad=3)

    message = "block index out of bounds: we have 0 blocks but the index is 3"
    with pytest.raises(IndexError, match=message):
        tensor.block_by_id(3)

    assert list(tensor) == []
    assert repr(tensor) == "TensorMap with 0 blocks\n    keys: [key]\n    blocks:"

    # zero-name keys
    block = _block(1, [0], 1)
    tensor = TensorMap(Labels([], np.empty((1, 0), dtype=np.int32)), [block])
    assert len(tensor) == 1
    assert tensor.block().values is block.values


def test_block_by_id(tensor):
    block = tensor.block_by_id(1)
    assert block.is_view
    assert block.values[0, 0, 0] == 2.0
    # a new view each time, around the same data
    assert tensor.block_by_id(1) is not block
    assert tensor.block_by_id(1).values is block.values
    assert tensor.block_by_id(np.int64(1)).values is block.values
    assert tensor.block_by_id(1).gradient("g").values is block.gradient("g").values

    message = "block index out of bounds: we have 4 blocks but the index is 4"
    with pytest.raises(IndexError, match=message):
        tensor.block_by_id(4)

    message = (
        "invalid parameter: block index out of bounds: we have 4 blocks but the "
        "index is 18446744073709551615"
    )
    with pytest.raises(MetatensorError, match=message):
        tensor.block_by_id(-1)
    with pytest.raises(MetatensorError, match=message):
        tensor.blocks(-1)

    blocks = tensor.blocks_by_id([3, 0])
    assert [b.values[0, 0, 0] for b in blocks] == [4.0, 1.0]

    message = (
        "cannot add gradient on this block since it is a view inside a TensorMap or "
        "another TensorBlock"
    )
    with pytest.raises(ValueError, match=message):
        block.add_gradient("other", block.gradient("g").copy())


def test_iteration(tensor):
    assert not hasattr(TensorMap, "__iter__")
    values = [block.values[0, 0, 0] for block in tensor]
    assert values == [1.0, 2.0, 3.0, 4.0]

    items = list(tensor.items())
    assert len(items) == 4
    for (key, block), expected in zip(items, tensor.keys):
        assert isinstance(key, LabelsEntry)
        assert key == expected
        assert block.is_view
    assert tuple(items[2][0]) == (2, 2)
    assert items[2][1].values[0, 0, 0] == 3.0


def test_block_selection(tensor):
    assert tensor.block(2).values[0, 0, 0] == 3.0
    assert tensor[2].values[0, 0, 0] == 3.0
    assert tensor.block(key_1=1).values[0, 0, 0] == 2.0
    assert tensor.block({"key_1": 2, "key_2": 3}).values[0, 0, 0] == 4.0
    assert tensor.block({"key_1": np.int32(2), "key_2": 3}).values[0, 0, 0] == 4.0
    assert tensor[{"key_1": 2, "key_2": 3}].values[0, 0, 0] == 4.0
    assert tensor.block(tensor.keys[3]).values[0, 0, 0] == 4.0
    selection = Labels(["key_2"], np.array([[2]]))
    assert tensor.block(selection).values[0, 0, 0] == 3.0
    assert tensor[selection].values[0, 0, 0] == 3.0
    assert tensor.block(key_1=1).is_view

    message = "couldn't find any block matching \\(key_1=3\\)"
    with pytest.raises(ValueError, match=message):
        tensor.block(key_1=3)

    message = (
        "more than one block matched \\(key_2=0\\), use `TensorMap.blocks` to get "
        "all of them"
    )
    with pytest.raises(ValueError, match=message):
        tensor.block(key_2=0)

    message = "invalid parameter: 'not_a_key' in selection is not part of these Labels"
    with pytest.raises(MetatensorError, match=message):
        tensor.block(not_a_key=3)

    message = (
        "expected integer values in selection, got key_1=1.0 of type <class 'float'>"
    )
    with pytest.raises(TypeError, match=message):
        tensor.block(key_1=1.0)

    for selection in ["key", np.int64(1), (0, 0), [0]]:
        message = f"invalid type for block selection: {type(selection)}"
        with pytest.raises(TypeError, match=message):
            tensor.block(selection)

    with pytest.raises(ValueError, match="more than one block matched \\(\\)"):
        tensor.block()

    # only the first entry of the selection is shown in errors
    selection = Labels(["key_1"], np.array([[7], [8]]))
    with pytest.raises(
        ValueError, match="couldn't find any block matching \\(key_1=7\\)$"
    ):
        tensor.block(selection)
    selection = Labels(["key_1"], np.array([[0], [1]]))
    with pytest.raises(ValueError, match="more than one block matched \\(key_1=0\\),"):
        tensor.block(selection)

    # bools are integers
    assert tensor.block(True).values[0, 0, 0] == 2.0
    assert tensor.block(key_1=True).values[0, 0, 0] == 2.0

    single = TensorMap(Labels.range("key", 1), [tensor.block(0)])
    assert single.block().values is tensor.block(0).values


def test_blocks_selection(tensor):
    blocks = tensor.blocks()
    assert len(blocks) == 4
    assert all(b.is_view for b in blocks)

    assert [b.values[0, 0, 0] for b in tensor.blocks(key_2=0)] == [1.0, 2.0]
    assert [b.values[0, 0, 0] for b in tensor.blocks({"key_1": 2})] == [3.0, 4.0]
    assert [b.values[0, 0, 0] for b in tensor.blocks(2)] == [3.0]
    assert len(tensor.blocks(tensor.keys[0])) == 1

    # with all the names, the selection order is used
    selection = Labels(["key_1", "key_2"], np.array([[2, 3], [0, 0]]))
    assert [b.values[0, 0, 0] for b in tensor.blocks(selection)] == [4.0, 1.0]

    message = "Couldn't find any block matching '\\(key_1=7\\)'"
    with pytest.raises(ValueError, match=message):
        tensor.blocks(key_1=7)

    with pytest.raises(TypeError, match="invalid type for block selection"):
        tensor.blocks([0, 1])


def test_info(tensor):
    assert tensor.info() == {}
    assert tensor.get_info("creator") is None

    tensor.set_info("creator", "me")
    tensor.set_info("alpha", "1")
    tensor.set_info("creator", "you")
    assert tensor.get_info("creator") == "you"
    assert tensor.info() == {"creator": "you", "alpha": "1"}
    assert list(tensor.info()) == ["creator", "alpha"]

    # the returned dict is a copy
    tensor.info()["other"] = "x"
    assert tensor.get_info("other") is None

    with pytest.raises(TypeError):
        tensor.set_info("value", 3)
    with pytest.raises(TypeError):
        tensor.set_info(3, "value")

    assert tensor.copy().info() == tensor.info()
    assert tensor.copy(deep=False).info() == tensor.info()
    assert tensor.to(np.float32).info() == tensor.info()

    # copies own their info
    copied = tensor.copy()
    copied.set_info("new", "value")
    assert tensor.get_info("new") is None


def test_copy(tensor):
    for deep_copy in [tensor.copy(), tensor.copy(deep=True), copy.deepcopy(tensor)]:
        assert deep_copy is not tensor
        assert deep_copy.keys is tensor.keys
        for block, original in zip(deep_copy, tensor):
            assert block.values is not original.values
            np.testing.assert_equal(block.values, original.values)
            assert block.samples is original.samples
            assert block.properties is original.properties
            assert block.gradient("g").values is not original.gradient("g").values
        deep_copy.block(0).values[:] = 42.0
        assert tensor.block(0).values[0, 0, 0] == 1.0

    for shallow_copy in [tensor.copy(deep=False), copy.copy(tensor)]:
        assert shallow_copy.keys is tensor.keys
        for block, original in zip(shallow_copy, tensor):
            assert block.values is original.values
            assert block.gradient("g").values is original.gradient("g").values


def test_unhashable(tensor):
    with pytest.raises(TypeError, match="unhashable"):
        hash(tensor)


def test_pos(tensor):
    assert +tensor is tensor


def test_operators_need_operations(tensor, monkeypatch):
    # simulate an environment without metatensor-operations
    monkeypatch.setitem(sys.modules, "metatensor_operations", None)

    for operation in [
        lambda: tensor + tensor,
        lambda: tensor - tensor,
        lambda: tensor * 2,
        lambda: tensor / 2,
        lambda: tensor @ tensor,
        lambda: tensor**2,
        lambda: -tensor,
        lambda: tensor == tensor,
        lambda: tensor != tensor,
    ]:
        with pytest.raises(ImportError, match="requires the metatensor-operations"):
            operation()

    # unary + does not need operations
    assert +tensor is tensor


def test_operators_delegate(tensor, monkeypatch):
    calls = []

    class FakeOperations:
        def __getattr__(self, name):
            def function(*args):
                calls.append((name, args))
                return name

            return function

    monkeypatch.setitem(sys.modules, "metatensor_operations", FakeOperations())
    other = tensor.copy()
    assert tensor + other == "add"
    assert tensor - 3 == "subtract"
    assert tensor * 3 == "multiply"
    assert tensor / 3 == "divide"
    assert tensor @ other == "dot"
    assert tensor**3 == "pow"
    assert -tensor == "multiply"
    assert calls[-1][1] == (tensor, -1)
    assert (tensor == other) == "equal"
    assert calls[-1][1] == (tensor, other)
    assert (tensor != other) is False


def test_print(tensor):
    expected = """TensorMap with 4 blocks
    keys: [key_1, key_2]
    blocks:
       0  0   => TensorBlock with shape (3, 1, 1)
       1  0   => TensorBlock with shape (3, 1, 3)
       2  2   => TensorBlock with shape (4, 3, 1)
       2  3   => TensorBlock with shape (4, 3, 1)"""
    assert repr(tensor) == expected
    assert str(tensor) == expected
    assert tensor.print(-1) == expected
    assert tensor.print(4) == expected

    expected = """TensorMap with 4 blocks
    keys: [key_1, key_2]
    blocks:
       0  0   => TensorBlock with shape (3, 1, 1)
       1  0   => TensorBlock with shape (3, 1, 3)
             ..."""
    assert tensor.print(2) == expected


def test_print_wide_and_single():
    blocks = [_block(i, [0], 1) for i in range(10)]
    keys = Labels(
        ["a", "long_name"], np.array([[i, 100 * i] for i in range(10)], dtype=np.int32)
    )
    tensor = TensorMap(keys, blocks)
    lines = str(tensor).split("\n")
    assert lines[0] == "TensorMap with 10 blocks"
    # 7 rows and a truncation line
    assert len(lines) == 3 + 7 + 1
    assert lines[3] == "       0   0    => TensorBlock with shape (1, 1)"
    assert lines[9] == "       6  600   => TensorBlock with shape (1, 1)"
    assert lines[10] == " " * 15 + "..."
    assert len(repr(tensor).split("\n")) == 3 + 10
    assert repr(tensor).split("\n")[-1] == (
        "       9  900   => TensorBlock with shape (1, 1)"
    )

    single = TensorMap(Labels.range("key", 1), [_block(1, [0], 1)])
    assert repr(single) == (
        "TensorMap with 1 block\n    keys: [key]\n    blocks:\n"
        "       0   => TensorBlock with shape (1, 1)"
    )


def test_repr_html(tensor):
    html = tensor._repr_html_()
    assert html.startswith("<div>")
    assert "TensorMap" in html
    assert "key_1" in html
    assert "(4, 3, 1)" in html


def test_to_numpy(tensor):
    converted = tensor.to(np.float32)
    assert converted is not tensor
    assert converted.dtype == np.float32
    assert converted.keys is tensor.keys
    for block in converted:
        assert block.dtype == np.float32
        assert block.gradient("g").dtype == np.float32

    message = "unexpected type in `TensorMap.to`: <class 'list'>"
    with pytest.raises(TypeError, match=message):
        tensor.to([])

    message = "can not give a device twice in `TensorMap.to`"
    with pytest.raises(ValueError, match=message):
        tensor.to("cpu", device="cpu")

    with pytest.raises(ValueError, match="can not move numpy array to non-cpu"):
        tensor.to("cuda")

    empty = TensorMap(Labels.empty(["key"]), [])
    assert len(empty.to(np.float32)) == 0


def test_keys_to_methods_delegate(tensor):
    # only checks that the methods are wired to the implementation
    tensor.set_info("creator", "me")
    moved = tensor.keys_to_samples("key_2")
    assert moved.keys.names == ["key_1"]
    assert "key_2" in moved.sample_names
    assert moved.get_info("creator") == "me"

    moved = tensor.keys_to_properties("key_1")
    assert moved.keys.names == ["key_2"]
    assert moved.property_names == ["key_1", "p"]

    moved = tensor.components_to_properties("c")
    assert moved.component_names == []
    assert moved.property_names == ["c", "p"]
    assert moved.get_info("creator") == "me"


@pytest.mark.parametrize("protocol", [4, 5])
def test_pickle(tensor, protocol):
    import pickle

    tensor.set_info("creator", "me")
    reduced = tensor.__reduce_ex__(protocol)
    assert reduced[0] == TensorMap._from_pickle

    loaded = pickle.loads(pickle.dumps(tensor, protocol=protocol))
    assert isinstance(loaded, TensorMap)
    assert loaded.keys == tensor.keys
    assert loaded.get_info("creator") == "me"
    for block, expected in zip(loaded, tensor):
        np.testing.assert_equal(block.values, expected.values)
        assert block.samples == expected.samples
        np.testing.assert_equal(
            block.gradient("g").values, expected.gradient("g").values
        )


def test_save_load(tensor, tmp_path):
    tensor.set_info("creator", "me")
    buffer = tensor.save_buffer()
    assert isinstance(buffer, memoryview)
    loaded = TensorMap.load_buffer(buffer)
    assert loaded.keys == tensor.keys
    assert loaded.info() == {"creator": "me"}

    path = tmp_path / "tensor.mts"
    tensor.save(path)
    loaded = TensorMap.load(path)
    assert loaded.keys == tensor.keys
    np.testing.assert_equal(loaded.block(3).values, tensor.block(3).values)

    path = tmp_path / "tensor-numpy.mts"
    tensor.save(path, use_numpy=True)
    loaded = TensorMap.load(path, use_numpy=True)
    np.testing.assert_equal(loaded.block(3).values, tensor.block(3).values)
    assert loaded.get_info("creator") == "me"


def test_load_reference_file(data_dir):
    tensor = TensorMap.load(data_dir / "data.mts")
    assert len(tensor) == 27
    for block in tensor:
        assert block.is_view
        assert block.values.shape[0] == len(block.samples)
    # the map can be rebuilt from its own views
    rebuilt = TensorMap(tensor.keys, tensor.blocks())
    assert len(rebuilt) == 27
    assert repr(rebuilt) == repr(tensor)
