"""Check that two metatensor implementations read each other's ``.mts`` files.

Sub-commands (each runs with the ``metatensor`` importable by the Python running it):

``write DIR``
    save the fixtures of ``fixtures.py`` and a re-save of every ``tests/data`` file in
    ``DIR``, with a description of their content (``manifest.json`` for the
    structure, one ``.npz`` of plain numpy arrays per file).
``check DIR``
    load every file of ``DIR`` and compare it with its description (names, info,
    dtypes, shapes, exact bytes of every array); check that loaded arrays are
    writable, C-contiguous and native-endian; re-save each object and check that the
    file is byte-identical to the one in ``DIR``.
``diff DIR_A DIR_B``
    the files written natively by two implementations must be byte-identical.
``run --reference-python PY``
    the whole check, both directions: ours writes and the reference checks, the
    reference writes and ours checks, then both outputs are diffed. "ours" is the
    Python running this script unless ``--ours-python`` is given.

Exit status 1 on any mismatch, with one line per problem.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import pickle
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

import numpy as np


HERE = pathlib.Path(__file__).resolve().parent
DATA_DIR = HERE.parent / "data"


def _metatensor():
    import metatensor

    return metatensor


def implementation() -> Dict[str, str]:
    import importlib.metadata

    mts = _metatensor()
    return {
        "metatensor_core": importlib.metadata.version("metatensor-core"),
        "module": str(pathlib.Path(mts.__file__).parent),
        "numpy": np.__version__,
    }


def load(kind: str, path: pathlib.Path) -> Any:
    mts = _metatensor()
    if kind == "labels":
        return mts.load_labels(str(path))
    if kind == "block":
        return mts.load_block(str(path))
    return mts.load(str(path))


def save(path: pathlib.Path, data: Any, use_numpy: bool = False) -> None:
    mts = _metatensor()
    if use_numpy:
        mts.save(str(path), data, use_numpy=True)
    else:
        mts.save(str(path), data)


# ----------------------------------------------------------------------------------
# write
# ----------------------------------------------------------------------------------


def write(folder: pathlib.Path, data_dir: pathlib.Path) -> int:
    from fixtures import DATA_FILES, Fixture, build_fixtures, describe

    folder.mkdir(parents=True, exist_ok=True)
    fixtures = build_fixtures(_metatensor())
    for filename, kind in DATA_FILES.items():
        name = "data_" + filename[: -len(".mts")]
        fixtures[name] = Fixture(kind, load(kind, data_dir / filename))

    manifest: Dict[str, Any] = {"writer": implementation(), "fixtures": {}}
    for name, fixture in fixtures.items():
        path = folder / f"{name}.mts"
        save(path, fixture.data, fixture.use_numpy)
        structure, arrays = describe(fixture.kind, fixture.data)
        np.savez(folder / f"{name}.npz", **arrays)
        if not fixture.use_numpy:
            for protocol in (4, 5):
                pickled = pickle.dumps(fixture.data, protocol=protocol)
                (folder / f"{name}.p{protocol}.pkl").write_bytes(pickled)
        manifest["fixtures"][name] = {
            "kind": fixture.kind,
            "file": path.name,
            "use_numpy": fixture.use_numpy,
            "resave_as": (fixture.resave_as or name) + ".mts",
            "reference_can_load": fixture.reference_can_load,
            "structure": structure,
        }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"wrote {len(fixtures)} files in {folder}")
    return 0


# ----------------------------------------------------------------------------------
# check
# ----------------------------------------------------------------------------------


def check(folder: pathlib.Path, skip_reference_unreadable: bool) -> int:
    manifest = json.loads((folder / "manifest.json").read_text())
    writer = manifest["writer"]
    reader = implementation()
    print(
        f"reading files of metatensor-core {writer['metatensor_core']} "
        f"({writer['module']}) with metatensor-core {reader['metatensor_core']} "
        f"({reader['module']})"
    )
    failures = 0
    checked = 0
    with tempfile.TemporaryDirectory(prefix="metatensor-interop-") as tmp:
        for name, entry in manifest["fixtures"].items():
            if skip_reference_unreadable and not entry["reference_can_load"]:
                print(f"  skip  {name} (the reference can not read it)")
                continue
            checked += 1
            variants: List[str] = []
            problems = check_one(folder, name, entry, pathlib.Path(tmp), variants)
            if problems:
                failures += 1
                print(f"  FAIL  {name}")
                for problem in problems:
                    print(f"          {problem}")
            else:
                print(f"  ok    {name:36} ({', '.join(variants)})")

    print(f"{checked - failures}/{checked} files read and re-saved identically")
    return 1 if failures else 0


def check_one(
    folder: pathlib.Path,
    name: str,
    entry: Dict[str, Any],
    tmp: pathlib.Path,
    variants: List[str],
) -> List[str]:
    """Check one file; the names of the ways it was loaded/saved go in ``variants``."""
    from fixtures import check_loaded_arrays, compare_arrays, describe

    kind = entry["kind"]
    try:
        data = load(kind, folder / entry["file"])
    except Exception as error:
        return [f"loading failed: {type(error).__name__}: {error}"]

    problems = []
    structure, arrays = describe(kind, data)
    structure = json.loads(json.dumps(structure))
    problems += structure_diff(entry["structure"], structure, "")
    with np.load(folder / f"{name}.npz") as expected:
        problems += compare_arrays(dict(expected.items()), arrays)
    problems += check_loaded_arrays(kind, data)

    variants.append("load")
    for variant, loader in other_loaders(kind, folder / entry["file"]):
        variants.append(variant)
        try:
            other = loader()
        except Exception as error:
            problems.append(
                f"[{variant}] loading failed: {type(error).__name__}: {error}"
            )
            continue
        other_structure, other_arrays = describe(kind, other)
        other_structure = json.loads(json.dumps(other_structure))
        with np.load(folder / f"{name}.npz") as expected:
            other_problems = structure_diff(entry["structure"], other_structure, "")
            other_problems += compare_arrays(dict(expected.items()), other_arrays)
        problems += [f"[{variant}] {problem}" for problem in other_problems]

    original = (folder / entry["resave_as"]).read_bytes()
    variants.append("save_buffer")
    try:
        buffer = _metatensor().io.save_buffer(data)
        if bytes(buffer) != original:
            difference = bytes_diff(original, bytes(buffer))
            problems.append(
                f"[save_buffer] differs from {entry['resave_as']}: {difference}"
            )
    except Exception as error:
        problems.append(f"[save_buffer] failed: {type(error).__name__}: {error}")

    resaved = tmp / f"{name}.mts"
    variants.append("save")
    try:
        save(resaved, data)
    except Exception as error:
        problems.append(f"saving failed: {type(error).__name__}: {error}")
        return problems
    new = resaved.read_bytes()
    if original != new:
        difference = bytes_diff(original, new)
        problems.append(
            f"re-saved file differs from {entry['resave_as']}: {difference}"
        )
    return problems


def other_loaders(kind: str, path: pathlib.Path):
    """The other ways to load the same file: from a buffer, through numpy
    (``use_numpy=True``), and memory-mapped where the reader supports ``mmap``."""
    import inspect

    io = _metatensor().io
    content = path.read_bytes()
    if kind == "labels":
        yield "buffer", lambda: io.load_labels_buffer(content)
        yield from unpicklers(path)
        return
    if kind == "block":
        load, load_buffer = io.load_block, io.load_block_buffer
    else:
        load, load_buffer = io.load, io.load_buffer
    yield "buffer", lambda: load_buffer(content)
    yield "use_numpy", lambda: load(str(path), use_numpy=True)
    if "mmap" in inspect.signature(load).parameters:
        yield "mmap", lambda: load(str(path), mmap=True)
    yield from unpicklers(path)


def unpicklers(path: pathlib.Path):
    """Unpickle the pickles written next to ``path`` (by the writer, our own files)."""
    for protocol in (4, 5):
        pickled = path.with_name(f"{path.stem}.p{protocol}.pkl")
        if pickled.exists():
            yield f"pickle {protocol}", lambda p=pickled: pickle.loads(p.read_bytes())


def structure_diff(expected: Any, actual: Any, path: str) -> List[str]:
    """Differences between two JSON-like structures, with their location."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if list(expected) != list(actual) and set(expected) != set(actual):
            return [f"{path or '/'}: keys {list(actual)}, expected {list(expected)}"]
        problems = []
        for key in expected:
            problems += structure_diff(expected[key], actual[key], f"{path}/{key}")
        return problems
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) == len(actual) and all(
            isinstance(x, (dict, list)) for x in expected
        ):
            problems = []
            for i, (a, b) in enumerate(zip(expected, actual)):
                problems += structure_diff(a, b, f"{path}/{i}")
            return problems
    if expected != actual:
        return [f"{path}: got {actual!r}, expected {expected!r}"]
    return []


def bytes_diff(expected: bytes, actual: bytes) -> str:
    if len(expected) != len(actual):
        size = f"{len(actual)} bytes instead of {len(expected)}"
    else:
        size = f"same size ({len(actual)} bytes)"
    for i, (a, b) in enumerate(zip(expected, actual)):
        if a != b:
            return (
                f"{size}, first difference at byte {i}: "
                f"expected {expected[max(0, i - 20) : i + 40]!r}, "
                f"got {actual[max(0, i - 20) : i + 40]!r}"
            )
    return size


# ----------------------------------------------------------------------------------
# diff and run
# ----------------------------------------------------------------------------------


def diff(first: pathlib.Path, second: pathlib.Path) -> int:
    manifest_a = json.loads((first / "manifest.json").read_text())
    manifest_b = json.loads((second / "manifest.json").read_text())
    print(
        f"comparing files written by {manifest_a['writer']['module']} and "
        f"{manifest_b['writer']['module']}"
    )
    failures = compared = 0
    for name, entry in manifest_a["fixtures"].items():
        if name not in manifest_b["fixtures"]:
            print(f"  FAIL  {name}: missing in {second}")
            failures += 1
            continue
        if entry["use_numpy"]:
            continue  # np.savez stores the time and depends on the numpy version
        compared += 1
        a = (first / entry["file"]).read_bytes()
        b = (second / entry["file"]).read_bytes()
        if a != b:
            failures += 1
            print(f"  FAIL  {name}: {bytes_diff(b, a)}")
    print(f"{compared - failures}/{compared} files byte-identical between writers")
    return 1 if failures else 0


def run(
    ours: str, reference: str, workdir: Optional[str], data_dir: pathlib.Path
) -> int:
    script = str(pathlib.Path(__file__).resolve())
    statuses = {}
    with tempfile.TemporaryDirectory(prefix="metatensor-interop-", dir=workdir) as tmp:
        ours_dir = pathlib.Path(tmp) / "written-by-ours"
        ref_dir = pathlib.Path(tmp) / "written-by-reference"
        steps = [
            (
                "ours writes",
                ours,
                ["write", str(ours_dir), "--data-dir", str(data_dir)],
            ),
            (
                "reference reads ours",
                reference,
                ["check", str(ours_dir), "--skip-reference-unreadable"],
            ),
            (
                "reference writes",
                reference,
                ["write", str(ref_dir), "--data-dir", str(data_dir)],
            ),
            ("ours reads reference", ours, ["check", str(ref_dir)]),
            ("same bytes", sys.executable, ["diff", str(ours_dir), str(ref_dir)]),
        ]
        requires = {
            "reference reads ours": ["ours writes"],
            "ours reads reference": ["reference writes"],
            "same bytes": ["ours writes", "reference writes"],
        }
        for title, python, arguments in steps:
            print(
                f"\n=== {title}: {python} interop.py {' '.join(arguments)}", flush=True
            )
            if any(statuses[r] != 0 for r in requires.get(title, [])):
                statuses[title] = "skipped"
                print("    skipped: a previous step failed")
                continue
            start = time.perf_counter()
            statuses[title] = subprocess.run([python, script, *arguments]).returncode
            print(f"    ({time.perf_counter() - start:.1f} s)", flush=True)

    print("\n=== summary")
    for title, status in statuses.items():
        text = "ok" if status == 0 else ("skipped" if status == "skipped" else "FAILED")
        print(f"  {title:24} {text}")
    return 0 if all(s == 0 for s in statuses.values()) else 1


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("write")
    p.add_argument("folder")
    p.add_argument("--data-dir", default=str(DATA_DIR))
    p = commands.add_parser("check")
    p.add_argument("folder")
    p.add_argument("--skip-reference-unreadable", action="store_true")
    p = commands.add_parser("diff")
    p.add_argument("first")
    p.add_argument("second")
    p = commands.add_parser("run")
    p.add_argument("--reference-python", required=True)
    p.add_argument("--ours-python", default=sys.executable)
    p.add_argument("--workdir", default=None, help="parent of the temporary folder")
    p.add_argument("--data-dir", default=str(DATA_DIR))
    args = parser.parse_args(argv)

    if args.command == "write":
        return write(pathlib.Path(args.folder), pathlib.Path(args.data_dir))
    if args.command == "check":
        return check(pathlib.Path(args.folder), args.skip_reference_unreadable)
    if args.command == "diff":
        return diff(pathlib.Path(args.first), pathlib.Path(args.second))
    return run(
        args.ours_python,
        args.reference_python,
        args.workdir,
        pathlib.Path(args.data_dir),
    )


if __name__ == "__main__":
    sys.exit(main())
