"""Helpers shared by the tests of ``metatensor.torch.operations``: data, and
comparison with the core operations."""

import pathlib

import numpy as np
import torch

import metatensor
import metatensor.torch as mtt


DATA_DIR = pathlib.Path(__file__).resolve().parents[4] / "tests" / "data"


def core_tensor(data_dir, gradients: bool = True) -> "metatensor.TensorMap":
    """The power spectrum of qm7 (17 blocks, positions and strain gradients),
    as a core TensorMap holding torch tensors."""
    tensor = metatensor.load(data_dir / "qm7-power-spectrum.mts")
    if not gradients:
        tensor = metatensor.remove_gradients(tensor)
    tensor = tensor.to(arrays="torch")
    return tensor


def torch_tensor(data_dir, gradients: bool = True) -> "mtt.TensorMap":
    """Same as :py:func:`core_tensor`, with the ``metatensor.torch`` classes."""
    return mtt.from_core(core_tensor(data_dir, gradients))


def to_numpy(array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def assert_labels_equal(labels: "mtt.Labels", expected: "metatensor.Labels"):
    assert isinstance(labels, mtt.Labels)
    assert list(labels.names) == list(expected.names)
    assert labels.values.dtype == torch.int32
    np.testing.assert_array_equal(to_numpy(labels.values), to_numpy(expected.values))


def assert_block_equal(block: "mtt.TensorBlock", expected, exact: bool = False):
    """Compare a ``metatensor.torch`` block with a core block (values, metadata
    and gradients)."""
    assert isinstance(block, mtt.TensorBlock)
    actual = to_numpy(block.values)
    wanted = to_numpy(expected.values)
    assert actual.shape == wanted.shape
    if exact:
        np.testing.assert_array_equal(actual, wanted)
    else:
        np.testing.assert_allclose(actual, wanted, rtol=1e-8, atol=1e-8)
    assert_labels_equal(block.samples, expected.samples)
    assert len(block.components) == len(expected.components)
    for component, expected_component in zip(block.components, expected.components):
        assert_labels_equal(component, expected_component)
    assert_labels_equal(block.properties, expected.properties)
    assert sorted(block.gradients_list()) == sorted(expected.gradients_list())
    for parameter in block.gradients_list():
        assert_block_equal(
            block.gradient(parameter), expected.gradient(parameter), exact
        )


def assert_tensor_equal(tensor: "mtt.TensorMap", expected, exact: bool = False):
    """Compare a ``metatensor.torch`` TensorMap with a core TensorMap."""
    assert isinstance(tensor, mtt.TensorMap)
    assert_labels_equal(tensor.keys, expected.keys)
    for i in range(len(expected.keys)):
        assert_block_equal(tensor.block_by_id(i), expected.block_by_id(i), exact)
