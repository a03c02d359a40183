"""Run ``bench_core.py``, ``bench_operations.py`` and ``bench_learn.py`` under this
repository's metatensor-core/metatensor-operations/metatensor-learn and under the
reference implementations, then print the side-by-side tables.

Each implementation lives in its own Python environment; this script only starts
them (``bench_core.py`` and ``bench_operations.py`` do the measuring) and compares
the JSON they print. Each
group of cases runs in a fresh process under one implementation, then under the
other (alternating which goes first), ``--rounds`` times (default 2); the times of
all rounds are pooled before taking the median, so that a change of the machine's
load hits both sides alike::

    python benchmarks/compare.py --reference-python /path/to/reference-venv/bin/python

The metatensor-learn groups (``learn_collate``, ``learn_loader``) need torch, and run
on the reference side under ``--reference-learn-python`` (an environment with
metatensor-learn 0.6.2 and torch); they are skipped when it is not given.

``--ours-python`` defaults to the Python running this script. ``--save DIR`` keeps
the two JSON documents; ``--from-json OURS REFERENCE`` prints the table of earlier
results without running anything. The last column says whether both implementations
returned the same result (a hash of the returned Labels, TensorMap or array; for the
operations, a hash of the metadata and weighted sums of the float data, equal up to
a relative 1e-9). The exit status is 1 when a case failed to run or returned
different results (and, with ``--check-targets``, when a target is not met).
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
CORE_GROUPS = ["labels", "position", "set", "tensormap", "io", "keys_to"]
OPERATIONS_GROUPS = ["ops_qm7", "ops_big", "ops_numpy", "ops_blocks"]
LEARN_GROUPS = ["learn_collate", "learn_loader"]
GROUPS = CORE_GROUPS + OPERATIONS_GROUPS + LEARN_GROUPS


def script(group: str) -> pathlib.Path:
    """The benchmark script measuring a group of cases."""
    if group in OPERATIONS_GROUPS:
        return HERE / "bench_operations.py"
    if group in LEARN_GROUPS:
        return HERE / "bench_learn.py"
    return HERE / "bench_core.py"


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

# the same for metatensor-operations (bench_operations.py); PS is the QM7 power
# spectrum, with gradients
OPERATION_CASES: List[Tuple[str, str, str, Optional[float]]] = [
    ('join([PS] * 10, "samples", add_dimension)', "ops_join", "ops_join", 0.5),
    (
        'sum_over_samples(PS, "atom")',
        "ops_sum_over_samples",
        "ops_sum_over_samples",
        0.5,
    ),
    ('slice(PS, "samples", 5 systems)', "ops_slice", "ops_slice", 0.5),
    ("dot(PS, W), W: 16 samples per block", "ops_dot", "ops_dot", 0.5),
    ("sort(PS), samples shuffled", "ops_sort", "ops_sort", 0.5),
    ("add, 2 x 100 MB, gradients", "ops_add_big", "ops_add_big", 0.5),
    ("multiply, 2 x 100 MB, gradients", "ops_multiply_big", "ops_multiply_big", 0.5),
    ("add, 2 x 5000 tiny blocks", "ops_add_tiny_blocks", "ops_add_tiny_blocks", 0.5),
    ("add, one 64 MB block", "ops_large_add", "ops_large_add", None),
    ("multiply, one 64 MB block", "ops_large_multiply", "ops_large_multiply", None),
    (
        "sum_over_samples, one 64 MB block",
        "ops_large_sum_over_samples",
        "ops_large_sum_over_samples",
        None,
    ),
    ("join, 2 x one 64 MB block", "ops_large_join", "ops_large_join", None),
]

# the same for metatensor-learn (bench_learn.py): collation of batches of small
# per-system TensorMaps with positions gradients, as DataLoader does
LEARN_CASES: List[Tuple[str, str, str, Optional[float]]] = [
    ("collate 100 TensorMaps", "collate_100", "collate_100", 1.0),
    ("collate 1,000 TensorMaps", "collate_1000", "collate_1000", 1.0),
    ("collate 5,000 TensorMaps", "collate_5000", "collate_5000", 1.0),
    ("collate 1,000, no gradients", "collate_nograd_1000", "collate_nograd_1000", 1.0),
    ("collate 1,000, torch arrays", "collate_torch_1000", "collate_torch_1000", 1.0),
    ("DataLoader epoch, 1,000 items", "loader_epoch_1000", "loader_epoch_1000", 1.0),
]
COLLATE_CASES = ["collate_100", "collate_1000", "collate_5000"]


# an operation next to the bare numpy computation of the same arrays, in the same
# process: (name shown, operation case, numpy case, target ratio operation / numpy)
NUMPY_CASES: List[Tuple[str, str, str, Optional[float]]] = [
    ("add, 2 x 100 MB, gradients", "ops_add_big", "numpy_add_big", None),
    ("multiply, 2 x 100 MB, gradients", "ops_multiply_big", "numpy_multiply_big", None),
    ("add, one 64 MB block", "ops_large_add", "numpy_large_add", 1.3),
    ("multiply, one 64 MB block", "ops_large_multiply", "numpy_large_multiply", 1.3),
    (
        'sum_over_samples(.., "atom"), one 64 MB block',
        "ops_large_sum_over_samples",
        "numpy_large_sum_over_samples",
        1.3,
    ),
    ("join, 2 x one 64 MB block", "ops_large_join", "numpy_large_join", 1.3),
]


def run_bench(
    python: str, label: str, extra: List[str], bench: pathlib.Path
) -> Dict[str, Any]:
    """Run ``bench`` (a benchmark script) with ``python``; progress goes to our
    stderr."""
    command = [python, str(bench), "--label", label, *extra]
    print(f"$ {' '.join(command[1:])}  # {label}", file=sys.stderr, flush=True)
    process = subprocess.run(command, stdout=subprocess.PIPE)
    if process.returncode != 0:
        raise SystemExit(
            f"{label}: {bench.name} failed with status {process.returncode}"
        )
    return json.loads(process.stdout)


def merge(results: Optional[Dict[str, Any]], new: Dict[str, Any]) -> Dict[str, Any]:
    """Add the cases, info and errors of ``new`` to ``results``; the times of a case
    measured several times are concatenated and the median recomputed."""
    if results is None:
        return new
    results["info"].update(new["info"])
    results.setdefault("config", {}).update(new.get("config", {}))
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
    ours_python: str,
    reference_python: Optional[str],
    groups: List[str],
    rounds: int,
    extra: Dict[str, List[str]],
    reference_learn_python: Optional[str] = None,
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Run each group of cases under both implementations, one after the other
    (alternating which one goes first), so that a change of the machine's load
    during the run affects both sides alike. The learn groups run on the
    reference side under ``reference_learn_python``."""
    ours = reference = None
    order = 0
    for _ in range(rounds):
        for group in groups:
            if group in LEARN_GROUPS:
                runs = [("reference", reference_learn_python), ("ours", ours_python)]
            else:
                runs = [("reference", reference_python), ("ours", ours_python)]
            if order % 2 == 1:
                runs.reverse()
            order += 1
            for label, python in runs:
                bench = script(group)
                arguments = [*extra[bench.name], "--only", group]
                result = run_bench(python, label, arguments, bench)
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


def same_result(first: Any, second: Any) -> bool:
    """Whether two digests describe the same result: exact hashes (strings) must be
    equal; fingerprints (``{"meta": hash, "sums": [...]}``, from
    ``bench_operations.py``) must have the same metadata hash, and the same
    weighted sums up to a relative 1e-9 (each ``sum(x * w)`` is followed by
    ``sum(|x| * w)``, the scale of its tolerance)."""
    if not isinstance(first, dict) or not isinstance(second, dict):
        return first == second
    if first.get("meta") != second.get("meta"):
        return False
    sums_1, sums_2 = first.get("sums", []), second.get("sums", [])
    if len(sums_1) != len(sums_2):
        return False
    for i in range(0, len(sums_1) - 1, 2):
        scale = max(abs(sums_1[i + 1]), abs(sums_2[i + 1]), 1e-300)
        if abs(sums_1[i] - sums_2[i]) > 1e-9 * scale:
            return False
        if abs(sums_1[i + 1] - sums_2[i + 1]) > 1e-9 * scale:
            return False
    return True


def ratio_cell(value: Optional[float], base: Optional[float], target) -> Tuple:
    """Text of the ratio ``value / base`` and of whether it meets ``target``, with
    1 for a missing ratio with a target, and 1 for a missed target."""
    if value is None or base is None:
        return "-", "n/a", int(target is not None), 0
    ratio = value / base
    if target is None:
        return f"{ratio:.2f}", "", 0, 0
    if ratio <= target:
        return f"{ratio:.2f}", "yes", 0, 0
    return f"{ratio:.2f}", "**no**", 0, 1


def table(
    ours: Dict[str, Any],
    reference: Dict[str, Any],
    cases: List[Tuple[str, str, str, Optional[float]]] = CASES,
) -> Tuple[str, int, int, int]:
    """Markdown table of the results; also returns the number of cases with a
    target that could not be compared, of missed targets, and of cases where the
    two implementations returned different results."""
    lines = [
        "| case | ours (ms) | reference (ms) | ratio | target | met | same result |",
        "|---|---:|---:|---:|---:|:---:|:---:|",
    ]
    missing = unmet = different = 0
    for title, our_case, ref_case, target in cases:
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
        elif same_result(our_digest, ref_digest):
            same = "yes"
        else:
            same = "**NO**"
            different += 1
        target_text = "-" if target is None else f"<= {target}"
        lines.append(
            f"| {title} | {milliseconds(our)} | {milliseconds(ref)} | {ratio_text} "
            f"| {target_text} | {met} | {same} |"
        )
    if len(lines) == 2:
        return "", missing, unmet, different
    return "\n".join(lines), missing, unmet, different


def paired_ratio(results: Dict[str, Any], case: str, base: str) -> Optional[float]:
    """Median over the repetitions of ``time(case) / time(base)``: the two cases
    were run in turn (one repetition of each), so that each ratio compares times
    taken under the same load of the machine. ``None`` if one was not run."""
    first = results["cases"].get(case, {}).get("times")
    second = results["cases"].get(base, {}).get("times")
    if not first or not second:
        return None
    if len(first) != len(second):
        return statistics.median(first) / statistics.median(second)
    return statistics.median(a / b for a, b in zip(first, second))


def numpy_table(
    ours: Dict[str, Any], reference: Dict[str, Any]
) -> Tuple[str, int, int]:
    """Markdown table of the operations next to the bare numpy computation of the
    same arrays, in the same process; the target is for ours. Also returns the
    number of cases with a target that could not be compared and of missed
    targets."""
    lines = [
        "| case | ours (ms) | numpy (ms) | ours / numpy | target | met "
        "| reference (ms) | numpy (ms) | reference / numpy |",
        "|---|---:|---:|---:|---:|:---:|---:|---:|---:|",
    ]
    missing = unmet = 0
    for title, op_case, numpy_case, target in NUMPY_CASES:
        times = [
            results["cases"].get(case, {}).get("median")
            for results in (ours, reference)
            for case in (op_case, numpy_case)
        ]
        if all(t is None for t in times):
            continue
        ratio, met, no_ratio, missed = ratio_cell(
            paired_ratio(ours, op_case, numpy_case), 1.0, target
        )
        ref_ratio = ratio_cell(paired_ratio(reference, op_case, numpy_case), 1.0, None)[
            0
        ]
        missing += no_ratio
        unmet += missed
        cells = " | ".join(milliseconds(t) for t in times[:2])
        ref_cells = " | ".join(milliseconds(t) for t in times[2:])
        target_text = "-" if target is None else f"<= {target}"
        lines.append(
            f"| {title} | {cells} | {ratio} | {target_text} | {met} | {ref_cells} "
            f"| {ref_ratio} |"
        )
    if len(lines) == 2:
        return "", missing, unmet
    return "\n".join(lines), missing, unmet


def per_block(ours: Dict[str, Any], reference: Dict[str, Any]) -> str:
    """Time per block of ``add`` on the TensorMaps with thousands of tiny blocks."""
    parts = []
    for results in (ours, reference):
        time = results["cases"].get("ops_add_tiny_blocks", {}).get("median")
        blocks = results["info"].get("ops_tiny_blocks")
        if time is None or not blocks:
            return ""
        parts.append(f"{results['label']} {time / blocks * 1e6:.1f} us")
    return f"add with {blocks} tiny blocks, per block: " + ", ".join(parts)


def collate_scaling(results: Dict[str, Any]) -> str:
    """Time per TensorMap of the collation cases (constant for a linear join),
    and the ratio between the largest and the smallest batch."""
    sizes = results.get("config", {}).get("collate_sizes")
    if not sizes:
        return ""
    per_item = []
    for case, size in zip(COLLATE_CASES, sizes):
        time = results["cases"].get(case, {}).get("median")
        if time is None:
            return ""
        per_item.append((size, time / size * 1e6))
    cells = ", ".join(f"{size}: {us:.1f} us" for size, us in per_item)
    growth = per_item[-1][1] / per_item[0][1]
    return (
        f"{results['label']}: {cells} (x{growth:.2f} from {per_item[0][0]} to "
        f"{per_item[-1][0]} TensorMaps)"
    )


def describe(results: Dict[str, Any]) -> str:
    info = results["info"]
    operations = ""
    if "metatensor_operations" in info:
        operations = f", metatensor-operations {info['metatensor_operations']}"
    if "metatensor_learn" in info:
        operations += (
            f", metatensor-learn {info['metatensor_learn']}, torch {info['torch']}"
        )
    text = (
        f"{results['label']}: metatensor-core {info['metatensor_core']} "
        f"({info['module']}){operations}, numpy {info['numpy']}, "
        f"Python {info['python']}, {info['machine']}"
    )
    for group, error in results.get("errors", {}).items():
        text += f"\n    ERROR in {group}: {error}"
    return text


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reference-python",
        help="Python with metatensor-core 0.2.6 and metatensor-operations 0.5.0",
    )
    parser.add_argument(
        "--reference-learn-python",
        help="Python with metatensor-learn 0.6.2 and torch, for the learn groups",
    )
    parser.add_argument("--ours-python", default=sys.executable)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument(
        "--only", default="", help=f"comma-separated groups among {GROUPS}"
    )
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
        data = HERE.parent / "tests" / "data"
        extra = {
            "bench_core.py": ["--data", str(data / "qm7-spherical-expansion.mts")],
            "bench_operations.py": ["--data-dir", str(data)],
            "bench_learn.py": [],
        }
        if args.quick:
            for arguments in extra.values():
                arguments.append("--quick")
        groups = [g for g in args.only.split(",") if g]
        if not groups:
            groups = list(GROUPS)
            if args.reference_learn_python is None:
                print(
                    "no --reference-learn-python: skipping the metatensor-learn groups",
                    file=sys.stderr,
                )
                groups = [g for g in groups if g not in LEARN_GROUPS]
        for group in groups:
            if group not in GROUPS:
                parser.error(f"unknown group {group!r}, expected one of {GROUPS}")
        if args.reference_python is None and any(g not in LEARN_GROUPS for g in groups):
            parser.error("--reference-python is required (or use --from-json)")
        if args.reference_learn_python is None and any(
            g in LEARN_GROUPS for g in groups
        ):
            parser.error("--reference-learn-python is required for the learn groups")
        ours, reference = run_interleaved(
            args.ours_python,
            args.reference_python,
            groups,
            args.rounds,
            extra,
            args.reference_learn_python,
        )
        if args.save:
            folder = pathlib.Path(args.save)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "ours.json").write_text(json.dumps(ours, indent=1))
            (folder / "reference.json").write_text(json.dumps(reference, indent=1))

    core_text, missing, unmet, different = table(ours, reference)
    ops_text, ops_missing, ops_unmet, ops_different = table(
        ours, reference, OPERATION_CASES
    )
    numpy_text, numpy_missing, numpy_unmet = numpy_table(ours, reference)
    learn_text, learn_missing, learn_unmet, learn_different = table(
        ours, reference, LEARN_CASES
    )
    missing += ops_missing + numpy_missing + learn_missing
    unmet += ops_unmet + numpy_unmet + learn_unmet
    different += ops_different + learn_different

    info = ours["info"]
    print()
    print(describe(ours))
    print(describe(reference))
    if "io_megabytes" in info:
        print(f"io: {info['io_megabytes']:.0f} MB of data per file")
    if "ops_big_megabytes" in info:
        print(f"add/multiply: {info['ops_big_megabytes']:.0f} MB per TensorMap")
    if "ops_large_block_megabytes" in info:
        print(f"large block: {info['ops_large_block_megabytes']:.0f} MB of values")
    config = ours.get("config", {})
    if (
        config.get("labels_rows", 1_000_000) != 1_000_000
        or config.get("big_megabytes", 100) != 100
        or config.get("loader_size", 1000) != 1000
    ):
        print("small sizes (--quick): the case names give the sizes of a full run")
    for title, text in [
        ("core", core_text),
        ("operations", ops_text),
        ("operations next to bare numpy (same process, same arrays)", numpy_text),
        ("metatensor-learn", learn_text),
    ]:
        if text:
            print(f"\n{title}:\n\n{text}")
    scaling = [collate_scaling(results) for results in (ours, reference)]
    if all(scaling):
        print("\ncollation time per TensorMap:")
        for line in scaling:
            print(f"    {line}")
    blocks = per_block(ours, reference)
    if blocks:
        print(f"\n{blocks}")
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
