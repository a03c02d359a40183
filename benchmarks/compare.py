"""Run ``bench_core.py`` under this repository's metatensor-core and under the
reference implementation, then print the side-by-side table.

Each implementation lives in its own Python environment; this script only starts
them (``bench_core.py`` does the measuring) and compares the JSON they print. Each
group of cases runs in a fresh process under one implementation, then under the
other (alternating which goes first), ``--rounds`` times (default 2); the times of
all rounds are pooled before taking the median, so that a change of the machine's
load hits both sides alike::

    python benchmarks/compare.py --reference-python /path/to/reference-venv/bin/python

``--ours-python`` defaults to the Python running this script. ``--save DIR`` keeps
the two JSON documents; ``--from-json OURS REFERENCE`` prints the table of earlier
results without running anything. The last column says whether both implementations
returned the same result (a hash of the returned Labels, TensorMap or array). The
exit status is 1 when a case failed to run or returned different results (and, with
``--check-targets``, when a target is not met).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
from typing import Any, Dict, List, Optional, Tuple


HERE = pathlib.Path(__file__).resolve().parent
BENCH = HERE / "bench_core.py"
GROUPS = ["labels", "position", "set", "tensormap", "io", "keys_to"]

# (name shown, case in our results, case in the reference results, target ratio)
# the target is an upper bound for ours / reference; None is informational only
CASES: List[Tuple[str, str, str, Optional[float]]] = [
    ("Labels(1M x 3), sorted", "labels_create_sorted", "labels_create_sorted", 1.0),
    (
        "Labels(1M x 3), unsorted",
        "labels_create_unsorted",
        "labels_create_unsorted",
        1.0,
    ),
    (
        "Labels(1M x 3), assume_unique",
        "labels_create_assume_unique",
        "labels_create_assume_unique",
        None,
    ),
    (
        "first position() (index build)",
        "position_first_call",
        "position_first_call",
        None,
    ),
    ("100k position() lookups", "position_lookups", "position_lookups", 1.0),
    ("union (2 x 200k rows)", "labels_union", "labels_union", 1.0),
    ("intersection (2 x 200k rows)", "labels_intersection", "labels_intersection", 1.0),
    ("difference (2 x 200k rows)", "labels_difference", "labels_difference", 1.0),
    (
        "select 1 of 3 dims (200k rows)",
        "labels_select_one_dim",
        "labels_select_one_dim",
        1.0,
    ),
    (
        "select all dims (200k rows)",
        "labels_select_all_dims",
        "labels_select_all_dims",
        1.0,
    ),
    ("TensorMap 1000 blocks: build", "tensormap_build", "tensormap_build", 0.5),
    ("TensorMap 1000 blocks: iterate", "tensormap_iterate", "tensormap_iterate", 0.5),
    (
        "TensorMap 1000 x block(key=i)",
        "tensormap_block_selection",
        "tensormap_block_selection",
        None,
    ),
    ("save 200 MB", "io_save", "io_save", 1.0),
    ("load 200 MB", "io_load", "io_load", 1.0),
    ("load 200 MB, mmap (ref: load)", "io_load_mmap", "io_load", 0.2),
    ("keys_to_properties (qm7)", "keys_to_properties", "keys_to_properties", 0.5),
    ("keys_to_samples (qm7)", "keys_to_samples", "keys_to_samples", 0.5),
    (
        "keys_to_samples unsorted (qm7)",
        "keys_to_samples_unsorted",
        "keys_to_samples_unsorted",
        0.5,
    ),
]


def run_bench(python: str, label: str, extra: List[str]) -> Dict[str, Any]:
    """Run ``bench_core.py`` with ``python``; progress goes to our stderr."""
    command = [python, str(BENCH), "--label", label, *extra]
    print(f"$ {' '.join(command[1:])}  # {label}", file=sys.stderr, flush=True)
    process = subprocess.run(command, stdout=subprocess.PIPE)
    if process.returncode != 0:
        raise SystemExit(
            f"{label}: bench_core.py failed with status {process.returncode}"
        )
    return json.loads(process.stdout)


def merge(results: Optional[Dict[str, Any]], new: Dict[str, Any]) -> Dict[str, Any]:
    """Add the cases, info and errors of ``new`` to ``results``; the times of a case
    measured several times are concatenated and the median recomputed."""
    if results is None:
        return new
    results["info"].update(new["info"])
    results["errors"].update(new["errors"])
    for name, value in new.get("digests", {}).items():
        if results.setdefault("digests", {}).setdefault(name, value) != value:
            results["digests"][name] = "changed between rounds"
    for name, case in new["cases"].items():
        if name in results["cases"]:
            times = results["cases"][name]["times"] + case["times"]
            case = {
                "median": statistics.median(times),
                "min": min(times),
                "times": times,
            }
        results["cases"][name] = case
    return results


def run_interleaved(
    ours_python: str, reference_python: str, groups: List[str], rounds: int, extra
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Run each group of cases under both implementations, one after the other
    (alternating which one goes first), so that a change of the machine's load
    during the run affects both sides alike."""
    ours = reference = None
    order = 0
    for _ in range(rounds):
        for group in groups:
            runs = [("reference", reference_python), ("ours", ours_python)]
            if order % 2 == 1:
                runs.reverse()
            order += 1
            for label, python in runs:
                result = run_bench(python, label, [*extra, "--only", group])
                if label == "ours":
                    ours = merge(ours, result)
                else:
                    reference = merge(reference, result)
    return ours, reference


def milliseconds(value: Optional[float]) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value * 1e3:.0f}"
    return f"{value * 1e3:.3g}" if value * 1e3 < 1 else f"{value * 1e3:.1f}"


def table(ours: Dict[str, Any], reference: Dict[str, Any]) -> Tuple[str, int, int, int]:
    """Markdown table of the results; also returns the number of cases with a
    target that could not be compared, of missed targets, and of cases where the
    two implementations returned different results."""
    lines = [
        "| case | ours (ms) | reference (ms) | ratio | target | met | same result |",
        "|---|---:|---:|---:|---:|:---:|:---:|",
    ]
    missing = unmet = different = 0
    for title, our_case, ref_case, target in CASES:
        our = ours["cases"].get(our_case, {}).get("median")
        ref = reference["cases"].get(ref_case, {}).get("median")
        if our is None and ref is None:
            continue  # not run (--only)
        if our is None or ref is None:
            ratio_text, met = "-", "n/a"
            if target is not None:
                missing += 1
        else:
            ratio = our / ref
            ratio_text = f"{ratio:.2f}"
            if target is None:
                met = ""
            elif ratio <= target:
                met = "yes"
            else:
                met = "**no**"
                unmet += 1
        our_digest = ours.get("digests", {}).get(our_case)
        ref_digest = reference.get("digests", {}).get(ref_case)
        if our_digest is None or ref_digest is None:
            same = ""
        elif our_digest == ref_digest:
            same = "yes"
        else:
            same = "**NO**"
            different += 1
        target_text = "-" if target is None else f"<= {target}"
        lines.append(
            f"| {title} | {milliseconds(our)} | {milliseconds(ref)} | {ratio_text} "
            f"| {target_text} | {met} | {same} |"
        )
    return "\n".join(lines), missing, unmet, different


def describe(results: Dict[str, Any]) -> str:
    info = results["info"]
    text = (
        f"{results['label']}: metatensor-core {info['metatensor_core']} "
        f"({info['module']}), numpy {info['numpy']}, Python {info['python']}, "
        f"{info['machine']}"
    )
    for group, error in results.get("errors", {}).items():
        text += f"\n    ERROR in {group}: {error}"
    return text


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-python", help="Python with metatensor-core 0.2.6")
    parser.add_argument("--ours-python", default=sys.executable)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--only", default="", help="groups to run (see bench_core.py)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="run every group this many times"
    )
    parser.add_argument("--save", help="folder where to write ours.json/reference.json")
    parser.add_argument("--from-json", nargs=2, metavar=("OURS", "REFERENCE"))
    parser.add_argument(
        "--check-targets", action="store_true", help="exit with 1 if a target is missed"
    )
    args = parser.parse_args(argv)

    if args.from_json:
        ours, reference = (
            json.loads(pathlib.Path(p).read_text()) for p in args.from_json
        )
    else:
        if args.reference_python is None:
            parser.error("--reference-python is required (or use --from-json)")
        extra = [
            "--data",
            str(HERE.parent / "tests" / "data" / "qm7-spherical-expansion.mts"),
        ]
        if args.quick:
            extra.append("--quick")
        groups = [g for g in args.only.split(",") if g] or GROUPS
        ours, reference = run_interleaved(
            args.ours_python, args.reference_python, groups, args.rounds, extra
        )
        if args.save:
            folder = pathlib.Path(args.save)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "ours.json").write_text(json.dumps(ours, indent=1))
            (folder / "reference.json").write_text(json.dumps(reference, indent=1))

    text, missing, unmet, different = table(ours, reference)
    print()
    print(describe(ours))
    print(describe(reference))
    if "io_megabytes" in ours["info"]:
        print(f"io: {ours['info']['io_megabytes']:.0f} MB of data per file")
    if ours.get("config", {}).get("labels_rows") != 1_000_000:
        print("small sizes (--quick): the case names give the sizes of a full run")
    print()
    print(text)
    print()
    print(f"{missing} case(s) with a target not compared, {unmet} target(s) missed")

    if different:
        print(
            f"{different} case(s) returned different results in the two implementations"
        )
    failed = bool(ours.get("errors")) or bool(reference.get("errors")) or different > 0
    if failed:
        return 1
    if args.check_targets and (missing or unmet):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
