"""The trained model behind the atomistic model interface of
``metatensor.torch.atomistic``, so that it can be exported to one file and run
by simulation engines (here, ASE through ``MetatomicCalculator``).

The model asks the engine for a full neighbor list with the cutoff of the
descriptor, computes the descriptor from the pair vectors of this list, and
returns the ``energy`` of each system (or of each atom). Engines get the forces
and the stress by automatic differentiation: the pair vectors depend on the
positions and the cell.
"""

from typing import Dict, List, Optional

import torch
from energy_model import EnergyModel

from metatensor.torch import Labels, TensorBlock, TensorMap
from metatensor.torch.atomistic import (
    AtomisticModel,
    ModelCapabilities,
    ModelMetadata,
    ModelOutput,
    NeighborListOptions,
    System,
)


class PowerSpectrumPotential(torch.nn.Module):
    """An interatomic potential implementing the ``ModelInterface`` of
    ``metatensor.torch.atomistic``, around a trained :py:class:`EnergyModel`.

    :param model: the trained energy model
    """

    def __init__(self, model: EnergyModel):
        super().__init__()
        self.model = model
        self.neighbors = NeighborListOptions(
            cutoff=model.descriptor.cutoff, full_list=True, strict=True
        )

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        """The neighbor list this model needs: a full list with the cutoff of
        the descriptor."""
        return [self.neighbors]

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        if "energy" not in outputs:
            return {}

        types: List[torch.Tensor] = []
        system_index: List[torch.Tensor] = []
        atom_index: List[torch.Tensor] = []
        first: List[torch.Tensor] = []
        second: List[torch.Tensor] = []
        vectors: List[torch.Tensor] = []
        neighbor_types: List[torch.Tensor] = []
        offset = 0
        for index, system in enumerate(systems):
            n_atoms = len(system)
            neighbors = system.get_neighbor_list(self.neighbors)
            pairs = neighbors.samples.values.to(torch.long)
            pair_vectors = neighbors.values.reshape(-1, 3)
            if selected_atoms is None:
                centers = torch.arange(n_atoms, device=pairs.device)
                pair_first = pairs[:, 0]
            else:
                # the energy of an atom only depends on the pairs around it:
                # describe only the selected atoms (for example the own atoms of
                # a process in a domain decomposition, and not its ghosts)
                selected = selected_atoms.values
                centers = selected[selected[:, 0] == index][:, 1].to(torch.long)
                position = torch.full(
                    (n_atoms,), -1, dtype=torch.long, device=pairs.device
                )
                position[centers] = torch.arange(len(centers), device=pairs.device)
                pair_first = position[pairs[:, 0]]
                mask = pair_first >= 0
                pairs = pairs[mask]
                pair_first = pair_first[mask]
                pair_vectors = pair_vectors[mask]
            types.append(system.types.index_select(0, centers))
            system_index.append(torch.full_like(centers, index))
            atom_index.append(centers)
            first.append(pair_first + offset)
            second.append(pairs[:, 1])
            neighbor_types.append(system.types.index_select(0, pairs[:, 1]))
            vectors.append(pair_vectors)
            offset += len(centers)

        all_types = torch.concatenate(types)
        all_systems = torch.concatenate(system_index)
        all_atoms = torch.concatenate(atom_index)
        descriptor = self.model.descriptor(
            all_types,
            all_systems,
            all_atoms,
            torch.concatenate(first),
            torch.concatenate(second),
            torch.concatenate(vectors),
            torch.concatenate(neighbor_types),
        )
        atomic = self.model.atomic_energies(descriptor)

        # one block with the energy of every atom, baseline included
        values: List[torch.Tensor] = []
        samples: List[torch.Tensor] = []
        for index in range(len(atomic)):
            block = atomic.block_by_id(index)
            values.append(block.values.reshape(-1) + self.model.baseline[index])
            samples.append(block.samples.values)
        energies = torch.concatenate(values)
        atom_samples = torch.concatenate(samples)

        properties = Labels(["energy"], torch.tensor([[0]], device=energies.device))
        if outputs["energy"].sample_kind == "atom":
            block = TensorBlock(
                values=energies.reshape(-1, 1),
                samples=Labels(["system", "atom"], atom_samples),
                components=[],
                properties=properties,
            )
        else:
            total = torch.zeros(
                len(systems), dtype=energies.dtype, device=energies.device
            )
            total.index_add_(0, atom_samples[:, 0].to(torch.long), energies)
            block = TensorBlock(
                values=total.reshape(-1, 1),
                samples=Labels(
                    ["system"],
                    torch.arange(len(systems), device=energies.device).reshape(-1, 1),
                ),
                components=[],
                properties=properties,
            )
        keys = Labels(["_"], torch.tensor([[0]], device=energies.device))
        return {"energy": TensorMap(keys, [block])}


def export(model: EnergyModel, path: str) -> AtomisticModel:
    """Wrap ``model`` in an :py:class:`AtomisticModel` with its metadata and
    capabilities, and save it to ``path``.

    :param model: the trained energy model (moved to float64)
    :param path: where to save the exported model
    :return: the (not scripted) :py:class:`AtomisticModel`
    """
    potential = PowerSpectrumPotential(model.to(torch.float64)).eval()
    capabilities = ModelCapabilities(
        outputs={"energy": ModelOutput(unit="eV", sample_kind="atom")},
        atomic_types=list(model.descriptor.atomic_types),
        interaction_range=model.descriptor.cutoff,
        length_unit="angstrom",
        supported_devices=["cpu"],
        dtype="float64",
    )
    metadata = ModelMetadata(
        name="power spectrum potential for Cu-Al (EMT)",
        description=(
            "a small neural network potential trained on energies and forces of "
            "fcc Cu, Al and Cu-Al alloys computed with the EMT potential of ASE"
        ),
        authors=["the metatensor developers"],
    )
    atomistic = AtomisticModel(potential, metadata, capabilities)
    atomistic.save(path)
    return atomistic
