"""Exception types: the reference metatensor.torch raises RuntimeError where this
package raises ValueError or MetatensorError; both types catch the errors."""

import pytest
import torch

import metatensor.torch
from metatensor import MetatensorError
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatensor.torch._errors import InvalidParameterError, ModelFileError


def test_classes():
    for error in [InvalidParameterError, ModelFileError, MetatensorError]:
        assert issubclass(error, RuntimeError)
        assert issubclass(error, Exception)
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(ModelFileError, ValueError)


def test_block_shape_errors():
    message = (
        "invalid parameter: invalid block: the values shape along axis 0 is 3 but "
        "we have 2 sample label entries"
    )
    for error in [RuntimeError, ValueError, InvalidParameterError]:
        with pytest.raises(error, match=message):
            TensorBlock(
                values=torch.zeros((3, 2)),
                samples=Labels.range("s", 2),
                components=[],
                properties=Labels.range("p", 2),
            )


def test_tensor_errors():
    block = TensorBlock(
        values=torch.zeros((2, 2)),
        samples=Labels.range("s", 2),
        components=[],
        properties=Labels.range("p", 2),
    )
    with pytest.raises(RuntimeError, match="invalid parameter"):
        TensorMap(Labels.range("key", 2), [block])


@pytest.mark.parametrize(
    "load",
    [metatensor.torch.load, metatensor.torch.load_block, metatensor.torch.load_labels],
)
def test_load_errors(tmp_path, load):
    path = tmp_path / "bad.mts"
    path.write_bytes(b"this is not a metatensor file")
    with pytest.raises(RuntimeError) as info:
        load(str(path))
    assert isinstance(info.value, MetatensorError)

    buffer = torch.frombuffer(bytearray(b"PK\x03\x04 truncated"), dtype=torch.uint8)
    with pytest.raises(RuntimeError):
        metatensor.torch.load_buffer(buffer)
