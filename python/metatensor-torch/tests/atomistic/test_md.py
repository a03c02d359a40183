"""Energy conservation of molecular dynamics run through the ASE calculator."""

import numpy as np
import pytest


pytest.importorskip("ase")
pytest.importorskip("vesin")

import ase.build  # noqa: E402
import ase.md.verlet  # noqa: E402
import ase.units  # noqa: E402

from metatensor.torch.atomistic import ModelOutput  # noqa: E402
from metatensor.torch.atomistic.ase_calculator import MetatomicCalculator  # noqa: E402

from ._models import PairPotential, wrap  # noqa: E402


# the system is small: torch's intra-op threads only add overhead
pytestmark = pytest.mark.usefixtures("single_thread")


def test_nve_energy_conservation():
    # Morse pair potential with a C2 polynomial cutoff, over a half list
    potential = PairPotential(cutoff=5.0, depth=0.35, alpha=1.4, r0=2.55)
    model = wrap(
        potential,
        outputs={"energy": ModelOutput(unit="eV", sample_kind="system")},
        interaction_range=5.0,
    )

    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    # Maxwell-Boltzmann momenta at 600 K, without net momentum
    rng = np.random.default_rng(42)
    masses = atoms.get_masses()[:, np.newaxis]
    kT = 600 * ase.units.kB
    momenta = rng.normal(size=(len(atoms), 3)) * np.sqrt(masses * kT)
    atoms.set_momenta(momenta - masses * momenta.sum(axis=0) / masses.sum())
    atoms.calc = MetatomicCalculator(model)

    n_atoms = len(atoms)
    energies = []

    def record():
        energies.append(atoms.get_potential_energy() + atoms.get_kinetic_energy())

    dynamics = ase.md.verlet.VelocityVerlet(atoms, timestep=1.0 * ase.units.fs)
    dynamics.attach(record, interval=10)
    dynamics.run(1000)

    energies = np.array(energies) / n_atoms
    times = np.arange(len(energies), dtype=np.float64)
    slope = np.polyfit(times, energies, 1)[0]
    drift = abs(slope * (len(energies) - 1))
    assert drift < 1e-4
    assert abs(energies[-1] - energies[0]) < 1e-4
    # fluctuations of the total energy stay small
    assert np.abs(energies - energies[0]).max() < 5e-4

    # the atoms moved and the temperature stayed physical
    assert atoms.get_temperature() > 50
    assert np.abs(atoms.get_forces()).max() > 1e-2
