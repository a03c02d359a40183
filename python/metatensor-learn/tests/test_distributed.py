"""Distributed data loading: two processes started the way ``torchrun`` starts
them (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` environment variables), using the ``gloo`` backend on the
loopback interface, each iterating over a :py:class:`DataLoader` with a
:py:class:`torch.utils.data.DistributedSampler`."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest


torch = pytest.importorskip("torch")

if not torch.distributed.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)


WORLD_SIZE = 2
N_SAMPLES = 14
BATCH_SIZE = 3

WORKER = textwrap.dedent(
    """
    import json
    import os
    import sys

    import numpy as np
    import torch
    import torch.distributed as dist

    from metatensor import Labels, TensorBlock, TensorMap
    from metatensor.learn import DataLoader, Dataset

    N_SAMPLES = int(sys.argv[2])
    BATCH_SIZE = int(sys.argv[3])


    def tensor(system):
        n_atoms = 1 + system % 3
        samples = np.array([[system, i] for i in range(n_atoms)], dtype=np.int32)
        block = TensorBlock(
            values=torch.full((n_atoms, 2), float(system), dtype=torch.float64),
            samples=Labels(["system", "atom"], samples),
            components=[],
            properties=Labels.range("p", 2),
        )
        return TensorMap(Labels.range("key", 1), [block])


    dist.init_process_group("gloo")
    rank = dist.get_rank()
    assert rank == int(os.environ["RANK"])
    assert dist.get_world_size() == int(os.environ["WORLD_SIZE"])

    dataset = Dataset(
        features=tensor,
        energy=[torch.tensor(float(i)) for i in range(N_SAMPLES)],
        size=N_SAMPLES,
    )
    sampler = torch.utils.data.DistributedSampler(dataset, shuffle=True, seed=3)
    sampler.set_epoch(1)
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, sampler=sampler)

    seen = []
    n_atoms = torch.zeros(1, dtype=torch.float64)
    energy = torch.zeros(1, dtype=torch.float64)
    for batch in loader:
        block = batch.features.block(0)
        systems = torch.unique(torch.as_tensor(block.samples.column("system")))
        seen.extend(int(s) for s in systems)
        assert batch.energy.shape == (len(systems), 1)
        n_atoms += block.values.shape[0]
        energy += batch.energy.sum()

    # reduce batch quantities over the two processes
    dist.all_reduce(n_atoms, op=dist.ReduceOp.SUM)
    dist.all_reduce(energy, op=dist.ReduceOp.SUM)
    counts = torch.tensor([len(seen)])
    dist.all_reduce(counts, op=dist.ReduceOp.MAX)

    with open(sys.argv[1], "w") as fd:
        json.dump(
            {
                "rank": rank,
                "seen": seen,
                "n_atoms": float(n_atoms),
                "energy": float(energy),
                "max_count": int(counts),
            },
            fd,
        )
    dist.destroy_process_group()
    """
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_distributed_sampler(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)

    port = free_port()
    processes = []
    outputs = []
    for rank in range(WORLD_SIZE):
        env = dict(os.environ)
        env.update(
            {
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "WORLD_SIZE": str(WORLD_SIZE),
                "LOCAL_WORLD_SIZE": str(WORLD_SIZE),
                # one thread per process, the machine might be small
                "OMP_NUM_THREADS": "1",
            }
        )
        if sys.platform.startswith("linux"):
            # only talk through the loopback interface
            env["GLOO_SOCKET_IFNAME"] = "lo"
        output = tmp_path / f"rank-{rank}.json"
        outputs.append(output)
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(script),
                    str(output),
                    str(N_SAMPLES),
                    str(BATCH_SIZE),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )

    logs = []
    try:
        for process in processes:
            stdout, _ = process.communicate(timeout=120)
            logs.append(stdout)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    for rank, process in enumerate(processes):
        assert process.returncode == 0, f"rank {rank} failed:\n{logs[rank]}"

    results = [json.loads(output.read_text()) for output in outputs]
    assert [result["rank"] for result in results] == [0, 1]

    # the two ranks together see every sample exactly once
    per_rank = [result["seen"] for result in results]
    assert len(per_rank[0]) == len(per_rank[1]) == N_SAMPLES // WORLD_SIZE
    assert sorted(per_rank[0] + per_rank[1]) == list(range(N_SAMPLES))
    # the sampler shuffled the data
    assert per_rank[0] != sorted(per_rank[0]) or per_rank[1] != sorted(per_rank[1])

    # all_reduce of batch quantities gives the totals over the whole dataset
    total_atoms = sum(1 + system % 3 for system in range(N_SAMPLES))
    total_energy = float(sum(range(N_SAMPLES)))
    for result in results:
        assert result["n_atoms"] == total_atoms
        assert result["energy"] == total_energy
        assert result["max_count"] == N_SAMPLES // WORLD_SIZE
