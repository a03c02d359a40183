"""Import-time behaviour: no torch for numpy-only users, lazy sub-packages."""

import subprocess
import sys

import pytest

import metatensor


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_import_does_not_import_torch():
    code = (
        "import sys, metatensor, metatensor.io, numpy as np\n"
        "labels = metatensor.Labels(['a'], np.array([[0], [1]]))\n"
        "block = metatensor.TensorBlock(np.zeros((2, 1)), labels, [],"
        " metatensor.Labels.range('p', 1))\n"
        "tensor = metatensor.TensorMap(metatensor.Labels.single(), [block])\n"
        "buffer = metatensor.io.save_buffer(tensor)\n"
        "metatensor.io.load_buffer(buffer)\n"
        "print('torch' in sys.modules)"
    )
    assert _run(code) == "False"


def test_version():
    assert isinstance(metatensor.__version__, str)
    assert metatensor.__version__.count(".") >= 2


def test_missing_attribute():
    with pytest.raises(AttributeError, match="has no attribute 'not_a_function'"):
        metatensor.not_a_function  # noqa: B018


def test_public_names():
    for name in metatensor.__all__:
        assert hasattr(metatensor, name)
