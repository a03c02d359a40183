"""Molecular dynamics in the microcanonical (NVE) ensemble with ASE, and the
energy drift of the trajectory."""

from typing import Dict

import numpy as np


def md_structure(seed: int, repeat: int = 3, aluminium_fraction: float = 0.25):
    """A random fcc Cu-Al alloy, ``repeat`` x ``repeat`` x ``repeat`` cubic
    cells (108 atoms by default), with the lattice parameter of Vegard's law.

    :param seed: seed of the random choice of the Al sites
    :param repeat: number of cubic cells in each direction
    :param aluminium_fraction: fraction of Al atoms
    """
    from ase.build import bulk
    from reference_data import LATTICE

    a = (1 - aluminium_fraction) * LATTICE["Cu"] + aluminium_fraction * LATTICE["Al"]
    atoms = bulk("Cu", "fcc", a=a, cubic=True) * (repeat, repeat, repeat)
    rng = np.random.default_rng(seed)
    numbers = atoms.numbers.copy()
    n_al = int(round(aluminium_fraction * len(atoms)))
    numbers[rng.choice(len(atoms), size=n_al, replace=False)] = 13
    atoms.numbers = numbers
    return atoms


def run_nve(
    atoms,
    calculator,
    n_steps: int,
    timestep: float,
    temperature: float,
    seed: int,
    progress=None,
) -> Dict[str, np.ndarray]:
    """Run velocity Verlet dynamics, starting from Maxwell-Boltzmann velocities.

    :param atoms: the initial structure (copied)
    :param calculator: the ASE calculator giving energies and forces
    :param n_steps: number of steps
    :param timestep: time step, in fs
    :param temperature: temperature of the initial velocities, in K
    :param seed: seed of the initial velocities
    :param progress: an optional callable wrapping ``range(n_steps)`` in a
        progress bar
    :return: arrays with the ``time`` (ps), ``kinetic``, ``potential`` and
        ``total`` energies (eV/atom) and the ``temperature`` (K) at every step,
        and the final ``positions``
    """
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from ase.md.verlet import VelocityVerlet

    atoms = atoms.copy()
    atoms.calc = calculator
    MaxwellBoltzmannDistribution(
        atoms, temperature_K=temperature, rng=np.random.default_rng(seed)
    )
    Stationary(atoms)
    dynamics = VelocityVerlet(atoms, timestep=timestep * units.fs)

    n_atoms = len(atoms)
    kinetic = np.zeros(n_steps + 1)
    potential = np.zeros(n_steps + 1)

    def record(step: int):
        kinetic[step] = atoms.get_kinetic_energy() / n_atoms
        potential[step] = atoms.get_potential_energy() / n_atoms

    record(0)
    steps = range(1, n_steps + 1)
    if progress is not None:
        steps = progress(steps)
    for step in steps:
        dynamics.run(1)
        record(step)

    return {
        "time": np.arange(n_steps + 1) * timestep / 1000.0,
        "kinetic": kinetic,
        "potential": potential,
        "total": kinetic + potential,
        "temperature": kinetic / (1.5 * units.kB),
        "positions": atoms.positions.copy(),
    }


def drift(trajectory: Dict[str, np.ndarray]) -> Dict[str, float]:
    """Energy conservation of a trajectory from :py:func:`run_nve`.

    :return: ``final`` (total energy at the end minus at the start),
        ``max`` (largest deviation from the initial total energy), both in
        meV/atom, and ``slope`` (slope of a linear fit of the total energy, in
        meV/atom/ps)
    """
    total = trajectory["total"]
    deviation = total - total[0]
    slope = np.polyfit(trajectory["time"], total, 1)[0]
    return {
        "final": 1000 * float(deviation[-1]),
        "max": 1000 * float(np.abs(deviation).max()),
        "slope": 1000 * float(slope),
    }
