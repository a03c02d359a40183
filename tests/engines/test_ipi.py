"""The i-PI client (``python -m metatensor.torch.atomistic.ipi``) against an i-PI
server: path-integral molecular dynamics with the input of
``examples/engines/ipi``, several clients sharing the beads, and batched
requests."""

import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest


pytest.importorskip("ipi")
ase_io = pytest.importorskip("ase.io")

from metatensor.torch.atomistic.ase_calculator import MetatomicCalculator  # noqa: E402
from metatensor.torch.atomistic.ipi import IPIClient, _batch_size  # noqa: E402


ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "engines" / "ipi"
sys.path.insert(0, str(ROOT / "examples" / "engines"))

from many_body_model import many_body_model  # noqa: E402


BIN = pathlib.Path(sys.executable).parent
TIMEOUT = 150  # seconds for a whole simulation, server and clients


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.pt"
    many_body_model().save(str(path))
    return path


def _environment():
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _start(command, directory, log_name):
    log = open(directory / log_name, "w")
    process = subprocess.Popen(
        command,
        cwd=directory,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_environment(),
        start_new_session=True,
    )
    log.close()
    return process


def _kill(process):
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def _run_simulation(directory, model_path, address, n_clients, port=None):
    """Run ``i-pi input.xml`` in ``directory`` with ``n_clients`` clients (on
    the unix socket ``address``, or TCP on ``port``) and return their logs;
    every process is killed on failure or timeout."""
    socket_path = pathlib.Path(f"/tmp/ipi_{address}")
    processes = []
    try:
        server = _start([str(BIN / "i-pi"), "input.xml"], directory, "server.log")
        processes.append(server)
        deadline = time.monotonic() + TIMEOUT
        while port is None and not socket_path.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "the i-PI server did not open its socket:\n"
                    + (directory / "server.log").read_text()
                )
            time.sleep(0.1)

        client = [
            sys.executable,
            "-m",
            "metatensor.torch.atomistic.ipi",
            str(model_path),
            "--template",
            "init.extxyz",
            "--address",
            address,
        ]
        client += ["--unix"] if port is None else ["--port", str(port)]
        clients = [
            _start(client, directory, f"client-{i}.log") for i in range(n_clients)
        ]
        processes.extend(clients)

        for process in processes:
            remaining = max(deadline - time.monotonic(), 1.0)
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"the simulation did not finish within {TIMEOUT} s:\n"
                    + (directory / "server.log").read_text()
                ) from None

        logs = [(directory / f"client-{i}.log").read_text() for i in range(n_clients)]
        server_log = (directory / "server.log").read_text()
        assert server.returncode == 0, server_log
        for process, log in zip(clients, logs):
            assert process.returncode == 0, log
        return logs
    finally:
        for process in processes:
            _kill(process)
        if socket_path.exists():
            socket_path.unlink()


def _prepare(tmp_path, n_steps, socket_options=""):
    address = f"mts-test-{uuid.uuid4().hex[:12]}"
    for name in ["input.xml", "init.extxyz"]:
        shutil.copy(EXAMPLE / name, tmp_path / name)
    text = (tmp_path / "input.xml").read_text()
    text = re.sub(
        r"<total_steps>\s*\d+\s*</total_steps>",
        f"<total_steps> {n_steps} </total_steps>",
        text,
    )
    text = text.replace("metatensor-cu-al", address)
    text = text.replace("</address>", "</address>" + socket_options)
    (tmp_path / "input.xml").write_text(text)
    return address


def _step_zero_forces(path):
    """The forces of the first frame of an i-PI trajectory in ``ase`` format."""
    return ase_io.read(path, index=0).get_forces()


def _reference_forces(model_path):
    atoms = ase_io.read(EXAMPLE / "init.extxyz")
    atoms.calc = MetatomicCalculator(str(model_path))
    return atoms.get_forces()


def _evaluations(log):
    match = re.search(r"after (\d+) evaluations", log)
    assert match is not None, log
    return int(match.group(1))


def test_pimd_two_clients(tmp_path, model_path):
    n_steps = 4
    address = _prepare(tmp_path, n_steps)
    logs = _run_simulation(tmp_path, model_path, address, n_clients=2)

    # 2 beads at each of the n_steps + 1 force evaluations, shared by the clients
    evaluations = [_evaluations(log) for log in logs]
    assert all(count > 0 for count in evaluations), logs
    assert sum(evaluations) == 2 * (n_steps + 1)

    output = np.loadtxt(tmp_path / "simulation.out", ndmin=2)
    np.testing.assert_array_equal(output[:, 0], np.arange(n_steps + 1))
    assert np.all(np.isfinite(output))

    # both beads start at the positions of the input file; i-PI prints forces
    # with 8 decimals, and converts units with 8-digit constants
    reference = _reference_forces(model_path)
    for bead in range(2):
        forces = _step_zero_forces(tmp_path / f"simulation.for_{bead}.extxyz")
        np.testing.assert_allclose(forces, reference, rtol=1e-6, atol=2e-8)


def test_batched_requests(tmp_path, model_path):
    # i-PI sends both beads to one client in one message, which evaluates them
    # together
    n_steps = 2
    address = _prepare(tmp_path, n_steps, "<batch_size> 2 </batch_size>")
    (log,) = _run_simulation(tmp_path, model_path, address, n_clients=1)
    assert _evaluations(log) == 2 * (n_steps + 1)

    reference = _reference_forces(model_path)
    for bead in range(2):
        forces = _step_zero_forces(tmp_path / f"simulation.for_{bead}.extxyz")
        np.testing.assert_allclose(forces, reference, rtol=1e-6, atol=2e-8)


def test_tcp_socket(tmp_path, model_path):
    n_steps = 1
    _prepare(tmp_path, n_steps)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    text = (tmp_path / "input.xml").read_text()
    text = re.sub(
        r"<ffsocket name='metatensor' mode='unix' pbc='false'>\s*<address>.*</address>",
        f"<ffsocket name='metatensor' mode='inet' pbc='false'>"
        f"<address> localhost </address> <port> {port} </port>",
        text,
    )
    assert "mode='inet'" in text
    (tmp_path / "input.xml").write_text(text)

    (log,) = _run_simulation(tmp_path, model_path, "localhost", 1, port=port)
    assert _evaluations(log) == 2 * (n_steps + 1)
    forces = _step_zero_forces(tmp_path / "simulation.for_0.extxyz")
    np.testing.assert_allclose(forces, _reference_forces(model_path), atol=2e-7)


def test_client_compute(model_path):
    atoms = ase_io.read(EXAMPLE / "init.extxyz")
    client = IPIClient(str(model_path), atoms.numbers, atoms.pbc)
    atoms.calc = MetatomicCalculator(str(model_path))

    bohr = 1.8897261
    rng = np.random.default_rng(0)
    rattled = atoms.positions + rng.normal(scale=0.05, size=atoms.positions.shape)
    positions = np.stack([atoms.positions, rattled])
    cells = np.stack([atoms.cell.array.T, atoms.cell.array.T]) * bohr
    energies, forces, virials = client.compute(cells, positions * bohr)
    assert client.evaluations == 2

    for i in range(2):
        atoms.positions = positions[i]
        np.testing.assert_allclose(
            energies[i] / 0.036749326, atoms.get_potential_energy(), rtol=1e-12
        )
        np.testing.assert_allclose(
            forces[i] / 0.019446904, atoms.get_forces(), rtol=1e-10, atol=1e-12
        )
        virial = -atoms.get_stress(voigt=False) * atoms.get_volume()
        np.testing.assert_allclose(
            virials[i] / 0.036749326, virial.T, rtol=1e-10, atol=1e-12
        )

    with pytest.raises(ValueError, match="i-PI sent 3 atoms but the template has 32"):
        client.compute(cells[:1], np.zeros((1, 3, 3)))


def test_client_errors(model_path):
    with pytest.raises(ValueError, match="`pbc` must contain 3 booleans"):
        IPIClient(str(model_path), [29, 29], [True, True])

    client = IPIClient(str(model_path), [29, 13], [False, False, False])
    address = f"mts-test-{uuid.uuid4().hex[:12]}"
    with pytest.raises(ConnectionError, match="could not connect to the i-PI server"):
        client.serve(address, connect_timeout=0.2)


def test_batch_size():
    assert _batch_size("") == 1
    assert _batch_size(" batch_size:4") == 4
    assert _batch_size("a:1, batch_size:3") == 3
