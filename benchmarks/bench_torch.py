"""Benchmarks of metatensor-torch, runnable under this repository's implementation
(pure-Python TorchScript classes) and under the reference (``metatensor-torch``
0.10.8, TorchScript custom classes implemented in C++).

Without ``--reference-python`` this script measures the cases of some groups under
the ``metatensor.torch`` it imports, and prints one JSON document on stdout
(progress on stderr)::

    python benchmarks/bench_torch.py --only build,module

With ``--reference-python PATH`` it drives the comparison: every group runs in a
fresh process under our implementation (``--ours-python``, by default the Python
running this script) and under the reference, alternating which goes first,
``--rounds`` times; the times of all rounds are pooled and the medians are
printed as a Markdown table::

    python benchmarks/bench_torch.py --reference-python /path/to/reference/bin/python

Groups: ``build`` (TensorMap of 1000 blocks), ``module`` (forward + backward of a
module over 100 blocks, scripted and eager), ``script`` (``torch.jit.script`` +
``save`` + ``load``), ``compile`` (``torch.compile``, ours only) and ``boundary``
(calling a scripted function with a TensorMap argument from Python).
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import platform
import statistics
import subprocess
import sys
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch


GROUPS = ["build", "module", "script", "compile", "boundary"]

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=UserWarning)

# the classes of the implementation being measured, set by `run_groups` (the
# scripted code below refers to them as globals)
Labels: Any = None
TensorBlock: Any = None
TensorMap: Any = None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ============================================================================ #
# measuring


def measure(
    function: Callable[[Any], Any],
    repetitions: int,
    setup: Optional[Callable[[], Any]] = None,
    warmup: int = 0,
) -> Tuple[List[float], Any]:
    """Time ``function(setup())`` ``repetitions`` times (after ``warmup``
    untimed calls), only timing ``function``.

    :return: the elapsed times in seconds and the result of the last call
    """
    for _ in range(warmup):
        function(setup() if setup is not None else None)
    times = []
    result = None
    for _ in range(repetitions):
        argument = setup() if setup is not None else None
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            result = function(argument)
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return times, result


def checksum(tensor) -> float:
    """A number summarizing the values of a TensorMap, equal (up to rounding)
    between implementations computing the same thing."""
    total = 0.0
    for i, block in enumerate(tensor.blocks()):
        total += (i + 1) * float(block.values.detach().double().sum())
    return total


# ============================================================================ #
# data (untimed, deterministic)


def block_arrays(torch, n_blocks: int, n_samples: int, n_properties: int, seed: int):
    """Tensors for ``n_blocks`` blocks with samples (system, atom), one
    3-component axis and a ``positions`` gradient."""
    generator = torch.Generator().manual_seed(seed)
    arrays = []
    for b in range(n_blocks):
        samples = torch.stack(
            [
                torch.arange(n_samples, dtype=torch.int32) // 5,
                torch.arange(n_samples, dtype=torch.int32) % 5 + b % 7,
            ],
            dim=1,
        )
        n_gradients = 2 * n_samples
        gradient_samples = torch.stack(
            [
                torch.arange(n_gradients, dtype=torch.int32) // 2,
                torch.arange(n_gradients, dtype=torch.int32) // 10,
                torch.arange(n_gradients, dtype=torch.int32) % 2,
            ],
            dim=1,
        )
        arrays.append(
            {
                "values": torch.rand(
                    (n_samples, 3, n_properties),
                    dtype=torch.float64,
                    generator=generator,
                ),
                "samples": samples,
                "components": torch.tensor([[-1], [0], [1]], dtype=torch.int32),
                "properties": torch.arange(n_properties, dtype=torch.int32).reshape(
                    -1, 1
                ),
                "gradient": torch.rand(
                    (n_gradients, 3, 3, n_properties),
                    dtype=torch.float64,
                    generator=generator,
                ),
                "gradient_samples": gradient_samples,
                "xyz": torch.tensor([[0], [1], [2]], dtype=torch.int32),
            }
        )
    keys = torch.stack(
        [
            torch.arange(n_blocks, dtype=torch.int32) // 10,
            torch.arange(n_blocks, dtype=torch.int32) % 10,
        ],
        dim=1,
    )
    return keys, arrays


def build_tensor(mts, keys, arrays, gradients: bool = True):
    """Build a TensorMap (Labels, blocks, gradients) from the tensors."""
    Labels, TensorBlock = mts.Labels, mts.TensorBlock
    blocks = []
    for data in arrays:
        components = [Labels(["o3_mu"], data["components"])]
        properties = Labels(["n"], data["properties"])
        block = TensorBlock(
            data["values"],
            Labels(["system", "atom"], data["samples"]),
            components,
            properties,
        )
        if gradients:
            block.add_gradient(
                "positions",
                TensorBlock(
                    data["gradient"],
                    Labels(["sample", "system", "atom"], data["gradient_samples"]),
                    [Labels(["xyz"], data["xyz"])] + components,
                    properties,
                ),
            )
        blocks.append(block)
    return mts.TensorMap(Labels(["center", "neighbor"], keys), blocks)


# ============================================================================ #
# the model


class Linear(torch.nn.Module):
    """A linear map of the properties of every block (the same source runs under
    both implementations)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        generator = torch.Generator().manual_seed(7)
        self.weight = torch.nn.Parameter(
            torch.rand((n_in, n_out), dtype=torch.float64, generator=generator)
        )
        self.properties = Labels(
            ["out"], torch.arange(n_out, dtype=torch.int32).reshape(-1, 1)
        )

    def forward(self, tensor: TensorMap) -> TensorMap:
        blocks: List[TensorBlock] = []
        for block in tensor.blocks():
            values = torch.tanh(block.values @ self.weight)
            blocks.append(
                TensorBlock(values, block.samples, block.components, self.properties)
            )
        return TensorMap(tensor.keys, blocks)


def identity(tensor: TensorMap) -> TensorMap:
    return tensor


def count(tensor: TensorMap) -> int:
    return len(tensor.keys)


def loss(output) -> Any:
    total = None
    for block in output.blocks():
        value = block.values.square().sum()
        total = value if total is None else total + value
    return total


# ============================================================================ #
# groups


def bench_build(torch, mts, cfg, results):
    keys, arrays = block_arrays(torch, cfg["build_blocks"], 10, 4, seed=1)
    log(f"build: TensorMap of {len(arrays)} blocks")
    times, tensor = measure(
        lambda _: build_tensor(mts, keys, arrays), cfg["repetitions"], warmup=1
    )
    results["build"] = {"times": times, "checksum": checksum(tensor)}


def forward_backward(model, tensor):
    output = model(tensor)
    value = loss(output)
    value.backward()
    return output


def bench_module(torch, mts, cfg, results):
    keys, arrays = block_arrays(
        torch, cfg["module_blocks"], cfg["module_samples"], 32, seed=2
    )
    tensor = build_tensor(mts, keys, arrays, gradients=False)

    log(f"module: forward + backward over {len(arrays)} blocks, scripted")
    scripted = torch.jit.script(Linear(32, 16))
    times, output = measure(
        lambda _: forward_backward(scripted, tensor),
        cfg["repetitions"],
        warmup=3,
    )
    results["module_scripted"] = {"times": times, "checksum": checksum(output)}

    log(f"module: forward + backward over {len(arrays)} blocks, eager")
    eager = Linear(32, 16)
    times, output = measure(
        lambda _: forward_backward(eager, tensor), cfg["repetitions"], warmup=3
    )
    results["module_eager"] = {"times": times, "checksum": checksum(output)}


def bench_script(torch, mts, cfg, results):

    def round_trip(_):
        scripted = torch.jit.script(Linear(32, 16))
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        buffer.seek(0)
        return torch.jit.load(buffer)

    log("script: torch.jit.script + save + load")
    times, loaded = measure(round_trip, cfg["repetitions"], warmup=1)
    keys, arrays = block_arrays(torch, 10, 10, 32, seed=3)
    output = loaded(build_tensor(mts, keys, arrays, gradients=False))
    results["script_round_trip"] = {"times": times, "checksum": checksum(output)}

    # the three steps separately
    times, scripted = measure(
        lambda _: torch.jit.script(Linear(32, 16)), cfg["repetitions"], warmup=1
    )
    results["script_only"] = {"times": times}

    def save(_):
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        return buffer.getvalue()

    times, data = measure(save, cfg["repetitions"], warmup=1)
    results["save_only"] = {"times": times, "size": len(data)}
    times, _ = measure(
        lambda _: torch.jit.load(io.BytesIO(data)), cfg["repetitions"], warmup=1
    )
    results["load_only"] = {"times": times}


def bench_compile(torch, mts, cfg, results):
    if not cfg["is_ours"]:
        log("compile: skipped (torch.compile is not supported by the reference)")
        return
    keys, arrays = block_arrays(
        torch, cfg["module_blocks"], cfg["module_samples"], 32, seed=2
    )
    tensor = build_tensor(mts, keys, arrays, gradients=False)
    eager = Linear(32, 16)
    times, output = measure(
        lambda _: forward_backward(eager, tensor), cfg["repetitions"], warmup=3
    )
    results["compile_eager"] = {"times": times, "checksum": checksum(output)}

    for backend in ["inductor", "aot_eager"]:
        log(f"compile: torch.compile(backend={backend!r})")
        torch._dynamo.reset()
        compiled = torch.compile(Linear(32, 16), backend=backend)
        try:
            start = time.perf_counter()
            forward_backward(compiled, tensor)
            first = time.perf_counter() - start
        except Exception as error:  # noqa: BLE001 (inductor may fail offline)
            message = str(error).splitlines()[0][:200]
            log(f"compile: backend {backend!r} failed: {message}")
            results[f"compile_{backend}"] = {"error": message}
            continue
        times, output = measure(
            lambda _, model=compiled: forward_backward(model, tensor),
            cfg["repetitions"],
            warmup=2,
        )
        results[f"compile_{backend}"] = {
            "times": times,
            "checksum": checksum(output),
            "first_call": first,
        }


def bench_boundary(torch, mts, cfg, results):
    scripted_identity = torch.jit.script(identity)
    scripted_count = torch.jit.script(count)
    for n_blocks in cfg["boundary_blocks"]:
        keys, arrays = block_arrays(torch, n_blocks, 10, 4, seed=4)
        tensor = build_tensor(mts, keys, arrays)
        log(f"boundary: scripted functions called with {n_blocks} blocks")
        times, _ = measure(
            lambda _, tensor=tensor: scripted_count(tensor),
            cfg["boundary_calls"],
            warmup=3,
        )
        results[f"boundary_in_{n_blocks}"] = {"times": times}
        times, output = measure(
            lambda _, tensor=tensor: scripted_identity(tensor),
            cfg["boundary_calls"],
            warmup=3,
        )
        results[f"boundary_round_trip_{n_blocks}"] = {
            "times": times,
            "checksum": checksum(output),
        }


def implementation_info(torch, mts) -> Dict[str, Any]:
    import importlib.metadata

    version = importlib.metadata.version("metatensor-torch")
    return {
        "metatensor-torch": version,
        # ours are Python classes, the reference's are `torch.classes` objects
        "ours": isinstance(mts.Labels, type),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def run_groups(groups: List[str], quick: bool) -> Dict[str, Any]:
    global Labels, TensorBlock, TensorMap
    import metatensor.torch as mts

    Labels, TensorBlock, TensorMap = mts.Labels, mts.TensorBlock, mts.TensorMap

    torch.set_num_threads(1)
    info = implementation_info(torch, mts)
    cfg = {
        "repetitions": 5 if quick else 15,
        "build_blocks": 20 if quick else 1000,
        "module_blocks": 10 if quick else 100,
        "module_samples": 20 if quick else 100,
        "boundary_blocks": [1, 10] if quick else [1, 10, 100],
        "boundary_calls": 5 if quick else 50,
        "is_ours": info["ours"],
    }
    results: Dict[str, Any] = {}
    functions = {
        "build": bench_build,
        "module": bench_module,
        "script": bench_script,
        "compile": bench_compile,
        "boundary": bench_boundary,
    }
    for group in groups:
        functions[group](torch, mts, cfg, results)
    return {"info": info, "results": results}


# ============================================================================ #
# comparison driver


def run_worker(python: str, group: str, quick: bool) -> Dict[str, Any]:
    command = [python, __file__, "--only", group]
    if quick:
        command.append("--quick")
    process = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed")
    return json.loads(process.stdout)


def merge(total: Dict[str, Any], new: Dict[str, Any]) -> None:
    total["info"] = new["info"]
    for name, result in new["results"].items():
        if name not in total["results"]:
            total["results"][name] = result
        elif "times" in result:
            total["results"][name]["times"] += result["times"]


def median_ms(results: Dict[str, Any], name: str) -> Optional[float]:
    result = results.get(name)
    if result is None or "times" not in result:
        return None
    return 1e3 * statistics.median(result["times"])


def fmt(value: Optional[float]) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def same(first: Dict[str, Any], second: Dict[str, Any], name: str) -> str:
    a = first.get(name, {}).get("checksum")
    b = second.get(name, {}).get("checksum")
    if a is None or b is None:
        return ""
    return "yes" if abs(a - b) <= 1e-9 * max(1.0, abs(a)) else "**no**"


# (name shown, case, target for ours / reference)
COMPARED = [
    ("TensorMap 1000 blocks: build", "build", 1.0),
    ("100 blocks: forward + backward, scripted module", "module_scripted", 1.0),
    ("100 blocks: forward + backward, eager module", "module_eager", None),
    ("torch.jit.script + save + load", "script_round_trip", 1.0),
    ("... torch.jit.script only", "script_only", None),
    ("... torch.jit.save only", "save_only", None),
    ("... torch.jit.load only", "load_only", None),
]


def report(ours: Dict[str, Any], reference: Dict[str, Any]) -> str:
    o, r = ours["results"], reference["results"]
    lines = [
        f"ours: metatensor-torch {ours['info']['metatensor-torch']}, reference: "
        f"metatensor-torch {reference['info']['metatensor-torch']}, torch "
        f"{ours['info']['torch']}, Python {ours['info']['python']}",
        "",
        "| case | ours (ms) | reference (ms) | ratio | target | met | same result |",
        "|---|---:|---:|---:|---:|:---:|:---:|",
    ]
    for title, name, target in COMPARED:
        mine, theirs = median_ms(o, name), median_ms(r, name)
        ratio = mine / theirs if mine is not None and theirs else None
        met = ""
        if target is not None and ratio is not None:
            met = "yes" if ratio <= target else "**no**"
        ratio_cell = "-" if ratio is None else f"{ratio:.2f}"
        target_cell = "-" if target is None else f"<= {target}"
        lines.append(
            f"| {title} | {fmt(mine)} | {fmt(theirs)} | {ratio_cell} | "
            f"{target_cell} | {met} | {same(o, r, name)} |"
        )

    sizes = [x.get("save_only", {}).get("size") for x in (o, r)]
    if None not in sizes:
        lines.append(
            f"\nsize of the saved module: ours {sizes[0] / 1e3:.0f} kB, "
            f"reference {sizes[1] / 1e3:.0f} kB"
        )

    eager = median_ms(o, "compile_eager")
    lines += [
        "",
        "| torch.compile (ours) | ms | speed-up over eager |",
        "|---|---:|---:|",
    ]
    lines.append(f"| eager module | {fmt(eager)} | 1.00 |")
    for backend in ["inductor", "aot_eager"]:
        result = o.get(f"compile_{backend}")
        if result is None:
            continue
        if "error" in result:
            lines.append(f"| backend={backend} | failed: {result['error']} | - |")
            continue
        value = median_ms(o, f"compile_{backend}")
        speedup = eager / value if eager and value else None
        lines.append(
            f"| backend={backend} (first call {1e3 * result['first_call']:.0f} ms) | "
            f"{fmt(value)} | {'-' if speedup is None else f'{speedup:.2f}'} |"
        )

    lines += [
        "",
        "| scripted call from Python | blocks | ours (ms) | reference (ms) |",
        "|---|---:|---:|---:|",
    ]
    sizes = sorted(
        int(name.rsplit("_", 1)[1]) for name in o if name.startswith("boundary_in_")
    )
    for kind, title in [
        ("in", "f(tensor) -> int"),
        ("round_trip", "f(tensor) -> tensor"),
    ]:
        for n in sizes:
            name = f"boundary_{kind}_{n}"
            lines.append(
                f"| {title} | {n} | {fmt(median_ms(o, name))} | "
                f"{fmt(median_ms(r, name))} |"
            )
    if len(sizes) >= 2:
        small, big = sizes[0], sizes[-1]
        for kind in ["in", "round_trip"]:
            a = median_ms(o, f"boundary_{kind}_{small}")
            b = median_ms(o, f"boundary_{kind}_{big}")
            if a is not None and b is not None:
                per_block = 1e3 * (b - a) / (big - small)
                lines.append(f"\nours, {kind}: {per_block:.0f} us per block")
    return "\n".join(lines)


def compare(args) -> int:
    groups = args.only.split(",") if args.only else GROUPS
    ours: Dict[str, Any] = {"results": {}}
    reference: Dict[str, Any] = {"results": {}}
    for round_ in range(args.rounds):
        for i, group in enumerate(groups):
            order = [("ours", args.ours_python), ("reference", args.reference_python)]
            if (round_ + i) % 2 == 1:
                order.reverse()
            if group == "compile":
                # ours only, and once: compiling takes minutes
                if round_ != 0:
                    continue
                order = order[:1] if order[0][0] == "ours" else order[1:]
            for label, python in order:
                log(f"--- round {round_ + 1}, {group}, {label}")
                result = run_worker(python, group, args.quick)
                merge(ours if label == "ours" else reference, result)
    if args.save:
        with open(args.save, "w") as fd:
            json.dump({"ours": ours, "reference": reference}, fd)
    print(report(ours, reference))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated groups among {GROUPS}")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument(
        "--reference-python", help="compare with the reference in this Python"
    )
    parser.add_argument("--ours-python", default=sys.executable)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--save", help="write both results to this JSON file")
    parser.add_argument(
        "--from-json", help="print the table of a file written by --save"
    )
    args = parser.parse_args(argv)

    if args.from_json:
        with open(args.from_json) as fd:
            data = json.load(fd)
        print(report(data["ours"], data["reference"]))
        return 0
    if args.reference_python:
        return compare(args)

    groups = args.only.split(",") if args.only else GROUPS
    unknown = set(groups) - set(GROUPS)
    if unknown:
        parser.error(f"unknown groups: {sorted(unknown)}")
    print(json.dumps(run_groups(groups, args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
