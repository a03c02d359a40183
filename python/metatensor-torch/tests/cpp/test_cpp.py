"""Load a TorchScript model using metatensor-torch classes from C++.

A small C++ program (``run_model.cpp``) is compiled against the libtorch shipped
in the torch wheel (headers and libraries), loads a model saved from Python whose
``forward`` takes and returns a ``TensorMap``, builds the input ``TensorMap`` from
C++ through the model's compilation unit, runs the model and its backward pass,
and prints the result as JSON; this test compares it with the Python result.

The compiled program is cached (see ``_cpp_build.py``), so that only the first
run pays for the compilation (20-40 s).
"""

import json
import pathlib
import subprocess
from typing import List

import torch

from metatensor.torch import Labels, TensorBlock, TensorMap

from .._cpp_build import compiled_program


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
    program = compiled_program(SOURCE)

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
