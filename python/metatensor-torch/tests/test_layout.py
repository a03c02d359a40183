"""The attribute layout of the TorchScript classes (part of the model-file ABI,
see ``metatensor_torch._classes``) and the behaviour that depends on it:
crossing the Python/TorchScript boundary, containers that must not be shared
between instances."""

import io
import re
import zipfile
from typing import Dict, List, Tuple

import torch

from metatensor_torch import Labels, TensorBlock, TensorMap


LABELS = "__torch__.metatensor_torch._labels.Labels"

EXPECTED_LAYOUTS = {
    "_labels.py": {
        "LabelsEntry": [("_names", "List[str]"), ("_values", "Tensor")],
        "Labels": [("_names", "List[str]"), ("_values", "Tensor")],
    },
    "_block.py": {
        "_GradientData": [
            ("path", "str"),
            ("values", "Tensor"),
            ("samples", LABELS),
            ("components", f"List[{LABELS}]"),
            ("parameters", "List[str]"),
        ],
        "TensorBlock": [
            ("_values", "Tensor"),
            ("_samples", LABELS),
            ("_components", f"List[{LABELS}]"),
            ("_properties", LABELS),
            ("_parameters", "List[str]"),
            ("_gradients", "List[__torch__.metatensor_torch._block._GradientData]"),
            ("_path", "str"),
            ("_is_view", "bool"),
        ],
    },
    "_tensor.py": {
        "TensorMap": [
            ("_keys", LABELS),
            ("_blocks", "List[__torch__.metatensor_torch._block.TensorBlock]"),
            ("_info_keys", "List[str]"),
            ("_info_values", "List[str]"),
        ],
    },
}


def _archive_code(module) -> Dict[str, str]:
    """The TorchScript code of the metatensor_torch modules stored in the
    archive of ``module``, by file name."""
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    archive = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    result = {}
    for name in archive.namelist():
        match = re.search(r"code/__torch__/metatensor_torch/(\w+\.py)$", name)
        if match is not None:
            result[match.group(1)] = archive.read(name).decode("utf8")
    return result


def _class_attributes(code: str, name: str) -> List[Tuple[str, str]]:
    lines = code.splitlines()
    start = lines.index(f"class {name}:")
    attributes = []
    for line in lines[start + 1 :]:
        match = re.match(r"^  (\w+) : (.+)$", line)
        if match is None:
            break
        attributes.append((match.group(1), match.group(2)))
    return attributes


class PassThrough(torch.nn.Module):
    def forward(self, tensor: TensorMap) -> TensorMap:
        return tensor


def test_model_file_layout():
    code = _archive_code(torch.jit.script(PassThrough()))
    for file, classes in EXPECTED_LAYOUTS.items():
        for name, expected in classes.items():
            assert _class_attributes(code[file], name) == expected, name


def _nested_map() -> TensorMap:
    properties = Labels.range("p", 2)
    blocks = []
    for i in range(2):
        block = TensorBlock(
            torch.rand(3, 2, dtype=torch.float64),
            Labels.range("s", 3),
            [],
            properties,
        )
        gradient = TensorBlock(
            torch.rand(2, 4, 2, dtype=torch.float64),
            Labels(["sample", "atom"], torch.tensor([[0, i], [2, 1]])),
            [Labels.range("xyz", 4)],
            properties,
        )
        gradient.add_gradient(
            "cell",
            TensorBlock(
                torch.rand(1, 5, 4, 2, dtype=torch.float64),
                Labels.range("sample", 1),
                [Labels.range("abc", 5), Labels.range("xyz", 4)],
                properties,
            ),
        )
        block.add_gradient("positions", gradient)
        block.add_gradient(
            "strain",
            TensorBlock(
                torch.rand(1, 2, dtype=torch.float64),
                Labels.range("sample", 1),
                [],
                properties,
            ),
        )
        blocks.append(block)
    tensor = TensorMap(Labels.range("key", 2), blocks)
    tensor.set_info("unit", "eV")
    tensor.set_info("model", "test")
    return tensor


def _assert_same(first: TensorMap, second: TensorMap):
    assert first.keys == second.keys
    assert first.info() == second.info()
    for block, other in zip(first.blocks(), second.blocks()):
        assert torch.equal(block.values, other.values)
        assert block.samples == other.samples
        assert block.gradients_list() == other.gradients_list()
        for parameter, gradient in block.gradients():
            gradient_other = other.gradient(parameter)
            assert torch.equal(gradient.values, gradient_other.values)
            assert gradient.samples == gradient_other.samples
            assert gradient.components == gradient_other.components
            assert gradient.gradients_list() == gradient_other.gradients_list()
            for name, nested in gradient.gradients():
                assert torch.equal(nested.values, gradient_other.gradient(name).values)


def test_boundary_round_trip():
    @torch.jit.script
    def identity(tensor: TensorMap) -> TensorMap:
        return tensor

    @torch.jit.script
    def describe(tensor: TensorMap) -> List[str]:
        block = tensor.block(1)
        result = block.gradients_list()
        result += block.gradient("positions").gradients_list()
        result.append(str(block.gradient("positions").gradient("cell").shape))
        info = tensor.get_info("model")
        assert info is not None
        result.append(info)
        return result

    tensor = _nested_map()
    result = identity(tensor)
    _assert_same(result, tensor)
    assert result.block(0).gradient("positions").gradients_list() == ["cell"]
    assert describe(tensor) == ["positions", "strain", "cell", "[1, 5, 4, 2]", "test"]
    # shared tensors, not copies
    assert result.block(1).values.data_ptr() == tensor.block(1).values.data_ptr()


def test_info():
    tensor = _nested_map()
    tensor.set_info("unit", "kcal/mol")
    assert tensor.info() == {"unit": "kcal/mol", "model": "test"}
    assert list(tensor.info()) == ["unit", "model"]
    assert tensor.get_info("unit") == "kcal/mol"
    assert tensor.get_info("missing") is None
    copied = tensor.copy()
    copied.set_info("unit", "eV")
    assert tensor.get_info("unit") == "kcal/mol"
    assert copied.info() == {"unit": "eV", "model": "test"}


@torch.jit.script
def _independent_containers(values: torch.Tensor) -> List[str]:
    samples = Labels.range("s", values.shape[0])
    properties = Labels.range("p", values.shape[1])
    blocks: List[TensorBlock] = []
    for _ in range(3):
        blocks.append(TensorBlock(values, samples, [], properties))
    gradient_samples = Labels.range("sample", values.shape[0])
    blocks[0].add_gradient("g", TensorBlock(values, gradient_samples, [], properties))
    first = TensorMap(Labels.range("k", 1), [blocks[1]])
    second = TensorMap(Labels.range("k", 1), [blocks[2]])
    first.set_info("name", "first")
    result = [str(len(blocks[1].gradients_list())), str(len(blocks[2].gradients()))]
    result += [str(len(second.info())), ",".join(blocks[0].gradients_list())]
    return result


def test_containers_are_not_shared():
    # empty list literals in `__init__` must not become constants shared by all
    # instances, even once the profiling executor has optimized the graph
    for _ in range(5):
        assert _independent_containers(torch.zeros(2, 3)) == ["0", "0", "0", "g"]
