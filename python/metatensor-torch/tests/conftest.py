import importlib.util


if importlib.util.find_spec("torch") is None:
    # metatensor-torch needs torch: skip everything in numpy-only environments
    collect_ignore = ["operations", "cpp", "compile"]
    collect_ignore_glob = ["*.py"]
