import numpy as np
import pytest

import metatensor
from metatensor import Labels, TensorBlock, TensorMap
from metatensor.operations import (
    equal_block,
    mean_over_properties,
    mean_over_samples,
    mean_over_samples_block,
    slice,
    sort,
    std_over_properties,
    std_over_properties_block,
    std_over_samples,
    sum_over_properties,
    sum_over_properties_block,
    sum_over_samples,
    sum_over_samples_block,
    var_over_properties,
    var_over_samples,
    var_over_samples_block,
)

from ._gradcheck import check_finite_differences
from ._ops_data import (
    DATA_DIR,
    gradient_dict,
    random_tensor,
    systems_positions_tensor,
    systems_strain_tensor,
    to_numpy,
)


SAMPLES = {
    "sum": sum_over_samples,
    "mean": mean_over_samples,
    "var": var_over_samples,
    "std": std_over_samples,
}
PROPERTIES = {
    "sum": sum_over_properties,
    "mean": mean_over_properties,
    "var": var_over_properties,
    "std": std_over_properties,
}
NUMPY = {
    "sum": lambda x, axis: np.sum(x, axis=axis),
    "mean": lambda x, axis: np.mean(x, axis=axis),
    "var": lambda x, axis: np.var(x, axis=axis),
    "std": lambda x, axis: np.std(x, axis=axis),
}


def _groups(labels, reduced):
    """Reference grouping: sorted group entries, and the members of each."""
    names = [n for n in labels.names if n not in reduced]
    columns = [labels.names.index(n) for n in names]
    values = to_numpy(labels.values)
    if len(names) == 0:
        return ["_"], np.zeros((1, 1), dtype=np.int32), [np.arange(len(values))]
    keys = sorted({tuple(row) for row in values[:, columns]})
    members = [
        np.flatnonzero((values[:, columns] == np.array(key)).all(axis=1))
        for key in keys
    ]
    return names, np.array(keys, dtype=np.int32).reshape(-1, len(names)), members


@pytest.mark.parametrize("reduction", ["sum", "mean", "var", "std"])
@pytest.mark.parametrize("components", [False, True])
@pytest.mark.parametrize("reduced", ["atom", ["system"], ["system", "atom"], []])
def test_reduce_samples_values(reduction, components, reduced):
    tensor = random_tensor(components=components)
    result = SAMPLES[reduction](tensor, reduced)
    assert result.keys == tensor.keys
    reduced_list = [reduced] if isinstance(reduced, str) else reduced
    for block, new in zip(tensor.blocks(), result.blocks()):
        names, groups, members = _groups(block.samples, reduced_list)
        assert new.samples.names == names
        np.testing.assert_equal(new.samples.values, groups)
        assert new.components == block.components
        assert new.properties == block.properties
        expected = np.stack([NUMPY[reduction](block.values[m], 0) for m in members])
        np.testing.assert_allclose(new.values, expected, rtol=1e-12, atol=1e-14)
        assert sorted(new.gradients_list()) == ["positions", "strain"]
        for _, gradient in new.gradients():
            assert gradient.properties == new.properties
            assert gradient.samples.names[0] == "sample"


@pytest.mark.parametrize("reduction", ["sum", "mean", "var", "std"])
@pytest.mark.parametrize("components", [False, True])
@pytest.mark.parametrize("reduced", ["n", ["l"], ["n", "l"], []])
def test_reduce_properties_values(reduction, components, reduced):
    tensor = random_tensor(components=components)
    result = PROPERTIES[reduction](tensor, reduced)
    reduced_list = [reduced] if isinstance(reduced, str) else reduced
    for block, new in zip(tensor.blocks(), result.blocks()):
        names, groups, members = _groups(block.properties, reduced_list)
        assert new.properties.names == names
        np.testing.assert_equal(new.properties.values, groups)
        assert new.samples == block.samples
        assert new.components == block.components
        expected = np.stack(
            [NUMPY[reduction](block.values[..., m], -1) for m in members], axis=-1
        )
        np.testing.assert_allclose(new.values, expected, rtol=1e-12, atol=1e-14)
        for parameter, gradient in new.gradients():
            # gradient samples are not changed
            assert gradient.samples == block.gradient(parameter).samples
            assert gradient.components == block.gradient(parameter).components
            assert gradient.properties == new.properties


def test_reduce_gradients_sum_and_mean():
    tensor = random_tensor(components=True)
    summed = sum_over_samples(tensor, "atom")
    mean = mean_over_samples(tensor, "atom")
    for block, new_sum, new_mean in zip(
        tensor.blocks(), summed.blocks(), mean.blocks()
    ):
        _, _, members = _groups(block.samples, ["atom"])
        group_size = {}
        for i, m in enumerate(members):
            group_size[tuple(new_sum.samples.values[i])] = len(m)

        for parameter in ["positions", "strain"]:
            original = gradient_dict(block, parameter)
            expected = {}
            for (sample, row, component, prop), value in original.items():
                key = ((sample[0],), row, component, prop)
                expected[key] = expected.get(key, 0) + value
            grad_sum = gradient_dict(new_sum, parameter)
            grad_mean = gradient_dict(new_mean, parameter)
            assert grad_sum.keys() == expected.keys()
            for key, value in expected.items():
                np.testing.assert_allclose(grad_sum[key], value, rtol=1e-12)
                # mean divides by the group size (S2)
                np.testing.assert_allclose(
                    grad_mean[key], value / group_size[key[0]], rtol=1e-12
                )
            # merged gradient rows are unique and sorted
            rows = new_sum.gradient(parameter).samples.values
            assert len({tuple(r) for r in rows}) == len(rows)
            np.testing.assert_equal(rows, rows[np.lexsort(rows.T[::-1])])


@pytest.mark.parametrize("reduction", ["sum", "mean", "var", "std"])
@pytest.mark.parametrize("components", [False, True])
def test_reduce_samples_finite_differences(reduction, components):
    positions = np.random.default_rng(20).normal(size=(7, 3))
    function = SAMPLES[reduction]
    check_finite_differences(
        lambda x: function(systems_positions_tensor(x, components), "atom"),
        positions,
        "positions",
    )
    check_finite_differences(
        lambda x: function(systems_positions_tensor(x, components), ["atom", "system"]),
        positions,
        "positions",
    )
    strain = np.eye(3) + 0.1 * np.random.default_rng(21).normal(size=(3, 3))
    check_finite_differences(
        lambda x: function(systems_strain_tensor(x, components), "atom"),
        strain,
        "strain",
    )


@pytest.mark.parametrize("reduction", ["sum", "mean", "var", "std"])
@pytest.mark.parametrize("components", [False, True])
def test_reduce_properties_finite_differences(reduction, components):
    # S3/S10: reductions over properties are correct with components
    positions = np.random.default_rng(22).normal(size=(7, 3))
    function = PROPERTIES[reduction]
    check_finite_differences(
        lambda x: function(systems_positions_tensor(x, components), "property"),
        positions,
        "positions",
    )
    strain = np.eye(3) + 0.1 * np.random.default_rng(23).normal(size=(3, 3))
    check_finite_differences(
        lambda x: function(systems_strain_tensor(x, components), ["parity"]),
        strain,
        "strain",
    )


def test_reduce_all_names():
    tensor = random_tensor()
    result = sum_over_samples(tensor, ["system", "atom"])
    for block, new in zip(tensor.blocks(), result.blocks()):
        assert new.samples == Labels("_", np.array([[0]]))
        np.testing.assert_allclose(new.values, block.values.sum(axis=0, keepdims=True))
        np.testing.assert_equal(new.gradient("strain").samples.values[:, 0], 0)

    result = std_over_properties(tensor, ["n", "l"])
    for block, new in zip(tensor.blocks(), result.blocks()):
        assert new.properties == Labels("_", np.array([[0]]))
        np.testing.assert_allclose(new.values, block.values.std(axis=-1, keepdims=True))


def test_reduce_empty_names_sorts():
    tensor = random_tensor(components=True)
    result = sum_over_samples(tensor, [])
    expected = sort(tensor, "samples")
    for block, reference in zip(result.blocks(), expected.blocks()):
        assert equal_block(block, reference)

    result = var_over_samples(tensor, [])
    for block in result.blocks():
        np.testing.assert_equal(block.values, 0.0)
        for _, gradient in block.gradients():
            np.testing.assert_equal(gradient.values, 0.0)


def test_reduce_zero_length():
    tensor = random_tensor(components=True)
    empty = slice(tensor, "samples", Labels(["system"], np.array([[10]])))
    for function in SAMPLES.values():
        result = function(empty, "atom")
        for block in result.blocks():
            assert block.samples.names == ["system"]
            assert block.values.shape == (0, 3, 4)
            for parameter, gradient in block.gradients():
                assert gradient.values.shape[0] == 0
                assert gradient.samples.names == (
                    empty.block(0).gradient(parameter).samples.names
                )
        result = function(empty, ["system", "atom"])
        assert result.block(0).samples.names == ["_"]
        assert len(result.block(0).samples) == 0

    empty = slice(tensor, "properties", [])
    for function in PROPERTIES.values():
        result = function(empty, "n")
        for block, original in zip(result.blocks(), tensor.blocks()):
            assert block.properties.names == ["l"]
            assert block.values.shape == original.values.shape[:-1] + (0,)
            for parameter, gradient in block.gradients():
                assert gradient.samples == original.gradient(parameter).samples
                assert gradient.values.shape[-1] == 0


def test_reduce_std_zero_variance():
    # gradients of std are set to 0 where the std is 0, without warnings
    tensor = random_tensor()
    result = std_over_samples(tensor, ["system", "atom"])
    single = slice(tensor, "samples", [0])
    result = std_over_samples(single, "atom")
    for block in result.blocks():
        np.testing.assert_equal(block.values, 0.0)
        for _, gradient in block.gradients():
            np.testing.assert_equal(gradient.values, 0.0)
            assert np.all(np.isfinite(gradient.values))


def test_reduce_block_functions():
    tensor = random_tensor(components=True)
    block = tensor.block(1)
    assert equal_block(
        sum_over_samples_block(block, "atom"), sum_over_samples(tensor, "atom").block(1)
    )
    assert equal_block(
        mean_over_samples_block(block, ["atom"]),
        mean_over_samples(tensor, "atom").block(1),
    )
    assert equal_block(
        var_over_samples_block(block, "system"),
        var_over_samples(tensor, "system").block(1),
    )
    assert equal_block(
        sum_over_properties_block(block, "n"),
        sum_over_properties(tensor, "n").block(1),
    )
    assert equal_block(
        std_over_properties_block(block, ["l"]),
        std_over_properties(tensor, "l").block(1),
    )


def test_reduce_errors():
    tensor = random_tensor()
    with pytest.raises(
        ValueError,
        match=r"one of the requested sample name \(zz\) is not part of this TensorMap",
    ):
        sum_over_samples(tensor, ["atom", "zz"])
    with pytest.raises(
        ValueError,
        match=r"one of the requested property name \(zz\) is not part of this "
        "TensorMap",
    ):
        mean_over_properties(tensor, "zz")
    with pytest.raises(
        ValueError,
        match=r"one of the requested sample name \(zz\) is not part of this "
        "TensorBlock",
    ):
        sum_over_samples_block(tensor.block(0), "zz")
    with pytest.raises(TypeError, match="`sample_names` must be a string or a list"):
        sum_over_samples(tensor, 3)
    with pytest.raises(TypeError, match="`property_names` must be a string or a list"):
        sum_over_properties(tensor, [3])
    with pytest.raises(TypeError, match="`tensor` must be a metatensor TensorMap"):
        sum_over_samples(tensor.block(0), "atom")
    with pytest.raises(TypeError, match="`block` must be a metatensor TensorBlock"):
        sum_over_samples_block(tensor, "atom")

    block = tensor.block(0).copy()
    gradient = block.gradient("strain").copy()
    nested = TensorBlock(
        gradient.values, gradient.samples, gradient.components, gradient.properties
    )
    nested.add_gradient("other", gradient.copy())
    with_nested = TensorBlock(
        block.values, block.samples, block.components, block.properties
    )
    with_nested.add_gradient("strain", nested)
    with pytest.raises(NotImplementedError, match="gradients of gradients"):
        sum_over_samples_block(with_nested, "atom")


def test_reduce_no_blocks():
    tensor = TensorMap(Labels.empty(["key"]), [])
    assert len(sum_over_samples(tensor, "zz")) == 0
    assert len(std_over_properties(tensor, "zz")) == 0


@pytest.mark.parametrize("reduction", ["sum", "mean", "var", "std"])
def test_reduce_torch(torch, reduction):
    tensor = random_tensor(components=True)
    for functions, name in [(SAMPLES, "atom"), (PROPERTIES, "n")]:
        expected = functions[reduction](tensor, name)
        result = functions[reduction](tensor.to(arrays="torch"), name)
        for block, reference in zip(result.blocks(), expected.blocks()):
            assert isinstance(block.values, torch.Tensor)
            assert isinstance(block.samples.values, torch.Tensor)
            np.testing.assert_allclose(
                to_numpy(block.values), reference.values, rtol=1e-12, atol=1e-14
            )
            np.testing.assert_equal(
                to_numpy(block.samples.values), reference.samples.values
            )
            for parameter, gradient in block.gradients():
                np.testing.assert_allclose(
                    to_numpy(gradient.values),
                    reference.gradient(parameter).values,
                    rtol=1e-12,
                    atol=1e-14,
                )
                np.testing.assert_equal(
                    to_numpy(gradient.samples.values),
                    reference.gradient(parameter).samples.values,
                )


@pytest.mark.parametrize("reduction", ["sum", "mean", "var", "std"])
def test_reduce_torch_autograd(torch, reduction):
    tensor = random_tensor(components=True, gradients=False).to(arrays="torch")
    block = tensor.block(1)
    keys = Labels.range("key", 1)

    def over_samples(x):
        new = TensorBlock(x, block.samples, block.components, block.properties)
        return SAMPLES[reduction](TensorMap(keys, [new]), "atom").block(0).values

    def over_properties(x):
        new = TensorBlock(x, block.samples, block.components, block.properties)
        return PROPERTIES[reduction](TensorMap(keys, [new]), "n").block(0).values

    values = block.values.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(over_samples, (values,))
    assert torch.autograd.gradcheck(over_properties, (values,))


def test_reduce_qm7():
    tensor = metatensor.load(DATA_DIR / "qm7-power-spectrum.mts")
    result = sum_over_samples(tensor, "atom")
    for block, new in zip(tensor.blocks(), result.blocks()):
        systems = block.samples.column("system")
        unique = np.unique(systems)
        assert new.samples == Labels("system", unique.reshape(-1, 1))
        expected = np.stack([block.values[systems == s].sum(axis=0) for s in unique])
        np.testing.assert_allclose(new.values, expected, rtol=1e-12)

        # the positions gradients are summed over the atoms of each system
        gradient = block.gradient("positions")
        rows = gradient.samples.values
        row_systems = systems[rows[:, 0]]
        new_gradient = new.gradient("positions")
        for i, row in enumerate(new_gradient.samples.values[:10]):
            system = unique[row[0]]
            mask = (
                (row_systems == system)
                & (rows[:, 1] == row[1])
                & (rows[:, 2] == row[2])
            )
            np.testing.assert_allclose(
                new_gradient.values[i],
                gradient.values[mask].sum(axis=0),
                rtol=1e-12,
                atol=1e-16,
            )

    mean = mean_over_samples(tensor, "atom")
    for block, new_sum, new_mean in zip(
        tensor.blocks(), result.blocks(), mean.blocks()
    ):
        counts = np.unique(block.samples.column("system"), return_counts=True)[1]
        gradient = new_mean.gradient("positions")
        np.testing.assert_allclose(
            gradient.values,
            new_sum.gradient("positions").values
            / counts[gradient.samples.column("sample")][:, None, None],
            rtol=1e-12,
        )
