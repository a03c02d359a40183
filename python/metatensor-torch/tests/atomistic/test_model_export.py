"""``torch.export`` of an AtomisticModel.

``System``, ``ModelOutput`` and ``ModelEvaluationOptions`` are registered as
pytree nodes when ``metatensor.torch.atomistic`` is imported; the model is
exported with the number of pairs in the neighbor list as a dynamic dimension.
"""

from typing import List

import pytest
import torch

from metatensor.torch.atomistic import ModelEvaluationOptions, ModelOutput

from ._models import add_neighbor_lists, copper_system, lennard_jones_model


def test_pytree_round_trip():
    model = lennard_jones_model()
    system = copper_system()
    add_neighbor_lists(system, model, "angstrom")
    system.add_data("mass", _masses(system))
    options = ModelEvaluationOptions(
        length_unit="angstrom",
        outputs={"energy": ModelOutput(unit="eV", sample_kind="atom")},
    )

    leaves, spec = torch.utils._pytree.tree_flatten(([system], options))
    assert all(isinstance(leaf, torch.Tensor) for leaf in leaves if leaf is not None)
    [new_system], new_options = torch.utils._pytree.tree_unflatten(leaves, spec)

    assert new_system.positions is system.positions
    assert new_system.known_neighbor_lists() == system.known_neighbor_lists()
    for neighbors in system.known_neighbor_lists():
        assert new_system.get_neighbor_list(neighbors).values is (
            system.get_neighbor_list(neighbors).values
        )
    assert new_system.known_data() == ["mass"]
    assert new_options.length_unit == "angstrom"
    assert new_options.outputs["energy"].sample_kind == "atom"


def _masses(system):
    from metatensor.torch import Labels, TensorBlock, TensorMap

    n_atoms = len(system)
    samples = torch.stack(
        [
            torch.zeros(n_atoms, dtype=torch.int32),
            torch.arange(n_atoms, dtype=torch.int32),
        ],
        dim=1,
    )
    block = TensorBlock(
        torch.full((n_atoms, 1), 63.5, dtype=system.positions.dtype),
        Labels(["system", "atom"], samples),
        [],
        Labels(["mass"], torch.tensor([[0]])),
    )
    tensor = TensorMap(Labels(["_"], torch.tensor([[0]])), [block])
    tensor.set_info("unit", "u")
    return tensor


def _energy_and_forces(function, model, seed):
    system = copper_system(seed=seed, rattle=0.2, requires_grad=True)
    add_neighbor_lists(system, model, "angstrom")
    options = ModelEvaluationOptions(
        length_unit="angstrom",
        outputs={"energy": ModelOutput(unit="eV", sample_kind="system")},
    )
    energy = function([system], options, False)["energy"].block().values.sum()
    (forces,) = torch.autograd.grad(-energy, system.positions)
    n_pairs = system.get_neighbor_list(model.requested_neighbor_lists()[0]).shape[0]
    return energy.detach(), forces, n_pairs


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_export_atomistic_model():
    model = lennard_jones_model()
    system = copper_system()
    add_neighbor_lists(system, model, "angstrom")
    options = ModelEvaluationOptions(
        length_unit="angstrom",
        outputs={"energy": ModelOutput(unit="eV", sample_kind="system")},
    )
    neighbors = system.get_neighbor_list(model.requested_neighbor_lists()[0])

    # the number of pairs changes from one structure to the next
    shapes = torch.export.ShapesCollection()
    pairs = torch.export.Dim("pairs")
    shapes[neighbors.values] = {0: pairs}
    shapes[neighbors.samples.values] = {0: pairs}

    arguments = ([system], options, False)
    exported = torch.export.export(
        model,
        arguments,
        dynamic_shapes=shapes.dynamic_shapes(model, arguments),
        strict=False,
    )
    module = exported.module()

    all_pairs: List[int] = []
    for seed in [1, 2]:
        energy, forces, n_pairs = _energy_and_forces(module, model, seed)
        reference, reference_forces, _ = _energy_and_forces(model, model, seed)
        torch.testing.assert_close(energy, reference, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(forces, reference_forces, rtol=1e-12, atol=1e-12)
        all_pairs.append(n_pairs)

    assert all_pairs[0] != all_pairs[1]
    assert all_pairs[0] != neighbors.shape[0]
