"""Training the model of the demo (``examples/demo``) over several processes
with :py:class:`torch.nn.parallel.DistributedDataParallel` (DDP).

Every process builds the same small data set (periodic Cu, Al and Cu-Al cells
with EMT energies and forces, drawn from a seeded random number generator), the
descriptor of each structure with its gradients with respect to the atomic
positions, and the same :py:class:`energy_model.EnergyModel`. A
:py:class:`torch.utils.data.DistributedSampler` gives each process its share of
the structures (a new shuffle every epoch through ``set_epoch``), the
``metatensor.torch.learn`` data loader joins the descriptors of a batch in one
``TensorMap``, and DDP averages the gradients of the energy and force loss over
the processes after each backward pass.

Run it on one machine with two processes (``gloo`` on CPUs, ``nccl`` with one
GPU per process when CUDA is available):

.. code-block:: bash

    torchrun --standalone --nproc_per_node=2 examples/ddp/train_ddp.py --output out

or as a single process, without ``torchrun``:

.. code-block:: bash

    python examples/ddp/train_ddp.py --output out

It needs torch, ``metatensor-core``, ``metatensor-operations``,
``metatensor-learn``, ``metatensor-torch``, ase and vesin.

The loss of a batch is the mean over its structures of ``energy_weight *
(energy error per atom)^2 + (mean squared force error of the structure)``: a
mean of per-structure terms. The sampler gives every process batches with the
same number of structures, so the average over the processes of their batch
losses (what DDP's gradient averaging differentiates) is the loss of the union
of their batches, and training with N processes takes the same steps as one
process fed the union batches. ``--check-dir`` saves what is needed to verify
this (``tests/engines/test_ddp.py`` does).
"""

import argparse
import datetime
import json
import os
import pathlib
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist


DEMO = pathlib.Path(__file__).resolve().parent.parent / "demo"
if str(DEMO) not in sys.path:
    sys.path.insert(0, str(DEMO))

import reference_data  # noqa: E402
from descriptor import PowerSpectrum  # noqa: E402
from energy_model import EnergyModel, baseline_energies, fit_baseline  # noqa: E402

from metatensor.torch import TensorMap  # noqa: E402
from metatensor.torch.atomistic import (  # noqa: E402
    NeighborListOptions,
    compute_neighbor_list,
    systems_to_torch,
)
from metatensor.torch.learn.data import DataLoader, IndexedDataset  # noqa: E402


ATOMIC_TYPES = [13, 29]
FORCES = ["gradients", "autograd"]

# atomic types, first atom, second atom and vector of each pair of a structure
Pairs = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line options.

    :param argv: the arguments, ``sys.argv[1:]`` by default
    :return: the parsed options
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output",
        type=pathlib.Path,
        default=None,
        help="directory for the trained weights and the loss log (written by rank 0)",
    )
    parser.add_argument("--epochs", type=int, default=10, help="number of epochs")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=2,
        help="number of structures per batch in each process",
    )
    parser.add_argument(
        "--structures-per-group",
        type=int,
        default=2,
        help="structures of each composition and family (9 groups)",
    )
    parser.add_argument(
        "--cutoff", type=float, default=5.0, help="cutoff of the descriptor (Å)"
    )
    parser.add_argument(
        "--n-radial", type=int, default=3, help="radial functions of the descriptor"
    )
    parser.add_argument(
        "--hidden",
        type=int,
        nargs="*",
        default=[8, 8],
        help="widths of the hidden layers",
    )
    parser.add_argument(
        "--lr", type=float, default=1e-4, help="learning rate (SGD with momentum)"
    )
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    parser.add_argument(
        "--energy-weight",
        type=float,
        default=100.0,
        help="weight of the energy term of the loss",
    )
    parser.add_argument(
        "--forces",
        choices=FORCES,
        default="gradients",
        help="forces from the gradient blocks of the descriptor (default), or "
        "from automatic differentiation (a double backward for the loss)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the data, the weights and the shuffling",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per process"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds before a collective operation waiting for another process fails",
    )
    parser.add_argument(
        "--check-dir",
        type=pathlib.Path,
        default=None,
        help="each process writes check-rank<RANK>.pt in this directory: the "
        "structures of each of its batches, the averaged gradients of the first "
        "step, the initial and final parameters",
    )
    return parser.parse_args(argv)


# ---- data -------------------------------------------------------------------


@dataclass
class Targets:
    """Reference values of all structures.

    :param energies: ``(n_structures,)`` energies minus the composition
        baseline (eV)
    :param forces: ``(n_atoms_total, 3)`` forces of all atoms, one structure
        after the other (eV/Å)
    :param n_atoms: ``(n_structures,)`` number of atoms of each structure
    """

    energies: torch.Tensor
    forces: torch.Tensor
    n_atoms: torch.Tensor

    @property
    def offsets(self) -> torch.Tensor:
        """Index of the first atom of each structure in ``forces``."""
        return torch.cumsum(self.n_atoms, 0) - self.n_atoms

    def to(self, device: torch.device) -> "Targets":
        """The same targets on ``device``."""
        return Targets(
            self.energies.to(device), self.forces.to(device), self.n_atoms.to(device)
        )


@dataclass
class Problem:
    """The data and the untrained model, the same in every process.

    :param dataset: one sample per structure, with fields ``sample_id`` (the
        index of the structure), ``descriptor`` (its descriptor with
        ``positions`` gradients) and ``pairs`` (its atomic types and neighbor
        list, see :py:data:`Pairs`)
    :param targets: reference energies and forces of all structures
    :param model: the model, with freshly initialized weights
    """

    dataset: IndexedDataset
    targets: Targets
    model: EnergyModel


def _pairs(atoms, options: NeighborListOptions):
    """Types, pairs and pair vectors of the full neighbor list of ``atoms``."""
    system = systems_to_torch(atoms, dtype=torch.float64)
    neighbors = compute_neighbor_list(system, options, length_unit="angstrom")
    pairs = neighbors.samples.values.to(torch.long)
    return system.types, pairs[:, 0], pairs[:, 1], neighbors.values.reshape(-1, 3)


def build_problem(args: argparse.Namespace) -> Problem:
    """Generate the EMT data, compute the descriptors and create the model.

    Everything is deterministic for a given ``args.seed``, so every process
    builds the same data and the same initial weights (DDP also copies the
    weights of rank 0 to the others when it wraps the model).

    :param args: the options of :py:func:`parse_args`
    :return: the data set, the targets and the model, in float64
    """
    structures = reference_data.generate(args.structures_per_group, seed=args.seed)
    descriptor = PowerSpectrum(ATOMIC_TYPES, args.cutoff, args.n_radial)
    descriptor = descriptor.to(torch.float64)
    options = NeighborListOptions(cutoff=args.cutoff, full_list=True, strict=True)
    options.length_unit = "angstrom"
    pairs = [_pairs(atoms, options) for atoms in structures]
    descriptor.fit_standardization(pairs)
    descriptors = [
        descriptor.compute_with_gradients(i, *pairs[i]) for i in range(len(pairs))
    ]

    energies = torch.tensor(
        [atoms.info["energy"] for atoms in structures], dtype=torch.float64
    )
    types = [p[0] for p in pairs]
    baseline = fit_baseline(ATOMIC_TYPES, types, energies)
    targets = Targets(
        energies=energies - baseline_energies(ATOMIC_TYPES, types, baseline),
        forces=torch.tensor(
            np.concatenate([atoms.arrays["forces"] for atoms in structures]),
            dtype=torch.float64,
        ),
        n_atoms=torch.tensor([len(atoms) for atoms in structures]),
    )

    torch.manual_seed(args.seed)
    model = EnergyModel(descriptor, args.hidden).to(torch.float64)
    model.set_baseline(baseline)
    dataset = IndexedDataset(
        sample_id=list(range(len(structures))), descriptor=descriptors, pairs=pairs
    )
    return Problem(dataset, targets, model)


# ---- model and loss -----------------------------------------------------------


def structure_loss(
    energies: torch.Tensor,
    structures: torch.Tensor,
    forces: torch.Tensor,
    rows: torch.Tensor,
    atoms: torch.Tensor,
    targets: Targets,
    energy_weight: float,
) -> torch.Tensor:
    """The loss of a batch: the mean over its structures of ``energy_weight *
    (energy error per atom)^2 + (mean squared error of the force components of
    the structure)``.

    :param energies: ``(n_rows,)`` predicted energies of the structures of the
        batch (without the composition baseline)
    :param structures: ``(n_rows,)`` index of the structure of each row; the
        same structure can appear twice
    :param forces: ``(n_atoms, 3)`` predicted forces
    :param rows: ``(n_atoms,)`` row of the structure of each force
    :param atoms: ``(n_atoms,)`` index of the atom of each force in its
        structure
    :param targets: the reference values of all structures
    :param energy_weight: weight of the energy term
    :return: the loss, a scalar
    """
    n_atoms = targets.n_atoms[structures].to(energies.dtype)
    energy_error = (energies - targets.energies[structures]) / n_atoms
    reference = targets.forces[targets.offsets[structures[rows]] + atoms]
    squared = (forces - reference).pow(2).sum(1)
    force_error = torch.zeros_like(energy_error).index_add(0, rows, squared)
    force_error = force_error / (3 * n_atoms)
    return (energy_weight * energy_error.pow(2) + force_error).mean()


def predict_with_gradients(
    model: EnergyModel, descriptor: TensorMap
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Energies and forces from the descriptor with its ``positions``
    gradients: metatensor carries the gradient blocks through the model (the
    chain rule is applied explicitly, one backward pass for the loss).

    :param model: the model
    :param descriptor: the descriptor of the structures of the batch, with
        ``positions`` gradients and a ``system`` sample dimension (the index of
        the structure)
    :return: the arguments ``energies, structures, forces, rows, atoms`` of
        :py:func:`structure_loss`
    """
    energies = model.energies_from_descriptor(descriptor).block()
    structures = energies.samples.column("system").to(torch.long)
    # the positions gradient of the energy is minus the forces, its samples are
    # (row of the energies, system, atom)
    gradient = energies.gradient("positions")
    samples = gradient.samples.values.to(torch.long)
    forces = -gradient.values.reshape(-1, 3)
    return energies.values.reshape(-1), structures, forces, samples[:, 0], samples[:, 2]


def predict_with_autograd(
    model: EnergyModel, pairs: Sequence[Pairs]
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Energies and forces from the neighbor lists: the descriptor is computed
    by the model (as in the exported model), and the forces are the gradients
    of the energies with respect to the pair vectors, computed with
    ``create_graph=True``: the loss backward pass is a double backward.

    :param model: the model
    :param pairs: for each structure of the batch, its atomic types, the
        first and second atom of each pair and the pair vectors
    :return: the arguments ``energies, forces, rows, atoms`` of
        :py:func:`structure_loss`
    """
    device = pairs[0][3].device
    n_atoms = torch.tensor([p[0].shape[0] for p in pairs], device=device)
    offsets = torch.cumsum(n_atoms, 0) - n_atoms
    rows = torch.repeat_interleave(torch.arange(len(pairs), device=device), n_atoms)
    atoms = torch.arange(rows.shape[0], device=device) - offsets[rows]
    types = torch.concatenate([p[0] for p in pairs])
    first = torch.concatenate([p[1] + offset for p, offset in zip(pairs, offsets)])
    second = torch.concatenate([p[2] + offset for p, offset in zip(pairs, offsets)])
    vectors = torch.concatenate([p[3] for p in pairs]).requires_grad_(True)

    # the "system" samples of the descriptor are the rows of the batch
    descriptor = model.descriptor(types, rows, atoms, first, second, vectors)
    atomic = model.atomic_energies(descriptor)
    energies = torch.zeros(len(pairs), dtype=vectors.dtype, device=device)
    for index in range(len(atomic)):
        block = atomic.block_by_id(index)
        system = block.samples.column("system").to(torch.long)
        energies = energies.index_add(0, system, block.values.reshape(-1))

    # the pair vector is r_second - r_first
    (derivative,) = torch.autograd.grad(energies.sum(), vectors, create_graph=True)
    gradient = torch.zeros(
        (rows.shape[0], 3), dtype=vectors.dtype, device=device
    ).index_add(0, second, derivative)
    gradient = gradient.index_add(0, first, -derivative)
    return energies, -gradient, rows, atoms


class LossModule(torch.nn.Module):
    """The model and its loss in one module, the one wrapped by DDP: DDP must
    see the computation of the loss in its ``forward`` (which an
    :py:class:`energy_model.EnergyModel` does not have), and the output of
    ``forward`` must be tensors so that DDP finds the parameters used in it.

    :param model: the model to train
    :param targets: the reference values of all structures
    :param energy_weight: weight of the energy term of the loss
    :param forces: ``"gradients"`` to get the forces from the gradient blocks
        of the descriptor (:py:func:`predict_with_gradients`), ``"autograd"``
        to compute them with automatic differentiation
        (:py:func:`predict_with_autograd`)
    """

    def __init__(
        self,
        model: EnergyModel,
        targets: Targets,
        energy_weight: float,
        forces: str = "gradients",
    ):
        super().__init__()
        if forces not in FORCES:
            raise ValueError(f"`forces` must be one of {FORCES}, got '{forces}'")
        self.model = model
        self.targets = targets
        self.energy_weight = energy_weight
        self.forces = forces

    def forward(
        self, descriptor: TensorMap, structures: torch.Tensor, pairs: Sequence[Pairs]
    ) -> torch.Tensor:
        """The loss of a batch, see :py:func:`structure_loss`.

        :param descriptor: the descriptor of the structures, with gradients
            (used with ``forces="gradients"``)
        :param structures: the index of each structure of the batch
        :param pairs: the neighbor lists of the structures (used with
            ``forces="autograd"``)
        """
        if self.forces == "gradients":
            prediction = predict_with_gradients(self.model, descriptor)
        else:
            energies, forces, rows, atoms = predict_with_autograd(self.model, pairs)
            prediction = (energies, structures, forces, rows, atoms)
        return structure_loss(*prediction, self.targets, self.energy_weight)


def make_optimizer(
    model: torch.nn.Module, args: argparse.Namespace
) -> torch.optim.Optimizer:
    """SGD with momentum: its steps depend linearly on the gradients, so
    rounding differences in the averaged gradients stay at the level of the
    rounding errors (Adam's division by the running RMS of the gradient
    amplifies them for parameters with tiny gradients).

    :param model: the model to optimize
    :param args: the options of :py:func:`parse_args`
    :return: the optimizer
    """
    return torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)


def _parameters(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters()}


def _gradients(model: torch.nn.Module) -> Dict[str, Optional[torch.Tensor]]:
    return {
        name: None if p.grad is None else p.grad.detach().cpu().clone()
        for name, p in model.named_parameters()
    }


# ---- training -------------------------------------------------------------------


def _setup(args: argparse.Namespace) -> Tuple[int, int, torch.device]:
    """Join the process group when started by ``torchrun`` (which sets
    ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
    ``MASTER_PORT``), and choose the device: the GPU ``LOCAL_RANK`` with NCCL
    when CUDA is available, the CPU with gloo otherwise.

    :param args: the options of :py:func:`parse_args`
    :return: the rank of this process, the number of processes and the device
    """
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if distributed:
        timeout = datetime.timedelta(seconds=args.timeout)
        if backend == "nccl":
            dist.init_process_group(backend, timeout=timeout, device_id=device)
        else:
            dist.init_process_group(backend, timeout=timeout)
        return dist.get_rank(), dist.get_world_size(), device
    return 0, 1, device


def train(args: argparse.Namespace) -> Dict[str, List[float]]:
    """Train the model, in every process started by ``torchrun`` or in this
    process alone.

    :param args: the options of :py:func:`parse_args`
    :return: ``{"epoch_losses": [...]}``, the mean loss (over all processes)
        of each epoch
    """
    torch.set_num_threads(args.threads)
    rank, world_size, device = _setup(args)

    problem = build_problem(args)
    targets = problem.targets.to(device)
    module = LossModule(problem.model, targets, args.energy_weight, args.forces)
    module = module.to(device)
    if world_size > 1:
        # a batch without atoms of one type leaves the network of this type
        # unused: DDP has to look for the parameters used by each step
        ddp_kwargs = {"device_ids": [device.index]} if device.type == "cuda" else {}
        module = torch.nn.parallel.DistributedDataParallel(
            module, find_unused_parameters=True, **ddp_kwargs
        )
    # DDP has copied the parameters of rank 0 to the other processes
    initial = _parameters(problem.model)
    optimizer = make_optimizer(module, args)

    # drop_last=False (the default) pads the shares with repeated structures,
    # so every process has the same number of structures and of batches
    sampler = torch.utils.data.DistributedSampler(
        problem.dataset,
        num_replicas=world_size,
        rank=rank,
        shuffle=True,
        seed=args.seed,
    )
    loader = DataLoader(problem.dataset, batch_size=args.batch_size, sampler=sampler)

    steps: List[List[int]] = []
    first_gradients = None
    epoch_losses: List[float] = []
    for epoch in range(args.epochs):
        # without this, every epoch would use the shuffle of epoch 0
        sampler.set_epoch(epoch)
        total = torch.zeros(2, dtype=torch.float64, device=device)
        for batch in loader:
            steps.append([int(i) for i in batch.sample_id])
            optimizer.zero_grad()
            loss = module(
                batch.descriptor.to(device=device),
                torch.tensor(batch.sample_id, device=device),
                [tuple(t.to(device) for t in pairs) for pairs in batch.pairs],
            )
            loss.backward()
            if first_gradients is None:
                first_gradients = _gradients(problem.model)
            optimizer.step()
            total += torch.stack([loss.detach(), torch.ones_like(loss)])
        if world_size > 1:
            dist.all_reduce(total)
        epoch_losses.append(float(total[0] / total[1]))
        if rank == 0:
            print(f"epoch {epoch + 1:>4}: loss {epoch_losses[-1]:.6e}", flush=True)

    if args.check_dir is not None:
        args.check_dir.mkdir(parents=True, exist_ok=True)
        check = {
            "rank": rank,
            "world_size": world_size,
            "steps": steps,
            "initial_parameters": initial,
            "first_gradients": first_gradients,
            "parameters": _parameters(problem.model),
            "epoch_losses": epoch_losses,
        }
        torch.save(check, args.check_dir / f"check-rank{rank}.pt")
    if rank == 0 and args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        torch.save(problem.model.state_dict(), args.output / "model-state.pt")
        log = {"world_size": world_size, "epoch_losses": epoch_losses}
        with open(args.output / "training.json", "w") as file:
            json.dump(log, file, indent=2)

    if world_size > 1:
        dist.barrier()
        dist.destroy_process_group()
    return {"epoch_losses": epoch_losses}


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the training.

    :param argv: the command line options, ``sys.argv[1:]`` by default
    """
    train(parse_args(argv))


if __name__ == "__main__":
    main()
