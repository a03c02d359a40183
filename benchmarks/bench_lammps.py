"""Benchmark of LAMMPS with ``pair_style metatensor`` (the runner of
``metatensor.torch.atomistic.lammps``) on 1 and 2 MPI processes.

The model has the architecture of the demo (``examples/demo``: the power
spectrum descriptor with a 5.5 Å cutoff and 4 radial functions, one
multi-layer perceptron of widths [24, 24] per atomic type), **untrained**: its
weights are random (seeded), which changes nothing to its cost. The system is a
periodic Cu-Al cell of 4,000 atoms (fcc, 10 x 10 x 10 conventional cells with
a = 3.61 Å, a quarter of the atoms Al, positions slightly perturbed; 864 atoms
with ``--quick``), run with NVE molecular dynamics.

Each run is an MPI job (``mpiexec -n N``) started by this script and killed
after ``--timeout`` seconds. In each job, the input is run by the same code as
``python -m metatensor.torch.atomistic.lammps``; after a few steps of warm-up,
``run STEPS`` is timed, and the callback's own timers split each step into:

- ``model``: the model's forward and backward passes (energies of the own atoms,
  gradients with respect to the positions and the strain);
- ``callback, other``: everything else in the callback: reading the atoms of
  LAMMPS, choosing the ghost atoms, building the system and its neighbor list
  (vesin), the reduction over processes (``MPI_Allreduce``) and handing the
  results back to LAMMPS;
- ``LAMMPS``: the rest of the step (integration, communication of atoms,
  LAMMPS' own neighbor lists).

With 2 processes, the slowest process's timers are shown. The parallel
efficiency is ``t(1) / (2 t(2))``.

Usage::

    python benchmarks/bench_lammps.py            # 4,000 atoms, 20 timed steps
    python benchmarks/bench_lammps.py --quick    # 864 atoms, 5 timed steps
"""

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile

import torch


ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent

INPUT = """
units           metal
atom_style      atomic
boundary        p p p
read_data       cell.data
pair_style      metatensor model.pt
pair_coeff      * * 29 13
neighbor        1.0 bin
timestep        0.002
velocity        all create 300.0 4928 mom yes rot yes
fix             integrate all nve
thermo          1000
run             {warmup}
"""

# run inside each MPI process: the input, then the timed run
DRIVER = """
import json
import sys
import time

from mpi4py import MPI
import lammps

from metatensor.torch.atomistic.lammps import run_input

comm = MPI.COMM_WORLD
lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none"], comm=comm)
with open("in.lammps") as file:
    runner = run_input(lmp, file.read())
model = runner.model
steps = int(sys.argv[1])
model.reset_timings()
comm.Barrier()
start = time.perf_counter()
cpu_start = time.process_time()
lmp.command(f"run {steps} pre no post no")
total = time.perf_counter() - start
cpu = time.process_time() - cpu_start
timings = dict(
    model.timings,
    total=total,
    cpu=cpu,
    calls=model.calls,
    system_atoms=model.system_atoms,
    rebuilds=model.rebuilds,
)
everything = comm.gather(timings, root=0)
if comm.rank == 0:
    with open("timings.json", "w") as file:
        json.dump({"ranks": everything, "steps": steps}, file)
lmp.close()
"""


def _structure(path, repeat):
    import ase.build
    import ase.io
    import numpy as np

    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(repeat)
    rng = np.random.default_rng(0)
    numbers = atoms.numbers.copy()
    numbers[rng.choice(len(atoms), len(atoms) // 4, replace=False)] = 13
    atoms.numbers = numbers
    atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
    atoms.wrap()
    ase.io.write(
        path,
        atoms,
        format="lammps-data",
        specorder=["Cu", "Al"],
        masses=True,
        atom_style="atomic",
    )
    return len(atoms)


def _model(path):
    """The demo's architecture with random (seeded) weights, exported. Given
    ``selected_atoms`` (the own atoms of a process), the demo's potential only
    computes the environments of these atoms."""
    sys.path.insert(0, str(ROOT / "examples" / "demo"))
    from atomistic_model import export
    from descriptor import PowerSpectrum
    from energy_model import EnergyModel

    torch.manual_seed(0)
    descriptor = PowerSpectrum([13, 29], cutoff=5.5, n_radial=4)
    model = EnergyModel(descriptor.to(torch.float64), [24, 24])
    export(model, str(path))


def _run(directory, n_processes, steps, timeout):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    command = [
        str(BIN / "mpiexec"),
        "-n",
        str(n_processes),
        sys.executable,
        "driver.py",
        str(steps),
    ]
    process = subprocess.Popen(
        command,
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise RuntimeError(
            f"the run on {n_processes} processes took more than {timeout} s"
        ) from None
    if process.returncode != 0:
        raise RuntimeError(f"the run on {n_processes} processes failed:\n{output}")
    return json.loads((directory / "timings.json").read_text())


MODELS = {
    "demo": "the demo's AtomisticModel as exported",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="864 atoms, 5 steps")
    parser.add_argument("--steps", type=int, default=None, help="timed steps")
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds allowed for one run"
    )
    args = parser.parse_args()
    repeat = 6 if args.quick else 10
    steps = args.steps or (5 if args.quick else 20)
    warmup = 2 if args.quick else 5

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = pathlib.Path(tmp)
        n_atoms = _structure(directory / "cell.data", repeat)
        (directory / "in.lammps").write_text(INPUT.format(warmup=warmup))
        (directory / "driver.py").write_text(DRIVER)
        for name in MODELS:
            _model(directory / "model.pt")
            for n_processes in (1, 2):
                print(f"{name}: {n_processes} process(es) ...", file=sys.stderr)
                data = _run(directory, n_processes, steps, args.timeout)
                # the slowest process
                ranks = sorted(data["ranks"], key=lambda t: t["callback"])
                results[(name, n_processes)] = dict(
                    ranks[-1], cpu=max(t["cpu"] for t in data["ranks"])
                )

    load = os.getloadavg()[0]
    print(
        f"\nLAMMPS with pair_style metatensor: {n_atoms} atoms, the demo's "
        "architecture with untrained (random, seeded) weights, NVE, "
        f"{steps} timed steps, OMP_NUM_THREADS=1, {os.cpu_count()} cores "
        f"(load average {load:.1f} at the end)\n"
    )
    for name, description in MODELS.items():
        print(f"- {name}: {description}")
    print()
    print(
        "| model | processes | atoms in a system | ms/step | CPU ms/step | "
        "model fwd+bwd | callback, other (prepare + reduce) | LAMMPS "
        "| other / step |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    per_step = {}
    cpu_per_step = {}
    for (name, n_processes), timings in results.items():
        calls = timings["calls"]
        total = timings["total"] / steps * 1e3
        model = timings["model"] / calls * 1e3
        other = (timings["callback"] - timings["model"]) / calls * 1e3
        prepare = timings["prepare"] / calls * 1e3
        reduce = timings["reduce"] / calls * 1e3
        engine = total - timings["callback"] / calls * 1e3
        cpu = timings["cpu"] / steps * 1e3
        per_step[(name, n_processes)] = total
        cpu_per_step[(name, n_processes)] = cpu
        print(
            f"| {name} | {n_processes} | {timings['system_atoms']} | {total:.1f} | "
            f"{cpu:.1f} | {model:.1f} | {other:.1f} ({prepare:.1f} + {reduce:.1f}) | "
            f"{engine:.1f} | {100 * other / total:.1f} % |"
        )
    print()
    for name in MODELS:
        efficiency = per_step[(name, 1)] / (2 * per_step[(name, 2)])
        cpu = cpu_per_step[(name, 1)] / (2 * cpu_per_step[(name, 2)])
        print(
            f"parallel efficiency on 2 processes, {name}: {100 * efficiency:.0f} % "
            f"(wall clock), {100 * cpu:.0f} % (CPU time of the busiest process)"
        )
    print(
        "\nms/step is the wall-clock time (the slowest process), CPU ms/step the "
        "CPU time of the busiest process (what dedicated cores would give, MPI "
        "waits included as MPICH polls); 'reduce' includes the wait for the "
        "slower process in MPI_Allreduce; 'atoms in a system' counts the own and "
        "ghost atoms given to the model by the slowest process at the last step"
    )


if __name__ == "__main__":
    main()
