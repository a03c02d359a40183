"""Load a TorchScript model using metatensor-torch classes from C++.

A small C++ program (``run_model.cpp``) is compiled against the libtorch shipped
in the torch wheel (headers and libraries), loads a model saved from Python whose
``forward`` takes and returns a ``TensorMap``, builds the input ``TensorMap`` from
C++ through the model's compilation unit, runs the model and its backward pass,
and prints the result as JSON; this test compares it with the Python result.

The compiled program is cached (keyed by the hash of the source, the torch
version and the compiler command) in ``$METATENSOR_TORCH_CPP_CACHE`` or in a
folder of the system's temporary directory, so that only the first run pays for
the compilation (20-40 s).
"""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import List

import pytest
import torch

from metatensor.torch import Labels, TensorBlock, TensorMap


HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE / "run_model.cpp"


class SumOverAtoms(torch.nn.Module):
    """Multiply the values by a weight (one per property), then sum the samples
    of each block over the ``atom`` dimension, gradients included."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([2.0, -0.5], dtype=torch.float64))

    def forward(self, tensor: TensorMap) -> TensorMap:
        blocks: List[TensorBlock] = []
        for block in tensor.blocks():
            system = block.samples.column("system")
            unique, inverse = torch.unique(system, sorted=True, return_inverse=True)
            shape = block.shape
            shape[0] = unique.shape[0]
            values = torch.zeros(shape, dtype=block.values.dtype)
            values = values.index_add(0, inverse, block.values * self.weight)
            new_block = TensorBlock(
                values,
                Labels(["system"], unique.reshape(-1, 1)),
                block.components,
                block.properties,
            )

            if block.has_gradient("positions"):
                gradient = block.gradient("positions")
                samples = gradient.samples.values
                new_sample = inverse[samples[:, 0].to(torch.int64)].to(torch.int32)
                samples = torch.cat([new_sample.reshape(-1, 1), samples[:, 1:]], dim=1)
                unique_samples, sample_inverse = torch.unique(
                    samples, sorted=True, return_inverse=True, dim=0
                )
                shape = gradient.shape
                shape[0] = unique_samples.shape[0]
                gradient_values = torch.zeros(shape, dtype=gradient.values.dtype)
                gradient_values = gradient_values.index_add(
                    0, sample_inverse, gradient.values * self.weight
                )
                new_block.add_gradient(
                    "positions",
                    TensorBlock(
                        gradient_values,
                        Labels(gradient.samples.names, unique_samples),
                        gradient.components,
                        gradient.properties,
                    ),
                )
            blocks.append(new_block)

        result = TensorMap(tensor.keys, blocks)
        result.set_info("model", "sum-over-atoms")
        return result


def make_input() -> TensorMap:
    """The same TensorMap as ``make_input`` in ``run_model.cpp``."""

    def labels(names, rows):
        return Labels(names, torch.tensor(rows, dtype=torch.int32))

    o3_mu = labels(["o3_mu"], [[-1], [0], [1]])
    xyz = labels(["xyz"], [[0], [1], [2]])
    properties = labels(["n"], [[0], [1]])
    all_samples = [
        [[0, 0], [0, 1], [1, 0], [1, 2]],
        [[0, 2], [1, 1], [2, 0]],
    ]
    all_gradient_samples = [
        [[0, 0, 0], [0, 0, 1], [1, 0, 0], [1, 0, 1], [2, 1, 0], [3, 1, 2]],
        [[0, 0, 2], [1, 1, 1], [2, 2, 0], [2, 2, 1]],
    ]

    blocks = []
    for b, (samples, gradient_samples) in enumerate(
        zip(all_samples, all_gradient_samples)
    ):
        n = len(samples)
        values = torch.arange(n * 3 * 2, dtype=torch.float64).reshape(n, 3, 2)
        values = values * 0.25 + float(b)
        block = TensorBlock(
            values, labels(["system", "atom"], samples), [o3_mu], properties
        )
        n_gradients = len(gradient_samples)
        gradient_values = torch.sin(
            torch.arange(n_gradients * 3 * 3 * 2, dtype=torch.float64) + float(b)
        ).reshape(n_gradients, 3, 3, 2)
        block.add_gradient(
            "positions",
            TensorBlock(
                gradient_values,
                labels(["sample", "system", "atom"], gradient_samples),
                [xyz, o3_mu],
                properties,
            ),
        )
        blocks.append(block)

    return TensorMap(labels(["center_type"], [[1], [6]]), blocks)


# ============================================================================ #
# compilation


def find_compiler() -> str:
    """The C++ compiler to use: ``$CXX``, ``g++`` or ``c++``."""
    for candidate in [os.environ.get("CXX"), "g++", "c++"]:
        if candidate:
            path = shutil.which(candidate)
            if path is not None:
                return path
    return ""


def compile_command(compiler: str, output: pathlib.Path) -> List[str]:
    torch_dir = pathlib.Path(torch.__file__).parent
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    return [
        compiler,
        "-std=c++17",
        "-O1",
        "-w",
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
        str(SOURCE),
        "-o",
        str(output),
        f"-I{torch_dir / 'include'}",
        f"-I{torch_dir / 'include' / 'torch' / 'csrc' / 'api' / 'include'}",
        f"-L{torch_dir / 'lib'}",
        f"-Wl,-rpath,{torch_dir / 'lib'}",
        "-ltorch",
        "-ltorch_cpu",
        "-lc10",
    ]


def cache_dir() -> pathlib.Path:
    path = os.environ.get("METATENSOR_TORCH_CPP_CACHE")
    if path:
        return pathlib.Path(path)
    return pathlib.Path(tempfile.gettempdir()) / "metatensor-torch-cpp-tests"


def compiled_program() -> pathlib.Path:
    """Compile ``run_model.cpp`` (or reuse a cached build) and return the path
    of the executable. Skips the test when this is not possible here."""
    if sys.platform.startswith("win"):
        pytest.skip("the C++ loading test only supports Linux and macOS")
    compiler = find_compiler()
    if not compiler:
        pytest.skip(
            "no C++ compiler found ($CXX, g++ or c++): can not build the program"
        )
    torch_dir = pathlib.Path(torch.__file__).parent
    if not (torch_dir / "include" / "torch" / "script.h").exists():
        pytest.skip(f"this torch installation has no C++ headers (in {torch_dir})")

    placeholder = pathlib.Path("run_model")
    key = hashlib.sha256()
    key.update(SOURCE.read_bytes())
    key.update(torch.__version__.encode())
    key.update(str(torch_dir).encode())
    key.update(" ".join(compile_command(compiler, placeholder)).encode())
    folder = cache_dir() / key.hexdigest()[:24]
    program = folder / "run_model"
    if program.exists():
        return program

    folder.mkdir(parents=True, exist_ok=True)
    # build under a unique name, then rename: concurrent runs never see a
    # partially written executable
    fd, temporary = tempfile.mkstemp(dir=folder, prefix="run_model-", suffix=".tmp")
    os.close(fd)
    try:
        command = compile_command(compiler, pathlib.Path(temporary))
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(
                "failed to compile the C++ program:\n"
                + " ".join(command)
                + "\n"
                + result.stdout
                + result.stderr
            )
        os.replace(temporary, program)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return program


# ============================================================================ #
# the test


def assert_labels(cpp: dict, labels: Labels):
    assert cpp["names"] == labels.names
    values = labels.values
    assert cpp["values"]["shape"] == list(values.shape)
    assert cpp["values"]["data"] == values.reshape(-1).tolist()


def assert_values(cpp: dict, values: torch.Tensor):
    assert cpp["shape"] == list(values.shape)
    data = torch.tensor(cpp["data"], dtype=torch.float64).reshape(values.shape)
    torch.testing.assert_close(data, values.detach(), rtol=1e-12, atol=1e-14)


def assert_block(cpp: dict, block: TensorBlock):
    assert_values(cpp["values"], block.values)
    assert_labels(cpp["samples"], block.samples)
    assert len(cpp["components"]) == len(block.components)
    for cpp_component, component in zip(cpp["components"], block.components):
        assert_labels(cpp_component, component)
    assert_labels(cpp["properties"], block.properties)
    assert sorted(cpp["gradients"]) == sorted(block.gradients_list())
    for parameter, gradient in cpp["gradients"].items():
        assert_block(gradient, block.gradient(parameter))


def test_load_and_run_from_cpp(tmp_path):
    program = compiled_program()

    model = torch.jit.script(SumOverAtoms())
    path = tmp_path / "model.pt"
    torch.jit.save(model, str(path))

    # expected result, from Python
    reference = SumOverAtoms()
    expected = reference(make_input())
    total = sum(block.values.sum() for block in expected.blocks())
    total.backward()

    # the scripted model gives the same result
    scripted = model(make_input())
    for block, scripted_block in zip(expected.blocks(), scripted.blocks()):
        torch.testing.assert_close(block.values, scripted_block.values)

    result = subprocess.run(
        [str(program), str(path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = json.loads(result.stdout)

    tensor = output["output"]
    assert_labels(tensor["keys"], expected.keys)
    assert len(tensor["blocks"]) == len(expected)
    for cpp_block, block in zip(tensor["blocks"], expected.blocks()):
        assert_block(cpp_block, block)

    assert_values(output["weight_grad"], reference.weight.grad)
    assert output["info"] == "sum-over-atoms"

    # exceptions raised by the classes' code reach C++
    assert "can not have the same label entry multiple times" in output["error"]

    # objects created by calling `__init__` from C++ have their own containers
    assert output["shared"] == 0
