"""TensorMap with torch tensors and array API arrays."""

import numpy as np
import pytest

from metatensor import Labels, MetatensorError, TensorBlock, TensorMap


def _numpy_block(value=1.0, n_properties=2):
    block = TensorBlock(
        np.full((3, 1, n_properties), value),
        Labels.range("s", 3),
        [Labels.range("c", 1)],
        Labels.range("p", n_properties),
    )
    block.add_gradient(
        "g",
        TensorBlock(
            np.full((2, 1, n_properties), 10 * value),
            Labels(["sample", "g"], np.array([[0, 0], [2, 1]])),
            block.components,
            block.properties,
        ),
    )
    return block


def _numpy_tensor():
    keys = Labels(["key_1", "key_2"], np.array([[0, 0], [1, 0], [2, 2]]))
    return TensorMap(keys, [_numpy_block(i + 1.0, i + 1) for i in range(3)])


def _torch_block(torch, device="cpu", dtype=None):
    dtype = dtype or torch.float64

    def labels(name, n):
        values = torch.arange(n, dtype=torch.int32, device=device).reshape(-1, 1)
        return Labels([name], values, assume_unique=True)

    return TensorBlock(
        torch.zeros((3, 2), dtype=dtype, device=device),
        labels("s", 3),
        [],
        labels("p", 2),
    )


def test_origin_device_dtype_errors(torch):
    keys = Labels.range("key", 2)
    numpy_block = TensorBlock(
        np.zeros((3, 2)), Labels.range("s", 3), [], Labels.range("p", 2)
    )

    message = (
        "invalid parameter: invalid tensor map: got blocks with different origins, "
        "at least \\('python.numpy'\\) and \\('python.torch'\\) were detected"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorMap(keys, [numpy_block, _torch_block(torch)])

    message = (
        "invalid parameter: invalid tensor map: got blocks on different devices, "
        "at least 'CPU:0' and 'ExtDev:0' were detected"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorMap(keys, [_torch_block(torch), _torch_block(torch, "meta")])

    message = (
        "invalid parameter: invalid tensor map: got blocks with different dtypes, "
        "at least 'f64' and 'f32' were detected"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorMap(keys, [_torch_block(torch), _torch_block(torch, dtype=torch.float32)])

    message = (
        "invalid parameter: tried to build a TensorMap from keys and blocks on "
        "different devices: the keys are on 'CPU:0' while the blocks are on "
        "'ExtDev:0'"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorMap(keys, [_torch_block(torch, "meta"), _torch_block(torch, "meta")])

    # keys and blocks can use different backends on the same device
    tensor = TensorMap(keys, [_torch_block(torch), _torch_block(torch)])
    assert tensor.device == torch.device("cpu")
    assert tensor.dtype == torch.float64

    keys = Labels(
        ["key"],
        torch.tensor([[0], [1]], dtype=torch.int32, device="meta"),
        assume_unique=True,
    )
    tensor = TensorMap(keys, [_torch_block(torch, "meta"), _torch_block(torch, "meta")])
    assert tensor.device.type == "meta"


def test_to(torch):
    tensor = _numpy_tensor()
    tensor.set_info("creator", "me")

    converted = tensor.to(arrays="torch")
    assert isinstance(converted.keys.values, torch.Tensor)
    assert converted.device == torch.device("cpu")
    assert converted.dtype == torch.float64
    assert converted.get_info("creator") == "me"
    for block in converted:
        assert isinstance(block.values, torch.Tensor)
        assert isinstance(block.samples.values, torch.Tensor)
        assert isinstance(block.gradient("g").values, torch.Tensor)
    for block, original in zip(converted, tensor):
        np.testing.assert_equal(block.values.numpy(), original.values)

    # selection works with torch keys
    assert converted.block(key_1=1).values.shape == (3, 1, 2)
    assert len(converted.blocks(key_2=0)) == 2

    converted = tensor.to(torch.float32, arrays="torch", device="meta")
    assert converted.device.type == "meta"
    assert converted.keys.values.device.type == "meta"
    assert converted.dtype == torch.float32
    assert converted.block(0).gradient("g").values.device.type == "meta"
    assert converted.get_info("creator") == "me"

    back = tensor.to(arrays="torch").to(arrays="numpy")
    assert isinstance(back.keys.values, np.ndarray)
    assert isinstance(back.block(0).values, np.ndarray)
    assert back.dtype == np.float64

    message = "can not move numpy array to non-cpu device: meta"
    with pytest.raises(ValueError, match=message):
        tensor.to("meta")

    message = "can not give a dtype twice in `TensorMap.to`"
    with pytest.raises(ValueError, match=message):
        tensor.to(torch.float32, dtype=torch.float64)

    # torch blocks moved to another device move numpy keys too
    tensor = TensorMap(Labels.range("key", 1), [_torch_block(torch)])
    converted = tensor.to("meta")
    assert converted.keys.values.device.type == "meta"

    # empty maps
    empty = TensorMap(Labels.empty(["key"]), [])
    converted = empty.to(arrays="torch")
    assert isinstance(converted.keys.values, torch.Tensor)
    assert len(converted) == 0


def test_print_torch(torch):
    tensor = _numpy_tensor().to(arrays="torch")
    expected = """TensorMap with 3 blocks
    keys: [key_1, key_2]
    blocks:
       0  0   => TensorBlock with shape (3, 1, 1)
       1  0   => TensorBlock with shape (3, 1, 2)
       2  2   => TensorBlock with shape (3, 1, 3)"""
    assert repr(tensor) == expected


def test_array_api():
    xp = pytest.importorskip("array_api_strict")

    blocks = []
    for i in range(3):
        blocks.append(
            TensorBlock(
                xp.full((3, 2), float(i), dtype=xp.float64),
                Labels.range("s", 3),
                [],
                Labels.range("p", 2),
            )
        )
    tensor = TensorMap(Labels.range("key", 3), blocks)
    assert len(tensor) == 3
    assert tensor.dtype == xp.float64
    assert tensor.block(key=2).values is blocks[2].values

    copied = tensor.copy()
    assert copied.block(2).values is not blocks[2].values
    assert bool(xp.all(copied.block(2).values == 2.0))

    converted = tensor.to(arrays="numpy")
    assert isinstance(converted.block(0).values, np.ndarray)

    wrong = TensorBlock(
        xp.zeros((3, 2), dtype=xp.float32),
        Labels.range("s", 3),
        [],
        Labels.range("p", 2),
    )
    with pytest.raises(MetatensorError, match="got blocks with different dtypes"):
        TensorMap(Labels.range("key", 2), [blocks[0], wrong])

    mixed = TensorBlock(
        np.zeros((3, 2)), Labels.range("s", 3), [], Labels.range("p", 2)
    )
    message = (
        "got blocks with different origins, at least \\('python.array_api_strict'\\) "
        "and \\('python.numpy'\\) were detected"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorMap(Labels.range("key", 2), [blocks[0], mixed])


def test_cuda(torch):
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")

    tensor = _numpy_tensor()
    converted = tensor.to(arrays="torch", device="cuda")
    assert converted.device.type == "cuda"
    assert converted.keys.values.device.type == "cuda"
    assert converted.block(key_1=1).values.device.type == "cuda"

    message = (
        "tried to build a TensorMap from keys and blocks on different devices: the "
        "keys are on 'CPU:0' while the blocks are on 'CUDA:0'"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorMap(tensor.keys, converted.blocks())
