import numpy as np
import pytest

import metatensor
from metatensor import Labels, TensorBlock, TensorMap
from metatensor.operations import equal, equal_block, slice, sort, sort_block

from ._gradcheck import check_finite_differences
from ._ops_data import (
    DATA_DIR,
    assert_same_data,
    random_tensor,
    systems_positions_tensor,
    systems_strain_tensor,
    to_numpy,
)


def _lexsorted(values, descending=False):
    order = np.lexsort(np.asarray(values).T[::-1])
    if descending:
        order = order[::-1]
    return order


@pytest.mark.parametrize("descending", [False, True])
def test_sort_block(descending):
    block = random_tensor(components=True).block(1)
    result = sort_block(block, descending=descending)

    samples_order = _lexsorted(block.samples.values, descending)
    component_order = _lexsorted(block.components[0].values, descending)
    properties_order = _lexsorted(block.properties.values, descending)

    np.testing.assert_equal(result.samples.values, block.samples.values[samples_order])
    np.testing.assert_equal(
        result.components[0].values, block.components[0].values[component_order]
    )
    np.testing.assert_equal(
        result.properties.values, block.properties.values[properties_order]
    )
    expected = block.values[samples_order][:, component_order][..., properties_order]
    np.testing.assert_equal(result.values, expected)
    assert result.samples.names == block.samples.names

    for parameter, gradient in result.gradients():
        # gradient rows are sorted on all their dimensions
        rows = gradient.samples.values
        np.testing.assert_equal(rows, rows[_lexsorted(rows, descending)])
        assert gradient.properties == result.properties
        assert gradient.components[-1] == result.components[0]
        # first components (xyz, ...) are not sorted
        original = block.gradient(parameter)
        for i in range(len(gradient.components) - 1):
            assert gradient.components[i] == original.components[i]
    # same data for the same metadata
    assert_same_data(block, result)

    # component values are permuted along the right axis in the gradients
    gradient = result.gradient("strain")
    original = block.gradient("strain")
    inverse = np.argsort(samples_order)
    rows_order = np.argsort(inverse[original.samples.values[:, 0]])
    if descending:
        rows_order = rows_order[::-1]
    np.testing.assert_equal(
        gradient.values,
        original.values[rows_order][:, :, :, component_order][..., properties_order],
    )


def test_sort_single_axes():
    block = random_tensor(components=True).block(0)
    result = sort_block(block, "samples")
    assert result.properties == block.properties
    assert result.components == block.components
    assert_same_data(block, result)

    result = sort_block(block, ["properties"])
    assert result.samples == block.samples
    np.testing.assert_equal(
        result.properties.values,
        block.properties.values[_lexsorted(block.properties.values)],
    )
    for parameter, gradient in result.gradients():
        assert gradient.samples == block.gradient(parameter).samples

    result = sort_block(block, ["components", "properties"], descending=True)
    assert result.samples == block.samples
    np.testing.assert_equal(result.components[0].values.reshape(-1), [1, 0, -1])

    result = sort_block(block, [])
    assert equal_block(result, block)
    assert result.values is not block.values


def test_sort_tensor_keys():
    tensor = random_tensor()
    result = sort(tensor)
    np.testing.assert_equal(result.keys.values, [[0], [1], [2]])
    for key, block in result.items():
        assert equal_block(block, sort_block(tensor.block(key)))

    result = sort(tensor, "keys", descending=True)
    np.testing.assert_equal(result.keys.values, [[2], [1], [0]])
    for key, block in result.items():
        assert equal_block(block, tensor.block(key))

    result = sort(tensor, ["samples"])
    assert result.keys == tensor.keys


def test_sort_does_not_modify_axes():
    # S8: the list given by the user is not modified
    tensor = random_tensor()
    axes = ["keys", "samples"]
    result = sort(tensor, axes)
    assert axes == ["keys", "samples"]
    np.testing.assert_equal(result.keys.values, [[0], [1], [2]])
    for key, block in result.items():
        assert equal_block(block, sort_block(tensor.block(key), "samples"))


def test_sort_is_idempotent():
    tensor = random_tensor(components=True)
    once = sort(tensor)
    assert equal(sort(once), once)
    once = sort(tensor, descending=True)
    assert equal(sort(once, descending=True), once)


def test_sort_empty_block():
    # S7: blocks without samples (and with gradients) can be sorted
    tensor = random_tensor(components=True)
    empty = slice(tensor, "samples", Labels(["system"], np.array([[10]])))
    result = sort(empty)
    for block in result.blocks():
        assert block.values.shape[0] == 0
        assert block.samples.names == ["system", "atom"]
        for _, gradient in block.gradients():
            assert gradient.values.shape[0] == 0
    block = sort_block(empty.block(0), descending=True)
    np.testing.assert_equal(block.components[0].values.reshape(-1), [1, 0, -1])

    no_blocks = TensorMap(Labels.empty(["key"]), [])
    assert len(sort(no_blocks)) == 0


def test_sort_errors():
    tensor = random_tensor()
    with pytest.raises(
        ValueError,
        match="`axes` must be one of 'samples', 'components' or 'properties', "
        "not 'keys'",
    ):
        sort_block(tensor.block(0), "keys")
    with pytest.raises(ValueError, match="not 'other'"):
        sort_block(tensor.block(0), ["samples", "other"])
    with pytest.raises(
        ValueError,
        match="`axes` must be one of 'keys', 'samples', 'components' or "
        "'properties', not 'other'",
    ):
        sort(tensor, "other")
    with pytest.raises(TypeError, match="`axes` must be a string or a list"):
        sort(tensor, 3)
    with pytest.raises(TypeError, match="`axes` must be a string or a list"):
        sort(tensor, ["samples", 3])
    with pytest.raises(TypeError, match="`tensor` must be a metatensor TensorMap"):
        sort(tensor.block(0))
    with pytest.raises(TypeError, match="`block` must be a metatensor TensorBlock"):
        sort_block(tensor)


@pytest.mark.parametrize("components", [False, True])
def test_sort_finite_differences(components):
    positions = np.random.default_rng(11).normal(size=(6, 3))
    check_finite_differences(
        lambda x: sort(systems_positions_tensor(x, components), descending=True),
        positions,
        "positions",
    )
    strain = np.eye(3) + 0.1 * np.random.default_rng(12).normal(size=(3, 3))
    check_finite_differences(
        lambda x: sort(systems_strain_tensor(x, components), descending=True),
        strain,
        "strain",
    )


def test_sort_torch(torch):
    tensor = random_tensor(components=True)
    expected = sort(tensor, descending=True)
    result = sort(tensor.to(arrays="torch"), descending=True)
    for block, reference in zip(result.blocks(), expected.blocks()):
        assert isinstance(block.values, torch.Tensor)
        assert isinstance(block.samples.values, torch.Tensor)
        np.testing.assert_equal(to_numpy(block.values), reference.values)
        np.testing.assert_equal(
            to_numpy(block.samples.values), reference.samples.values
        )
        for parameter, gradient in block.gradients():
            np.testing.assert_equal(
                to_numpy(gradient.values), reference.gradient(parameter).values
            )
            np.testing.assert_equal(
                to_numpy(gradient.samples.values),
                reference.gradient(parameter).samples.values,
            )
    np.testing.assert_equal(to_numpy(result.keys.values), expected.keys.values)


def test_sort_torch_autograd(torch):
    block = random_tensor(gradients=False).block(0).to(arrays="torch")
    values = block.values.clone().requires_grad_(True)
    block = TensorBlock(values, block.samples, [], block.properties)
    result = sort_block(block)
    weights = torch.arange(result.values.numel(), dtype=values.dtype)
    (result.values * weights.reshape(result.values.shape)).sum().backward()
    # the gradient is the weights permuted back
    samples_order = _lexsorted(to_numpy(block.samples.values))
    properties_order = _lexsorted(to_numpy(block.properties.values))
    expected = np.zeros(values.shape)
    expected[np.ix_(samples_order, properties_order)] = to_numpy(weights).reshape(
        result.values.shape
    )
    np.testing.assert_equal(to_numpy(values.grad), expected)


def test_sort_qm7():
    tensor = metatensor.load(DATA_DIR / "qm7-spherical-expansion.mts")
    result = sort(tensor, descending=True)
    np.testing.assert_equal(
        result.keys.values, tensor.keys.values[_lexsorted(tensor.keys.values, True)]
    )
    for key, block in result.items():
        original = tensor.block(key)
        assert_same_data(original, block) if len(original.samples) < 5 else None
        np.testing.assert_equal(
            block.samples.values,
            original.samples.values[_lexsorted(original.samples.values, True)],
        )
    assert equal(sort(sort(tensor)), sort(tensor))
