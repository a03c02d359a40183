import importlib.util


if importlib.util.find_spec("torch") is None:
    # metatensor-torch needs torch: skip everything in numpy-only environments
    collect_ignore = ["operations", "cpp", "compile"]
    collect_ignore_glob = ["*.py"]


def pytest_configure(config):
    # torch 2.13 deprecates TorchScript (`torch.jit.script/save/load`)
    config.addinivalue_line(
        "filterwarnings", "ignore:.*torch\\.jit.* is deprecated:DeprecationWarning"
    )
    config.addinivalue_line(
        "filterwarnings", "ignore:.*TorchScript.* deprecated:DeprecationWarning"
    )
