import numpy as np
import pytest

import metatensor
from metatensor import Labels, TensorMap
from metatensor.operations import slice, slice_block

from ._gradcheck import check_finite_differences
from ._ops_data import (
    DATA_DIR,
    assert_same_data,
    gradient_dict,
    random_tensor,
    systems_positions_tensor,
    systems_strain_tensor,
    to_numpy,
    values_dict,
)


def _check_sliced_samples(block, sliced, positions):
    """``sliced`` contains exactly the samples at ``positions`` (in order) of
    ``block``, with the same values and gradients."""
    samples = to_numpy(block.samples.values)
    np.testing.assert_equal(to_numpy(sliced.samples.values), samples[positions])
    assert sliced.samples.names == block.samples.names
    np.testing.assert_equal(to_numpy(sliced.values), to_numpy(block.values)[positions])
    assert sliced.properties == block.properties
    assert sliced.components == block.components

    kept = {tuple(s) for s in samples[positions]}
    for parameter in block.gradients_list():
        expected = {
            key: value
            for key, value in gradient_dict(block, parameter).items()
            if key[0] in kept
        }
        actual = gradient_dict(sliced, parameter)
        assert expected.keys() == actual.keys()
        for key, value in expected.items():
            np.testing.assert_equal(actual[key], value)

        # gradient rows keep their original relative order
        gradient = block.gradient(parameter)
        new_gradient = sliced.gradient(parameter)
        rows = to_numpy(gradient.samples.values)
        keep = np.isin(rows[:, 0], positions)
        np.testing.assert_equal(
            to_numpy(new_gradient.values), to_numpy(gradient.values)[keep]
        )
        assert new_gradient.components == gradient.components
        assert new_gradient.properties == sliced.properties


@pytest.mark.parametrize("components", [False, True])
def test_slice_samples_labels_subset(components):
    tensor = random_tensor(components=components)
    selection = Labels(["system"], np.array([[2], [0]], dtype=np.int32))
    sliced = slice(tensor, "samples", selection)
    assert sliced.keys == tensor.keys
    for block, new in zip(tensor.blocks(), sliced.blocks()):
        systems = to_numpy(block.samples.column("system"))
        # a subset of the names keeps the original order
        positions = np.flatnonzero(np.isin(systems, [0, 2]))
        _check_sliced_samples(block, new, positions)


def test_slice_samples_selection_order():
    tensor = random_tensor()
    block = tensor.block(0)
    samples = to_numpy(block.samples.values)
    order = [3, 0, 4]
    selection = Labels(["system", "atom"], samples[order])
    sliced = slice_block(block, "samples", selection)
    _check_sliced_samples(block, sliced, np.array(order))

    # missing entries are skipped
    selection = Labels(
        ["system", "atom"], np.vstack([samples[[1]], [[100, 100]], samples[[0]]])
    )
    sliced = slice_block(block, "samples", selection)
    _check_sliced_samples(block, sliced, np.array([1, 0]))


@pytest.mark.parametrize(
    "selection", [[4, 0, 2], np.array([4, 0, 2]), np.array([4, 0, 2], dtype=np.int32)]
)
def test_slice_samples_positions(selection):
    block = random_tensor().block(0)
    sliced = slice_block(block, "samples", selection)
    _check_sliced_samples(block, sliced, np.array([4, 0, 2]))


def test_slice_negative_positions():
    block = random_tensor().block(0)
    sliced = slice_block(block, "samples", [-1, 0])
    _check_sliced_samples(block, sliced, np.array([4, 0]))


def test_slice_properties():
    tensor = random_tensor(components=True)
    block = tensor.block(1)
    properties = to_numpy(block.properties.values)

    selection = Labels(["l"], np.array([[0]], dtype=np.int32))
    sliced = slice(tensor, "properties", selection).block(1)
    positions = np.flatnonzero(properties[:, 1] == 0)
    np.testing.assert_equal(to_numpy(sliced.properties.values), properties[positions])
    np.testing.assert_equal(
        to_numpy(sliced.values), to_numpy(block.values)[..., positions]
    )
    for parameter, gradient in block.gradients():
        new = sliced.gradient(parameter)
        assert new.samples == gradient.samples
        assert new.components == gradient.components
        assert new.properties == sliced.properties
        np.testing.assert_equal(
            to_numpy(new.values), to_numpy(gradient.values)[..., positions]
        )

    # positions and full Labels keep the selection order
    sliced = slice_block(block, "properties", [3, 1])
    np.testing.assert_equal(to_numpy(sliced.properties.values), properties[[3, 1]])
    np.testing.assert_equal(
        to_numpy(sliced.gradient("strain").values),
        to_numpy(block.gradient("strain").values)[..., [3, 1]],
    )
    sliced_labels = slice_block(
        block, "properties", Labels(["n", "l"], properties[[3, 1]])
    )
    assert sliced_labels.properties == sliced.properties


def test_slice_empty_selection():
    tensor = random_tensor(components=True)
    sliced = slice(tensor, "samples", Labels(["system"], np.array([[42]])))
    for block in sliced.blocks():
        assert block.values.shape[0] == 0
        assert block.samples.names == ["system", "atom"]
        for _, gradient in block.gradients():
            assert gradient.values.shape[0] == 0
            assert gradient.samples.names[0] == "sample"

    sliced = slice(tensor, "properties", [])
    for block in sliced.blocks():
        assert block.values.shape[-1] == 0
        assert block.properties.names == ["n", "l"]
        assert block.gradient("positions").values.shape[-1] == 0


def test_slice_everything_is_identity():
    tensor = random_tensor(components=True)
    for axis in ["samples", "properties"]:
        sliced = slice(tensor, axis, Labels([], np.empty((1, 0), dtype=np.int32)))
        assert metatensor.operations.equal(sliced, tensor)


def test_slice_no_blocks():
    # the reference fails on TensorMaps without blocks (S13)
    tensor = TensorMap(Labels.empty(["key"]), [])
    sliced = slice(tensor, "samples", Labels(["system"], np.array([[0]])))
    assert len(sliced) == 0
    assert sliced.keys.names == ["key"]


def test_slice_errors():
    tensor = random_tensor()
    block = tensor.block(0)
    with pytest.raises(TypeError, match="`tensor` must be a metatensor TensorMap"):
        slice(block, "samples", [0])
    with pytest.raises(TypeError, match="`block` must be a metatensor TensorBlock"):
        slice_block(tensor, "samples", [0])
    with pytest.raises(ValueError, match="must be either 'samples' or 'properties'"):
        slice(tensor, "components", [0])

    selection = Labels(["frame"], np.array([[0]]))
    with pytest.raises(
        ValueError, match="invalid sample name 'frame' which is not part of the input"
    ):
        slice(tensor, "samples", selection)
    with pytest.raises(
        ValueError,
        match="invalid property name 'frame' which is not part of the input",
    ):
        slice(tensor, "properties", selection)

    with pytest.raises(ValueError, match="`selection` must be a 1-D array of integers"):
        slice_block(block, "samples", np.array([[0, 1]]))
    with pytest.raises(TypeError, match="must be a 1-D array of integers"):
        slice_block(block, "samples", np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="must be a list of integers"):
        slice_block(block, "samples", [0, 1.5])
    with pytest.raises(TypeError, match="`selection` must be metatensor Labels"):
        slice_block(block, "samples", "system")
    with pytest.raises(IndexError, match="index 5 in `selection` is out of bounds"):
        slice_block(block, "samples", [0, 5])
    with pytest.raises(IndexError, match="index -6 in `selection` is out of bounds"):
        slice_block(block, "samples", [-6])
    # no duplicated entries (S5)
    with pytest.raises(ValueError, match="the same position multiple times"):
        slice_block(block, "samples", [0, 1, 0])
    with pytest.raises(ValueError, match="the same position multiple times"):
        slice_block(block, "properties", [1, -3])


@pytest.mark.parametrize("components", [False, True])
def test_slice_finite_differences(components):
    positions = np.random.default_rng(5).normal(size=(7, 3))
    selection = Labels(["system"], np.array([[2], [0]]))

    def function(x):
        tensor = systems_positions_tensor(x, components=components)
        tensor = slice(tensor, "samples", selection)
        return slice(tensor, "properties", [5, 0, 2])

    check_finite_differences(function, positions, "positions")

    strain = np.eye(3) + 0.1 * np.random.default_rng(6).normal(size=(3, 3))

    def strain_function(x):
        tensor = slice(systems_strain_tensor(x, components), "samples", [4, 1, 2])
        return slice(tensor, "properties", Labels(["parity"], np.array([[1]])))

    check_finite_differences(strain_function, strain, "strain")


def test_slice_torch(torch):
    tensor = random_tensor(components=True).to(arrays="torch")
    selection = Labels(["system"], torch.tensor([[1]], dtype=torch.int32))
    sliced = slice(tensor, "samples", selection)
    reference = slice(
        random_tensor(components=True), "samples", Labels(["system"], np.array([[1]]))
    )
    for block, expected in zip(sliced.blocks(), reference.blocks()):
        assert isinstance(block.values, torch.Tensor)
        assert isinstance(block.samples.values, torch.Tensor)
        assert isinstance(block.gradient("positions").samples.values, torch.Tensor)
        assert_same_data(block, expected)

    # torch positions
    block = tensor.block(0)
    sliced = slice_block(block, "samples", torch.tensor([3, 1]))
    np.testing.assert_equal(
        to_numpy(sliced.samples.values), to_numpy(block.samples.values)[[3, 1]]
    )
    sliced = slice_block(block, "properties", torch.tensor([2, 0]))
    np.testing.assert_equal(
        to_numpy(sliced.values), to_numpy(block.values)[..., [2, 0]]
    )


def test_slice_torch_autograd(torch):
    tensor = random_tensor().to(arrays="torch")
    block = tensor.block(0)
    values = block.values.clone().requires_grad_(True)
    block = metatensor.TensorBlock(values, block.samples, [], block.properties)
    sliced = slice_block(block, "samples", [4, 1])
    sliced = slice_block(sliced, "properties", [0])
    sliced.values.sum().backward()
    expected = torch.zeros_like(values)
    expected[[4, 1], 0] = 1.0
    assert torch.equal(values.grad, expected)


def test_slice_qm7():
    tensor = metatensor.load(DATA_DIR / "qm7-power-spectrum.mts")
    selection = Labels(["system"], np.array([[3], [1]], dtype=np.int32))
    sliced = slice(tensor, "samples", selection)
    for block, new in zip(tensor.blocks(), sliced.blocks()):
        systems = block.samples.column("system")
        positions = np.flatnonzero(np.isin(systems, [1, 3]))
        _check_sliced_samples(block, new, positions)
        assert values_dict(new).keys() <= values_dict(block).keys()
