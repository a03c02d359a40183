"""Energy conservation of molecular dynamics run through the ASE calculator."""

from typing import Dict, List, Optional

import numpy as np
import pytest
import torch


pytest.importorskip("ase")
pytest.importorskip("vesin")

import ase.build  # noqa: E402
import ase.md.verlet  # noqa: E402
import ase.units  # noqa: E402

from metatensor.torch import Labels, TensorBlock, TensorMap  # noqa: E402
from metatensor.torch.atomistic import (  # noqa: E402
    AtomisticModel,
    ModelCapabilities,
    ModelMetadata,
    ModelOutput,
    NeighborListOptions,
    System,
)
from metatensor.torch.atomistic.ase_calculator import MetatomicCalculator  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    # the system is small: torch's intra-op threads only add overhead
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class MorsePotential(torch.nn.Module):
    """Morse pair potential with a C2 polynomial cutoff, over a half list."""

    def __init__(self, cutoff: float = 5.0):
        super().__init__()
        self.cutoff = cutoff
        self._nl = NeighborListOptions(cutoff=cutoff, full_list=False, strict=True)

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self._nl]

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        energies: List[torch.Tensor] = []
        for system in systems:
            vectors = system.get_neighbor_list(self._nl).values.reshape(-1, 3)
            r = torch.linalg.vector_norm(vectors, dim=1)
            x = torch.exp(-1.4 * (r - 2.55))
            cut = (1.0 - (r / self.cutoff) ** 2) ** 3
            energies.append((0.35 * (x * x - 2.0 * x) * cut).sum())
        values = torch.stack(energies).reshape(-1, 1)
        device = values.device
        block = TensorBlock(
            values=values,
            samples=Labels(
                "system", torch.arange(len(systems), device=device).reshape(-1, 1)
            ),
            components=[],
            properties=Labels("energy", torch.zeros((1, 1), dtype=torch.int32)).to(
                device
            ),
        )
        keys = Labels("_", torch.zeros((1, 1), dtype=torch.int32, device=device))
        return {"energy": TensorMap(keys, [block])}


def test_nve_energy_conservation():
    capabilities = ModelCapabilities(
        outputs={"energy": ModelOutput(unit="eV", sample_kind="system")},
        atomic_types=[29],
        interaction_range=5.0,
        length_unit="angstrom",
        supported_devices=["cpu"],
        dtype="float64",
    )
    model = AtomisticModel(MorsePotential().eval(), ModelMetadata(), capabilities)

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
