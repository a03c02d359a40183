"""Tests of the ``mts`` command line tool (``metatensor._cli``)."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import metatensor
from metatensor import Labels, MetatensorError, TensorBlock, TensorMap
from metatensor._cli import main

from ._io_helpers import make_tensor


def run(capsys, *argv):
    """Run ``mts argv``, returning ``(status, stdout, stderr)``."""
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def tensor():
    tensor = make_tensor(n_blocks=3)
    tensor.set_info("creator", "tests")
    return tensor


@pytest.fixture
def path(tmp_path, tensor):
    path = tmp_path / "data.mts"
    metatensor.save(path, tensor)
    return path


def _modified(tensor, function):
    """A copy of ``tensor`` where ``function(block_index, values)`` changes the
    values (in place)."""
    blocks = []
    for i, block in enumerate(tensor.blocks()):
        values = block.values.copy()
        function(i, values)
        new = TensorBlock(values, block.samples, block.components, block.properties)
        for parameter, gradient in block.gradients():
            new.add_gradient(parameter, gradient.copy())
        blocks.append(new)
    result = TensorMap(tensor.keys, blocks)
    for key, value in tensor.info().items():
        result.set_info(key, value)
    return result


# ============================================================================ #
# mts show


def test_show(capsys, path, tensor):
    status, out, err = run(capsys, "show", path)
    assert status == 0
    assert err == ""
    lines = out.splitlines()
    size = os.path.getsize(path)
    assert lines[0].startswith(f"{path}: TensorMap, ")
    assert "uncompressed (can be memory-mapped)" in lines[0]
    assert f"{size / 1000:.1f} kB" in lines[0]
    assert lines[1] == "keys: key (3 entries)"
    assert lines[2] == "info: creator = 'tests'"
    assert lines[3] == "block 0: key=0"
    block = tensor.block(0)
    nbytes = block.values.nbytes + block.gradient("positions").values.nbytes
    assert "    values: (4, 3, 2) float64, " in lines[4]
    assert lines[5] == "    samples: system, atom (4 entries)"
    assert lines[6] == "    components: c_0 (3 entries)"
    assert lines[7] == "    properties: p (2 entries)"
    assert lines[8].startswith("    gradient 'positions': (3, 3, 3, 2) float64, ")
    assert lines[9] == "        samples: sample, atom (3 entries)"
    assert "block 2: key=2" in out
    # memory size: values + gradient values + int32 labels (the properties
    # are counted for the gradient too)
    labels_bytes = 4 * (4 * 2 + 3 + 2 + 3 * 2 + 3 + 3 + 2)
    assert lines[4].endswith(f", {nbytes + labels_bytes} B")


def test_show_summary(capsys, tmp_path):
    path = tmp_path / "many.mts"
    metatensor.save(path, make_tensor(n_blocks=25))

    status, out, _ = run(capsys, "show", path)
    assert status == 0
    assert "block 9: key=9" in out
    assert "block 10:" not in out
    with zipfile.ZipFile(path) as archive:
        stored = sum(
            info.file_size
            for info in archive.infolist()
            if info.filename.startswith("blocks/")
            and int(info.filename.split("/")[1]) >= 10
        )
    assert f"... 15 more blocks ({stored / 1000:.1f} kB of data), use --all" in out

    status, out, _ = run(capsys, "show", path, "--max-blocks", 2)
    assert "block 1: key=1" in out and "block 2:" not in out
    assert "... 23 more blocks" in out

    status, out, _ = run(capsys, "show", path, "--all")
    assert status == 0
    assert "block 24: key=24" in out
    assert "more blocks" not in out


def test_show_json(capsys, path, tensor):
    status, out, _ = run(capsys, "show", path, "--json")
    assert status == 0
    data = json.loads(out)
    assert data["kind"] == "TensorMap"
    assert data["file_size"] == os.path.getsize(path)
    assert data["compressed_members"] == 0
    assert data["keys"] == {"names": ["key"], "count": 3}
    assert data["info"] == {"creator": "tests"}
    assert data["blocks_omitted"] == 0
    assert len(data["blocks"]) == 3
    block = data["blocks"][1]
    assert block["key"] == {"key": 1}
    assert block["shape"] == list(tensor.block(1).values.shape)
    assert block["dtype"] == "float64"
    assert block["samples"] == {"names": ["system", "atom"], "count": 5}
    assert block["components"] == [{"names": ["c_0"], "count": 3}]
    assert block["properties"] == {"names": ["p"], "count": 2}
    (gradient,) = block["gradients"]
    assert gradient["parameter"] == "positions"
    assert gradient["shape"] == [4, 3, 3, 2]
    assert gradient["components"] == [
        {"names": ["xyz"], "count": 3},
        {"names": ["c_0"], "count": 3},
    ]

    status, out, _ = run(capsys, "show", path, "--json", "--max-blocks", 1)
    data = json.loads(out)
    assert len(data["blocks"]) == 1
    assert data["blocks_omitted"] == 2
    assert data["omitted_summary"]["count"] == 2
    with zipfile.ZipFile(path) as archive:
        stored = sum(
            info.file_size
            for info in archive.infolist()
            if info.filename.startswith(("blocks/1/", "blocks/2/"))
        )
    assert data["omitted_summary"]["size"] == stored


def test_show_block_and_labels(capsys, tmp_path, tensor):
    block_path = tmp_path / "block.mts"
    metatensor.save(block_path, tensor.block(0))
    status, out, _ = run(capsys, "show", block_path)
    assert status == 0
    assert f"{block_path}: TensorBlock" in out
    assert "keys:" not in out
    assert "values: (4, 3, 2) float64" in out
    assert "gradient 'positions'" in out

    labels_path = tmp_path / "labels.mts"
    metatensor.save(labels_path, Labels(["a", "b"], np.arange(10).reshape(5, 2)))
    status, out, _ = run(capsys, "show", labels_path, "--json")
    assert status == 0
    data = json.loads(out)
    assert data["kind"] == "Labels"
    assert data["labels"] == {"names": ["a", "b"], "count": 5}


def test_show_does_not_read_values(capsys, path):
    # garble the data of a values member (not its header): `show` and `labels`
    # do not read it, `load` checks the checksum and fails
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("blocks/0/values.npy")
    content = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + 20 + 128
    content[start : start + 16] = b"\xff" * 16
    path.write_bytes(bytes(content))

    with pytest.raises(MetatensorError, match="checksum"):
        metatensor.load(path)

    status, out, _ = run(capsys, "show", path)
    assert status == 0
    assert "values: (4, 3, 2) float64" in out
    status, _, _ = run(capsys, "labels", path, "--block", 0)
    assert status == 0

    # `convert` reads the values and verifies their checksums
    output = path.parent / "copy.mts"
    status, out, err = run(capsys, "convert", path, output)
    assert (status, out) == (2, "")
    assert err == (
        f"mts convert: {path}: invalid Zip archive: invalid checksum for "
        "'blocks/0/values.npy'\n"
    )
    assert not output.exists()


def test_show_compressed(capsys, tmp_path, path, tensor):
    compressed = tmp_path / "compressed.mts"
    status, _, _ = run(capsys, "convert", path, compressed, "--compress")
    assert status == 0
    with zipfile.ZipFile(compressed) as archive:
        methods = {info.compress_type for info in archive.infolist()}
        n_members = len(archive.infolist())
    assert methods == {zipfile.ZIP_DEFLATED}

    status, out, _ = run(capsys, "show", compressed)
    assert status == 0
    assert f"{n_members} of {n_members} members DEFLATE-compressed" in out
    assert "values: (4, 3, 2) float64" in out
    status, out, _ = run(capsys, "show", compressed, "--json")
    assert json.loads(out)["compressed_members"] == n_members

    status, out, _ = run(capsys, "labels", compressed, "--block", 1, "--limit", 2)
    assert status == 0
    assert out.splitlines()[2].split() == ["0", "0", "0"]


# ============================================================================ #
# mts labels


def test_labels_keys(capsys, path):
    status, out, _ = run(capsys, "labels", path)
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "keys: key, 3 entries"
    assert [line.split() for line in lines[1:]] == [
        ["#", "key"],
        ["0", "0"],
        ["1", "1"],
        ["2", "2"],
    ]


def test_labels_paging(capsys, tmp_path):
    labels = Labels(["a", "b"], np.arange(100, dtype=np.int32).reshape(50, 2))
    path = tmp_path / "labels.mts"
    metatensor.save(path, labels)

    status, out, _ = run(capsys, "labels", path)
    lines = out.splitlines()
    assert lines[0] == "labels: a, b, 50 entries (showing entries 0 to 19)"
    assert len(lines) == 1 + 1 + 20 + 1
    assert lines[-1] == "... 30 more entries, use --start 20 or --all"

    status, out, _ = run(capsys, "labels", path, "--start", 45, "--limit", 3)
    lines = out.splitlines()
    assert [line.split() for line in lines[2:5]] == [
        ["45", "90", "91"],
        ["46", "92", "93"],
        ["47", "94", "95"],
    ]
    assert lines[-1] == "... 2 more entries, use --start 48 or --all"

    status, out, _ = run(capsys, "labels", path, "--all")
    lines = out.splitlines()
    assert lines[0] == "labels: a, b, 50 entries"
    assert len(lines) == 52
    assert lines[-1].split() == ["49", "98", "99"]


def test_labels_block_axes(capsys, path, tensor):
    block = tensor.block(1)

    status, out, _ = run(capsys, "labels", path, "--block", 1, "--all")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "samples: system, atom, 5 entries"
    rows = np.array([line.split() for line in lines[2:]], dtype=np.int32)
    np.testing.assert_array_equal(rows[:, 1:], block.samples.values)

    status, out, _ = run(
        capsys, "labels", path, "--block", "key=1", "--axis", "properties"
    )
    assert status == 0
    assert out.splitlines()[0] == "properties: p, 2 entries"

    status, out, _ = run(capsys, "labels", path, "--block", -1, "--axis", "components")
    assert out.splitlines()[0] == "components[0]: c_0, 3 entries"

    status, out, _ = run(
        capsys, "labels", path, "--block", 1, "--gradient", "positions", "--all"
    )
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "samples: sample, atom, 4 entries"
    rows = np.array([line.split() for line in lines[2:]], dtype=np.int32)
    np.testing.assert_array_equal(
        rows[:, 1:], block.gradient("positions").samples.values
    )

    status, out, _ = run(
        capsys,
        "labels",
        path,
        "--block",
        1,
        "--gradient",
        "positions",
        "--axis",
        "components",
    )
    assert "components[0]: xyz, 3 entries" in out
    assert "components[1]: c_0, 3 entries" in out


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--axis", "samples"], "--block is required with --axis"),
        (["--block", 7], "block index 7 is out of range (3 blocks)"),
        (["--block", "key=9"], "0 blocks match --block 'key=9'"),
        (["--block", "other=1"], "'other' is not a key dimension, the keys are key"),
        (["--block", "x"], "invalid --block 'x'"),
        (["--block", 0, "--gradient", "cell"], "this block has no gradient 'cell'"),
        (
            ["--block", 0, "--gradient", "positions", "--axis", "properties"],
            "gradients share the properties of their block",
        ),
    ],
)
def test_labels_errors(capsys, path, arguments, message):
    status, out, err = run(capsys, "labels", path, *arguments)
    assert status == 2
    assert out == ""
    assert err.startswith(f"mts labels: {path}: {message}")
    assert len(err.splitlines()) == 1


# ============================================================================ #
# mts diff


def test_diff_same(capsys, tmp_path, path, tensor):
    other = tmp_path / "other.mts"
    metatensor.save(other, tensor)
    status, out, err = run(capsys, "diff", path, other)
    assert (status, out, err) == (0, "the files hold the same data\n", "")

    # the order of the keys does not matter
    permuted = TensorMap(
        Labels(["key"], np.array([[2], [0], [1]], dtype=np.int32)),
        [tensor.block(2).copy(), tensor.block(0).copy(), tensor.block(1).copy()],
    )
    permuted.set_info("creator", "tests")
    metatensor.save(other, permuted)
    status, _, _ = run(capsys, "diff", path, other)
    assert status == 0


def test_diff_values(capsys, tmp_path, path, tensor):
    def change(i, values):
        if i == 1:
            values[3, 2, 1] += 1e-3

    other = tmp_path / "other.mts"
    metatensor.save(other, _modified(tensor, change))
    status, out, err = run(capsys, "diff", path, other)
    assert status == 1
    assert err == ""
    expected = tensor.block(1).values[3, 2, 1]
    assert out.startswith(
        "block (key=1) values: 1 of 30 values differ (rtol=0.0, atol=0.0), largest "
        "absolute difference 0.001; first at sample 3 (system=0, atom=3), "
        f"component (c_0=2), property (p=1): {expected.item()!r} != "
        f"{(expected + 1e-3).item()!r}"
    )

    assert run(capsys, "diff", path, other, "--atol", 2e-3)[0] == 0
    assert run(capsys, "diff", path, other, "--rtol", 1e-2)[0] == 0
    assert run(capsys, "diff", path, other, "--atol", 1e-6)[0] == 1


def test_diff_metadata(capsys, tmp_path, path, tensor):
    other = tmp_path / "other.mts"

    # different samples
    block = tensor.block(0)
    samples = Labels(["system", "atom"], np.array([[0, 0], [0, 1], [0, 9], [0, 3]]))
    changed = TensorBlock(block.values, samples, block.components, block.properties)
    blocks = [changed] + [
        TensorBlock(b.values, b.samples, b.components, b.properties)
        for b in (tensor.block(1), tensor.block(2))
    ]
    metatensor.save(other, TensorMap(tensor.keys, blocks))
    status, out, _ = run(capsys, "diff", path, other)
    assert status == 1
    lines = out.splitlines()
    assert lines[0] == (
        "block (key=0) samples: 1 entries differ, first at entry 2: "
        "(system=0, atom=2) != (system=0, atom=9)"
    )
    # no gradients in the second file, and no info
    assert "block (key=0): gradients [positions] != []" in lines
    assert "info: {'creator': 'tests'} != {}" in lines

    # a missing block
    smaller = TensorMap(
        Labels(["key"], np.array([[0], [1]], dtype=np.int32)),
        [tensor.block(0).copy(), tensor.block(1).copy()],
    )
    smaller.set_info("creator", "tests")
    metatensor.save(other, smaller)
    status, out, _ = run(capsys, "diff", path, other)
    assert (status, out) == (1, "block (key=2): only in the first file (block 2)\n")
    status, out, _ = run(capsys, "diff", other, path)
    assert (status, out) == (1, "block (key=2): only in the second file (block 2)\n")

    # other kinds of object
    metatensor.save(other, tensor.block(0))
    status, out, _ = run(capsys, "diff", path, other)
    assert status == 1
    assert out == f"file: TensorMap in {path}, TensorBlock in {other}\n"


def test_diff_max_differences(capsys, tmp_path, path, tensor):
    other = tmp_path / "other.mts"
    metatensor.save(other, _modified(tensor, lambda i, v: v.__iadd__(1.0)))
    status, out, _ = run(capsys, "diff", path, other, "--max-differences", 1)
    assert status == 1
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("block (key=0) values: 24 of 24 values differ")
    assert lines[1] == "... 2 more differences (--max-differences to show them)"


# ============================================================================ #
# mts convert


def test_convert(capsys, tmp_path, path, tensor):
    compressed = tmp_path / "compressed.mts"
    status, out, _ = run(capsys, "convert", path, compressed, "--compress")
    assert (status, out) == (0, f"wrote {compressed} (DEFLATE-compressed)\n")
    assert os.path.getsize(compressed) < os.path.getsize(path)
    assert run(capsys, "diff", path, compressed)[0] == 0

    # back to an uncompressed file, which can be memory-mapped
    plain = tmp_path / "plain.mts"
    status, _, _ = run(capsys, "convert", compressed, plain, "--no-compress")
    assert status == 0
    assert plain.read_bytes() == path.read_bytes()
    loaded = metatensor.load(plain, mmap=True)
    assert not loaded.block(0).values.flags.owndata

    single = tmp_path / "single.mts"
    status, out, _ = run(capsys, "convert", path, single, "--dtype", "float32")
    assert (status, out) == (0, f"wrote {single} (uncompressed, float32)\n")
    loaded = metatensor.load(single)
    assert loaded.block(0).values.dtype == np.float32
    assert loaded.block(0).gradient("positions").values.dtype == np.float32
    assert loaded.info() == {"creator": "tests"}
    np.testing.assert_allclose(
        loaded.block(2).values, tensor.block(2).values, rtol=1e-6
    )
    status, out, _ = run(capsys, "diff", path, single, "--rtol", 1e-6)
    assert status == 1
    assert "block (key=0) values: dtype float64 != float32" in out


def test_convert_in_place_and_atomic(capsys, tmp_path, path, tensor, monkeypatch):
    from metatensor.io import _save

    # converting a file to itself works (the input is mapped, the output
    # replaces it once complete)
    status, _, _ = run(capsys, "convert", path, path, "--compress")
    assert status == 0
    assert metatensor.load(path).block(1).values.tolist() == (
        tensor.block(1).values.tolist()
    )

    previous = path.read_bytes()

    def failing(file, members):
        file.write(b"partial data")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_save, "write_archive", failing)
    status, _, err = run(capsys, "convert", path, path)
    assert status == 2
    assert err == f"mts convert: {path}: No space left on device (os error 28)\n"
    assert path.read_bytes() == previous
    assert os.listdir(tmp_path) == ["data.mts"]


def test_convert_block_and_labels(capsys, tmp_path, tensor):
    block_path = tmp_path / "block.mts"
    metatensor.save(block_path, tensor.block(0))
    output = tmp_path / "block-compressed.mts"
    assert run(capsys, "convert", block_path, output, "--compress")[0] == 0
    assert run(capsys, "diff", block_path, output)[0] == 0
    assert metatensor.load_block(output).values.tolist() == (
        tensor.block(0).values.tolist()
    )

    labels_path = tmp_path / "labels.mts"
    metatensor.save(labels_path, tensor.keys)
    status, _, err = run(capsys, "convert", labels_path, output, "--dtype", "float32")
    assert status == 2
    assert err == (
        f"mts convert: {labels_path}: Labels files can not be converted to another "
        "dtype or compressed\n"
    )


# ============================================================================ #
# bad input


@pytest.fixture
def bad_files(tmp_path, path):
    files = {}
    text = tmp_path / "text.mts"
    text.write_text("this is not a metatensor file\n")
    files["text"] = (text, "not a metatensor file (neither a ZIP archive nor NPY)")

    empty = tmp_path / "empty.mts"
    empty.write_bytes(b"")
    files["empty"] = (empty, "the file is empty")

    truncated = tmp_path / "truncated.mts"
    truncated.write_bytes(path.read_bytes()[:1000])
    files["truncated"] = (truncated, "invalid or truncated ZIP archive")

    zipped = tmp_path / "other.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("hello.txt", "hello")
    files["zip"] = (zipped, "not a metatensor file: the ZIP archive contains")

    files["missing"] = (tmp_path / "missing.mts", "No such file or directory")
    return files


@pytest.mark.parametrize("kind", ["text", "empty", "truncated", "zip", "missing"])
@pytest.mark.parametrize(
    "command", [["show"], ["show", "--json"], ["labels"], ["diff"], ["convert"]]
)
def test_bad_input(capsys, tmp_path, bad_files, path, kind, command):
    bad, message = bad_files[kind]
    arguments = [*command, bad]
    if command[0] == "diff":
        arguments = [*command, path, bad]
    elif command[0] == "convert":
        arguments = [*command, bad, tmp_path / "output.mts"]

    status, out, err = run(capsys, *arguments)
    assert status == 2
    assert out == ""
    assert err.startswith(f"mts {command[0]}: {bad}: {message}")
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "output.mts").exists()


def test_truncated_member(capsys, tmp_path, path):
    # the central directory is intact, but a member points past the end
    content = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("blocks/2/values.npy")
    broken = tmp_path / "broken.mts"
    # move the last member data away by cutting bytes in the middle
    start = info.header_offset
    broken.write_bytes(content[:start] + content[start + 200 :])
    status, out, err = run(capsys, "show", broken)
    assert status == 2
    assert err.startswith(f"mts show: {broken}: ")
    assert len(err.splitlines()) == 1


def test_usage_errors(capsys, path):
    status, _, err = run(capsys, "frobnicate", path)
    assert status == 2
    assert "invalid choice" in err

    status, _, err = run(capsys, "show", path, "--max-blocks", -1)
    assert status == 2
    assert err == "mts show: --max-blocks must be non-negative\n"

    status, _, err = run(capsys, "diff", path, path, "--rtol", -1)
    assert status == 2
    assert err == "mts diff: --rtol and --atol must be non-negative\n"


# ============================================================================ #
# as a program


def test_module_entry_point(path):
    environment = {**os.environ, "PYTHONWARNINGS": "error"}
    code = (
        "import sys, runpy; sys.argv = ['mts', 'show', sys.argv[1]]; "
        "runpy.run_module('metatensor._cli', run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        env=environment,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: TensorMap")

    result = subprocess.run(
        [sys.executable, "-m", "metatensor._cli", "diff", str(path), "missing.mts"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr == ("mts diff: missing.mts: No such file or directory\n")
    assert "Traceback" not in result.stderr


def test_no_torch_import(path):
    code = (
        "import sys\n"
        "from metatensor._cli import main\n"
        "main(['show', sys.argv[1]])\n"
        "main(['labels', sys.argv[1], '--block', '0'])\n"
        "main(['diff', sys.argv[1], sys.argv[1]])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_other_object_kinds(capsys, tmp_path, tensor):
    labels_path = tmp_path / "labels.mts"
    metatensor.save(labels_path, tensor.keys)
    status, out, err = run(capsys, "labels", labels_path, "--block", 0)
    assert (status, out) == (2, "")
    assert err == (
        f"mts labels: {labels_path}: this file contains Labels, --block/--axis "
        "do not apply\n"
    )

    block_path = tmp_path / "block.mts"
    metatensor.save(block_path, tensor.block(0))
    status, out, err = run(capsys, "labels", block_path, "--block", 1)
    assert (status, out) == (2, "")
    assert err == (
        f"mts labels: {block_path}: the file contains a single TensorBlock, use "
        "--block 0\n"
    )
    status, out, _ = run(capsys, "labels", block_path, "--axis", "properties")
    assert status == 0
    assert out.splitlines()[0] == "properties: p, 2 entries"
