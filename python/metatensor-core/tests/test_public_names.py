"""The classes show their public name, as in the reference."""

import pickle

import numpy as np

import metatensor
from metatensor import Labels, LabelsEntry, TensorBlock, TensorMap


def test_printed_names():
    block = TensorBlock(np.ones((2, 1)), Labels.range("s", 2), [], Labels.range("p", 1))
    tensor = TensorMap(Labels.range("a", 1), [block])
    assert str(type(tensor)) == "<class 'metatensor.TensorMap'>"
    assert str(type(block)) == "<class 'metatensor.TensorBlock'>"
    assert str(type(tensor.keys)) == "<class 'metatensor.Labels'>"
    assert str(type(tensor.keys.entry(0))) == "<class 'metatensor.LabelsEntry'>"
    for cls in (Labels, LabelsEntry, TensorBlock, TensorMap):
        assert getattr(metatensor, cls.__name__) is cls

    copy = pickle.loads(pickle.dumps(tensor))
    assert copy.block(0).values.tolist() == [[1.0], [1.0]]
