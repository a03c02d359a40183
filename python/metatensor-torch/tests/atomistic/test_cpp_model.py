"""Run an AtomisticModel saved from Python in a C++ program, as a simulation
engine would.

The program (``cpp/run_atomistic_model.cpp``) is compiled against the libtorch
shipped in the torch wheel. It loads the model file, builds a ``System`` for a
periodic copper supercell through the classes stored in the model, computes
the requested neighbor lists (with differentiable pair vectors), runs the
model and the backward pass, and prints the energy and forces as JSON; this
test compares them with the Python values.

The compiled program is cached (keyed by the hash of the source, the torch
version and the compiler command) in ``$METATENSOR_TORCH_CPP_CACHE`` or in a
folder of the system's temporary directory, so that only the first run pays for
the compilation.
"""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import List

import pytest
import torch

from metatensor.torch.atomistic import (
    ModelEvaluationOptions,
    ModelOutput,
    System,
    unit_conversion_factor,
)

from ._models import add_neighbor_lists, lennard_jones_model


HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE / "cpp" / "run_atomistic_model.cpp"


def _find_compiler() -> str:
    for candidate in [os.environ.get("CXX"), "g++", "c++"]:
        if candidate:
            path = shutil.which(candidate)
            if path is not None:
                return path
    return ""


def _compile_command(compiler: str, output: pathlib.Path) -> List[str]:
    torch_dir = pathlib.Path(torch.__file__).parent
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    return [
        compiler,
        "-std=c++17",
        "-O1",
        "-w",
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
        str(SOURCE),
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


def _cache_dir() -> pathlib.Path:
    path = os.environ.get("METATENSOR_TORCH_CPP_CACHE")
    if path:
        return pathlib.Path(path)
    return pathlib.Path(tempfile.gettempdir()) / "metatensor-torch-cpp-tests"


def compiled_program() -> pathlib.Path:
    """Compile ``run_atomistic_model.cpp`` (or reuse a cached build) and return
    the path of the executable. Skips the test when this is not possible."""
    if sys.platform.startswith("win"):
        pytest.skip("the C++ test only supports Linux and macOS")
    compiler = _find_compiler()
    if not compiler:
        pytest.skip("no C++ compiler found ($CXX, g++ or c++) to build the program")
    torch_dir = pathlib.Path(torch.__file__).parent
    if not (torch_dir / "include" / "torch" / "script.h").exists():
        pytest.skip(f"this torch installation has no C++ headers (in {torch_dir})")

    key = hashlib.sha256()
    key.update(SOURCE.read_bytes())
    key.update(torch.__version__.encode())
    key.update(str(torch_dir).encode())
    key.update(" ".join(_compile_command(compiler, pathlib.Path("x"))).encode())
    folder = _cache_dir() / key.hexdigest()[:24]
    program = folder / "run_atomistic_model"
    if program.exists():
        return program

    folder.mkdir(parents=True, exist_ok=True)
    # build under a unique name, then rename: concurrent runs never see a
    # partially written executable
    fd, temporary = tempfile.mkstemp(dir=folder, prefix="run-", suffix=".tmp")
    os.close(fd)
    try:
        command = _compile_command(compiler, pathlib.Path(temporary))
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


def _python_reference(model, cpp_output):
    """Energy and forces computed in Python for the system built in C++."""
    positions = torch.tensor(cpp_output["positions"], dtype=torch.float64)
    positions.requires_grad_(True)
    system = System(
        types=torch.tensor(cpp_output["types"], dtype=torch.int32),
        positions=positions,
        cell=torch.tensor(cpp_output["cell"], dtype=torch.float64),
        pbc=torch.tensor([True, True, True]),
    )
    add_neighbor_lists(system, model, "angstrom")
    n_pairs = [
        system.get_neighbor_list(options).shape[0]
        for options in model.requested_neighbor_lists()
    ]

    options = ModelEvaluationOptions(
        length_unit="angstrom",
        outputs={"energy": ModelOutput(unit="eV", sample_kind="system")},
    )
    energy = model([system], options, check_consistency=True)["energy"].block().values
    energy.sum().backward()
    return energy.detach().reshape(1, 1), -positions.grad, n_pairs


@pytest.mark.parametrize("check_consistency", ["0", "1"])
def test_run_model_from_cpp(tmp_path, check_consistency):
    program = compiled_program()

    # a model in nm and kcal/mol: the model converts from/to the engine's units
    model = lennard_jones_model(
        length_unit="nm",
        energy_unit="kcal/mol",
        scale_length=0.1,
        scale_energy=unit_conversion_factor("eV", "kcal/mol"),
    )
    path = tmp_path / "model.pt"
    model.save(path)

    result = subprocess.run(
        [str(program), str(path), check_consistency],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = json.loads(result.stdout)

    energy, forces, n_pairs = _python_reference(model, output)
    assert output["n_pairs"] == n_pairs
    assert n_pairs[0] > 100

    cpp_energy = torch.tensor(output["energy"], dtype=torch.float64)
    cpp_forces = torch.tensor(output["forces"], dtype=torch.float64)
    torch.testing.assert_close(cpp_energy, energy, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(cpp_forces, forces, rtol=1e-10, atol=1e-10)
    assert torch.linalg.norm(forces) > 0.1

    # exceptions raised by the model reach C++
    assert "this model does not support the atomic type '8'" in output["error"]
