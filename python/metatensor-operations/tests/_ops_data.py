"""Helpers for the tests of join, slice, split, sort, dimensions and reductions:
small tensors with several systems, and metadata-based views of the data that do
not depend on the order of the entries."""

import pathlib
from typing import Dict, Tuple

import numpy as np

from metatensor import Labels, TensorBlock, TensorMap

from ._gradcheck import positions_tensor, strain_tensor


DATA_DIR = pathlib.Path(__file__).resolve().parents[3] / "tests" / "data"


def to_numpy(array) -> np.ndarray:
    if isinstance(array, np.ndarray):
        return array
    return array.detach().cpu().numpy()


def rebuild(tensor: TensorMap, samples_fn=None, properties_fn=None) -> TensorMap:
    """Rebuild ``tensor`` with new samples/properties values computed by
    ``samples_fn(values) -> values`` / ``properties_fn``."""
    blocks = []
    for block in tensor.blocks():
        samples = block.samples
        if samples_fn is not None:
            samples = Labels(samples.names, samples_fn(to_numpy(samples.values)))
        properties = block.properties
        if properties_fn is not None:
            properties = Labels(
                properties.names, properties_fn(to_numpy(properties.values))
            )
        new_block = TensorBlock(block.values, samples, block.components, properties)
        for parameter, gradient in block.gradients():
            new_block.add_gradient(
                parameter,
                TensorBlock(
                    gradient.values, gradient.samples, gradient.components, properties
                ),
            )
        blocks.append(new_block)
    return TensorMap(tensor.keys, blocks)


def _spread_systems(values: np.ndarray) -> np.ndarray:
    values = values.copy()
    values[:, 0] = values[:, 1] % 3
    return values


def systems_positions_tensor(positions: np.ndarray, components: bool = False):
    """:py:func:`positions_tensor` with samples spread over 3 systems
    (``system = atom % 3``), and 6 properties ``(property, parity)``."""
    tensor = positions_tensor(positions, n_properties=6, components=components)
    return _with_parity(rebuild(tensor, samples_fn=_spread_systems))


def _with_parity(tensor: TensorMap) -> TensorMap:
    from metatensor.operations import append_dimension

    tensor = append_dimension(tensor, "properties", "parity", 0)

    def parity(values):
        values = values.copy()
        values[:, 1] = values[:, 0] % 2
        return values

    return rebuild(tensor, properties_fn=parity)


def _with_components(tensor: TensorMap) -> TensorMap:
    """Add an ``o3_mu`` component of size 3 to a tensor without components,
    scaling the values (and gradients) by ``(1, 2, 3)`` along it."""
    weights = np.array([1.0, 2.0, 3.0])
    component = Labels.range("o3_mu", 3)
    blocks = []
    for block in tensor.blocks():
        values = block.values[:, None, :] * weights[None, :, None]
        new_block = TensorBlock(values, block.samples, [component], block.properties)
        for parameter, gradient in block.gradients():
            gradient_values = gradient.values[..., None, :] * weights[:, None]
            new_block.add_gradient(
                parameter,
                TensorBlock(
                    gradient_values,
                    gradient.samples,
                    gradient.components + [component],
                    block.properties,
                ),
            )
        blocks.append(new_block)
    return TensorMap(tensor.keys, blocks)


def systems_strain_tensor(strain: np.ndarray, components: bool = False):
    """:py:func:`strain_tensor` with 6 samples ``(system, atom)`` over 2 systems,
    6 properties ``(property, parity)`` and optionally an ``o3_mu`` component."""
    from metatensor.operations import append_dimension

    tensor = strain_tensor(strain, n_samples=6, n_properties=6)
    tensor = append_dimension(tensor, "samples", "atom", 0)

    def spread(values):
        values = values.copy()
        values[:, 1] = values[:, 0]
        values[:, 0] = values[:, 0] % 2
        return values

    tensor = _with_parity(rebuild(tensor, samples_fn=spread))
    if components:
        tensor = _with_components(tensor)
    return tensor


def random_tensor(
    seed: int = 0, components: bool = False, gradients: bool = True
) -> TensorMap:
    """3 blocks with random values; samples ``(system, atom)`` (unsorted, with
    different sizes), properties ``(n, l)``, optional ``o3_mu`` components and
    ``positions``/``strain`` gradients (sparse: not all samples have positions
    gradient rows)."""
    rng = np.random.default_rng(seed)
    comps = [Labels(["o3_mu"], np.array([[1], [-1], [0]], dtype=np.int32))]
    if not components:
        comps = []
    comp_shape = [len(c) for c in comps]
    blocks = []
    for n_samples in [5, 8, 3]:
        systems = rng.permutation(n_samples) % 3
        atoms = rng.permutation(n_samples)
        samples = Labels(["system", "atom"], np.stack([systems, atoms], axis=1))
        properties = Labels(
            ["n", "l"], np.array([[2, 0], [0, 1], [1, 0], [0, 0]], dtype=np.int32)
        )
        block = TensorBlock(
            rng.normal(size=[n_samples] + comp_shape + [len(properties)]),
            samples,
            comps,
            properties,
        )
        if gradients:
            rows = []
            for s in range(n_samples):
                for neighbor in range(s % 3):
                    rows.append([s, int(systems[s]), neighbor + 10 * (s % 2)])
            rows = np.array(rows, dtype=np.int32).reshape(-1, 3)
            rows = rows[rng.permutation(len(rows))]
            block.add_gradient(
                "positions",
                TensorBlock(
                    rng.normal(size=[len(rows), 3] + comp_shape + [len(properties)]),
                    Labels(["sample", "system", "atom"], rows),
                    [Labels.range("xyz", 3)] + comps,
                    properties,
                ),
            )
            block.add_gradient(
                "strain",
                TensorBlock(
                    rng.normal(size=[n_samples, 3, 3] + comp_shape + [len(properties)]),
                    Labels(["sample"], np.arange(n_samples).reshape(-1, 1)),
                    [Labels.range("xyz_1", 3), Labels.range("xyz_2", 3)] + comps,
                    properties,
                ),
            )
        blocks.append(block)

    keys = Labels(["key"], np.array([[2], [0], [1]], dtype=np.int32))
    return TensorMap(keys, blocks)


def _components_entries(components):
    """All combinations of component entries: list of (index tuple, key tuple)."""
    values = [to_numpy(c.values)[:, 0] for c in components]
    shape = [len(v) for v in values]
    result = []
    for index in np.ndindex(*shape):
        result.append((index, tuple(int(v[i]) for v, i in zip(values, index))))
    return result


def values_dict(block: TensorBlock) -> Dict[Tuple, np.ndarray]:
    """``{(sample entry, component entries, property entry): value}``,
    independent of the order of the entries."""
    values = to_numpy(block.values)
    samples = to_numpy(block.samples.values)
    properties = to_numpy(block.properties.values)
    components = _components_entries(block.components)
    result = {}
    for i, sample in enumerate(samples):
        for index, component in components:
            for j, prop in enumerate(properties):
                key = (tuple(sample), component, tuple(prop))
                result[key] = values[(i,) + index + (j,)]
    return result


def gradient_dict(block: TensorBlock, parameter: str) -> Dict[Tuple, np.ndarray]:
    """``{(sample entry, gradient parameter dims, component entries, property
    entry): gradient}``, independent of the order of samples, gradient rows,
    components and properties. The gradient-specific components (``xyz``)
    stay as an array."""
    gradient = block.gradient(parameter)
    values = to_numpy(gradient.values)
    rows = to_numpy(gradient.samples.values)
    samples = to_numpy(block.samples.values)
    properties = to_numpy(block.properties.values)
    components = _components_entries(block.components)
    n_extra = len(gradient.components) - len(block.components)
    extra = (slice(None),) * n_extra
    result = {}
    for i, row in enumerate(rows):
        sample = tuple(samples[row[0]])
        for index, component in components:
            for j, prop in enumerate(properties):
                key = (sample, tuple(row[1:]), component, tuple(prop))
                result[key] = values[(i,) + extra + index + (j,)]
    return result


def assert_same_data(first: TensorBlock, second: TensorBlock, nonzero_only=False):
    """The two blocks contain the same values and gradients for the same
    metadata, whatever the order of the entries."""
    first_values = values_dict(first)
    second_values = values_dict(second)
    assert first_values.keys() == second_values.keys()
    for key, value in first_values.items():
        np.testing.assert_allclose(value, second_values[key], rtol=1e-12, atol=1e-14)

    assert sorted(first.gradients_list()) == sorted(second.gradients_list())
    for parameter in first.gradients_list():
        first_gradient = gradient_dict(first, parameter)
        second_gradient = gradient_dict(second, parameter)
        assert first_gradient.keys() == second_gradient.keys()
        for key, value in first_gradient.items():
            np.testing.assert_allclose(
                value, second_gradient[key], rtol=1e-12, atol=1e-14
            )


__all__ = [
    "DATA_DIR",
    "assert_same_data",
    "gradient_dict",
    "positions_tensor",
    "random_tensor",
    "rebuild",
    "strain_tensor",
    "systems_positions_tensor",
    "systems_strain_tensor",
    "to_numpy",
    "values_dict",
]
