"""Compile the small C++ test programs against the libtorch of the torch wheel.

The compiled programs are cached (keyed by the hash of the source, the torch
version and the compiler command) in ``$METATENSOR_TORCH_CPP_CACHE`` or in a
folder of the system's temporary directory, so that only the first run pays for
the compilation (20-40 s per program).
"""

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import List

import pytest
import torch


def find_compiler() -> str:
    """The C++ compiler to use: ``$CXX``, ``g++`` or ``c++`` (empty string if
    none is found)."""
    for candidate in [os.environ.get("CXX"), "g++", "c++"]:
        if candidate:
            path = shutil.which(candidate)
            if path is not None:
                return path
    return ""


def compile_command(
    compiler: str, source: pathlib.Path, output: pathlib.Path
) -> List[str]:
    """The command compiling ``source`` into the executable ``output``, linked
    to libtorch.

    :param compiler: path of the C++ compiler
    :param source: the C++ source file
    :param output: path of the executable to create
    """
    torch_dir = pathlib.Path(torch.__file__).parent
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    return [
        compiler,
        "-std=c++17",
        "-O1",
        "-w",
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
        str(source),
        "-o",
        str(output),
        f"-I{torch_dir / 'include'}",
        f"-I{torch_dir / 'include' / 'torch' / 'csrc' / 'api' / 'include'}",
        f"-L{torch_dir / 'lib'}",
        f"-Wl,-rpath,{torch_dir / 'lib'}",
        "-ltorch",
        "-ltorch_cpu",
        "-lc10",
    ]


def cache_dir() -> pathlib.Path:
    """The folder containing the cached builds."""
    path = os.environ.get("METATENSOR_TORCH_CPP_CACHE")
    if path:
        return pathlib.Path(path)
    return pathlib.Path(tempfile.gettempdir()) / "metatensor-torch-cpp-tests"


def compiled_program(source: pathlib.Path) -> pathlib.Path:
    """Compile ``source`` (or reuse a cached build) and return the path of the
    executable, named after the source file. Skips the calling test when this
    is not possible here (Windows, no compiler, no C++ headers in torch), and
    fails it when the compilation fails.

    :param source: the C++ source file
    """
    if sys.platform.startswith("win"):
        pytest.skip("the C++ tests only support Linux and macOS")
    compiler = find_compiler()
    if not compiler:
        pytest.skip(
            "no C++ compiler found ($CXX, g++ or c++): can not build the program"
        )
    torch_dir = pathlib.Path(torch.__file__).parent
    if not (torch_dir / "include" / "torch" / "script.h").exists():
        pytest.skip(f"this torch installation has no C++ headers (in {torch_dir})")

    name = source.stem
    key = hashlib.sha256()
    key.update(source.read_bytes())
    key.update(torch.__version__.encode())
    key.update(str(torch_dir).encode())
    key.update(" ".join(compile_command(compiler, source, pathlib.Path(name))).encode())
    folder = cache_dir() / key.hexdigest()[:24]
    program = folder / name
    if program.exists():
        return program

    folder.mkdir(parents=True, exist_ok=True)
    # build under a unique name, then rename: concurrent runs never see a
    # partially written executable
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f"{name}-", suffix=".tmp")
    os.close(fd)
    try:
        command = compile_command(compiler, source, pathlib.Path(temporary))
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(
                "failed to compile the C++ program:\n"
                + " ".join(command)
                + "\n"
                + result.stdout
                + result.stderr
            )
        os.replace(temporary, program)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return program
