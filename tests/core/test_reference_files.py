"""Interoperability with the files written by the reference implementation."""

import io
import zipfile

import numpy as np
import pytest

import metatensor


TENSOR_FILES = [
    "data.mts",
    "radial-spectrum.mts",
    "spherical-expansion.mts",
    "qm7-spherical-expansion.mts",
    "qm7-power-spectrum.mts",
]

# written with DEFLATE compression (and partially by numpy), re-saving writes
# STORED members with the native headers
COMPRESSED = {"qm7-spherical-expansion.mts", "qm7-power-spectrum.mts"}


def _labels_equal(a, b):
    return list(a.names) == list(b.names) and np.array_equal(a.values, b.values)


def _blocks_equal(a, b):
    assert a.values.dtype == b.values.dtype
    assert np.array_equal(a.values, b.values)
    assert _labels_equal(a.samples, b.samples)
    assert len(a.components) == len(b.components)
    for ca, cb in zip(a.components, b.components):
        assert _labels_equal(ca, cb)
    assert _labels_equal(a.properties, b.properties)
    assert sorted(a.gradients_list()) == sorted(b.gradients_list())
    for parameter in a.gradients_list():
        _blocks_equal(a.gradient(parameter), b.gradient(parameter))
    return True


def _tensors_equal(a, b):
    assert _labels_equal(a.keys, b.keys)
    for i in range(len(a.keys)):
        _blocks_equal(a.block_by_id(i), b.block_by_id(i))
    assert a.info() == b.info()
    return True


@pytest.mark.parametrize("name", TENSOR_FILES)
def test_tensor_files(data_dir, name):
    path = data_dir / name
    content = path.read_bytes()
    tensor = metatensor.load(path)

    # content is the same as what numpy reads
    with zipfile.ZipFile(path) as archive:
        for i in range(len(tensor.keys)):
            values = np.load(io.BytesIO(archive.read(f"blocks/{i}/values.npy")))
            assert np.array_equal(tensor.block_by_id(i).values, values)
        assert (
            len(tensor.keys) == np.load(io.BytesIO(archive.read("keys.npy"))).shape[0]
        )

    saved = bytes(metatensor.io.save_buffer(tensor))
    if name in COMPRESSED:
        again = metatensor.io.load_buffer(saved)
        assert _tensors_equal(again, tensor)
        assert bytes(metatensor.io.save_buffer(again)) == saved
        with zipfile.ZipFile(io.BytesIO(saved)) as archive:
            assert all(
                i.compress_type == zipfile.ZIP_STORED for i in archive.infolist()
            )
    else:
        assert saved == content

    # all the loaders agree
    assert _tensors_equal(metatensor.load(path, use_numpy=True), tensor)
    assert _tensors_equal(metatensor.load(path, mmap=True), tensor)
    assert _tensors_equal(metatensor.io.load_buffer(content), tensor)
    assert _tensors_equal(metatensor.io.load_buffer(saved, use_numpy=True), tensor)


def test_block_file(data_dir):
    path = data_dir / "block.mts"
    block = metatensor.load_block(path)
    assert block.values.shape == (9, 5, 3)
    assert block.gradients_list() == ["positions"]
    assert bytes(metatensor.io.save_buffer(block)) == path.read_bytes()
    assert _blocks_equal(metatensor.load_block(path, use_numpy=True), block)
    assert _blocks_equal(metatensor.load_block(path, mmap=True), block)


def test_labels_file(data_dir):
    path = data_dir / "keys.mts"
    labels = metatensor.load_labels(path)
    assert len(labels) == 27
    assert len(labels.names) == 4
    assert isinstance(labels.values, np.ndarray)
    assert labels.values.dtype == np.int32
    assert bytes(metatensor.io.save_buffer(labels)) == path.read_bytes()

    tensor = metatensor.load(data_dir / "data.mts")
    assert _labels_equal(labels, tensor.keys)


def test_member_sizes(data_dir):
    content = (data_dir / "data.mts").read_bytes()
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        infos = archive.infolist()
    total = 22
    for info in infos:
        total += 50 + len(info.filename) + info.file_size + 46 + len(info.filename)
    assert total == len(content)

    tensor = metatensor.load(data_dir / "data.mts")
    numpy_saved = bytes(metatensor.io.save_buffer(tensor, use_numpy=True))
    with zipfile.ZipFile(io.BytesIO(numpy_saved)) as archive:
        names = [i.filename for i in archive.infolist()]
    assert names == [i.filename for i in infos]
