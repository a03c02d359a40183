import copy
import sys

import numpy as np
import pytest

import metatensor
from metatensor import Labels, MetatensorError, TensorBlock


def _block(n_samples=3, n_properties=2):
    return TensorBlock(
        values=np.full((n_samples, 3, n_properties), 2.0),
        samples=Labels.range("s", n_samples),
        components=[Labels.range("c", 3)],
        properties=Labels.range("p", n_properties),
    )


def _gradient(block, parameter="g", n_rows=2, extra=None):
    components = ([extra] if extra is not None else []) + block.components
    shape = (n_rows, *[len(c) for c in components], len(block.properties))
    return TensorBlock(
        values=np.arange(np.prod(shape), dtype=np.float64).reshape(shape),
        samples=Labels(
            ["sample", parameter],
            np.array([[i % len(block), i] for i in range(n_rows)], dtype=np.int32),
        ),
        components=components,
        properties=block.properties,
    )


def test_basic():
    values = np.zeros((3, 2, 4))
    samples = Labels(["s"], np.array([[0], [2], [4]]))
    components = [Labels(["c"], np.array([[0], [1]]))]
    properties = Labels(["p"], np.array([[0], [1], [2], [3]]))
    block = TensorBlock(values, samples, components, properties)

    assert block.values is values
    assert block.values is block.values
    assert block.samples is samples
    assert block.components[0] is components[0]
    assert block.properties is properties
    assert block.shape == (3, 2, 4)
    assert len(block) == 3
    assert block.dtype == np.float64
    assert block.device == "cpu"
    assert not block.is_view
    assert block.gradients_list() == []

    # components can be any iterable
    block = TensorBlock(values, samples, iter(components), properties)
    assert len(block.components) == 1

    # the components list given to the user is a copy
    block.components.append(samples)
    assert len(block.components) == 1


def test_values_setter():
    block = _block()
    message = (
        "Direct assignment to `values` is not possible. "
        "Please use block.values\\[:\\] = new_values instead."
    )
    with pytest.raises(AttributeError, match=message):
        block.values = np.zeros((3, 3, 2))

    block.values[:] = 4.0
    assert np.all(block.values == 4.0)


def test_constructor_types():
    values = np.zeros((3, 2))
    samples = Labels.range("s", 3)
    properties = Labels.range("p", 2)

    message = "`samples` must be metatensor Labels, not <class 'str'>"
    with pytest.raises(TypeError, match=message):
        TensorBlock(values, "samples", [], properties)

    message = "`components` elements must be metatensor Labels, not <class 'int'>"
    with pytest.raises(TypeError, match=message):
        TensorBlock(values, samples, [1], properties)

    message = "`properties` must be metatensor Labels, not <class 'list'>"
    with pytest.raises(TypeError, match=message):
        TensorBlock(values, samples, [], ["p"])

    with pytest.raises(TypeError, match="`values` must be a numpy array"):
        TensorBlock([[0, 0], [0, 0], [0, 0]], samples, [], properties)


def test_constructor_errors():
    samples = Labels.range("s", 3)
    properties = Labels.range("p", 2)

    message = (
        "invalid parameter: invalid block: the values have 3 dimensions, but we "
        "have 2 separate labels \\(1 for samples, 0 for components and 1 for "
        "properties\\)"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(np.zeros((3, 1, 2)), samples, [], properties)

    message = (
        "invalid parameter: invalid block: the values shape along axis 0 is 4 but "
        "we have 3 sample label entries"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(np.zeros((4, 2)), samples, [], properties)

    message = (
        "invalid parameter: invalid block: some of the component dimensions "
        "appear more than once in component labels"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(
            np.zeros((3, 2, 3, 2)),
            samples,
            [Labels.range("c", 2), Labels.range("c", 3)],
            properties,
        )

    message = (
        "invalid parameter: invalid block: the values shape along axis 2 is 4 but "
        "we have 3 entries for the corresponding component"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(
            np.zeros((3, 2, 4, 2)),
            samples,
            [Labels.range("c", 2), Labels.range("d", 3)],
            properties,
        )

    message = (
        "invalid parameter: invalid block: the values shape along axis 1 is 4 but "
        "we have 2 property label entries"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(np.zeros((3, 4)), samples, [], properties)

    message = (
        "invalid parameter: component labels must have a single dimension, got 2: "
        "\\[a, b\\] for component 0"
    )
    component = Labels(["a", "b"], np.array([[0, 0], [0, 1]]))
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(np.zeros((3, 2, 2)), samples, [component], properties)

    message = "invalid parameter: component 'a' must contain at least one entry, got 0"
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(np.zeros((3, 0, 2)), samples, [Labels.empty("a")], properties)


def test_constructor_check_order():
    # the number of dimensions is checked before the samples
    message = "the values have 2 dimensions, but we have 3 separate labels"
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(
            np.zeros((4, 2)),
            Labels.range("s", 3),
            [Labels.range("c", 2)],
            Labels.range("p", 2),
        )

    # the samples are checked before the duplicated components
    message = "the values shape along axis 0 is 4 but we have 3 sample label"
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(
            np.zeros((4, 2, 3, 2)),
            Labels.range("s", 3),
            [Labels.range("c", 3), Labels.range("c", 3)],
            Labels.range("p", 2),
        )

    # duplicated components are checked before the components shape
    message = "some of the component dimensions appear more than once"
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(
            np.zeros((3, 2, 3, 2)),
            Labels.range("s", 3),
            [Labels.range("c", 3), Labels.range("c", 3)],
            Labels.range("p", 2),
        )

    # components shape are checked before properties
    message = "the values shape along axis 1 is 2 but we have 3 entries"
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(
            np.zeros((3, 2, 5)),
            Labels.range("s", 3),
            [Labels.range("c", 3)],
            Labels.range("p", 2),
        )

    # shapes are checked before the number of dimensions in components
    message = "the values shape along axis 2 is 5 but we have 2 property"
    component = Labels(["a", "b"], np.array([[0, 0], [0, 1]]))
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(
            np.zeros((3, 2, 5)), Labels.range("s", 3), [component], Labels.range("p", 2)
        )


def test_allowed_edge_cases():
    # zero samples, with zero names
    block = TensorBlock(
        np.zeros((0, 2)), Labels([], np.empty((0, 0))), [], Labels.range("p", 2)
    )
    assert block.shape == (0, 2)
    assert block.samples.names == []

    # zero properties
    block = TensorBlock(np.zeros((3, 0)), Labels.range("s", 3), [], Labels.empty("p"))
    assert block.shape == (3, 0)

    # component named like a sample
    block = TensorBlock(
        np.zeros((3, 2, 1)),
        Labels.range("s", 3),
        [Labels.range("s", 2)],
        Labels.range("p", 1),
    )
    assert block.components[0].names == ["s"]

    # all numeric dtypes are accepted
    for dtype in [np.float16, np.float32, np.int8, np.uint64, np.bool_, np.complex64]:
        block = TensorBlock(
            np.zeros((3, 1), dtype=dtype), Labels.range("s", 3), [], Labels.single()
        )
        assert block.dtype == dtype


def test_repr():
    block = TensorBlock(
        values=np.full((3, 3, 2, 2), 2.0),
        samples=Labels(["s"], np.array([[0], [1], [2]])),
        components=[
            Labels(["c_1"], np.array([[-1], [0], [1]])),
            Labels(["c_2"], np.array([[-4], [1]])),
        ],
        properties=Labels(["p"], np.array([[5], [3]])),
    )
    expected = """TensorBlock with shape (3, 3, 2, 2)
    samples: [s]
    components: [c_1, c_2]
    properties: [p]"""
    assert repr(block) == expected
    assert str(block) == expected

    gradient = TensorBlock(
        values=np.full((2, 3, 2, 2), 11.0),
        samples=Labels(["sample", "g"], np.array([[0, -2], [2, 3]])),
        components=block.components,
        properties=block.properties,
    )
    gradient_gradient = TensorBlock(
        values=np.full((1, 3, 2, 2), 11.0),
        samples=Labels(["sample", "h"], np.array([[1, 4]])),
        components=block.components,
        properties=block.properties,
    )
    gradient.add_gradient("h", gradient_gradient)
    block.add_gradient("g", gradient)
    block.add_gradient("longer", gradient_gradient.copy())

    expected = """TensorBlock with shape (3, 3, 2, 2)
    samples: [s]
    components: [c_1, c_2]
    properties: [p]

    gradients:
        g      => TensorBlock with shape (2, 3, 2, 2)
        longer => TensorBlock with shape (1, 3, 2, 2)"""
    assert repr(block) == expected

    expected = """TensorBlock gradient for 'g', with shape (2, 3, 2, 2)
    samples: [sample, g]
    components: [c_1, c_2]
    properties: [p]

    gradients:
        h => TensorBlock with shape (1, 3, 2, 2)"""
    assert repr(block.gradient("g")) == expected

    expected = """TensorBlock gradient for 'g/h', with shape (1, 3, 2, 2)
    samples: [sample, h]
    components: [c_1, c_2]
    properties: [p]"""
    assert repr(block.gradient("g").gradient("h")) == expected

    # a copy of a gradient is a normal block
    assert repr(block.gradient("g").gradient("h").copy()).startswith(
        "TensorBlock with shape (1, 3, 2, 2)"
    )


def test_repr_zero_samples():
    block = TensorBlock(
        np.zeros((0, 2)), Labels([], np.empty((0, 0))), [], Labels.range("p", 2)
    )
    expected = """TensorBlock with shape (0, 2)
    samples: []
    properties: [p]"""
    assert repr(block) == expected


def test_repr_html():
    block = _block()
    block.add_gradient("g", _gradient(block))
    html = block._repr_html_()
    assert html.startswith("<div>")
    assert "TensorBlock" in html
    assert "samples" in html
    assert "g: shape (2, 3, 2)" in html


def test_copy():
    block = _block()
    block.add_gradient("g", _gradient(block))

    for deep_copy in [block.copy(), block.copy(deep=True), copy.deepcopy(block)]:
        assert deep_copy.values is not block.values
        np.testing.assert_equal(deep_copy.values, block.values)
        assert deep_copy.samples is block.samples
        assert deep_copy.samples.values is block.samples.values
        assert deep_copy.components[0] is block.components[0]
        assert deep_copy.properties is block.properties
        assert not deep_copy.is_view

        gradient = deep_copy.gradient("g")
        assert gradient.values is not block.gradient("g").values
        np.testing.assert_equal(gradient.values, block.gradient("g").values)
        assert gradient.samples is block.gradient("g").samples

        # modifications of the copy are not visible in the original
        deep_copy.values[:] = 12.0
        assert np.all(block.values == 2.0)

    for shallow_copy in [block.copy(deep=False), copy.copy(block)]:
        assert shallow_copy.values is block.values
        assert shallow_copy.samples is block.samples
        assert shallow_copy.gradient("g").values is block.gradient("g").values
        assert shallow_copy.gradients_list() == ["g"]

        # adding gradients to the copy does not change the original
        shallow_copy.add_gradient("other", _gradient(block, "other"))
        assert block.gradients_list() == ["g"]
        assert shallow_copy.gradients_list() == ["g", "other"]

    # copies of views are not views
    view = block.gradient("g")
    assert view.is_view
    assert not view.copy().is_view
    assert not view.copy(deep=False).is_view


def test_gradients():
    block = _block()
    gradient = _gradient(block)
    assert block.add_gradient("g", gradient) is None

    assert block.has_gradient("g")
    assert not block.has_gradient("h")
    assert block.gradients_list() == ["g"]

    view = block.gradient("g")
    assert view.is_view
    assert view.values is gradient.values
    assert view.samples is gradient.samples
    assert view.properties is block.properties
    # a new view on each access, around the same data
    assert block.gradient("g") is not view
    assert block.gradient("g").values is view.values

    # the gradient block given to add_gradient stays usable
    gradient.add_gradient("h", _gradient(gradient, "h"))
    assert gradient.gradients_list() == ["h"]
    # and changes to it are not visible in the block
    assert block.gradient("g").gradients_list() == []

    block.add_gradient("a", _gradient(block, "a"))
    block.add_gradient("z", _gradient(block, "z"))
    assert block.gradients_list() == ["g", "a", "z"]
    assert [name for name, _ in block.gradients()] == ["g", "a", "z"]
    for name, gradient in block.gradients():
        assert gradient.is_view
        assert gradient.samples.names == ["sample", name]

    message = "invalid parameter: can not find gradients with respect to 'x' in this"
    with pytest.raises(MetatensorError, match=message):
        block.gradient("x")

    message = (
        "cannot add gradient on this block since it is a view inside a TensorMap or "
        "another TensorBlock"
    )
    with pytest.raises(ValueError, match=message):
        view.add_gradient("h", _gradient(view, "h"))

    # the parameter is not validated
    block.add_gradient("a/b", _gradient(block, "x"))
    assert block.has_gradient("a/b")


def test_gradient_extra_components():
    block = _block()
    gradient = _gradient(block, extra=Labels.range("xyz", 3))
    block.add_gradient("g", gradient)
    assert block.gradient("g").shape == (2, 3, 3, 2)


def test_nested_gradients():
    block = _block()
    gradient = _gradient(block)
    gradient_gradient = _gradient(gradient, "h")
    gradient.add_gradient("h", gradient_gradient)
    block.add_gradient("g", gradient)

    view = block.gradient("g")
    assert view.gradients_list() == ["h"]
    nested = view.gradient("h")
    assert nested.values is gradient_gradient.values
    assert nested.is_view

    # deep copies copy nested gradients
    copied = block.copy()
    nested_copy = copied.gradient("g").gradient("h")
    assert nested_copy.values is not nested.values
    np.testing.assert_equal(nested_copy.values, nested.values)


def test_gradient_errors():
    block = _block()
    block.add_gradient("g", _gradient(block))

    def check(message, gradient, parameter="x"):
        with pytest.raises(MetatensorError, match=message):
            block.add_gradient(parameter, gradient)
        # the gradient is not consumed, and the block is unchanged
        assert isinstance(gradient.values, np.ndarray)
        assert block.gradients_list() == ["g"]

    check(
        "invalid parameter: gradient with respect to 'g' already exists for this block",
        _gradient(block),
        "g",
    )

    gradient = _gradient(block)
    gradient = TensorBlock(
        gradient.values.astype(np.float32),
        gradient.samples,
        gradient.components,
        gradient.properties,
    )
    check(
        "invalid parameter: the gradient values have dtype 'f32' but the block "
        "values have dtype 'f64'",
        gradient,
    )

    values = np.zeros((2, 3, 2))
    check(
        "invalid parameter: gradients samples must have at least one dimension, "
        "named 'sample', we got none",
        TensorBlock(
            np.zeros((0, 3, 2)),
            Labels([], np.empty((0, 0))),
            block.components,
            block.properties,
        ),
    )
    check(
        "invalid parameter: 'a' is not valid for the first dimension in the "
        "gradients samples labels, it should be 'sample'",
        TensorBlock(
            values,
            Labels(["a"], np.array([[0], [1]])),
            block.components,
            block.properties,
        ),
    )
    check(
        "invalid parameter: invalid value for the 'sample' dimension in gradient "
        "samples: all values should be positive, but we got -3",
        TensorBlock(
            values,
            Labels(["sample"], np.array([[-3], [1]])),
            block.components,
            block.properties,
        ),
    )
    check(
        "invalid parameter: invalid value for the 'sample' dimension in gradient "
        "samples: we got 42, but the values contain 3 samples",
        TensorBlock(
            values,
            Labels(["sample"], np.array([[2], [42]])),
            block.components,
            block.properties,
        ),
    )
    # negative values are reported first, then the minimal / maximal value
    check(
        "all values should be positive, but we got -5",
        TensorBlock(
            np.zeros((4, 3, 2)),
            Labels(["sample"], np.array([[1], [42], [-1], [-5]])),
            block.components,
            block.properties,
        ),
    )
    check(
        "we got 42, but the values contain 3 samples",
        TensorBlock(
            np.zeros((3, 3, 2)),
            Labels(["sample"], np.array([[1], [42], [5]])),
            block.components,
            block.properties,
        ),
    )
    check(
        "invalid parameter: gradients components should contain at least as many "
        "labels as the values components",
        TensorBlock(
            np.zeros((2, 2)),
            Labels(["sample"], np.array([[0], [1]])),
            [],
            block.properties,
        ),
    )
    check(
        "invalid parameter: gradient properties must be the same as values properties",
        TensorBlock(
            values,
            Labels(["sample"], np.array([[0], [1]])),
            block.components,
            Labels(["p"], np.array([[1], [0]])),
        ),
    )
    check(
        "invalid parameter: gradients and values components mismatch for values "
        "component 0 \\(dimension name is 'c'\\). Components which are specific "
        "to the gradients must come first, and be followed by the exact same "
        "components as the values.",
        TensorBlock(
            np.zeros((2, 3, 3, 2)),
            Labels(["sample"], np.array([[0], [1]])),
            [Labels.range("c", 3), Labels.range("xyz", 3)],
            block.properties,
        ),
    )

    # rows can be unsorted or absent, equal properties are fine
    block.add_gradient(
        "ok",
        TensorBlock(
            values,
            Labels(["sample"], np.array([[2], [0]])),
            [Labels.range("c", 3)],
            Labels.range("p", 2),
        ),
    )

    with pytest.raises(TypeError, match="`gradient` must be a metatensor TensorBlock"):
        block.add_gradient("y", np.zeros(3))


def test_gradient_check_order():
    block = _block()
    # dtype is checked before sample names
    with pytest.raises(MetatensorError, match="the gradient values have dtype 'i32'"):
        block.add_gradient(
            "g",
            TensorBlock(
                np.zeros((2, 3, 2), dtype=np.int32),
                Labels(["a"], np.array([[0], [1]])),
                block.components,
                block.properties,
            ),
        )
    # sample range is checked before the components
    with pytest.raises(MetatensorError, match="we got 5"):
        block.add_gradient(
            "g",
            TensorBlock(
                np.zeros((1, 2)),
                Labels(["sample"], np.array([[5]])),
                [],
                block.properties,
            ),
        )
    # components count is checked before properties
    with pytest.raises(MetatensorError, match="at least as many labels"):
        block.add_gradient(
            "g",
            TensorBlock(
                np.zeros((1, 3)),
                Labels(["sample"], np.array([[1]])),
                [],
                Labels.range("q", 3),
            ),
        )
    # properties are checked before components values
    with pytest.raises(MetatensorError, match="gradient properties must be the same"):
        block.add_gradient(
            "g",
            TensorBlock(
                np.zeros((1, 2, 3)),
                Labels(["sample"], np.array([[1]])),
                [Labels.range("d", 2)],
                Labels.range("q", 3),
            ),
        )


def test_eq_requires_operations(monkeypatch):
    block = _block()
    monkeypatch.setitem(sys.modules, "metatensor_operations", None)
    with pytest.raises(ImportError, match="requires the metatensor-operations"):
        block == block.copy()  # noqa: B015
    with pytest.raises(ImportError, match="requires the metatensor-operations"):
        block != block.copy()  # noqa: B015


def test_eq_delegates(monkeypatch):
    calls = []

    class FakeOperations:
        def equal_block(self, a, b):
            calls.append((a, b))
            return True

    monkeypatch.setitem(sys.modules, "metatensor_operations", FakeOperations())
    block = _block()
    other = block.copy()
    assert block == other
    assert not (block != other)
    assert calls[0] == (block, other)

    message = "can not compare a TensorBlock with an object of type <class 'int'>"
    with pytest.raises(AttributeError, match=message):
        block == 3  # noqa: B015


def test_to_numpy():
    block = _block()
    block.add_gradient("g", _gradient(block))

    converted = block.to(np.float32)
    assert converted is not block
    assert converted.dtype == np.float32
    assert converted.gradient("g").dtype == np.float32
    assert converted.samples is block.samples
    assert converted.gradient("g").properties is converted.properties

    converted = block.to(dtype=np.float64)
    assert converted is not block
    assert converted.values is block.values

    converted = block.to("cpu")
    assert converted.values is block.values

    converted = block.to(arrays="numpy")
    assert converted.values is block.values

    message = "can not move numpy array to non-cpu device: test"
    with pytest.raises(ValueError, match=message):
        block.to("test")

    message = "unexpected type in `TensorBlock.to`: <class 'numpy.ndarray'>"
    with pytest.raises(TypeError, match=message):
        block.to(np.zeros(3))

    message = "can not give a device twice in `TensorBlock.to`"
    with pytest.raises(ValueError, match=message):
        block.to("cpu", device="cpu")

    message = "can not give a dtype twice in `TensorBlock.to`"
    with pytest.raises(ValueError, match=message):
        block.to(np.float32, dtype=np.float64)

    message = "unknown array backend: 'jax'"
    with pytest.raises(ValueError, match=message):
        block.to(arrays="jax")


def test_namespace():
    assert metatensor.TensorBlock is TensorBlock


@pytest.mark.parametrize("protocol", [4, 5])
def test_pickle(protocol):
    import pickle

    block = _block()
    gradient = _gradient(block)
    gradient.add_gradient("h", _gradient(gradient, "h"))
    block.add_gradient("g", gradient)

    reduced = block.__reduce_ex__(protocol)
    assert reduced[0] == TensorBlock._from_pickle

    loaded = pickle.loads(pickle.dumps(block, protocol=protocol))
    assert isinstance(loaded, TensorBlock)
    np.testing.assert_equal(loaded.values, block.values)
    assert loaded.samples == block.samples
    assert loaded.components[0] == block.components[0]
    assert loaded.properties == block.properties
    assert loaded.gradients_list() == ["g"]
    np.testing.assert_equal(loaded.gradient("g").values, gradient.values)
    assert loaded.gradient("g").gradients_list() == ["h"]


def test_save_load(tmp_path):
    block = _block()
    block.add_gradient("g", _gradient(block))

    buffer = block.save_buffer()
    assert isinstance(buffer, memoryview)
    loaded = TensorBlock.load_buffer(buffer)
    np.testing.assert_equal(loaded.values, block.values)
    np.testing.assert_equal(loaded.gradient("g").values, block.gradient("g").values)

    path = tmp_path / "block.mts"
    block.save(path)
    loaded = TensorBlock.load(path)
    assert loaded.samples == block.samples
    np.testing.assert_equal(loaded.values, block.values)

    path = tmp_path / "block-numpy.mts"
    block.save(path, use_numpy=True)
    loaded = TensorBlock.load(path, use_numpy=True)
    np.testing.assert_equal(loaded.values, block.values)
