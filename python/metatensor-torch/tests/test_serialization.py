import io
import os
import pickle

import numpy as np
import pytest
import torch

import metatensor
import metatensor_torch as mtt
from metatensor_torch import Labels, TensorBlock, TensorMap


def _assert_same_block(block, core_block):
    assert block.samples.names == list(core_block.samples.names)
    np.testing.assert_array_equal(
        block.samples.values.numpy(), np.asarray(core_block.samples.values)
    )
    assert block.properties.names == list(core_block.properties.names)
    np.testing.assert_array_equal(
        block.properties.values.numpy(), np.asarray(core_block.properties.values)
    )
    for c, core_c in zip(block.components, core_block.components):
        np.testing.assert_array_equal(c.values.numpy(), np.asarray(core_c.values))
    np.testing.assert_array_equal(block.values.numpy(), np.asarray(core_block.values))
    assert block.gradients_list() == list(core_block.gradients_list())
    for parameter in block.gradients_list():
        _assert_same_block(block.gradient(parameter), core_block.gradient(parameter))


def _assert_same_tensor(tensor, core):
    assert tensor.keys.names == list(core.keys.names)
    np.testing.assert_array_equal(
        tensor.keys.values.numpy(), np.asarray(core.keys.values)
    )
    for i in range(len(tensor)):
        _assert_same_block(tensor.block(i), core.block(i))


@pytest.mark.parametrize(
    "name",
    [
        "data.mts",
        "spherical-expansion.mts",
        "radial-spectrum.mts",
        "qm7-power-spectrum.mts",
    ],
)
def test_load_reference_files(data_dir, name):
    tensor = mtt.load(data_dir / name)
    assert isinstance(tensor, TensorMap)
    core = metatensor.load(data_dir / name)
    _assert_same_tensor(tensor, core)
    # byte-identical with metatensor-core
    buffer = mtt.save_buffer(tensor)
    assert buffer.dtype == torch.uint8
    assert buffer.dim() == 1
    assert buffer.numpy().tobytes() == bytes(metatensor.io.save_buffer(core))
    if name != "qm7-power-spectrum.mts":  # this one is compressed
        assert buffer.numpy().tobytes() == (data_dir / name).read_bytes()


def test_load_block_and_labels(data_dir):
    block = mtt.load_block(str(data_dir / "block.mts"))
    assert isinstance(block, TensorBlock)
    assert block.values.shape == (9, 5, 3)
    assert block.gradients_list() == ["positions"]
    assert (
        mtt.save_buffer(block).numpy().tobytes()
        == (data_dir / "block.mts").read_bytes()
    )

    labels = mtt.load_labels(data_dir / "keys.mts")
    assert isinstance(labels, Labels)
    assert len(labels) == 27
    assert labels.values.dtype == torch.int32
    assert (
        mtt.save_buffer(labels).numpy().tobytes()
        == (data_dir / "keys.mts").read_bytes()
    )

    with open(data_dir / "keys.mts", "rb") as fd:
        assert mtt.load_labels(fd) == labels


def test_round_trips(tmp_path, data_dir):
    tensor = mtt.load(data_dir / "data.mts")
    tensor.set_info("unit", "eV")
    path = tmp_path / "file.mts"
    mtt.save(path, tensor)
    loaded = mtt.load(str(path))
    assert loaded.get_info("unit") == "eV"
    _assert_same_tensor(loaded, mtt.to_core(tensor))

    # without extension
    with pytest.warns(UserWarning, match="adding '.mts' extension"):
        mtt.save(str(tmp_path / "other"), tensor.block(0))
    assert os.path.exists(tmp_path / "other.mts")
    block = TensorBlock.load(str(tmp_path / "other.mts"))
    assert torch.equal(block.values, tensor.block(0).values)

    # file-like objects
    buffer = io.BytesIO()
    mtt.save(buffer, tensor)
    buffer.seek(0)
    assert mtt.load(buffer).keys == tensor.keys

    # buffers
    for data, loader in [
        (tensor, mtt.load_buffer),
        (tensor.block(2), mtt.load_block_buffer),
        (tensor.keys, mtt.load_labels_buffer),
    ]:
        buffer = mtt.save_buffer(data)
        again = mtt.save_buffer(loader(buffer))
        assert torch.equal(again, buffer)
    assert TensorMap.load_buffer(tensor.save_buffer()).keys == tensor.keys
    assert (
        TensorBlock.load_buffer(tensor.block(0).save_buffer()).shape
        == tensor.block(0).shape
    )
    assert Labels.load_buffer(tensor.keys.save_buffer()) == tensor.keys
    tensor.save(str(tmp_path / "method.mts"))
    assert TensorMap.load(str(tmp_path / "method.mts")).keys == tensor.keys
    tensor.keys.save(str(tmp_path / "labels.mts"))
    assert Labels.load(str(tmp_path / "labels.mts")) == tensor.keys


def test_dtypes_and_devices():
    for dtype in [
        torch.float16,
        torch.float32,
        torch.float64,
        torch.int8,
        torch.int32,
        torch.int64,
        torch.uint8,
        torch.bool,
        torch.complex128,
    ]:
        block = TensorBlock(
            torch.ones((2, 3), dtype=dtype),
            Labels.range("s", 2),
            [],
            Labels.range("p", 3),
        )
        loaded = mtt.load_block_buffer(mtt.save_buffer(block))
        assert loaded.dtype == dtype
        assert torch.equal(loaded.values, block.values)

    # zero-length blocks
    block = TensorBlock(
        torch.zeros((0, 3)), Labels.empty("s"), [], Labels.range("p", 3)
    )
    loaded = mtt.load_block_buffer(mtt.save_buffer(block))
    assert loaded.values.shape == (0, 3)


def test_buffer_errors():
    with pytest.raises(
        ValueError, match="`buffer` must be a tensor of uint8, not torch.float32"
    ):
        mtt.load_buffer(torch.zeros(10))
    with pytest.raises(ValueError, match="1-dimensional"):
        mtt.load_buffer(torch.zeros((2, 10), dtype=torch.uint8))
    with pytest.raises(TypeError, match="`data` must be one of"):
        mtt.save_buffer(3)


def test_pickle(data_dir):
    tensor = mtt.load(data_dir / "data.mts")
    buffer = io.BytesIO()
    torch.save(tensor, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert torch.equal(mtt.save_buffer(loaded), mtt.save_buffer(tensor))
    assert pickle.loads(pickle.dumps(tensor.keys)) == tensor.keys


def test_keys_moves_match_core(data_dir):
    tensor = mtt.load(data_dir / "spherical-expansion.mts")
    core = metatensor.load(data_dir / "spherical-expansion.mts")
    _assert_same_tensor(
        tensor.keys_to_properties("neighbor_type"),
        core.keys_to_properties("neighbor_type"),
    )
    _assert_same_tensor(
        tensor.keys_to_samples("center_type"), core.keys_to_samples("center_type")
    )
    _assert_same_tensor(
        tensor.keys_to_samples("center_type", sort_samples=False),
        core.keys_to_samples("center_type", sort_samples=False),
    )
    _assert_same_tensor(
        tensor.components_to_properties("o3_mu"), core.components_to_properties("o3_mu")
    )


class Serialization(torch.nn.Module):
    def __init__(self, tensor: TensorMap):
        super().__init__()
        self.tensor = tensor

    def forward(self, path: str) -> TensorMap:
        mtt.save(path, self.tensor)
        return self.tensor

    @torch.jit.export
    def save_others(self, path: str):
        mtt.save(path, self.tensor.keys)
        mtt.save(path, self.tensor.block(0))
        self.tensor.save(path)

    @torch.jit.export
    def load(self, path: str) -> TensorMap:
        return mtt.load(path)

    @torch.jit.export
    def load_others(self, path: str) -> TensorBlock:
        labels = mtt.load_labels(path)
        block = mtt.load_block(path)
        assert len(labels) == 0
        return block

    @torch.jit.export
    def buffers_(self, buffer: torch.Tensor) -> torch.Tensor:
        tensor = mtt.load_buffer(buffer)
        block = mtt.load_block_buffer(buffer)
        labels = mtt.load_labels_buffer(buffer)
        assert len(labels) == len(tensor) + len(block)
        return mtt.save_buffer(tensor)


def test_script_serialization(tmp_path, data_dir):
    tensor = mtt.load(data_dir / "data.mts")
    module = torch.jit.script(Serialization(tensor))
    # the save call is kept in the scripted code
    assert "save(" in module.code
    with pytest.raises(torch.jit.Error, match="metatensor.torch.save is not supported"):
        module(str(tmp_path / "x.mts"))
    with pytest.raises(torch.jit.Error, match="not supported in TorchScript"):
        module.load(str(tmp_path / "x.mts"))
    with pytest.raises(torch.jit.Error, match="not supported in TorchScript"):
        module.buffers_(torch.zeros(3, dtype=torch.uint8))
