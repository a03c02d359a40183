"""Benchmarks of metatensor-operations, runnable under any implementation.

Like ``bench_core.py``, this script only uses the public API shared by this
repository's ``metatensor-operations`` and the reference ``metatensor-operations``
0.5.0 (over ``metatensor-core`` 0.2.6), so the same file measures both: run it with
the Python of an environment where one of them is installed. It prints one JSON
document on stdout (progress goes to stderr); ``benchmarks/compare.py`` runs it under
both implementations and prints the side-by-side tables.

Groups of cases:

- ``ops_qm7``: ``join``, ``sum_over_samples``, ``slice``, ``dot`` and ``sort`` on the
  QM7 power spectrum (``tests/data/qm7-power-spectrum.mts``, with gradients);
- ``ops_big``: ``add`` and ``multiply`` of two ~100 MB TensorMaps with gradients;
- ``ops_numpy``: ``add``, ``multiply``, ``sum_over_samples`` and ``join`` on one large
  block, next to the bare numpy computation giving the same arrays (the ratio of the
  two is the overhead of the operation, reported for each implementation);
- ``ops_blocks``: ``add`` of two TensorMaps with 5,000 tiny blocks (per-block cost).

Every case is timed like in ``bench_core.py`` (``measure``: several repetitions, the
garbage collector disabled, inputs rebuilt before each repetition outside of the
timed region). Results are summarized by a *fingerprint* instead of an exact hash:
the metadata (names, Labels, shapes, gradients) is hashed exactly, and each float
array is reduced to two weighted sums, compared with a relative tolerance by
``compare.py``, since both implementations may sum in a different order.

Usage::

    python benchmarks/bench_operations.py --label ours > ours.json
    python benchmarks/bench_operations.py --label reference --quick --only ops_qm7
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import pathlib
import sys
from typing import Any, Dict, List, Optional

import numpy as np
from bench_core import Timings, implementation_info, measure, run_groups, write_output

import metatensor
import metatensor.operations as operations
from metatensor import Labels, TensorBlock, TensorMap


ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / "tests" / "data"


# ------------------------------------------------------------------------------------
# result fingerprints
# ------------------------------------------------------------------------------------

_WEIGHTS: Dict[int, np.ndarray] = {}


def _weights(size: int) -> np.ndarray:
    """Deterministic weights in (0, 1], so that a weighted sum notices permutations."""
    if size not in _WEIGHTS:
        _WEIGHTS[size] = (np.arange(size, dtype=np.float64) % 1009 + 1.0) / 1009.0
    return _WEIGHTS[size]


def fingerprint(data: Any) -> Dict[str, Any]:
    """Summary of TensorMap, TensorBlock, Labels, arrays and lists of them.

    :param data: what an operation returned
    :return: ``{"meta": hash of everything but the float data, "sums": [...]}``
        with two numbers per float array: ``sum(x * w)`` and ``sum(|x| * w)`` for
        fixed weights ``w`` (the second one gives the scale of the tolerance)
    """
    hasher = hashlib.sha1()
    sums: List[float] = []

    def update(item: Any) -> None:
        if isinstance(item, (tuple, list)):
            hasher.update(b"(")
            for x in item:
                update(x)
            hasher.update(b")")
        elif isinstance(item, np.ndarray):
            hasher.update(f"{item.dtype.str}{item.shape}".encode())
            if item.dtype.kind == "f":
                flat = item.reshape(-1)
                weights = _weights(flat.shape[0])
                sums.append(float(np.dot(flat, weights)))
                sums.append(float(np.dot(np.abs(flat), weights)))
            else:
                hasher.update(np.ascontiguousarray(item).tobytes())
        elif isinstance(item, Labels):
            update(list(item.names))
            update(np.asarray(item.values, dtype=np.int32))
        elif isinstance(item, TensorMap):
            update(item.keys)
            for i in range(len(item.keys)):
                update(item.block_by_id(i))
        elif isinstance(item, TensorBlock):
            update([np.asarray(item.values), item.samples, item.properties])
            update(list(item.components))
            for parameter in sorted(item.gradients_list()):
                update([parameter, item.gradient(parameter)])
        else:
            hasher.update(repr(item).encode())

    update(data)
    return {"meta": hasher.hexdigest()[:16], "sums": sums}


# `bench_core.measure`, with a fingerprint of the last result (tolerant to
# rounding differences) instead of its exact hash
timed = functools.partial(measure, summary=fingerprint)


# ------------------------------------------------------------------------------------
# data (untimed, deterministic)
# ------------------------------------------------------------------------------------


def copy_labels(labels: Labels) -> Labels:
    """New Labels with the same entries (no cache shared with ``labels``)."""
    return Labels(list(labels.names), np.array(labels.values, dtype=np.int32))


def shuffled_samples(tensor: TensorMap, seed: int) -> TensorMap:
    """``tensor`` with the samples of each block (and the rows of its gradients) in
    a random order; the gradient ``sample`` column follows its parent row."""
    rng = np.random.default_rng(seed)
    blocks = []
    for i in range(len(tensor.keys)):
        block = tensor.block_by_id(i)
        samples = np.array(block.samples.values, dtype=np.int32)
        order = rng.permutation(len(samples))
        new_position = np.empty_like(order)
        new_position[order] = np.arange(len(order))
        new = TensorBlock(
            values=np.array(block.values)[order],
            samples=Labels(list(block.samples.names), samples[order]),
            components=[copy_labels(c) for c in block.components],
            properties=copy_labels(block.properties),
        )
        for parameter in block.gradients_list():
            gradient = block.gradient(parameter)
            grad_samples = np.array(gradient.samples.values, dtype=np.int32)
            grad_order = rng.permutation(len(grad_samples))
            grad_samples = grad_samples[grad_order]
            grad_samples[:, 0] = new_position[grad_samples[:, 0]]
            new.add_gradient(
                parameter,
                TensorBlock(
                    values=np.array(gradient.values)[grad_order],
                    samples=Labels(list(gradient.samples.names), grad_samples),
                    components=[copy_labels(c) for c in gradient.components],
                    properties=copy_labels(gradient.properties),
                ),
            )
        blocks.append(new)
    return TensorMap(copy_labels(tensor.keys), blocks)


def weights_like(tensor: TensorMap, n_targets: int, seed: int) -> TensorMap:
    """Random weights for ``dot(tensor, weights)``: same keys, ``n_targets`` samples
    per block, the properties of ``tensor``, no gradients."""
    rng = np.random.default_rng(seed)
    blocks = []
    for i in range(len(tensor.keys)):
        properties = tensor.block_by_id(i).properties
        blocks.append(
            TensorBlock(
                values=rng.standard_normal((n_targets, len(properties))),
                samples=Labels(
                    ["target"], np.arange(n_targets, dtype=np.int32).reshape(-1, 1)
                ),
                components=[],
                properties=copy_labels(properties),
            )
        )
    return TensorMap(copy_labels(tensor.keys), blocks)


class Arrays:
    """The arrays of a TensorMap with ``positions`` gradients, from which a fresh
    TensorMap (new Labels, the same data arrays) is built before each repetition."""

    def __init__(self, keys: np.ndarray, blocks: List[Dict[str, np.ndarray]]):
        self.keys = keys
        self.blocks = blocks

    def nbytes(self) -> int:
        return sum(
            b["values"].nbytes + (b["grad_values"].nbytes if "grad_values" in b else 0)
            for b in self.blocks
        )

    def tensor(self) -> TensorMap:
        blocks = []
        for data in self.blocks:
            components = []
            if "mu" in data:
                components.append(Labels(["o3_mu"], data["mu"].copy()))
            properties = Labels(["n"], data["properties"].copy())
            block = TensorBlock(
                values=data["values"],
                samples=Labels(["system", "atom"], data["samples"].copy()),
                components=components,
                properties=properties,
            )
            if "grad_values" in data:
                block.add_gradient(
                    "positions",
                    TensorBlock(
                        values=data["grad_values"],
                        samples=Labels(
                            ["sample", "system", "atom"], data["grad_samples"].copy()
                        ),
                        components=[Labels(["xyz"], data["xyz"].copy()), *components],
                        properties=properties,
                    ),
                )
            blocks.append(block)
        return TensorMap(Labels(["key"], self.keys.copy()), blocks)


def column(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.int32).reshape(-1, 1)


def big_arrays(megabytes: float, seed: int) -> Arrays:
    """About ``megabytes`` MB of float64 in 8 blocks with ``positions`` gradients.
    The metadata does not depend on ``seed`` (only the values do)."""
    meta_rng = np.random.default_rng(11)
    rng = np.random.default_rng(seed)
    n_blocks, n_mu, n_properties = 8, 5, 32
    # per sample: values (n_mu * n_properties) + ~1.5 gradient rows of 3 x that
    floats_per_sample = n_mu * n_properties * (1 + 3 * 1.5)
    n_samples = max(4, int(megabytes * 1e6 / 8 / floats_per_sample / n_blocks))
    blocks = []
    for _ in range(n_blocks):
        rows = np.arange(n_samples)
        samples = np.stack([rows // 20, rows % 20], axis=1).astype(np.int32)
        grad_rows = np.sort(meta_rng.integers(0, n_samples, size=int(n_samples * 1.5)))
        grad_samples = np.stack(
            [grad_rows, grad_rows // 20, meta_rng.integers(0, 20, size=len(grad_rows))],
            axis=1,
        ).astype(np.int32)
        grad_samples = np.unique(grad_samples, axis=0)
        blocks.append(
            {
                "samples": samples,
                "mu": column(np.arange(-2, 3)),
                "xyz": column(np.arange(3)),
                "properties": column(np.arange(n_properties)),
                "values": rng.standard_normal((n_samples, n_mu, n_properties)),
                "grad_samples": grad_samples,
                "grad_values": rng.standard_normal(
                    (len(grad_samples), 3, n_mu, n_properties)
                ),
            }
        )
    return Arrays(column(np.arange(n_blocks)), blocks)


def large_block_arrays(n_systems: int, n_atoms: int, n_properties: int, seed: int):
    """One block without components nor gradients: samples ``(system, atom)``
    sorted, ``n_systems * n_atoms`` rows."""
    rng = np.random.default_rng(seed)
    rows = np.arange(n_systems * n_atoms)
    samples = np.stack([rows // n_atoms, rows % n_atoms], axis=1).astype(np.int32)
    block = {
        "samples": samples,
        "properties": column(np.arange(n_properties)),
        "values": rng.standard_normal((len(samples), n_properties)),
    }
    return Arrays(column([0]), [block])


def tiny_blocks_arrays(n_blocks: int, seed: int) -> Arrays:
    """``n_blocks`` blocks of 3 samples x 4 properties, no gradients."""
    rng = np.random.default_rng(seed)
    samples = np.array([[0, 0], [0, 1], [1, 0]], dtype=np.int32)
    blocks = [
        {
            "samples": samples,
            "properties": column(np.arange(4)),
            "values": rng.standard_normal((3, 4)),
        }
        for _ in range(n_blocks)
    ]
    return Arrays(column(np.arange(n_blocks)), blocks)


# ------------------------------------------------------------------------------------
# cases
# ------------------------------------------------------------------------------------


def bench_qm7(cfg: Dict[str, Any], results: Dict[str, Any]) -> None:
    buffer = (pathlib.Path(cfg["data"]) / "qm7-power-spectrum.mts").read_bytes()
    reps = cfg["qm7_reps"]

    def fresh() -> TensorMap:
        return metatensor.io.load_buffer(buffer)

    n_join = cfg["join_count"]
    results["ops_join"] = timed(
        lambda t: operations.join([t] * n_join, "samples", add_dimension="tensor"),
        reps,
        fresh,
    )
    results["ops_sum_over_samples"] = timed(
        lambda t: operations.sum_over_samples(t, "atom"), reps, fresh
    )

    def sliced(tensor: TensorMap) -> TensorMap:
        selection = Labels(["system"], column(np.arange(5)))
        return operations.slice(tensor, "samples", selection)

    results["ops_slice"] = timed(sliced, reps, fresh)

    weights = weights_like(fresh(), cfg["dot_targets"], seed=21)

    def with_weights():
        return fresh(), weights_like(weights, cfg["dot_targets"], seed=21)

    results["ops_dot"] = timed(lambda p: operations.dot(p[0], p[1]), reps, with_weights)

    shuffled = shuffled_samples(fresh(), seed=22)
    shuffled_buffer = metatensor.io.save_buffer(shuffled)
    results["ops_sort"] = timed(
        operations.sort, reps, lambda: metatensor.io.load_buffer(shuffled_buffer)
    )


def bench_big(cfg: Dict[str, Any], results: Dict[str, Any]) -> None:
    first = big_arrays(cfg["big_megabytes"], seed=31)
    second = big_arrays(cfg["big_megabytes"], seed=32)
    results["_ops_big_megabytes"] = first.nbytes() / 1e6

    def pair():
        return first.tensor(), second.tensor()

    def numpy_add(_):
        return [
            (x["values"] + y["values"], x["grad_values"] + y["grad_values"])
            for x, y in zip(first.blocks, second.blocks)
        ]

    def numpy_multiply(_):
        output = []
        for x, y in zip(first.blocks, second.blocks):
            rows = x["grad_samples"][:, 0]
            a, b = x["values"], y["values"]
            gradient = (
                x["grad_values"] * b[rows][:, None]
                + a[rows][:, None] * (y["grad_values"])
            )
            output.append((a * b, gradient))
        return output

    paired(
        {
            "add_big": (lambda p: operations.add(*p), pair, numpy_add),
            "multiply_big": (lambda p: operations.multiply(*p), pair, numpy_multiply),
        },
        cfg["big_reps"],
        results,
    )


def paired(cases: Dict[str, Any], repetitions: int, results: Dict[str, Any]) -> None:
    """Time operations next to the bare numpy computation of the same arrays:
    ``cases`` maps a name to ``(operation, setup, numpy function)``; one repetition
    of each in turn, so that a change of the machine's load hits both alike. The
    times go to ``results["ops_<name>"]`` and ``results["numpy_<name>"]``."""
    for name, (operation, setup, bare) in cases.items():
        op_times, numpy_times = Timings(), Timings()
        for i in range(repetitions):
            last = i == repetitions - 1
            once = timed(operation, 1, setup, summary=fingerprint if last else None)
            op_times += once
            op_times.digest = once.digest
            once = timed(bare, 1, summary=fingerprint if last else None)
            numpy_times += once
            numpy_times.digest = once.digest
        results[f"ops_{name}"] = op_times
        results[f"numpy_{name}"] = numpy_times


def bench_numpy(cfg: Dict[str, Any], results: Dict[str, Any]) -> None:
    shape = (cfg["large_systems"], cfg["large_atoms"], cfg["large_properties"])
    first = large_block_arrays(*shape, seed=41)
    second = large_block_arrays(*shape, seed=42)
    results["_ops_large_block_megabytes"] = first.blocks[0]["values"].nbytes / 1e6
    a = first.blocks[0]["values"]
    b = second.blocks[0]["values"]
    samples_a = first.blocks[0]["samples"]
    samples_b = second.blocks[0]["samples"]

    def pair():
        return first.tensor(), second.tensor()

    def numpy_sum(_):
        # the samples are grouped by system: one reduceat over the group starts
        systems, starts = np.unique(samples_a[:, 0], return_index=True)
        return systems.reshape(-1, 1), np.add.reduceat(a, starts, axis=0)

    def numpy_join(_):
        samples = np.concatenate(
            [
                np.column_stack([samples_a, np.zeros(len(samples_a), np.int32)]),
                np.column_stack([samples_b, np.ones(len(samples_b), np.int32)]),
            ]
        )
        return samples, np.concatenate([a, b])

    # (operation, setup) next to the bare numpy computation giving the same arrays
    cases = {
        "large_add": (lambda p: operations.add(*p), pair, lambda _: a + b),
        "large_multiply": (lambda p: operations.multiply(*p), pair, lambda _: a * b),
        "large_sum_over_samples": (
            lambda t: operations.sum_over_samples(t, "atom"),
            first.tensor,
            numpy_sum,
        ),
        "large_join": (
            lambda p: operations.join(list(p), "samples", add_dimension="tensor"),
            pair,
            numpy_join,
        ),
    }
    paired(cases, cfg["large_reps"], results)


def bench_blocks(cfg: Dict[str, Any], results: Dict[str, Any]) -> None:
    n_blocks = cfg["tiny_blocks"]
    first = tiny_blocks_arrays(n_blocks, seed=51)
    second = tiny_blocks_arrays(n_blocks, seed=52)
    results["_ops_tiny_blocks"] = n_blocks

    def pair():
        return first.tensor(), second.tensor()

    results["ops_add_tiny_blocks"] = timed(
        lambda p: operations.add(*p), cfg["tiny_reps"], pair
    )


GROUPS = {
    "ops_qm7": bench_qm7,
    "ops_big": bench_big,
    "ops_numpy": bench_numpy,
    "ops_blocks": bench_blocks,
}

FULL = {
    "qm7_reps": 15,
    "join_count": 10,
    "dot_targets": 16,
    "big_megabytes": 100,
    "big_reps": 5,
    "large_systems": 1000,
    "large_atoms": 100,
    "large_properties": 80,
    "large_reps": 7,
    "tiny_blocks": 5000,
    "tiny_reps": 3,
}

QUICK = {
    "qm7_reps": 2,
    "join_count": 10,
    "dot_targets": 16,
    "big_megabytes": 2,
    "big_reps": 2,
    "large_systems": 20,
    "large_atoms": 10,
    "large_properties": 8,
    "large_reps": 2,
    "tiny_blocks": 50,
    "tiny_reps": 2,
}


def operations_info() -> Dict[str, Any]:
    info = implementation_info()
    try:
        import importlib.metadata

        version = importlib.metadata.version("metatensor-operations")
    except Exception:  # pragma: no cover - metadata missing
        version = getattr(operations, "__version__", "unknown")
    info["metatensor_operations"] = version
    return info


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="metatensor", help="name in the output")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument(
        "--only", default="", help=f"comma-separated groups among {list(GROUPS)}"
    )
    parser.add_argument(
        "--data-dir", default=str(DEFAULT_DATA), help="folder with the qm7 files"
    )
    args = parser.parse_args(argv)

    cfg = dict(QUICK if args.quick else FULL)
    cfg["data"] = args.data_dir
    groups = [g for g in args.only.split(",") if g] or list(GROUPS)
    for group in groups:
        if group not in GROUPS:
            parser.error(f"unknown group {group!r}, expected one of {list(GROUPS)}")

    output = run_groups(
        args.label,
        operations_info(),
        {k: v for k, v in cfg.items() if k != "data"},
        groups,
        lambda group, results: GROUPS[group](cfg, results),
    )
    write_output(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
