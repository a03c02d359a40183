"""Benchmark of the atomistic model stack of ``metatensor.torch.atomistic``.

One energy + forces evaluation of a periodic cell of 1,000 copper atoms (fcc,
5 x 5 x 10 conventional cells, positions slightly perturbed) with a small
neighbor-list model: 16 Gaussian radial functions of the distances to the
neighbors (full list, cutoff 5 Å, ~78 neighbors per atom), summed per atom, and
a 16 -> 64 -> 64 -> 1 MLP giving the per-atom energies. Cases (group
``model``):

- ``bare module (eager)`` / ``bare module (scripted)``: the module alone (as
  written / after ``torch.jit.script``), called with precomputed inputs (a
  ``System`` with its neighbor list already built from positions requiring
  gradients), then ``torch.autograd.grad`` of the energy;
- ``AtomisticModel.forward``: the same through ``AtomisticModel.forward`` of the
  model saved to a file and loaded with ``load_atomistic_model`` (a scripted
  module), with ``check_consistency=False``, then the same backward pass;
- ``AtomisticModel.forward, check_consistency``: the same with the checks.

Group ``calculator``: ``atoms.get_forces()`` through the ASE calculator after
``calc.reset()`` (a fresh calculation: building the ``System``, the neighbor
list, the model call and one backward pass giving forces and stress).

Group ``neighbors``: the neighbor-list step alone: ``vesin`` on the positions
(``vesin only``) and ``add_neighbor_lists`` (vesin + building the
``TensorBlock`` with differentiable pair vectors).

The overhead of ``AtomisticModel.forward`` is reported as
(``AtomisticModel.forward``) / (``bare module (scripted)``) - 1. torch runs with
one thread (``--threads``). Every case is timed over several repetitions
(inputs built outside of the timed region) and reported as the median.

Usage::

    python benchmarks/bench_atomistic.py                  # prints a Markdown table
    python benchmarks/bench_atomistic.py --output out.json --quick
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from bench_core import Timings, run_groups

from metatensor.torch import Labels, TensorBlock, TensorMap
from metatensor.torch.atomistic import (
    AtomisticModel,
    ModelCapabilities,
    ModelEvaluationOptions,
    ModelMetadata,
    ModelOutput,
    NeighborListOptions,
    System,
    add_neighbor_lists,
    load_atomistic_model,
)


GROUPS = ["model", "calculator", "neighbors"]

FULL = {"repeat": [5, 5, 10], "repetitions": 15}
QUICK = {"repeat": [3, 3, 3], "repetitions": 3}

warnings.filterwarnings("ignore", category=DeprecationWarning)


# ============================================================================ #
# the model


class RadialMLP(torch.nn.Module):
    """Gaussian radial features of the neighbors, summed per atom, and an MLP
    giving the per-atom energies."""

    def __init__(self, cutoff: float = 5.0, n_basis: int = 16, hidden: int = 64):
        super().__init__()
        self.cutoff = cutoff
        self.centers = torch.nn.Parameter(
            torch.linspace(1.5, cutoff, n_basis, dtype=torch.float64),
            requires_grad=False,
        )
        self.width = (cutoff - 1.5) / n_basis
        generator = torch.Generator().manual_seed(0)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(n_basis, hidden, dtype=torch.float64),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden, dtype=torch.float64),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, 1, dtype=torch.float64),
        )
        with torch.no_grad():
            for parameter in self.mlp.parameters():
                parameter.copy_(
                    0.3 * torch.randn(parameter.shape, generator=generator).double()
                )
        self._nl = NeighborListOptions(cutoff=cutoff, full_list=True, strict=True)

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self._nl]

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        energies: List[torch.Tensor] = []
        for system in systems:
            neighbors = system.get_neighbor_list(self._nl)
            i = neighbors.samples.column("first_atom").to(torch.long)
            r = torch.linalg.vector_norm(neighbors.values.reshape(-1, 3), dim=1)
            cut = (1.0 - (r / self.cutoff) ** 2) ** 2
            basis = torch.exp(
                -(((r.unsqueeze(1) - self.centers) / self.width) ** 2)
            ) * cut.unsqueeze(1)
            features = torch.zeros(
                (len(system), basis.shape[1]), dtype=basis.dtype, device=basis.device
            )
            features = features.index_add(0, i, basis)
            energies.append(self.mlp(features).sum())
        values = torch.stack(energies).reshape(-1, 1)
        device = values.device
        block = TensorBlock(
            values=values,
            samples=Labels(
                "system", torch.arange(len(systems), device=device).reshape(-1, 1)
            ),
            components=[],
            properties=Labels("energy", torch.zeros((1, 1), dtype=torch.int32)).to(
                device
            ),
        )
        keys = Labels("_", torch.zeros((1, 1), dtype=torch.int32, device=device))
        return {"energy": TensorMap(keys, [block])}


def make_atoms(repeat: List[int]):
    import ase.build

    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(tuple(repeat))
    rng = np.random.default_rng(0)
    atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
    return atoms


def make_model(module: torch.nn.Module) -> AtomisticModel:
    capabilities = ModelCapabilities(
        outputs={"energy": ModelOutput(unit="eV", sample_kind="system")},
        atomic_types=[29],
        interaction_range=module.cutoff,
        length_unit="angstrom",
        supported_devices=["cpu"],
        dtype="float64",
    )
    return AtomisticModel(module.eval(), ModelMetadata(name="bench"), capabilities)


def make_system(atoms, requires_grad: bool) -> System:
    positions = torch.tensor(atoms.positions, dtype=torch.float64)
    positions.requires_grad_(requires_grad)
    return System(
        types=torch.tensor(atoms.numbers, dtype=torch.int32),
        positions=positions,
        cell=torch.tensor(atoms.cell.array, dtype=torch.float64),
        pbc=torch.tensor(atoms.pbc, dtype=torch.bool),
    )


# ============================================================================ #
# measuring


Case = Tuple[Callable[[Any], Any], Optional[Callable[[], Any]]]


def measure(
    cases: Dict[str, Case], repetitions: int, results: Dict[str, Any], warmup: int = 3
) -> None:
    """Time the ``cases`` (name -> ``(function, setup)``), interleaved: each
    repetition runs every case once, so that changes of the machine's load hit
    all the cases alike. Only ``function(setup())`` is timed (the garbage
    collector disabled), after ``warmup`` untimed rounds. The wall-clock times
    go to ``results[name]``, the CPU times of this process (``time.process_time``,
    less sensitive to other jobs on the machine) to ``results[name + " [cpu]"]``.
    """
    for _ in range(warmup):
        for function, setup in cases.values():
            function(setup() if setup is not None else None)
    for name in cases:
        results[name] = Timings()
        results[name + " [cpu]"] = Timings()
    for _ in range(repetitions):
        for name, (function, setup) in cases.items():
            argument = setup() if setup is not None else None
            gc.collect()
            gc.disable()
            try:
                start, start_cpu = time.perf_counter(), time.process_time()
                function(argument)
                cpu = time.process_time() - start_cpu
                wall = time.perf_counter() - start
            finally:
                gc.enable()
            results[name].append(wall)
            results[name + " [cpu]"].append(cpu)
            del argument


def bench_model(cfg: Dict[str, Any], results: Dict[str, Any], tmpdir: str) -> None:
    atoms = make_atoms(cfg["repeat"])
    module = RadialMLP()
    model = make_model(module)
    path = os.path.join(tmpdir, "bench-model.pt")
    model.save(path)
    loaded = load_atomistic_model(path)
    scripted = torch.jit.script(RadialMLP().eval())
    options = loaded.requested_neighbor_lists()
    outputs = {"energy": ModelOutput(unit="eV", sample_kind="system")}
    evaluation = ModelEvaluationOptions(length_unit="angstrom", outputs=outputs)

    def prepared() -> System:
        system = make_system(atoms, requires_grad=True)
        add_neighbor_lists(system, options, length_unit="angstrom")
        return system

    def bare(function):
        def run(system: System):
            energy = function([system], outputs, None)["energy"].block().values
            return torch.autograd.grad(energy.sum(), system.positions)[0]

        return run

    def wrapped(check: bool):
        def run(system: System):
            result = loaded([system], evaluation, check_consistency=check)
            energy = result["energy"].block().values
            return torch.autograd.grad(energy.sum(), system.positions)[0]

        return run

    cases: Dict[str, Case] = {
        "bare module (eager)": (bare(module), prepared),
        "bare module (scripted)": (bare(scripted), prepared),
        "AtomisticModel.forward": (wrapped(False), prepared),
        "AtomisticModel.forward, check_consistency": (wrapped(True), prepared),
    }
    measure(cases, cfg["repetitions"], results)
    system = prepared()
    pairs = system.get_neighbor_list(options[0]).values.shape[0]
    results["_n_atoms"] = len(atoms)
    results["_n_pairs"] = int(pairs)


def bench_calculator(cfg: Dict[str, Any], results: Dict[str, Any], tmpdir: str) -> None:
    from metatensor.torch.atomistic.ase_calculator import MetatomicCalculator

    atoms = make_atoms(cfg["repeat"])
    path = os.path.join(tmpdir, "bench-model.pt")
    make_model(RadialMLP()).save(path)
    atoms.calc = MetatomicCalculator(path)

    def fresh(_):
        atoms.calc.reset()
        return atoms.get_forces()

    measure({"ASE calculator get_forces": (fresh, None)}, cfg["repetitions"], results)


def bench_neighbors(cfg: Dict[str, Any], results: Dict[str, Any]) -> None:
    import vesin

    atoms = make_atoms(cfg["repeat"])
    options = make_model(RadialMLP()).requested_neighbor_lists()

    def vesin_only(_):
        calculator = vesin.NeighborList(cutoff=options[0].cutoff, full_list=True)
        return calculator.compute(
            points=atoms.positions,
            box=atoms.cell.array,
            periodic=atoms.pbc,
            quantities="ijSD",
            copy=True,
        )

    def complete(system: System):
        add_neighbor_lists(system, options, length_unit="angstrom")

    cases: Dict[str, Case] = {
        "vesin only": (vesin_only, None),
        "add_neighbor_lists": (
            complete,
            lambda: make_system(atoms, requires_grad=True),
        ),
    }
    measure(cases, cfg["repetitions"], results)


# ============================================================================ #
# report


def markdown(output: Dict[str, Any]) -> str:
    """The results as a Markdown table, with the overhead of the wrappers."""
    cases = output["cases"]

    def ms(name: str, key: str = "median") -> Optional[float]:
        case = cases.get(name)
        return None if case is None else case[key] * 1e3

    lines = [
        "| case | wall median (ms) | wall min (ms) | CPU median (ms) |",
        "|---|---:|---:|---:|",
    ]
    for name in cases:
        if name.endswith(" [cpu]"):
            continue
        cpu = ms(name + " [cpu]")
        cpu_text = "-" if cpu is None else f"{cpu:.1f}"
        lines.append(
            f"| {name} | {ms(name):.1f} | {ms(name, 'min'):.1f} | {cpu_text} |"
        )
    lines.append("")

    def ratio(first: str, second: str) -> str:
        values = [ms(first + " [cpu]"), ms(second + " [cpu]")]
        values += [ms(first, "min"), ms(second, "min")]
        if any(v is None for v in values):
            return "-"
        cpu, wall = values[0] / values[1], values[2] / values[3]
        cpu_text = f"{(cpu - 1) * 100:+.1f}% (CPU medians)"
        return cpu_text + f", {(wall - 1) * 100:+.1f}% (wall min)"

    bare = "bare module (scripted)"
    lines.append(
        "AtomisticModel.forward over the bare scripted module: "
        + ratio("AtomisticModel.forward", bare)
        + " (target < +20%)"
    )
    lines.append(
        "with check_consistency: "
        + ratio("AtomisticModel.forward, check_consistency", bare)
    )
    lines.append(
        "ASE calculator over AtomisticModel.forward: "
        + ratio("ASE calculator get_forces", "AtomisticModel.forward")
    )
    info = output["info"]
    if "n_atoms" in info:
        lines.append(f"{info['n_atoms']} atoms, {info['n_pairs']} pairs (full list)")
    for group, error in output["errors"].items():
        lines.append(f"**{group} failed**: {error}")
    return "\n".join(lines)


def implementation_info() -> Dict[str, Any]:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    return {
        "metatensor_torch": version("metatensor-torch"),
        "torch": torch.__version__,
        "ase": version("ase"),
        "vesin": version("vesin"),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpus",
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument(
        "--only", default="", help=f"comma-separated groups among {GROUPS}"
    )
    parser.add_argument("--output", default=None, help="write the JSON results here")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    cfg = dict(QUICK if args.quick else FULL)
    groups = [g for g in args.only.split(",") if g] or list(GROUPS)
    for group in groups:
        if group not in GROUPS:
            parser.error(f"unknown group {group!r}, expected one of {GROUPS}")

    with tempfile.TemporaryDirectory(prefix="metatensor-bench-") as tmpdir:

        def run_group(group: str, results: Dict[str, Any]) -> None:
            if group == "model":
                bench_model(cfg, results, tmpdir)
            elif group == "calculator":
                bench_calculator(cfg, results, tmpdir)
            else:
                bench_neighbors(cfg, results)

        output = run_groups("ours", implementation_info(), cfg, groups, run_group)

    if args.output is not None:
        with open(args.output, "w") as file:
            json.dump(output, file, indent=1)
            file.write("\n")
    print(markdown(output))
    return 1 if output["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
