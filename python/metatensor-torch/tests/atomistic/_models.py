"""Small models and systems shared by the tests of ``AtomisticModel`` and of
the ASE calculator."""

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
    unit_conversion_factor,
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


def lennard_jones_model_nm_kcal() -> AtomisticModel:
    """The model of :py:func:`lennard_jones_model` in nm and kcal/mol: the same
    energies and forces for an engine in angstrom and eV, the model converting
    from/to the engine's units."""
    return lennard_jones_model(
        length_unit="nm",
        energy_unit="kcal/mol",
        scale_length=0.1,
        scale_energy=unit_conversion_factor("eV", "kcal/mol"),
    )


class OutputBuilder(torch.nn.Module):
    """Methods building single-block TensorMaps for the outputs of the test
    models (as methods: TorchScript can not refer to free functions of test
    modules, whose qualified names contain the ``-`` of the folder names)."""

    def _keys(self, device: torch.device) -> Labels:
        return Labels("_", torch.zeros((1, 1), dtype=torch.int32, device=device))

    def _system_scalars(self, values: List[torch.Tensor]) -> TensorMap:
        data = torch.stack(values).reshape(-1, 1)
        device = data.device
        block = TensorBlock(
            values=data,
            samples=Labels(
                "system", torch.arange(len(values), device=device).reshape(-1, 1)
            ),
            components=[],
            properties=Labels("energy", torch.zeros((1, 1), dtype=torch.int32)).to(
                device
            ),
        )
        return TensorMap(self._keys(device), [block])

    def _atom_samples(self, systems: List[System]) -> Labels:
        samples: List[torch.Tensor] = []
        for s, system in enumerate(systems):
            atoms = torch.arange(len(system), device=system.device)
            samples.append(torch.stack([torch.full_like(atoms, s), atoms], dim=1))
        return Labels(["system", "atom"], torch.cat(samples))

    def _atom_scalars(
        self, systems: List[System], values: List[torch.Tensor]
    ) -> TensorMap:
        data = torch.cat(values).reshape(-1, 1)
        block = TensorBlock(
            values=data,
            samples=self._atom_samples(systems),
            components=[],
            properties=Labels("energy", torch.zeros((1, 1), dtype=torch.int32)).to(
                data.device
            ),
        )
        return TensorMap(self._keys(data.device), [block])

    def _atom_vectors(
        self, systems: List[System], values: List[torch.Tensor], name: str
    ) -> TensorMap:
        data = torch.cat(values).reshape(-1, 3, 1)
        device = data.device
        block = TensorBlock(
            values=data,
            samples=self._atom_samples(systems),
            components=[Labels("xyz", torch.arange(3, device=device).reshape(-1, 1))],
            properties=Labels(name, torch.zeros((1, 1), dtype=torch.int32)).to(device),
        )
        return TensorMap(self._keys(device), [block])

    def _system_matrices(self, values: List[torch.Tensor]) -> TensorMap:
        data = torch.stack(values).reshape(-1, 3, 3, 1)
        device = data.device
        xyz = torch.arange(3, device=device).reshape(-1, 1)
        block = TensorBlock(
            values=data,
            samples=Labels(
                "system", torch.arange(len(values), device=device).reshape(-1, 1)
            ),
            components=[Labels("xyz_1", xyz), Labels("xyz_2", xyz)],
            properties=Labels(
                "non_conservative_stress", torch.zeros((1, 1), dtype=torch.int32)
            ).to(device),
        )
        return TensorMap(self._keys(device), [block])


class PairPotential(OutputBuilder):
    """Morse pair potential with a smooth (C2) polynomial cutoff, summed over a
    half (or full) neighbor list. Also provides the analytical forces and stress
    as ``non_conservative_force`` (plus a constant net force, which the
    calculator must remove) and ``non_conservative_stress``, a per-atom
    ``energy_uncertainty`` (``uncertainty`` for every atom of type 8, 0
    otherwise) and an ``energy/doubled`` variant."""

    def __init__(
        self,
        cutoff: float = 4.5,
        full_list: bool = False,
        uncertainty: float = 0.0,
        anisotropy: float = 0.0,
        depth: float = 0.4,
        alpha: float = 1.6,
        r0: float = 2.5,
    ):
        super().__init__()
        self.cutoff = cutoff
        self.depth = depth
        self.alpha = alpha
        self.r0 = r0
        self.full_list = full_list
        self.uncertainty = uncertainty
        # a pair energy depending on the orientation of the pair:
        # f(r) * (1 + anisotropy * (z / r)^2)
        self.anisotropy = anisotropy
        self._nl = NeighborListOptions(cutoff=cutoff, full_list=full_list, strict=True)

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self._nl]

    def pair_energy(self, r: torch.Tensor) -> torch.Tensor:
        x = torch.exp(-self.alpha * (r - self.r0))
        cut = (1.0 - (r / self.cutoff) ** 2) ** 3
        return self.depth * (x * x - 2.0 * x) * cut

    def pair_derivative(self, r: torch.Tensor) -> torch.Tensor:
        x = torch.exp(-self.alpha * (r - self.r0))
        s = 1.0 - (r / self.cutoff) ** 2
        morse = self.depth * (x * x - 2.0 * x)
        d_morse = self.depth * (-2.0 * self.alpha * x * x + 2.0 * self.alpha * x)
        d_cut = 3.0 * s * s * (-2.0 * r / (self.cutoff * self.cutoff))
        return d_morse * s * s * s + morse * d_cut

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        scale = 0.5 if self.full_list else 1.0
        per_atom_energies: List[torch.Tensor] = []
        forces: List[torch.Tensor] = []
        stresses: List[torch.Tensor] = []
        non_conservative = False
        for name in outputs.keys():
            if name.split("/")[0] in [
                "non_conservative_force",
                "non_conservative_stress",
            ]:
                non_conservative = True
        for system in systems:
            neighbors = system.get_neighbor_list(self._nl)
            pairs = neighbors.samples.values
            i = pairs[:, 0].to(torch.long)
            j = pairs[:, 1].to(torch.long)
            vectors = neighbors.values.reshape(-1, 3)
            r = torch.linalg.vector_norm(vectors, dim=1)
            e = scale * self.pair_energy(r)
            if self.anisotropy != 0.0:
                e = e * (1.0 + self.anisotropy * (vectors[:, 2] / r) ** 2)
            energies = torch.zeros(
                len(system), dtype=system.positions.dtype, device=r.device
            )
            energies = energies.index_add(0, i, 0.5 * e).index_add(0, j, 0.5 * e)
            per_atom_energies.append(energies)
            if not non_conservative:
                continue

            # analytical -dE/dx and (1/V) dE/d(strain)
            dv = (scale * self.pair_derivative(r) / r).unsqueeze(1) * vectors
            f = torch.zeros_like(system.positions)
            f = f.index_add(0, i, dv).index_add(0, j, -dv)
            forces.append(f.detach() + 0.25)
            virial = (vectors.unsqueeze(2) * dv.unsqueeze(1)).sum(dim=0)
            volume = torch.abs(torch.linalg.det(system.cell))
            stresses.append((virial / volume).detach())

        results: Dict[str, TensorMap] = {}
        for name, request in outputs.items():
            base = name.split("/")[0]
            factor = 2.0 if name == "energy/doubled" else 1.0
            if base == "non_conservative_force":
                results[name] = self._atom_vectors(
                    systems, forces, "non_conservative_force"
                )
                continue
            if base == "non_conservative_stress":
                results[name] = self._system_matrices(stresses)
                continue

            values: List[torch.Tensor] = []
            if base == "energy":
                values = [factor * e for e in per_atom_energies]
            elif base == "energy_uncertainty":
                values = [
                    self.uncertainty * (s.types == 8).to(s.positions.dtype)
                    for s in systems
                ]
            else:
                continue

            if request.sample_kind == "atom":
                results[name] = self._atom_scalars(systems, values)
            else:
                results[name] = self._system_scalars([v.sum() for v in values])
        return results


def wrap(
    module: torch.nn.Module,
    dtype: str = "float64",
    outputs: Optional[Dict[str, ModelOutput]] = None,
    interaction_range: float = 4.5,
) -> AtomisticModel:
    """Wrap ``module`` in an ``AtomisticModel`` (lengths in angstrom, atomic
    types 1, 6, 8 and 29, per-atom ``energy`` in eV if no ``outputs`` are
    given)."""
    if outputs is None:
        outputs = {"energy": ModelOutput(unit="eV", sample_kind="atom")}
    capabilities = ModelCapabilities(
        outputs=outputs,
        atomic_types=[1, 6, 8, 29],
        interaction_range=interaction_range,
        length_unit="angstrom",
        supported_devices=["cpu"],
        dtype=dtype,
    )
    return AtomisticModel(module.eval(), ModelMetadata(name="pair"), capabilities)


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
    return neighbor_block(
        vectors.reshape(-1, 3, 1), samples.to(torch.int32), assume_unique=True
    )


def neighbor_block(
    values: torch.Tensor, samples: torch.Tensor, assume_unique: bool = False
) -> TensorBlock:
    """A neighbor list block with the standard metadata.

    :param values: the pair vectors, with shape ``(n_pairs, 3, 1)`` (used as
        given)
    :param samples: the ``(first_atom, second_atom, cell_shift_a, cell_shift_b,
        cell_shift_c)`` rows of the pairs
    :param assume_unique: passed to the ``Labels`` of the samples
    """
    return TensorBlock(
        values=values,
        samples=Labels(
            [
                "first_atom",
                "second_atom",
                "cell_shift_a",
                "cell_shift_b",
                "cell_shift_c",
            ],
            samples,
            assume_unique=assume_unique,
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
