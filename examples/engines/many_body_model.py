"""A small many-body interatomic potential for Cu-Al, exported as an atomistic
model: the model of the "Running simulations" examples and of the engine tests.

Each atom ``i`` gets the energy

.. math::

    E_i = \\frac{1}{2} \\sum_j \\phi_{t_i t_j}(r_{ij})
          - c_{t_i} \\sqrt{\\rho_i + \\delta} ,
    \\qquad
    \\rho_i = \\sum_j w_{t_j} e^{-\\beta (r_{ij} - r_0)} f_c(r_{ij})

with a Morse pair term :math:`\\phi` multiplied by the same smooth cutoff
function :math:`f_c` (zero with its derivative at the cutoff). The embedding
term makes the energy of an atom depend on all its neighbors together: unlike a
pair potential, it reveals errors in the handling of ghost atoms and domain
decomposition by an engine.

Run ``python many_body_model.py model.pt`` to export the model (TorchScript
archive) to ``model.pt``; the inputs of ``examples/engines`` expect it in their
working directory.
"""

import argparse
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


# atomic number -> (Morse well depth in eV, equilibrium distance in Å, density
# weight, embedding strength in eV); pair parameters are mixed from these
PARAMETERS = {
    13: (0.27, 2.86, 0.9, 1.1),
    29: (0.34, 2.55, 1.2, 1.4),
}
CUTOFF = 5.0
MORSE_ALPHA = 1.4
DENSITY_BETA = 1.1
DENSITY_DELTA = 0.05


class ManyBodyPotential(torch.nn.Module):
    """Morse pair terms plus a square-root embedding of a neighbor density, for
    the atomic types of :py:data:`PARAMETERS` (per-atom or per-system
    ``energy`` output in eV, lengths in Å, ``selected_atoms`` supported).

    :param cutoff: the cutoff radius (Å) of the pair and density terms
    """

    def __init__(self, cutoff: float = CUTOFF):
        super().__init__()
        self.cutoff = float(cutoff)
        self.morse_alpha = MORSE_ALPHA
        self.density_beta = DENSITY_BETA
        self.density_delta = DENSITY_DELTA
        self.neighbors = NeighborListOptions(cutoff=cutoff, full_list=True, strict=True)

        types = sorted(PARAMETERS)
        n_types = max(types) + 1
        # per-type tables indexed by atomic number
        depth = torch.zeros(n_types, dtype=torch.float64)
        distance = torch.zeros(n_types, dtype=torch.float64)
        weight = torch.zeros(n_types, dtype=torch.float64)
        embedding = torch.zeros(n_types, dtype=torch.float64)
        for atomic_type in types:
            d, r, w, c = PARAMETERS[atomic_type]
            depth[atomic_type] = d
            distance[atomic_type] = r
            weight[atomic_type] = w
            embedding[atomic_type] = c
        self.register_buffer("depth", depth)
        self.register_buffer("distance", distance)
        self.register_buffer("weight", weight)
        self.register_buffer("embedding", embedding)

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        """A full, strict neighbor list with the cutoff of the model."""
        return [self.neighbors]

    def atomic_energies(self, system: System) -> torch.Tensor:
        """The energy of every atom of ``system`` (differentiable with respect
        to the positions and the cell, through the neighbor list)."""
        neighbors = system.get_neighbor_list(self.neighbors)
        pairs = neighbors.samples.values
        first = pairs[:, 0].to(torch.long)
        second = pairs[:, 1].to(torch.long)
        vectors = neighbors.values.reshape(-1, 3)
        r = torch.linalg.vector_norm(vectors, dim=1)

        types = system.types.to(torch.long)
        type_i = types.index_select(0, first)
        type_j = types.index_select(0, second)
        depth = torch.sqrt(self.depth[type_i] * self.depth[type_j])
        r0 = 0.5 * (self.distance[type_i] + self.distance[type_j])

        cutoff = 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1.0)
        morse = torch.exp(-self.morse_alpha * (r - r0))
        pair = depth * (morse * morse - 2.0 * morse) * cutoff

        density_terms = (
            self.weight[type_j] * torch.exp(-self.density_beta * (r - r0)) * cutoff
        )
        n_atoms = len(system)
        zeros = torch.zeros(n_atoms, dtype=r.dtype, device=r.device)
        density = zeros.index_add(0, first, density_terms)
        pair_energy = zeros.index_add(0, first, 0.5 * pair)
        embedding = self.embedding[types] * torch.sqrt(density + self.density_delta)
        return pair_energy - embedding

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        if "energy" not in outputs:
            return {}
        device = self.depth.device

        energies: List[torch.Tensor] = []
        samples: List[torch.Tensor] = []
        for index, system in enumerate(systems):
            energy = self.atomic_energies(system)
            atoms = torch.arange(len(system), device=device)
            if selected_atoms is not None:
                selected = selected_atoms.values
                selected = selected[selected[:, 0] == index][:, 1].to(torch.long)
                energy = energy.index_select(0, selected)
                atoms = selected
            energies.append(energy)
            samples.append(torch.stack([torch.full_like(atoms, index), atoms], dim=1))

        if len(systems) == 0:
            all_energies = torch.zeros(0, dtype=torch.float64, device=device)
            all_samples = torch.zeros((0, 2), dtype=torch.long, device=device)
        else:
            all_energies = torch.cat(energies)
            all_samples = torch.cat(samples)

        properties = Labels(["energy"], torch.tensor([[0]], device=device))
        if outputs["energy"].sample_kind == "atom":
            block = TensorBlock(
                values=all_energies.reshape(-1, 1),
                samples=Labels(["system", "atom"], all_samples.to(torch.int32)),
                components=[],
                properties=properties,
            )
        else:
            total = torch.zeros(len(systems), dtype=torch.float64, device=device)
            total = total.index_add(0, all_samples[:, 0], all_energies)
            block = TensorBlock(
                values=total.reshape(-1, 1),
                samples=Labels(
                    ["system"],
                    torch.arange(len(systems), device=device).reshape(-1, 1),
                ),
                components=[],
                properties=properties,
            )
        keys = Labels(["_"], torch.tensor([[0]], device=device))
        return {"energy": TensorMap(keys, [block])}


def many_body_model(cutoff: float = CUTOFF) -> AtomisticModel:
    """The :py:class:`ManyBodyPotential` wrapped in an :py:class:`AtomisticModel`
    (float64, CPU, lengths in Å, energies in eV).

    :param cutoff: the cutoff radius (Å), also the model's interaction range
    """
    capabilities = ModelCapabilities(
        outputs={"energy": ModelOutput(unit="eV", sample_kind="atom")},
        atomic_types=sorted(PARAMETERS),
        interaction_range=cutoff,
        length_unit="angstrom",
        supported_devices=["cpu"],
        dtype="float64",
    )
    metadata = ModelMetadata(
        name="many-body Cu-Al example potential",
        description=(
            "Morse pair terms and a square-root embedding of a neighbor density, "
            "for testing and demonstrating simulation engines"
        ),
        authors=["the metatensor developers"],
    )
    return AtomisticModel(ManyBodyPotential(cutoff).eval(), metadata, capabilities)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="where to save the model (e.g. model.pt)")
    parser.add_argument(
        "--cutoff", type=float, default=CUTOFF, help="cutoff radius in Å"
    )
    args = parser.parse_args()
    many_body_model(args.cutoff).save(args.output)
    print(f"saved the model to {args.output}")


if __name__ == "__main__":
    main()
