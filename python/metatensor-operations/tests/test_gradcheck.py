import numpy as np
import pytest

from metatensor import TensorMap

from ._gradcheck import check_finite_differences, positions_tensor, strain_tensor


@pytest.mark.parametrize("components", [False, True])
def test_positions_tensor_gradients_are_exact(components):
    positions = np.random.default_rng(1).normal(size=(5, 3))
    check_finite_differences(
        lambda x: positions_tensor(x, components=components), positions, "positions"
    )


def test_strain_tensor_gradients_are_exact():
    strain = np.eye(3) + 0.1 * np.random.default_rng(2).normal(size=(3, 3))
    check_finite_differences(strain_tensor, strain, "strain")


def test_detects_wrong_gradients():
    def wrong(x):
        tensor = positions_tensor(x)
        blocks = []
        for i in range(len(tensor.keys)):
            block = tensor.block_by_id(i).copy()
            block.gradient("positions").values[:] *= 1.01
            blocks.append(block)
        return TensorMap(tensor.keys, blocks)

    positions = np.random.default_rng(3).normal(size=(4, 3))
    with pytest.raises(AssertionError, match="wrong positions gradient"):
        check_finite_differences(wrong, positions, "positions")
