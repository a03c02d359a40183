"""Benchmarks of metatensor-learn's data loading, runnable under any implementation.

Like ``bench_core.py``, this script only uses the public API shared by this
repository's ``metatensor-learn`` and the reference ``metatensor-learn`` 0.6.2 (over
``metatensor-operations`` 0.5.0, ``metatensor-core`` 0.2.6 and torch), so the same
file measures both: run it with the Python of an environment where one of them is
installed. It prints one JSON document on stdout (progress goes to stderr), in the
format of ``bench_core.py``.

Group of cases ``learn_collate``: collating a batch of small per-system TensorMaps
with ``metatensor.learn.data.group_and_join`` (what ``metatensor.learn.DataLoader``
does for every batch):

- ``collate_{100,1000,5000}``: batches of 100, 1,000 and 5,000 TensorMaps with
  positions gradients (2 blocks of 2-6 atoms and 8 properties each). Joining must
  scale linearly: the time per TensorMap (``info.collate_per_item_us``) should stay
  flat as the batch grows;
- ``collate_nograd_1000``: 1,000 TensorMaps without gradients;
- ``collate_torch_1000``: the same with torch arrays in the TensorMaps;
- ``loader_epoch_1000``: one epoch of a ``DataLoader`` (batch size 32, with
  shuffling and a fixed seed) over a ``Dataset`` of 1,000 TensorMaps.

With ``--quick``, the sizes are smaller (10, 50, 100 TensorMaps, an epoch of 64)
but the case names stay the same. Every case is timed like in ``bench_core.py``
(several repetitions, the garbage collector disabled, inputs built outside of the
timed region). The digest of a case hashes the joined TensorMap (metadata and
data, torch arrays converted to numpy), equal between implementations computing
the same thing.

Usage::

    python benchmarks/bench_learn.py --label ours > ours.json
    python benchmarks/bench_learn.py --label reference --quick

``compare.py`` runs it under both implementations (groups ``learn_collate`` and
``learn_loader``, with ``--reference-learn-python``), as ``nox -s bench`` does.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import statistics
import sys
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from bench_core import measure, run_groups, write_output

import metatensor
from metatensor import Labels, TensorBlock, TensorMap
from metatensor.learn.data import DataLoader, Dataset, group_and_join


# ------------------------------------------------------------------------------------
# data generation (untimed, deterministic)
# ------------------------------------------------------------------------------------

N_PROPERTIES = 8
KEYS = Labels(["center_type"], np.array([[1], [6]], dtype=np.int32))


def system_tensor(
    system: int, rng: np.random.Generator, gradients: bool, arrays: str
) -> TensorMap:
    """A small per-system TensorMap: 2 blocks of 2-6 atoms and 8 properties,
    optionally with positions gradients (each atom with respect to itself and
    to the next one)."""

    def array(values: np.ndarray):
        if arrays == "torch":
            return torch.from_numpy(values)
        return values

    properties = Labels.range("n", N_PROPERTIES)
    xyz = Labels.range("xyz", 3)
    blocks = []
    for _ in range(len(KEYS)):
        n_atoms = int(rng.integers(2, 7))
        atoms = np.arange(n_atoms, dtype=np.int32)
        samples = np.stack([np.full(n_atoms, system, dtype=np.int32), atoms], axis=1)
        block = TensorBlock(
            values=array(rng.random((n_atoms, N_PROPERTIES))),
            samples=Labels(["system", "atom"], samples),
            components=[],
            properties=properties,
        )
        if gradients:
            rows = np.repeat(atoms, 2)
            neighbors = (rows + np.tile([0, 1], n_atoms)) % n_atoms
            gradient_samples = np.stack(
                [rows, np.full_like(rows, system), neighbors], axis=1
            ).astype(np.int32)
            block.add_gradient(
                "positions",
                TensorBlock(
                    values=array(rng.random((2 * n_atoms, 3, N_PROPERTIES))),
                    samples=Labels(["sample", "system", "atom"], gradient_samples),
                    components=[xyz],
                    properties=properties,
                ),
            )
        blocks.append(block)
    return TensorMap(KEYS, blocks)


def samples(count: int, gradients: bool = True, arrays: str = "numpy") -> List[Any]:
    """The samples of a ``Dataset`` of ``count`` per-system TensorMaps, and a
    per-system energy as a torch tensor."""
    rng = np.random.default_rng(count)
    tensors = [system_tensor(i, rng, gradients, arrays) for i in range(count)]
    energies = [torch.tensor([float(i)]) for i in range(count)]
    dataset = Dataset(features=tensors, energy=energies)
    return [dataset[i] for i in range(count)]


# ------------------------------------------------------------------------------------
# cases
# ------------------------------------------------------------------------------------


def bench_collate(cfg: Dict[str, Any], results: Dict[str, Any]) -> None:
    # the case names give the sizes of a full run (as in bench_core.py), the
    # sizes of a --quick run are smaller
    per_item = {}
    names = [f"collate_{count}" for count in FULL["collate_sizes"]]
    for name, count, reps in zip(names, cfg["collate_sizes"], cfg["collate_reps"]):
        batch = samples(count)
        # one warm-up, to exclude import-time and first-call costs
        group_and_join(batch[:2])
        results[name] = measure(group_and_join, reps, lambda b=batch: b)
        per_item[str(count)] = statistics.median(results[name]) / count * 1e6
        del batch
    results["_collate_per_item_us"] = per_item

    count = cfg["collate_sizes"][1]
    reps = cfg["collate_reps"][1]
    name = FULL["collate_sizes"][1]
    batch = samples(count, gradients=False)
    results[f"collate_nograd_{name}"] = measure(group_and_join, reps, lambda b=batch: b)
    batch = samples(count, arrays="torch")
    results[f"collate_torch_{name}"] = measure(group_and_join, reps, lambda b=batch: b)


def bench_loader(cfg: Dict[str, Any], results: Dict[str, Any]) -> None:
    count = cfg["loader_size"]
    rng = np.random.default_rng(7)
    tensors = [system_tensor(i, rng, True, "torch") for i in range(count)]
    energies = [torch.tensor([float(i)]) for i in range(count)]
    dataset = Dataset(features=tensors, energy=energies)

    def epoch(loader) -> Any:
        n_rows = 0
        energy = 0.0
        for batch in loader:
            n_rows += len(batch.features.block(0).samples)
            energy += float(batch.energy.sum())
        return (n_rows, energy)

    def fresh_loader():
        generator = torch.Generator().manual_seed(1)
        return DataLoader(dataset, batch_size=32, shuffle=True, generator=generator)

    name = f"loader_epoch_{FULL['loader_size']}"
    results[name] = measure(epoch, cfg["loader_reps"], fresh_loader)


GROUPS = {
    "learn_collate": bench_collate,
    "learn_loader": bench_loader,
}

FULL = {
    "collate_sizes": [100, 1000, 5000],
    "collate_reps": [11, 7, 5],
    "loader_size": 1000,
    "loader_reps": 5,
}

QUICK = {
    "collate_sizes": [10, 50, 100],
    "collate_reps": [2, 2, 2],
    "loader_size": 64,
    "loader_reps": 2,
}


def version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def implementation_info() -> Dict[str, Any]:
    return {
        "metatensor_core": version("metatensor-core"),
        "metatensor_operations": version("metatensor-operations"),
        "metatensor_learn": version("metatensor-learn"),
        "module": os.path.dirname(metatensor.__file__),
        "learn_module": os.path.dirname(metatensor.learn.__file__),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpus",
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="metatensor", help="name in the output")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument(
        "--only", default="", help=f"comma-separated groups among {list(GROUPS)}"
    )
    args = parser.parse_args(argv)

    cfg = dict(QUICK if args.quick else FULL)
    groups = [g for g in args.only.split(",") if g] or list(GROUPS)
    for group in groups:
        if group not in GROUPS:
            parser.error(f"unknown group {group!r}, expected one of {list(GROUPS)}")

    torch.set_num_threads(1)
    output = run_groups(
        args.label,
        implementation_info(),
        cfg,
        groups,
        lambda group, results: GROUPS[group](cfg, results),
    )
    write_output(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
