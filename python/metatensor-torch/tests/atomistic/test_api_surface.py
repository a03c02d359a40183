"""Every public name of the reference atomistic API (``metatomic.torch`` 0.1.19
and ``metatomic_ase`` 0.1.4) exists in ``metatensor.torch.atomistic`` (and its
``ase_calculator`` module), with the same argument names where the reference's
signatures are readable."""

import inspect

import pytest

import metatensor.torch.atomistic as atomistic


CLASSES = [
    "AtomisticModel",
    "ModelCapabilities",
    "ModelEvaluationOptions",
    "ModelInterface",
    "ModelMetadata",
    "ModelOutput",
    "NeighborListOptions",
    "System",
]

# name -> argument names (None: the reference's signature is not readable)
FUNCTIONS = {
    "check_atomistic_model": None,
    "is_atomistic_model": ["module"],
    "load_atomistic_model": ["path", "extensions_directory"],
    "load_model_extensions": None,
    "load_system": ["file"],
    "load_system_buffer": ["buffer"],
    "pick_device": None,
    "pick_output": None,
    "read_model_metadata": None,
    "register_autograd_neighbors": None,
    "save": ["file", "system"],
    "save_buffer": ["system"],
    "systems_to_torch": [
        "systems",
        "dtype",
        "device",
        "positions_requires_grad",
        "cell_requires_grad",
    ],
    "unit_conversion_factor": None,
    "unit_dimension_for_quantity": None,
}

MODEL_METHODS = {
    "capabilities": ["self"],
    "export": ["self", "file", "collect_extensions"],
    "forward": ["self", "systems", "options", "check_consistency"],
    "metadata": ["self"],
    "requested_inputs": ["self", "use_new_names"],
    "requested_neighbor_lists": ["self"],
    "save": ["self", "file", "collect_extensions"],
}

CALCULATOR_ARGUMENTS = [
    "model",
    "additional_outputs",
    "extensions_directory",
    "check_consistency",
    "device",
    "variants",
    "non_conservative",
    "do_gradients_with_energy",
    "uncertainty_threshold",
    "neighbor_skin",
]

CALCULATOR_METHODS = [
    "calculate",
    "check_state",
    "compute_energy",
    "fromdict",
    "metadata",
    "model",
    "run_model",
    "todict",
]


def _parameters(function):
    return list(inspect.signature(function).parameters)


@pytest.mark.parametrize("name", CLASSES)
def test_classes(name):
    assert inspect.isclass(getattr(atomistic, name))
    assert name in atomistic.__all__


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_functions(name):
    function = getattr(atomistic, name)
    assert callable(function)
    assert name in atomistic.__all__
    if FUNCTIONS[name] is not None:
        assert _parameters(function) == FUNCTIONS[name]


@pytest.mark.parametrize("name", sorted(MODEL_METHODS))
def test_atomistic_model_methods(name):
    method = getattr(atomistic.AtomisticModel, name)
    assert _parameters(method) == MODEL_METHODS[name]


def test_ase_calculator():
    pytest.importorskip("ase")
    pytest.importorskip("vesin")
    from metatensor.torch.atomistic import ase_calculator

    calculator = ase_calculator.MetatomicCalculator
    assert _parameters(calculator.__init__)[1:] == CALCULATOR_ARGUMENTS
    for method in CALCULATOR_METHODS:
        assert callable(getattr(calculator, method)), method

    # the name of the older `metatensor.torch.atomistic` API
    assert ase_calculator.MetatensorCalculator is calculator

    symmetrized = ase_calculator.SymmetrizedCalculator
    assert _parameters(symmetrized.__init__)[1:] == [
        "base_calculator",
        "l_max",
        "batch_size",
        "include_inversion",
        "apply_space_group_symmetry",
        "store_rotational_std",
    ]
    assert callable(symmetrized.calculate)
    assert "energy" in symmetrized.implemented_properties
