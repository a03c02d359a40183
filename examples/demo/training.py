"""Training of :py:class:`energy_model.EnergyModel` on energies and forces.

The descriptor of the training structures is one ``TensorMap`` with
``positions`` gradients. The targets are looked up by the ``system`` and
``atom`` samples of the predictions, so that the order of the samples does not
matter.
"""

from dataclasses import dataclass
from typing import Dict, List, Sequence

import torch
from energy_model import EnergyModel

import metatensor.torch as mts
from metatensor.torch import TensorMap


@dataclass
class Targets:
    """Reference energies and forces of all structures.

    :param energies: ``(n_structures,)`` energies (eV), without the
        composition baseline
    :param forces: ``(n_atoms_total, 3)`` forces (eV/Å) of all atoms of all
        structures, one structure after the other
    :param n_atoms: ``(n_structures,)`` number of atoms of each structure
    """

    energies: torch.Tensor
    forces: torch.Tensor
    n_atoms: torch.Tensor

    @property
    def offsets(self) -> torch.Tensor:
        """Index of the first atom of each structure in ``forces``."""
        return torch.cumsum(self.n_atoms, 0) - self.n_atoms


@dataclass
class Predictions:
    """Predicted and reference values for a set of structures.

    Energies are per atom (eV/atom), forces are flattened (eV/Å).
    """

    energy: torch.Tensor
    energy_reference: torch.Tensor
    forces: torch.Tensor
    forces_reference: torch.Tensor

    def rmse(self) -> Dict[str, float]:
        """Root mean square errors, energy in meV/atom and forces in meV/Å."""
        energy = (self.energy - self.energy_reference).pow(2).mean().sqrt()
        forces = (self.forces - self.forces_reference).pow(2).mean().sqrt()
        return {"energy": 1000 * float(energy), "forces": 1000 * float(forces)}

    def mae(self) -> Dict[str, float]:
        """Mean absolute errors, energy in meV/atom and forces in meV/Å."""
        energy = (self.energy - self.energy_reference).abs().mean()
        forces = (self.forces - self.forces_reference).abs().mean()
        return {"energy": 1000 * float(energy), "forces": 1000 * float(forces)}


def _compare(model: EnergyModel, descriptor: TensorMap, targets: Targets):
    """Predictions of ``model`` for the structures in ``descriptor`` and the
    matching reference values (energies per atom, forces)."""
    energies = model.energies_from_descriptor(descriptor).block()
    systems, order = torch.sort(energies.samples.column("system").to(torch.long))
    n_atoms = targets.n_atoms[systems].to(energies.values.dtype)
    predicted_energy = energies.values.reshape(-1)[order] / n_atoms
    reference_energy = targets.energies[systems] / n_atoms

    # the positions gradient of the energy is minus the forces; its samples
    # are (sample, system, atom)
    gradient = energies.gradient("positions")
    samples = gradient.samples.values.to(torch.long)
    atoms, order = torch.sort(targets.offsets[samples[:, 1]] + samples[:, 2])
    predicted_forces = -gradient.values.reshape(-1, 3)[order]
    reference_forces = targets.forces[atoms]
    return Predictions(
        predicted_energy, reference_energy, predicted_forces, reference_forces
    )


_FIELDS = ["energy", "energy_reference", "forces", "forces_reference"]


def predict(
    model: EnergyModel,
    descriptors: Sequence[TensorMap],
    targets: Targets,
    batch_size: int = 16,
) -> Predictions:
    """Predictions of ``model`` for all the structures in ``descriptors``
    (without building a graph for the parameters)."""
    parts: List[Predictions] = []
    with torch.no_grad():
        for start in range(0, len(descriptors), batch_size):
            batch = _join(list(descriptors[start : start + batch_size]))
            parts.append(_compare(model, batch, targets))
    return Predictions(
        *[torch.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS]
    )


def _join(descriptors: List[TensorMap]) -> TensorMap:
    return mts.join(descriptors, axis="samples")


def train_lbfgs(
    model: EnergyModel,
    descriptor: TensorMap,
    targets: Targets,
    iterations: int,
    energy_weight: float,
    progress=None,
) -> List[float]:
    """Train ``model`` with the L-BFGS optimizer on all the training
    structures at once (the data set is small: full-batch L-BFGS converges in
    far fewer passes over the data than stochastic gradient descent).

    The loss is ``energy_weight * MSE(energy per atom) + MSE(forces)``, with
    energies in eV/atom and forces in eV/Å.

    :param model: the model to train
    :param descriptor: the descriptor of all training structures, with
        ``positions`` gradients
    :param targets: the reference energies and forces
    :param iterations: the largest number of L-BFGS iterations
    :param energy_weight: weight of the energy term of the loss
    :param progress: an optional callable wrapping ``range(iterations)`` in a
        tqdm progress bar
    :return: the loss at each evaluation
    """
    optimizer = torch.optim.LBFGS(
        model.parameters(),
        lr=1.0,
        max_iter=iterations,
        max_eval=iterations * 5 // 4,
        history_size=50,
        tolerance_grad=1e-10,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )
    bar = None if progress is None else progress(range(iterations))
    losses: List[float] = []

    def closure():
        optimizer.zero_grad()
        result = _compare(model, descriptor, targets)
        energy_loss = (result.energy - result.energy_reference).pow(2).mean()
        forces_loss = (result.forces - result.forces_reference).pow(2).mean()
        loss = energy_weight * energy_loss + forces_loss
        loss.backward()
        losses.append(float(loss.detach()))
        if bar is not None and optimizer.state_dict()["state"]:
            state = optimizer.state_dict()["state"][0]
            bar.n = min(int(state.get("n_iter", 0)), iterations)
            bar.set_postfix(loss=f"{losses[-1]:.2e}", refresh=False)
            bar.refresh()
        return loss

    optimizer.step(closure)
    if bar is not None:
        bar.n = bar.total
        bar.close()
    return losses
