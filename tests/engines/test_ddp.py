"""Training over several processes with DDP: ``examples/ddp/train_ddp.py``
started by ``torchrun`` with two processes (``gloo`` backend, on the CPU)
trains the demo's model on energies and forces, then

- the parameters are bitwise identical in both processes;
- they equal, to 1e-12, the parameters of one process trained here on the
  union of the two processes' batches, step by step;
- the gradient averaged by DDP in the first step equals the gradient of the
  loss of the union batch.

The equivalence holds because the loss of a batch is a mean over its
structures, and the sampler gives both processes batches with the same number
of structures (``DistributedSampler`` pads the shares with repeated structures
when the data set does not split evenly, which these settings make happen): the
mean over the processes of their batch losses, whose gradient DDP computes, is
then the loss of the union batch. With batches of different sizes it would
weigh the structures of the smaller batch more.

The same script also runs as a single process, without ``torchrun``.
"""

import importlib.util
import os
import pathlib
import sys
from typing import Dict, List, Sequence, Tuple

import pytest
from processes import run_bounded


torch = pytest.importorskip("torch")
pytest.importorskip("ase")
pytest.importorskip("vesin")
if not torch.distributed.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)

import metatensor.torch as mts  # noqa: E402


ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "ddp" / "train_ddp.py"

# 9 structures shared by 2 processes: 5 each (one structure is repeated), in
# batches of 2, 2 and 1 structures, for 2 epochs (6 steps)
WORLD_SIZE = 2
N_STRUCTURES = 9
ARGS = [
    "--structures-per-group", "1",
    "--epochs", "2",
    "--batch-size", "2",
    "--cutoff", "4.5",
    "--n-radial", "2",
    "--hidden", "6",
    "--seed", "3",
    "--timeout", "120",
]  # fmt: skip
TIMEOUT = 240


def load_script():
    """The training script, imported as a module."""
    name = "metatensor_example_train_ddp"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def environment() -> Dict[str, str]:
    """The environment of the training processes: one thread each, the
    loopback interface, and no inherited ``torchrun`` variables."""
    env = dict(os.environ)
    for name in ["RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"]:
        env.pop(name, None)
    env["OMP_NUM_THREADS"] = "1"
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"
    return env


def run_checked(command: List[str], cwd: pathlib.Path, timeout: float) -> str:
    """Run ``command`` (see ``run_bounded``), fail the test if it fails.

    :return: the output of the command
    """
    process = run_bounded(command, cwd, timeout, env=environment())
    assert process.returncode == 0, f"{command} failed:\n{process.stdout}"
    return process.stdout


def load_checks(directory: pathlib.Path, world_size: int) -> List[dict]:
    checks = [
        torch.load(directory / f"check-rank{rank}.pt") for rank in range(world_size)
    ]
    assert [check["rank"] for check in checks] == list(range(world_size))
    assert all(check["world_size"] == world_size for check in checks)
    return checks


class Replay:
    """One process training the same model from the same data."""

    def __init__(self, argv: Sequence[str]):
        self.script = load_script()
        self.args = self.script.parse_args(argv)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self.problem = self.script.build_problem(self.args)
        finally:
            torch.set_num_threads(threads)
        self.model = self.problem.model
        self.module = self.script.LossModule(
            self.model,
            self.problem.targets,
            self.args.energy_weight,
            self.args.forces,
        )

    def parameters(self) -> Dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.model.named_parameters()}

    def gradients(self, indices: Sequence[int]) -> Dict[str, torch.Tensor]:
        """Gradient of the loss of the structures ``indices`` (without
        changing the model)."""
        self.model.zero_grad()
        self.loss(indices).backward()
        gradients = {
            name: torch.zeros_like(p) if p.grad is None else p.grad.clone()
            for name, p in self.model.named_parameters()
        }
        self.model.zero_grad()
        return gradients

    def loss(self, indices: Sequence[int]) -> torch.Tensor:
        """The loss of one batch made of the structures ``indices``, which can
        contain the same structure twice (the padding of the sampler): the
        maps are joined with an extra sample dimension to keep the samples
        unique."""
        samples = [self.problem.dataset.get_sample(i) for i in indices]
        descriptor = mts.join(
            [sample.descriptor for sample in samples],
            axis="samples",
            add_dimension="batch",
        )
        structures = torch.tensor(list(indices))
        pairs = [sample.pairs for sample in samples]
        return self.module(descriptor, structures, pairs)

    def center_types(self, indices: Sequence[int]) -> List[int]:
        """The atomic types of the atoms of the structures ``indices``."""
        types = set()
        for index in indices:
            descriptor = self.problem.dataset.get_sample(index).descriptor
            for key, block in descriptor.items():
                if block.values.shape[0] > 0:
                    types.add(int(key[0]))
        return sorted(types)

    def train(self, batches: Sequence[Sequence[int]], first_gradients: dict) -> None:
        """Take one optimizer step on each batch; check that the gradient of
        the first step is ``first_gradients``."""
        optimizer = self.script.make_optimizer(self.model, self.args)
        for step, batch in enumerate(batches):
            optimizer.zero_grad()
            self.loss(batch).backward()
            if step == 0:
                for name, p in self.model.named_parameters():
                    expected = first_gradients[name]
                    if expected is None:
                        assert p.grad is None, name
                    else:
                        assert_close(p.grad, expected, name)
            optimizer.step()


def assert_close(actual: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    assert actual.dtype == torch.float64
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12, msg=name)


def union_batches(checks: Sequence[dict]) -> Tuple[List[List[int]], List[int]]:
    """The union of the processes' batches at each step, and the number of
    structures in each process's batch at each step."""
    n_steps = len(checks[0]["steps"])
    assert all(len(check["steps"]) == n_steps for check in checks)
    batches, sizes = [], []
    for step in range(n_steps):
        per_rank = [check["steps"][step] for check in checks]
        # the same number of structures everywhere: DDP's mean of the batch
        # losses is the loss of the union
        assert len({len(batch) for batch in per_rank}) == 1, per_rank
        sizes.append(len(per_rank[0]))
        batches.append([index for batch in per_rank for index in batch])
    return batches, sizes


@pytest.mark.parametrize("forces", ["gradients", "autograd"])
def test_torchrun_two_processes(tmp_path, forces):
    """Forces from the gradient blocks of the descriptor, or from automatic
    differentiation (``create_graph=True``: the backward pass of the loss is
    a double backward, under DDP's gradient hooks)."""
    args = [*ARGS, "--forces", forces]
    command = [
        sys.executable, "-m", "torch.distributed.run",
        "--standalone", f"--nproc_per_node={WORLD_SIZE}",
        str(SCRIPT), *args,
        "--check-dir", str(tmp_path / "checks"),
        "--output", str(tmp_path / "output"),
    ]  # fmt: skip
    run_checked(command, tmp_path, TIMEOUT)
    checks = load_checks(tmp_path / "checks", WORLD_SIZE)
    assert (tmp_path / "output" / "model-state.pt").is_file()

    # each epoch: 5 structures per process (9 + 1 repeated) in batches of 2,
    # 2 and 1, covering all structures; a new shuffle in the second epoch
    batches, sizes = union_batches(checks)
    assert sizes == [2, 2, 1] * 2
    epochs = [sum(batches[:3], []), sum(batches[3:], [])]
    for epoch in epochs:
        assert len(epoch) == N_STRUCTURES + 1
        assert sorted(set(epoch)) == list(range(N_STRUCTURES))
    assert epochs[0] != epochs[1]

    # the same parameters everywhere, before and after training
    for check in checks[1:]:
        for key in ["initial_parameters", "parameters", "first_gradients"]:
            assert check[key].keys() == checks[0][key].keys()
            for name, value in checks[0][key].items():
                assert torch.equal(check[key][name], value), (key, name)

    replay = Replay(args)
    for name, value in replay.parameters().items():
        assert torch.equal(value, checks[0]["initial_parameters"][name]), name

    # in some steps, a process has no atom of one type in its batch: with the
    # forces from the gradient blocks, the network of this type is not used
    # there, and DDP has to find it (`find_unused_parameters=True`)
    all_types = replay.center_types(range(N_STRUCTURES))
    assert any(
        replay.center_types(check["steps"][step]) != all_types
        for check in checks
        for step in range(len(batches))
    )

    # the averaged gradient is the gradient of the union batch (and not the
    # gradient of one process's batch)
    first = checks[0]["first_gradients"]
    union = replay.gradients(batches[0])
    local = replay.gradients(checks[0]["steps"][0])
    for name, value in union.items():
        assert_close(first[name], value, name)
    assert any(
        not torch.allclose(local[name], union[name], rtol=1e-6, atol=0)
        for name in union
    )

    # the parameters after training equal those of one process fed the union
    # batches
    replay.train(batches, first)
    trained = replay.parameters()
    changed = False
    for name, value in checks[0]["parameters"].items():
        assert_close(trained[name], value, name)
        changed |= not torch.equal(value, checks[0]["initial_parameters"][name])
    assert changed

    losses = checks[0]["epoch_losses"]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)


def test_single_process(tmp_path):
    """Without ``torchrun``, the script trains in one process: every epoch
    goes over each structure once."""
    command = [sys.executable, str(SCRIPT), *ARGS, "--check-dir", str(tmp_path)]
    run_checked(command, tmp_path, TIMEOUT)
    (check,) = load_checks(tmp_path, 1)
    batches, sizes = union_batches([check])
    assert sizes == [2, 2, 2, 2, 1] * 2
    for epoch in [sum(batches[:5], []), sum(batches[5:], [])]:
        assert sorted(epoch) == list(range(N_STRUCTURES))
    changed = any(
        not torch.equal(value, check["initial_parameters"][name])
        for name, value in check["parameters"].items()
    )
    assert changed
