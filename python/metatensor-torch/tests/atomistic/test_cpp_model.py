"""Run an AtomisticModel saved from Python in a C++ program, as a simulation
engine would.

The program (``cpp/run_atomistic_model.cpp``) is compiled against the libtorch
shipped in the torch wheel. It loads the model file, builds a ``System`` for a
periodic copper supercell through the classes stored in the model, computes
the requested neighbor lists (with differentiable pair vectors), runs the
model and the backward pass, and prints the energy and forces as JSON; this
test compares them with the Python values.

The compiled program is cached (see ``_cpp_build.py``), so that only the first
run pays for the compilation.
"""

import json
import pathlib
import subprocess

import pytest
import torch

from metatensor.torch.atomistic import (
    ModelEvaluationOptions,
    ModelOutput,
    System,
)

from .._cpp_build import compiled_program
from ._models import (
    add_neighbor_lists,
    lennard_jones_model_nm_kcal,
)


HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE / "cpp" / "run_atomistic_model.cpp"


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
    program = compiled_program(SOURCE)

    # a model in nm and kcal/mol: the model converts from/to the engine's units
    model = lennard_jones_model_nm_kcal()
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
