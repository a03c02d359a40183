import functools

import numpy as np
import pytest

import metatensor
import metatensor_operations
from metatensor import Labels, TensorBlock, TensorMap
from metatensor_learn.data import Dataset, IndexedDataset, group, group_and_join


def tensor(system: int, keys=(0,), n_atoms: int = 2, array=np.array) -> TensorMap:
    """A per-system TensorMap with positions gradients."""
    blocks = []
    for key in keys:
        samples = Labels(
            ["system", "atom"],
            np.array([[system, i] for i in range(n_atoms)], dtype=np.int32),
        )
        block = TensorBlock(
            values=array(np.full((n_atoms, 3), 100.0 * system + key)),
            samples=samples,
            components=[],
            properties=Labels.range("p", 3),
        )
        gradient_samples = Labels(
            ["sample", "system", "atom"],
            np.array([[i, system, i] for i in range(n_atoms)], dtype=np.int32),
        )
        block.add_gradient(
            "positions",
            TensorBlock(
                values=array(np.full((n_atoms, 3, 3), -1.0 * system)),
                samples=gradient_samples,
                components=[Labels.range("xyz", 3)],
                properties=block.properties,
            ),
        )
        blocks.append(block)
    keys = Labels(["key"], np.array(keys, dtype=np.int32).reshape(-1, 1))
    return TensorMap(keys, blocks)


def test_group():
    dataset = Dataset(x=[1, 2, 3], y=["a", "b", "c"], z=lambda i: {"i": i})
    batch = group([dataset[0], dataset[2]])
    assert type(batch).__name__ == "Batch"
    assert batch._fields == ("x", "y", "z")
    assert batch.x == (1, 3)
    assert batch.y == ("a", "c")
    assert batch.z == ({"i": 0}, {"i": 2})
    assert repr(batch) == "Batch(x=(1, 3), y=('a', 'c'), z=({'i': 0}, {'i': 2}))"

    # TensorMaps are not joined by `group`
    tensors = [tensor(i) for i in range(2)]
    batch = group(list(Dataset(t=tensors)))
    assert batch.t[0] is tensors[0]
    assert batch.t[1] is tensors[1]


def test_group_non_identifier_names():
    dataset = Dataset.from_dict({"with space": [1, 2], "class": [3, 4]})
    batch = group(list(dataset))
    assert repr(batch) == "Batch('with space'=(1, 2), 'class'=(3, 4))"
    assert batch["class"] == (3, 4)

    batch = group_and_join(list(dataset))
    assert batch["with space"] == (1, 2)


def test_group_errors():
    with pytest.raises(ValueError, match="must contain at least one sample"):
        group([])
    with pytest.raises(TypeError, match="must be named tuples"):
        group([(1, 2)])
    with pytest.raises(TypeError, match="must be a list of samples"):
        group({"x": 1})

    first = Dataset(x=[1])[0]
    second = Dataset(y=[1])[0]
    with pytest.raises(ValueError, match="must have the same fields"):
        group([first, second])
    with pytest.raises(ValueError, match="must have the same fields"):
        group_and_join([first, second])


def test_join_tensormaps():
    dataset = Dataset(t=[tensor(i, keys=(0, 1)) for i in range(3)], n=[0, 1, 2])
    batch = group_and_join([dataset[2], dataset[0]])

    assert batch.n == (2, 0)
    joined = batch.t
    assert isinstance(joined, TensorMap)
    assert joined.keys == Labels(["key"], np.array([[0], [1]], dtype=np.int32))

    block = joined.block(key=1)
    expected = np.array([[2, 0], [2, 1], [0, 0], [0, 1]], dtype=np.int32)
    assert block.samples == Labels(["system", "atom"], expected)
    np.testing.assert_equal(block.values[:, 0], [201, 201, 1, 1])

    # gradient rows point to the joined samples
    gradient = block.gradient("positions")
    np.testing.assert_equal(gradient.samples.column("sample"), [0, 1, 2, 3])
    np.testing.assert_equal(gradient.samples.column("system"), [2, 2, 0, 0])
    np.testing.assert_equal(gradient.values[:, 0, 0], [-2, -2, 0, 0])

    expected = metatensor.join([tensor(2, (0, 1)), tensor(0, (0, 1))], "samples")
    assert metatensor.equal(joined, expected)


def test_join_is_one_join_per_field(monkeypatch):
    calls = []
    original = metatensor_operations.join

    def counting_join(tensors, *args, **kwargs):
        calls.append(len(tensors))
        return original(tensors, *args, **kwargs)

    monkeypatch.setattr(metatensor_operations, "join", counting_join)

    dataset = Dataset(
        a=[tensor(i) for i in range(50)], b=[tensor(i) for i in range(50)]
    )
    batch = group_and_join(list(dataset))
    assert calls == [50, 50]
    assert len(batch.a.block(0).samples) == 100


def test_join_fields_to_join():
    dataset = Dataset(a=[tensor(i) for i in range(2)], b=[tensor(i) for i in range(2)])
    batch = group_and_join(list(dataset), fields_to_join=["b"])
    assert isinstance(batch.a, tuple)
    assert len(batch.a) == 2
    assert isinstance(batch.b, TensorMap)

    batch = group_and_join(list(dataset), fields_to_join=[])
    assert isinstance(batch.a, tuple)
    assert isinstance(batch.b, tuple)

    message = (
        r"`fields_to_join` contains names that are not fields of the batch: "
        r"\['c'\], the fields are \['a', 'b'\]"
    )
    with pytest.raises(ValueError, match=message):
        group_and_join(list(dataset), fields_to_join=["a", "c"])
    with pytest.raises(TypeError, match="must be a list of field names"):
        group_and_join(list(dataset), fields_to_join="a")


def test_join_different_keys():
    dataset = Dataset(t=[tensor(0, keys=(0,)), tensor(1, keys=(0, 1))])
    with pytest.raises(metatensor.NotEqualError):
        group_and_join(list(dataset))

    batch = group_and_join(list(dataset), join_kwargs={"different_keys": "union"})
    assert len(batch.t) == 2
    assert len(batch.t.block(key=0).samples) == 4
    assert len(batch.t.block(key=1).samples) == 2


def test_join_kwargs():
    # the same samples in all tensors: use add_dimension
    dataset = Dataset(t=[tensor(0), tensor(0)])
    with pytest.raises(metatensor.MetatensorError):
        group_and_join(list(dataset))

    batch = group_and_join(list(dataset), join_kwargs={"add_dimension": "batch"})
    assert batch.t.sample_names == ["system", "atom", "batch"]
    np.testing.assert_equal(batch.t.block(0).samples.column("batch"), [0, 0, 1, 1])

    # the axis can be changed
    batch = group_and_join(
        list(dataset), join_kwargs={"axis": "properties", "add_dimension": "batch"}
    )
    assert batch.t.property_names == ["p", "batch"]

    with pytest.raises(TypeError, match="`join_kwargs` must be a dictionary"):
        group_and_join(list(dataset), join_kwargs=[("axis", "samples")])


def test_indexed_dataset_sample_id():
    dataset = IndexedDataset(["a", "b", "c"], t=lambda i: tensor(ord(i)), x=[1, 2, 3])
    batch = group_and_join([dataset[0], dataset.get_sample("c")])
    assert batch._fields == ("sample_id", "t", "x")
    assert batch.sample_id == ("a", "c")
    assert batch.x == (1, 3)
    np.testing.assert_equal(
        np.unique(batch.t.block(0).samples.column("system")), [ord("a"), ord("c")]
    )

    # sample_id is never joined, even when asked
    batch = group_and_join(list(dataset), fields_to_join=["sample_id", "t"])
    assert batch.sample_id == ("a", "b", "c")


def test_join_torch_tensors(torch):
    dataset = Dataset(
        vector=[torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])],
        scalar=[torch.tensor(1.0), torch.tensor(2.0)],
        matrix=[torch.ones(2, 3), torch.zeros(1, 3)],
        other=[np.zeros(2), np.ones(2)],
    )
    batch = group_and_join(list(dataset))
    assert torch.equal(batch.vector, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert batch.scalar.shape == (2, 1)
    assert torch.equal(batch.scalar, torch.tensor([[1.0], [2.0]]))
    assert batch.matrix.shape == (3, 3)
    # numpy arrays stay as tuples
    assert isinstance(batch.other, tuple)


def test_join_tensormaps_with_torch_arrays(torch):
    def array(values):
        return torch.tensor(values, dtype=torch.float64)

    dataset = Dataset(t=[tensor(i, array=array) for i in range(3)])
    batch = group_and_join(list(dataset))
    values = batch.t.block(0).values
    assert isinstance(values, torch.Tensor)
    assert values.shape == (6, 3)
    gradient = batch.t.block(0).gradient("positions")
    assert isinstance(gradient.values, torch.Tensor)
    assert gradient.values.shape == (6, 3, 3)


def torch_tensor(mts_torch, torch, system: int):
    samples = mts_torch.Labels(
        ["system", "atom"], torch.tensor([[system, 0], [system, 1]], dtype=torch.int32)
    )
    block = mts_torch.TensorBlock(
        values=torch.full((2, 3), float(system), dtype=torch.float64),
        samples=samples,
        components=[],
        properties=mts_torch.Labels.range("p", 3),
    )
    return mts_torch.TensorMap(mts_torch.Labels.range("key", 1), [block])


def test_join_torch_tensormaps(torch, monkeypatch):
    mts_torch = pytest.importorskip("metatensor.torch")

    def no_core_join(*args, **kwargs):
        raise AssertionError("core join called with metatensor.torch data")

    monkeypatch.setattr(metatensor_operations, "join", no_core_join)

    dataset = Dataset(t=[torch_tensor(mts_torch, torch, i) for i in range(3)])
    batch = group_and_join([dataset[0], dataset[2]])
    assert isinstance(batch.t, mts_torch.TensorMap)
    block = batch.t.block(0)
    assert torch.equal(
        block.samples.values,
        torch.tensor([[0, 0], [0, 1], [2, 0], [2, 1]], dtype=torch.int32),
    )
    assert torch.equal(block.values[:, 0], torch.tensor([0.0, 0.0, 2.0, 2.0]))

    # the same samples twice (TorchScript errors are not always RuntimeError)
    with pytest.raises(Exception, match="can not have the same label entry"):
        group_and_join([dataset[0], dataset[0]])

    batch = group_and_join(
        [dataset[0], dataset[0]], join_kwargs={"add_dimension": "batch"}
    )
    assert batch.t.sample_names == ["system", "atom", "batch"]


def test_partial_collate():
    collate = functools.partial(group_and_join, fields_to_join=["a"])
    dataset = Dataset(a=[tensor(0), tensor(1)], b=[tensor(0), tensor(1)])
    batch = collate(list(dataset))
    assert isinstance(batch.a, TensorMap)
    assert isinstance(batch.b, tuple)
