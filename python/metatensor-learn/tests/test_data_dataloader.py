import functools

import numpy as np
import pytest

import metatensor
from metatensor import Labels, TensorBlock, TensorMap
from metatensor_learn.data import Dataset, IndexedDataset, group, group_and_join


torch = pytest.importorskip("torch")

from metatensor_learn.data import DataLoader  # noqa: E402


def tensor(system: int) -> TensorMap:
    block = TensorBlock(
        values=np.full((2, 3), float(system)),
        samples=Labels(
            ["system", "atom"], np.array([[system, 0], [system, 1]], dtype=np.int32)
        ),
        components=[],
        properties=Labels.range("p", 3),
    )
    return TensorMap(Labels.range("key", 1), [block])


def load_tensor(i: int) -> TensorMap:
    # a module-level function, so the dataset can be sent to worker processes
    return tensor(i)


def systems(batch_tensor: TensorMap) -> list:
    return np.unique(batch_tensor.block(0).samples.column("system")).tolist()


def test_dataloader_is_torch_dataloader():
    dataset = Dataset(x=[1, 2])
    loader = DataLoader(dataset)
    assert isinstance(loader, torch.utils.data.DataLoader)
    assert loader.collate_fn is group_and_join

    loader = DataLoader(dataset, collate_fn=group)
    assert loader.collate_fn is group


def test_batches():
    dataset = Dataset(
        x=[torch.tensor([i, i + 1.0]) for i in range(5)],
        y=load_tensor,
        s=[torch.tensor(float(i)) for i in range(5)],
        name=[f"system {i}" for i in range(5)],
        size=5,
    )
    loader = DataLoader(dataset, batch_size=2)
    batches = list(loader)
    assert len(batches) == 3

    batch = batches[0]
    assert batch._fields == ("x", "y", "s", "name")
    assert batch.x.shape == (2, 2)
    assert torch.equal(batch.x, torch.tensor([[0.0, 1.0], [1.0, 2.0]]))
    assert isinstance(batch.y, TensorMap)
    assert systems(batch.y) == [0, 1]
    assert batch.s.shape == (2, 1)
    assert batch.name == ("system 0", "system 1")

    last = batches[-1]
    assert last.x.shape == (1, 2)
    assert systems(last.y) == [4]
    assert metatensor.equal(last.y, tensor(4))


def test_shuffle_sees_every_sample():
    dataset = Dataset(y=[tensor(i) for i in range(10)])
    generator = torch.Generator().manual_seed(12)
    loader = DataLoader(dataset, batch_size=3, shuffle=True, generator=generator)
    seen = []
    for batch in loader:
        seen.extend(batch.y.block(0).samples.column("system")[::2].tolist())
    assert sorted(seen) == list(range(10))
    assert seen != list(range(10))


def test_indexed_dataset():
    ids = ["a", "b", "c", "d"]
    dataset = IndexedDataset(
        ids, y=lambda sample_id: tensor(ids.index(sample_id)), z=[1, 2, 3, 4]
    )
    batches = list(DataLoader(dataset, batch_size=3))
    assert batches[0].sample_id == ("a", "b", "c")
    assert systems(batches[0].y) == [0, 1, 2]
    assert batches[0].z == (1, 2, 3)
    assert batches[1].sample_id == ("d",)


def test_group_collate():
    dataset = Dataset(y=[tensor(i) for i in range(4)])
    batch = next(iter(DataLoader(dataset, batch_size=4, collate_fn=group)))
    assert isinstance(batch.y, tuple)
    assert len(batch.y) == 4


def test_collate_arguments():
    dataset = Dataset(a=[tensor(0) for _ in range(4)], b=[tensor(i) for i in range(4)])
    collate = functools.partial(
        group_and_join, fields_to_join=["a"], join_kwargs={"add_dimension": "batch"}
    )
    batch = next(iter(DataLoader(dataset, batch_size=4, collate_fn=collate)))
    assert batch.a.sample_names == ["system", "atom", "batch"]
    assert isinstance(batch.b, tuple)


def test_non_identifier_names():
    dataset = Dataset.from_dict(
        {"with space": [tensor(i) for i in range(4)], "class": [0, 1, 2, 3]}
    )
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert systems(batch["with space"]) == [0, 1, 2, 3]
    assert batch["class"] == (0, 1, 2, 3)


def test_worker_processes():
    # batches are pickled to come back from the workers (and the dataset is
    # pickled to go to them with the "spawn" and "forkserver" start methods)
    dataset = Dataset.from_dict(
        {
            "y": [tensor(i) for i in range(6)],
            "a b": [torch.tensor([float(i)]) for i in range(6)],
        },
    )
    loader = DataLoader(dataset, batch_size=2, num_workers=2)
    batches = list(loader)
    assert len(batches) == 3
    assert type(batches[0]).__name__ == "Batch"
    assert [systems(batch.y) for batch in batches] == [[0, 1], [2, 3], [4, 5]]
    assert torch.equal(batches[2]["a b"], torch.tensor([[4.0], [5.0]]))
