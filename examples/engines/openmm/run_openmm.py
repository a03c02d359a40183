"""Molecular dynamics of a Cu-Al alloy in OpenMM, with the forces of a
metatensor atomistic model.

Export the example model first (``python ../many_body_model.py model.pt``), then
run ``python run_openmm.py model.pt`` (``--help`` lists the options). The script
builds an OpenMM ``Topology`` (elements and periodic box) for a 108-atom fcc
cell, adds the model's force to an OpenMM ``System`` and runs Langevin dynamics
at 300 K, printing the energies every 10 steps.
"""

import argparse
import sys

import ase.build
import numpy as np
import openmm
import openmm.app
import openmm.unit as unit

from metatensor.torch.atomistic.openmm import get_metatensor_force


def cu_al_cell():
    """A 3 x 3 x 3 fcc cell of copper with a quarter of aluminium atoms."""
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    rng = np.random.default_rng(0)
    numbers = atoms.numbers.copy()
    numbers[rng.choice(len(atoms), len(atoms) // 4, replace=False)] = 13
    atoms.numbers = numbers
    atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
    return atoms


def openmm_topology(atoms):
    """The OpenMM topology of an ASE ``Atoms``: one residue per atom, elements
    from the atomic numbers, and the periodic box."""
    topology = openmm.app.Topology()
    chain = topology.addChain()
    for index, number in enumerate(atoms.numbers):
        element = openmm.app.Element.getByAtomicNumber(int(number))
        residue = topology.addResidue(element.symbol, chain)
        topology.addAtom(f"{element.symbol}{index}", element, residue)
    if atoms.pbc.all():
        topology.setPeriodicBoxVectors(atoms.cell.array * 0.1 * unit.nanometer)
    return topology


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="the saved model, e.g. model.pt")
    parser.add_argument("--steps", type=int, default=1000, help="MD steps")
    parser.add_argument("--platform", default="CPU", help="OpenMM platform")
    args = parser.parse_args(argv)

    atoms = cu_al_cell()
    topology = openmm_topology(atoms)

    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    system.addForce(get_metatensor_force(args.model, topology))

    integrator = openmm.LangevinMiddleIntegrator(
        300 * unit.kelvin, 1 / unit.picosecond, 1 * unit.femtosecond
    )
    platform = openmm.Platform.getPlatformByName(args.platform)
    simulation = openmm.app.Simulation(topology, system, integrator, platform)
    simulation.context.setPositions(atoms.positions * 0.1 * unit.nanometer)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, 12345)
    simulation.reporters.append(
        openmm.app.StateDataReporter(
            sys.stdout,
            10,
            step=True,
            potentialEnergy=True,
            kineticEnergy=True,
            totalEnergy=True,
            temperature=True,
        )
    )
    simulation.step(args.steps)
    return simulation


if __name__ == "__main__":
    main()
