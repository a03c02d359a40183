import numpy as np
import pytest

import metatensor
from metatensor import Labels, MetatensorError, TensorBlock, TensorMap
from metatensor.operations import (
    NotEqualError,
    equal,
    join,
    join_blocks,
    permute_dimensions,
    rename_dimension,
    slice,
    sort,
)

from ._gradcheck import check_finite_differences, positions_tensor
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


def _reversed_positions_tensor(positions, n_properties=6, components=False):
    """Same samples as ``positions_tensor(positions)``, but values depending on
    other atoms (so different gradient samples)."""
    n_atoms = positions.shape[0]
    tensor = positions_tensor(positions[::-1], n_properties, components)
    blocks = []
    for block in tensor.blocks():
        gradient = block.gradient("positions")
        rows = gradient.samples.values.copy()
        rows[:, 2] = n_atoms - 1 - rows[:, 2]
        new = TensorBlock(
            block.values, block.samples, block.components, block.properties
        )
        new.add_gradient(
            "positions",
            TensorBlock(
                gradient.values,
                Labels(gradient.samples.names, rows),
                gradient.components,
                gradient.properties,
            ),
        )
        blocks.append(new)
    return TensorMap(tensor.keys, blocks)


# ======================================================================== #
# errors                                                                   #
# ======================================================================== #


def test_join_argument_errors():
    tensor = random_tensor()
    with pytest.raises(TypeError, match="`tensors` must be a list or a tuple"):
        join(tensor, "samples")
    with pytest.raises(TypeError, match="`tensors` elements must be metatensor"):
        join([tensor, tensor.block(0)], "samples")
    with pytest.raises(
        ValueError, match="provide at least one `TensorMap` for joining"
    ):
        join([], "samples")
    with pytest.raises(
        ValueError, match="Only `'properties'` or `'samples'` are valid"
    ):
        join([tensor, tensor], "components")
    with pytest.raises(ValueError, match="'other' is not a valid option for"):
        join([tensor, tensor], "samples", different_keys="other")

    with pytest.raises(TypeError, match="`blocks` must be a list or a tuple"):
        join_blocks(tensor.block(0), "samples")
    with pytest.raises(TypeError, match="`blocks` elements must be metatensor"):
        join_blocks([tensor], "samples")
    with pytest.raises(ValueError, match="provide at least one `TensorBlock`"):
        join_blocks([], "samples")
    with pytest.raises(ValueError, match="Only `'properties'` or `'samples'`"):
        join_blocks([tensor.block(0)], "keys")


def test_join_metadata_errors():
    tensor = random_tensor()
    other = slice(tensor, "properties", [0, 1])
    with pytest.raises(
        NotEqualError, match="inputs to 'join' should have the same properties"
    ):
        join([tensor, other], "samples", add_dimension="tensor")

    other = slice(tensor, "samples", [0, 1])
    with pytest.raises(
        NotEqualError, match="inputs to 'join' should have the same samples"
    ):
        join([tensor, other], "properties")

    with pytest.raises(
        NotEqualError, match="inputs to 'join_blocks' should have the same components"
    ):
        join_blocks(
            [tensor.block(0), random_tensor(components=True).block(0)],
            "samples",
            add_dimension="tensor",
        )

    no_gradients = random_tensor(gradients=False)
    with pytest.raises(NotEqualError, match="should have the same gradients"):
        join([tensor, no_gradients], "samples", add_dimension="tensor")
    with pytest.raises(NotEqualError, match="should have the same gradients"):
        join([tensor, no_gradients], "properties", add_dimension="tensor")

    renamed = rename_dimension(tensor, "samples", "atom", "center")
    with pytest.raises(
        ValueError, match="Different tensor have different sample names in `join`"
    ):
        join([tensor, renamed], "samples")
    with pytest.raises(
        ValueError,
        match="Different tensor have different sample names in `join_blocks`",
    ):
        join_blocks([tensor.block(0), renamed.block(0)], "samples")

    renamed = rename_dimension(tensor, "properties", "n", "m")
    with pytest.raises(
        ValueError,
        match="We can not add an extra dimension to properties when the inputs have "
        "different property names",
    ):
        join([tensor, renamed], "properties", add_dimension="tensor")

    # duplicated samples without add_dimension
    with pytest.raises(
        MetatensorError, match="can not have the same label entry multiple times"
    ):
        join([tensor, tensor], "samples")
    with pytest.raises(
        MetatensorError, match="can not have the same label entry multiple times"
    ):
        join([tensor, tensor], "properties")


def test_join_different_keys_error():
    tensor = random_tensor()
    fewer = metatensor.operations.drop_blocks(tensor, Labels(["key"], np.array([[0]])))
    with pytest.raises(NotEqualError, match="inputs to 'join' should have the same"):
        join([tensor, fewer], "samples", add_dimension="tensor")

    other_keys = TensorMap(Labels(["key"], np.array([[2], [0], [5]])), tensor.blocks())
    with pytest.raises(
        NotEqualError, match="inputs to 'join' should have the same keys"
    ):
        join([tensor, other_keys], "samples", add_dimension="tensor")

    other_names = TensorMap(Labels(["other"], tensor.keys.values), tensor.blocks())
    for mode in ["error", "union", "intersection"]:
        with pytest.raises(NotEqualError, match="should have the same keys names"):
            join([tensor, other_names], "samples", mode, add_dimension="tensor")


# ======================================================================== #
# single input                                                             #
# ======================================================================== #


def test_join_single_tensor():
    tensor = random_tensor()
    assert join([tensor], "samples") is tensor
    assert join_blocks([tensor.block(0)], "properties") is not None

    # add_dimension is honoured (S11)
    joined = join([tensor], "samples", add_dimension="tensor")
    for block, new in zip(tensor.blocks(), joined.blocks()):
        assert new.samples.names == ["system", "atom", "tensor"]
        np.testing.assert_equal(new.samples.column("tensor"), 0)
        np.testing.assert_equal(new.values, block.values)
        assert new.gradient("positions").samples == block.gradient("positions").samples

    joined = join_blocks([tensor.block(0)], "properties", add_dimension="tensor")
    assert joined.properties.names == ["n", "l", "tensor"]
    assert joined.gradient("strain").properties == joined.properties


# ======================================================================== #
# samples                                                                  #
# ======================================================================== #


@pytest.mark.parametrize("components", [False, True])
def test_join_samples(components):
    first = random_tensor(seed=1, components=components)
    second = random_tensor(seed=2, components=components)
    joined = join([first, second], "samples", add_dimension="tensor")
    assert joined.keys == first.keys

    for key, block in joined.items():
        block_1 = first.block(key)
        block_2 = second.block(key)
        n_1 = len(block_1.samples)
        assert block.samples.names == ["system", "atom", "tensor"]
        expected = np.vstack(
            [
                np.hstack([block_1.samples.values, np.zeros((n_1, 1))]),
                np.hstack([block_2.samples.values, np.ones((len(block_2.samples), 1))]),
            ]
        )
        np.testing.assert_equal(block.samples.values, expected)
        np.testing.assert_equal(
            block.values, np.concatenate([block_1.values, block_2.values])
        )
        assert block.components == block_1.components
        assert block.properties == block_1.properties

        for parameter in ["positions", "strain"]:
            gradient = block.gradient(parameter)
            gradient_1 = block_1.gradient(parameter)
            gradient_2 = block_2.gradient(parameter)
            # the new dimension is not added to gradient samples
            assert gradient.samples.names == gradient_1.samples.names
            shifted = gradient_2.samples.values.copy()
            shifted[:, 0] += n_1
            np.testing.assert_equal(
                gradient.samples.values,
                np.vstack([gradient_1.samples.values, shifted]),
            )
            np.testing.assert_equal(
                gradient.values, np.concatenate([gradient_1.values, gradient_2.values])
            )
            assert gradient.components == gradient_1.components
            assert gradient.properties == block.properties


def test_join_samples_without_add_dimension():
    tensor = random_tensor(seed=3)
    shifted = metatensor.operations.insert_dimension(tensor, "samples", 0, "x", 0)
    shifted = metatensor.operations.remove_dimension(shifted, "samples", "x")
    # make the systems different
    parts = [
        slice(tensor, "samples", Labels(["system"], np.array([[0], [1]]))),
        slice(tensor, "samples", Labels(["system"], np.array([[2]]))),
    ]
    joined = join(parts, "samples")
    for block, new in zip(tensor.blocks(), joined.blocks()):
        assert new.samples.names == ["system", "atom"]
        assert_same_data(block, new)


def test_join_samples_permuted_names():
    # names in a different order are aligned on the first tensor (S4)
    tensor = random_tensor(seed=4)
    permuted = permute_dimensions(tensor, "samples", [1, 0])
    joined = join([tensor, permuted], "samples", add_dimension="tensor")
    for block, new in zip(tensor.blocks(), joined.blocks()):
        n = len(block.samples)
        assert new.samples.names == ["system", "atom", "tensor"]
        np.testing.assert_equal(new.samples.values[:n, :2], block.samples.values)
        np.testing.assert_equal(new.samples.values[n:, :2], block.samples.values)


def test_join_samples_keys_order():
    tensor = random_tensor(seed=5)
    reordered = sort(tensor, "keys")
    joined = join([tensor, reordered], "samples", add_dimension="tensor")
    assert joined.keys == tensor.keys
    for key, block in joined.items():
        original = tensor.block(key)
        n = len(original.samples)
        np.testing.assert_equal(block.values[:n], original.values)
        np.testing.assert_equal(block.values[n:], original.values)


# ======================================================================== #
# properties                                                               #
# ======================================================================== #


def test_join_properties_same_names():
    first = random_tensor(seed=1, components=True)
    second = rename_dimension(
        rename_dimension(first, "properties", "n", "a"), "properties", "a", "n"
    )
    joined = join([first, second], "properties", add_dimension="tensor")
    for key, block in joined.items():
        original = first.block(key)
        n = len(original.properties)
        assert block.samples == original.samples
        assert block.properties.names == ["n", "l", "tensor"]
        np.testing.assert_equal(
            block.properties.values[:n, :2], original.properties.values
        )
        np.testing.assert_equal(block.properties.column("tensor"), [0] * n + [1] * n)
        np.testing.assert_equal(
            block.values, np.concatenate([original.values] * 2, axis=-1)
        )
        for parameter, gradient in block.gradients():
            expected = original.gradient(parameter)
            assert gradient.samples == expected.samples
            assert gradient.properties == block.properties
            np.testing.assert_equal(
                gradient.values, np.concatenate([expected.values] * 2, axis=-1)
            )


def test_join_properties_different_names():
    first = random_tensor(seed=1)
    second = rename_dimension(random_tensor(seed=2), "properties", "n", "m")
    second = metatensor.operations.remove_gradients(second)
    first = metatensor.operations.remove_gradients(first)
    second = TensorMap(
        second.keys,
        [
            TensorBlock(b.values, f.samples, [], b.properties)
            for b, f in zip(second.blocks(), first.blocks())
        ],
    )
    joined = join([first, second], "properties")
    block = joined.block(0)
    assert block.properties.names == ["joined_index", "property"]
    np.testing.assert_equal(
        block.properties.values,
        [[0, 0], [0, 1], [0, 2], [0, 3], [1, 0], [1, 1], [1, 2], [1, 3]],
    )


def test_join_properties_gradient_union():
    positions = np.random.default_rng(0).normal(size=(5, 3))
    first = positions_tensor(positions, n_properties=2)
    second = _reversed_positions_tensor(positions, n_properties=3)
    joined = join([first, second], "properties", add_dimension="tensor")
    for i, block in enumerate(joined.blocks()):
        gradient = block.gradient("positions")
        samples_1 = {
            tuple(r) for r in first.block(i).gradient("positions").samples.values
        }
        samples_2 = {
            tuple(r) for r in second.block(i).gradient("positions").samples.values
        }
        assert {tuple(r) for r in gradient.samples.values} == samples_1 | samples_2
        assert len(gradient.samples) == len(samples_1 | samples_2)
        # first input rows come first, in order
        np.testing.assert_equal(
            gradient.samples.values[: len(samples_1)],
            first.block(i).gradient("positions").samples.values,
        )

        grad = gradient_dict(block, "positions")
        grad_1 = gradient_dict(first.block(i), "positions")
        grad_2 = gradient_dict(second.block(i), "positions")
        for (sample, row, component, prop), value in grad.items():
            source = grad_1 if prop[-1] == 0 else grad_2
            expected = source.get((sample, row, component, prop[:-1]), np.zeros(3))
            np.testing.assert_equal(value, expected)


# ======================================================================== #
# different keys                                                           #
# ======================================================================== #


def _with_keys(tensor, keys, ids=None):
    if ids is None:
        ids = range(len(keys))
    blocks = [tensor.block_by_id(i).copy() for i in ids]
    return TensorMap(Labels(["key"], np.array(keys).reshape(-1, 1)), blocks)


def test_join_intersection():
    first = _with_keys(random_tensor(seed=1), [2, 0, 1])
    second = _with_keys(random_tensor(seed=2), [1, 3, 2])
    joined = join([first, second], "samples", "intersection", add_dimension="t")
    np.testing.assert_equal(joined.keys.values, [[2], [1]])
    assert_same_data(
        join_blocks([first.block(key=2), second.block(key=2)], "samples", "t"),
        joined.block(0),
    )

    disjoint = _with_keys(random_tensor(seed=2), [5])
    joined = join([first, disjoint], "samples", "intersection", add_dimension="t")
    assert len(joined) == 0
    assert joined.keys.names == ["key"]


@pytest.mark.parametrize("axis", ["samples", "properties"])
def test_join_union(axis):
    first = _with_keys(random_tensor(seed=1, components=True), [2, 0])
    second = _with_keys(random_tensor(seed=1, components=True), [1, 2], [2, 0])
    joined = join([first, second], axis, "union", add_dimension="t")
    np.testing.assert_equal(joined.keys.values, [[2], [0], [1]])

    # key 0 only in the first tensor, key 1 only in the second one
    only_first = joined.block(key=0)
    only_second = joined.block(key=1)
    original_first = first.block(key=0)
    original_second = second.block(key=1)
    if axis == "samples":
        assert only_first.samples.names == ["system", "atom", "t"]
        np.testing.assert_equal(only_first.samples.column("t"), 0)
        np.testing.assert_equal(only_second.samples.column("t"), 1)
        np.testing.assert_equal(only_first.values, original_first.values)
        np.testing.assert_equal(only_second.values, original_second.values)
    else:
        np.testing.assert_equal(only_first.properties.column("t"), 0)
        np.testing.assert_equal(only_second.properties.column("t"), 1)
        np.testing.assert_equal(only_first.values, original_first.values)
        np.testing.assert_equal(only_second.values, original_second.values)
    for parameter in ["positions", "strain"]:
        expected = gradient_dict(original_second, parameter)
        actual = gradient_dict(only_second, parameter)
        assert len(expected) == len(actual)

    with_union = join([first, second], axis, "union", add_dimension="t")
    assert equal(with_union, joined)


def test_join_union_empty_blocks_properties():
    first = _with_keys(random_tensor(seed=1), [2, 0])
    second = _with_keys(random_tensor(seed=1), [1, 2], [2, 0])
    second = rename_dimension(second, "properties", "n", "m")
    joined = join([first, second], "properties", "union")
    block = joined.block(key=1)
    original = second.block(key=1)
    assert block.properties.names == ["joined_index", "property"]
    np.testing.assert_equal(block.properties.column("joined_index"), 1)
    np.testing.assert_equal(block.properties.column("property"), np.arange(4))
    np.testing.assert_equal(block.values, original.values)
    for parameter, gradient in block.gradients():
        np.testing.assert_equal(gradient.values, original.gradient(parameter).values)
        assert gradient.samples == original.gradient(parameter).samples

    block = joined.block(key=2)
    np.testing.assert_equal(block.properties.column("joined_index"), [0] * 4 + [1] * 4)


# ======================================================================== #
# gradients: finite differences                                            #
# ======================================================================== #


@pytest.mark.parametrize("components", [False, True])
def test_join_samples_finite_differences(components):
    positions = np.random.default_rng(7).normal(size=(6, 3))

    def function(x):
        tensor = systems_positions_tensor(x, components=components)
        return join(
            [tensor, sort(tensor, "samples", descending=True)],
            "samples",
            add_dimension="tensor",
        )

    check_finite_differences(function, positions, "positions")

    strain = np.eye(3) + 0.1 * np.random.default_rng(8).normal(size=(3, 3))

    def strain_function(x):
        tensor = systems_strain_tensor(x, components)
        return join(
            [sort(tensor, "samples", descending=True), tensor],
            "samples",
            add_dimension="t",
        )

    check_finite_differences(strain_function, strain, "strain")


@pytest.mark.parametrize("components", [False, True])
def test_join_properties_finite_differences(components):
    positions = np.random.default_rng(9).normal(size=(6, 3))

    def function(x):
        first = positions_tensor(x, n_properties=2, components=components)
        second = _reversed_positions_tensor(x, n_properties=3, components=components)
        return join([first, second], "properties", add_dimension="tensor")

    check_finite_differences(function, positions, "positions")

    def different_names(x):
        first = positions_tensor(x, n_properties=2, components=components)
        second = _reversed_positions_tensor(x, n_properties=3, components=components)
        second = rename_dimension(second, "properties", "property", "other")
        return join([second, first], "properties")

    check_finite_differences(different_names, positions, "positions")

    strain = np.eye(3) + 0.1 * np.random.default_rng(10).normal(size=(3, 3))

    def strain_function(x):
        tensor = systems_strain_tensor(x, components)
        return join([tensor, tensor], "properties", add_dimension="t")

    check_finite_differences(strain_function, strain, "strain")


# ======================================================================== #
# torch                                                                    #
# ======================================================================== #


@pytest.mark.parametrize("axis", ["samples", "properties"])
def test_join_torch(torch, axis):
    first = random_tensor(seed=1, components=True)
    second = random_tensor(seed=2, components=True)
    if axis == "properties":
        second = metatensor.TensorMap(
            second.keys,
            [
                TensorBlock(b.values, f.samples, b.components, b.properties)
                for b, f in zip(second.blocks(), first.blocks())
            ],
        )
        first = metatensor.operations.remove_gradients(first)
        second = metatensor.operations.remove_gradients(second)

    expected = join([first, second], axis, add_dimension="tensor")
    joined = join(
        [first.to(arrays="torch"), second.to(arrays="torch")],
        axis,
        add_dimension="tensor",
    )
    for block, reference in zip(joined.blocks(), expected.blocks()):
        assert isinstance(block.values, torch.Tensor)
        assert isinstance(block.samples.values, torch.Tensor)
        assert isinstance(block.properties.values, torch.Tensor)
        np.testing.assert_equal(to_numpy(block.values), reference.values)
        assert values_dict(block).keys() == values_dict(reference).keys()
        for parameter, gradient in block.gradients():
            np.testing.assert_equal(
                to_numpy(gradient.values), reference.gradient(parameter).values
            )


def test_join_torch_gradient_union(torch):
    positions = np.random.default_rng(0).normal(size=(5, 3))
    first = positions_tensor(positions, n_properties=2)
    second = _reversed_positions_tensor(positions, n_properties=3)
    expected = join([first, second], "properties", add_dimension="tensor")
    joined = join(
        [first.to(arrays="torch"), second.to(arrays="torch")],
        "properties",
        add_dimension="tensor",
    )
    for block, reference in zip(joined.blocks(), expected.blocks()):
        gradient = block.gradient("positions")
        np.testing.assert_equal(
            to_numpy(gradient.values), reference.gradient("positions").values
        )
        np.testing.assert_equal(
            to_numpy(gradient.samples.values),
            reference.gradient("positions").samples.values,
        )


def test_join_torch_autograd(torch):
    positions = np.random.default_rng(0).normal(size=(5, 3))
    first = positions_tensor(positions, n_properties=2).to(arrays="torch")
    second = _reversed_positions_tensor(positions, n_properties=3).to(arrays="torch")

    def requiring_grad(tensor):
        blocks = []
        for block in tensor.blocks():
            new = TensorBlock(
                block.values.clone().requires_grad_(True),
                block.samples,
                [],
                block.properties,
            )
            gradient = block.gradient("positions")
            new.add_gradient(
                "positions",
                TensorBlock(
                    gradient.values.clone().requires_grad_(True),
                    gradient.samples,
                    gradient.components,
                    gradient.properties,
                ),
            )
            blocks.append(new)
        return TensorMap(tensor.keys, blocks)

    first = requiring_grad(first)
    second = requiring_grad(second)
    joined = join([first, second], "properties", add_dimension="t")
    loss = 0
    for block in joined.blocks():
        loss = loss + (block.values**2).sum() + block.gradient("positions").values.sum()
    loss.backward()
    for tensor in [first, second]:
        for block in tensor.blocks():
            assert torch.allclose(block.values.grad, 2 * block.values.detach())
            gradient = block.gradient("positions").values
            assert torch.allclose(gradient.grad, torch.ones_like(gradient))


def test_join_torch_meta(torch):
    tensor = random_tensor(seed=1)
    tensor = metatensor.operations.remove_gradients(tensor)
    blocks = []
    for block in tensor.blocks():
        blocks.append(
            TensorBlock(
                torch.zeros(block.values.shape, device="meta"),
                Labels(
                    block.samples.names,
                    torch.tensor(block.samples.values).to("meta"),
                    assume_unique=True,
                ),
                [],
                Labels(
                    block.properties.names,
                    torch.tensor(block.properties.values).to("meta"),
                    assume_unique=True,
                ),
            )
        )
    keys = Labels(
        ["key"], torch.tensor(tensor.keys.values).to("meta"), assume_unique=True
    )
    meta = TensorMap(keys, blocks)
    joined = join([meta, meta], "samples", add_dimension="tensor")
    block = joined.block_by_id(0)
    assert block.values.device.type == "meta"
    assert block.values.shape == (10, 4)
    assert block.samples.values.device.type == "meta"
    assert block.samples.names == ["system", "atom", "tensor"]


# ======================================================================== #
# real data                                                                #
# ======================================================================== #


def test_join_qm7_copies():
    tensor = metatensor.load(DATA_DIR / "qm7-power-spectrum.mts")
    joined = join([tensor] * 10, "samples", add_dimension="tensor")
    assert joined.keys == tensor.keys
    for block, new in zip(tensor.blocks(), joined.blocks()):
        n = len(block.samples)
        assert new.values.shape == (10 * n,) + block.values.shape[1:]
        assert new.samples.names == ["system", "atom", "tensor"]
        np.testing.assert_equal(
            new.samples.column("tensor"), np.repeat(np.arange(10), n)
        )
        np.testing.assert_equal(new.values[-n:], block.values)
        for parameter, gradient in block.gradients():
            new_gradient = new.gradient(parameter)
            assert new_gradient.samples.names == gradient.samples.names
            assert len(new_gradient.samples) == 10 * len(gradient.samples)
            last = new_gradient.samples.values[-len(gradient.samples) :].copy()
            last[:, 0] -= 9 * n
            np.testing.assert_equal(last, gradient.samples.values)

    # joining the split tensor along properties gives back the original
    parts = metatensor.operations.split(
        tensor,
        "properties",
        [Labels(["l"], np.array([[0]])), Labels(["l"], np.array([[1], [2], [3], [4]]))],
    )
    joined = join(parts, "properties", different_keys="union")
    for block, new in zip(tensor.blocks(), joined.blocks()):
        assert_same_data(block, new)


def test_join_union_with_empty_tensor():
    tensor = random_tensor(seed=3)
    empty = TensorMap(Labels.empty(["key"]), [])
    for axis in ["samples", "properties"]:
        joined = join((tensor, empty), axis, "union", add_dimension="t")
        assert joined.keys == tensor.keys
        for block, new in zip(tensor.blocks(), joined.blocks()):
            np.testing.assert_equal(new.values, block.values)
            for parameter, gradient in block.gradients():
                np.testing.assert_equal(new.gradient(parameter).values, gradient.values)

    joined = join([empty, empty], "samples", "intersection")
    assert len(joined) == 0
