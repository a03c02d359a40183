"""Small TensorMaps and helpers shared by the io tests."""

import io
import zipfile

import numpy as np

from metatensor import Labels, TensorBlock, TensorMap


def _block(values, n_components=0, gradients=(), seed=0):
    rng = np.random.default_rng(seed)
    n_samples = values.shape[0]
    samples = Labels(
        ["system", "atom"],
        np.stack([np.zeros(n_samples), np.arange(n_samples)], axis=1).astype(np.int32),
    )
    components = [
        Labels(
            [f"c_{i}"], np.arange(values.shape[1 + i], dtype=np.int32).reshape(-1, 1)
        )
        for i in range(n_components)
    ]
    properties = Labels(
        ["p"], np.arange(values.shape[-1], dtype=np.int32).reshape(-1, 1)
    )
    block = TensorBlock(values, samples, components, properties)
    for parameter in gradients:
        n_grad = max(n_samples - 1, 0)
        grad_samples = Labels(
            ["sample", "atom"],
            np.stack([np.arange(n_grad), np.arange(n_grad) + 1], axis=1).astype(
                np.int32
            ),
        )
        xyz = Labels(["xyz"], np.arange(3, dtype=np.int32).reshape(-1, 1))
        grad_values = rng.random((n_grad, 3, *values.shape[1:])).astype(values.dtype)
        block.add_gradient(
            parameter,
            TensorBlock(grad_values, grad_samples, [xyz, *components], properties),
        )
    return block


def make_tensor(dtype=np.float64, gradients=("positions",), n_blocks=3) -> TensorMap:
    rng = np.random.default_rng(42)
    blocks = []
    for i in range(n_blocks):
        values = (rng.random((4 + i, 3, 2)) * 10).astype(dtype)
        blocks.append(_block(values, n_components=1, gradients=gradients, seed=i))
    keys = Labels(["key"], np.arange(n_blocks, dtype=np.int32).reshape(-1, 1))
    return TensorMap(keys, blocks)


def assert_labels_equal(a: Labels, b: Labels):
    assert list(a.names) == list(b.names)
    assert np.array_equal(np.asarray(a.values), np.asarray(b.values))


def _np(array):
    if isinstance(array, np.ndarray):
        return array
    return array.detach().cpu().numpy()


def assert_block_equal(a: TensorBlock, b: TensorBlock):
    va, vb = _np(a.values), _np(b.values)
    assert va.dtype == vb.dtype
    assert va.shape == vb.shape
    assert np.array_equal(va, vb, equal_nan=va.dtype.kind in "fc")
    assert_labels_equal(a.samples, b.samples)
    assert len(a.components) == len(b.components)
    for ca, cb in zip(a.components, b.components):
        assert_labels_equal(ca, cb)
    assert_labels_equal(a.properties, b.properties)
    assert sorted(a.gradients_list()) == sorted(b.gradients_list())
    for parameter in a.gradients_list():
        assert_block_equal(a.gradient(parameter), b.gradient(parameter))


def assert_tensor_equal(a: TensorMap, b: TensorMap):
    assert_labels_equal(a.keys, b.keys)
    assert len(a) == len(b)
    for i in range(len(a)):
        assert_block_equal(a.block_by_id(i), b.block_by_id(i))
    assert dict(a.info()) == dict(b.info())


def zip_members(buffer) -> dict:
    with zipfile.ZipFile(io.BytesIO(bytes(buffer))) as archive:
        return {
            info.filename: archive.read(info.filename) for info in archive.infolist()
        }
