"""Small TensorMaps used by the tests of math, comparison, creation, autograd,
blocks and unique operations."""

import pathlib

import numpy as np

from metatensor import Labels, TensorBlock, TensorMap


DATA_DIR = pathlib.Path(__file__).resolve().parents[3] / "tests" / "data"


def block(
    rng: np.random.Generator,
    n_samples: int = 4,
    n_properties: int = 3,
    components: bool = False,
    gradients: tuple = ("positions", "strain"),
    first_sample: int = 0,
) -> TensorBlock:
    """A block with random values, samples ``(system, atom)``, optional ``o3_mu``
    component and ``positions`` / ``strain`` gradients."""
    comps = [Labels.range("o3_mu", 3)] if components else []
    comp_shape = [3] if components else []
    samples = Labels(
        ["system", "atom"],
        np.array(
            [[first_sample + i // 2, i % 2] for i in range(n_samples)], dtype=np.int32
        ).reshape(-1, 2),
    )
    properties = Labels(
        ["n"], np.arange(2, 2 + n_properties, dtype=np.int32).reshape(-1, 1)
    )
    result = TensorBlock(
        rng.uniform(0.5, 1.5, size=[n_samples] + comp_shape + [n_properties]),
        samples,
        comps,
        properties,
    )
    if "positions" in gradients:
        # two gradient rows for each sample, except the first one
        rows = [[s, s // 2, a] for s in range(1, n_samples) for a in range(2)]
        grad_samples = Labels(
            ["sample", "system", "atom"], np.array(rows, dtype=np.int32).reshape(-1, 3)
        )
        result.add_gradient(
            "positions",
            TensorBlock(
                rng.normal(size=[len(rows), 3] + comp_shape + [n_properties]),
                grad_samples,
                [Labels.range("xyz", 3)] + comps,
                properties,
            ),
        )
    if "strain" in gradients:
        grad_samples = Labels(
            ["sample"], np.arange(n_samples, dtype=np.int32).reshape(-1, 1)
        )
        result.add_gradient(
            "strain",
            TensorBlock(
                rng.normal(size=[n_samples, 3, 3] + comp_shape + [n_properties]),
                grad_samples,
                [Labels.range("xyz_1", 3), Labels.range("xyz_2", 3)] + comps,
                properties,
            ),
        )
    return result


def tensor(
    seed: int = 0, components: bool = False, gradients: tuple = ("positions", "strain")
) -> TensorMap:
    """A TensorMap with 3 blocks of different sizes, keys ``(key_1, key_2)``."""
    rng = np.random.default_rng(seed)
    keys = Labels(
        ["key_1", "key_2"], np.array([[0, 0], [1, 0], [1, 2]], dtype=np.int32)
    )
    blocks = [
        block(rng, n_samples=4, components=components, gradients=gradients),
        block(
            rng, n_samples=6, n_properties=2, components=components, gradients=gradients
        ),
        block(
            rng, n_samples=2, n_properties=5, components=components, gradients=gradients
        ),
    ]
    return TensorMap(keys, blocks)


def reorder_keys(tensor: TensorMap, order) -> TensorMap:
    """The same TensorMap with blocks (and keys) in another order."""
    keys = Labels(tensor.keys.names, tensor.keys.values[order])
    return TensorMap(keys, [tensor.block_by_id(int(i)).copy() for i in order])


def to_numpy(array) -> np.ndarray:
    if isinstance(array, np.ndarray):
        return array
    return array.detach().cpu().numpy()


def parent_rows(values: np.ndarray, gradient: TensorBlock) -> np.ndarray:
    """values[sample] broadcast against the gradient values (reference
    implementation for the tests, with plain numpy)."""
    parent = values[to_numpy(gradient.samples.values)[:, 0]]
    n_extra = gradient.values.ndim - values.ndim
    return parent.reshape(parent.shape[:1] + (1,) * n_extra + parent.shape[1:])
