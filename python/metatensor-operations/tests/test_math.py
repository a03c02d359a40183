import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import metatensor as mts
from metatensor import Labels, TensorBlock, TensorMap
from metatensor.operations import NotEqualError

from ._gradcheck import check_finite_differences, positions_tensor, strain_tensor
from ._tensors import DATA_DIR, parent_rows, reorder_keys, tensor, to_numpy


def _assert_same_metadata(result: TensorMap, reference: TensorMap):
    assert result.keys == reference.keys
    for block, ref in zip(result.blocks(), reference.blocks()):
        assert block.samples == ref.samples
        assert block.components == ref.components
        assert block.properties == ref.properties
        assert block.gradients_list() == ref.gradients_list()
        for parameter, gradient in block.gradients():
            ref_gradient = ref.gradient(parameter)
            assert gradient.samples == ref_gradient.samples
            assert gradient.components == ref_gradient.components
            assert gradient.properties == ref_gradient.properties


# ======================================================================== #
# values and gradients against plain numpy                                 #
# ======================================================================== #


@pytest.mark.parametrize("components", [False, True])
def test_add_subtract_tensors(components):
    A = tensor(0, components)
    B = tensor(1, components)
    for function, sign in [(mts.add, 1.0), (mts.subtract, -1.0)]:
        result = function(A, B)
        _assert_same_metadata(result, A)
        for block, a, b in zip(result.blocks(), A.blocks(), B.blocks()):
            np.testing.assert_array_equal(block.values, a.values + sign * b.values)
            for parameter, gradient in block.gradients():
                np.testing.assert_array_equal(
                    gradient.values,
                    a.gradient(parameter).values + sign * b.gradient(parameter).values,
                )


@pytest.mark.parametrize("components", [False, True])
def test_multiply_divide_tensors(components):
    A = tensor(0, components)
    B = tensor(1, components)

    result = mts.multiply(A, B)
    _assert_same_metadata(result, A)
    for block, a, b in zip(result.blocks(), A.blocks(), B.blocks()):
        np.testing.assert_allclose(block.values, a.values * b.values)
        for parameter, gradient in block.gradients():
            ga = a.gradient(parameter)
            gb = b.gradient(parameter)
            expected = (
                ga.values * parent_rows(b.values, ga)
                + parent_rows(a.values, gb) * gb.values
            )
            np.testing.assert_allclose(gradient.values, expected)

    result = mts.divide(A, B)
    _assert_same_metadata(result, A)
    for block, a, b in zip(result.blocks(), A.blocks(), B.blocks()):
        np.testing.assert_allclose(block.values, a.values / b.values)
        for parameter, gradient in block.gradients():
            ga = a.gradient(parameter)
            gb = b.gradient(parameter)
            b_rows = parent_rows(b.values, ga)
            expected = ga.values / b_rows - parent_rows(a.values, gb) * gb.values / (
                b_rows**2
            )
            np.testing.assert_allclose(gradient.values, expected)


@pytest.mark.parametrize("scalar", [3, -2.5, np.float64(1.5), np.int32(2)])
def test_scalar_operations(scalar):
    A = tensor(0, components=True)
    checks = [
        (mts.add, lambda v: v + scalar, lambda g: g),
        (mts.subtract, lambda v: v - scalar, lambda g: g),
        (mts.multiply, lambda v: v * scalar, lambda g: g * scalar),
        (mts.divide, lambda v: v / scalar, lambda g: g / scalar),
    ]
    for function, values, gradients in checks:
        result = function(A, scalar)
        _assert_same_metadata(result, A)
        for block, a in zip(result.blocks(), A.blocks()):
            np.testing.assert_allclose(block.values, values(a.values), rtol=1e-15)
            for parameter, gradient in block.gradients():
                np.testing.assert_allclose(
                    gradient.values, gradients(a.gradient(parameter).values), rtol=1e-15
                )


def test_scalar_add_copies_gradients():
    A = tensor(0)
    result = mts.add(A, 1.0)
    gradient = result.block(0).gradient("positions").values
    assert not np.shares_memory(gradient, A.block(0).gradient("positions").values)


@pytest.mark.parametrize("exponent", [2, 0.5, -1.5, 3.0])
def test_pow(exponent):
    A = tensor(0, components=True)
    result = mts.pow(A, exponent)
    _assert_same_metadata(result, A)
    for block, a in zip(result.blocks(), A.blocks()):
        np.testing.assert_allclose(block.values, a.values**exponent)
        for parameter, gradient in block.gradients():
            ga = a.gradient(parameter)
            expected = (
                exponent * parent_rows(a.values, ga) ** (exponent - 1) * ga.values
            )
            np.testing.assert_allclose(gradient.values, expected)


def test_pow_zero_exponent():
    A = tensor(0)
    A.block(0).values[0, 0] = 0.0
    result = mts.pow(A, 0)
    for block in result.blocks():
        np.testing.assert_array_equal(block.values, 1.0)
        for _, gradient in block.gradients():
            np.testing.assert_array_equal(gradient.values, 0.0)


def test_pow_sqrt_matches_numpy():
    A = tensor(2)
    result = mts.pow(A, 0.5)
    for block, a in zip(result.blocks(), A.blocks()):
        np.testing.assert_allclose(block.values, np.sqrt(a.values))


def test_abs():
    A = mts.subtract(tensor(0, components=True), 1.0)
    # an exact zero: the gradient is zero there
    A.block(0).values[1, 0, 0] = 0.0
    result = mts.abs(A)
    _assert_same_metadata(result, A)
    for block, a in zip(result.blocks(), A.blocks()):
        np.testing.assert_array_equal(block.values, np.abs(a.values))
        for parameter, gradient in block.gradients():
            ga = a.gradient(parameter)
            expected = np.sign(parent_rows(a.values, ga)) * ga.values
            np.testing.assert_array_equal(gradient.values, expected)

    gradient = result.block(0).gradient("strain")
    rows = gradient.samples.values[:, 0] == 1
    assert np.all(gradient.values[rows][..., 0, 0] == 0.0)


def test_keys_in_any_order():
    A = tensor(0, components=True)
    B = tensor(1, components=True)
    B_shuffled = reorder_keys(B, [2, 0, 1])
    assert B_shuffled.keys != B.keys
    for function in [mts.add, mts.subtract, mts.multiply, mts.divide]:
        expected = function(A, B)
        result = function(A, B_shuffled)
        assert result.keys == A.keys
        assert mts.equal(result, expected)


def test_dtype_preserved():
    A = tensor(0).to(dtype=np.float32)
    for result in [
        mts.add(A, 1.5),
        mts.multiply(A, 2),
        mts.divide(A, 3.0),
        mts.pow(A, 2.0),
        mts.abs(A),
        mts.add(A, A),
        mts.multiply(A, A),
        mts.divide(A, A),
    ]:
        assert result.block(0).values.dtype == np.float32
        assert result.block(0).gradient("positions").values.dtype == np.float32


def test_empty_tensor():
    empty = TensorMap(Labels.empty(["key"]), [])
    assert len(mts.add(empty, empty)) == 0
    assert len(mts.multiply(empty, 2)) == 0


def test_dunder_operators_exist():
    A = tensor(0)
    assert mts.equal(A + A, mts.add(A, A))


# ======================================================================== #
# errors                                                                   #
# ======================================================================== #


@pytest.mark.parametrize("function", [mts.add, mts.subtract, mts.multiply, mts.divide])
def test_type_errors(function):
    A = tensor(0)
    message = "`A` must be a metatensor TensorMap, not <class 'numpy.ndarray'>"
    with pytest.raises(TypeError, match=message):
        function(np.zeros(3), A)

    message = (
        "`B` must be a metatensor TensorMap or a scalar value, "
        "not <class 'numpy.ndarray'>"
    )
    with pytest.raises(TypeError, match=message):
        function(A, np.zeros(3))

    with pytest.raises(TypeError, match="`B` must be a metatensor TensorMap"):
        function(A, A.block(0))


def test_unary_type_errors():
    with pytest.raises(TypeError, match="`A` must be a metatensor TensorMap"):
        mts.abs(3)
    with pytest.raises(TypeError, match="`A` must be a metatensor TensorMap"):
        mts.pow([], 2)


def test_pow_scalar_only():
    A = tensor(0)
    message = "`B` must be a scalar value, not <class 'metatensor.TensorMap'>"
    with pytest.raises(TypeError, match=message):
        mts.pow(A, A)
    with pytest.raises(TypeError, match="`B` must be a scalar value"):
        mts.pow(A, np.ones(3))


@pytest.mark.parametrize(
    "function, name",
    [
        (mts.add, "add"),
        (mts.subtract, "add"),
        (mts.multiply, "multiply"),
        (mts.divide, "divide"),
    ],
)
def test_keys_errors(function, name):
    A = tensor(0)

    B = TensorMap(
        Labels(["key_1", "other"], A.keys.values), [b.copy() for b in A.blocks()]
    )
    message = (
        f"inputs to '{name}' should have the same keys names, "
        "got '\\['key_1', 'key_2'\\]' and '\\['key_1', 'other'\\]'"
    )
    with pytest.raises(NotEqualError, match=message):
        function(A, B)

    B = TensorMap(
        Labels(A.keys.names, A.keys.values[:2]), [b.copy() for b in A.blocks()[:2]]
    )
    message = f"inputs to '{name}' should have the same number of blocks, got 3 and 2"
    with pytest.raises(NotEqualError, match=message):
        function(A, B)

    values = A.keys.values.copy()
    values[2, 1] = 7
    B = TensorMap(Labels(A.keys.names, values), [b.copy() for b in A.blocks()])
    with pytest.raises(
        NotEqualError, match=f"inputs to '{name}' should have the same keys"
    ):
        function(A, B)


@pytest.mark.parametrize(
    "function, name",
    [
        (mts.add, "add"),
        (mts.subtract, "add"),
        (mts.multiply, "multiply"),
        (mts.divide, "divide"),
    ],
)
def test_metadata_errors(function, name):
    A = tensor(0)

    def modified(change):
        blocks = []
        for b in A.blocks():
            new = change(b)
            blocks.append(new)
        return TensorMap(A.keys, blocks)

    def other_samples(b):
        values = b.samples.values.copy()
        values[:, 1] += 10
        result = TensorBlock(
            b.values, Labels(b.samples.names, values), b.components, b.properties
        )
        for parameter, gradient in b.gradients():
            result.add_gradient(parameter, gradient)
        return result

    message = (
        f"inputs to '{name}' should have the same samples:\n"
        "samples are not the same or not in the same order"
    )
    with pytest.raises(NotEqualError, match=message):
        function(A, modified(other_samples))

    def other_properties(b):
        result = TensorBlock(
            b.values,
            b.samples,
            b.components,
            Labels(["other"], b.properties.values),
        )
        return result

    message = (
        f"inputs to '{name}' should have the same properties:\n"
        "properties names are not the same or not in the same order"
    )
    with pytest.raises(NotEqualError, match=message):
        function(A, modified(other_properties))

    def fewer_samples(b):
        return TensorBlock(
            b.values[:1],
            Labels(b.samples.names, b.samples.values[:1]),
            [],
            b.properties,
        )

    message = (
        f"inputs to '{name}' should have the same samples:\n"
        "samples of the two `TensorBlock` have different lengths"
    )
    with pytest.raises(NotEqualError, match=message):
        function(A, modified(fewer_samples))

    def no_gradients(b):
        return TensorBlock(b.values, b.samples, b.components, b.properties)

    message = f"inputs to '{name}' should have the same gradients"
    with pytest.raises(NotEqualError, match=message):
        function(A, modified(no_gradients))

    def other_gradient_samples(b):
        result = TensorBlock(b.values, b.samples, b.components, b.properties)
        for parameter, gradient in b.gradients():
            values = gradient.samples.values.copy()
            if parameter == "positions":
                values[:, 2] = 1 - values[:, 2]
            result.add_gradient(
                parameter,
                TensorBlock(
                    gradient.values,
                    Labels(gradient.samples.names, values),
                    gradient.components,
                    gradient.properties,
                ),
            )
        return result

    message = (
        f"inputs to '{name}' should have the same gradients:\n"
        "gradient 'positions' samples are not the same or not in the same order"
    )
    with pytest.raises(NotEqualError, match=message):
        function(A, modified(other_gradient_samples))


def test_components_errors():
    A = tensor(0, components=True)
    B = tensor(0, components=False)
    message = (
        "inputs to 'multiply' should have the same components:\n"
        "components of the two `TensorBlock` have different lengths"
    )
    with pytest.raises(NotEqualError, match=message):
        mts.multiply(A, B)


def test_gradients_of_gradients():
    block = TensorBlock(np.ones((1, 1)), Labels.range("s", 1), [], Labels.range("p", 1))
    gradient = TensorBlock(
        np.ones((1, 1)), Labels.range("sample", 1), [], Labels.range("p", 1)
    )
    gradient.add_gradient(
        "other",
        TensorBlock(
            np.ones((1, 1)), Labels.range("sample", 1), [], Labels.range("p", 1)
        ),
    )
    block.add_gradient("g", gradient)
    A = TensorMap(Labels.range("key", 1), [block])
    message = "gradients of gradients are not supported"
    for function in [
        lambda t: mts.add(t, t),
        lambda t: mts.multiply(t, 2),
        lambda t: mts.pow(t, 2),
        mts.abs,
    ]:
        with pytest.raises(NotImplementedError, match=message):
            function(A)


# ======================================================================== #
# finite differences                                                       #
# ======================================================================== #


def _binary_operations(tensor_of):
    """Functions of x built from ``tensor_of(x)`` with each operation, where both
    operands depend on x."""

    def add(x):
        A = tensor_of(x)
        return mts.add(A, mts.multiply(A, A))

    def subtract(x):
        A = tensor_of(x)
        return mts.subtract(mts.pow(A, 2), A)

    def multiply(x):
        A = tensor_of(x)
        return mts.multiply(A, mts.add(mts.pow(A, 3), 2.0))

    def divide(x):
        A = tensor_of(x)
        return mts.divide(A, mts.add(mts.pow(A, 2), 1.0))

    def scalars(x):
        A = tensor_of(x)
        return mts.divide(mts.subtract(mts.multiply(A, 3.0), 1.0), 2.0)

    def absolute(x):
        return mts.abs(mts.subtract(tensor_of(x), 0.3))

    def power(x):
        return mts.pow(mts.add(tensor_of(x), 3.0), 1.7)

    return [add, subtract, multiply, divide, scalars, absolute, power]


@pytest.mark.parametrize("components", [False, True])
@pytest.mark.parametrize("index", range(7))
def test_finite_differences_positions(components, index):
    positions = np.random.default_rng(5).normal(size=(4, 3))
    function = _binary_operations(lambda x: positions_tensor(x, components=components))[
        index
    ]
    check_finite_differences(function, positions, "positions")


@pytest.mark.parametrize("index", range(7))
def test_finite_differences_strain(index):
    strain = np.eye(3) + 0.1 * np.random.default_rng(6).normal(size=(3, 3))
    function = _binary_operations(strain_tensor)[index]
    check_finite_differences(function, strain, "strain")


# ======================================================================== #
# real data                                                                #
# ======================================================================== #


def test_real_data():
    ps = mts.load(DATA_DIR / "qm7-power-spectrum.mts")
    doubled = mts.add(ps, ps)
    assert mts.allclose(doubled, mts.multiply(ps, 2))
    assert mts.allclose(mts.subtract(doubled, ps), ps)
    assert mts.equal(mts.multiply(ps, 1), ps)

    se = mts.load(DATA_DIR / "qm7-spherical-expansion.mts")
    squared = mts.pow(se, 2)
    assert mts.allclose(squared, mts.multiply(se, se), rtol=1e-12, atol=1e-14)
    assert mts.allclose(mts.abs(squared), squared)


# ======================================================================== #
# hypothesis identities                                                    #
# ======================================================================== #


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
    components=st.booleans(),
)
def test_identities(seed, scale, components):
    A = tensor(seed % 1000, components)
    B = mts.multiply(tensor(seed % 997 + 1, components), scale)

    assert mts.allclose(mts.subtract(mts.add(A, B), B), A, rtol=1e-9, atol=1e-9)
    assert mts.equal(mts.multiply(A, 1), A)
    assert mts.equal(mts.multiply(A, 1.0), A)

    # B values are in [0.5, 1.5] * scale, so B is far from zero unless scale is
    if abs(scale) > 1e-3:
        result = mts.divide(mts.multiply(A, B), B)
        assert mts.allclose(result, A, rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=20,
    ),
    scalar=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)
def test_scalar_identities(values, scalar):
    array = np.array(values).reshape(-1, 1)
    block = TensorBlock(array, Labels.range("s", len(values)), [], Labels.range("p", 1))
    A = TensorMap(Labels.range("key", 1), [block])
    assert mts.allclose(
        mts.subtract(mts.add(A, scalar), scalar), A, rtol=1e-9, atol=1e-9 * abs(scalar)
    )
    assert mts.equal(mts.multiply(A, 1), A)


# ======================================================================== #
# torch                                                                    #
# ======================================================================== #


def test_torch_values_and_gradients(torch):
    A = tensor(0, components=True)
    B = tensor(1, components=True)
    At = A.to(arrays="torch")
    Bt = B.to(arrays="torch")
    for function in [mts.add, mts.subtract, mts.multiply, mts.divide]:
        result = function(At, Bt)
        expected = function(A, B)
        assert isinstance(result.block(0).values, torch.Tensor)
        assert isinstance(result.keys.values, torch.Tensor)
        assert mts.allclose(result.to(arrays="numpy"), expected, rtol=1e-12)

    for result, expected in [
        (mts.pow(At, 2.5), mts.pow(A, 2.5)),
        (mts.abs(mts.subtract(At, 1.0)), mts.abs(mts.subtract(A, 1.0))),
        (mts.multiply(At, 3), mts.multiply(A, 3)),
    ]:
        assert mts.allclose(result.to(arrays="numpy"), expected, rtol=1e-12)


def test_torch_mixed_types(torch):
    A = tensor(0)
    At = A.to(arrays="torch")
    with pytest.raises(TypeError):
        mts.add(A, At)


def test_torch_autograd(torch):
    A = tensor(0).to(arrays="torch")
    values = A.block(0).values.clone().requires_grad_(True)
    gradient = A.block(0).gradient("positions")
    grad_values = gradient.values.clone().requires_grad_(True)

    block = TensorBlock(values, A.block(0).samples, [], A.block(0).properties)
    block.add_gradient(
        "positions",
        TensorBlock(
            grad_values, gradient.samples, gradient.components, gradient.properties
        ),
    )
    X = TensorMap(Labels.range("key", 1), [block])
    result = mts.multiply(mts.pow(X, 2), X)
    loss = (
        result.block(0).values.sum()
        + result.block(0).gradient("positions").values.sum()
    )
    loss.backward()

    # d/dv sum(v^3) = 3 v^2; the gradient part: sum(3 v[s]^2 g) -> 6 v[s] g
    g = grad_values.detach()
    v = values.detach()
    s = gradient.samples.values[:, 0].to(torch.int64)
    expected = 3 * v**2
    expected = expected.index_add(0, s, (6 * v[s][:, None, :] * g).sum(dim=1))
    assert torch.allclose(values.grad, expected)
    expected_g = 3 * v[s][:, None, :] ** 2 * torch.ones_like(g)
    assert torch.allclose(grad_values.grad, expected_g)


def test_torch_dtype_device(torch):
    A = tensor(0).to(arrays="torch", dtype=torch.float32)
    result = mts.multiply(mts.add(A, A), 2.0)
    assert result.block(0).values.dtype == torch.float32
    assert result.block(0).gradient("strain").values.dtype == torch.float32

    meta = tensor(0, components=True).to(arrays="torch", device="meta")
    for result in [
        mts.add(meta, meta),
        mts.subtract(meta, 1),
        mts.multiply(meta, meta),
        mts.divide(meta, meta),
        mts.pow(meta, 2),
        mts.abs(meta),
    ]:
        assert result.block(0).values.device.type == "meta"
        assert result.block(0).gradient("positions").values.device.type == "meta"
        assert result.block(0).samples.values.device.type == "meta"
        assert result.block(0).values.shape == meta.block(0).values.shape


def test_torch_finite_differences(torch):
    def function(x):
        A = positions_tensor(x, components=True).to(arrays="torch")
        return mts.divide(mts.multiply(A, A), mts.add(mts.abs(A), 1.0))

    positions = np.random.default_rng(7).normal(size=(3, 3))
    check_finite_differences(
        lambda x: function(x).to(arrays="numpy"), positions, "positions"
    )
    assert to_numpy(function(positions).block(0).values).shape == (3, 3, 3)
