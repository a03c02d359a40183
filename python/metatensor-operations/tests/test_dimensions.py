import numpy as np
import pytest

import metatensor
from metatensor import MetatensorError
from metatensor.operations import (
    append_dimension,
    insert_dimension,
    permute_dimensions,
    remove_dimension,
    rename_dimension,
)

from ._gradcheck import check_finite_differences
from ._ops_data import (
    DATA_DIR,
    random_tensor,
    systems_positions_tensor,
    systems_strain_tensor,
    to_numpy,
)


def _check_same_data(
    tensor, result, samples=True, properties=True, gradient_samples=True
):
    """Values and gradients arrays are shared, gradient samples unchanged."""
    for block, new in zip(tensor.blocks(), result.blocks()):
        assert new.values is block.values
        if samples:
            assert new.samples == block.samples
        if properties:
            assert new.properties == block.properties
        for parameter, gradient in block.gradients():
            new_gradient = new.gradient(parameter)
            assert new_gradient.values is gradient.values
            if gradient_samples:
                assert new_gradient.samples == gradient.samples
            assert new_gradient.properties == new.properties


def test_insert_dimension_keys():
    tensor = random_tensor()
    result = insert_dimension(tensor, "keys", 0, "new", 4)
    assert result.keys.names == ["new", "key"]
    np.testing.assert_equal(result.keys.values, [[4, 2], [4, 0], [4, 1]])
    _check_same_data(tensor, result)

    result = insert_dimension(tensor, "keys", 1, "new", np.array([7, 8, 9]))
    np.testing.assert_equal(result.keys.column("new"), [7, 8, 9])


@pytest.mark.parametrize("index", [0, 1, 2])
def test_insert_dimension_samples(index):
    tensor = random_tensor(components=True)
    result = insert_dimension(tensor, "samples", index, "new", 3)
    names = ["system", "atom"]
    names.insert(index, "new")
    for block, new in zip(tensor.blocks(), result.blocks()):
        assert new.samples.names == names
        expected = np.insert(block.samples.values, index, 3, axis=1)
        np.testing.assert_equal(new.samples.values, expected)
    _check_same_data(tensor, result, samples=False)

    with pytest.raises(
        ValueError,
        match="the new `values` contains 2 entries, but the Labels contains 5",
    ):
        insert_dimension(tensor, "samples", 0, "new", np.array([1, 2]))


def test_insert_dimension_properties():
    tensor = random_tensor(components=True)
    result = insert_dimension(tensor, "properties", 1, "new", np.arange(4))
    for new in result.blocks():
        assert new.properties.names == ["n", "new", "l"]
        np.testing.assert_equal(new.properties.column("new"), np.arange(4))
        for _, gradient in new.gradients():
            assert gradient.properties == new.properties
    _check_same_data(tensor, result, properties=False)


def test_append_dimension():
    tensor = random_tensor()
    result = append_dimension(tensor, "keys", "new", 1)
    assert result.keys.names == ["key", "new"]
    result = append_dimension(tensor, "samples", "new", np.int64(1))
    assert result.sample_names == ["system", "atom", "new"]
    np.testing.assert_equal(result.block(0).samples.column("new"), 1)
    result = append_dimension(tensor, "properties", "new", 2)
    assert result.property_names == ["n", "l", "new"]
    assert result.block(0).gradient("positions").properties.names == ["n", "l", "new"]

    with pytest.raises(
        ValueError,
        match="'components' is not a valid axis. Choose from 'keys', 'samples' or "
        "'properties'.",
    ):
        append_dimension(tensor, "components", "new", 0)


def test_permute_dimensions():
    tensor = metatensor.load(DATA_DIR / "qm7-power-spectrum.mts")
    result = permute_dimensions(tensor, "properties", [2, 0, 1])
    assert result.property_names == ["n_2", "l", "n_1"]
    for block, new in zip(tensor.blocks(), result.blocks()):
        np.testing.assert_equal(
            new.properties.values, block.properties.values[:, [2, 0, 1]]
        )
    _check_same_data(tensor, result, properties=False)

    result = permute_dimensions(tensor, "samples", [1, 0])
    assert result.sample_names == ["atom", "system"]
    for new in result.blocks():
        # gradient samples are not changed
        assert new.gradient("positions").samples.names == ["sample", "system", "atom"]
    _check_same_data(tensor, result, samples=False)

    result = permute_dimensions(tensor, "keys", [1, 2, 0])
    assert result.keys.names == ["neighbor_1_type", "neighbor_2_type", "center_type"]
    np.testing.assert_equal(result.keys.values, tensor.keys.values[:, [1, 2, 0]])

    with pytest.raises(ValueError, match="the length of `dimensions_indexes`"):
        permute_dimensions(tensor, "keys", [1, 0])


def test_remove_dimension():
    tensor = random_tensor()
    tensor = append_dimension(tensor, "samples", "extra", 0)
    result = remove_dimension(tensor, "samples", "extra")
    for block, new in zip(tensor.blocks(), result.blocks()):
        np.testing.assert_equal(new.samples.values, block.samples.values[:, :2])
    _check_same_data(tensor, result, samples=False)

    with pytest.raises(
        MetatensorError, match="can not have the same label entry multiple times"
    ):
        remove_dimension(tensor, "properties", "n")

    result = remove_dimension(
        append_dimension(tensor, "keys", "extra", 3), "keys", "extra"
    )
    assert result.keys == tensor.keys

    with pytest.raises(ValueError, match="'zz' not found in the dimensions"):
        remove_dimension(tensor, "samples", "zz")


def test_rename_dimension():
    tensor = random_tensor(components=True)
    result = rename_dimension(tensor, "keys", "key", "other")
    assert result.keys.names == ["other"]

    result = rename_dimension(tensor, "samples", "system", "structure")
    for block in result.blocks():
        assert block.samples.names == ["structure", "atom"]
        # gradient samples are renamed too
        assert block.gradient("positions").samples.names == [
            "sample",
            "structure",
            "atom",
        ]
        assert block.gradient("strain").samples.names == ["sample"]
    _check_same_data(tensor, result, samples=False, gradient_samples=False)

    result = rename_dimension(tensor, "components", "o3_mu", "mu")
    for block in result.blocks():
        assert block.components[0].names == ["mu"]
        assert [c.names for c in block.gradient("positions").components] == [
            ["xyz"],
            ["mu"],
        ]
        assert [c.names for c in block.gradient("strain").components] == [
            ["xyz_1"],
            ["xyz_2"],
            ["mu"],
        ]
    with pytest.raises(ValueError, match="'xyz' not found in the dimensions"):
        rename_dimension(tensor, "components", "xyz", "abc")

    result = rename_dimension(tensor, "properties", "n", "radial")
    assert result.property_names == ["radial", "l"]
    assert result.block(0).gradient("strain").properties.names == ["radial", "l"]

    with pytest.raises(ValueError, match="'zz' not found in the dimensions"):
        rename_dimension(tensor, "properties", "zz", "yy")
    with pytest.raises(MetatensorError, match="not a valid label name"):
        rename_dimension(tensor, "properties", "n", "not valid")


@pytest.mark.parametrize(
    "function, arguments",
    [
        (insert_dimension, (0, "new", 0)),
        (permute_dimensions, ([0],)),
        (remove_dimension, ("o3_mu",)),
    ],
)
def test_components_axis(function, arguments):
    # S9: these operations can not act on components, they raise instead of
    # silently doing nothing
    tensor = random_tensor(components=True)
    with pytest.raises(ValueError, match="'components' is not a valid axis"):
        function(tensor, "components", *arguments)


def test_invalid_axis():
    tensor = random_tensor()
    message = (
        "'other' is not a valid axis. Choose from 'keys', 'samples', 'components', "
        "or 'properties'."
    )
    with pytest.raises(ValueError, match=message):
        insert_dimension(tensor, "other", 0, "new", 0)
    with pytest.raises(ValueError, match=message):
        append_dimension(tensor, "other", "new", 0)
    with pytest.raises(ValueError, match=message):
        permute_dimensions(tensor, "other", [0])
    with pytest.raises(ValueError, match=message):
        remove_dimension(tensor, "other", "new")
    with pytest.raises(ValueError, match=message):
        rename_dimension(tensor, "other", "a", "b")
    with pytest.raises(TypeError, match="`tensor` must be a metatensor TensorMap"):
        rename_dimension(tensor.block(0), "samples", "a", "b")


@pytest.mark.parametrize("components", [False, True])
def test_dimensions_finite_differences(components):
    positions = np.random.default_rng(13).normal(size=(6, 3))

    def function(x):
        tensor = systems_positions_tensor(x, components)
        tensor = insert_dimension(tensor, "samples", 1, "new", 2)
        tensor = permute_dimensions(tensor, "properties", [1, 0])
        tensor = rename_dimension(tensor, "samples", "system", "frame")
        return remove_dimension(tensor, "samples", "new")

    check_finite_differences(function, positions, "positions")

    strain = np.eye(3) + 0.1 * np.random.default_rng(14).normal(size=(3, 3))
    check_finite_differences(
        lambda x: append_dimension(
            systems_strain_tensor(x, components), "properties", "a", 1
        ),
        strain,
        "strain",
    )


def test_dimensions_torch(torch):
    tensor = random_tensor(components=True).to(arrays="torch")
    result = insert_dimension(tensor, "samples", 0, "new", 5)
    for block in result.blocks():
        assert isinstance(block.samples.values, torch.Tensor)
        np.testing.assert_equal(to_numpy(block.samples.column("new")), 5)
    result = append_dimension(tensor, "properties", "new", torch.arange(4))
    for block in result.blocks():
        assert isinstance(block.properties.values, torch.Tensor)
        np.testing.assert_equal(to_numpy(block.properties.column("new")), np.arange(4))
    result = rename_dimension(tensor, "samples", "system", "structure")
    assert result.block(0).gradient("positions").samples.names[1] == "structure"
    result = permute_dimensions(tensor, "keys", [0])
    assert isinstance(result.keys.values, torch.Tensor)
    result = remove_dimension(insert_dimension(tensor, "keys", 0, "a", 1), "keys", "a")
    assert result.keys == tensor.keys
