"""Benchmarks of the metatensor core classes, runnable under any implementation.

This script only uses the public API shared by this repository's ``metatensor-core``
and the reference ``metatensor-core==0.2.6``, so the same file measures both: run it
with the Python of an environment where one of them is installed. It prints one JSON
document on stdout (progress goes to stderr); ``benchmarks/compare.py`` runs it under
both implementations and prints the side-by-side table.

Every case is timed with :func:`time.perf_counter` over several repetitions (the
garbage collector disabled while timing); the JSON holds all the times and their
median, in seconds. Objects whose lazy caches would make a repetition cheaper (the
entry -> position index of Labels, for example) are rebuilt before each repetition,
outside of the timed region.

Usage::

    python benchmarks/bench_core.py --label ours > ours.json
    python benchmarks/bench_core.py --label reference --quick   # small sizes
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import inspect
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

import numpy as np

import metatensor
from metatensor import Labels, TensorBlock, TensorMap


ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / "tests" / "data" / "qm7-spherical-expansion.mts"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Timings(list):
    """Times in seconds, plus ``digest``: a hash of what the last repetition
    returned, to check that both implementations computed the same thing."""

    digest: Optional[str] = None


def digest(data: Any) -> str:
    """A hash of Labels, TensorMap, arrays and tuples of them (names, values,
    blocks, gradients), equal between implementations computing the same thing."""
    hasher = hashlib.sha1()

    def update(item: Any) -> None:
        if isinstance(item, (tuple, list)):
            hasher.update(b"(")
            for x in item:
                update(x)
            hasher.update(b")")
        elif hasattr(item, "detach"):
            # torch tensors, without importing torch
            update(item.detach().cpu().numpy())
        elif isinstance(item, np.ndarray):
            hasher.update(f"{item.dtype.str}{item.shape}".encode())
            hasher.update(np.ascontiguousarray(item).tobytes())
        elif isinstance(item, Labels):
            update(list(item.names))
            update(np.asarray(item.values, dtype=np.int32))
        elif isinstance(item, TensorMap):
            update(item.keys)
            for i in range(len(item.keys)):
                update(item.block_by_id(i))
        elif isinstance(item, TensorBlock):
            values = item.values
            if not hasattr(values, "detach"):
                values = np.asarray(values)
            update([values, item.samples, item.properties])
            update(list(item.components))
            for parameter in sorted(item.gradients_list()):
                update([parameter, item.gradient(parameter)])
        else:
            hasher.update(repr(item).encode())

    update(data)
    return hasher.hexdigest()[:16]


def measure(
    function: Callable[[Any], Any],
    repetitions: int,
    setup: Optional[Callable[[], Any]] = None,
    summary: Optional[Callable[[Any], Any]] = digest,
) -> Timings:
    """Time ``function(setup())`` ``repetitions`` times, only timing ``function``.
    Each result is dropped before the next repetition, outside of the timed
    region.

    :param function: the code to time, called with the result of ``setup``
    :param repetitions: how many times to run it
    :param setup: called (untimed) before each repetition; ``None`` passes ``None``
    :param summary: how to summarize the last result (``None``: no summary)
    :return: the elapsed times in seconds, with the summary of the last result
    """
    times = Timings()
    for i in range(repetitions):
        argument = setup() if setup is not None else None
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            result = function(argument)
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
        del argument
        if summary is not None and i == repetitions - 1 and result is not None:
            times.digest = summary(result)
        del result
    return times


# ------------------------------------------------------------------------------------
# data generation (untimed, deterministic)
# ------------------------------------------------------------------------------------


def unique_rows(rng: np.random.Generator, count: int, base: int = 1000) -> np.ndarray:
    """``count`` distinct random rows of 3 int32 values in ``[0, base)``, in random
    order; sorting the encoded integers sorts the rows lexicographically."""
    encoded = np.unique(rng.integers(0, base**3, size=int(count * 1.2) + 10))
    encoded = rng.permutation(encoded)[:count]
    if len(encoded) < count:
        raise RuntimeError("not enough unique rows, increase base")
    return decode(encoded, base)


def decode(encoded: np.ndarray, base: int = 1000) -> np.ndarray:
    rows = np.empty((len(encoded), 3), dtype=np.int32)
    rows[:, 0] = encoded // (base * base)
    rows[:, 1] = (encoded // base) % base
    rows[:, 2] = encoded % base
    return rows


def sort_rows(rows: np.ndarray) -> np.ndarray:
    order = np.lexsort(rows.T[::-1])
    return np.ascontiguousarray(rows[order])


NAMES3 = ["a", "b", "c"]


# ------------------------------------------------------------------------------------
# cases
# ------------------------------------------------------------------------------------


def bench_labels(cfg: Dict[str, Any], results: Dict[str, Any]) -> None:
    rng = np.random.default_rng(1)
    n = cfg["labels_rows"]
    unsorted = unique_rows(rng, n)
    ordered = sort_rows(unsorted)
    reps = cfg["labels_reps"]

    def create(values: np.ndarray) -> Labels:
        return Labels(NAMES3, values)

    # a fresh copy each time: int32 input is stored by reference and made read-only
    results["labels_create_sorted"] = measure(create, reps, lambda: ordered.copy())
    results["labels_create_unsorted"] = measure(create, reps, lambda: unsorted.copy())
    results["labels_create_assume_unique"] = measure(
        lambda v: Labels(NAMES3, v, assume_unique=True), reps, lambda: unsorted.copy()
    )


def bench_position(cfg: Dict[str, Any], results: Dict[str, Any]) -> None:
    rng = np.random.default_rng(2)
    n = cfg["labels_rows"]
    rows = unique_rows(rng, n)
    n_queries = cfg["position_queries"]
    present = rows[rng.integers(0, n, size=n_queries - n_queries // 10)]
    # 10% of queries are not in the labels (values outside of the generated range)
    absent = rng.integers(1000, 2000, size=(n_queries // 10, 3))
    queries_array = np.concatenate([present, absent])
    queries_array = queries_array[rng.permutation(len(queries_array))]
    queries = [tuple(int(x) for x in row) for row in queries_array]
    expected_found = len(present)

    def fresh() -> Labels:
        return Labels(NAMES3, rows.copy(), assume_unique=True)

    results["position_first_call"] = measure(
        lambda labels: labels.position(queries[0]), cfg["position_first_reps"], fresh
    )

    def warm() -> Labels:
        labels = fresh()
        labels.position(queries[0])  # builds any lazy index
        return labels

    def lookups(labels: Labels) -> int:
        found = 0
        position = labels.position
        for query in queries:
            if position(query) is not None:
                found += 1
        if found != expected_found:
            raise AssertionError(f"found {found} entries, expected {expected_found}")
        return found

    results["position_lookups"] = measure(lookups, cfg["position_reps"], warm)


def bench_set_operations(cfg: Dict[str, Any], results: Dict[str, Any]) -> None:
    rng = np.random.default_rng(3)
    n = cfg["set_rows"]
    rows = unique_rows(rng, n + n // 2)
    first = rows[:n]  # overlap of n/2 rows between the two, in different orders
    second = rows[n // 2 :][rng.permutation(n)]
    reps = cfg["set_reps"]

    def pair():
        return (
            Labels(NAMES3, first.copy(), assume_unique=True),
            Labels(NAMES3, second.copy(), assume_unique=True),
        )

    results["labels_union"] = measure(lambda p: p[0].union(p[1]), reps, pair)
    results["labels_intersection"] = measure(
        lambda p: p[0].intersection(p[1]), reps, pair
    )
    results["labels_difference"] = measure(lambda p: p[0].difference(p[1]), reps, pair)

    # selection on one of the dimensions: 5% of the possible values of `a`
    selected_a = np.unique(first[:, 0])[::20].reshape(-1, 1).astype(np.int32)

    def partial():
        return (
            Labels(NAMES3, first.copy(), assume_unique=True),
            Labels(["a"], selected_a.copy()),
        )

    results["labels_select_one_dim"] = measure(
        lambda p: p[0].select(p[1]), reps, partial
    )

    # selection with all dimensions: 10% of the rows, in random order
    selected_rows = first[rng.permutation(n)[: n // 10]]

    def full():
        return (
            Labels(NAMES3, first.copy(), assume_unique=True),
            Labels(NAMES3, selected_rows.copy(), assume_unique=True),
        )

    results["labels_select_all_dims"] = measure(lambda p: p[0].select(p[1]), reps, full)


def small_block_arrays(rng: np.random.Generator, n_blocks: int) -> List[Dict]:
    arrays = []
    for i in range(n_blocks):
        n_samples = 10
        samples = np.stack(
            [np.full(n_samples, i % 7), np.arange(n_samples)], axis=1
        ).astype(np.int32)
        grad_samples = np.array(
            [[s, i % 7, (s + d) % n_samples] for s in range(n_samples) for d in (0, 1)],
            dtype=np.int32,
        )
        arrays.append(
            {
                "samples": samples,
                "values": rng.random((n_samples, 3, 4)),
                "grad_samples": grad_samples,
                "grad_values": rng.random((len(grad_samples), 3, 3, 4)),
            }
        )
    return arrays


def build_tensor(arrays: List[Dict]) -> TensorMap:
    keys = Labels(["key"], np.arange(len(arrays), dtype=np.int32).reshape(-1, 1))
    mu = np.arange(-1, 2, dtype=np.int32).reshape(-1, 1)
    xyz = np.arange(3, dtype=np.int32).reshape(-1, 1)
    properties = np.arange(4, dtype=np.int32).reshape(-1, 1)
    blocks = []
    for data in arrays:
        props = Labels(["n"], properties)
        components = [Labels(["o3_mu"], mu)]
        block = TensorBlock(
            values=data["values"],
            samples=Labels(["system", "atom"], data["samples"]),
            components=components,
            properties=props,
        )
        gradient = TensorBlock(
            values=data["grad_values"],
            samples=Labels(["sample", "system", "atom"], data["grad_samples"]),
            components=[Labels(["xyz"], xyz), components[0]],
            properties=props,
        )
        block.add_gradient("positions", gradient)
        blocks.append(block)
    return TensorMap(keys, blocks)


def bench_tensormap(cfg: Dict[str, Any], results: Dict[str, Any]) -> None:
    rng = np.random.default_rng(4)
    n_blocks = cfg["tensor_blocks"]
    reps = cfg["tensor_reps"]

    results["tensormap_build"] = measure(
        build_tensor, reps, lambda: small_block_arrays(rng, n_blocks)
    )

    def iterate(tensor: TensorMap) -> int:
        total = 0
        for key, block in tensor.items():
            total += int(key[0])
            total += block.values.shape[0]
            total += len(block.samples) + len(block.properties)
            total += len(block.components)
            gradient = block.gradient("positions")
            total += gradient.values.shape[0] + len(gradient.samples)
        return total

    arrays = small_block_arrays(rng, n_blocks)
    results["tensormap_iterate"] = measure(iterate, reps, lambda: build_tensor(arrays))

    def select(tensor: TensorMap) -> int:
        total = 0
        for i in range(len(tensor)):
            total += len(tensor.block(key=i).samples)
        return total

    results["tensormap_block_selection"] = measure(
        select, reps, lambda: build_tensor(arrays)
    )


def big_tensor(cfg: Dict[str, Any]) -> TensorMap:
    """A TensorMap of about ``cfg['io_megabytes']`` MB with positions gradients."""
    rng = np.random.default_rng(5)
    n_blocks = 9
    n_samples, n_props = 2000, 50
    n_grad = 3000
    scale = cfg["io_megabytes"] / 200.0
    n_samples = max(2, int(n_samples * scale))
    n_grad = max(2, int(n_grad * scale))
    keys = Labels(["center_type"], np.arange(n_blocks, dtype=np.int32).reshape(-1, 1))
    mu = Labels(["o3_mu"], np.arange(-2, 3, dtype=np.int32).reshape(-1, 1))
    xyz = Labels(["xyz"], np.arange(3, dtype=np.int32).reshape(-1, 1))
    props = Labels(["n"], np.arange(n_props, dtype=np.int32).reshape(-1, 1))
    blocks = []
    for _ in range(n_blocks):
        samples = np.stack(
            [np.arange(n_samples) // 20, np.arange(n_samples) % 20], axis=1
        ).astype(np.int32)
        block = TensorBlock(
            values=rng.random((n_samples, 5, n_props)),
            samples=Labels(["system", "atom"], samples),
            components=[mu],
            properties=props,
        )
        grad_rows = np.sort(rng.integers(0, n_samples, size=n_grad))
        grad_samples = np.stack(
            [grad_rows, grad_rows // 20, np.arange(n_grad) % 20], axis=1
        ).astype(np.int32)
        grad_samples = np.unique(grad_samples, axis=0)
        gradient = TensorBlock(
            values=rng.random((len(grad_samples), 3, 5, n_props)),
            samples=Labels(["sample", "system", "atom"], grad_samples),
            components=[xyz, mu],
            properties=props,
        )
        block.add_gradient("positions", gradient)
        blocks.append(block)
    return TensorMap(keys, blocks)


def tensor_nbytes(tensor: TensorMap) -> int:
    total = 0
    for _, block in tensor.items():
        total += block.values.nbytes
        for _, gradient in block.gradients():
            total += gradient.values.nbytes
    return total


def bench_io(cfg: Dict[str, Any], results: Dict[str, Any], tmpdir: str) -> None:
    tensor = big_tensor(cfg)
    nbytes = tensor_nbytes(tensor)
    path = os.path.join(tmpdir, "big-tensor.mts")
    reps = cfg["io_reps"]
    results["_io_megabytes"] = nbytes / 1e6

    results["io_save"] = measure(lambda _: metatensor.save(path, tensor), reps)
    results["_io_file_megabytes"] = os.path.getsize(path) / 1e6

    def load(_):
        return metatensor.load(path)

    results["io_load"] = measure(load, reps)

    if "mmap" in inspect.signature(metatensor.io.load).parameters:

        def load_mmap(_):
            return metatensor.io.load(path, mmap=True)

        results["io_load_mmap"] = measure(load_mmap, reps)
    os.unlink(path)


def bench_keys_to(cfg: Dict[str, Any], results: Dict[str, Any]) -> None:
    path = str(cfg["data"])
    reps = cfg["keys_to_reps"]

    def fresh() -> TensorMap:
        return metatensor.load(path)

    results["keys_to_properties"] = measure(
        lambda t: t.keys_to_properties("neighbor_type"), reps, fresh
    )
    results["keys_to_samples"] = measure(
        lambda t: t.keys_to_samples("center_type"), reps, fresh
    )
    results["keys_to_samples_unsorted"] = measure(
        lambda t: t.keys_to_samples("center_type", sort_samples=False), reps, fresh
    )


GROUPS = {
    "labels": bench_labels,
    "position": bench_position,
    "set": bench_set_operations,
    "tensormap": bench_tensormap,
    "io": bench_io,
    "keys_to": bench_keys_to,
}

FULL = {
    "labels_rows": 1_000_000,
    "labels_reps": 7,
    "position_queries": 100_000,
    "position_first_reps": 5,
    "position_reps": 5,
    "set_rows": 200_000,
    "set_reps": 7,
    "tensor_blocks": 1000,
    "tensor_reps": 7,
    "io_megabytes": 200,
    "io_reps": 5,
    "keys_to_reps": 21,
}

QUICK = {
    "labels_rows": 20_000,
    "labels_reps": 2,
    "position_queries": 2_000,
    "position_first_reps": 2,
    "position_reps": 2,
    "set_rows": 4_000,
    "set_reps": 2,
    "tensor_blocks": 20,
    "tensor_reps": 2,
    "io_megabytes": 4,
    "io_reps": 2,
    "keys_to_reps": 2,
}


def implementation_info() -> Dict[str, Any]:
    try:
        import importlib.metadata

        version = importlib.metadata.version("metatensor-core")
    except Exception:  # pragma: no cover - metadata missing
        version = getattr(metatensor, "__version__", "unknown")
    return {
        "metatensor_core": version,
        "module": str(pathlib.Path(metatensor.__file__).parent),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpus",
    }


def run_groups(
    label: str,
    info: Dict[str, Any],
    config: Dict[str, Any],
    groups: List[str],
    run_group: Callable[[str, Dict[str, Any]], None],
) -> Dict[str, Any]:
    """Run the benchmark ``groups`` with ``run_group(group, results)`` (which fills
    ``results`` with :py:class:`Timings`, or extra information under names starting
    with ``_``), and collect everything in the JSON document printed by the
    benchmark scripts. A failing group is reported and the others still run."""
    output: Dict[str, Any] = {
        "label": label,
        "info": info,
        "config": config,
        "cases": {},
        "errors": {},
        "digests": {},
    }
    for group in groups:
        log(f"[{label}] {group} ...")
        results: Dict[str, Any] = {}
        start = time.perf_counter()
        try:
            run_group(group, results)
        except Exception as error:  # keep going with the other groups
            output["errors"][group] = f"{type(error).__name__}: {error}"
            log(traceback.format_exc())
        for name, value in results.items():
            if name.startswith("_"):
                output["info"][name[1:]] = value
                continue
            if value.digest is not None:
                output["digests"][name] = value.digest
            output["cases"][name] = {
                "median": statistics.median(value),
                "min": min(value),
                "times": value,
            }
            log(f"    {name:32} {statistics.median(value) * 1e3:10.3f} ms")
        log(f"    ({time.perf_counter() - start:.1f} s)")
    return output


def write_output(output: Dict[str, Any]) -> None:
    """Print the JSON document of :py:func:`run_groups` on the standard output."""
    json.dump(output, sys.stdout, indent=1)
    sys.stdout.write("\n")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="metatensor", help="name in the output")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument(
        "--only", default="", help=f"comma-separated groups among {list(GROUPS)}"
    )
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="file for keys_to_*")
    parser.add_argument("--tmpdir", default=None, help="where to write temporary files")
    args = parser.parse_args(argv)

    cfg = dict(QUICK if args.quick else FULL)
    cfg["data"] = args.data
    groups = [g for g in args.only.split(",") if g] or list(GROUPS)
    for group in groups:
        if group not in GROUPS:
            parser.error(f"unknown group {group!r}, expected one of {list(GROUPS)}")

    with tempfile.TemporaryDirectory(
        prefix="metatensor-bench-", dir=args.tmpdir
    ) as tmp:

        def run_group(group: str, results: Dict[str, Any]) -> None:
            if group == "io":
                bench_io(cfg, results, tmp)
            else:
                GROUPS[group](cfg, results)

        output = run_groups(
            args.label,
            implementation_info(),
            {k: v for k, v in cfg.items() if k != "data"},
            groups,
            run_group,
        )

    write_output(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
