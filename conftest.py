"""Fixtures shared by the tests of every distribution (pytest loads this file
for every test below the repository root)."""

import contextlib
import os
import pathlib

import pytest


DATA_DIR = pathlib.Path(__file__).resolve().parent / "tests" / "data"


def _torch_or_skip():
    if os.environ.get("METATENSOR_TESTS_REQUIRE_TORCH") == "1":
        import torch

        return torch
    return pytest.importorskip("torch")


@pytest.fixture
def data_dir() -> pathlib.Path:
    """Folder with the reference ``.mts`` files."""
    return DATA_DIR


@pytest.fixture
def torch():
    """The torch module; skips the test when torch is not installed (except
    when ``METATENSOR_TESTS_REQUIRE_TORCH=1``, in the sessions where torch is
    required)."""
    return _torch_or_skip()


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    """The device holding the (torch) data of a test: ``cpu``, and ``cuda`` when
    a CUDA GPU is available (skipped otherwise). Skips the test without torch
    (except when ``METATENSOR_TESTS_REQUIRE_TORCH=1``); torch is only imported
    when a test uses this fixture."""
    torch = _torch_or_skip()
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA GPU available")
    return torch.device(request.param)


@pytest.fixture
def elsewhere():
    """A context manager factory: ``with elsewhere(device):`` runs code with
    torch's default device set to a device other than ``device`` (``meta`` for
    data on the CPU, ``cpu`` for data on a GPU).

    Code that creates tensors without an explicit ``device=`` then gets them on
    the wrong device and fails loudly (``Tensor on device meta is not on the
    expected device cpu!``, or ``Cannot copy out of meta tensor``), which is
    what would happen with data on a GPU. Build the inputs *before* entering
    the context: the factory functions of the test itself are affected too.
    """
    torch = _torch_or_skip()

    @contextlib.contextmanager
    def run_elsewhere(device):
        other = "meta" if torch.device(device).type == "cpu" else "cpu"
        with torch.device(other):
            yield

    return run_elsewhere


@pytest.fixture
def sync_calls(monkeypatch):
    """The calls to ``os.fsync`` and ``os.replace`` made during a test, in
    order (``"fsync"``, ``"replace"``), to check that saves flush their data
    to disk before renaming the file into place."""
    calls = []
    original_fsync = os.fsync
    original_replace = os.replace

    def fsync(fd):
        calls.append("fsync")
        return original_fsync(fd)

    def replace(source, destination):
        calls.append("replace")
        return original_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return calls
