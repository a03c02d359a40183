"""Reliability of the atomistic layer: corrupted model files, bad cells and
positions, invalid neighbor lists, saves and threads. Tests of what used to hang
or crash the interpreter run in a subprocess with a timeout."""

import json
import math
import os
import random
import re
import struct
import subprocess
import sys
import textwrap
import threading
import zipfile

import numpy as np
import pytest
import torch

from metatensor.torch import Labels, TensorBlock
from metatensor.torch._errors import ModelFileError
from metatensor.torch.atomistic import (
    NeighborListOptions,
    System,
    _neighbors,
    check_atomistic_model,
    compute_neighbor_list,
    load_atomistic_model,
    read_model_metadata,
)

from ._models import lennard_jones_model


TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code: str, *args: str, timeout: float = 120):
    """Run ``code`` in a new interpreter (with this folder's parent in the
    path, for ``atomistic._models``), fail on timeout."""
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=TESTS,
        )
    except subprocess.TimeoutExpired as e:  # pragma: no cover
        pytest.fail(f"the subprocess did not finish in {timeout} s: {e.stdout}")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.pt"
    lennard_jones_model().save(path)
    return path


def _member_data_offset(data: bytes, info: zipfile.ZipInfo) -> int:
    offset = info.header_offset
    name_length, extra_length = struct.unpack("<HH", data[offset + 26 : offset + 30])
    return offset + 30 + name_length + extra_length


# ============================================================================ #
# corrupted model files (items 1 and 4)

LOAD_IN_SUBPROCESS = """
import resource, sys, warnings
# a hang in torch.jit.load grows without bounds: fail fast instead
resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
warnings.simplefilter("ignore")
from metatensor.torch._errors import ModelFileError
from metatensor.torch.atomistic import load_atomistic_model
try:
    load_atomistic_model(sys.argv[1])
    print("LOADED")
except ModelFileError as e:
    print("ModelFileError:", e)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="uses the resource module")
def test_corrupted_compressed_code(model_path, tmp_path):
    # two corrupted bytes inside the compressed TorchScript code of the Labels
    # class: this made torch.jit.load hang and grow until std::bad_alloc, or
    # fail with internal assertions
    data = bytearray(model_path.read_bytes())
    with zipfile.ZipFile(model_path) as archive:
        info = next(
            i
            for i in archive.infolist()
            if i.filename.endswith("metatensor_torch/_labels.py")
        )
    assert info.compress_type == zipfile.ZIP_DEFLATED
    start = _member_data_offset(data, info)
    rng = random.Random(0)
    for _ in range(2):
        data[start + rng.randrange(info.compress_size)] ^= 0xFF
    path = tmp_path / "corrupted.pt"
    path.write_bytes(bytes(data))

    result = run_python(LOAD_IN_SUBPROCESS, str(path), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ModelFileError: file at "), result.stdout
    assert "is corrupted or truncated" in result.stdout
    member = "archive member 'archive/code/__torch__/metatensor_torch/_labels.py'"
    assert member in result.stdout


def _corrupt_stored_member(model_path, tmp_path, suffix):
    data = bytearray(model_path.read_bytes())
    with zipfile.ZipFile(model_path) as archive:
        info = next(
            i
            for i in archive.infolist()
            if i.filename.endswith(suffix) and i.compress_type == zipfile.ZIP_STORED
        )
    start = _member_data_offset(data, info)
    data[start] ^= 0x55
    path = tmp_path / "corrupted.pt"
    path.write_bytes(bytes(data))
    return path, info.filename


@pytest.mark.parametrize("suffix", ["extra/model-metadata", "data.pkl", "version"])
def test_bad_checksum(model_path, tmp_path, suffix):
    path, member = _corrupt_stored_member(model_path, tmp_path, suffix)
    message = (
        f"file at '{path}' is corrupted or truncated: bad checksum \\(CRC-32\\) of "
        f"the archive member '{member}'"
    )
    with pytest.raises(ModelFileError, match=message):
        check_atomistic_model(path)
    # the errors are ValueError and RuntimeError (as in the reference)
    with pytest.raises(ValueError, match=message):
        load_atomistic_model(path)
    with pytest.raises(RuntimeError, match=message):
        load_atomistic_model(path)


def test_bad_checksum_in_metadata(model_path, tmp_path):
    # only the extra/ entries are read by read_model_metadata, and verified
    path, _ = _corrupt_stored_member(model_path, tmp_path, "extra/model-metadata")
    with pytest.raises(ModelFileError, match="bad checksum"):
        read_model_metadata(path)


def test_truncated_file(model_path, tmp_path):
    data = model_path.read_bytes()
    path = tmp_path / "truncated.pt"
    for size in [len(data) - 10, len(data) // 2, 100]:
        path.write_bytes(data[:size])
        with pytest.raises(ModelFileError, match=f"file at '{path}'"):
            load_atomistic_model(path)


def test_not_a_model(tmp_path):
    path = tmp_path / "archive.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a/data.txt", "hello")
        archive.writestr("b/data.txt", "hello")
    with pytest.raises(ModelFileError, match="is not a TorchScript archive"):
        load_atomistic_model(path)

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.txt", "hello")
    message = "is not a TorchScript archive \\(it does not contain data.pkl, version"
    with pytest.raises(ModelFileError, match=message):
        load_atomistic_model(path)


def test_invalid_utf8_in_extra_entries(model_path, tmp_path):
    # an archive with valid checksums but an invalid version entry
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(model_path) as source, zipfile.ZipFile(path, "w") as dest:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("extra/metatensor-torch-version"):
                data = b"\xff\xfe"
            dest.writestr(info, data)
    message = "'metatensor-torch-version' entry is not valid UTF-8"
    with pytest.raises(ModelFileError, match=message):
        load_atomistic_model(path)


def test_torchscript_errors_are_wrapped(model_path, tmp_path):
    # valid checksums, broken TorchScript code: torch's error is wrapped
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(model_path) as source, zipfile.ZipFile(path, "w") as dest:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("metatensor_torch/_labels.py"):
                data = data.replace(b")", b"]", 1)
            dest.writestr(info, data)
    check_atomistic_model(path)
    message = (
        f"failed to load the model at '{path}': the file contains a TorchScript "
        "archive that can not be loaded \\(RuntimeError: "
    )
    with pytest.raises(ModelFileError, match=message):
        load_atomistic_model(path)


FUZZ = """
import os, random, resource, sys, warnings
resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
warnings.simplefilter("ignore")
import torch
from metatensor.torch._errors import ModelFileError
from metatensor.torch.atomistic import (
    ModelEvaluationOptions, ModelOutput, load_atomistic_model
)
from atomistic._models import add_neighbor_lists, copper_system

torch.set_num_threads(1)
path, directory, n_mutations = sys.argv[1], sys.argv[2], int(sys.argv[3])

def evaluate(file):
    model = load_atomistic_model(file)
    system = copper_system(requires_grad=True)
    add_neighbor_lists(system, model, "angstrom")
    options = ModelEvaluationOptions(
        length_unit="angstrom",
        outputs={"energy": ModelOutput(unit="eV", sample_kind="system")},
    )
    energy = model([system], options, check_consistency=True)["energy"]
    energy = energy.block().values
    energy.sum().backward()
    return energy.detach(), system.positions.grad

reference = evaluate(path)
data = open(path, "rb").read()
rng = random.Random(1234)
for i in range(n_mutations):
    mutated = bytearray(data)
    if i % 8 == 7:
        mutated = mutated[: rng.randrange(len(mutated))]
    else:
        for _ in range(rng.choice([1, 2])):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
    file = os.path.join(directory, f"mutated-{i}.pt")
    with open(file, "wb") as fd:
        fd.write(mutated)
    print("START", i, flush=True)
    try:
        result = evaluate(file)
    except ModelFileError as e:
        assert f"'{file}'" in str(e), str(e)
        print("ERROR", i, flush=True)
        continue
    except Exception as e:
        print("UNEXPECTED", i, type(e).__name__, str(e)[:300], flush=True)
        continue
    same = all(torch.equal(a, b) for a, b in zip(result, reference))
    print("SAME" if same else "DIFFERENT", i, flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="uses the resource module")
def test_fuzz_load_atomistic_model(model_path, tmp_path):
    # mutated model files: a clean error naming the file, or exactly the same
    # results; never a hang, a crash or another exception
    n_mutations = 300
    result = run_python(FUZZ, str(model_path), str(tmp_path), str(n_mutations))
    lines = result.stdout.splitlines()
    started = [line for line in lines if line.startswith("START")]
    assert result.returncode == 0, (
        f"the fuzzing process failed with {result.returncode} while loading "
        f"{started[-1] if started else 'the reference'}: {result.stderr[-2000:]}"
    )
    outcomes = [line for line in lines if not line.startswith("START")]
    assert len(outcomes) == n_mutations
    bad = [line for line in outcomes if line.split()[0] not in ("ERROR", "SAME")]
    assert bad == []
    # most mutations are detected
    assert sum(line.startswith("ERROR") for line in outcomes) > n_mutations // 2


# ============================================================================ #
# saving models (item 7)


def test_model_save_is_reproducible(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    model = lennard_jones_model()
    model.save(tmp_path / "first.pt")
    model.save(tmp_path / "second.pt")
    first = (tmp_path / "first.pt").read_bytes()
    assert first == (tmp_path / "second.pt").read_bytes()
    with zipfile.ZipFile(tmp_path / "first.pt") as archive:
        roots = {name.split("/")[0] for name in archive.namelist()}
        metadata = archive.read("archive/extra/export-metadata")
    assert roots == {"archive"}
    assert b'"date": "2023-11-14T22:13:20+00:00"' in metadata
    assert sorted(os.listdir(tmp_path)) == ["first.pt", "second.pt"]


def test_model_save_from_threads(tmp_path):
    model = lennard_jones_model()
    path = tmp_path / "model.pt"
    errors = []

    def save():
        try:
            for _ in range(3):
                model.save(path)
        except Exception as e:  # pragma: no cover (reported below)
            errors.append(e)

    threads = [threading.Thread(target=save) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert os.listdir(tmp_path) == ["model.pt"]
    check_atomistic_model(path)


def test_model_save_failure_and_stale_temporaries(tmp_path, monkeypatch):
    model = lennard_jones_model()
    path = tmp_path / "model.pt"
    model.save(path)
    before = path.read_bytes()

    # stale temporary file of a killed save (previous naming scheme too)
    (tmp_path / f".model.pt.{os.getpid() + 1}.tmp").write_bytes(b"partial")
    (tmp_path / ".model.pt.1234-0123456789ab.tmp").write_bytes(b"partial")

    def failing(*args, **kwargs):
        raise RuntimeError("failed to write")

    monkeypatch.setattr(torch.jit, "save", failing)
    with pytest.raises(RuntimeError, match="failed to write"):
        model.save(path)
    assert path.read_bytes() == before
    expected = ["model.pt"] if _flock_available() else None
    if expected is not None:
        assert sorted(os.listdir(tmp_path)) == expected


def _flock_available():
    from metatensor.io import _atomic

    return _atomic.fcntl is not None


def test_model_save_fsync(tmp_path, sync_calls):
    lennard_jones_model().save(tmp_path / "model.pt")
    assert sync_calls.index("fsync") < sync_calls.index("replace")


# ============================================================================ #
# bad cells and positions (items 2 and 3)


def _system(cell, positions=None, pbc=(True, True, True)):
    if positions is None:
        positions = [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]
    positions = torch.tensor(positions, dtype=torch.float64)
    return System(
        types=torch.ones(len(positions), dtype=torch.int32),
        positions=positions,
        cell=torch.tensor(cell, dtype=torch.float64),
        pbc=torch.tensor(pbc),
    )


OPTIONS = NeighborListOptions(cutoff=5.0, full_list=True, strict=False)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_system(value):
    cell = [[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]]
    cell[1][1] = value
    with pytest.raises(ValueError, match="`cell` must contain only finite values"):
        _system(cell)

    positions = [[0.0, 0.0, 0.0], [0.5, value, 0.5]]
    message = "`positions` must contain only finite values, got \\[0.5, .*\\] in row 1"
    with pytest.raises(ValueError, match=message):
        _system(np.eye(3).tolist(), positions)

    system = _system(np.eye(3).tolist())
    with pytest.raises(ValueError, match="new `positions` must contain only finite"):
        system.positions = torch.full((2, 3), value, dtype=torch.float64)
    with pytest.raises(ValueError, match="new `cell` must contain only finite"):
        system.cell = torch.full((3, 3), value, dtype=torch.float64)


TWO_ATOMS = [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]
PERIODIC = [True, True, True]
NOT_PERIODIC = [False, False, False]
ZERO = [[0.0] * 3] * 3

# (cell, positions, pbc, cutoff, message): geometries on which vesin crashes
# the interpreter (SIGFPE) or runs out of memory
CRASHING_GEOMETRIES = {
    "nan": (
        [[math.nan, 0, 0], [0, 5, 0], [0, 0, 5]],
        TWO_ATOMS,
        PERIODIC,
        5.0,
        "`system.cell` must be finite",
    ),
    "huge": (
        [[1e300, 0, 0], [0, 5, 0], [0, 0, 5]],
        TWO_ATOMS,
        PERIODIC,
        5.0,
        "`system.cell` must be smaller than MAX_COORDINATE",
    ),
    "long": (
        [[1e6, 0, 0], [0, 5, 0], [0, 0, 5]],
        TWO_ATOMS,
        PERIODIC,
        5.0,
        "`system.cell` is too large for a cutoff of 5",
    ),
    "tiny": (
        (np.eye(3) * 0.01).tolist(),
        TWO_ATOMS,
        PERIODIC,
        5.0,
        "`system.cell` is too small for a cutoff of 5: the neighbor search would "
        "go over 1e\\+09 periodic images of the cell",
    ),
    "degenerate": (
        [[5, 0, 0], [5, 0, 0], [0, 0, 5]],
        TWO_ATOMS,
        PERIODIC,
        5.0,
        "`system.cell` is degenerate",
    ),
    "spread": (
        ZERO,
        [[0, 0, 0], [1e6, 0, 0]],
        NOT_PERIODIC,
        5.0,
        "`system.positions` are spread over a too large region for a cutoff of 5",
    ),
    "far": (
        ZERO,
        [[0, 0, 0], [1e300, 0, 0]],
        NOT_PERIODIC,
        5.0,
        "`system.positions` must be smaller than MAX_COORDINATE",
    ),
    "flat": (
        # a flat search grid
        ZERO,
        [[0, 0, 0], [100, 0.5, 999]],
        NOT_PERIODIC,
        1.0,
        "describe a too flat or elongated system for a cutoff of 1: the neighbor "
        "search grid would have 100 x 1 x 999 bins",
    ),
}

CHECK_GEOMETRIES = """
import sys, json, warnings
warnings.simplefilter("ignore")
import numpy as np
from metatensor.torch.atomistic import _neighbors
for cell, points, periodic, cutoff in json.loads(sys.argv[1]):
    cell = np.array(cell, dtype=np.float64)
    points = np.array(points, dtype=np.float64)
    periodic = np.array(periodic)
    try:
        # what compute_neighbor_list does
        points, cell, periodic = _neighbors._check_geometry(
            points, cell, periodic, cutoff
        )
        _neighbors._vesin_neighbors(points, cell, periodic, cutoff, True)
        print("COMPUTED", flush=True)
    except Exception as e:
        print(type(e).__name__, e, flush=True)
"""


def test_bad_geometries():
    # they must be rejected before vesin runs
    cases = sorted(CRASHING_GEOMETRIES)
    geometries = []
    for case in cases:
        cell, positions, pbc, cutoff, _ = CRASHING_GEOMETRIES[case]
        cell = [[float(x) for x in row] for row in cell]
        positions = [[float(x) for x in row] for row in positions]
        geometries.append((cell, positions, pbc, cutoff))
    result = run_python(CHECK_GEOMETRIES, json.dumps(geometries), timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(cases)
    for case, line in zip(cases, lines):
        assert line.startswith("ValueError `system."), line
        assert re.search(CRASHING_GEOMETRIES[case][-1], line), line

    with pytest.raises(ValueError, match="`cell` must contain only finite"):
        _system(CRASHING_GEOMETRIES["nan"][0])
    for case in cases:
        if case != "nan":
            # the same through compute_neighbor_list (the checks come first)
            cell, positions, pbc, cutoff, message = CRASHING_GEOMETRIES[case]
            options = NeighborListOptions(cutoff=cutoff, full_list=True, strict=False)
            with pytest.raises(ValueError, match=message):
                compute_neighbor_list(_system(cell, positions, pbc), options)


ASE_BAD_CELLS = """
import warnings
warnings.simplefilter("ignore")
import ase
import numpy as np
from atomistic._models import lennard_jones_model
from metatensor.torch.atomistic.ase_calculator import MetatomicCalculator

calculator = MetatomicCalculator(lennard_jones_model())
for cell in [[np.nan, 5, 5], [1e300, 5, 5], [0.01, 0.01, 0.01]]:
    atoms = ase.Atoms("Cu2", positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=cell)
    atoms.pbc = True
    atoms.calc = calculator
    try:
        atoms.get_potential_energy()
        print("COMPUTED", flush=True)
    except Exception as e:
        print(type(e).__name__, str(e).splitlines()[0], flush=True)
"""


def test_ase_calculator_bad_cells():
    pytest.importorskip("ase")
    result = run_python(ASE_BAD_CELLS, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("ValueError `cell` must contain only finite values")
    assert lines[1].startswith("ValueError `system.cell` must be smaller than")
    assert lines[2].startswith("ValueError `system.cell` is too small for a cutoff")


@pytest.mark.parametrize(
    "pbc",
    [
        [True, True, False],
        [True, False, True],
        [False, True, True],
        [True, False, False],
        [False, True, False],
        [False, False, True],
    ],
)
def test_partially_periodic_systems(pbc):
    # partially periodic systems are given to vesin as periodic ones: the
    # same pairs and cell shifts as vesin on the partially periodic system
    rng = np.random.default_rng(sum(pbc) + 7 * pbc.index(True))
    cell = np.diag([4.0, 5.0, 6.0]) + rng.normal(scale=0.8, size=(3, 3))
    cell[~np.array(pbc)] = 0.0
    positions = rng.random((20, 3)) * 12.0 - 3.0
    system = _system(cell.tolist(), positions.tolist(), pbc)
    for full_list in [True, False]:
        options = NeighborListOptions(cutoff=3.5, full_list=full_list, strict=True)
        neighbors = compute_neighbor_list(system, options)
        pairs, shifts, distances = _neighbors._vesin_neighbors(
            positions, cell, np.array(pbc), 3.5, full_list
        )
        expected = np.concatenate([pairs, shifts], axis=1)[distances < 3.5]
        actual = neighbors.samples.values.numpy()
        assert len(actual) > 10
        assert sorted(map(tuple, actual.tolist())) == sorted(
            map(tuple, expected.tolist())
        )
    assert not any(neighbors.samples.values[:, 2:][:, ~torch.tensor(pbc)].any(dim=0))


def test_too_many_pairs(monkeypatch):
    # 200 atoms in a 6 A box
    rng = np.random.default_rng(0)
    positions = (rng.random((200, 3)) * 6).tolist()
    system = _system((np.eye(3) * 6).tolist(), positions)
    compute_neighbor_list(system, OPTIONS)
    monkeypatch.setattr(_neighbors, "MAX_NEIGHBOR_PAIRS", 10_000)
    message = (
        "`system.cell` is too small for 200 atoms and a cutoff of 5: the neighbor "
        "list would contain about 9.7e\\+04 pairs \\(MAX_NEIGHBOR_PAIRS=10000\\)"
    )
    with pytest.raises(ValueError, match=message):
        compute_neighbor_list(system, OPTIONS)


def test_usual_systems_are_accepted():
    # small cells with a larger cutoff, mixed periodicity, non-periodic
    options = NeighborListOptions(cutoff=8.0, full_list=False, strict=True)
    fcc = [[0.0, 1.8, 1.8], [1.8, 0.0, 1.8], [1.8, 1.8, 0.0]]
    neighbors = compute_neighbor_list(_system(fcc, [[0, 0, 0]]), options)
    assert len(neighbors.samples) == 88
    slab = [[3.0, 0, 0], [0, 3.0, 0], [0, 0, 0]]
    system = _system(slab, [[0, 0, 0], [0, 0, 20]], pbc=(True, True, False))
    compute_neighbor_list(system, options)
    molecule = _system(np.zeros((3, 3)).tolist(), pbc=(False, False, False))
    assert len(compute_neighbor_list(molecule, options).samples) == 1


VESIN_ALLOCATION_FAILURE = """
import resource, warnings
warnings.simplefilter("ignore")
import numpy as np
from metatensor.torch.atomistic import _neighbors

# a tiny periodic cell, without our limits, under a memory limit (1 GiB more
# than what is used now)
with open("/proc/self/status") as file:
    used = int(file.read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 30), used + (1 << 30)))
try:
    _neighbors._vesin_neighbors(
        np.zeros((1, 3)), np.eye(3) * 0.01, np.array([True] * 3), 5.0, True
    )
    print("COMPUTED")
except Exception as e:
    print(type(e).__name__, e)
import gc
gc.collect()
print("DONE")
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="uses the resource module and /proc"
)
def test_vesin_allocation_failure_does_not_crash():
    # vesin fails to allocate, then used to segfault in NeighborList.__del__
    result = run_python(VESIN_ALLOCATION_FAILURE, timeout=300)
    assert result.returncode == 0, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert lines[-1] == "DONE"
    assert "could not allocate memory" in lines[0] or lines[0] == "COMPUTED"


# ============================================================================ #
# neighbor lists with invalid atoms (item 6)


def _neighbors_block(samples):
    samples = torch.tensor(samples, dtype=torch.int32)
    return TensorBlock(
        values=torch.zeros((len(samples), 3, 1), dtype=torch.float64),
        samples=Labels(
            [
                "first_atom",
                "second_atom",
                "cell_shift_a",
                "cell_shift_b",
                "cell_shift_c",
            ],
            samples,
        ),
        components=[Labels.range("xyz", 3)],
        properties=Labels.range("distance", 1),
    )


@pytest.mark.parametrize("pair", [[0, 7, 0, 0, 0], [-1, 2, 0, 0, 0], [4, 0, 0, 0, 0]])
def test_neighbor_list_with_invalid_atoms(pair):
    positions = [[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    system = _system(np.zeros((3, 3)).tolist(), positions, pbc=(False, False, False))
    block = _neighbors_block([[0, 1, 0, 0, 0], pair])
    message = (
        "invalid `neighbors`: the atom indices \\('first_atom' and 'second_atom'\\) "
        f"must be between 0 and 3 for this system of 4 atoms, got the pair "
        f"\\{pair}".replace("]", "\\]")
        + " \\(sample 1\\)"
    )
    with pytest.raises(ValueError, match=message):
        system.add_neighbor_list(OPTIONS, block)
    assert system.known_neighbor_lists() == []


# ============================================================================ #
# the ASE calculator shared by threads (item 5)


def test_calculator_shared_by_threads():
    pytest.importorskip("ase")
    import ase.build

    from metatensor.torch.atomistic.ase_calculator import MetatomicCalculator

    torch.set_num_threads(1)
    model = lennard_jones_model()
    structures = []
    for i in range(4):
        atoms = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
        atoms.rattle(0.1, seed=i)
        structures.append(atoms)

    reference_calculator = MetatomicCalculator(model)
    n_steps = 25
    expected = []
    for atoms in structures:
        energies = []
        for step in range(n_steps):
            copy = atoms.copy()
            copy.positions[0, 0] += 0.01 * step
            copy.calc = reference_calculator
            energies.append((copy.get_potential_energy(), copy.get_forces().copy()))
        expected.append(energies)

    shared = MetatomicCalculator(model)
    results = [[] for _ in structures]
    errors = []

    def run(index):
        try:
            for step in range(n_steps):
                copy = structures[index].copy()
                copy.positions[0, 0] += 0.01 * step
                copy.calc = shared
                energy = copy.get_potential_energy()
                forces = copy.get_forces()
                results[index].append((energy, forces))
        except Exception as e:  # pragma: no cover (reported below)
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(structures))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for index in range(len(structures)):
        for (energy, forces), (ref_energy, ref_forces) in zip(
            results[index], expected[index]
        ):
            assert energy == ref_energy
            np.testing.assert_array_equal(forces, ref_forces)
