"""Benchmark of i-PI with the force client of ``metatensor.torch.atomistic.ipi``.

Path-integral molecular dynamics (2 beads, NVT) of a periodic Cu-Al cell of 108
atoms (fcc, 3 x 3 x 3 conventional cells, a quarter of the atoms Al, positions
slightly perturbed) with the many-body example model of ``examples/engines``
(cutoff 5 Å), with the input of ``examples/engines/ipi`` (its cell and step count
replaced). Cases:

- ``1 client``: one client evaluates both beads, one after the other;
- ``2 clients``: two clients share the beads (one each, in parallel);
- ``1 client, batch_size=2``: i-PI sends both beads to one client in one
  request, evaluated in one model call.

i-PI's own timer gives the time per step: the server runs with
``verbosity='medium'`` and prints its average time per step every 100 steps; the
steps after the first 100 (or after step 0 with ``--quick``) are timed, so that
start-up and connection are excluded. Every process runs with one thread
(``OMP_NUM_THREADS=1``): with 2 clients, the machine needs 3 free cores (the
server does little work but polls its sockets).

Usage::

    python benchmarks/bench_ipi.py            # 301 steps per case
    python benchmarks/bench_ipi.py --quick    # 101 steps per case

The server and clients are started by this script, each run bounded by
``--timeout`` seconds (all processes are killed after that).
"""

import argparse
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import numpy as np


ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "engines"
BIN = pathlib.Path(sys.executable).parent


def _structure(path):
    import ase.build
    import ase.io

    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    rng = np.random.default_rng(0)
    numbers = atoms.numbers.copy()
    numbers[rng.choice(len(atoms), len(atoms) // 4, replace=False)] = 13
    atoms.numbers = numbers
    atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
    ase.io.write(path, atoms, format="extxyz")
    return len(atoms)


def _input(directory, address, n_steps, batch_size):
    text = (EXAMPLES / "ipi" / "input.xml").read_text()
    text = re.sub(
        r"<total_steps>\s*\d+\s*</total_steps>",
        f"<total_steps> {n_steps} </total_steps>",
        text,
    )
    text = text.replace("verbosity='low'", "verbosity='medium'")
    text = text.replace("metatensor-cu-al", address)
    if batch_size > 1:
        text = text.replace(
            "</address>", f"</address> <batch_size> {batch_size} </batch_size>"
        )
    (directory / "input.xml").write_text(text)


def _start(command, directory, log):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    with open(directory / log, "w") as output:
        return subprocess.Popen(
            command,
            cwd=directory,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _kill(process):
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def run_case(directory, n_clients, batch_size, n_steps, timeout):
    """Run one simulation, return the time per step (s) after warm-up."""
    address = f"mts-bench-{uuid.uuid4().hex[:12]}"
    socket_path = pathlib.Path(f"/tmp/ipi_{address}")
    _input(directory, address, n_steps, batch_size)
    processes = []
    try:
        server = _start([str(BIN / "i-pi"), "input.xml"], directory, "server.log")
        processes.append(server)
        deadline = time.monotonic() + timeout
        while not socket_path.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "i-PI did not open its socket:\n"
                    + (directory / "server.log").read_text()
                )
            time.sleep(0.1)
        command = [
            sys.executable,
            "-m",
            "metatensor.torch.atomistic.ipi",
            "model.pt",
            "--template",
            "init.extxyz",
            "--address",
            address,
            "--unix",
        ]
        for i in range(n_clients):
            processes.append(_start(command, directory, f"client-{i}.log"))
        for process in processes:
            process.wait(timeout=max(deadline - time.monotonic(), 1.0))
        if server.returncode != 0:
            raise RuntimeError((directory / "server.log").read_text())
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"the simulation did not finish within {timeout} s"
        ) from None
    finally:
        for process in processes:
            _kill(process)
        if socket_path.exists():
            socket_path.unlink()

    log = (directory / "server.log").read_text()
    averages = {
        int(step): float(value)
        for step, value in re.findall(
            r"Average timings at MD step\s+(\d+)\. t/step:\s*(\S+)", log
        )
    }
    last = max(averages)
    first = 100 if last > 100 else 0
    # the printed value is the average over the steps 0 ... step
    total_last = averages[last] * (last + 1)
    total_first = averages[first] * (first + 1)
    return (total_last - total_first) / (last - first)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="101 steps per case instead of 301"
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="limit per case, in seconds"
    )
    args = parser.parse_args()
    n_steps = 101 if args.quick else 301

    sys.path.insert(0, str(EXAMPLES))
    from many_body_model import many_body_model

    cases = [("1 client", 1, 1), ("2 clients", 2, 1), ("1 client, batch_size=2", 1, 2)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = pathlib.Path(tmp)
        many_body_model().save(str(directory / "model.pt"))
        n_atoms = _structure(directory / "init.extxyz")
        for name, n_clients, batch_size in cases:
            print(f"running: {name} ...", file=sys.stderr, flush=True)
            step = run_case(directory, n_clients, batch_size, n_steps, args.timeout)
            rows.append((name, step))

    print(
        f"\ni-PI, 2-bead PIMD of {n_atoms} atoms (many-body model, cutoff 5 Å), "
        f"{n_steps} steps, timed after step {100 if n_steps > 101 else 0}\n"
    )
    print("| clients | ms / step | steps / s | speed-up |")
    print("|---|---:|---:|---:|")
    reference = rows[0][1]
    for name, step in rows:
        print(
            f"| {name} | {1e3 * step:.2f} | {1.0 / step:.1f} | {reference / step:.2f} |"
        )


if __name__ == "__main__":
    main()
