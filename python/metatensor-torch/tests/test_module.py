import subprocess
import sys
import textwrap
from typing import Dict, List

import pytest
import torch

import metatensor_torch as mtt
from metatensor_torch import Labels, LabelsEntry, TensorBlock, TensorMap


def _tensor(dtype=torch.float64):
    block = TensorBlock(
        torch.arange(6, dtype=dtype).reshape(3, 2),
        Labels.range("s", 3),
        [],
        Labels.range("p", 2),
    )
    gradient = TensorBlock(
        torch.ones((1, 2), dtype=dtype),
        Labels(["sample", "atom"], torch.tensor([[0, 2]])),
        [],
        Labels.range("p", 2),
    )
    block.add_gradient("positions", gradient)
    tensor = TensorMap(Labels.range("k", 1), [block])
    tensor.set_info("unit", "eV")
    return tensor


class Everything(mtt.Module):
    """A module using every class in forward"""

    def __init__(self):
        super().__init__()
        self.register_buffer("tensor", _tensor())
        self.register_buffer("labels", Labels.range("x", 2))
        self.register_buffer("blocks", {"a": _tensor().block(0).copy()})
        self.linear = torch.nn.Linear(2, 2, dtype=torch.float64)

    def forward(self, tensor: TensorMap) -> TensorMap:
        blocks: List[TensorBlock] = []
        for key, block in tensor.items():
            assert isinstance(key, LabelsEntry)
            assert key["k"] >= 0
            values = self.linear(block.values) + self.tensor.block(0).values.sum()
            new = TensorBlock(values, block.samples, block.components, block.properties)
            for parameter, gradient in block.gradients():
                new.add_gradient(parameter, gradient.copy())
            blocks.append(new)
        keys = Labels(tensor.keys.names, tensor.keys.values)
        keys = keys.union(Labels.range("k", 1))
        result = TensorMap(keys, blocks)
        result.set_info("labels", str(len(self.labels)) + self.labels.print(-1))
        result.set_info("block", str(self.blocks["a"].values.shape[0]))
        return result

    @torch.jit.export
    def make_input(self, n: int) -> TensorMap:
        block = TensorBlock(
            torch.ones((n, 2), dtype=torch.float64),
            Labels.range("s", n),
            [],
            Labels.range("p", 2),
        )
        return TensorMap(Labels.range("k", 1), [block])


def test_eager_module():
    module = Everything()
    assert module._mts_buffer_names == ["tensor", "labels", "blocks"]
    output = module(_tensor())
    assert output.get_info("block") == "3"
    assert output.block(0).gradients_list() == ["positions"]

    module = module.to(torch.float32)
    assert module.tensor.dtype == torch.float32
    assert module.blocks["a"].dtype == torch.float32
    module = module.double()
    assert module.tensor.dtype == torch.float64
    module = module.to("meta")
    assert module.tensor.device.type == "meta"
    assert module.labels.device.type == "meta"
    assert module.blocks["a"].device.type == "meta"
    assert module.tensor.keys.device.type == "meta"


def test_state_dict():
    module = Everything()
    module.tensor.block(0).values[:] = 42
    state = module.state_dict()
    assert "_extra_state" in state
    other = Everything()
    other.load_state_dict(state)
    assert torch.all(other.tensor.block(0).values == 42)
    assert other.tensor.get_info("unit") == "eV"
    assert other.labels == module.labels


def test_register_errors():
    module = mtt.Module()
    with pytest.raises(ValueError, match="can not mix metatensor and non-metatensor"):
        module.register_buffer("x", [Labels.single(), 3])
    with pytest.raises(ValueError, match="can not register 'y' as a buffer"):
        module.register_buffer("y", "string")
    module.register_buffer("z", Labels.single(), persistent=False)
    assert module.get_extra_state() == {}
    module.register_buffer("t", torch.zeros(3))
    assert "t" in module.state_dict()


def test_scripted_module(tmp_path):
    module = torch.jit.script(Everything())
    output = module(_tensor())
    assert isinstance(output, TensorMap)
    assert output.get_info("block") == "3"
    assert module.make_input(4).block(0).values.shape == (4, 2)

    # moving scripted modules also moves the metatensor attributes
    module = module.to(torch.float32)
    assert module.tensor.dtype == torch.float32
    module = module.to(torch.float64)
    module = module.to("meta")
    assert module.tensor.device.type == "meta"
    assert module.labels.device.type == "meta"

    path = str(tmp_path / "module.pt")
    torch.jit.save(torch.jit.script(Everything()), path)
    # meta modules can not be moved back
    loaded = torch.jit.load(path)
    assert loaded(_tensor()).get_info("block") == "3"
    loaded = loaded.to(torch.float32)
    assert loaded.tensor.dtype == torch.float32


def test_save_load_fresh_process(tmp_path):
    path = str(tmp_path / "module.pt")
    module = torch.jit.script(Everything())
    torch.jit.save(module, path)

    script = textwrap.dedent(
        f"""
        import warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        import torch

        module = torch.jit.load({path!r})
        # without importing metatensor_torch: only builtin types cross the boundary
        n_blocks = module.make_input(3)
        print("ok")
        """
    )
    # returning a class instance requires the Python classes, import them
    script = script.replace("import torch\n", "import torch\nimport metatensor_torch\n")
    script += textwrap.dedent(
        """
        out = module(module.make_input(5))
        assert isinstance(out, metatensor_torch.TensorMap)
        assert out.block(0).values.shape == (5, 2)
        assert out.get_info("block") == "3"
        module = module.to(torch.float32)
        assert module.tensor.dtype == torch.float32
        print("done")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "done" in result.stdout


def test_fresh_process_without_import(tmp_path):
    class Builtin(torch.nn.Module):
        def forward(self, values: torch.Tensor) -> Dict[str, torch.Tensor]:
            block = TensorBlock(
                values,
                Labels.range("s", values.shape[0]),
                [],
                Labels.range("p", values.shape[1]),
            )
            tensor = TensorMap(Labels.range("k", 1), [block])
            moved = tensor.keys_to_samples("k")
            return {
                "values": moved.block(0).values,
                "samples": moved.block(0).samples.values,
            }

    path = str(tmp_path / "builtin.pt")
    torch.jit.save(torch.jit.script(Builtin()), path)
    script = textwrap.dedent(
        f"""
        import sys, warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        import torch
        module = torch.jit.load({path!r})
        out = module(torch.ones((4, 2)))
        assert out["values"].shape == (4, 2)
        assert out["samples"].shape == (4, 2)
        assert "metatensor_torch" not in sys.modules
        print("done")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "done" in result.stdout


def test_version_and_dtype_name():
    assert mtt.version() == mtt.__version__
    assert mtt.dtype_name(torch.float64) == "torch.float64"

    @torch.jit.script
    def name(tensor: torch.Tensor) -> str:
        return mtt.dtype_name(tensor.dtype) + mtt.version()

    assert name(torch.zeros(1, dtype=torch.int32)) == "torch.int32" + mtt.__version__
    import metatensor.torch

    assert metatensor.torch is mtt
    assert set(mtt.__all__) >= {"Labels", "TensorBlock", "TensorMap", "Module"}
