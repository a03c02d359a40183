"""Tests of the `.mts` loaders and writers: atomic save, errors, large files,
mmap and custom arrays."""

import io
import os
import zipfile

import numpy as np
import pytest

import metatensor
from metatensor import Labels, MetatensorError, TensorBlock, TensorMap
from metatensor.io import _npy

from ._io_helpers import (
    _block,
    assert_block_equal,
    assert_tensor_equal,
    make_tensor,
    zip_members,
)


# ============================================================================ #
# helpers


# ============================================================================ #
# atomic save


def test_atomic_save(tmp_path, monkeypatch):
    from metatensor.io import _save

    tensor = make_tensor()
    path = tmp_path / "data.mts"
    metatensor.save(path, tensor)
    previous = path.read_bytes()

    original = _save.write_archive

    def failing(file, members):
        file.write(b"partial data" * 1000)
        for i, _member in enumerate(members):
            if i == 3:
                raise RuntimeError("conversion failed")

    monkeypatch.setattr(_save, "write_archive", failing)
    with pytest.raises(RuntimeError, match="conversion failed"):
        metatensor.save(path, make_tensor(dtype=np.float32))
    assert path.read_bytes() == previous
    assert os.listdir(tmp_path) == ["data.mts"]

    # also when the file does not exist yet
    with pytest.raises(RuntimeError, match="conversion failed"):
        metatensor.save(tmp_path / "new.mts", tensor)
    assert os.listdir(tmp_path) == ["data.mts"]

    monkeypatch.setattr(_save, "write_archive", original)
    metatensor.save(path, tensor)
    assert os.listdir(tmp_path) == ["data.mts"]


def test_save_errors(tmp_path):
    tensor = make_tensor()
    message = "io error: No such file or directory \\(os error 2\\)"
    with pytest.raises(MetatensorError, match=message):
        metatensor.save(tmp_path / "missing" / "data.mts", tensor)


def test_saved_file_permissions(tmp_path):
    path = tmp_path / "data.mts"
    metatensor.save(path, make_tensor())
    umask = os.umask(0)
    os.umask(umask)
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask

        # permissions of an existing file are kept
        os.chmod(path, 0o600)
        metatensor.save(path, make_tensor())
        assert path.stat().st_mode & 0o777 == 0o600


# ============================================================================ #
# loading errors


@pytest.fixture
def files(tmp_path):
    tensor = make_tensor()
    paths = {
        "tensor": tmp_path / "tensor.mts",
        "block": tmp_path / "block.mts",
        "labels": tmp_path / "labels.mts",
    }
    metatensor.save(paths["tensor"], tensor)
    metatensor.save(paths["block"], tensor.block_by_id(0))
    metatensor.save(paths["labels"], tensor.keys)
    return paths


def test_wrong_loader(files):
    path = files["labels"]
    message = (
        f"serialization format error: unable to load a TensorMap from '{path}', "
        "use `load_labels` to load Labels: "
    )
    with pytest.raises(MetatensorError, match=message):
        metatensor.load(path)

    message = (
        "unable to load a TensorMap from buffer, use `load_labels_buffer` to load "
        "Labels: "
    )
    with pytest.raises(MetatensorError, match=message):
        metatensor.io.load_buffer(path.read_bytes())

    path = files["block"]
    message = f"unable to load a TensorMap from '{path}', use `load_block` to load "
    with pytest.raises(MetatensorError, match=message):
        metatensor.load(path)

    path = files["tensor"]
    message = (
        f"unable to load Labels from '{path}', use `load` to load TensorMap: "
        "start does not match magic string"
    )
    with pytest.raises(MetatensorError, match=message):
        metatensor.load_labels(path)

    message = (
        "unable to load Labels from buffer, use `load_buffer` to load TensorMap: "
        "start does not match magic string"
    )
    with pytest.raises(MetatensorError, match=message):
        metatensor.io.load_labels_buffer(path.read_bytes())

    message = f"unable to load a TensorBlock from '{path}', use `load` to load"
    with pytest.raises(MetatensorError, match=message):
        metatensor.load_block(path)


def test_load_errors(tmp_path):
    message = "^io error: No such file or directory \\(os error 2\\)$"
    with pytest.raises(MetatensorError, match=message):
        metatensor.load(tmp_path / "missing.mts")
    with pytest.raises(MetatensorError, match=message):
        metatensor.load_labels(str(tmp_path / "missing.mts"))
    with pytest.raises(MetatensorError, match=message):
        metatensor.load(tmp_path / "missing.mts", use_numpy=True)

    for function, name in [
        (metatensor.io.load_buffer, "TensorMap"),
        (metatensor.io.load_block_buffer, "TensorBlock"),
        (metatensor.io.load_labels_buffer, "Labels"),
    ]:
        with pytest.raises(MetatensorError, match="from empty buffer"):
            function(b"")
        with pytest.raises(MetatensorError, match=f"load {name} from empty buffer"):
            function(bytearray())

    with pytest.raises(MetatensorError, match="Could not find central directory"):
        metatensor.io.load_buffer(b"not a zip file")

    with pytest.raises(TypeError, match="`buffer` must be bytes"):
        metatensor.io.load_buffer("a string")


def _rewrite(buffer, replace: dict, drop=()) -> bytes:
    members = zip_members(buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in {**members, **replace}.items():
            if name in drop:
                continue
            archive.writestr(name, replace.get(name, content))
    return out.getvalue()


def _npy_bytes(array, header_text=None) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    data = buffer.getvalue()
    if header_text is not None:
        header = _npy._finish_header(header_text)
        offset = _npy.header_size(data)
        return header + data[offset:]
    return data


def test_malformed_archives():
    tensor = make_tensor(gradients=())
    buffer = metatensor.io.save_buffer(tensor)
    load = metatensor.io.load_buffer

    with pytest.raises(
        MetatensorError,
        match="serialization format error: specified file not found in archive: at "
        "'blocks/1/properties.npy'",
    ):
        load(_rewrite(buffer, {}, drop=["blocks/1/properties.npy"]))

    with pytest.raises(MetatensorError, match="specified file not found.*'keys.npy'"):
        load(_rewrite(buffer, {}, drop=["keys.npy"]))

    values = tensor.block_by_id(0).values
    fortran = _npy_bytes(np.asfortranarray(values))
    if b"True" in fortran:
        with pytest.raises(
            MetatensorError, match="data can not be loaded from fortran-order arrays"
        ):
            load(_rewrite(buffer, {"blocks/0/values.npy": fortran}))

    with pytest.raises(MetatensorError, match="found 3 extra bytes after the expected"):
        load(_rewrite(buffer, {"blocks/0/values.npy": _npy_bytes(values) + b"abc"}))

    with pytest.raises(MetatensorError, match="not enough data"):
        load(_rewrite(buffer, {"blocks/0/values.npy": _npy_bytes(values)[:-3]}))

    samples = np.zeros(4, dtype=[("system", "<i4"), ("atom", "<i8")])
    with pytest.raises(MetatensorError, match="invalid dtype for labels"):
        load(_rewrite(buffer, {"blocks/0/samples.npy": _npy_bytes(samples)}))

    with pytest.raises(MetatensorError, match="invalid dtype for labels"):
        load(_rewrite(buffer, {"keys.npy": _npy_bytes(np.zeros(3, np.int32))}))

    with pytest.raises(MetatensorError, match="structured arrays are not supported"):
        load(_rewrite(buffer, {"blocks/0/values.npy": _npy_bytes(samples)}))

    with pytest.raises(MetatensorError, match="unsupported data type '<U2'"):
        load(_rewrite(buffer, {"blocks/0/values.npy": _npy_bytes(np.array(["ab"]))}))

    keys = np.array([(1,), (1,), (2,)], dtype=[("key", "<i4")])
    with pytest.raises(
        MetatensorError,
        match="can not have the same label entry multiple times: \\[1\\] is already",
    ):
        load(_rewrite(buffer, {"keys.npy": _npy_bytes(keys)}))

    # inconsistent shapes
    with pytest.raises(MetatensorError, match="invalid parameter"):
        load(_rewrite(buffer, {"blocks/0/values.npy": _npy_bytes(values[:2])}))

    # huge declared sizes are checked before allocating
    huge = _npy_bytes(
        values,
        "{'descr': '<f8', 'fortran_order': False, "
        "'shape': (100000000000, 100000000000, 3), }",
    )
    with pytest.raises(MetatensorError, match="not enough data"):
        load(_rewrite(buffer, {"blocks/0/values.npy": huge}))
    huge = _npy_bytes(
        keys,
        "{'descr': [('key', '<i4')], 'fortran_order': False, "
        "'shape': (100000000000000000,), }",
    )
    with pytest.raises(MetatensorError, match="not enough data"):
        load(_rewrite(buffer, {"keys.npy": huge}))

    with pytest.raises(MetatensorError, match="invalid info.json"):
        load(_rewrite(buffer, {"info.json": b"[1, 2]"}))
    with pytest.raises(MetatensorError, match="invalid info.json"):
        load(_rewrite(buffer, {"info.json": b'{"a": 3}'}))

    corrupted = bytearray(buffer)
    corrupted[corrupted.find(b"'<f8'") + 150] ^= 0xFF
    with pytest.raises(MetatensorError, match="invalid checksum for 'blocks/0/values"):
        load(corrupted)

    # extra members are ignored
    extra = _rewrite(buffer, {"blocks/12/values.npy": b"garbage", "foo": b"bar"})
    assert_tensor_equal(load(extra), tensor)


def test_deflate():
    tensor = make_tensor()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in zip_members(metatensor.io.save_buffer(tensor)).items():
            archive.writestr(name, content)
    assert_tensor_equal(metatensor.io.load_buffer(out.getvalue()), tensor)


# ============================================================================ #
# large files, mmap, torch


def test_large_file_paths(tmp_path, monkeypatch):
    # force the code paths used for large files and large members
    from metatensor.io import _load, _save, _zip

    tensor = make_tensor()
    expected = bytes(metatensor.io.save_buffer(tensor))

    monkeypatch.setattr(_load, "_SMALL_FILE", 0)
    monkeypatch.setattr(_zip, "PARALLEL_CRC_THRESHOLD", 100)
    monkeypatch.setattr(_zip, "_CRC_CHUNK", 64)
    monkeypatch.setattr(_save, "_LARGE_ARCHIVE", 0)
    monkeypatch.setattr(_save, "_WINDOW", 10)

    path = tmp_path / "data.mts"
    metatensor.save(path, tensor)
    assert path.read_bytes() == expected
    buffer = metatensor.io.save_buffer(tensor)
    assert isinstance(buffer, memoryview)
    assert bytes(buffer) == expected

    monkeypatch.setattr(_load, "_SMALL_FILE", 0)
    monkeypatch.setattr(_zip, "PARALLEL_CRC_THRESHOLD", 100)
    monkeypatch.setattr(_zip, "_CRC_CHUNK", 64)
    assert_tensor_equal(metatensor.load(path), tensor)
    assert_tensor_equal(metatensor.io.load_buffer(path.read_bytes()), tensor)

    corrupted = bytearray(path.read_bytes())
    position = corrupted.find(b"'<f8'") + 150
    corrupted[position] ^= 1
    path.write_bytes(corrupted)
    with pytest.raises(MetatensorError, match="invalid checksum"):
        metatensor.load(path)


def test_many_members():
    from metatensor.io import _load, _save

    members = [(f"m{i}".encode(), b"", b"x") for i in range(70_000)]
    buffer = _save.build_archive(iter(members))
    with zipfile.ZipFile(io.BytesIO(buffer)) as archive:
        assert len(archive.infolist()) == 70_000
        assert archive.read("m69999") == b"x"
    archive = _load.Archive(_load.BufferSource(buffer))
    assert len(archive.entries) == 70_000
    assert archive.raw("m12345") == b"x"


def test_mmap(tmp_path):
    import mmap

    tensor = make_tensor()
    path = tmp_path / "data.mts"
    metatensor.save(path, tensor)
    content = path.read_bytes()

    loaded = metatensor.load(path, mmap=True)
    assert_tensor_equal(loaded, tensor)
    values = loaded.block_by_id(0).values
    base = values
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    assert isinstance(base, mmap.mmap)
    assert values.flags.writeable
    values[:] = 42.0
    assert np.all(loaded.block_by_id(0).values == 42.0)
    del values, base, loaded
    assert path.read_bytes() == content

    # saving replaces the file, data mapped from the old file is still valid
    loaded = metatensor.load(path, mmap=True)
    metatensor.save(path, make_tensor(dtype=np.float32))
    assert_tensor_equal(loaded, tensor)
    del loaded
    metatensor.save(path, tensor)

    block = tensor.block_by_id(0)
    metatensor.save(tmp_path / "block.mts", block)
    assert_block_equal(metatensor.load_block(tmp_path / "block.mts", mmap=True), block)

    # file-like objects fall back to reading
    with open(path, "rb") as file:
        assert_tensor_equal(metatensor.load(file, mmap=True), tensor)


def test_custom_array(tmp_path):
    calls = []

    def create_array(array):
        calls.append(array.shape)
        assert array.flags.c_contiguous and array.flags.writeable
        return array * 2

    tensor = make_tensor()
    path = tmp_path / "data.mts"
    metatensor.save(path, tensor)
    loaded = metatensor.io.load_custom_array(path, create_array)
    assert len(calls) == 6
    assert np.array_equal(
        loaded.block_by_id(0).values, 2 * tensor.block_by_id(0).values
    )

    buffer = tensor.save_buffer()
    loaded = metatensor.io.load_buffer_custom_array(
        buffer, metatensor.io.create_numpy_array
    )
    assert_tensor_equal(loaded, tensor)

    block = tensor.block_by_id(0)
    metatensor.save(tmp_path / "block.mts", block)
    loaded = metatensor.io.load_block_custom_array(
        tmp_path / "block.mts", metatensor.io.create_numpy_array
    )
    assert_block_equal(loaded, block)
    loaded = metatensor.io.load_block_buffer_custom_array(
        block.save_buffer(), metatensor.io.create_numpy_array
    )
    assert_block_equal(loaded, block)


def test_torch(torch, tmp_path):
    tensor = make_tensor()
    blocks = []
    for i in range(len(tensor)):
        block = tensor.block_by_id(i)
        values = torch.tensor(block.values, requires_grad=True)
        new = TensorBlock(values, block.samples, block.components, block.properties)
        gradient = block.gradient("positions")
        new.add_gradient(
            "positions",
            TensorBlock(
                torch.tensor(gradient.values)
                .transpose(1, 2)
                .contiguous()
                .transpose(1, 2),
                gradient.samples,
                gradient.components,
                gradient.properties,
            ),
        )
        blocks.append(new)
    keys = Labels(tensor.keys.names, torch.tensor(np.asarray(tensor.keys.values)))
    torch_tensor = TensorMap(keys, blocks)

    buffer = metatensor.io.save_buffer(torch_tensor)
    assert bytes(buffer) == bytes(metatensor.io.save_buffer(tensor))

    loaded = metatensor.io.load_buffer_custom_array(
        buffer, metatensor.io.create_torch_array
    )
    values = loaded.block_by_id(0).values
    assert isinstance(values, torch.Tensor)
    assert values.device.type == "cpu"
    assert isinstance(loaded.keys.values, np.ndarray)
    assert_tensor_equal(loaded, tensor)

    path = tmp_path / "data.mts"
    metatensor.save(path, torch_tensor)
    loaded = metatensor.io.load_custom_array(
        path, metatensor.io.create_torch_array, mmap=True
    )
    assert_tensor_equal(loaded, tensor)

    if hasattr(torch, "bfloat16"):
        block = _block(torch.ones((2, 3), dtype=torch.bfloat16))
        with pytest.raises(MetatensorError, match="can not save data with dtype"):
            metatensor.io.save_buffer(block)
