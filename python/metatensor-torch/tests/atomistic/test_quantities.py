import re
import warnings
from typing import Dict, List, Optional

import pytest
import torch

from metatensor.torch import Labels, TensorBlock, TensorMap
from metatensor.torch.atomistic import (
    ModelOutput,
    System,
    check_quantities,
    check_quantity_name,
    new_quantity_name,
    pick_output,
    unit_dimension_for_quantity,
)
from metatensor_torch.atomistic import _names


# ============================================================================ #
# names


@pytest.mark.parametrize(
    "name",
    [
        "energy",
        "energy_ensemble",
        "energy_uncertainty",
        "feature",
        "non_conservative_force",
        "non_conservative_stress",
        "position",
        "momentum",
        "velocity",
        "mass",
        "charge",
        "heat_flux",
        "spin_multiplicity",
        "energy/pbe0",
        "energy/a/b",
        "mtt::aux",
        "mtt::aux::energy",
        "mtt::energy/pbe",
        "ase::arrays::tags",
    ],
)
def test_valid_names(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_quantity_name(name)


@pytest.mark.parametrize(
    "name",
    ["foo", "energy/", "/pbe", "foo/pbe", "::x", "a/b::c", "mtt::", "mtt::/x", "x::y/"],
)
def test_invalid_names(name):
    message = (
        f"'{name}' is not a valid quantity name. Variant names should look like "
        "'<quantity>/<variant>'. Non-standard names should look like "
        "'<domain>::<quantity>[/<variant>]'"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_quantity_name(name)


def test_empty_name():
    with pytest.raises(ValueError, match="quantity names can not be empty"):
        check_quantity_name("")


def test_deprecated_names():
    _names._WARNED_NAMES.pop("momenta", None)
    with pytest.warns(DeprecationWarning, match="'momenta' is deprecated, please use"):
        check_quantity_name("momenta")
    # only once per name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_quantity_name("momenta/x")
        # and never when disabled
        _names._WARNED_NAMES.pop("masses", None)
        check_quantity_name("masses", warn_deprecated=False)


def test_new_quantity_name():
    renames = {
        "features": "feature",
        "non_conservative_forces": "non_conservative_force",
        "positions": "position",
        "momenta": "momentum",
        "masses": "mass",
        "velocities": "velocity",
        "charges": "charge",
    }
    for old, new in renames.items():
        assert new_quantity_name(old) == new
        assert new_quantity_name(old + "/variant") == new + "/variant"
        assert _names.old_quantity_name(new) == old
        assert new_quantity_name(new) == new
    assert new_quantity_name("energy") == "energy"
    assert new_quantity_name("mtt::features") == "mtt::features"


def test_unit_dimension_for_quantity():
    expected = {
        "energy": "energy",
        "energy_ensemble": "energy",
        "energy_uncertainty": "energy",
        "feature": "none",
        "spin_multiplicity": "none",
        "non_conservative_force": "force",
        "non_conservative_stress": "pressure",
        "position": "length",
        "momentum": "momentum",
        "velocity": "velocity",
        "mass": "mass",
        "charge": "charge",
        "heat_flux": "heat_flux",
        "energy/pbe": "energy",
        "momenta": "momentum",
        "features/x": "none",
        "mtt::energy": "",
        "unknown": "",
    }
    for name, dimension in expected.items():
        assert unit_dimension_for_quantity(name) == dimension


def test_names_torchscript():
    @torch.jit.script
    def check(name: str) -> str:
        check_quantity_name(name)
        return new_quantity_name(name) + ":" + unit_dimension_for_quantity(name)

    assert check("energy/x") == "energy/x:energy"
    with pytest.warns(UserWarning, match="'velocities' is deprecated"):
        assert check("velocities") == "velocity:velocity"
    with pytest.raises(torch.jit.Error, match="'foo' is not a valid quantity name"):
        check("foo")


# ============================================================================ #
# pick_output


def test_pick_output():
    outputs = {
        "energy": ModelOutput(description="default"),
        "energy/pbe": ModelOutput(description="PBE energy"),
        "energy/r2scan": ModelOutput(),
        "energy_uncertainty": ModelOutput(),
    }
    assert pick_output("energy", outputs) == "energy"
    assert pick_output("energy", outputs, None) == "energy"
    assert pick_output("energy", outputs, "pbe") == "energy/pbe"
    assert pick_output("energy_uncertainty", outputs) == "energy_uncertainty"

    message = (
        "variant 'b3lyp' for output 'energy' not found, the available variants "
        "are:\n - 'energy': default\n - 'energy/pbe': PBE energy\n"
        " - 'energy/r2scan': (no description)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        pick_output("energy", outputs, "b3lyp")

    with pytest.raises(ValueError, match="output 'feature' not found in the outputs"):
        pick_output("feature", outputs)

    del outputs["energy"]
    message = (
        "output 'energy' has no default variant, and no variant was given. Please "
        "pick one of the available variants:\n - 'energy/pbe': PBE energy\n"
        " - 'energy/r2scan': (no description)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        pick_output("energy", outputs)

    scripted = torch.jit.script(pick_output)
    assert scripted("energy", outputs, "r2scan") == "energy/r2scan"
    with pytest.raises(torch.jit.Error, match="has no default variant"):
        scripted("energy", outputs, None)


# ============================================================================ #
# check_quantities


def system(n_atoms: int) -> System:
    return System(
        types=torch.ones(n_atoms, dtype=torch.int32),
        positions=torch.zeros((n_atoms, 3), dtype=torch.float64),
        cell=torch.zeros((3, 3), dtype=torch.float64),
        pbc=torch.tensor([False, False, False]),
    )


SYSTEMS = [system(3), system(2)]


def xyz(name: str = "xyz") -> Labels:
    return Labels([name], torch.tensor([[0], [1], [2]]))


def single_block(
    samples: Labels,
    components: List[Labels],
    properties: Labels,
    dtype: torch.dtype = torch.float64,
) -> TensorMap:
    shape = [len(samples)] + [len(c) for c in components] + [len(properties)]
    block = TensorBlock(
        values=torch.zeros(shape, dtype=dtype),
        samples=samples,
        components=components,
        properties=properties,
    )
    return TensorMap(Labels("_", torch.tensor([[0]])), [block])


def per_system(property_name: str, n_systems: int = 2, **kwargs) -> TensorMap:
    samples = Labels(["system"], torch.arange(n_systems).reshape(-1, 1))
    return single_block(
        samples,
        kwargs.pop("components", []),
        Labels(property_name, torch.tensor([[0]])),
        **kwargs,
    )


def all_atoms() -> torch.Tensor:
    return torch.tensor([[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]])


def per_atom(property_name: str, samples=None, **kwargs) -> TensorMap:
    if samples is None:
        samples = all_atoms()
    return single_block(
        Labels(["system", "atom"], samples),
        kwargs.pop("components", []),
        Labels(property_name, torch.tensor([[0]])),
        **kwargs,
    )


def check(name, tensor, request, selected_atoms=None, kind="output", systems=None):
    check_quantities(
        SYSTEMS if systems is None else systems,
        {name: tensor},
        {name: request},
        selected_atoms,
        torch.float64,
        kind,
    )


def test_valid_quantities():
    check("energy", per_system("energy"), ModelOutput())
    check("energy/pbe", per_atom("energy"), ModelOutput(sample_kind="atom"))
    check("energy_uncertainty", per_atom("energy"), ModelOutput(sample_kind="atom"))

    ensemble = single_block(
        Labels(["system"], torch.tensor([[0], [1]])),
        [],
        Labels("energy", torch.arange(4).reshape(-1, 1)),
    )
    check("energy_ensemble", ensemble, ModelOutput())

    features = single_block(
        Labels(["system", "atom"], all_atoms()),
        [],
        Labels("n", torch.arange(7).reshape(-1, 1)),
    )
    check("feature", features, ModelOutput(sample_kind="atom"))

    check(
        "non_conservative_force",
        per_atom("non_conservative_force", components=[xyz()]),
        ModelOutput(sample_kind="atom"),
    )
    check(
        "non_conservative_stress",
        per_system("non_conservative_stress", components=[xyz("xyz_1"), xyz("xyz_2")]),
        ModelOutput(),
    )
    for name in ["position", "momentum", "velocity"]:
        check(name, per_atom(name, components=[xyz()]), ModelOutput(sample_kind="atom"))
    check("mass", per_atom("mass"), ModelOutput(sample_kind="atom"))
    check("charge", per_atom("charge"), ModelOutput(sample_kind="atom"))
    check("charge", per_system("charge"), ModelOutput())
    check("heat_flux", per_system("heat_flux", components=[xyz()]), ModelOutput())
    check("spin_multiplicity", per_system("spin_multiplicity"), ModelOutput())

    # subsets of the samples are fine
    check("energy", per_system("energy", n_systems=1), ModelOutput())
    check(
        "mass",
        per_atom("mass", samples=torch.tensor([[1, 1], [0, 2]])),
        ModelOutput(sample_kind="atom"),
    )

    # non-standard quantities are free
    free = single_block(
        Labels(["x"], torch.tensor([[5]])), [], Labels("y", torch.tensor([[0]]))
    )
    check("mtt::x", free, ModelOutput(sample_kind="atom_pair"))


def with_gradients(tensor: TensorMap, parameters: List[str]) -> TensorMap:
    """A copy of the single-block ``tensor`` with gradients."""
    original = tensor.block()
    block = TensorBlock(
        values=original.values,
        samples=original.samples,
        components=original.components,
        properties=original.properties,
    )
    for parameter in parameters:
        if parameter == "positions":
            samples = Labels(["sample", "system", "atom"], torch.tensor([[0, 0, 1]]))
            components = [xyz()]
        elif parameter == "strain":
            samples = Labels(["sample"], torch.tensor([[0]]))
            components = [xyz("xyz_1"), xyz("xyz_2")]
        else:
            samples = Labels(["sample"], torch.tensor([[0]]))
            components = []
        shape = [1] + [len(c) for c in components] + [len(original.properties)]
        block.add_gradient(
            parameter,
            TensorBlock(
                values=torch.zeros(shape, dtype=torch.float64),
                samples=samples,
                components=components,
                properties=original.properties,
            ),
        )
    return TensorMap(tensor.keys, [block])


def test_gradients():
    energy = with_gradients(per_system("energy"), ["positions", "strain"])
    check("energy", energy, ModelOutput(explicit_gradients=["positions", "strain"]))

    mass = with_gradients(per_atom("mass"), ["positions"])
    message = "unexpected gradient with respect to 'positions'"
    with pytest.raises(ValueError, match=message):
        check("mass", mass, ModelOutput(sample_kind="atom"))

    energy = with_gradients(per_system("energy"), ["cell"])
    with pytest.raises(ValueError, match="unexpected gradient with respect to 'cell'"):
        check("energy", energy, ModelOutput())


def test_selected_atoms():
    selected = Labels(
        ["system", "atom"], torch.tensor([[0, 2], [1, 1], [1, 7], [5, 0]])
    )
    request = ModelOutput(sample_kind="atom")

    check(
        "energy",
        per_atom("energy", samples=torch.tensor([[0, 2], [1, 1]])),
        request,
        selected,
    )
    check(
        "energy", per_atom("energy", samples=torch.tensor([[1, 1]])), request, selected
    )
    message = "some samples refer to atoms which are not in `selected_atoms`"
    with pytest.raises(ValueError, match=re.escape(message)):
        check("energy", per_atom("energy"), request, selected)

    # per-system outputs are restricted to the systems with selected atoms
    only_first = Labels(["system", "atom"], torch.tensor([[0, 0], [0, 1]]))
    check("energy", per_system("energy", n_systems=1), ModelOutput(), only_first)
    with pytest.raises(ValueError, match="refer to systems without any atom in"):
        check("energy", per_system("energy"), ModelOutput(), only_first)


@pytest.mark.parametrize(
    "name, tensor, requested, message",
    [
        (
            "energy",
            per_system("energy", dtype=torch.float32),
            ModelOutput(),
            "wrong dtype for the 'energy' output: expected torch.float64, got "
            "torch.float32",
        ),
        (
            "energy",
            per_atom("energy"),
            ModelOutput(),
            "invalid samples for 'energy' output: expected sample names to be "
            "['system'] (sample_kind='system'), got ['system', 'atom']",
        ),
        (
            "energy",
            per_system("energy", n_systems=3),
            ModelOutput(),
            "invalid samples for 'energy' output: the 'system' dimension should be "
            "between 0 and 1",
        ),
        (
            "energy",
            per_atom("energy", samples=torch.tensor([[1, 2]])),
            ModelOutput(sample_kind="atom"),
            "invalid samples for 'energy' output: the 'atom' dimension refers to "
            "atoms which are not in the systems",
        ),
        (
            "energy",
            per_system("energy", components=[xyz()]),
            ModelOutput(),
            "invalid components for 'energy' output: expected none",
        ),
        (
            "energy",
            per_system("energies"),
            ModelOutput(),
            "invalid properties for 'energy' output: expected "
            "`Labels('energy', [[0]])`",
        ),
        (
            "energy",
            per_system("energy"),
            ModelOutput(sample_kind="atom_pair"),
            "invalid sample_kind for 'energy' output: expected one of ['system', "
            "'atom'], got 'atom_pair'",
        ),
        (
            "non_conservative_force",
            per_system("non_conservative_force", components=[xyz()]),
            ModelOutput(),
            "invalid sample_kind for 'non_conservative_force' output: expected one "
            "of ['atom'], got 'system'",
        ),
        (
            "non_conservative_force",
            per_atom("non_conservative_force"),
            ModelOutput(sample_kind="atom"),
            "invalid components for 'non_conservative_force' output: expected one "
            "component named 'xyz' with values [0, 1, 2]",
        ),
        (
            "non_conservative_stress",
            per_system("non_conservative_stress", components=[xyz()]),
            ModelOutput(),
            "invalid components for 'non_conservative_stress' output: expected two "
            "components named 'xyz_1' and 'xyz_2' with values [0, 1, 2]",
        ),
        (
            "heat_flux",
            per_atom("heat_flux", components=[xyz()]),
            ModelOutput(sample_kind="atom"),
            "invalid sample_kind for 'heat_flux' output: expected one of "
            "['system'], got 'atom'",
        ),
    ],
)
def test_invalid_quantities(name, tensor, requested, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check(name, tensor, requested)


def test_invalid_keys_and_ensemble():
    tensor = per_system("energy")
    block = tensor.block().copy()
    keys = Labels("key", torch.tensor([[0]]))
    with pytest.raises(ValueError, match=re.escape("expected `Labels('_', [[0]])`")):
        check("energy", TensorMap(keys, [block]), ModelOutput())

    ensemble = single_block(
        Labels(["system"], torch.tensor([[0]])),
        [],
        Labels("energy", torch.tensor([[1], [0]])),
    )
    with pytest.raises(ValueError, match="0, 1, ..., n_members - 1"):
        check("energy_ensemble", ensemble, ModelOutput())


def test_legacy_property_names():
    with pytest.warns(DeprecationWarning, match="property name 'positions'"):
        check(
            "position",
            per_atom("positions", components=[xyz()]),
            ModelOutput(sample_kind="atom"),
        )
    with pytest.warns(
        DeprecationWarning, match="property name 'non_conservative_forces'"
    ):
        check(
            "non_conservative_force",
            per_atom("non_conservative_forces", components=[xyz()]),
            ModelOutput(sample_kind="atom"),
        )


def test_outputs_and_requests():
    request = {"energy": ModelOutput()}
    energy = per_system("energy")

    message = (
        "the model produced an output named 'mtt::x', which was not requested by "
        "the engine"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_quantities(
            SYSTEMS,
            {"energy": energy, "mtt::x": energy},
            request,
            None,
            torch.float64,
            "output",
        )

    message = "the model did not produce the 'energy' output requested by the engine"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_quantities(SYSTEMS, {}, request, None, torch.float64, "output")

    with pytest.raises(
        ValueError, match="the model produced an output with an empty name"
    ):
        check_quantities(SYSTEMS, {"": energy}, request, None, torch.float64, "output")

    with pytest.raises(ValueError, match="'foo' is not a valid quantity name"):
        check_quantities(
            SYSTEMS,
            {"foo": energy},
            {"foo": ModelOutput()},
            None,
            torch.float64,
            "output",
        )

    with pytest.raises(ValueError, match="`kind` must be 'output' or 'input', got 'x'"):
        check_quantities(SYSTEMS, {}, {}, None, torch.float64, "x")

    # inputs: unrequested data is fine, requested data must be present
    mass = per_atom("mass", samples=torch.tensor([[0, 0], [0, 1]]))
    check_quantities(
        [system(2)],
        {"mass": mass, "other": energy},
        {"mass": ModelOutput(sample_kind="atom")},
        None,
        torch.float64,
        "input",
    )
    with pytest.raises(
        ValueError, match="the 'mass' input requested by the model is missing"
    ):
        check_quantities(
            [system(2)],
            {},
            {"mass": ModelOutput(sample_kind="atom")},
            None,
            torch.float64,
            "input",
        )
    with pytest.raises(ValueError, match="invalid samples for 'mass' input"):
        check_quantities(
            [system(1)],
            {"mass": mass},
            {"mass": ModelOutput(sample_kind="atom")},
            None,
            torch.float64,
            "input",
        )


def test_check_quantities_torchscript():
    @torch.jit.script
    def scripted(
        systems: List[System],
        values: Dict[str, TensorMap],
        requested: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ):
        check_quantities(
            systems, values, requested, selected_atoms, torch.float64, "output"
        )

    request = {"energy": ModelOutput(sample_kind="atom")}
    scripted(SYSTEMS, {"energy": per_atom("energy")}, request, None)

    selected = Labels(["system", "atom"], torch.tensor([[0, 0]]))
    with pytest.raises(torch.jit.Error, match="not in `selected_atoms`"):
        scripted(SYSTEMS, {"energy": per_atom("energy")}, request, selected)
