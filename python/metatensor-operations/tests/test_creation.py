import numpy as np
import pytest

import metatensor as mts
from metatensor import Labels, TensorBlock

from ._tensors import DATA_DIR, tensor


LIKE = [
    (mts.zeros_like, mts.zeros_like_block, "zeros_like"),
    (mts.ones_like, mts.ones_like_block, "ones_like"),
    (mts.empty_like, mts.empty_like_block, "empty_like"),
    (mts.random_uniform_like, mts.random_uniform_like_block, "random_uniform_like"),
]


def _check_fill(name, array):
    if name == "zeros_like":
        assert np.all(array == 0)
    elif name == "ones_like":
        assert np.all(array == 1)
    elif name == "random_uniform_like":
        assert np.all((array >= 0) & (array < 1))
        assert len(np.unique(array)) > 1


# ======================================================================== #
# *_like                                                                   #
# ======================================================================== #


@pytest.mark.parametrize("function, block_function, name", LIKE)
def test_like_metadata(function, block_function, name):
    A = tensor(0, components=True)
    result = function(A)
    assert mts.equal_metadata(result, A)
    for block, a in zip(result.blocks(), A.blocks()):
        assert block.values.shape == a.values.shape
        assert block.values.dtype == a.values.dtype
        assert not np.shares_memory(block.values, a.values)
        _check_fill(name, block.values)
        for parameter, gradient in block.gradients():
            assert gradient.values.shape == a.gradient(parameter).values.shape
            _check_fill(name, gradient.values)

    block = block_function(A.block(1))
    assert mts.equal_metadata_block(block, A.block(1))
    _check_fill(name, block.values)


@pytest.mark.parametrize("function, block_function, name", LIKE)
def test_like_gradient_subsets(function, block_function, name):
    A = tensor(0)
    assert function(A, gradients="strain").block(0).gradients_list() == ["strain"]
    assert function(A, gradients=["positions"]).block(2).gradients_list() == [
        "positions"
    ]
    assert function(A, gradients=[]).block(0).gradients_list() == []
    assert sorted(function(A, gradients=None).block(0).gradients_list()) == [
        "positions",
        "strain",
    ]
    assert block_function(A.block(0), gradients="positions").gradients_list() == [
        "positions"
    ]

    message = f"requested gradient 'h' in '{name}' is not defined in this tensor"
    with pytest.raises(ValueError, match=message):
        function(A, gradients=["positions", "h"])
    with pytest.raises(ValueError, match=message):
        block_function(A.block(0), gradients="h")


def test_like_type_errors():
    with pytest.raises(TypeError, match="`tensor` must be a metatensor TensorMap"):
        mts.zeros_like(np.zeros(3))
    with pytest.raises(TypeError, match="`block` must be a metatensor TensorBlock"):
        mts.ones_like_block(tensor(0))


def test_random_uses_numpy_global_state():
    A = tensor(0)
    np.random.seed(12)
    first = mts.random_uniform_like(A)
    np.random.seed(12)
    second = mts.random_uniform_like(A)
    assert mts.equal(first, second)


def test_like_dtype():
    A = tensor(0).to(dtype=np.float32)
    for function, _, _ in LIKE:
        result = function(A)
        assert result.block(0).values.dtype == np.float32
        assert result.block(0).gradient("positions").values.dtype == np.float32


def test_like_real_data():
    se = mts.load(DATA_DIR / "qm7-spherical-expansion.mts")
    zeros = mts.zeros_like(se, gradients="positions")
    assert mts.equal_metadata(zeros, mts.remove_gradients(se, ["strain"]))
    assert mts.equal(mts.add(se, mts.zeros_like(se)), se)


def test_like_torch(torch):
    A = tensor(0, components=True).to(arrays="torch", dtype=torch.float32)
    for function, _, name in LIKE:
        result = function(A)
        values = result.block(0).values
        assert isinstance(values, torch.Tensor)
        assert values.dtype == torch.float32
        assert not values.requires_grad
        _check_fill(name, values.numpy())

        result = function(A, requires_grad=True)
        assert result.block(0).values.requires_grad
        gradient = result.block(0).gradient("positions").values
        # only random values also require grad on the gradients
        assert gradient.requires_grad == (name == "random_uniform_like")

        meta = function(A.to(device="meta"))
        assert meta.block(0).values.device.type == "meta"
        assert meta.block(0).gradient("strain").values.device.type == "meta"


def test_random_uses_torch_rand(torch):
    A = tensor(0).to(arrays="torch")
    torch.manual_seed(3)
    first = mts.random_uniform_like(A)
    torch.manual_seed(3)
    second = mts.random_uniform_like(A)
    assert mts.equal(first, second)


# ======================================================================== #
# block_from_array                                                         #
# ======================================================================== #


def test_block_from_array_defaults():
    array = np.arange(24.0).reshape(2, 3, 4)
    block = mts.block_from_array(array)
    assert block.samples == Labels.range("sample", 2)
    assert block.components == [Labels.range("component_1", 3)]
    assert block.properties == Labels.range("property", 4)
    assert block.values is array or np.shares_memory(block.values, array)

    block = mts.block_from_array(np.zeros((5, 2)))
    assert block.components == []
    assert block.samples == Labels.range("sample", 5)

    block = mts.block_from_array(np.zeros((1, 2, 3, 4)))
    assert [c.names for c in block.components] == [["component_1"], ["component_2"]]


def test_block_from_array_flattening():
    array = np.arange(2 * 3 * 5 * 2 * 2.0).reshape(2, 3, 5, 2, 2)
    block = mts.block_from_array(
        array,
        sample_names=["system", "atom"],
        component_names=["xyz"],
        property_names=["n", "l"],
    )
    assert block.values.shape == (6, 5, 4)
    assert block.samples.names == ["system", "atom"]
    np.testing.assert_array_equal(
        block.samples.values, [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
    )
    np.testing.assert_array_equal(
        block.properties.values, [[0, 0], [0, 1], [1, 0], [1, 1]]
    )
    assert block.components == [Labels.range("xyz", 5)]
    # entries are where the labels say
    np.testing.assert_array_equal(block.values[4, 3, 1], array[1, 1, 3, 0, 1])


def test_block_from_array_errors():
    with pytest.raises(ValueError, match="`array` must have at least two dimensions"):
        mts.block_from_array(np.zeros(3))
    with pytest.raises(ValueError, match="got 2 component names but the array has 1"):
        mts.block_from_array(np.zeros((2, 3, 4)), component_names=["a", "b"])
    with pytest.raises(ValueError, match="which is not enough"):
        mts.block_from_array(
            np.zeros((2, 3)), sample_names=["a", "b"], property_names=["c"]
        )


def test_block_from_array_torch(torch):
    array = torch.arange(24.0).reshape(2, 3, 4)
    block = mts.block_from_array(array, sample_names=["a", "b"])
    assert isinstance(block.values, torch.Tensor)
    assert isinstance(block.samples.values, torch.Tensor)
    assert block.values.shape == (6, 4)
    assert block.samples.values.dtype == torch.int32

    meta = mts.block_from_array(torch.zeros((2, 3, 4), device="meta"))
    assert meta.values.device.type == "meta"
    assert meta.samples.values.device.type == "meta"
    assert meta.properties.values.device.type == "meta"


# ======================================================================== #
# one_hot                                                                  #
# ======================================================================== #


def test_one_hot():
    labels = Labels(["atom", "type"], np.array([[0, 6], [1, 1], [2, 8], [3, 6]]))
    dimension = Labels(["type"], np.array([[1], [8], [6]]))
    result = mts.one_hot(labels, dimension)
    assert result.dtype == np.int32
    np.testing.assert_array_equal(result, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_one_hot_errors():
    labels = Labels(["atom", "type"], np.array([[0, 6], [1, 1]]))
    message = "type=1 is present in the labels, but was not found in the dimension"
    with pytest.raises(ValueError, match=message):
        mts.one_hot(labels, Labels(["type"], np.array([[6], [8]])))
    with pytest.raises(ValueError, match="only one label dimension"):
        mts.one_hot(labels, Labels(["atom", "type"], np.array([[0, 6]])))
    with pytest.raises(ValueError, match="'species' not found"):
        mts.one_hot(labels, Labels(["species"], np.array([[6]])))


def test_one_hot_real_data():
    ps = mts.load(DATA_DIR / "qm7-power-spectrum.mts")
    samples = ps.block(0).samples
    encoded = mts.one_hot(samples, Labels.range("system", 10))
    assert encoded.shape == (len(samples), 10)
    np.testing.assert_array_equal(encoded.argmax(axis=1), samples.column("system"))
    assert np.all(encoded.sum(axis=1) == 1)


def test_one_hot_torch(torch):
    labels = Labels(["type"], torch.tensor([[6], [1]], dtype=torch.int32))
    dimension = Labels(["type"], torch.tensor([[1], [6]], dtype=torch.int32))
    result = mts.one_hot(labels, dimension)
    assert isinstance(result, torch.Tensor)
    assert result.dtype == torch.int32
    assert result.tolist() == [[0, 1], [1, 0]]


def test_block_from_array_values_block():
    # the result is a real block, usable by other operations
    block = mts.block_from_array(np.ones((3, 2)))
    assert isinstance(block, TensorBlock)
    assert mts.equal_block(block, mts.ones_like_block(block))
