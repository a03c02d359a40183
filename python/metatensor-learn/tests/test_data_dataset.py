import pathlib
import pickle

import numpy as np
import pytest

import metatensor
from metatensor import Labels, TensorBlock, TensorMap
from metatensor_learn.data import Dataset, IndexedDataset


DATA_DIR = pathlib.Path(__file__).resolve().parents[3] / "tests" / "data"


def tensor(system: int, n_atoms: int = 2) -> TensorMap:
    samples = Labels(
        ["system", "atom"],
        np.array([[system, i] for i in range(n_atoms)], dtype=np.int32),
    )
    block = TensorBlock(
        values=np.full((n_atoms, 3), float(system)),
        samples=samples,
        components=[],
        properties=Labels.range("p", 3),
    )
    return TensorMap(Labels.range("key", 1), [block])


def test_lists():
    xs = [tensor(i) for i in range(4)]
    dataset = Dataset(x=xs, y=[float(i) for i in range(4)])
    assert len(dataset) == 4

    sample = dataset[2]
    assert type(sample).__name__ == "Sample"
    assert sample._fields == ("x", "y")
    assert sample.x is xs[2]
    assert sample.y == 2.0
    assert sample["y"] == 2.0
    assert sample == (xs[2], 2.0)

    # numpy integers are valid indices
    assert dataset[np.int64(1)].y == 1.0
    assert repr(dataset) == "Dataset(size=4, fields=['x', 'y'])"


def test_tuples_and_arbitrary_types():
    # tuples are accepted as lists (the reference rejected them)
    dataset = Dataset(a=("u", "v"), b=[{"k": 1}, {"k": 2}], c=[None, None])
    assert dataset[1] == ("v", {"k": 2}, None)


def test_callables():
    calls = []

    def load(i):
        calls.append(i)
        return tensor(i)

    dataset = Dataset(x=load, y=lambda i: i * 10, size=3)
    assert len(dataset) == 3
    assert calls == []

    sample = dataset[1]
    assert calls == [1]
    assert metatensor.equal(sample.x, tensor(1))
    assert sample.y == 10

    # callables are called again on each access (lazy loading)
    dataset[1]
    assert calls == [1, 1]


def test_from_files(tmp_path):
    """Lazy loading from files, mixed with data in memory."""
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.mts"
        metatensor.save(path, tensor(i))
        paths.append(path)

    dataset = Dataset(
        x=lambda i: metatensor.load(paths[i]), y=[tensor(10 + i) for i in range(3)]
    )
    for i, sample in enumerate(dataset):
        assert metatensor.equal(sample.x, tensor(i))
        assert metatensor.equal(sample.y, tensor(10 + i))


def test_reference_file():
    ps = metatensor.load(DATA_DIR / "qm7-power-spectrum.mts")
    systems = np.unique(ps.block(0).samples.column("system"))
    dataset = Dataset(
        features=lambda i: metatensor.slice(
            ps, "samples", Labels(["system"], np.array([[i]], dtype=np.int32))
        ),
        size=len(systems),
    )
    sample = dataset[3]
    for block in sample.features:
        assert np.all(block.samples.column("system") == 3)


def test_negative_indices():
    dataset = Dataset(x=[1, 2, 3], y=lambda i: i)
    assert dataset[-1] == (3, 2)
    assert dataset[-3] == (1, 0)


def test_bad_index():
    dataset = Dataset(x=[1, 2, 3])
    # both ValueError (reference) and IndexError (Python sequences)
    with pytest.raises(ValueError, match="Index 3 not in dataset"):
        dataset[3]
    with pytest.raises(IndexError, match="Index -4 not in dataset"):
        dataset[-4]
    with pytest.raises(IndexError, match="Index 7 not in dataset"):
        dataset[np.int32(7)]
    with pytest.raises(TypeError, match="dataset indices must be integers"):
        dataset[1.0]
    with pytest.raises(TypeError, match="dataset indices must be integers"):
        dataset["a"]


def test_iteration():
    dataset = Dataset(x=[1, 2, 3], y=lambda i: -i)
    assert list(dataset) == [(1, 0), (2, -1), (3, -2)]
    assert [sample.x for sample in dataset] == [1, 2, 3]

    assert list(Dataset(x=[])) == []
    assert len(Dataset(size=2)) == 2
    assert list(Dataset(size=2)) == [(), ()]


def test_bad_callable():
    def load(i):
        raise RuntimeError("file is missing")

    dataset = Dataset(x=[1, 2], y=load)
    with pytest.raises(
        ValueError, match="Error loading data field 'y' at sample index 1"
    ) as info:
        dataset[1]
    assert isinstance(info.value.__cause__, RuntimeError)
    assert str(info.value.__cause__) == "file is missing"


def test_field_types():
    message = (
        r"Data field must be a List or Callable, not <class 'numpy.ndarray'> "
        r"\(for field 'x'\)"
    )
    with pytest.raises(TypeError, match=message):
        Dataset(x=np.zeros(3))

    with pytest.raises(TypeError, match="Data field must be a List or Callable"):
        Dataset(x=1)

    message = (
        "Data field x must be a list of the same type, found <class 'int'> and "
        "<class 'str'>"
    )
    with pytest.raises(TypeError, match=message):
        Dataset(x=[1, "2"])

    # the check is symmetric (subclasses are fine in any order)
    assert len(Dataset(x=[True, 1])) == 2
    assert len(Dataset(x=[1, True])) == 2
    with pytest.raises(TypeError, match="must be a list of the same type"):
        Dataset(x=[tensor(0), None])


def test_inconsistent_size():
    message = r"Number of samples inconsistent between data fields: \[2, 3\]"
    with pytest.raises(ValueError, match=message):
        Dataset(x=[1, 2], y=[1, 2, 3])

    message = (
        r"Number of samples inconsistent between argument 'size' \(3\) and data "
        r"fields: \(2\)"
    )
    with pytest.raises(ValueError, match=message):
        Dataset(x=[1, 2], size=3)
    assert len(Dataset(x=[1, 2], y=lambda i: i, size=2)) == 2

    message = (
        "If passing all data fields as callables, argument 'size' must also be "
        "provided."
    )
    with pytest.raises(ValueError, match=message):
        Dataset(x=lambda i: i)
    with pytest.raises(ValueError, match=message):
        Dataset()

    with pytest.raises(ValueError, match="`size` must be positive or zero, got -1"):
        Dataset(x=lambda i: i, size=-1)
    with pytest.raises(TypeError, match="`size` must be an integer"):
        Dataset(x=lambda i: i, size=2.0)


def test_reserved_name():
    with pytest.raises(ValueError, match="'sample_id' can not be used"):
        Dataset(sample_id=[1, 2])
    with pytest.raises(ValueError, match="can not start with an underscore"):
        Dataset(_x=[1, 2])


def test_from_dict():
    data = {"with space": [1, 2], "class": lambda i: i + 10, "x": ["a", "b"]}
    dataset = Dataset.from_dict(data)
    assert isinstance(dataset, Dataset)
    assert len(dataset) == 2

    sample = dataset[1]
    assert sample._fields == ("with space", "class", "x")
    assert repr(sample) == "Sample('with space'=2, 'class'=11, x='b')"
    assert sample["with space"] == 2
    assert sample["class"] == 11
    assert sample.x == "b"

    assert len(Dataset.from_dict({"x": lambda i: i}, size=5)) == 5
    with pytest.raises(TypeError, match="data field names must be strings"):
        Dataset.from_dict({1: [1]})
    with pytest.raises(TypeError, match="`data` must be a dictionary"):
        Dataset.from_dict([("x", [1])])


def test_pickle_dataset():
    dataset = Dataset.from_dict({"a b": [tensor(0), tensor(1)], "y": [1, 2]})
    loaded = pickle.loads(pickle.dumps(dataset))
    assert len(loaded) == 2
    assert loaded[1].y == 2
    assert loaded[1]._fields == ("a b", "y")
    assert metatensor.equal(loaded[1]["a b"], tensor(1))

    indexed = IndexedDataset(["u", "v"], y=[1, 2])
    loaded = pickle.loads(pickle.dumps(indexed))
    assert loaded.get_sample("v") == ("v", 2)


def test_pickle_samples():
    dataset = Dataset.from_dict({"a b": [tensor(0)], "y": [1]})
    sample = dataset[0]
    loaded = pickle.loads(pickle.dumps(sample))
    assert type(loaded) is type(sample)
    assert loaded.y == 1
    assert metatensor.equal(loaded["a b"], tensor(0))


# ======================================================================== #
# IndexedDataset                                                           #
# ======================================================================== #


def test_indexed_dataset():
    ids = [10, "b", (1, 2)]
    xs = [tensor(i) for i in range(3)]
    loaded_ids = []

    def load(sample_id):
        loaded_ids.append(sample_id)
        return str(sample_id)

    dataset = IndexedDataset(ids, x=xs, y=load)
    assert len(dataset) == 3
    assert repr(dataset) == "IndexedDataset(size=3, fields=['x', 'y'])"

    sample = dataset[1]
    assert sample._fields == ("sample_id", "x", "y")
    assert sample.sample_id == "b"
    assert sample.x is xs[1]
    # callables receive the sample ID, not the position
    assert sample.y == "b"
    assert loaded_ids == ["b"]

    assert dataset[-1].sample_id == (1, 2)

    sample = dataset.get_sample((1, 2))
    assert sample.sample_id == (1, 2)
    assert sample.x is xs[2]
    assert sample.y == "(1, 2)"

    assert [s.sample_id for s in dataset] == ids

    with pytest.raises(ValueError, match="Sample ID 'x' not in dataset"):
        dataset.get_sample("x")
    with pytest.raises(ValueError, match="Sample ID 3 not in dataset"):
        dataset.get_sample(3)
    with pytest.raises(ValueError, match=r"Sample ID \[1\] not in dataset"):
        dataset.get_sample([1])
    with pytest.raises(ValueError, match="Index 3 not in dataset"):
        dataset[3]


def test_indexed_callable_error():
    def load(sample_id):
        raise KeyError(sample_id)

    dataset = IndexedDataset(["a"], x=load)
    with pytest.raises(
        ValueError, match="Error loading data field 'x' for sample ID 'a'"
    ):
        dataset.get_sample("a")


def test_indexed_errors():
    with pytest.raises(ValueError, match="Sample IDs must be unique, found some"):
        IndexedDataset([1, 2, 1], x=[1, 2, 3])
    with pytest.raises(TypeError, match="Sample IDs must be hashable"):
        IndexedDataset([[1], [2]], x=[1, 2])
    with pytest.raises(ValueError, match="argument 'size' is not used"):
        IndexedDataset([1, 2], x=[1, 2], size=2)
    with pytest.raises(TypeError, match="`sample_id` must be a list"):
        IndexedDataset(3, x=[1, 2, 3])

    message = (
        r"Number of samples inconsistent between the sample IDs \(2\) and data "
        r"fields: \(3\)"
    )
    with pytest.raises(ValueError, match=message):
        IndexedDataset([1, 2], x=[1, 2, 3])

    with pytest.raises(ValueError, match="given both as argument and as data field"):
        IndexedDataset.from_dict({"sample_id": [1, 2]}, sample_id=[1, 2])

    # all callables: the size comes from the IDs
    assert len(IndexedDataset(["a", "b"], x=lambda i: i)) == 2


def test_indexed_from_dict():
    dataset = IndexedDataset.from_dict(
        {"with space": [1, 2], "def": lambda sample_id: sample_id * 2},
        sample_id=["u", "v"],
    )
    assert isinstance(dataset, IndexedDataset)
    sample = dataset.get_sample("v")
    assert repr(sample) == "Sample(sample_id='v', 'with space'=2, 'def'='vv')"
    assert sample["def"] == "vv"
