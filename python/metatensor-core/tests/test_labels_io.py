import copy
import io
import pickle

import numpy as np
import pytest

import metatensor
from metatensor import Labels


@pytest.fixture
def labels():
    return Labels(["a", "b"], np.array([[0, 1], [2, 3], [-4, 5]]))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickle(labels, protocol):
    data = pickle.dumps(labels, protocol=protocol)
    loaded = pickle.loads(data)
    assert loaded == labels
    assert loaded.names == ["a", "b"]
    assert isinstance(loaded.values, np.ndarray)
    assert loaded.values.dtype == np.int32
    assert not loaded.values.flags.writeable
    assert loaded.position([-4, 5]) == 2


def test_reduce_ex(labels):
    function, args = labels.__reduce_ex__(4)
    assert function == Labels._from_pickle
    assert isinstance(args[0], bytes)
    assert args[0].startswith(b"\x93NUMPY")
    assert function(*args) == labels

    function, args = labels.__reduce_ex__(5)
    assert function == Labels._from_pickle
    assert isinstance(args[0], pickle.PickleBuffer)


def test_pickle_out_of_band(labels):
    buffers = []
    data = pickle.dumps(labels, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1
    loaded = pickle.loads(data, buffers=buffers)
    assert loaded == labels


def test_pickle_empty():
    labels = Labels.empty(["a", "b"])
    loaded = pickle.loads(pickle.dumps(labels))
    assert loaded == labels
    assert loaded.values.shape == (0, 2)


def test_deepcopy_in_containers(labels):
    data = {"labels": [labels, labels]}
    copied = copy.deepcopy(data)
    assert copied["labels"][0] == labels
    assert copied["labels"][0].values is labels.values


def test_save_load_buffer(labels):
    buffer = labels.save_buffer()
    assert isinstance(buffer, memoryview)
    assert bytes(buffer).startswith(b"\x93NUMPY")

    assert Labels.load_buffer(buffer) == labels
    assert Labels.load_buffer(bytes(buffer)) == labels
    assert Labels.load_buffer(bytearray(buffer)) == labels
    assert metatensor.io.load_labels_buffer(buffer) == labels


def test_save_load_file(labels, tmp_path):
    path = tmp_path / "labels.mts"
    labels.save(path)
    assert Labels.load(path) == labels
    assert Labels.load(str(path)) == labels
    assert metatensor.load_labels(path) == labels

    file = io.BytesIO()
    labels.save(file)
    file.seek(0)
    assert Labels.load(file) == labels


def test_load_reference(data_dir):
    labels = Labels.load(data_dir / "keys.mts")
    assert labels.names == ["o3_lambda", "o3_sigma", "center_type", "neighbor_type"]
    assert len(labels) == 27
    assert isinstance(labels.values, np.ndarray)
    assert not labels.values.flags.writeable
    for i, entry in enumerate(labels):
        assert labels.position(entry) == i

    # round trip through pickle
    assert pickle.loads(pickle.dumps(labels)) == labels


def test_pickle_torch(torch):
    labels = Labels(["a", "b"], torch.tensor([[0, 1], [2, 3]]))
    loaded = pickle.loads(pickle.dumps(labels))
    # unpickled Labels always use numpy
    assert isinstance(loaded.values, np.ndarray)
    assert loaded == labels

    buffer = labels.save_buffer()
    assert Labels.load_buffer(buffer) == labels
