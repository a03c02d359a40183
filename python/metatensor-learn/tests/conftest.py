import os
import pathlib

import pytest


DATA_DIR = pathlib.Path(__file__).resolve().parents[3] / "tests" / "data"


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
    """The torch module; skips the test when torch is not installed."""
    return _torch_or_skip()
