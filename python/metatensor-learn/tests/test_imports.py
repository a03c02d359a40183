import subprocess
import sys

import pytest


def test_module_aliases():
    pytest.importorskip("torch")
    import metatensor.learn
    import metatensor.learn.data
    import metatensor.learn.nn
    import metatensor_learn
    from metatensor.learn.nn import Linear

    assert metatensor.learn is metatensor_learn
    assert metatensor.learn.nn is metatensor_learn.nn
    assert metatensor.learn.data is metatensor_learn.data
    assert Linear is metatensor_learn.nn.Linear


def test_import_without_torch_does_not_fail():
    # `metatensor.learn` is importable everywhere; it only exposes HAS_TORCH
    # when torch is missing
    code = "import metatensor.learn as l; print(l.HAS_TORCH)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() in ("True", "False")
