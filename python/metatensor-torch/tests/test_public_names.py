"""The classes show their public name (``metatensor.torch.TensorMap``), while
TorchScript keeps compiling them under the qualified names recorded in model
files (``__torch__.metatensor_torch._tensor.TensorMap``)."""

import io
import os
import pickle
import zipfile

import pytest
import torch

import metatensor.torch
from metatensor.torch import Labels, LabelsEntry, TensorBlock, TensorMap


# saved with `torch.jit.save(torch.jit.script(ScaleFirstBlock()))` before the
# classes were shown under their public names (without the `.debug_pkl`
# members, to keep the file small)
ARCHIVE = os.path.join(os.path.dirname(__file__), "data", "scripted-module-0.1.pt")

QUALIFIED_NAMES = {
    Labels: "__torch__.metatensor_torch._labels.Labels",
    LabelsEntry: "__torch__.metatensor_torch._labels.LabelsEntry",
    TensorBlock: "__torch__.metatensor_torch._block.TensorBlock",
    TensorMap: "__torch__.metatensor_torch._tensor.TensorMap",
}


class ScaleFirstBlock(torch.nn.Module):
    def forward(self, tensor: TensorMap) -> TensorMap:
        block = tensor.block_by_id(0)
        _ = tensor.keys.entry(0)
        new = TensorBlock(
            block.values * 2, block.samples, block.components, block.properties
        )
        return TensorMap(tensor.keys, [new])


def _tensor() -> TensorMap:
    block = TensorBlock(
        torch.ones(2, 1),
        Labels("s", torch.tensor([[0], [1]])),
        [],
        Labels("p", torch.tensor([[0]])),
    )
    return TensorMap(Labels("a", torch.tensor([[0]])), [block])


def test_printed_names():
    tensor = _tensor()
    assert str(type(tensor)) == "<class 'metatensor.torch.TensorMap'>"
    assert str(type(tensor.block())) == "<class 'metatensor.torch.TensorBlock'>"
    assert str(type(tensor.keys)) == "<class 'metatensor.torch.Labels'>"
    assert str(type(tensor.keys.entry(0))) == "<class 'metatensor.torch.LabelsEntry'>"
    for cls in QUALIFIED_NAMES:
        assert getattr(metatensor.torch, cls.__name__) is cls

    # pickling goes through the public module
    assert pickle.loads(pickle.dumps(tensor)).block().values.sum() == 2


def test_qualified_names():
    for cls, name in QUALIFIED_NAMES.items():
        assert torch._jit_internal._qualified_name(cls) == name
        assert torch.jit._state._get_script_class(cls).qualified_name() == name

    scripted = torch.jit.script(ScaleFirstBlock())
    inputs = [str(i.type()) for i in scripted.forward.graph.inputs()]
    assert inputs[1] == QUALIFIED_NAMES[TensorMap]


def test_archive_saved_before():
    module = torch.jit.load(ARCHIVE)
    inputs = [str(i.type()) for i in module.forward.graph.inputs()]
    assert inputs[1] == QUALIFIED_NAMES[TensorMap]
    result = module(_tensor())
    assert isinstance(result, TensorMap)
    assert result.block().values.tolist() == [[2.0], [2.0]]

    # the same module saved now contains the same code for the classes
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(ScaleFirstBlock()), buffer)
    new = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    old = zipfile.ZipFile(ARCHIVE)

    def classes_code(archive):
        code = {}
        for name in archive.namelist():
            if "/code/__torch__/metatensor_torch/" in name and name.endswith(".py"):
                code[name.split("/code/", 1)[1]] = archive.read(name)
        return code

    old_code = classes_code(old)
    assert len(old_code) >= 3
    assert classes_code(new) == old_code


def test_compiled_after_import():
    # a class defined after the import refers to the classes by their public
    # module, and compiles
    @torch.jit.script
    def count(tensor: TensorMap, labels: Labels, entry: LabelsEntry) -> int:
        return len(tensor.keys) + len(labels) + len(entry)

    labels = Labels.range("x", 3)
    assert count(_tensor(), labels, labels.entry(0)) == 5


@pytest.mark.parametrize("cls", list(QUALIFIED_NAMES))
def test_documentation_module(cls):
    assert cls.__module__ == "metatensor.torch"
    assert cls.__qualname__ == cls.__name__
