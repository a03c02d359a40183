"""Saving and loading AtomisticModel files, reading their metadata, and
picking a device."""

import json
import os
import subprocess
import sys
import warnings
import zipfile
from typing import Dict, List, Optional

import pytest
import torch

import metatensor.torch
from metatensor.torch import Labels, TensorMap
from metatensor.torch.atomistic import (
    AtomisticModel,
    ModelCapabilities,
    ModelEvaluationOptions,
    ModelMetadata,
    ModelOutput,
    System,
    _model_files,
    check_atomistic_model,
    is_atomistic_model,
    load_atomistic_model,
    load_model_extensions,
    pick_device,
    read_model_metadata,
)

from ._models import add_neighbor_lists, copper_system, lennard_jones_model


def _energy_and_forces(model, length_unit="angstrom"):
    system = copper_system(requires_grad=True)
    add_neighbor_lists(system, model, length_unit)
    options = ModelEvaluationOptions(
        length_unit=length_unit,
        outputs={"energy": ModelOutput(unit="eV", sample_kind="system")},
    )
    energy = model([system], options, check_consistency=True)["energy"].block().values
    energy.sum().backward()
    return energy.detach(), -system.positions.grad


def test_save_and_load(tmp_path):
    model = lennard_jones_model()
    path = tmp_path / "model.pt"
    model.save(path)
    assert path.exists()
    # no temporary file left behind
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]

    check_atomistic_model(path)
    check_atomistic_model(str(path))
    load_model_extensions(path)
    load_model_extensions(path, extensions_directory=tmp_path)

    loaded = load_atomistic_model(path)
    assert isinstance(loaded, AtomisticModel)
    assert is_atomistic_model(loaded)
    assert isinstance(loaded.module, torch.jit.RecursiveScriptModule)
    assert loaded.metadata().name == "Lennard-Jones"
    assert loaded.capabilities().length_unit == "angstrom"
    assert loaded.capabilities().outputs["energy"].unit == "eV"
    requests = loaded.requested_neighbor_lists()
    assert len(requests) == 1
    assert requests[0].cutoff == 4.0
    assert requests[0].requestors() == ["LennardJones"]

    energy, forces = _energy_and_forces(model)
    loaded_energy, loaded_forces = _energy_and_forces(loaded)
    torch.testing.assert_close(energy, loaded_energy, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(forces, loaded_forces, rtol=1e-12, atol=1e-12)

    # the loaded (TorchScript) model can be saved again
    loaded.save(tmp_path / "again.pt")
    again = load_atomistic_model(tmp_path / "again.pt")
    torch.testing.assert_close(_energy_and_forces(again)[0], energy)

    # and loaded directly with torch
    scripted = torch.jit.load(str(path))
    assert is_atomistic_model(scripted)
    torch.testing.assert_close(_energy_and_forces(scripted)[0], energy)


def test_wrap_again(tmp_path):
    """An AtomisticModel can wrap another one (Python, TorchScript or loaded),
    with new metadata."""
    model = lennard_jones_model()
    energy, forces = _energy_and_forces(model)

    path = tmp_path / "model.pt"
    model.save(path)
    loaded = load_atomistic_model(path)

    metadata = ModelMetadata(name="wrapped again")
    for module in [model, torch.jit.script(model), loaded]:
        wrapped = AtomisticModel(module, metadata, module.capabilities())
        assert wrapped.module is module.module
        requests = wrapped.requested_neighbor_lists()
        assert len(requests) == 1
        assert requests[0].requestors() == ["LennardJones"]
        torch.testing.assert_close(_energy_and_forces(wrapped)[0], energy)

        wrapped.save(tmp_path / "wrapped.pt")
        assert read_model_metadata(tmp_path / "wrapped.pt").name == "wrapped again"
        again = load_atomistic_model(tmp_path / "wrapped.pt")
        assert again.metadata().name == "wrapped again"
        torch.testing.assert_close(_energy_and_forces(again)[1], forces)


def test_wrap_again_deprecated_names():
    with pytest.warns(DeprecationWarning):
        capabilities = ModelCapabilities(
            outputs={"features": ModelOutput()},
            atomic_types=[29],
            interaction_range=0.0,
            length_unit="angstrom",
            supported_devices=["cpu"],
            dtype="float64",
        )
        model = AtomisticModel(
            lennard_jones_model().module, ModelMetadata(), capabilities
        )
    outputs = set(model.capabilities().outputs.keys())
    assert outputs == {"features", "feature"}

    with pytest.warns(DeprecationWarning, match="'features' output name"):
        wrapped = AtomisticModel(model, ModelMetadata(), model.capabilities())
    assert set(wrapped.capabilities().outputs.keys()) == outputs
    assert wrapped._output_names == model._output_names


def test_extra_files(tmp_path):
    metadata = ModelMetadata(
        name="test model",
        authors=["Someone"],
        references={"model": ["a paper"]},
        extra={"key": "value"},
    )
    capabilities = lennard_jones_model().capabilities()
    model = AtomisticModel(lennard_jones_model().module, metadata, capabilities)
    path = tmp_path / "model.pt"
    model.save(path, collect_extensions=tmp_path / "extensions")

    with zipfile.ZipFile(path) as archive:
        extra = {
            name.split("/")[-1]: archive.read(name).decode("utf8")
            for name in archive.namelist()
            if name.split("/")[-2] == "extra"
        }

    assert extra["torch-version"] == torch.__version__
    import metatensor_torch

    assert extra["metatensor-torch-version"] == metatensor_torch.__version__
    assert json.loads(extra["extensions"]) == []
    assert json.loads(extra["extensions-deps"]) == []
    export_metadata = json.loads(extra["export-metadata"])
    assert export_metadata["date"].endswith("+00:00")
    assert export_metadata["extensions_directory"] == str(tmp_path / "extensions")
    assert "-" in export_metadata["platform"]
    assert json.loads(extra["model-metadata"])["name"] == "test model"

    read = read_model_metadata(path)
    assert isinstance(read, ModelMetadata)
    assert read.name == "test model"
    assert read.authors == ["Someone"]
    assert read.references["model"] == ["a paper"]
    assert read.extra == {"key": "value"}
    assert str(read) == str(metadata)


def test_save_file_object(tmp_path):
    model = lennard_jones_model()
    path = tmp_path / "model.pt"
    with open(path, "wb") as file:
        model.save(file)
    check_atomistic_model(path)


def test_save_warnings_and_errors(tmp_path, monkeypatch):
    model = lennard_jones_model(length_unit="")
    with pytest.warns(UserWarning, match="No length unit was provided for the model"):
        model.save(tmp_path / "model.pt")

    model = lennard_jones_model()
    with pytest.warns(DeprecationWarning, match="`AtomisticModel.export\\(\\)` is"):
        model.export(tmp_path / "exported.pt")
    check_atomistic_model(tmp_path / "exported.pt")

    monkeypatch.setenv("PYTORCH_JIT", "0")
    with pytest.raises(RuntimeError, match="found PYTORCH_JIT=0 in the environment"):
        model.save(tmp_path / "other.pt")


class NotScriptable(torch.nn.Module):
    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        return {name: {"not": "scriptable"} for name in outputs}  # noqa: C420


def test_save_not_scriptable(tmp_path):
    capabilities = lennard_jones_model().capabilities()
    model = AtomisticModel(NotScriptable().eval(), ModelMetadata(), capabilities)
    with pytest.raises(RuntimeError, match="could not convert the module to TorchScr"):
        model.save(tmp_path / "model.pt")
    assert not (tmp_path / "model.pt").exists()


def test_check_atomistic_model_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        check_atomistic_model(tmp_path / "missing.pt")

    path = tmp_path / "text.pt"
    path.write_text("hello")
    with pytest.raises(ValueError, match="is not a TorchScript archive"):
        check_atomistic_model(path)

    # a plain TorchScript module
    path = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    with pytest.raises(ValueError, match="does not contain an atomistic model"):
        check_atomistic_model(path)
    with pytest.raises(ValueError, match="does not contain an atomistic model"):
        load_atomistic_model(path)
    with pytest.raises(ValueError, match="does not contain model metadata"):
        read_model_metadata(path)

    # a model saved by the C++ metatomic implementation
    path = tmp_path / "metatomic.pt"
    torch.jit.save(
        torch.jit.script(torch.nn.Linear(2, 2)),
        str(path),
        _extra_files={"metatomic-version": "0.1.19"},
    )
    message = (
        "contains a model exported with the C\\+\\+ metatomic classes "
        "\\(metatomic-torch 0.1.19\\): such models can not be loaded by this "
        "pure-Python implementation"
    )
    with pytest.raises(ValueError, match=message):
        check_atomistic_model(path)

    with pytest.raises(TypeError, match="`path` must be a string or a path"):
        check_atomistic_model(3)


def test_version_compatibility(tmp_path, monkeypatch):
    assert _model_files._version_compatible("0.3.1", "0.3.0")
    assert not _model_files._version_compatible("0.2.0", "0.3.0")
    assert _model_files._version_compatible("1.2.0", "1.5.0")
    assert not _model_files._version_compatible("1.2.0", "2.0.0")

    path = tmp_path / "model.pt"
    monkeypatch.setattr(_model_files, "__version__", "0.1.0")
    lennard_jones_model().save(path)
    monkeypatch.undo()

    with pytest.warns(UserWarning, match="was saved with metatensor-torch v0.1.0"):
        check_atomistic_model(path)


def test_load_in_fresh_process(tmp_path):
    """A model saved here gives the same energy and forces when loaded in
    another Python process (only importing metatensor.torch.atomistic)."""
    model = lennard_jones_model()
    path = tmp_path / "model.pt"
    model.save(path)
    energy, forces = _energy_and_forces(model)

    # the neighbor list pairs, the vectors are computed in the other process
    system = copper_system()
    add_neighbor_lists(system, model, "angstrom")
    options = model.requested_neighbor_lists()[0]
    metatensor.torch.save(tmp_path / "pairs.mts", system.get_neighbor_list(options))

    script = f"""
import json, sys
import torch
import metatensor.torch
from metatensor.torch import TensorBlock
from metatensor.torch.atomistic import ModelEvaluationOptions, ModelOutput, System
from metatensor.torch.atomistic import load_atomistic_model

model = load_atomistic_model(sys.argv[1])
positions = torch.tensor({system.positions.tolist()}, dtype=torch.float64)
positions.requires_grad_(True)
cell = torch.tensor({system.cell.tolist()}, dtype=torch.float64)
system = System(
    types=torch.tensor({system.types.tolist()}, dtype=torch.int32),
    positions=positions,
    cell=cell,
    pbc=torch.tensor([True, True, True]),
)

pairs = metatensor.torch.load_block(sys.argv[2])
samples = pairs.samples.values.to(torch.int64)
vectors = (
    positions[samples[:, 1]] - positions[samples[:, 0]]
    + samples[:, 2:].to(torch.float64) @ cell
)
neighbors = TensorBlock(
    vectors.reshape(-1, 3, 1), pairs.samples, pairs.components, pairs.properties
)
system.add_neighbor_list(model.requested_neighbor_lists()[0], neighbors)

options = ModelEvaluationOptions(
    length_unit="angstrom",
    outputs={{"energy": ModelOutput(unit="eV", sample_kind="system")}},
)
energy = model([system], options, check_consistency=True)["energy"].block().values
energy.sum().backward()
print(json.dumps({{
    "energy": energy.detach().reshape(-1).tolist(),
    "forces": (-positions.grad).tolist(),
}}))
"""
    environment = dict(os.environ)
    environment["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    result = subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "pairs.mts")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    torch.testing.assert_close(
        torch.tensor(output["energy"], dtype=torch.float64),
        energy.reshape(-1),
        rtol=1e-14,
        atol=1e-14,
    )
    torch.testing.assert_close(
        torch.tensor(output["forces"], dtype=torch.float64),
        forces,
        rtol=1e-12,
        atol=1e-12,
    )


# ============================================================================ #
# pick_device


def test_pick_device():
    assert pick_device(["cpu"]) == "cpu"
    assert pick_device(["cpu"], "cpu") == "cpu"

    if not torch.cuda.is_available():
        assert pick_device(["cuda", "cpu"]) == "cpu"
        with pytest.raises(ValueError, match="it is not available on this system"):
            pick_device(["cuda", "cpu"], "cuda")
        with pytest.raises(ValueError, match="no available device found"):
            pick_device(["cuda"])
    else:
        assert pick_device(["cuda", "cpu"]) == "cuda"
        assert pick_device(["cuda", "cpu"], "cuda:0") == "cuda:0"

    with pytest.raises(ValueError, match="it is not supported by this model"):
        pick_device(["cpu"], "meta")

    with pytest.warns(UserWarning, match="unknown device type 'tpu'"):
        assert pick_device(["tpu", "cpu"]) == "cpu"

    with pytest.raises(ValueError, match="invalid desired device 'cpu:x'"):
        pick_device(["cpu"], "cpu:x")

    with pytest.raises(TypeError, match="`model_devices` must be a list of strings"):
        pick_device("cpu")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pick_device(["meta", "cpu"]) == "meta"
