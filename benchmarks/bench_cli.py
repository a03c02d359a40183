"""Timings of the ``mts`` command line tool on a large (~1 GB) file.

``mts show`` and ``mts labels`` read only metadata (the ZIP central directory,
NPY headers and the requested Labels entries, through a memory map), so their
time should not depend on the size of the values. This script writes a file of
about ``--size-gb`` GB in a temporary directory, then times:

- ``mts show`` and ``mts labels`` as programs (``python -m metatensor._cli``,
  including the start of Python and the import of numpy and metatensor);
- the same commands in the running process (``metatensor._cli.main``);
- for comparison, ``metatensor.load`` (reads all values) and
  ``metatensor.load(..., mmap=True)``.

Run with ``python benchmarks/bench_cli.py [--size-gb 1] [--repeat 5]``; it prints
a Markdown table. The file is in the page cache after being written: these are
warm-cache timings.
"""

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import metatensor
from metatensor import Labels, TensorBlock, TensorMap
from metatensor._cli import main


def make_tensor(size_gb: float) -> TensorMap:
    n_samples, n_properties = 10_000, 64
    block_bytes = n_samples * 3 * n_properties * 8
    n_blocks = max(1, int(round(size_gb * 1e9 / block_bytes)))
    rng = np.random.default_rng(0)
    values = rng.random((n_samples, 3, n_properties))
    samples = Labels(
        ["system", "atom"],
        np.stack([np.arange(n_samples) // 10, np.arange(n_samples) % 10], axis=1),
    )
    xyz = Labels(["xyz"], np.arange(3).reshape(-1, 1))
    properties = Labels(["n"], np.arange(n_properties).reshape(-1, 1))
    # all blocks share the same values array: the file is large, the memory
    # used to create it is not
    blocks = [TensorBlock(values, samples, [xyz], properties) for _ in range(n_blocks)]
    keys = Labels(["center_type"], np.arange(n_blocks).reshape(-1, 1))
    return TensorMap(keys, blocks)


def make_many_blocks(n_blocks: int) -> TensorMap:
    samples = Labels(
        ["system", "atom"], np.stack([np.zeros(10, dtype=int), np.arange(10)], axis=1)
    )
    properties = Labels(["n"], np.arange(4).reshape(-1, 1))
    values = np.ones((10, 4))
    blocks = [TensorBlock(values, samples, [], properties) for _ in range(n_blocks)]
    keys = Labels(["center_type"], np.arange(n_blocks).reshape(-1, 1))
    return TensorMap(keys, blocks)


def _time(function, repeat: int):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def _quiet(argv):
    def run():
        with contextlib.redirect_stdout(io.StringIO()):
            status = main(argv)
        assert status == 0, status

    return run


def _program(argv):
    def run():
        subprocess.run(
            [sys.executable, "-m", "metatensor._cli", *argv],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    return run


def main_benchmark():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--many-blocks",
        type=int,
        default=10_000,
        help="number of (small) blocks of the second file",
    )
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "large.mts")
        tensor = make_tensor(arguments.size_gb)
        start = time.perf_counter()
        metatensor.save(path, tensor)
        save_time = time.perf_counter() - start
        size = os.path.getsize(path)
        n_blocks = len(tensor.keys)
        del tensor
        print(
            f"file: {size / 1e9:.2f} GB, {n_blocks} blocks, written in "
            f"{save_time:.1f} s",
            file=sys.stderr,
        )

        last = str(n_blocks - 1)
        cases = [
            (
                "`python -c 'import metatensor'` (start-up alone)",
                lambda: subprocess.run(
                    [sys.executable, "-c", "import metatensor"], check=True
                ),
            ),
            ("`mts show FILE` (program)", _program(["show", path])),
            ("`mts show FILE --all` (program)", _program(["show", path, "--all"])),
            (
                "`mts labels FILE --block N` (program)",
                _program(["labels", path, "--block", last]),
            ),
            ("`mts show FILE` (in process)", _quiet(["show", path])),
            (
                "`mts show FILE --all --json` (in process)",
                _quiet(["show", path, "--all", "--json"]),
            ),
            (
                "`mts labels FILE --block N` (in process)",
                _quiet(["labels", path, "--block", last]),
            ),
            (
                "`mts labels FILE --block N --all` (in process, 10,000 entries)",
                _quiet(["labels", path, "--block", last, "--all"]),
            ),
            (
                "`metatensor.load(FILE, mmap=True)`",
                lambda: metatensor.load(path, mmap=True),
            ),
            (
                "`metatensor.load(FILE)` (reads all values)",
                lambda: metatensor.load(path),
            ),
        ]

        print(f"| case ({size / 1e9:.2f} GB, {n_blocks} blocks) | median | min |")
        print("|---|---|---|")
        for name, function in cases:
            repeat = 1 if "reads all values" in name else arguments.repeat
            median, minimum = _time(function, repeat)
            print(f"| {name} | {median * 1e3:.1f} ms | {minimum * 1e3:.1f} ms |")
            sys.stdout.flush()
        os.unlink(path)

        # many small blocks: the per-block costs
        path = os.path.join(directory, "many.mts")
        n_blocks = arguments.many_blocks
        metatensor.save(path, make_many_blocks(n_blocks))
        last = str(n_blocks - 1)
        cases = [
            ("`mts show FILE` (in process)", _quiet(["show", path])),
            ("`mts show FILE --all` (in process)", _quiet(["show", path, "--all"])),
            (
                "`mts show FILE --all --json` (in process)",
                _quiet(["show", path, "--all", "--json"]),
            ),
            (
                "`mts labels FILE --block N` (in process)",
                _quiet(["labels", path, "--block", last]),
            ),
            ("`metatensor.load(FILE)`", lambda: metatensor.load(path)),
        ]
        print()
        print(f"| case ({n_blocks} blocks of 10 x 4 values) | median | min |")
        print("|---|---|---|")
        for name, function in cases:
            median, minimum = _time(function, arguments.repeat)
            print(f"| {name} | {median * 1e3:.1f} ms | {minimum * 1e3:.1f} ms |")
            sys.stdout.flush()


if __name__ == "__main__":
    main_benchmark()
