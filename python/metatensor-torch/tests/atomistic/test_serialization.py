import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch

import metatensor.torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatensor.torch.atomistic import (
    NeighborListOptions,
    System,
    load_system,
    load_system_buffer,
    save,
    save_buffer,
)

from ._models import neighbor_block


def _neighbors(system: System) -> TensorBlock:
    samples = torch.tensor([[0, 1, 0, 0, 0], [1, 2, 0, 1, -1], [2, 2, 1, 0, 0]])
    first = samples[:, 0].long()
    second = samples[:, 1].long()
    vectors = (
        system.positions[second]
        - system.positions[first]
        + samples[:, 2:].to(system.dtype) @ system.cell
    )
    return neighbor_block(vectors.reshape(-1, 3, 1), samples)


def _data(system: System, with_gradient: bool = False) -> TensorMap:
    block = TensorBlock(
        values=torch.arange(4, dtype=system.dtype).reshape(4, 1),
        samples=Labels(["system", "atom"], torch.tensor([[0, i] for i in range(4)])),
        components=[],
        properties=Labels("charge", torch.tensor([[0]])),
    )
    if with_gradient:
        block.add_gradient(
            "positions",
            TensorBlock(
                values=torch.ones((1, 3, 1), dtype=system.dtype, requires_grad=True),
                samples=Labels(["sample", "atom"], torch.tensor([[0, 1]])),
                components=[Labels("xyz", torch.tensor([[0], [1], [2]]))],
                properties=block.properties,
            ),
        )
    tensor = TensorMap(Labels("_", torch.tensor([[0]])), [block])
    tensor.set_info("unit", "e")
    return tensor


def _full_system(dtype=torch.float64) -> System:
    system = System(
        types=torch.tensor([1, 6, 8, 8]),
        positions=torch.tensor(
            [[0.1, 0.2, 0.3], [1.0, 1.1, 1.2], [2.0, 0.5, 0.25], [0.3, 3.3, 1.1]],
            dtype=dtype,
        ),
        cell=torch.tensor(
            [[4.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.1, 3.7]], dtype=dtype
        ),
        pbc=torch.tensor([True, False, True]),
    )
    first = NeighborListOptions(3.5, True, False, "model")
    first.length_unit = "angstrom"
    second = NeighborListOptions(0.1 + 0.2, False, True)
    system.add_neighbor_list(first, _neighbors(system))
    system.add_neighbor_list(second, _neighbors(system))
    system.add_data("charge", _data(system, with_gradient=True))
    system.add_data("mtt::custom/variant", _data(system))
    return system


def assert_same_system(actual: System, expected: System):
    assert actual.dtype == expected.dtype
    assert torch.equal(actual.types, expected.types)
    assert torch.equal(actual.positions, expected.positions.detach())
    assert torch.equal(actual.cell, expected.cell.detach())
    assert torch.equal(actual.pbc, expected.pbc)

    actual_lists = actual.known_neighbor_lists()
    expected_lists = expected.known_neighbor_lists()
    assert len(actual_lists) == len(expected_lists)
    for a, e in zip(actual_lists, expected_lists):
        assert a == e
        assert repr(a) == repr(e)
        assert a.cutoff == e.cutoff
        a_block = actual.get_neighbor_list(a)
        e_block = expected.get_neighbor_list(e)
        assert torch.equal(a_block.values, e_block.values.detach())
        assert a_block.samples == e_block.samples

    assert sorted(actual.known_data()) == sorted(expected.known_data())
    for name in actual.known_data():
        a_data = actual.get_data(name)
        e_data = expected.get_data(name)
        assert a_data.info() == e_data.info()
        assert metatensor.torch.equal(a_data, e_data.to("cpu"))


def test_buffer_round_trip():
    system = _full_system()
    buffer = save_buffer(system)
    assert buffer.dtype == torch.uint8
    assert buffer.dim() == 1
    loaded = load_system_buffer(buffer)
    assert_same_system(loaded, system)


def test_file_round_trip(tmp_path):
    system = _full_system()
    path = tmp_path / "system.mta"
    save(str(path), system)
    assert_same_system(load_system(str(path)), system)
    # pathlib.Path
    save(path, system)
    assert_same_system(load_system(path), system)
    # file objects
    output = io.BytesIO()
    save(output, system)
    output.seek(0)
    assert_same_system(load_system(output), system)


def test_file_content():
    system = _full_system(torch.float32)
    data = save_buffer(system).numpy().tobytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())
        assert sorted(names) == [
            "cell.npy",
            "data/charge.mts",
            "data/mtt::custom/variant.mts",
            "pairs/0/data.mts",
            "pairs/0/options.json",
            "pairs/1/data.mts",
            "pairs/1/options.json",
            "pbc.npy",
            "positions.npy",
            "types.npy",
        ]
        positions = np.load(io.BytesIO(archive.read("positions.npy")))
        assert positions.dtype == np.float64
        assert np.load(io.BytesIO(archive.read("cell.npy"))).dtype == np.float64
        assert np.load(io.BytesIO(archive.read("types.npy"))).dtype == np.int32
        assert np.load(io.BytesIO(archive.read("pbc.npy"))).dtype == np.bool_

        options = json.loads(archive.read("pairs/0/options.json"))
        assert options["class"] == "NeighborListOptions"
        assert options["requestors"] == ["model"]
        assert options["full_list"] is True

        block = metatensor.torch.load_block_buffer(
            torch.frombuffer(
                bytearray(archive.read("pairs/1/data.mts")), dtype=torch.uint8
            )
        )
        assert block.values.dtype == torch.float32


def test_float32_round_trip():
    # the reference implementation can not reload float32 systems with neighbor
    # lists; here the dtype of the lists and data is used for the system
    system = _full_system(torch.float32)
    loaded = load_system_buffer(save_buffer(system))
    assert loaded.dtype == torch.float32
    assert_same_system(loaded, system)


def test_dtype_without_lists():
    system = System(
        types=torch.tensor([1]),
        positions=torch.tensor([[0.5, 0.25, 0.125]], dtype=torch.float32),
        cell=torch.zeros((3, 3), dtype=torch.float32),
        pbc=torch.tensor([False, False, False]),
    )
    # nothing records the dtype in the file: loaded as float64, same values
    loaded = load_system_buffer(save_buffer(system))
    assert loaded.dtype == torch.float64
    assert loaded.positions.tolist() == [[0.5, 0.25, 0.125]]
    # pickle keeps the dtype
    assert pickle.loads(pickle.dumps(system)).dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_pickle(dtype):
    system = _full_system(dtype)
    restored = pickle.loads(pickle.dumps(system))
    assert isinstance(restored, System)
    assert_same_system(restored, system)


def test_requires_grad():
    system = _full_system()
    positions = system.positions.clone().requires_grad_(True)
    system.positions = positions
    loaded = load_system_buffer(save_buffer(system))
    assert not loaded.positions.requires_grad
    assert_same_system(loaded, system)


def test_errors(tmp_path):
    system = _full_system()
    message = "the path to save a system must end with '.mta', got '.*system.mts'"
    with pytest.raises(RuntimeError, match=message):
        save(str(tmp_path / "system.mts"), system)
    assert not (tmp_path / "system.mts").exists()

    with pytest.raises(TypeError, match="`system` must be a System"):
        save_buffer("not a system")
    with pytest.raises(TypeError, match="`buffer` must be a torch.Tensor"):
        load_system_buffer(b"data")
    with pytest.raises(ValueError, match="`buffer` must be a 1-dimensional tensor of"):
        load_system_buffer(torch.zeros(10))
    with pytest.raises(ValueError, match="this is not a ZIP archive"):
        load_system_buffer(torch.zeros(10, dtype=torch.uint8))

    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as archive:
        archive.writestr("types.npy", b"")
    buffer = torch.frombuffer(bytearray(output.getvalue()), dtype=torch.uint8)
    with pytest.raises(ValueError, match="could not read 'types.npy'"):
        load_system_buffer(buffer)

    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as archive:
        npy = io.BytesIO()
        np.save(npy, np.array([1, 2], dtype=np.int32))
        archive.writestr("types.npy", npy.getvalue())
    buffer = torch.frombuffer(bytearray(output.getvalue()), dtype=torch.uint8)
    with pytest.raises(
        ValueError, match="invalid system file: missing 'positions.npy'"
    ):
        load_system_buffer(buffer)


def test_failed_save_keeps_existing_file(tmp_path):
    path = tmp_path / "system.mta"
    system = _full_system()
    save(path, system)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        save(path, "not a system")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["system.mta"]


def test_torchscript():
    @torch.jit.script
    def function(system: System) -> System:
        buffer = save_buffer(system)
        return load_system_buffer(buffer)

    with pytest.raises(torch.jit.Error, match="not supported in TorchScript"):
        function(_full_system())
