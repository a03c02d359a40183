"""AtomisticModel: construction checks, forward (units, selected atoms, checks),
requested neighbor lists and inputs, deprecated names."""

import math
import warnings
from typing import Dict, List, Optional

import pytest
import torch

from metatensor.torch import Labels, TensorBlock, TensorMap
from metatensor.torch.atomistic import (
    AtomisticModel,
    ModelCapabilities,
    ModelEvaluationOptions,
    ModelInterface,
    ModelMetadata,
    ModelOutput,
    NeighborListOptions,
    System,
    is_atomistic_model,
    unit_conversion_factor,
)

from ._models import (
    add_neighbor_lists,
    copper_system,
    lennard_jones_model,
    lennard_jones_model_nm_kcal,
)


def _capabilities(**kwargs) -> ModelCapabilities:
    arguments = {
        "outputs": {"energy": ModelOutput(unit="eV", sample_kind="system")},
        "atomic_types": [1, 6],
        "interaction_range": 0.0,
        "length_unit": "angstrom",
        "supported_devices": ["cpu"],
        "dtype": "float64",
    }
    arguments.update(kwargs)
    return ModelCapabilities(**arguments)


def _keys() -> Labels:
    return Labels(["_"], torch.tensor([[0]]))


class EnergyModel(torch.nn.Module):
    """Energy = sum of the positions' coordinates times the atomic types."""

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        energies = [
            (system.positions.sum(dim=1) * system.types).sum().reshape(1, 1)
            for system in systems
        ]
        block = TensorBlock(
            values=torch.cat(energies),
            samples=Labels(["system"], torch.arange(len(systems)).reshape(-1, 1)),
            components=[],
            properties=Labels(["energy"], torch.tensor([[0]])),
        )
        result: Dict[str, TensorMap] = {}
        for name in outputs:
            result[name] = TensorMap(_keys(), [block.copy()])
        return result


def _system(n_atoms=3, dtype=torch.float64, types=None) -> System:
    if types is None:
        types = torch.tensor([1, 6, 1][:n_atoms], dtype=torch.int32)
    positions = torch.arange(3 * n_atoms, dtype=dtype).reshape(n_atoms, 3) * 0.5
    return System(
        types=types,
        positions=positions,
        cell=torch.zeros((3, 3), dtype=dtype),
        pbc=torch.tensor([False, False, False]),
    )


def _energy_model(**kwargs) -> AtomisticModel:
    return AtomisticModel(
        EnergyModel().eval(), ModelMetadata(), _capabilities(**kwargs)
    )


def _options(outputs=None, length_unit="angstrom", selected_atoms=None):
    if outputs is None:
        outputs = {"energy": ModelOutput(unit="eV", sample_kind="system")}
    return ModelEvaluationOptions(
        length_unit=length_unit, outputs=outputs, selected_atoms=selected_atoms
    )


# ============================================================================ #
# construction


def test_model_interface():
    assert issubclass(ModelInterface, torch.nn.Module)
    with pytest.raises(NotImplementedError):
        ModelInterface()([], {}, None)
    assert ModelInterface().requested_neighbor_lists() == []
    assert ModelInterface().requested_inputs() == {}


def test_training_mode():
    module = EnergyModel()
    assert module.training
    with pytest.raises(ValueError, match="module should not be in training mode"):
        AtomisticModel(module, ModelMetadata(), _capabilities())


def test_argument_types():
    with pytest.raises(TypeError, match="`module` should be a torch.nn.Module"):
        AtomisticModel("model", ModelMetadata(), _capabilities())
    with pytest.raises(TypeError, match="`metadata` should be a ModelMetadata"):
        AtomisticModel(EnergyModel().eval(), {}, _capabilities())
    with pytest.raises(TypeError, match="`capabilities` should be a ModelCapabilities"):
        AtomisticModel(EnergyModel().eval(), ModelMetadata(), None)


def test_parameters_are_frozen():
    model = lennard_jones_model()
    parameters = list(model.parameters())
    assert len(parameters) == 2
    assert all(not p.requires_grad for p in parameters)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"interaction_range": -1.0}, "`capabilities.interaction_range` was not set"),
        ({"interaction_range": math.nan}, "should be a number between 0 and infinity"),
        ({"supported_devices": []}, "`capabilities.supported_devices` can not be"),
        ({"dtype": ""}, "`capabilities.dtype` was not set"),
    ],
)
def test_capabilities_checks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _energy_model(**kwargs)


def test_infinite_interaction_range():
    model = _energy_model(interaction_range=math.inf)
    assert model.capabilities().interaction_range == math.inf


class WrongArguments(torch.nn.Module):
    def forward(
        self, systems: List[System], outputs: Dict[str, ModelOutput]
    ) -> Dict[str, TensorMap]:
        return {}


class WrongSystems(torch.nn.Module):
    def forward(
        self,
        systems: List[torch.Tensor],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        return {}


class WrongSelectedAtoms(torch.nn.Module):
    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Labels,
    ) -> Dict[str, TensorMap]:
        return {}


class MissingAnnotation(torch.nn.Module):
    def forward(
        self, systems, outputs: Dict[str, ModelOutput], selected_atoms: Optional[Labels]
    ) -> Dict[str, TensorMap]:
        return {}


class WrongReturn(torch.nn.Module):
    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, torch.Tensor]:
        return {}


class BuiltinGenerics(torch.nn.Module):
    def forward(
        self,
        systems: list[System],
        outputs: dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> dict[str, TensorMap]:
        return {}


@pytest.mark.parametrize(
    "module, message",
    [
        (WrongArguments, r"`WrongArguments.forward\(\)` takes unexpected arguments"),
        (WrongSystems, "`systems` argument of .* must be annotated as `List"),
        (WrongSelectedAtoms, "`selected_atoms` argument .* `Optional\\[Labels\\]`"),
        (MissingAnnotation, "`systems` argument .* must be annotated"),
        (WrongReturn, "the return value of .* `Dict\\[str, TensorMap\\]`"),
    ],
)
def test_forward_signature(module, message):
    with pytest.raises(TypeError, match=message):
        AtomisticModel(module().eval(), ModelMetadata(), _capabilities())

    # the same checks for TorchScript modules, using the qualified type names
    scripted = torch.jit.script(module().eval())
    with pytest.raises(TypeError, match="takes unexpected arguments|must have type"):
        AtomisticModel(scripted, ModelMetadata(), _capabilities())


def test_forward_signature_ok():
    AtomisticModel(BuiltinGenerics().eval(), ModelMetadata(), _capabilities())
    scripted = torch.jit.script(EnergyModel().eval())
    model = AtomisticModel(scripted, ModelMetadata(), _capabilities())
    result = model([_system()], _options(), check_consistency=True)
    assert result["energy"].block().values.shape == (1, 1)


# ============================================================================ #
# requested neighbor lists and inputs


class Child(torch.nn.Module):
    def __init__(self, cutoff: float, full_list: bool):
        super().__init__()
        self.options = NeighborListOptions(
            cutoff=cutoff, full_list=full_list, strict=True
        )

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self.options]

    def requested_inputs(self) -> Dict[str, ModelOutput]:
        return {"mass": ModelOutput(unit="u", sample_kind="atom")}


class Parent(EnergyModel):
    def __init__(self):
        super().__init__()
        self.first = Child(3.0, False)
        self.nested = torch.nn.Sequential(Child(3.0, False), Child(5.0, True))

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [
            NeighborListOptions(cutoff=5.0, full_list=True, strict=True, requestor="me")
        ]


def test_requested_neighbor_lists():
    capabilities = _capabilities(length_unit="nm")
    model = AtomisticModel(Parent().eval(), ModelMetadata(), capabilities)

    requests = model.requested_neighbor_lists()
    assert len(requests) == 2
    full, half = requests
    assert (full.cutoff, full.full_list, full.strict) == (5.0, True, True)
    assert full.requestors() == ["me", "Parent", "Parent.nested.1"]
    assert (half.cutoff, half.full_list, half.strict) == (3.0, False, True)
    assert half.requestors() == ["Parent.first", "Parent.nested.0"]
    for options in requests:
        assert options.length_unit == "nm"
        assert options.engine_cutoff("angstrom") == pytest.approx(10 * options.cutoff)

    # the user's options are not modified
    assert model.module.first.options.length_unit == ""
    assert model.module.first.options.requestors() == []

    # the merged inputs
    inputs = model.requested_inputs(use_new_names=True)
    assert list(inputs.keys()) == ["mass"]
    assert inputs["mass"].unit == "u"


def test_neighbor_list_length_unit_mismatch():
    module = Child(3.0, False)
    module.options.length_unit = "bohr"

    class Model(EnergyModel):
        def __init__(self):
            super().__init__()
            self.child = module

    with pytest.raises(ValueError, match="has a length unit \\('bohr'\\) different"):
        AtomisticModel(Model().eval(), ModelMetadata(), _capabilities())


class InputsModel(EnergyModel):
    def __init__(self, inputs: Dict[str, ModelOutput]):
        super().__init__()
        self._inputs = inputs

    def requested_inputs(self) -> Dict[str, ModelOutput]:
        return self._inputs


def test_inputs_conflicts():
    class Model(InputsModel):
        def __init__(self):
            super().__init__({"mass": ModelOutput(unit="u", sample_kind="atom")})
            self.child = InputsModel(
                {"mass": ModelOutput(unit="kg", sample_kind="atom")}
            )

    with pytest.raises(NotImplementedError, match="with different units or sample"):
        AtomisticModel(Model().eval(), ModelMetadata(), _capabilities())


def test_requested_inputs_default_names():
    model = AtomisticModel(
        InputsModel({"mass": ModelOutput(unit="u", sample_kind="atom")}).eval(),
        ModelMetadata(),
        _capabilities(),
    )
    with pytest.warns(DeprecationWarning, match="without `use_new_names=True`"):
        inputs = model.requested_inputs()
    # the deprecated names for older engines
    assert list(inputs.keys()) == ["masses"]
    # only warns once
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(model.requested_inputs().keys()) == ["masses"]
        assert list(model.requested_inputs(True).keys()) == ["mass"]


def _per_atom_data(system: System, values: torch.Tensor, unit: str, name: str):
    n_atoms = len(system)
    samples = torch.stack(
        [
            torch.zeros(n_atoms, dtype=torch.int32),
            torch.arange(n_atoms, dtype=torch.int32),
        ],
        dim=1,
    )
    components = []
    if values.dim() == 3:
        components = [Labels(["xyz"], torch.tensor([[0], [1], [2]]))]
    block = TensorBlock(
        values=values,
        samples=Labels(["system", "atom"], samples),
        components=components,
        properties=Labels([name], torch.tensor([[0]])),
    )
    tensor = TensorMap(_keys(), [block])
    tensor.set_info("unit", unit)
    return tensor


class EchoInputs(torch.nn.Module):
    """Returns the requested inputs of the first system as outputs named
    ``test::<input name>``."""

    def __init__(self, inputs: Dict[str, ModelOutput]):
        super().__init__()
        self._inputs = inputs

    def requested_inputs(self) -> Dict[str, ModelOutput]:
        return self._inputs

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        result: Dict[str, TensorMap] = {}
        for name in self._inputs:
            result["test::" + name] = systems[0].get_data(name)
        return result


def _echo_model(inputs: Dict[str, ModelOutput]) -> AtomisticModel:
    outputs = {
        "test::" + name: ModelOutput(sample_kind="atom") for name in inputs.keys()
    }
    return AtomisticModel(
        EchoInputs(inputs).eval(), ModelMetadata(), _capabilities(outputs=outputs)
    )


@pytest.mark.parametrize("scripted", [False, True])
def test_requested_inputs_conversion(scripted):
    model = _echo_model(
        {
            "velocity": ModelOutput(unit="nm/ps", sample_kind="atom"),
            "mass": ModelOutput(unit="kg", sample_kind="atom"),
        }
    )
    if scripted:
        model = torch.jit.script(model)

    system = _system()
    velocities = torch.rand((3, 3, 1), dtype=torch.float64)
    masses = torch.tensor([[1.008], [12.011], [1.008]], dtype=torch.float64)
    system.add_data("velocity", _per_atom_data(system, velocities, "A/fs", "velocity"))
    system.add_data("mass", _per_atom_data(system, masses, "u", "mass"))
    system.add_data("test::other", _per_atom_data(system, masses, "u", "other"))

    outputs = {
        "test::velocity": ModelOutput(sample_kind="atom"),
        "test::mass": ModelOutput(sample_kind="atom"),
    }
    result = model([system], _options(outputs), check_consistency=True)

    velocity = result["test::velocity"]
    assert velocity.get_info("unit") == "nm/ps"
    torch.testing.assert_close(velocity.block().values, 100.0 * velocities)

    mass = result["test::mass"]
    assert mass.get_info("unit") == "kg"
    torch.testing.assert_close(mass.block().values, 1.66053906892e-27 * masses)

    # the engine's data is not modified
    assert system.get_data("mass").get_info("unit") == "u"
    torch.testing.assert_close(system.get_data("mass").block().values, masses)


def test_requested_inputs_gradients():
    model = _echo_model({"velocity": ModelOutput(unit="nm/ps", sample_kind="atom")})
    system = _system()
    velocities = torch.rand((3, 3, 1), dtype=torch.float64)
    data = _per_atom_data(system, velocities, "A/fs", "velocity")
    block = data.block()
    gradient = TensorBlock(
        values=torch.rand((2, 3, 1), dtype=torch.float64),
        samples=Labels(["sample", "x"], torch.tensor([[0, 0], [2, 1]])),
        components=block.components,
        properties=block.properties,
    )
    block = TensorBlock(block.values, block.samples, block.components, block.properties)
    block.add_gradient("x", gradient)
    data = TensorMap(_keys(), [block])
    data.set_info("unit", "A/fs")
    system.add_data("velocity", data)

    outputs = {"test::velocity": ModelOutput(sample_kind="atom")}
    result = model([system], _options(outputs), check_consistency=False)
    converted = result["test::velocity"].block()
    torch.testing.assert_close(converted.values, 100.0 * velocities)
    torch.testing.assert_close(converted.gradient("x").values, 100.0 * gradient.values)

    # gradients of gradients can not be converted
    nested = TensorBlock(
        values=gradient.values.clone(),
        samples=gradient.samples,
        components=gradient.components,
        properties=gradient.properties,
    )
    nested.add_gradient(
        "y",
        TensorBlock(
            values=torch.rand((1, 3, 1), dtype=torch.float64),
            samples=Labels(["sample", "y"], torch.tensor([[0, 0]])),
            components=gradient.components,
            properties=gradient.properties,
        ),
    )
    block = TensorBlock(
        velocities, data.block().samples, data.block().components, block.properties
    )
    block.add_gradient("x", nested)
    data = TensorMap(_keys(), [block])
    data.set_info("unit", "A/fs")
    system.add_data("velocity", data, override=True)
    with pytest.raises(NotImplementedError, match="gradients of gradients"):
        model([system], _options(outputs), check_consistency=False)


def test_missing_inputs():
    model = _echo_model({"mass": ModelOutput(unit="u", sample_kind="atom")})
    system = _system()
    options = _options({"test::mass": ModelOutput(sample_kind="atom")})
    message = "missing input 'mass' in the system: the model requested it"
    with pytest.raises(ValueError, match=message):
        model([system], options, check_consistency=True)


# ============================================================================ #
# forward checks


def test_forward_dtype():
    model = _energy_model()
    system = _system(dtype=torch.float32)
    message = "wrong dtype for the systems: the model wants torch.float64, we got "
    with pytest.raises(ValueError, match=message + "torch.float32"):
        model([system], _options(), check_consistency=True)


def test_forward_unknown_output():
    model = _energy_model()
    options = _options({"energy_ensemble": ModelOutput(unit="eV")})
    message = "this model can not compute 'energy_ensemble', the implemented outputs"
    with pytest.raises(ValueError, match=message):
        model([_system()], options, check_consistency=True)


def test_forward_gradients_and_sample_kind():
    model = _energy_model()
    output = ModelOutput(unit="eV", explicit_gradients=["positions"])
    with pytest.raises(ValueError, match="can not compute explicit gradients of"):
        model([_system()], _options({"energy": output}), check_consistency=True)

    output = ModelOutput(unit="eV", sample_kind="atom")
    with pytest.raises(ValueError, match="can not compute 'energy' per atom"):
        model([_system()], _options({"energy": output}), check_consistency=True)

    output = ModelOutput(unit="eV", sample_kind="atom_pair")
    with pytest.raises(ValueError, match="with sample_kind='atom_pair'"):
        model([_system()], _options({"energy": output}), check_consistency=True)


def test_forward_atomic_types():
    model = _energy_model()
    system = _system(types=torch.tensor([1, 7, 6], dtype=torch.int32))
    message = "this model does not support the atomic type '7' which is present"
    # always checked
    for check_consistency in [False, True]:
        with pytest.raises(ValueError, match=message):
            model([system], _options(), check_consistency=check_consistency)


def test_forward_selected_atoms_checks():
    model = _energy_model()
    selected = Labels(["system", "atom"], torch.tensor([[0, 0], [1, 0]]))
    with pytest.raises(ValueError, match="there is no system 1"):
        model([_system()], _options(selected_atoms=selected), check_consistency=True)

    selected = Labels(["system", "atom"], torch.tensor([[0, 0], [0, 3]]))
    with pytest.raises(ValueError, match="there is no atom 3 in system 0"):
        model([_system()], _options(selected_atoms=selected), check_consistency=True)


def test_forward_missing_neighbors():
    model = lennard_jones_model()
    message = (
        "missing neighbors list in the system: the model requested a list for "
        "NeighborListOptions\\(cutoff=4.000000, full_list=False, strict=True\\)"
    )
    with pytest.raises(ValueError, match=message):
        model([copper_system()], _options(), check_consistency=True)


class ExtraOutput(EnergyModel):
    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        result = super().forward(systems, {"energy": outputs["energy"]}, selected_atoms)
        result["energy_uncertainty"] = result["energy"]
        return result


def test_forward_unrequested_output():
    capabilities = _capabilities(
        outputs={
            "energy": ModelOutput(unit="eV"),
            "energy_uncertainty": ModelOutput(unit="eV"),
        }
    )
    model = AtomisticModel(ExtraOutput().eval(), ModelMetadata(), capabilities)
    message = "the model produced an output named 'energy_uncertainty', which was not"
    with pytest.raises(ValueError, match=message):
        model([_system()], _options(), check_consistency=True)

    # without checks, the output is returned as-is
    result = model([_system()], _options(), check_consistency=False)
    assert set(result.keys()) == {"energy", "energy_uncertainty"}


def test_forward_empty():
    model = lennard_jones_model()
    result = model([], _options(), check_consistency=True)
    assert result["energy"].block().values.shape == (0, 1)


# ============================================================================ #
# units


@pytest.mark.parametrize("scripted", [False, True])
def test_output_unit_conversion(scripted):
    model = _energy_model()
    if scripted:
        model = torch.jit.script(model)
    system = _system()
    reference = model([system], _options(), check_consistency=True)
    reference = reference["energy"].block().values

    output = ModelOutput(unit="kJ/mol", sample_kind="system")
    result = model([system], _options({"energy": output}), check_consistency=True)
    factor = unit_conversion_factor("eV", "kJ/mol")
    assert factor == pytest.approx(96.48533212331002)
    torch.testing.assert_close(result["energy"].block().values, factor * reference)

    # no conversion when the requested unit is empty
    output = ModelOutput(sample_kind="system")
    result = model([system], _options({"energy": output}), check_consistency=True)
    torch.testing.assert_close(result["energy"].block().values, reference)


class EnergyWithGradients(torch.nn.Module):
    """The energy of ``EnergyModel``, with explicit gradients with respect to
    positions"""

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        energies: List[torch.Tensor] = []
        samples: List[torch.Tensor] = []
        gradients: List[torch.Tensor] = []
        for i, system in enumerate(systems):
            types = system.types.to(torch.float64)
            energies.append((system.positions.sum(dim=1) * types).sum().reshape(1, 1))
            atoms = torch.arange(len(system)).reshape(-1, 1)
            system_i = torch.full_like(atoms, i)
            samples.append(torch.cat([system_i, system_i, atoms], dim=1))
            gradients.append(types.reshape(-1, 1, 1).expand(-1, 3, 1))

        block = TensorBlock(
            values=torch.cat(energies),
            samples=Labels(["system"], torch.arange(len(systems)).reshape(-1, 1)),
            components=[],
            properties=Labels(["energy"], torch.tensor([[0]])),
        )
        block.add_gradient(
            "positions",
            TensorBlock(
                values=torch.cat(gradients),
                samples=Labels(["sample", "system", "atom"], torch.cat(samples)),
                components=[Labels(["xyz"], torch.tensor([[0], [1], [2]]))],
                properties=block.properties,
            ),
        )
        return {"energy": TensorMap(_keys(), [block])}


@pytest.mark.parametrize("scripted", [False, True])
def test_output_gradients_unit_conversion(scripted):
    energy = ModelOutput(unit="eV", explicit_gradients=["positions"])
    capabilities = _capabilities(outputs={"energy": energy})
    module = EnergyWithGradients().eval()
    model = AtomisticModel(module, ModelMetadata(), capabilities)
    if scripted:
        model = torch.jit.script(model)

    system = _system()
    requested = ModelOutput(unit="kJ/mol", explicit_gradients=["positions"])
    result = model([system], _options({"energy": requested}), check_consistency=True)
    block = result["energy"].block()
    factor = unit_conversion_factor("eV", "kJ/mol")
    expected = factor * system.types.to(torch.float64).reshape(-1, 1, 1).expand(
        -1, 3, 1
    )
    torch.testing.assert_close(block.gradient("positions").values, expected)
    torch.testing.assert_close(
        block.values.reshape(()),
        factor * (system.positions.sum(dim=1) * system.types).sum(),
    )


def test_system_unit_conversion():
    model = _energy_model(length_unit="nm")
    system = _system()
    result = model([system], _options(length_unit="angstrom"), check_consistency=True)
    expected = (system.positions.sum(dim=1) * system.types).sum() / 10.0
    torch.testing.assert_close(result["energy"].block().values.reshape(()), expected)

    # the positions of the engine's system are not modified
    torch.testing.assert_close(system.positions, _system().positions)


def _evaluate(model, system, length_unit, per_atom=False, selected_atoms=None):
    output = ModelOutput(unit="eV", sample_kind="atom" if per_atom else "system")
    options = _options({"energy": output}, length_unit, selected_atoms)
    result = model([system], options, check_consistency=True)
    return result["energy"].block()


def test_units_models_are_equivalent():
    """A model in nm and kcal/mol gives the same energies and forces as the
    same model in angstrom and eV, for an engine working in angstrom and eV."""
    reference_model = lennard_jones_model()
    model = lennard_jones_model_nm_kcal()
    assert model.requested_neighbor_lists()[0].engine_cutoff("angstrom") == 4.0

    energies = []
    forces = []
    for current in [reference_model, model]:
        system = copper_system(requires_grad=True)
        add_neighbor_lists(system, current, "angstrom")
        block = _evaluate(current, system, "angstrom")
        block.values.sum().backward()
        energies.append(block.values.detach())
        forces.append(-system.positions.grad)

    torch.testing.assert_close(energies[0], energies[1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(forces[0], forces[1], rtol=1e-10, atol=1e-10)
    assert torch.linalg.norm(forces[0]) > 0.1


def test_forces_finite_differences():
    model = lennard_jones_model()

    def energy(positions):
        system = copper_system()
        system = System(system.types, positions, system.cell, system.pbc)
        add_neighbor_lists(system, model, "angstrom")
        return _evaluate(model, system, "angstrom").values.sum()

    positions = copper_system().positions.clone().requires_grad_(True)
    energy(positions).backward()
    forces = -positions.grad

    delta = 1e-6
    for atom, direction in [(0, 0), (5, 1), (17, 2), (31, 0)]:
        displaced = positions.detach().clone()
        displaced[atom, direction] += delta
        plus = energy(displaced)
        displaced[atom, direction] -= 2 * delta
        minus = energy(displaced)
        finite_difference = -(plus - minus) / (2 * delta)
        assert float(forces[atom, direction]) == pytest.approx(
            float(finite_difference), rel=1e-6, abs=1e-8
        )


def test_per_atom_energy_and_selected_atoms():
    model = lennard_jones_model()
    system = copper_system()
    add_neighbor_lists(system, model, "angstrom")

    total = _evaluate(model, system, "angstrom")
    per_atom = _evaluate(model, system, "angstrom", per_atom=True)
    assert per_atom.samples.names == ["system", "atom"]
    assert per_atom.values.shape == (32, 1)
    torch.testing.assert_close(per_atom.values.sum(), total.values.sum())

    selected = Labels(["system", "atom"], torch.tensor([[0, 3], [0, 7], [0, 30]]))
    block = _evaluate(model, system, "angstrom", per_atom=True, selected_atoms=selected)
    assert block.samples == selected
    torch.testing.assert_close(block.values, per_atom.values[[3, 7, 30]])

    block = _evaluate(model, system, "angstrom", selected_atoms=selected)
    torch.testing.assert_close(block.values.sum(), per_atom.values[[3, 7, 30]].sum())


# ============================================================================ #
# deprecated names


class FeaturesModel(torch.nn.Module):
    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        assert list(outputs.keys()) == [self.name]
        block = TensorBlock(
            values=torch.ones((len(systems), 2), dtype=torch.float64),
            samples=Labels(["system"], torch.arange(len(systems)).reshape(-1, 1)),
            components=[],
            properties=Labels(["p"], torch.tensor([[0], [1]])),
        )
        return {self.name: TensorMap(_keys(), [block])}


def _features_model(name: str) -> AtomisticModel:
    with warnings.catch_warnings():
        # warnings from ModelCapabilities about the deprecated name
        warnings.simplefilter("ignore", DeprecationWarning)
        capabilities = _capabilities(outputs={name: ModelOutput(description="x")})
    return AtomisticModel(FeaturesModel(name).eval(), ModelMetadata(), capabilities)


def test_deprecated_output_declared():
    with pytest.warns(DeprecationWarning, match="'features' output name is deprecated"):
        model = _features_model("features")

    assert set(model.capabilities().outputs.keys()) == {"feature", "features"}

    # requesting the new name gives the module its own name back
    options = _options({"feature": ModelOutput()})
    result = model([_system()], options, check_consistency=True)
    assert list(result.keys()) == ["feature"]


def test_deprecated_output_requested():
    model = _features_model("feature")
    assert set(model.capabilities().outputs.keys()) == {"feature", "features"}

    options = _options({"features": ModelOutput()})
    with pytest.warns(DeprecationWarning, match="'features' output name is deprecated"):
        result = model([_system()], options, check_consistency=True)
    assert list(result.keys()) == ["features"]

    options = _options({"features": ModelOutput(), "feature": ModelOutput()})
    with pytest.raises(ValueError, match="the same output was requested twice"):
        model([_system()], options, check_consistency=False)


def test_deprecated_inputs():
    with pytest.warns(DeprecationWarning, match="'masses' input .* deprecated name"):
        model = _echo_model({"masses": ModelOutput(unit="u", sample_kind="atom")})

    assert list(model.requested_inputs(use_new_names=True).keys()) == ["mass"]

    # the engine stores the data under the new name
    system = _system()
    masses = torch.tensor([[1.0], [12.0], [1.0]], dtype=torch.float64)
    system.add_data("mass", _per_atom_data(system, masses, "u", "mass"))
    outputs = {"test::masses": ModelOutput(sample_kind="atom")}
    result = model([system], _options(outputs), check_consistency=True)
    torch.testing.assert_close(result["test::masses"].block().values, masses)

    message = "'mass' input is requested under two names"
    with pytest.raises(ValueError, match=message), pytest.warns(DeprecationWarning):
        AtomisticModel(
            EchoInputs(
                {
                    "mass": ModelOutput(unit="u", sample_kind="atom"),
                    "masses": ModelOutput(unit="u", sample_kind="atom"),
                }
            ).eval(),
            ModelMetadata(),
            _capabilities(),
        )


# ============================================================================ #
# misc


def test_is_atomistic_model():
    model = _energy_model()
    assert is_atomistic_model(model)
    assert is_atomistic_model(torch.jit.script(model))
    assert not is_atomistic_model(EnergyModel())
    assert not is_atomistic_model(torch.jit.script(EnergyModel()))
    with pytest.raises(TypeError, match="`module` should be a torch.nn.Module"):
        is_atomistic_model("model")


def test_scripted_methods():
    model = torch.jit.script(lennard_jones_model())
    assert model.original_name == "AtomisticModel"
    capabilities = model.capabilities()
    assert isinstance(capabilities, ModelCapabilities)
    assert capabilities.length_unit == "angstrom"
    assert model.metadata().name == "Lennard-Jones"
    requests = model.requested_neighbor_lists()
    assert len(requests) == 1
    assert requests[0].requestors() == ["LennardJones"]
    assert model.requested_inputs(use_new_names=True) == {}
    assert isinstance(model.module, torch.jit.RecursiveScriptModule)


def test_module_to():
    model = lennard_jones_model()
    model.to(torch.float32)
    assert model.module.sigma.dtype == torch.float32


@pytest.mark.parametrize("scripted", [False, True])
def test_profiler_scopes(scripted):
    model = lennard_jones_model()
    if scripted:
        model = torch.jit.script(model)
    system = copper_system()
    add_neighbor_lists(system, model, "angstrom")
    with torch.profiler.profile() as profiler:
        model([system], _options(), check_consistency=False)
    names = {event.name for event in profiler.events()}
    assert "Model::forward" in names
    assert "AtomisticModel::prepare_inputs" in names
    assert "AtomisticModel::prepare_outputs" in names
