"""Tests of the `.mts` format: exact bytes and round trips."""

import io
import os
import pathlib
import struct
import zipfile

import numpy as np
import pytest

import metatensor
from metatensor import Labels, MetatensorError, TensorBlock, TensorMap
from metatensor.io import _npy

from ._io_helpers import (
    _block,
    assert_block_equal,
    assert_labels_equal,
    assert_tensor_equal,
    make_tensor,
    zip_members,
)


# ============================================================================ #
# helpers


def tiny_tensor() -> TensorMap:
    """The ``tiny.mts`` example of the format specification."""
    block = TensorBlock(
        values=np.arange(6, dtype=np.float64).reshape(2, 1, 3),
        samples=Labels(["system", "atom"], np.array([[0, 0], [0, 1]], dtype=np.int32)),
        components=[Labels(["xyz"], np.array([[0]], dtype=np.int32))],
        properties=Labels(["n"], np.array([[0], [1], [2]], dtype=np.int32)),
    )
    gradient = TensorBlock(
        values=np.arange(9, dtype=np.float64).reshape(1, 3, 1, 3),
        samples=Labels(
            ["sample", "system", "atom"], np.array([[1, 0, 1]], dtype=np.int32)
        ),
        components=[
            Labels(["d"], np.array([[0], [1], [2]], dtype=np.int32)),
            Labels(["xyz"], np.array([[0]], dtype=np.int32)),
        ],
        properties=block.properties,
    )
    block.add_gradient("positions", gradient)
    tensor = TensorMap(
        Labels(["center_type"], np.array([[6]], dtype=np.int32)), [block]
    )
    tensor.set_info("creator", "me")
    return tensor


# ============================================================================ #
# exact bytes


def test_tiny_file_bytes():
    tensor = tiny_tensor()
    buffer = bytes(metatensor.io.save_buffer(tensor))
    assert len(buffer) == 2885

    expected = {
        "keys.npy": 132,
        "blocks/0/values.npy": 176,
        "blocks/0/samples.npy": 144,
        "blocks/0/components/0.npy": 132,
        "blocks/0/properties.npy": 140,
        "blocks/0/gradients/positions/values.npy": 200,
        "blocks/0/gradients/positions/samples.npy": 140,
        "blocks/0/gradients/positions/components/0.npy": 140,
        "blocks/0/gradients/positions/components/1.npy": 132,
        "info.json": 21,
    }
    members = zip_members(buffer)
    assert list(members.keys()) == list(expected.keys())
    for name, size in expected.items():
        assert len(members[name]) == size
        if name.endswith(".npy"):
            assert members[name][8:10] == struct.pack("<H", 118)

    assert members["info.json"] == b'{\n  "creator": "me"\n}'
    assert members["blocks/0/values.npy"][10:].startswith(
        b"{ 'descr': '<f8', 'fortran_order': False, 'shape': (2, 1, 3, ) }"
    )
    assert members["blocks/0/samples.npy"][10:].startswith(
        b"{ 'descr': [('system', '<i4'), ('atom', '<i4'), ], 'fortran_order': False, "
        b"'shape': (2, ) }"
    )

    # size per member
    total = 22
    for name, data in members.items():
        total += 50 + len(name) + len(data) + 46 + len(name)
    assert total == len(buffer)

    # ZIP headers
    assert buffer[:30] == struct.pack(
        "<IHHHHHIIIHH",
        0x04034B50,
        20,
        0,
        0,
        0,
        0x2821,
        zipfile.ZipFile(io.BytesIO(buffer)).getinfo("keys.npy").CRC,
        0xFFFFFFFF,
        0xFFFFFFFF,
        8,
        20,
    )
    assert buffer[30:38] == b"keys.npy"
    assert buffer[38:58] == struct.pack("<HHQQ", 1, 16, 132, 132)
    with zipfile.ZipFile(io.BytesIO(buffer)) as archive:
        for info in archive.infolist():
            assert info.external_attr == 0x81A40000
            assert info.create_version == 46
            assert info.create_system == 3
            assert info.date_time == (2000, 1, 1, 0, 0, 0)
            assert info.compress_type == zipfile.ZIP_STORED


def test_tiny_file_numpy_writer(tmp_path):
    tensor = tiny_tensor()
    assert len(metatensor.io.save_buffer(tensor, use_numpy=True)) == 2949

    path = tmp_path / "tiny.npz"
    metatensor.save(path, tensor, use_numpy=True)
    assert os.listdir(tmp_path) == ["tiny.npz"]
    assert path.stat().st_size == 2949
    assert_tensor_equal(metatensor.load(path), tensor)
    assert_tensor_equal(metatensor.load(path, use_numpy=True), tensor)


def test_labels_file_bytes():
    labels = Labels(["center_type"], np.array([[6]], dtype=np.int32))
    buffer = bytes(labels.save_buffer())
    assert len(buffer) == 132
    assert buffer.startswith(
        b"\x93NUMPY\x01\x00v\x00{ 'descr': [('center_type', '<i4'), ], "
        b"'fortran_order': False, 'shape': (1, ) }"
    )
    assert buffer[-5:] == b"\n\x06\x00\x00\x00"
    assert_labels_equal(metatensor.io.load_labels_buffer(buffer), labels)
    # numpy can read it too
    array = np.load(io.BytesIO(buffer))
    assert array.dtype.names == ("center_type",)


def test_npy_headers():
    header = _npy.data_header("<b1", (3, 2))
    text = b"{ 'descr': '<b1', 'fortran_order': False, 'shape': (3, 2, ) }"
    assert header == b"\x93NUMPY\x01\x00v\x00" + text + b" " * (117 - len(text)) + b"\n"
    assert len(header) % 64 == 0

    header = _npy.labels_header([], 0)
    assert header.startswith(
        b"\x93NUMPY\x01\x00v\x00{ 'descr': [], 'fortran_order': False, 'shape': (0, ) }"
    )

    # version 2 for headers larger than 64 KiB
    names = [f"name_{i:05}" for i in range(5000)]
    header = _npy.labels_header(names, 1)
    assert header[6:8] == b"\x02\x00"
    (length,) = struct.unpack("<I", header[8:12])
    assert length + 12 == len(header)
    assert len(header) % 64 == 0
    assert header.endswith(b"\n")

    # padding is never empty
    for n in range(200):
        header = _npy.data_header("<f8", (n,) * (n % 7))
        assert len(header) % 64 == 0
        assert header.endswith(b" \n")


@pytest.mark.parametrize(
    "text",
    [
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }",
        '{"shape": (3, 4), "fortran_order": False, "descr": "<f8"}',
        "{ 'descr' : '<f8' ,\n 'fortran_order': False, 'shape': (3,4,), }",
    ],
)
def test_npy_header_parser(text):
    descr, fortran, shape = _npy.parse_header_text(text + "\n")
    assert descr == "<f8"
    assert fortran is False
    assert shape == (3, 4)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{'descr': '<f8', 'fortran_order': False}", "expected exactly the keys"),
        ("{'descr': '<f8', 'fortran_order': 0, 'shape': ()}", "must be True or False"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': [1]}", "tuple of int"),
        ("{'descr': __import__('os'), 'fortran_order': False}", "unexpected char"),
        ("{'descr': '<f8', " * 3, "duplicated key|unexpected end"),
        ("[" * 50 + "]" * 50, "nested too deeply"),
    ],
)
def test_npy_header_parser_errors(text, message):
    with pytest.raises(MetatensorError, match=message):
        _npy.parse_header_text(text + "\n")


# ============================================================================ #
# round trips


DTYPES = [
    np.float16,
    np.float32,
    np.float64,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
    np.complex64,
    np.complex128,
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("use_numpy", [False, True])
def test_dtypes(dtype, use_numpy):
    tensor = make_tensor(dtype=dtype)
    buffer = metatensor.io.save_buffer(tensor, use_numpy=use_numpy)
    for loader_numpy in [False, True]:
        loaded = metatensor.io.load_buffer(buffer, use_numpy=loader_numpy)
        assert_tensor_equal(loaded, tensor)
        values = loaded.block_by_id(0).values
        assert values.dtype == dtype
        assert values.flags.c_contiguous
        assert values.flags.writeable
        assert values.dtype.isnative

    header = zip_members(buffer)["blocks/0/values.npy"]
    if not use_numpy:
        descr = {np.bool_: "<b1", np.int8: "<i1", np.uint8: "<u1"}.get(dtype)
        if descr is not None:
            assert f"'descr': '{descr}'".encode() in header


def test_non_contiguous_data():
    base = np.arange(2 * 4 * 6, dtype=np.float64).reshape(2 * 4, 6)
    cases = [
        np.asfortranarray(base),
        base[::2, ::2],
        base.astype(">f8"),
        np.asfortranarray(base).astype(">f8")[::-1],
    ]
    for values in cases:
        block = _block(values)
        buffer = metatensor.io.save_buffer(block)
        reference = metatensor.io.save_buffer(
            _block(np.ascontiguousarray(values, "<f8"))
        )
        assert bytes(buffer) == bytes(reference)
        loaded = metatensor.io.load_block_buffer(buffer)
        assert loaded.values.dtype == np.dtype("=f8")
        assert np.array_equal(loaded.values, values)


def test_big_endian_and_bar_descr_are_readable():
    tensor = make_tensor(dtype=np.float32, gradients=())
    # write a file with numpy, with big-endian values and '|' descriptors
    arrays = {}
    members = zip_members(metatensor.io.save_buffer(tensor))
    for name, data in members.items():
        arrays[name[:-4]] = np.load(io.BytesIO(data))
    arrays["blocks/0/values"] = arrays["blocks/0/values"].astype(">f4")
    arrays["keys"] = arrays["keys"].astype([("key", ">i4")])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)

    loaded = metatensor.io.load_buffer(buffer.getvalue())
    assert loaded.block_by_id(0).values.dtype == np.dtype("=f4")
    assert np.array_equal(loaded.block_by_id(0).values, tensor.block_by_id(0).values)
    assert_labels_equal(loaded.keys, tensor.keys)

    for dtype in [np.int8, np.uint8, np.bool_]:
        block = _block(np.ones((3, 2), dtype=dtype))
        members = zip_members(metatensor.io.save_buffer(block))
        arrays = {
            name[:-4]: np.load(io.BytesIO(data)) for name, data in members.items()
        }
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        assert b"'|" in buffer.getvalue()
        assert_block_equal(metatensor.io.load_block_buffer(buffer.getvalue()), block)


def test_bool_normalization():
    values = np.array([[True, False], [True, True]])
    buffer = bytearray(metatensor.io.save_buffer(_block(values)))
    # corrupt a bool and fix the CRC so that the archive is valid
    members = zip_members(buffer)
    data = bytearray(members["values.npy"])
    data[-1] = 7
    members["values.npy"] = bytes(data)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    loaded = metatensor.io.load_block_buffer(out.getvalue())
    assert loaded.values.view(np.uint8).max() == 1
    assert np.array_equal(loaded.values, values)


def test_zero_sized():
    # zero samples, zero properties, zero-names labels
    values = np.zeros((0, 3, 0))
    block = TensorBlock(
        values,
        Labels.empty(["system"]),
        [Labels(["c"], np.arange(3, dtype=np.int32).reshape(-1, 1))],
        Labels.empty(["p"]),
    )
    loaded = metatensor.io.load_block_buffer(metatensor.io.save_buffer(block))
    assert_block_equal(loaded, block)

    block = TensorBlock(
        np.zeros((0, 4)),
        Labels([], np.empty((0, 0), dtype=np.int32)),
        [],
        Labels(["p"], np.arange(4, dtype=np.int32).reshape(-1, 1)),
    )
    loaded = metatensor.io.load_block_buffer(metatensor.io.save_buffer(block))
    assert_block_equal(loaded, block)

    for count in [0, 1]:
        labels = Labels([], np.empty((count, 0), dtype=np.int32))
        loaded = metatensor.io.load_labels_buffer(labels.save_buffer())
        assert loaded.names == []
        assert loaded.values.shape == (count, 0)

    empty = TensorMap(Labels.empty(["key"]), [])
    loaded = metatensor.io.load_buffer(metatensor.io.save_buffer(empty))
    assert len(loaded) == 0
    assert loaded.keys.names == ["key"]
    loaded = metatensor.io.load_buffer(metatensor.io.save_buffer(empty, use_numpy=True))
    assert len(loaded) == 0


def test_gradients_layout():
    block = _block(
        np.ones((3, 2, 4)), n_components=1, gradients=["strain", "positions"]
    )
    grad = TensorBlock(
        np.ones((2, 3, 2, 4)),
        Labels(["sample"], np.array([[0], [2]], dtype=np.int32)),
        [
            Labels(["xyz"], np.arange(3, dtype=np.int32).reshape(-1, 1)),
            *block.components,
        ],
        block.properties,
    )
    # gradient with its own gradient
    inner = TensorBlock(
        np.ones((1, 5, 3, 2, 4)),
        Labels(["sample"], np.array([[0]], dtype=np.int32)),
        [Labels(["e"], np.arange(5, dtype=np.int32).reshape(-1, 1)), *grad.components],
        block.properties,
    )
    grad.add_gradient("cell", inner)
    block.add_gradient("alpha", grad)
    assert block.gradients_list() == ["strain", "positions", "alpha"]

    buffer = metatensor.io.save_buffer(block)
    names = list(zip_members(buffer).keys())
    assert names == [
        "values.npy",
        "samples.npy",
        "components/0.npy",
        "properties.npy",
        "gradients/alpha/values.npy",
        "gradients/alpha/samples.npy",
        "gradients/alpha/components/0.npy",
        "gradients/alpha/components/1.npy",
        "gradients/alpha/gradients/cell/values.npy",
        "gradients/alpha/gradients/cell/samples.npy",
        "gradients/alpha/gradients/cell/components/0.npy",
        "gradients/alpha/gradients/cell/components/1.npy",
        "gradients/alpha/gradients/cell/components/2.npy",
        "gradients/positions/values.npy",
        "gradients/positions/samples.npy",
        "gradients/positions/components/0.npy",
        "gradients/positions/components/1.npy",
        "gradients/strain/values.npy",
        "gradients/strain/samples.npy",
        "gradients/strain/components/0.npy",
        "gradients/strain/components/1.npy",
    ]
    for use_numpy in [False, True]:
        loaded = metatensor.io.load_block_buffer(buffer, use_numpy=use_numpy)
        assert loaded.gradients_list() == ["alpha", "positions", "strain"]
        assert loaded.gradient("alpha").gradients_list() == ["cell"]
        assert_block_equal(loaded, block)

    # numpy can read all members
    for data in zip_members(buffer).values():
        np.load(io.BytesIO(data), allow_pickle=False)


def test_info():
    tensor = make_tensor()
    assert "info.json" not in zip_members(metatensor.io.save_buffer(tensor))
    tensor.set_info("b", "été")
    tensor.set_info("a", "x\ny")
    members = zip_members(metatensor.io.save_buffer(tensor))
    assert list(members.keys())[-1] == "info.json"
    assert members["info.json"] == '{\n  "a": "x\\ny",\n  "b": "été"\n}'.encode()
    for use_numpy in [False, True]:
        buffer = metatensor.io.save_buffer(tensor, use_numpy=use_numpy)
        loaded = metatensor.io.load_buffer(buffer)
        assert loaded.info() == {"a": "x\ny", "b": "été"}


def test_save_load_paths_and_files(tmp_path):
    tensor = make_tensor()
    expected = bytes(metatensor.io.save_buffer(tensor))

    path = tmp_path / "file.mts"
    metatensor.save(str(path), tensor)
    assert path.read_bytes() == expected
    metatensor.save(path, tensor)
    assert path.read_bytes() == expected

    for source in [str(path), path, io.BytesIO(expected)]:
        assert_tensor_equal(metatensor.load(source), tensor)
    with open(path, "rb") as file:
        assert_tensor_equal(metatensor.load(file), tensor)

    # file-like objects get the raw bytes
    file = io.BytesIO()
    metatensor.save(file, tensor)
    assert file.getvalue() == expected

    for buffer in [expected, bytearray(expected), memoryview(expected)]:
        assert_tensor_equal(metatensor.io.load_buffer(buffer), tensor)

    with pytest.raises(TypeError, match="use the `\\*_buffer` functions"):
        metatensor.load(expected)

    with pytest.raises(
        TypeError, match="`data` must be one of 'Labels', 'TensorBlock'"
    ):
        metatensor.save(path, np.zeros(3))
    with pytest.raises(TypeError, match="<class 'numpy.ndarray'>"):
        metatensor.io.save_buffer(np.zeros(3))

    # class shortcuts
    tensor.save(tmp_path / "other.mts")
    assert_tensor_equal(TensorMap.load(tmp_path / "other.mts"), tensor)
    assert_tensor_equal(TensorMap.load_buffer(tensor.save_buffer()), tensor)


def test_extension(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tensor = make_tensor()

    message = "adding '.mts' extension, the file will be saved at 'serialize-test.mts'"
    with pytest.warns(UserWarning, match=message):
        metatensor.save("serialize-test", tensor)
    assert os.path.exists("serialize-test.mts")

    with pytest.warns(UserWarning, match="saved at 'data.npz.mts'"):
        metatensor.save(pathlib.Path("data.npz"), tensor)
    assert os.path.exists("data.npz.mts")

    # the warning points to the user code
    with pytest.warns(UserWarning, match="saved at 'other.mts'") as record:
        tensor.save("other")
    assert record[0].filename == __file__
    with pytest.warns(UserWarning, match="saved at 'other.mts'") as record:
        metatensor.io.save("other", tensor)
    assert record[0].filename == __file__

    with pytest.warns(UserWarning, match="saved at 'labels.mts'"):
        metatensor.save("labels", tensor.keys)
    assert_labels_equal(metatensor.load_labels("labels.mts"), tensor.keys)

    # no extension added by the numpy writer
    metatensor.save("data.npz", tensor, use_numpy=True)
    assert os.path.exists("data.npz")
    assert_tensor_equal(metatensor.load("data.npz"), tensor)


def test_block_and_labels_files(tmp_path):
    tensor = make_tensor()
    block = tensor.block_by_id(1)
    path = tmp_path / "block.mts"
    metatensor.save(path, block)
    for use_numpy in [False, True]:
        assert_block_equal(metatensor.load_block(path, use_numpy=use_numpy), block)
    assert_block_equal(TensorBlock.load(path), block)

    path = tmp_path / "keys.mts"
    metatensor.save(path, tensor.keys, use_numpy=True)  # ignored for Labels
    assert path.read_bytes() == bytes(tensor.keys.save_buffer())
    labels = metatensor.load_labels(path)
    assert_labels_equal(labels, tensor.keys)
    assert isinstance(labels.values, np.ndarray)
    assert labels.values.dtype == np.int32


def test_pickle():
    import pickle

    tensor = make_tensor()
    tensor.set_info("a", "b")
    for protocol in [4, 5]:
        assert_tensor_equal(pickle.loads(pickle.dumps(tensor, protocol)), tensor)
        block = tensor.block_by_id(0)
        assert_block_equal(pickle.loads(pickle.dumps(block, protocol)), block)
        assert_labels_equal(
            pickle.loads(pickle.dumps(tensor.keys, protocol)), tensor.keys
        )
