"""TensorBlock with torch tensors and array API arrays."""

import numpy as np
import pytest

from metatensor import Labels, MetatensorError, TensorBlock


def _labels(torch, name, n, device="cpu"):
    values = torch.arange(n, dtype=torch.int32, device=device).reshape(-1, 1)
    return Labels([name], values, assume_unique=True)


def _torch_block(torch, device="cpu", dtype=None):
    dtype = dtype or torch.float64
    block = TensorBlock(
        torch.full((3, 2, 4), 2.0, dtype=dtype, device=device),
        _labels(torch, "s", 3, device),
        [_labels(torch, "c", 2, device)],
        _labels(torch, "p", 4, device),
    )
    gradient = TensorBlock(
        torch.full((2, 2, 4), 3.0, dtype=dtype, device=device),
        Labels(
            ["sample", "g"],
            torch.tensor([[0, 0], [2, 1]], dtype=torch.int32, device=device),
            assume_unique=True,
        ),
        block.components,
        block.properties,
    )
    block.add_gradient("g", gradient)
    return block


def test_torch_values(torch):
    values = torch.zeros((3, 2))
    # labels can be numpy when the values are torch on cpu
    block = TensorBlock(values, Labels.range("s", 3), [], Labels.range("p", 2))
    assert block.values is values
    assert block.dtype == torch.float32
    assert block.device == torch.device("cpu")
    assert block.shape == (3, 2)
    assert len(block) == 3

    block = TensorBlock(
        torch.zeros((3, 2), dtype=torch.bfloat16),
        Labels.range("s", 3),
        [],
        Labels.range("p", 2),
    )
    assert block.dtype == torch.bfloat16


def test_torch_device_errors(torch):
    message = (
        "invalid parameter: invalid block: values and samples must be on the same "
        "device, got 'ExtDev:0' and 'CPU:0'"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(
            torch.zeros((3, 2), device="meta"),
            Labels.range("s", 3),
            [],
            Labels.range("p", 2),
        )

    message = (
        "invalid parameter: invalid block: values and properties must be on the "
        "same device, got 'CPU:0' and 'ExtDev:0'"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(
            torch.zeros((3, 2)),
            Labels.range("s", 3),
            [],
            _labels(torch, "p", 2, "meta"),
        )

    message = "values and components must be on the same device"
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(
            torch.zeros((3, 1, 2)),
            Labels.range("s", 3),
            [_labels(torch, "c", 1, "meta")],
            Labels.range("p", 2),
        )

    # everything on meta is fine
    block = _torch_block(torch, "meta")
    assert block.device == torch.device("meta")
    assert block.gradient("g").device.type == "meta"


def test_gradient_origin_device_dtype(torch):
    block = TensorBlock(
        np.zeros((3, 2)), Labels.range("s", 3), [], Labels.range("p", 2)
    )
    gradient = TensorBlock(
        torch.zeros((1, 2), dtype=torch.float64),
        Labels(["sample"], np.array([[0]])),
        [],
        block.properties,
    )
    message = (
        "invalid parameter: the gradient data has a different origin "
        "\\('python.torch'\\) than the value data \\('python.numpy'\\)"
    )
    with pytest.raises(MetatensorError, match=message):
        block.add_gradient("g", gradient)
    # the gradient is still usable
    assert gradient.values.shape == (1, 2)

    block = TensorBlock(
        torch.zeros((3, 2), dtype=torch.float64),
        Labels.range("s", 3),
        [],
        Labels.range("p", 2),
    )
    gradient = TensorBlock(
        torch.zeros((1, 2), dtype=torch.float64, device="meta"),
        Labels(
            ["sample"],
            torch.zeros((1, 1), dtype=torch.int32, device="meta"),
            assume_unique=True,
        ),
        [],
        _labels(torch, "p", 2, "meta"),
    )
    message = (
        "invalid parameter: the gradient values are on device 'ExtDev:0' but the "
        "block values are on device 'CPU:0'"
    )
    with pytest.raises(MetatensorError, match=message):
        block.add_gradient("g", gradient)

    gradient = TensorBlock(
        torch.zeros((1, 2), dtype=torch.float32),
        Labels(["sample"], np.array([[0]])),
        [],
        block.properties,
    )
    message = (
        "invalid parameter: the gradient values have dtype 'f32' but the block "
        "values have dtype 'f64'"
    )
    with pytest.raises(MetatensorError, match=message):
        block.add_gradient("g", gradient)

    # mixing numpy and torch labels on the same device is fine
    gradient = TensorBlock(
        torch.zeros((1, 2), dtype=torch.float64),
        Labels(["sample"], torch.tensor([[2]], dtype=torch.int32)),
        [],
        Labels.range("p", 2),
    )
    block.add_gradient("g", gradient)
    assert block.gradient("g").values is gradient.values


def test_to_torch(torch):
    block = TensorBlock(
        np.full((3, 2, 4), 2.0),
        Labels.range("s", 3),
        [Labels.range("c", 2)],
        Labels.range("p", 4),
    )
    block.add_gradient(
        "g",
        TensorBlock(
            np.full((2, 2, 4), 3.0),
            Labels(["sample", "g"], np.array([[0, 0], [2, 1]])),
            block.components,
            block.properties,
        ),
    )

    converted = block.to(arrays="torch")
    assert isinstance(converted.values, torch.Tensor)
    assert converted.dtype == torch.float64
    assert isinstance(converted.samples.values, torch.Tensor)
    assert isinstance(converted.components[0].values, torch.Tensor)
    assert isinstance(converted.properties.values, torch.Tensor)
    gradient = converted.gradient("g")
    assert isinstance(gradient.values, torch.Tensor)
    assert isinstance(gradient.samples.values, torch.Tensor)
    # labels shared before the conversion are still shared
    assert gradient.properties is converted.properties
    assert gradient.components[0] is converted.components[0]
    # values are unchanged
    np.testing.assert_equal(converted.values.numpy(), block.values)

    converted = block.to(arrays="torch", dtype=torch.float32)
    assert converted.dtype == torch.float32
    assert converted.gradient("g").dtype == torch.float32

    converted = block.to(torch.float32, arrays="torch", device="meta")
    assert converted.device.type == "meta"
    assert converted.samples.values.device.type == "meta"
    assert converted.gradient("g").samples.values.device.type == "meta"
    assert converted.dtype == torch.float32

    message = "can not move numpy array to non-cpu device: meta"
    with pytest.raises(ValueError, match=message):
        block.to("meta")
    with pytest.raises(ValueError, match=message):
        block.to(device=torch.device("meta"))

    # numpy dtypes are accepted for torch arrays and conversely
    converted = block.to(arrays="torch").to(np.float32)
    assert converted.dtype == torch.float32
    converted = block.to(torch.float32)
    assert converted.dtype == np.float32


def test_torch_to_numpy(torch):
    block = _torch_block(torch)
    converted = block.to(arrays="numpy")
    assert isinstance(converted.values, np.ndarray)
    assert isinstance(converted.samples.values, np.ndarray)
    assert isinstance(converted.gradient("g").values, np.ndarray)
    assert isinstance(converted.gradient("g").samples.values, np.ndarray)
    assert converted.gradient("g").properties is converted.properties

    # moving torch values to another device moves numpy labels too
    block = TensorBlock(
        torch.zeros((3, 2)), Labels.range("s", 3), [], Labels.range("p", 2)
    )
    converted = block.to("meta")
    assert converted.device.type == "meta"
    assert converted.samples.values.device.type == "meta"
    assert isinstance(converted.samples.values, torch.Tensor)

    # dtype only: the labels stay the same
    converted = block.to(torch.float64)
    assert converted.samples is block.samples
    assert converted.dtype == torch.float64

    message = "unexpected type in `TensorBlock.to`: <class 'torch.Tensor'>"
    with pytest.raises(TypeError, match=message):
        block.to(torch.zeros(3))


def test_torch_copy(torch):
    block = _torch_block(torch)
    copied = block.copy()
    assert copied.values is not block.values
    assert torch.equal(copied.values, block.values)
    assert copied.gradient("g").values is not block.gradient("g").values
    assert copied.samples is block.samples

    shallow = block.copy(deep=False)
    assert shallow.values is block.values


def test_torch_repr(torch):
    block = _torch_block(torch)
    expected = """TensorBlock with shape (3, 2, 4)
    samples: [s]
    components: [c]
    properties: [p]

    gradients:
        g => TensorBlock with shape (2, 2, 4)"""
    assert repr(block) == expected


def test_array_api():
    xp = pytest.importorskip("array_api_strict")

    values = xp.ones((3, 2, 4), dtype=xp.float64)
    block = TensorBlock(
        values, Labels.range("s", 3), [Labels.range("c", 2)], Labels.range("p", 4)
    )
    assert block.values is values
    assert block.shape == (3, 2, 4)
    assert len(block) == 3
    assert block.dtype == xp.float64

    gradient = TensorBlock(
        xp.zeros((2, 2, 4), dtype=xp.float64),
        Labels(["sample"], np.array([[0], [2]])),
        block.components,
        block.properties,
    )
    block.add_gradient("g", gradient)
    assert block.gradient("g").values is gradient.values

    wrong = TensorBlock(
        xp.zeros((2, 2, 4), dtype=xp.float32),
        Labels(["sample"], np.array([[0], [2]])),
        block.components,
        block.properties,
    )
    message = (
        "the gradient values have dtype '(f32|.*float32)' but the block values have"
    )
    with pytest.raises(MetatensorError, match=message):
        block.add_gradient("h", wrong)

    wrong = TensorBlock(
        np.zeros((2, 2, 4)),
        Labels(["sample"], np.array([[0], [2]])),
        block.components,
        block.properties,
    )
    message = (
        "the gradient data has a different origin \\('python.numpy'\\) than the "
        "value data \\('python.array_api_strict'\\)"
    )
    with pytest.raises(MetatensorError, match=message):
        block.add_gradient("h", wrong)

    copied = block.copy()
    assert copied.values is not values
    assert copied.shape == (3, 2, 4)
    assert bool(xp.all(copied.values == values))
    assert copied.gradient("g").values is not gradient.values

    converted = block.to(dtype=xp.float32)
    assert converted.dtype == xp.float32
    assert converted.gradient("g").dtype == xp.float32

    converted = block.to(arrays="numpy")
    assert isinstance(converted.values, np.ndarray)
    np.testing.assert_equal(converted.values, np.ones((3, 2, 4)))

    assert repr(block).startswith("TensorBlock with shape (3, 2, 4)")


def test_cuda(torch):
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")

    block = _torch_block(torch)
    converted = block.to("cuda")
    assert converted.device.type == "cuda"
    assert converted.samples.values.device.type == "cuda"
    assert converted.gradient("g").values.device.type == "cuda"
    assert converted.gradient("g").properties is converted.properties

    back = converted.to(arrays="numpy")
    assert isinstance(back.values, np.ndarray)
    assert isinstance(back.samples.values, np.ndarray)

    message = (
        "invalid parameter: invalid block: values and samples must be on the same "
        "device, got 'CUDA:0' and 'CPU:0'"
    )
    with pytest.raises(MetatensorError, match=message):
        TensorBlock(
            torch.zeros((3, 2), device="cuda"),
            Labels.range("s", 3),
            [],
            Labels.range("p", 2),
        )
