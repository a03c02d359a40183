"""Objects are safe to read from several threads at once, including the lazily
built lookup indices of Labels."""

import threading

import numpy as np

import metatensor
from metatensor import Labels, TensorBlock, TensorMap


N_THREADS = 8


def _run_in_threads(function, n_threads=N_THREADS):
    barrier = threading.Barrier(n_threads)
    errors = []
    results = [None] * n_threads

    def target(i):
        try:
            barrier.wait()
            results[i] = function(i)
        except BaseException as e:  # pragma: no cover - only on failure
            errors.append(e)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    return results


def test_labels_position_from_threads():
    rng = np.random.default_rng(0)
    values = np.unique(rng.integers(0, 1000, size=(20_000, 3), dtype=np.int32), axis=0)
    rng.shuffle(values)
    # a fresh Labels: the lookup index is built by the threads themselves
    labels = Labels(["a", "b", "c"], values)

    def lookups(i):
        rows = rng_rows[i]
        return [labels.position(values[row]) for row in rows]

    rng_rows = [
        np.random.default_rng(i).integers(0, len(values), 200) for i in range(N_THREADS)
    ]
    results = _run_in_threads(lookups)
    for i in range(N_THREADS):
        assert results[i] == [int(row) for row in rng_rows[i]]

    assert labels.position([-1, -1, -1]) is None


def test_set_operations_from_threads():
    first = Labels(["a", "b"], np.arange(4000, dtype=np.int32).reshape(-1, 2))
    second = Labels(["a", "b"], np.arange(2000, 6000, dtype=np.int32).reshape(-1, 2))

    expected_union = first.union(second)
    expected_intersection = first.intersection(second)

    first = Labels(["a", "b"], np.arange(4000, dtype=np.int32).reshape(-1, 2))
    second = Labels(["a", "b"], np.arange(2000, 6000, dtype=np.int32).reshape(-1, 2))

    results = _run_in_threads(
        lambda i: (first.union(second), first.intersection(second))
    )
    for union, intersection in results:
        assert union == expected_union
        assert intersection == expected_intersection


def test_tensor_map_selection_from_threads():
    keys = Labels(["key"], np.arange(50, dtype=np.int32).reshape(-1, 1))
    blocks = [
        TensorBlock(
            values=np.full((3, 2), float(i)),
            samples=Labels.range("sample", 3),
            components=[],
            properties=Labels.range("property", 2),
        )
        for i in range(50)
    ]
    tensor = TensorMap(keys, blocks)

    def select(i):
        return [float(tensor.block(key=k).values[0, 0]) for k in range(i, 50, 3)]

    results = _run_in_threads(select)
    for i, result in enumerate(results):
        assert result == [float(k) for k in range(i, 50, 3)]


def test_save_buffer_from_threads():
    keys = Labels(["key"], np.arange(5, dtype=np.int32).reshape(-1, 1))
    blocks = [
        TensorBlock(
            values=np.full((3, 2), float(i)),
            samples=Labels.range("sample", 3),
            components=[],
            properties=Labels.range("property", 2),
        )
        for i in range(5)
    ]
    tensor = TensorMap(keys, blocks)
    expected = bytes(metatensor.io.save_buffer(tensor))
    results = _run_in_threads(lambda i: bytes(metatensor.io.save_buffer(tensor)))
    assert all(result == expected for result in results)
