"""Temporary files of atomic saves: unique per call, removed on failure, stale
ones of killed saves removed by the next save of the same destination, and
``fsync`` before the rename. Also: ``MetatensorError`` is a ``RuntimeError``."""

import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import metatensor
from metatensor import MetatensorError
from metatensor.io import _atomic

from ._io_helpers import assert_tensor_equal, make_tensor


HAS_FLOCK = _atomic.fcntl is not None


def _temporaries(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def test_metatensor_error_is_runtime_error(tmp_path):
    path = tmp_path / "bad.mts"
    path.write_bytes(b"not a metatensor file")
    with pytest.raises(RuntimeError) as info:
        metatensor.load(path)
    assert isinstance(info.value, MetatensorError)
    assert isinstance(info.value, Exception)
    assert issubclass(MetatensorError, RuntimeError)


def test_unique_temporary_names(tmp_path, monkeypatch):
    names = []
    original = _atomic._create_temporary

    def recording(path):
        temporary, fd = original(path)
        names.append(os.path.basename(temporary))
        return temporary, fd

    monkeypatch.setattr(_atomic, "_create_temporary", recording)
    tensor = make_tensor()
    metatensor.save(tmp_path / "data.mts", tensor)
    metatensor.save(tmp_path / "data.mts", tensor)
    assert len(set(names)) == 2
    for name in names:
        assert name.startswith(f".data.mts.{os.getpid()}-")
        assert name.endswith(".tmp")
    assert _temporaries(tmp_path) == []


def test_fsync_before_rename(tmp_path, sync_calls):
    metatensor.save(tmp_path / "data.mts", make_tensor())
    assert sync_calls.index("fsync") < sync_calls.index("replace")


def test_concurrent_saves_to_the_same_path(tmp_path):
    path = tmp_path / "data.mts"
    tensors = [make_tensor(), make_tensor(dtype=np.float32)]
    errors = []

    def save(tensor):
        try:
            for _ in range(15):
                metatensor.save(path, tensor)
        except Exception as e:  # pragma: no cover (reported below)
            errors.append(e)

    threads = [threading.Thread(target=save, args=(t,)) for t in tensors * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _temporaries(tmp_path) == []
    loaded = metatensor.load(path)
    assert any(
        loaded.block(0).values.dtype == tensor.block(0).values.dtype
        for tensor in tensors
    )


def test_failed_save_removes_its_temporary(tmp_path):
    path = tmp_path / "data.mts"
    tensor = make_tensor()
    metatensor.save(path, tensor)

    def failing(file):
        file.write(b"x" * 10000)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _atomic.write_atomically(str(path), failing)
    assert _temporaries(tmp_path) == []
    assert_tensor_equal(metatensor.load(path), tensor)


@pytest.mark.skipif(not HAS_FLOCK, reason="stale files are only removed with flock")
def test_stale_temporaries_are_removed(tmp_path):
    path = tmp_path / "data.mts"
    stale = [
        ".data.mts.12345-0123456789ab.tmp",
        # names of the previous versions of the .mts and model files savers
        ".data.mts.0123456789ab.tmp",
        ".data.mts.12345.tmp",
    ]
    unrelated = [".other.mts.12345-0123456789ab.tmp", ".data.mts.notours.tmp"]
    for name in stale + unrelated:
        (tmp_path / name).write_bytes(b"partial")

    # a save in progress holds a lock on its temporary file: it is kept
    running = tmp_path / ".data.mts.999-ba9876543210.tmp"
    running.write_bytes(b"in progress")
    fd = os.open(running, os.O_RDWR)
    try:
        _atomic.fcntl.flock(fd, _atomic.fcntl.LOCK_EX)
        metatensor.save(path, make_tensor())
        assert _temporaries(tmp_path) == sorted([running.name, *unrelated])
    finally:
        os.close(fd)

    # once the lock is released (the process died), the next save removes it
    metatensor.save(path, make_tensor())
    assert _temporaries(tmp_path) == sorted(unrelated)


KILLED_SAVE = """
import sys, time
from metatensor.io import _atomic

def write(file):
    file.write(b"x" * 1_000_000)
    file.flush()
    print("writing", flush=True)
    time.sleep(60)

_atomic.write_atomically(sys.argv[1], write)
"""


@pytest.mark.skipif(not HAS_FLOCK, reason="stale files are only removed with flock")
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_save(tmp_path):
    path = tmp_path / "data.mts"
    tensor = make_tensor()
    metatensor.save(path, tensor)
    before = path.read_bytes()

    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_SAVE, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "writing"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
        process.stdout.close()

    # the destination is intact, the temporary file of the killed save is left
    assert path.read_bytes() == before
    left = _temporaries(tmp_path)
    assert len(left) == 1
    assert left[0].startswith(f".data.mts.{process.pid}-")
    assert os.path.getsize(tmp_path / left[0]) == 1_000_000

    # and removed by the next save of the same destination
    metatensor.save(path, tensor)
    assert _temporaries(tmp_path) == []
    assert_tensor_equal(metatensor.load(path), tensor)
