"""O(3) equivariance of the equivariant layers on a real spherical expansion:
rotating the input features with Wigner D matrices rotates the outputs the
same way, and invariant blocks stay invariant."""

import pathlib

import pytest


torch = pytest.importorskip("torch")
pytest.importorskip("scipy")

import numpy as np  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

import metatensor  # noqa: E402
from metatensor import Labels, TensorBlock, TensorMap  # noqa: E402
from metatensor_learn import nn  # noqa: E402

from ._rotations import rotate_tensor, wigner_d_matrices  # noqa: E402


@pytest.fixture(scope="module")
def spherical_expansion():
    path = pathlib.Path(__file__).resolve().parents[3] / "tests" / "data"
    tensor = metatensor.load(path / "qm7-spherical-expansion.mts")
    tensor = metatensor.remove_gradients(tensor.to(arrays="torch"))
    # the first 3 molecules are enough
    selection = Labels(["system"], np.array([[0], [1], [2]], dtype=np.int32))
    tensor = metatensor.slice(tensor, "samples", selection)
    # values are small, bring every block to O(1)
    blocks = []
    for block in tensor.blocks():
        values = block.values
        if values.numel() != 0 and values.abs().max() > 0:
            values = values / values.abs().max()
        blocks.append(
            TensorBlock(values, block.samples, block.components, block.properties)
        )
    return TensorMap(tensor.keys, blocks)


@pytest.fixture(scope="module")
def wigner():
    rotation = Rotation.from_euler("zyz", [0.3, 1.1, -2.0])
    return wigner_d_matrices(4, rotation)


def _n_features(tensor):
    return [block.values.shape[-1] for block in tensor.blocks()]


def _layer(name, tensor):
    keys = tensor.keys
    n = len(keys)
    f64 = torch.float64
    features = _n_features(tensor)
    torch.manual_seed(0)
    if name == "EquivariantLinear":
        return nn.EquivariantLinear(keys, features, 3, dtype=f64)
    elif name == "EquivariantLinear(no bias, o3_lambda=0)":
        return nn.EquivariantLinear(
            keys,
            features,
            3,
            invariant_keys=Labels(["o3_lambda"], np.array([[0]])),
            bias=False,
            dtype=f64,
        )
    elif name == "InvariantReLU":
        return nn.InvariantReLU(keys)
    elif name == "InvariantSiLU":
        return nn.InvariantSiLU(keys)
    elif name == "InvariantTanh":
        return nn.InvariantTanh(keys)
    elif name == "InvariantLayerNorm":
        return nn.InvariantLayerNorm(keys, features[0], dtype=f64)
    elif name == "EquivariantTransformation":
        return nn.EquivariantTransformation(
            [
                torch.nn.Sequential(torch.nn.Linear(f, f, dtype=f64), torch.nn.Tanh())
                for f in features
            ],
            keys,
            features,
            features,
        )
    elif name == "Sequential":
        return nn.Sequential(
            keys,
            nn.EquivariantLinear(keys, features, 4, dtype=f64),
            nn.InvariantSiLU(keys),
            nn.InvariantLayerNorm(keys, 4, dtype=f64),
            nn.EquivariantTransformation(
                [torch.nn.Linear(4, 4, dtype=f64) for _ in range(n)], keys, 4, 4
            ),
            nn.EquivariantLinear(keys, 4, 2, dtype=f64),
        )
    raise ValueError(name)


_NAMES = [
    "EquivariantLinear",
    "EquivariantLinear(no bias, o3_lambda=0)",
    "InvariantReLU",
    "InvariantSiLU",
    "InvariantTanh",
    "InvariantLayerNorm",
    "EquivariantTransformation",
    "Sequential",
]


def test_rotation_changes_covariant_blocks(spherical_expansion, wigner):
    rotated = rotate_tensor(spherical_expansion, wigner)
    for key, block in spherical_expansion.items():
        if block.values.numel() == 0 or block.values.abs().max() == 0:
            continue
        difference = (rotated.block(key).values - block.values).abs().max()
        if key["o3_lambda"] == 0:
            assert difference == 0
        else:
            assert difference > 1e-3


@pytest.mark.parametrize("name", _NAMES)
def test_equivariance(spherical_expansion, wigner, name):
    layer = _layer(name, spherical_expansion)

    rotated_input = rotate_tensor(spherical_expansion, wigner)
    output_of_rotated = layer(rotated_input)
    rotated_output = rotate_tensor(layer(spherical_expansion), wigner)

    output = layer(spherical_expansion)
    for key, block in output_of_rotated.items():
        expected = rotated_output.block(key)
        torch.testing.assert_close(block.values, expected.values)
        if key["o3_lambda"] == 0:
            # invariant blocks stay invariant
            torch.testing.assert_close(block.values, output.block(key).values)


def test_non_equivariant_layers_break_equivariance(spherical_expansion, wigner):
    # sanity check of the test: a plain activation on covariant blocks is not
    # equivariant
    layer = nn.Tanh(spherical_expansion.keys)
    output_of_rotated = layer(rotate_tensor(spherical_expansion, wigner))
    rotated_output = rotate_tensor(layer(spherical_expansion), wigner)
    differences = [
        (output_of_rotated.block(key).values - rotated_output.block(key).values)
        .abs()
        .max()
        for key, block in spherical_expansion.items()
        if key["o3_lambda"] == 2 and block.values.numel() != 0
    ]
    assert max(differences) > 1e-2
