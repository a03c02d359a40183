"""Tests of the ASE calculator (``metatensor.torch.atomistic.ase_calculator``)."""

import math
import re
import subprocess
import sys
import warnings
from typing import Dict, List, Optional

import numpy as np
import pytest
import torch


pytest.importorskip("ase")
pytest.importorskip("vesin")

import ase.build  # noqa: E402
from ase.calculators.calculator import PropertyNotImplementedError  # noqa: E402
from ase.calculators.fd import (  # noqa: E402
    calculate_numerical_forces,
    calculate_numerical_stress,
)

from metatensor.torch import Labels, TensorMap  # noqa: E402
from metatensor.torch.atomistic import (  # noqa: E402
    AtomisticModel,
    ModelOutput,
    System,
)
from metatensor.torch.atomistic.ase_calculator import (  # noqa: E402
    MetatensorCalculator,
    MetatomicCalculator,
    SymmetrizedCalculator,
    rotation_quadrature,
)

from ._models import OutputBuilder, PairPotential, wrap  # noqa: E402


# the systems are small: torch's intra-op threads only add overhead
pytestmark = pytest.mark.usefixtures("single_thread")


# ============================================================================ #
# test models


class InputsModel(OutputBuilder):
    """A model without neighbor lists whose energy is built from its inputs:
    the kinetic energy sum(p^2 / 2m) from ``momentum`` and ``mass``, plus the
    total ``charge`` of the system (from ``atoms.info``) in eV."""

    def requested_inputs(self) -> Dict[str, ModelOutput]:
        return {
            "momentum": ModelOutput(unit="(eV*u)^(1/2)", sample_kind="atom"),
            "mass": ModelOutput(unit="u", sample_kind="atom"),
            "charge": ModelOutput(unit="e", sample_kind="system"),
        }

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        energies: List[torch.Tensor] = []
        for system in systems:
            momenta = system.get_data("momentum").block().values.reshape(-1, 3)
            masses = system.get_data("mass").block().values.reshape(-1)
            charge = system.get_data("charge").block().values.reshape(-1)
            kinetic = (momenta**2).sum(dim=1) / (2.0 * masses)
            energies.append(kinetic.sum() + charge.sum())
        return {"energy": self._system_scalars(energies)}


def all_outputs() -> Dict[str, ModelOutput]:
    return {
        "energy": ModelOutput(unit="eV", sample_kind="atom", description="energy"),
        "energy/doubled": ModelOutput(
            unit="eV", sample_kind="atom", description="twice the energy"
        ),
        "energy_uncertainty": ModelOutput(unit="eV", sample_kind="atom"),
        "non_conservative_force": ModelOutput(unit="eV/Angstrom", sample_kind="atom"),
        "non_conservative_stress": ModelOutput(
            unit="eV/Angstrom^3", sample_kind="system"
        ),
    }


# ============================================================================ #
# structures


def periodic_cu() -> "ase.Atoms":
    atoms = ase.build.bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 2, 2))
    rng = np.random.default_rng(1)
    atoms.positions += rng.normal(scale=0.1, size=atoms.positions.shape)
    # a non-orthogonal cell
    atoms.set_cell(atoms.cell.array + np.array([[0, 0, 0], [0.3, 0, 0], [0.2, 0.1, 0]]))
    return atoms


def molecule() -> "ase.Atoms":
    atoms = ase.build.molecule("CH3CH2OH")
    atoms.positions *= 1.4  # spread the atoms out, where the potential is soft
    return atoms


def slab() -> "ase.Atoms":
    atoms = ase.build.fcc111("Cu", size=(2, 2, 3), a=3.7, vacuum=5.0)
    rng = np.random.default_rng(3)
    atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
    assert atoms.pbc.tolist() == [True, True, False]
    return atoms


@pytest.fixture(scope="module")
def model() -> AtomisticModel:
    return wrap(PairPotential(), outputs=all_outputs())


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("model") / "pair.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        wrap(PairPotential(), outputs=all_outputs()).save(str(path))
    return str(path)


def reference_energy(atoms: "ase.Atoms", full: bool = False) -> float:
    """Direct evaluation of the pair potential with ASE's neighbor list."""
    from ase.neighborlist import neighbor_list

    potential = PairPotential()
    i, j, d = neighbor_list("ijd", atoms, potential.cutoff)
    energy = potential.pair_energy(torch.tensor(d, dtype=torch.float64))
    return 0.5 * float(energy.sum())


# ============================================================================ #
# tests


@pytest.mark.parametrize("make_atoms", [periodic_cu, molecule, slab])
def test_energy_forces_stress(model, make_atoms):
    atoms = make_atoms()
    atoms.calc = MetatomicCalculator(model, check_consistency=True)

    energy = atoms.get_potential_energy()
    assert energy == pytest.approx(reference_energy(atoms), rel=1e-10)
    assert atoms.get_total_energy() == pytest.approx(energy)
    assert atoms.calc.get_property("free_energy") == energy

    forces = atoms.get_forces()
    numerical = calculate_numerical_forces(atoms, eps=1e-5)
    np.testing.assert_allclose(forces, numerical, atol=1e-7)
    assert np.abs(forces).max() > 1e-2  # the test is not trivial

    if atoms.pbc.all():
        stress = atoms.get_stress()
        numerical = calculate_numerical_stress(atoms, eps=1e-6)
        np.testing.assert_allclose(stress, numerical, atol=1e-8)
        assert np.abs(stress).max() > 1e-4


def test_per_atom_energies(model):
    for atoms in [periodic_cu(), molecule()]:
        atoms.calc = MetatomicCalculator(model)
        energies = atoms.get_potential_energies()
        assert energies.shape == (len(atoms),)
        assert energies.sum() == pytest.approx(atoms.get_potential_energy(), 1e-12)
        assert np.unique(energies).size > 1


def test_stress_mixed_pbc(model):
    atoms = slab()
    atoms.calc = MetatomicCalculator(model)
    with pytest.warns(UserWarning, match="stress is only well defined"):
        stress = atoms.get_stress()
    numerical = calculate_numerical_stress(atoms, eps=1e-6)
    # only the in-plane components are meaningful for a slab
    np.testing.assert_allclose(stress[[0, 1, 5]], numerical[[0, 1, 5]], atol=1e-8)

    atoms = molecule()
    atoms.calc = MetatomicCalculator(model)
    with pytest.warns(UserWarning, match="stress is only well defined"):
        with pytest.raises(ValueError, match="without a cell"):
            atoms.get_stress()


def test_full_neighbor_list():
    half = periodic_cu()
    half.calc = MetatomicCalculator(wrap(PairPotential(full_list=False)))
    full = periodic_cu()
    full.calc = MetatomicCalculator(wrap(PairPotential(full_list=True)))
    assert full.get_potential_energy() == pytest.approx(
        half.get_potential_energy(), rel=1e-12
    )
    np.testing.assert_allclose(full.get_forces(), half.get_forces(), atol=1e-12)
    np.testing.assert_allclose(full.get_stress(), half.get_stress(), atol=1e-12)


def test_results_reused_and_recomputed(model):
    atoms = periodic_cu()
    atoms.calc = MetatomicCalculator(model)
    energy = atoms.get_potential_energy()
    # forces and stress were computed with the energy (do_gradients_with_energy)
    assert "forces" in atoms.calc.results
    assert "stress" in atoms.calc.results
    atoms.positions[0, 0] += 0.1
    assert atoms.get_potential_energy() != energy

    atoms.calc = MetatomicCalculator(model, do_gradients_with_energy=False)
    atoms.get_potential_energy()
    assert "forces" not in atoms.calc.results
    atoms.get_forces()
    assert "stress" in atoms.calc.results  # computed with the forces (periodic)


def test_saved_and_loaded(model, saved_model):
    atoms = periodic_cu()
    atoms.calc = MetatomicCalculator(model)
    expected = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()

    for calculator in [
        MetatomicCalculator(saved_model),
        MetatensorCalculator(saved_model, check_consistency=True),
    ]:
        atoms.calc = calculator
        assert atoms.get_potential_energy() == pytest.approx(expected[0], rel=1e-12)
        np.testing.assert_allclose(atoms.get_forces(), expected[1], atol=1e-12)
        np.testing.assert_allclose(atoms.get_stress(), expected[2], atol=1e-12)

    calculator = MetatomicCalculator(saved_model, neighbor_skin=1.0)
    parameters = calculator.todict()
    assert parameters["model"] == saved_model
    assert parameters["neighbor_skin"] == 1.0
    copy = MetatomicCalculator.fromdict(parameters)
    assert copy.todict() == parameters
    assert copy.metadata().name == "pair"

    with pytest.raises(RuntimeError, match="path to a saved model"):
        MetatomicCalculator(model).todict()


def test_scripted_model(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(model)
    atoms = molecule()
    atoms.calc = MetatomicCalculator(scripted)
    energy = atoms.get_potential_energy()
    assert energy == pytest.approx(reference_energy(atoms), rel=1e-10)
    assert isinstance(atoms.calc.model(), torch.jit.ScriptModule)


def test_float32():
    atoms = periodic_cu()
    atoms.calc = MetatomicCalculator(wrap(PairPotential(), dtype="float64"))
    expected = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()

    atoms.calc = MetatomicCalculator(wrap(PairPotential(), dtype="float32"))
    assert atoms.calc._evaluator.dtype == torch.float32
    energy = atoms.get_potential_energy()
    assert isinstance(energy, float)
    assert energy == pytest.approx(expected[0], rel=1e-5)
    forces = atoms.get_forces()
    assert forces.dtype == np.float64
    np.testing.assert_allclose(forces, expected[1], atol=1e-5)
    np.testing.assert_allclose(atoms.get_stress(), expected[2], atol=1e-6)


def test_compute_energy(model):
    structures = [periodic_cu(), molecule(), slab()]
    calculator = MetatomicCalculator(model)

    batched = calculator.compute_energy(
        structures, compute_forces_and_stresses=True, per_atom=True
    )
    assert "stress" not in batched  # not all structures are periodic
    assert len(batched["energy"]) == 3
    for i, atoms in enumerate(structures):
        single = calculator.compute_energy(
            atoms, compute_forces_and_stresses=True, per_atom=True
        )
        assert isinstance(single["energy"], float)
        assert batched["energy"][i] == pytest.approx(single["energy"], rel=1e-12)
        np.testing.assert_allclose(batched["forces"][i], single["forces"], atol=1e-12)
        np.testing.assert_allclose(
            batched["energies"][i], single["energies"], atol=1e-12
        )
        assert single["energies"].sum() == pytest.approx(single["energy"])
        atoms.calc = MetatomicCalculator(model)
        assert single["energy"] == pytest.approx(atoms.get_potential_energy())
        np.testing.assert_allclose(single["forces"], atoms.get_forces(), atol=1e-12)

    periodic = [periodic_cu(), periodic_cu()]
    periodic[1].positions *= 1.01
    periodic[1].set_cell(periodic[1].cell * 1.01)
    result = calculator.compute_energy(periodic, compute_forces_and_stresses=True)
    for atoms, stress in zip(periodic, result["stress"]):
        assert stress.shape == (3, 3)
        atoms.calc = MetatomicCalculator(model)
        np.testing.assert_allclose(atoms.get_stress(voigt=False), stress, atol=1e-12)

    only_energy = calculator.compute_energy(structures)
    assert sorted(only_energy.keys()) == ["energy"]


def test_run_model(model):
    atoms = periodic_cu()
    calculator = MetatomicCalculator(model)
    outputs = calculator.run_model(
        [atoms, atoms], {"energy": ModelOutput(unit="eV", sample_kind="atom")}
    )
    block = outputs["energy"].block()
    assert block.values.shape == (2 * len(atoms), 1)
    assert block.samples.names == ["system", "atom"]
    assert float(block.values.sum()) == pytest.approx(
        2 * reference_energy(atoms), rel=1e-10
    )

    outputs = calculator.run_model(
        atoms, {"energy/doubled": ModelOutput(unit="eV", sample_kind="system")}
    )
    assert float(outputs["energy/doubled"].block().values[0, 0]) == pytest.approx(
        2 * reference_energy(atoms), rel=1e-10
    )


def test_variants(model):
    atoms = molecule()
    atoms.calc = MetatomicCalculator(model, variants={"energy": "doubled"})
    assert atoms.get_potential_energy() == pytest.approx(
        2 * reference_energy(atoms), rel=1e-10
    )
    # the energy variant is the default of the other outputs, which do not
    # have it here
    assert atoms.calc._evaluator.keys["non_conservative_force"] is None
    with pytest.raises(ValueError, match="needs the 'non_conservative_force' output"):
        MetatomicCalculator(
            model, variants={"energy": "doubled"}, non_conservative=True
        )
    # unless given explicitly (None = the output without variant)
    calculator = MetatomicCalculator(
        model,
        variants={
            "energy": "doubled",
            "non_conservative_force": None,
            "non_conservative_stress": None,
        },
        non_conservative=True,
    )
    atoms.calc = calculator
    assert atoms.get_potential_energy() == pytest.approx(
        2 * reference_energy(atoms), rel=1e-10
    )
    assert (
        calculator._evaluator.keys["non_conservative_force"] == "non_conservative_force"
    )

    with pytest.raises(ValueError, match="unknown key 'forces' in `variants`"):
        MetatomicCalculator(model, variants={"forces": "x"})
    with pytest.raises(ValueError):
        MetatomicCalculator(model, variants={"energy": "missing"})


@pytest.mark.parametrize("mode", [True, "forces", "stress"])
def test_non_conservative(model, mode):
    atoms = periodic_cu()
    atoms.calc = MetatomicCalculator(model)
    expected_forces = atoms.get_forces()
    expected_stress = atoms.get_stress()

    atoms.calc = MetatomicCalculator(model, non_conservative=mode)
    forces = atoms.get_forces()
    stress = atoms.get_stress()
    # the model adds 0.25 to the analytical forces, removed with the net force
    np.testing.assert_allclose(forces, expected_forces, atol=1e-10)
    np.testing.assert_allclose(stress, expected_stress, atol=1e-10)
    assert atoms.get_potential_energy() == pytest.approx(reference_energy(atoms))

    energy_only = wrap(PairPotential())
    with pytest.raises(ValueError, match="'non_conservative_force' output"):
        MetatomicCalculator(energy_only, non_conservative=True)
    with pytest.raises(ValueError, match="`non_conservative` must be"):
        MetatomicCalculator(model, non_conservative="yes")


def test_uncertainty_warning():
    outputs = all_outputs()
    atoms = molecule()  # C2H6O: one atom of type 8

    calculator = MetatomicCalculator(
        wrap(PairPotential(uncertainty=0.5), outputs=outputs)
    )
    atoms.calc = calculator
    oxygen = [i for i, n in enumerate(atoms.numbers) if n == 8]
    message = re.escape(f"threshold of 0.1 eV: atoms {oxygen}")
    with pytest.warns(UserWarning, match=message):
        atoms.get_potential_energy()

    for uncertainty, threshold in [(0.05, 0.1), (0.5, None), (0.5, 0.0)]:
        atoms = molecule()
        atoms.calc = MetatomicCalculator(
            wrap(PairPotential(uncertainty=uncertainty), outputs=outputs),
            uncertainty_threshold=threshold,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            atoms.get_potential_energy()


def test_additional_outputs(model):
    atoms = periodic_cu()
    requested = {"energy/doubled": ModelOutput(unit="eV", sample_kind="atom")}
    atoms.calc = MetatomicCalculator(model, additional_outputs=requested)
    energy = atoms.get_potential_energy()
    extra = atoms.calc.additional_outputs
    assert list(extra.keys()) == ["energy/doubled"]
    assert extra["energy/doubled"].block().values.shape == (len(atoms), 1)
    values = extra["energy/doubled"].block().values.detach()
    assert float(values.sum()) == pytest.approx(2 * energy)

    with pytest.raises(TypeError, match="dict of str -> ModelOutput"):
        MetatomicCalculator(model, additional_outputs={"energy": 1})


def test_inputs_and_cache_invalidation():
    model = wrap(InputsModel(), outputs={"energy": ModelOutput(unit="eV")})
    atoms = molecule()
    rng = np.random.default_rng(0)
    atoms.set_momenta(rng.normal(size=(len(atoms), 3)))
    atoms.info["charge"] = 2.0
    atoms.calc = MetatomicCalculator(model, check_consistency=True)

    expected = atoms.get_kinetic_energy() + 2.0
    assert atoms.get_potential_energy() == pytest.approx(expected, rel=1e-12)

    # changing the inputs invalidates the results
    atoms.info["charge"] = -1.0
    expected = atoms.get_kinetic_energy() - 1.0
    assert atoms.get_potential_energy() == pytest.approx(expected, rel=1e-12)

    atoms.set_momenta(2 * atoms.get_momenta())
    expected = atoms.get_kinetic_energy() - 1.0
    assert atoms.get_potential_energy() == pytest.approx(expected, rel=1e-12)

    # the energy does not depend on the positions
    with pytest.raises(RuntimeError, match="not differentiable"):
        atoms.get_forces()


def test_model_without_energy():
    outputs = {
        "non_conservative_force": ModelOutput(unit="eV/Angstrom", sample_kind="atom")
    }
    calculator = MetatomicCalculator(wrap(PairPotential(), outputs=outputs))
    atoms = periodic_cu()
    atoms.calc = calculator
    with pytest.raises(PropertyNotImplementedError, match="no 'energy' output"):
        atoms.get_potential_energy()

    results = calculator.run_model(
        atoms,
        {"non_conservative_force": ModelOutput(unit="eV/Angstrom", sample_kind="atom")},
    )
    assert results["non_conservative_force"].block().values.shape == (len(atoms), 3, 1)


def test_unsupported_property(model):
    atoms = periodic_cu()
    atoms.calc = MetatomicCalculator(model)
    with pytest.raises(PropertyNotImplementedError, match="can not compute 'dipole'"):
        atoms.get_dipole_moment()


def test_invalid_model():
    with pytest.raises(TypeError, match="must be an AtomisticModel"):
        MetatomicCalculator(PairPotential())
    with pytest.raises(TypeError, match="must be an AtomisticModel"):
        MetatomicCalculator(3)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        MetatomicCalculator("this-file-does-not-exist.pt")


def test_device_and_dtype(model):
    calculator = MetatomicCalculator(model, device="cpu")
    assert calculator._evaluator.device == torch.device("cpu")
    assert calculator._evaluator.dtype == torch.float64
    with pytest.raises(ValueError):
        MetatomicCalculator(model, device="cuda")


def test_smooth_cutoff():
    # the pair energy and its derivative go to zero at the cutoff
    potential = PairPotential()
    r = torch.tensor([potential.cutoff], dtype=torch.float64)
    assert float(potential.pair_energy(r)) == pytest.approx(0.0, abs=1e-14)
    assert float(potential.pair_derivative(r)) == pytest.approx(0.0, abs=1e-14)
    r = torch.linspace(2.0, 4.4, 7, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(potential.pair_energy(r).sum(), r)
    np.testing.assert_allclose(grad, potential.pair_derivative(r).detach(), atol=1e-12)
    assert math.isfinite(float(potential.pair_energy(r).detach().sum()))


def test_rotation_quadrature():
    u = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
    v = np.array([0.1, -0.7, 0.2]) / np.linalg.norm([0.1, -0.7, 0.2])
    for l_max in [2, 3, 4]:
        rotations, weights = rotation_quadrature(l_max, include_inversion=False)
        assert weights.sum() == pytest.approx(1.0)
        identity = np.einsum("kji,kjl->kil", rotations, rotations)
        np.testing.assert_allclose(
            identity, np.broadcast_to(np.eye(3), identity.shape), atol=1e-12
        )
        np.testing.assert_allclose(np.linalg.det(rotations), 1.0)
        # (R u . v)^k has components up to l = k: averages over SO(3) are
        # 0, 1/3, 0, 1/5 for k = 1..4
        x = (rotations @ u) @ v
        for k, expected in zip(range(1, l_max + 1), [0.0, 1 / 3, 0.0, 1 / 5]):
            assert np.dot(weights, x**k) == pytest.approx(expected, abs=1e-14)

    rotations, weights = rotation_quadrature(2, include_inversion=True)
    np.testing.assert_allclose(np.sort(np.linalg.det(rotations)), [-1] * 18 + [1] * 18)
    with pytest.raises(ValueError, match="`l_max` must be non-negative"):
        rotation_quadrature(-1)


@pytest.mark.parametrize("make_atoms", [periodic_cu, molecule])
def test_symmetrized_calculator(make_atoms):
    anisotropy = 0.3
    base = MetatomicCalculator(wrap(PairPotential(anisotropy=anisotropy)))
    isotropic = make_atoms()
    isotropic.calc = MetatomicCalculator(wrap(PairPotential()))
    scale = 1.0 + anisotropy / 3.0

    atoms = make_atoms()
    atoms.calc = base
    # the model is not invariant: rotating the structure changes the energy
    rotated = atoms.copy()
    rotated.rotate(40, "x", rotate_cell=True)
    rotated.calc = base
    assert abs(rotated.get_potential_energy() - atoms.get_potential_energy()) > 1e-3

    for batch_size in [None, 7]:
        atoms.calc = SymmetrizedCalculator(
            base, l_max=2, batch_size=batch_size, store_rotational_std=True
        )
        expected = scale * isotropic.get_potential_energy()
        assert atoms.get_potential_energy() == pytest.approx(expected, rel=1e-10)
        assert atoms.calc.results["energy_rotational_std"] > 1e-4
        np.testing.assert_allclose(
            atoms.get_forces(), scale * isotropic.get_forces(), atol=1e-10
        )
        if atoms.pbc.all():
            np.testing.assert_allclose(
                atoms.get_stress(), scale * isotropic.get_stress(), atol=1e-10
            )

    with pytest.raises(TypeError, match="must be a MetatomicCalculator"):
        SymmetrizedCalculator(isotropic)
    with pytest.raises(NotImplementedError, match="apply_space_group_symmetry"):
        SymmetrizedCalculator(base, apply_space_group_symmetry=True)


def test_ase_inputs():
    from metatensor.torch.atomistic._ase_inputs import ase_input

    atoms = molecule()
    n = len(atoms)
    rng = np.random.default_rng(2)
    atoms.set_momenta(rng.normal(size=(n, 3)))
    atoms.set_initial_magnetic_moments(rng.normal(size=(n, 3)))
    atoms.set_tags(np.arange(n))
    atoms.arrays["forces_ref"] = rng.normal(size=(n, 3))
    atoms.info["spin"] = 3
    atoms.info["field"] = [0.1, 0.2, 0.3]

    def get(name, sample_kind="atom"):
        request = ModelOutput(sample_kind=sample_kind)
        return ase_input(atoms, name, request, torch.float64, torch.device("cpu"))

    velocity = get("velocity")
    block = velocity.block()
    assert velocity.get_info("unit") == "(eV/u)^(1/2)"
    assert block.samples.names == ["system", "atom"]
    assert block.samples.values[:, 0].tolist() == [0] * n
    assert [c.names for c in block.components] == [["xyz"]]
    assert block.properties.names == ["velocity"]
    np.testing.assert_allclose(block.values[:, :, 0], atoms.get_velocities())

    mass = get("mass")
    assert mass.get_info("unit") == "u"
    assert mass.block().values.shape == (n, 1)
    np.testing.assert_allclose(mass.block().values[:, 0], atoms.get_masses())

    momentum = get("momentum").block()
    np.testing.assert_allclose(momentum.values[:, :, 0], atoms.get_momenta())

    magmoms = get("ase::initial_magmoms").block()
    assert magmoms.values.shape == (n, 3, 1)
    assert magmoms.properties.names == ["initial_magmoms"]
    np.testing.assert_allclose(
        magmoms.values[:, :, 0], atoms.get_initial_magnetic_moments()
    )

    tags = get("ase::tags").block()
    assert tags.values[:, 0].tolist() == list(range(n))
    custom = get("ase::arrays::forces_ref").block()
    np.testing.assert_allclose(custom.values[:, :, 0], atoms.arrays["forces_ref"])

    spin = get("spin_multiplicity", "system")
    assert spin.block().samples.names == ["system"]
    assert spin.block().values.tolist() == [[3.0]]
    charge = get("charge", "system").block()
    assert charge.values.tolist() == [[0.0]]
    field = get("ase::info::field", "system").block()
    assert field.values.tolist() == [[0.1, 0.2, 0.3]]

    with pytest.raises(ValueError, match="no 'missing' array"):
        get("ase::arrays::missing")
    with pytest.raises(ValueError, match="no 'missing' entry in `info`"):
        get("ase::info::missing", "system")
    with pytest.raises(ValueError, match="can not get from ASE atoms"):
        get("energy")


def test_no_ase_import():
    # importing the atomistic module must not import ase or vesin
    code = (
        "import sys, metatensor.torch.atomistic; "
        "assert 'ase' not in sys.modules, 'ase'; "
        "assert 'vesin' not in sys.modules, 'vesin'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
