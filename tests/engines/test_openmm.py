"""The OpenMM force of ``metatensor.torch.atomistic.openmm`` against the ASE
calculator: periodic and non-periodic systems, a subset of the atoms beside a
classical force, and the example script of ``examples/engines/openmm``."""

import pathlib
import sys

import numpy as np
import pytest


pytest.importorskip("openmm")
pytest.importorskip("ase")

import openmm  # noqa: E402
import openmm.app  # noqa: E402
import openmm.unit as unit  # noqa: E402

from metatensor.torch.atomistic.ase_calculator import MetatomicCalculator  # noqa: E402
from metatensor.torch.atomistic.openmm import get_metatensor_force  # noqa: E402


ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "engines"))
sys.path.insert(0, str(ROOT / "examples" / "engines" / "openmm"))

from many_body_model import many_body_model  # noqa: E402
from run_openmm import cu_al_cell, main, openmm_topology  # noqa: E402


EV = 96.48533212331  # kJ/mol
EV_PER_ANGSTROM = EV * 10  # kJ/mol/nm


@pytest.fixture(scope="module")
def model():
    return many_body_model()


def _context(topology, forces, masses):
    system = openmm.System()
    for mass in masses:
        system.addParticle(mass)
    if topology.getPeriodicBoxVectors() is not None:
        system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    for force in forces:
        system.addForce(force)
    integrator = openmm.VerletIntegrator(1 * unit.femtosecond)
    platform = openmm.Platform.getPlatformByName("Reference")
    return openmm.Context(system, integrator, platform)


def _energy_forces(context, groups=-1):
    state = context.getState(getEnergy=True, getForces=True, groups=groups)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    forces = state.getForces(asNumpy=True).value_in_unit(
        unit.kilojoule_per_mole / unit.nanometer
    )
    return energy, forces


def _reference(model, atoms):
    atoms = atoms.copy()
    atoms.calc = MetatomicCalculator(model)
    return atoms.get_potential_energy() * EV, atoms.get_forces() * EV_PER_ANGSTROM


def _cluster():
    atoms = cu_al_cell()[:40]
    atoms.pbc = False
    atoms.cell = np.zeros((3, 3))
    return atoms


def test_periodic(model):
    atoms = cu_al_cell()
    topology = openmm_topology(atoms)
    force = get_metatensor_force(model, topology)
    assert force.usesPeriodicBoundaryConditions()
    context = _context(topology, [force], atoms.get_masses())
    context.setPositions(atoms.positions * 0.1 * unit.nanometer)

    energy, forces = _energy_forces(context)
    reference_energy, reference_forces = _reference(model, atoms)
    np.testing.assert_allclose(energy, reference_energy, rtol=1e-8)
    np.testing.assert_allclose(forces, reference_forces, rtol=1e-8, atol=1e-8)

    # the box of the context (changed by a barostat for example) is used
    atoms.set_cell(atoms.cell.array * 1.02, scale_atoms=True)
    context.setPeriodicBoxVectors(*(atoms.cell.array * 0.1 * unit.nanometer))
    context.setPositions(atoms.positions * 0.1 * unit.nanometer)
    energy, forces = _energy_forces(context)
    reference_energy, reference_forces = _reference(model, atoms)
    np.testing.assert_allclose(energy, reference_energy, rtol=1e-8)
    np.testing.assert_allclose(forces, reference_forces, rtol=1e-8, atol=1e-8)


def test_non_periodic(model):
    atoms = _cluster()
    topology = openmm_topology(atoms)
    assert topology.getPeriodicBoxVectors() is None
    force = get_metatensor_force(model, topology)
    assert not force.usesPeriodicBoundaryConditions()
    context = _context(topology, [force], atoms.get_masses())
    context.setPositions(atoms.positions * 0.1 * unit.nanometer)

    energy, forces = _energy_forces(context)
    reference_energy, reference_forces = _reference(model, atoms)
    np.testing.assert_allclose(energy, reference_energy, rtol=1e-8)
    np.testing.assert_allclose(forces, reference_forces, rtol=1e-8, atol=1e-8)


def test_subset_with_classical_force(model):
    atoms = _cluster()
    topology = openmm_topology(atoms)
    subset = np.arange(5, 30)
    others = np.setdiff1d(np.arange(len(atoms)), subset)

    force = get_metatensor_force(model, topology, atoms=subset, force_group=1)
    assert force.getForceGroup() == 1
    # a classical force on the other atoms (a harmonic restraint to the origin)
    classical = openmm.CustomExternalForce("k * (x^2 + y^2 + z^2)")
    classical.addGlobalParameter("k", 100.0)
    for index in others:
        classical.addParticle(int(index), [])
    context = _context(topology, [force, classical], atoms.get_masses())
    context.setPositions(atoms.positions * 0.1 * unit.nanometer)

    energy, forces = _energy_forces(context, groups={1})
    reference_energy, reference_forces = _reference(model, atoms[subset])
    np.testing.assert_allclose(energy, reference_energy, rtol=1e-8)
    np.testing.assert_allclose(forces[subset], reference_forces, rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(forces[others], 0.0)

    classical_energy, _ = _energy_forces(context, groups={0})
    expected = 100.0 * np.sum((atoms.positions[others] * 0.1) ** 2)
    np.testing.assert_allclose(classical_energy, expected, rtol=1e-10)
    total, _ = _energy_forces(context)
    np.testing.assert_allclose(total, energy + classical_energy, rtol=1e-12)


def test_example_run(tmp_path, model):
    path = tmp_path / "model.pt"
    model.save(str(path))
    simulation = main([str(path), "--steps", "20", "--platform", "Reference"])
    assert simulation.currentStep == 20

    state = simulation.context.getState(getEnergy=True, getPositions=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    assert np.isfinite(energy)
    positions = state.getPositions(asNumpy=True).value_in_unit(unit.angstrom)
    # the saved model gives the same energy as the Python one
    atoms = cu_al_cell()
    atoms.positions = positions
    reference_energy, _ = _reference(model, atoms)
    np.testing.assert_allclose(energy, reference_energy, rtol=1e-8)


def test_serialization(tmp_path, model):
    # with the model given as a path, OpenMM's XmlSerializer saves the force
    path = tmp_path / "model.pt"
    model.save(str(path))
    atoms = cu_al_cell()
    topology = openmm_topology(atoms)
    force = get_metatensor_force(str(path), topology, atoms=np.arange(50))
    xml = openmm.XmlSerializer.serialize(force)
    copy = openmm.XmlSerializer.deserialize(xml)
    assert list(copy.getParticles()) == list(range(50))
    assert copy.usesPeriodicBoundaryConditions()

    results = []
    for candidate in [force, copy]:
        context = _context(topology, [candidate], atoms.get_masses())
        context.setPositions(atoms.positions * 0.1 * unit.nanometer)
        results.append(_energy_forces(context))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_errors(model):
    atoms = _cluster()
    topology = openmm_topology(atoms)
    with pytest.raises(ValueError, match="`atoms` contains indices outside of the 40"):
        get_metatensor_force(model, topology, atoms=[0, 40])
    with pytest.raises(ValueError, match="`atoms` contains the same atom"):
        get_metatensor_force(model, topology, atoms=[1, 1])
    with pytest.raises(ValueError, match="`atoms` must be a non-empty list"):
        get_metatensor_force(model, topology, atoms=[])

    no_element = openmm.app.Topology()
    residue = no_element.addResidue("X", no_element.addChain())
    no_element.addAtom("X1", None, residue)
    with pytest.raises(ValueError, match="atom 0 .* has no element"):
        get_metatensor_force(model, no_element)

    oxygen = openmm.app.Topology()
    residue = oxygen.addResidue("O", oxygen.addChain())
    oxygen.addAtom("O1", openmm.app.Element.getByAtomicNumber(8), residue)
    with pytest.raises(ValueError, match=r"does not support the atomic types \[8\]"):
        get_metatensor_force(model, oxygen)
