import copy
import json
import math
import pickle
import re
import struct
import warnings
from typing import Dict, List, Optional, Tuple

import pytest
import torch

from metatensor.torch import Labels
from metatensor.torch.atomistic import (
    ModelCapabilities,
    ModelEvaluationOptions,
    ModelMetadata,
    ModelOutput,
    unit_conversion_factor,
)


def bits(value: float) -> int:
    return struct.unpack("<q", struct.pack("<d", value))[0]


def canonical(data) -> str:
    """The JSON text the classes must produce for ``data``."""
    return json.dumps(data, indent=4, sort_keys=True, ensure_ascii=True)


# ============================================================================ #
# ModelOutput


def test_output_defaults():
    output = ModelOutput()
    assert output.quantity == ""
    assert output.unit == ""
    assert output.sample_kind == "system"
    assert output.explicit_gradients == []
    assert output.description == ""


def test_output_arguments():
    output = ModelOutput(
        unit="eV",
        sample_kind="atom",
        explicit_gradients=["positions", "strain"],
        description="the energy",
    )
    assert output.unit == "eV"
    assert output.sample_kind == "atom"
    assert output.explicit_gradients == ["positions", "strain"]
    assert output.description == "the energy"

    # third positional argument as sample_kind
    assert ModelOutput("", "eV", "atom_pair").sample_kind == "atom_pair"

    # explicit_gradients and description are public and mutable
    output.explicit_gradients.append("cell")
    assert output.explicit_gradients == ["positions", "strain", "cell"]
    output.description = "other"
    assert output.description == "other"

    output.unit = "kcal/mol"
    assert output.unit == "kcal/mol"
    output.sample_kind = "system"
    assert output.sample_kind == "system"


def test_output_validation():
    with pytest.raises(ValueError, match="unknown unit 'foo'"):
        ModelOutput(unit="foo")

    output = ModelOutput(unit="eV")
    with pytest.raises(ValueError, match="unknown unit 'foo'"):
        output.unit = "foo"
    assert output.unit == "eV"

    message = "invalid sample_kind 'pair': expected 'system', 'atom' or 'atom_pair'"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ModelOutput(sample_kind="pair")
    with pytest.raises(ValueError, match=re.escape(message)):
        output.sample_kind = "pair"


def test_output_per_atom_deprecation():
    with pytest.warns(DeprecationWarning, match="`per_atom` is deprecated"):
        output = ModelOutput(unit="eV", per_atom=True)
    assert output.sample_kind == "atom"

    # positional bool
    with pytest.warns(DeprecationWarning, match="`per_atom` is deprecated"):
        output = ModelOutput("", "eV", False)
    assert output.sample_kind == "system"

    with pytest.warns(DeprecationWarning, match="`per_atom` is deprecated"):
        assert not output.per_atom

    with pytest.warns(DeprecationWarning, match="`per_atom` is deprecated"):
        output.per_atom = True
    assert output.sample_kind == "atom"

    output.sample_kind = "atom_pair"
    with pytest.warns(DeprecationWarning, match="`per_atom` is deprecated"):
        with pytest.raises(ValueError, match="not defined when `sample_kind` is"):
            _ = output.per_atom

    message = "cannot specify both `per_atom` and `sample_kind` in ModelOutput"
    with pytest.raises(ValueError, match=re.escape(message)):
        ModelOutput(per_atom=True, sample_kind="atom")
    with pytest.raises(ValueError, match=re.escape(message)):
        ModelOutput("", "", True, sample_kind="atom")
    with pytest.raises(ValueError, match="multiple values for argument 'sample_kind'"):
        ModelOutput("", "", "atom", sample_kind="atom")


def test_output_quantity_deprecation():
    with pytest.warns(DeprecationWarning, match="`quantity` is deprecated"):
        output = ModelOutput(quantity="energy", unit="eV")
    assert output.quantity == "energy"

    # the unit is validated against a quantity naming a dimension
    with pytest.warns(DeprecationWarning, match="`quantity` is deprecated"):
        with pytest.raises(ValueError, match="incompatible with 'energy'"):
            ModelOutput(quantity="energy", unit="A")
    with pytest.raises(ValueError, match="incompatible with 'energy'"):
        output.unit = "A"
    with pytest.warns(DeprecationWarning, match="`quantity` is deprecated"):
        with pytest.raises(ValueError, match="incompatible with 'length'"):
            output.quantity = "length"

    # other quantities are not checked
    with pytest.warns(DeprecationWarning, match="`quantity` is deprecated"):
        output = ModelOutput(quantity="dipole", unit="D")
    assert output.unit == "D"

    # no warning for the default empty quantity
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ModelOutput(unit="eV")


def test_output_equality():
    first = ModelOutput(unit="eV", sample_kind="atom", explicit_gradients=["strain"])
    second = ModelOutput(unit="eV", sample_kind="atom", explicit_gradients=["strain"])
    assert first == second
    assert not (first != second)

    second.description = "x"
    assert first != second
    assert first != ModelOutput(unit="meV", sample_kind="atom")
    assert first != ModelOutput(unit="eV", explicit_gradients=["strain"])
    assert first != "not an output"


def test_output_json():
    output = ModelOutput(
        unit="eV",
        sample_kind="atom",
        explicit_gradients=["positions"],
        description='energy in \u00e9V \U0001f600 "quoted"\n',
    )
    state = output.__getstate__()
    assert isinstance(state, tuple) and len(state) == 1
    expected = {
        "class": "ModelOutput",
        "unit": "eV",
        "sample_kind": "atom",
        "explicit_gradients": ["positions"],
        "description": 'energy in \u00e9V \U0001f600 "quoted"\n',
    }
    assert state[0] == canonical(expected)
    assert state[0].isascii()

    restored = ModelOutput()
    restored.__setstate__(state)
    assert restored == output
    assert restored.description == output.description

    assert pickle.loads(pickle.dumps(output)) == output
    assert copy.deepcopy(output) == output
    copied = copy.deepcopy(output)
    copied.explicit_gradients.append("strain")
    assert output.explicit_gradients == ["positions"]


def test_output_legacy_json():
    legacy = json.dumps(
        {
            "class": "ModelOutput",
            "quantity": "energy",
            "unit": "eV",
            "per_atom": True,
            "explicit_gradients": [],
        }
    )
    output = ModelOutput()
    output.__setstate__((legacy,))
    assert output.sample_kind == "atom"
    assert output.unit == "eV"
    assert output.quantity == ""
    assert output.description == ""


def test_output_invalid_json():
    output = ModelOutput()
    with pytest.raises(ValueError, match="the 'class' is 'ModelMetadata'"):
        output.__setstate__(('{"class": "ModelMetadata"}',))
    with pytest.raises(ValueError, match="expected 'sample_kind' to be string"):
        output.__setstate__(('{"class": "ModelOutput", "sample_kind": 3}',))
    with pytest.raises(ValueError, match="invalid JSON"):
        output.__setstate__(('{"class": "ModelOutput",}',))
    with pytest.raises(ValueError, match="invalid sample_kind 'x'"):
        output.__setstate__(('{"class": "ModelOutput", "sample_kind": "x"}',))


# ============================================================================ #
# ModelCapabilities


def energy_output(**kwargs) -> ModelOutput:
    return ModelOutput(unit="eV", **kwargs)


def test_capabilities_defaults():
    capabilities = ModelCapabilities()
    assert capabilities.outputs == {}
    assert capabilities.atomic_types == []
    assert capabilities.interaction_range == -1.0
    assert capabilities.length_unit == ""
    assert capabilities.supported_devices == []
    assert capabilities.dtype == ""


def test_capabilities_arguments():
    capabilities = ModelCapabilities(
        outputs={"energy": energy_output()},
        atomic_types=[1, 6, 8],
        interaction_range=4.5,
        length_unit="angstrom",
        supported_devices=["cuda", "cpu"],
        dtype="float32",
    )
    assert list(capabilities.outputs.keys()) == ["energy"]
    assert capabilities.outputs["energy"] == energy_output()
    assert capabilities.atomic_types == [1, 6, 8]
    assert capabilities.interaction_range == 4.5
    assert capabilities.length_unit == "angstrom"
    assert capabilities.supported_devices == ["cuda", "cpu"]
    assert capabilities.dtype == "float32"

    assert capabilities.engine_interaction_range("nm") == pytest.approx(0.45)
    assert capabilities.engine_interaction_range(
        "bohr"
    ) == 4.5 * unit_conversion_factor("angstrom", "bohr")

    capabilities.atomic_types = [1]
    capabilities.interaction_range = math.inf
    assert capabilities.engine_interaction_range("nm") == math.inf
    capabilities.supported_devices = ["cpu"]
    capabilities.dtype = "float64"
    capabilities.length_unit = "nm"
    assert capabilities.atomic_types == [1]
    assert capabilities.dtype == "float64"
    assert capabilities.length_unit == "nm"


def test_capabilities_validation():
    message = "`dtype` can be one of ['float32', 'float64'], got 'float16'"
    with pytest.raises(ValueError, match=re.escape(message)):
        ModelCapabilities(dtype="float16")
    capabilities = ModelCapabilities(dtype="float64")
    with pytest.raises(ValueError, match=re.escape(message)):
        capabilities.dtype = "float16"
    assert capabilities.dtype == "float64"

    with pytest.raises(ValueError, match="incompatible with 'length'"):
        ModelCapabilities(length_unit="eV")
    with pytest.raises(ValueError, match="incompatible with 'length'"):
        capabilities.length_unit = "fs"


def test_capabilities_output_names():
    valid = {
        "energy": energy_output(),
        "energy/pbe": energy_output(description="PBE energy"),
        "mtt::aux::energy": ModelOutput(),
        "mtt::dipole/variant": ModelOutput(unit="D"),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        capabilities = ModelCapabilities(outputs={"energy": energy_output()})
        capabilities.outputs = {
            "energy": energy_output(description="the energy"),
            **{k: v for k, v in valid.items() if k != "energy"},
        }
    assert len(capabilities.outputs) == 4

    for name in ["foo", "energy/", "/energy", "::foo", "a/b::c", "domain::", ""]:
        with pytest.raises(ValueError):
            ModelCapabilities(outputs={name: ModelOutput()})

    message = (
        "'foo' is not a valid quantity name. Variant names should look like "
        "'<quantity>/<variant>'. Non-standard names should look like "
        "'<domain>::<quantity>[/<variant>]'"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        ModelCapabilities(outputs={"foo": ModelOutput()})


def test_capabilities_output_units():
    # wrong dimension
    with pytest.raises(ValueError, match="incompatible with 'energy'"):
        ModelCapabilities(outputs={"energy": ModelOutput(unit="A")})
    with pytest.raises(ValueError, match="incompatible with 'force'"):
        ModelCapabilities(outputs={"non_conservative_force": ModelOutput(unit="eV")})
    with pytest.raises(ValueError, match="incompatible with 'pressure'"):
        ModelCapabilities(
            outputs={"non_conservative_stress/pbe": ModelOutput(unit="eV/A^2")}
        )
    ModelCapabilities(outputs={"non_conservative_stress": ModelOutput(unit="GPa")})

    # missing unit
    with pytest.warns(UserWarning, match="the output 'energy' has no unit"):
        ModelCapabilities(outputs={"energy": ModelOutput()})

    # dimensionless
    with pytest.warns(UserWarning, match="'feature' is dimensionless, but it has"):
        ModelCapabilities(outputs={"feature": ModelOutput(unit="eV")})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ModelCapabilities(outputs={"feature": ModelOutput(sample_kind="atom")})


def test_capabilities_variant_descriptions():
    outputs = {
        "energy": energy_output(),
        "energy/pbe": energy_output(description="PBE"),
    }
    with pytest.warns(UserWarning, match="'energy' has 2 variants but some of them"):
        ModelCapabilities(outputs=outputs)

    outputs["energy"] = energy_output(description="default")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ModelCapabilities(outputs=outputs)
        # a single variant without description is fine
        ModelCapabilities(outputs={"energy/pbe": energy_output()})


def test_capabilities_deprecated_names():
    from metatensor_torch.atomistic import _names

    _names._WARNED_NAMES.pop("features", None)
    with pytest.warns(DeprecationWarning, match="'features' is deprecated"):
        ModelCapabilities(outputs={"features": ModelOutput()})


def test_capabilities_json():
    capabilities = ModelCapabilities(
        outputs={
            "energy": energy_output(explicit_gradients=["positions"]),
            "mtt::x": ModelOutput(sample_kind="atom_pair", description="pairs"),
        },
        atomic_types=[8, 1],
        interaction_range=4.25,
        length_unit="A",
        supported_devices=["cpu"],
        dtype="float64",
    )
    expected = {
        "class": "ModelCapabilities",
        "outputs": {
            "energy": {
                "class": "ModelOutput",
                "unit": "eV",
                "sample_kind": "system",
                "explicit_gradients": ["positions"],
                "description": "",
            },
            "mtt::x": {
                "class": "ModelOutput",
                "unit": "",
                "sample_kind": "atom_pair",
                "explicit_gradients": [],
                "description": "pairs",
            },
        },
        "atomic_types": [8, 1],
        "interaction_range": bits(4.25),
        "length_unit": "A",
        "supported_devices": ["cpu"],
        "dtype": "float64",
    }
    assert capabilities.__getstate__()[0] == canonical(expected)

    restored = pickle.loads(pickle.dumps(capabilities))
    assert restored == capabilities
    assert restored.interaction_range == 4.25
    assert restored.outputs["mtt::x"].sample_kind == "atom_pair"

    for value in [math.inf, -1.0, 0.1, 1e-310, -0.0]:
        capabilities.interaction_range = value
        state = capabilities.__getstate__()
        assert json.loads(state[0])["interaction_range"] == bits(value)
        restored = copy.deepcopy(capabilities)
        assert bits(restored.interaction_range) == bits(value)

    capabilities.interaction_range = math.nan
    assert math.isnan(copy.deepcopy(capabilities).interaction_range)

    assert capabilities != ModelCapabilities()
    assert capabilities != "capabilities"


# ============================================================================ #
# ModelEvaluationOptions


def test_options():
    options = ModelEvaluationOptions()
    assert options.length_unit == ""
    assert options.outputs == {}
    assert options.selected_atoms is None

    selected = Labels(["system", "atom"], torch.tensor([[0, 1], [0, 3], [2, 0]]))
    options = ModelEvaluationOptions(
        length_unit="nm",
        outputs={"energy": energy_output()},
        selected_atoms=selected,
    )
    assert options.length_unit == "nm"
    assert options.outputs["energy"] == energy_output()
    assert options.selected_atoms == selected

    options.outputs["mtt::x"] = ModelOutput()
    assert list(options.outputs.keys()) == ["energy", "mtt::x"]

    options.selected_atoms = None
    assert options.selected_atoms is None
    options.length_unit = "bohr"
    assert options.length_unit == "bohr"


def test_options_validation():
    message = (
        "invalid `selected_atoms`: expected Labels with names ['system', 'atom'], "
        "got ['structure', 'atom']"
    )
    wrong = Labels(["structure", "atom"], torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match=re.escape(message)):
        ModelEvaluationOptions(selected_atoms=wrong)

    options = ModelEvaluationOptions()
    with pytest.raises(ValueError, match=re.escape(message)):
        options.selected_atoms = wrong

    with pytest.raises(ValueError, match="incompatible with 'length'"):
        ModelEvaluationOptions(length_unit="eV")
    with pytest.raises(ValueError, match="incompatible with 'length'"):
        options.length_unit = "eV"


def test_options_json():
    selected = Labels(["system", "atom"], torch.tensor([[0, 1], [0, 3], [2, 0]]))
    options = ModelEvaluationOptions(
        length_unit="nm",
        outputs={"energy": energy_output(sample_kind="atom")},
        selected_atoms=selected,
    )
    expected = {
        "class": "ModelEvaluationOptions",
        "length_unit": "nm",
        "selected_atoms": {"names": ["system", "atom"], "values": [0, 1, 0, 3, 2, 0]},
        "outputs": {
            "energy": {
                "class": "ModelOutput",
                "unit": "eV",
                "sample_kind": "atom",
                "explicit_gradients": [],
                "description": "",
            }
        },
    }
    assert options.__getstate__()[0] == canonical(expected)

    restored = pickle.loads(pickle.dumps(options))
    assert restored == options
    assert restored.selected_atoms.values.dtype == torch.int32
    assert torch.equal(restored.selected_atoms.values, selected.values)

    options.selected_atoms = None
    expected["selected_atoms"] = None
    assert options.__getstate__()[0] == canonical(expected)
    restored = copy.deepcopy(options)
    assert restored.selected_atoms is None
    assert restored == options
    assert restored != ModelEvaluationOptions(length_unit="nm")


# ============================================================================ #
# ModelMetadata


def test_metadata():
    metadata = ModelMetadata()
    assert metadata.name == ""
    assert metadata.description == ""
    assert metadata.authors == []
    assert metadata.references == {}
    assert metadata.extra == {}

    metadata = ModelMetadata(
        name="pair",
        description="toy pair model",
        authors=["Me", "You"],
        references={"model": ["ref A"], "implementation": ["ref B"]},
        extra={"version": "1"},
    )
    assert metadata.name == "pair"
    assert metadata.authors == ["Me", "You"]
    assert metadata.references == {"model": ["ref A"], "implementation": ["ref B"]}
    assert metadata.extra == {"version": "1"}

    metadata.name = "other"
    metadata.description = "other model"
    metadata.authors = ["Them"]
    metadata.references = {"architecture": ["ref C"]}
    metadata.extra["key"] = "value"
    assert metadata.name == "other"
    assert metadata.authors == ["Them"]
    assert metadata.references == {"architecture": ["ref C"]}
    assert metadata.extra == {"version": "1", "key": "value"}


def test_metadata_validation():
    with pytest.raises(ValueError, match="authors can not be empty strings"):
        ModelMetadata(authors=["Me", ""])
    metadata = ModelMetadata()
    with pytest.raises(ValueError, match="authors can not be empty strings"):
        metadata.authors = ["  "]

    message = (
        "invalid metadata: unknown key in references 'paper', expected one of "
        "'implementation', 'architecture' or 'model'"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        ModelMetadata(references={"paper": ["ref"]})
    with pytest.raises(ValueError, match="references can not be empty strings"):
        ModelMetadata(references={"model": [""]})
    with pytest.raises(ValueError, match="references can not be empty strings"):
        metadata.references = {"architecture": ["ok", ""]}


def test_metadata_print():
    metadata = ModelMetadata(
        name="pair",
        description="toy pair model",
        authors=["Me"],
        references={"model": ["ref A"]},
    )
    expected = """This is the pair model
======================

toy pair model

Model authors
-------------

- Me

Model references
----------------

Please cite the following references when using this model:
- about this specific model:
  * ref A"""
    assert str(metadata) == expected
    assert repr(metadata) == expected

    assert str(ModelMetadata()) == "This is an unamed model\n======================="

    long = " ".join(["word"] * 30)
    metadata = ModelMetadata(
        description=long + "\n" + "second paragraph",
        authors=["A. Person (University of Somewhere) " + long],
        references={
            "implementation": ["impl"],
            "architecture": ["arch " + long],
            "model": ["model"],
        },
    )
    expected = """This is an unamed model
=======================

word word word word word word word word word word word word word word word word
word word word word word word word word word word word word word word
second paragraph

Model authors
-------------

- A. Person (University of Somewhere) word word word word word word word word
  word word word word word word word word word word word word word word word
  word word word word word word word

Model references
----------------

Please cite the following references when using this model:
- about this specific model:
  * model
- about the architecture of this model:
  * arch word word word word word word word word word word word word word word
    word word word word word word word word word word word word word word word
    word
- about the implementation of this model:
  * impl"""
    assert str(metadata) == expected
    for line in str(metadata).split("\n"):
        assert len(line) <= 80

    metadata = ModelMetadata(description="x" * 81)
    with pytest.raises(ValueError, match="the word 'x+' is too long"):
        str(metadata)


def test_metadata_json():
    metadata = ModelMetadata(
        name="J\u00f6rg's model",
        description='a "model"\twith\ttabs\n\u2603',
        authors=["J\u00f6rg", "\U0001f600"],
        references={"model": ["ref A", "ref B"], "architecture": []},
        extra={"z": "1", "a": "\\"},
    )
    expected = {
        "class": "ModelMetadata",
        "name": "J\u00f6rg's model",
        "description": 'a "model"\twith\ttabs\n\u2603',
        "authors": ["J\u00f6rg", "\U0001f600"],
        "references": {"model": ["ref A", "ref B"], "architecture": []},
        "extra": {"z": "1", "a": "\\"},
    }
    state = metadata.__getstate__()
    assert state[0] == canonical(expected)

    restored = pickle.loads(pickle.dumps(metadata))
    assert restored == metadata
    assert restored.authors == ["J\u00f6rg", "\U0001f600"]
    assert copy.deepcopy(metadata) == metadata
    assert metadata != ModelMetadata(name="J\u00f6rg's model")

    # reading JSON written by other tools (other key order, non-ASCII, escapes)
    text = (
        '{"extra": {}, "authors": ["J\u00f6rg", "\\ud83d\\ude00"], '
        '"name": "n\\/a", "class": "ModelMetadata"}'
    )
    restored = ModelMetadata()
    restored.__setstate__((text,))
    assert restored.authors == ["J\u00f6rg", "\U0001f600"]
    assert restored.name == "n/a"
    assert restored.description == ""
    assert restored.references == {}


# ============================================================================ #
# TorchScript


class DescriptionModule(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.output = ModelOutput(
            unit="eV",
            sample_kind="atom",
            explicit_gradients=["positions"],
            description="\u00e9nergie \U0001f600\r\n\t\b\f\u0001",
        )
        self.capabilities = ModelCapabilities(
            outputs={"energy": self.output, "mtt::x": ModelOutput()},
            atomic_types=[1, 6],
            interaction_range=math.inf,
            length_unit="A",
            supported_devices=["cpu"],
            dtype="float64",
        )
        self.metadata = ModelMetadata(
            name="test",
            description="a test model",
            authors=["J\u00f6rg"],
            references={"model": ["ref"]},
            extra={"key": "value"},
        )
        self.options = ModelEvaluationOptions(
            length_unit="nm",
            outputs={"energy": self.output},
            selected_atoms=Labels(["system", "atom"], torch.tensor([[0, 1], [1, 0]])),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = unit_conversion_factor(self.output.unit, "kJ/mol")
        return x * factor * self.capabilities.engine_interaction_range("nm")

    @torch.jit.export
    def states(self) -> List[str]:
        return [
            self.output.__getstate__()[0],
            self.capabilities.__getstate__()[0],
            self.metadata.__getstate__()[0],
            self.options.__getstate__()[0],
        ]

    @torch.jit.export
    def round_trip(self) -> Tuple[bool, bool, bool, bool]:
        output = ModelOutput()
        output.__setstate__(self.output.__getstate__())
        capabilities = ModelCapabilities()
        capabilities.__setstate__(self.capabilities.__getstate__())
        metadata = ModelMetadata()
        metadata.__setstate__(self.metadata.__getstate__())
        options = ModelEvaluationOptions()
        options.__setstate__(self.options.__getstate__())
        return (
            output == self.output,
            capabilities == self.capabilities,
            metadata == self.metadata,
            options == self.options,
        )

    @torch.jit.export
    def card(self) -> str:
        return self.metadata.__str__()

    @torch.jit.export
    def make(
        self, per_atom: bool, selected: Optional[Labels]
    ) -> Dict[str, ModelOutput]:
        output = ModelOutput("", "eV", per_atom)
        capabilities = ModelCapabilities(
            outputs={"energy": output}, length_unit="A", dtype="float32"
        )
        options = ModelEvaluationOptions(
            length_unit="A", outputs=capabilities.outputs, selected_atoms=selected
        )
        return options.outputs


def test_torchscript_module(tmp_path):
    module = DescriptionModule()
    eager_states = [
        module.output.__getstate__()[0],
        module.capabilities.__getstate__()[0],
        module.metadata.__getstate__()[0],
        module.options.__getstate__()[0],
    ]

    scripted = torch.jit.script(module)
    # the scripted JSON code produces the same text as the Python code
    assert scripted.states() == eager_states
    assert scripted.round_trip() == (True, True, True, True)
    assert scripted.card() == str(module.metadata)

    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert torch.equal(scripted(x), module(x))

    path = tmp_path / "module.pt"
    torch.jit.save(scripted, str(path))
    loaded = torch.jit.load(str(path))

    assert loaded.states() == eager_states
    assert loaded.round_trip() == (True, True, True, True)
    assert loaded.card() == str(module.metadata)
    assert loaded(x)[0] == math.inf

    # attributes come back as instances of the Python classes
    assert isinstance(loaded.capabilities, ModelCapabilities)
    assert loaded.output == module.output
    assert loaded.capabilities == module.capabilities
    assert loaded.metadata == module.metadata
    assert loaded.options == module.options
    assert loaded.options.selected_atoms == module.options.selected_atoms

    with pytest.warns(UserWarning, match="`per_atom` is deprecated"):
        outputs = loaded.make(True, None)
    assert outputs["energy"].sample_kind == "atom"

    # errors raised from scripted code
    with pytest.raises(torch.jit.Error, match="invalid `selected_atoms`"):
        loaded.make(False, Labels(["a", "b"], torch.tensor([[0, 0]])))


def test_scripted_errors():
    @torch.jit.script
    def capabilities(dtype: str) -> ModelCapabilities:
        return ModelCapabilities(dtype=dtype)

    assert capabilities("float64").dtype == "float64"
    with pytest.raises(torch.jit.Error, match="`dtype` can be one of"):
        capabilities("int")
