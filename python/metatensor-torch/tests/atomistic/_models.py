"""Small models and systems shared by the tests of ``AtomisticModel``."""

import math
from typing import Dict, List, Optional

import torch

from metatensor.torch import Labels, TensorBlock, TensorMap
from metatensor.torch.atomistic import (
    AtomisticModel,
    ModelCapabilities,
    ModelMetadata,
    ModelOutput,
    NeighborListOptions,
    System,
)


class LennardJones(torch.nn.Module):
    """A Lennard-Jones pair potential using a half neighbor list. It computes
    the ``energy`` per system or per atom (each atom gets half of the energy of
    its pairs), restricted to ``selected_atoms``."""

    def __init__(self, cutoff: float, sigma: float, epsilon: float):
        super().__init__()
        self._neighbors = NeighborListOptions(
            cutoff=cutoff, full_list=False, strict=True
        )
        self.sigma = torch.nn.Parameter(torch.tensor(sigma, dtype=torch.float64))
        self.epsilon = torch.nn.Parameter(torch.tensor(epsilon, dtype=torch.float64))

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self._neighbors]

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        if "energy" not in outputs:
            return {}

        per_atom = outputs["energy"].sample_kind == "atom"
        all_energies: List[torch.Tensor] = []
        all_samples: List[torch.Tensor] = []
        for system_i, system in enumerate(systems):
            neighbors = system.get_neighbor_list(self._neighbors)
            pairs = neighbors.samples.values
            distances = torch.linalg.vector_norm(neighbors.values.reshape(-1, 3), dim=1)
            sigma_r_6 = (self.sigma / distances) ** 6
            pair_energy = 4.0 * self.epsilon * (sigma_r_6 * sigma_r_6 - sigma_r_6)

            energy = torch.zeros(
                len(system), dtype=system.positions.dtype, device=system.device
            )
            energy = energy.index_add(0, pairs[:, 0].to(torch.int64), 0.5 * pair_energy)
            energy = energy.index_add(0, pairs[:, 1].to(torch.int64), 0.5 * pair_energy)

            atoms = torch.arange(len(system), device=system.device)
            if selected_atoms is not None:
                selected = selected_atoms.values
                selected = selected[selected[:, 0] == system_i][:, 1].to(torch.int64)
                energy = energy[selected]
                atoms = selected

            if per_atom:
                all_energies.append(energy)
                system_column = torch.full_like(atoms, system_i)
                all_samples.append(torch.stack([system_column, atoms], dim=1))
            else:
                all_energies.append(energy.sum().reshape(1))
                all_samples.append(torch.tensor([[system_i]], device=system.device))

        if per_atom:
            names = ["system", "atom"]
        else:
            names = ["system"]

        if len(systems) == 0:
            values = torch.zeros((0, 1), dtype=torch.float64)
            samples = Labels(names, torch.zeros((0, len(names)), dtype=torch.int32))
        else:
            values = torch.cat(all_energies).reshape(-1, 1)
            samples = Labels(names, torch.cat(all_samples).to(torch.int32))

        block = TensorBlock(
            values=values,
            samples=samples,
            components=[],
            properties=Labels(["energy"], torch.tensor([[0]], device=values.device)),
        )
        keys = Labels(["_"], torch.tensor([[0]], device=values.device))
        return {"energy": TensorMap(keys, [block])}


def lennard_jones_model(
    length_unit: str = "angstrom",
    energy_unit: str = "eV",
    scale_length: float = 1.0,
    scale_energy: float = 1.0,
) -> AtomisticModel:
    """A Lennard-Jones model for copper-like systems (parameters in angstrom and
    eV, multiplied by the scales for other units)."""
    cutoff = 4.0 * scale_length
    module = LennardJones(
        cutoff=cutoff, sigma=2.3 * scale_length, epsilon=0.4 * scale_energy
    )
    module.eval()
    capabilities = ModelCapabilities(
        outputs={
            "energy": ModelOutput(unit=energy_unit, sample_kind="atom"),
        },
        atomic_types=[29],
        interaction_range=cutoff,
        length_unit=length_unit,
        supported_devices=["cpu"],
        dtype="float64",
    )
    metadata = ModelMetadata(name="Lennard-Jones", description="a test model")
    return AtomisticModel(module, metadata, capabilities)


def copper_system(
    n_cells: int = 2, rattle: float = 0.1, seed: int = 0, requires_grad: bool = False
) -> System:
    """``n_cells**3`` fcc copper unit cells (4 atoms each), rattled."""
    a = 3.6
    basis = torch.tensor(
        [[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]],
        dtype=torch.float64,
    )
    cells = torch.stack(
        torch.meshgrid(
            torch.arange(n_cells),
            torch.arange(n_cells),
            torch.arange(n_cells),
            indexing="ij",
        ),
        dim=-1,
    ).reshape(-1, 1, 3)
    positions = ((cells + basis.reshape(1, 4, 3)) * a).reshape(-1, 3)
    generator = torch.Generator().manual_seed(seed)
    positions = positions + rattle * torch.randn(
        positions.shape, dtype=torch.float64, generator=generator
    )
    positions.requires_grad_(requires_grad)
    cell = torch.eye(3, dtype=torch.float64) * a * n_cells
    types = torch.full((positions.shape[0],), 29, dtype=torch.int32)
    return System(types, positions, cell, torch.tensor([True, True, True]))


def neighbor_list(system: System, cutoff: float, full_list: bool) -> TensorBlock:
    """Brute-force neighbor list of ``system`` with periodic images (vectors
    computed with differentiable torch operations from the positions and cell
    of the system, in the same unit as ``cutoff``)."""
    positions = system.positions
    cell = system.cell
    n_atoms = positions.shape[0]

    n_images = []
    for i in range(3):
        if bool(system.pbc[i]):
            other = cell[[(i + 1) % 3, (i + 2) % 3]].detach()
            normal = torch.linalg.cross(other[0], other[1])
            height = torch.abs(cell[i].detach() @ normal) / torch.linalg.norm(normal)
            n_images.append(int(math.ceil(cutoff / float(height))))
        else:
            n_images.append(0)
    ranges = [torch.arange(-n, n + 1) for n in n_images]
    shifts = torch.stack(torch.meshgrid(*ranges, indexing="ij"), dim=-1).reshape(-1, 3)

    first, second, shift = torch.meshgrid(
        torch.arange(n_atoms),
        torch.arange(n_atoms),
        torch.arange(len(shifts)),
        indexing="ij",
    )
    first = first.reshape(-1)
    second = second.reshape(-1)
    shift = shifts[shift.reshape(-1)]

    with torch.no_grad():
        vectors = positions[second] - positions[first] + shift.to(cell.dtype) @ cell
        keep = torch.linalg.vector_norm(vectors, dim=1) < cutoff
    keep &= torch.logical_not((first == second) & torch.all(shift == 0, dim=1))
    if not full_list:
        # keep i < j, and the images of i with a positive first non-zero shift
        a, b, c = shift[:, 0], shift[:, 1], shift[:, 2]
        positive = (a > 0) | ((a == 0) & (b > 0)) | ((a == 0) & (b == 0) & (c > 0))
        keep &= (first < second) | ((first == second) & positive)

    first, second, shift = first[keep], second[keep], shift[keep]
    # differentiable vectors, for the selected pairs only
    vectors = positions[second] - positions[first] + shift.to(cell.dtype) @ cell

    samples = torch.cat([first.reshape(-1, 1), second.reshape(-1, 1), shift], dim=1)
    return TensorBlock(
        values=vectors.reshape(-1, 3, 1),
        samples=Labels(
            [
                "first_atom",
                "second_atom",
                "cell_shift_a",
                "cell_shift_b",
                "cell_shift_c",
            ],
            samples.to(torch.int32),
            assume_unique=True,
        ),
        components=[Labels(["xyz"], torch.tensor([[0], [1], [2]]))],
        properties=Labels(["distance"], torch.tensor([[0]])),
    )


def add_neighbor_lists(system: System, model: AtomisticModel, length_unit: str):
    """Add all the neighbor lists ``model`` requests to ``system``, whose
    positions are in ``length_unit``."""
    for options in model.requested_neighbor_lists():
        cutoff = options.engine_cutoff(length_unit)
        system.add_neighbor_list(
            options, neighbor_list(system, cutoff, options.full_list)
        )
