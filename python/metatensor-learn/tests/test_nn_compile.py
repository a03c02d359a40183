"""torch.compile with the core classes: metadata operations (numpy based) are
kept out of the graphs, the per-block modules are compiled."""

import pytest


torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402

from metatensor import Labels, TensorBlock, TensorMap  # noqa: E402
from metatensor_learn import nn  # noqa: E402


def _tensor():
    generator = torch.Generator().manual_seed(0)
    block = TensorBlock(
        torch.randn(4, 3, generator=generator, dtype=torch.float64),
        Labels.range("sample", 4),
        [],
        Labels.range("p", 3),
    )
    block.add_gradient(
        "positions",
        TensorBlock(
            torch.randn(6, 3, 3, generator=generator, dtype=torch.float64),
            Labels(
                ["sample", "atom"],
                np.array([[0, 0], [0, 1], [1, 1], [2, 0], [3, 2], [3, 3]]),
            ),
            [Labels.range("xyz", 3)],
            Labels.range("p", 3),
        ),
    )
    return TensorMap(Labels.range("key", 1), [block])


def test_compile():
    torch._dynamo.reset()
    tensor = _tensor()
    model = nn.Sequential(
        tensor.keys,
        nn.Linear(tensor.keys, 3, 4, dtype=torch.float64),
        nn.SiLU(tensor.keys),
    )
    expected = model(tensor)
    compiled = torch.compile(model, backend="eager")
    output = compiled(tensor)
    torch.testing.assert_close(output.block(0).values, expected.block(0).values)
    torch.testing.assert_close(
        output.block(0).gradient("positions").values,
        expected.block(0).gradient("positions").values,
    )
    assert output.block(0).properties == expected.block(0).properties
