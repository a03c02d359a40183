"""How ``metatensor.torch`` and its submodules are imported."""

import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_submodule_aliases():
    # `metatensor.torch.<name>` is the `metatensor_torch.<name>` module, never a
    # second copy (which would have its own classes)
    code = (
        "import metatensor.torch.atomistic as a, metatensor_torch.atomistic as b\n"
        "import metatensor.torch.operations as c, metatensor_torch.operations as d\n"
        "print(a is b, c is d, a.__name__, a.System is b.System)"
    )
    assert _run(code) == "True True metatensor_torch.atomistic True"


def test_no_compiler_at_import():
    # the torch.compile machinery (about a second to import) is only loaded by
    # users who compile
    code = (
        "import sys, metatensor.torch, metatensor.torch.atomistic\n"
        "print('torch._dynamo' in sys.modules)"
    )
    assert _run(code) == "False"


def test_alias_keeps_the_real_spec():
    # importing through the alias keeps the real `__spec__`, so that relative
    # imports inside functions of the module do not warn
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "import metatensor.torch.atomistic._units as units\n"
        "print(units.__spec__.name, units.__spec__.parent == units.__package__)"
    )
    assert _run(code) == "metatensor_torch.atomistic._units True"


def test_run_submodule_with_dash_m():
    # `python -m metatensor.torch.<name>` runs the real module as __main__
    # (the entry points of the engine routes are used this way)
    output = subprocess.run(
        [sys.executable, "-W", "error", "-m", "metatensor.torch.atomistic.ipi", "-h"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "--template" in output
