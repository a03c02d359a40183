"""A force client for the `i-PI <https://ipi-code.org/>`_ path-integral and
molecular dynamics server, running an :py:class:`AtomisticModel`.

i-PI propagates the nuclei (beads of path-integral simulations, replicas, ...)
and asks its clients for the energy, forces and virial of each configuration
over a unix or TCP socket. Start the server, then one or more clients:

.. code-block:: bash

    i-pi input.xml &
    python -m metatensor.torch.atomistic.ipi model.pt \\
        --template init.extxyz --address metatensor --unix

Several clients connected to the same address share the work (for example one
bead each). A client serves requests until the server sends its exit message or
closes the connection, then returns.

The atomic types and the order of the atoms come from the ``template`` (any
structure file ASE reads; its positions and cell are not used, i-PI sends
them), and so does the periodicity: the cell sent by i-PI is used along the
periodic directions of the template and ignored along the others.

Units: i-PI works in atomic units (Bohr, Hartree); positions and cells are
converted to Å and energies, forces and virials from eV with the conversion
factors of i-PI itself, so that values printed by i-PI in eV and Å are those of
the model. The virial sent to i-PI is :math:`W = -\\partial E / \\partial
\\varepsilon` (:math:`\\sum_i r_i \\otimes f_i` for a pair potential).

This module implements the socket protocol of i-PI itself (including the
batched requests of i-PI 3.3, announced with ``batch_size`` in the
initialization string): the client does not import the ``ipi`` package.
"""

import argparse
import os
import socket
import sys
import time
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ._evaluator import ModelEvaluator


__all__ = ["IPIClient", "main"]

# unit conversions used by i-PI (``ipi.utils.units``), from the units of the
# model (Å and eV) to atomic units
ANGSTROM_TO_BOHR = 1.8897261
EV_TO_HARTREE = 0.036749326
EV_PER_ANGSTROM_TO_ATOMIC = 0.019446904

HEADER_LENGTH = 12


def _message(text: str) -> bytes:
    return text.upper().ljust(HEADER_LENGTH).encode("ascii")


STATUS = _message("STATUS")
INIT = _message("INIT")
POSDATA = _message("POSDATA")
GETFORCE = _message("GETFORCE")
EXIT = _message("EXIT")
NEEDINIT = _message("NEEDINIT")
READY = _message("READY")
HAVEDATA = _message("HAVEDATA")
FORCEREADY = _message("FORCEREADY")


class ServerClosed(Exception):
    """The server closed the connection."""


def _recv_exactly(connection: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    received = 0
    while received < size:
        count = connection.recv_into(view[received:], size - received)
        if count == 0:
            raise ServerClosed()
        received += count
    return bytes(buffer)


def _recv_array(connection: socket.socket, dtype: Any, count: int) -> np.ndarray:
    dtype = np.dtype(dtype)
    return np.frombuffer(_recv_exactly(connection, dtype.itemsize * count), dtype)


def _recv_int(connection: socket.socket) -> int:
    return int(_recv_array(connection, np.int32, 1)[0])


def _connect(
    address: str,
    unix: bool,
    port: int,
    sockets_prefix: str,
    connect_timeout: float,
) -> socket.socket:
    deadline = time.monotonic() + connect_timeout
    while True:
        if unix:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: Any = sockets_prefix + address
        else:
            connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # the messages of the protocol are small: send them immediately
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            target = (address, port)
        try:
            connection.connect(target)
            return connection
        except (FileNotFoundError, ConnectionRefusedError):
            connection.close()
            if time.monotonic() > deadline:
                raise ConnectionError(
                    f"could not connect to the i-PI server at {target!r} within "
                    f"{connect_timeout} s: is `i-pi` running with this address "
                    f"({'unix' if unix else 'inet'} socket)?"
                ) from None
            time.sleep(0.1)


class IPIClient:
    """Evaluates a model for an i-PI server.

    :param model: the model, as the path to a saved model or an
        :py:class:`AtomisticModel` (Python or scripted)
    :param types: the atomic number of every atom, in the order of i-PI
    :param pbc: the periodic directions (three booleans): the cell sent by i-PI
        is used along these directions and ignored along the others
    :param device: the torch device to run the model on (by default the
        model's preferred device)
    :param check_consistency: run the consistency checks of the model at each
        evaluation
    """

    def __init__(
        self,
        model: Any,
        types: Sequence[int],
        pbc: Sequence[bool] = (True, True, True),
        *,
        device: Optional[str] = None,
        check_consistency: bool = False,
    ):
        self.types = np.asarray(types, dtype=np.int32).reshape(-1)
        self.pbc = np.asarray(pbc, dtype=bool).reshape(-1)
        if self.pbc.shape != (3,):
            raise ValueError(f"`pbc` must contain 3 booleans, got {pbc!r}")
        self.evaluator = ModelEvaluator(
            model, device=device, check_consistency=check_consistency
        )
        self.evaluator.check_types(self.types)
        self.evaluations = 0
        """the number of structures evaluated so far"""

    def compute(
        self, cells: np.ndarray, positions: np.ndarray
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Energies, forces and virials of a batch of structures, in atomic
        units.

        :param cells: the cells in Bohr, ``(n_structures, 3, 3)``, with the
            cell vectors as columns (the layout of i-PI)
        :param positions: the positions in Bohr, ``(n_structures, n_atoms, 3)``
        :return: energies ``(n_structures,)`` in Hartree, forces ``(n_structures,
            n_atoms, 3)`` in Hartree/Bohr and virials ``(n_structures, 3, 3)`` in
            Hartree, in the layout of i-PI (the transpose of
            :math:`\\sum_i r_i \\otimes f_i`)
        """
        n_structures, n_atoms = positions.shape[:2]
        if n_atoms != len(self.types):
            raise ValueError(
                f"i-PI sent {n_atoms} atoms but the template has {len(self.types)}: "
                "use the same structure for i-PI and the client template"
            )
        # i-PI's cells have the vectors in columns, ours in rows
        cells_angstrom = np.transpose(cells, (0, 2, 1)) / ANGSTROM_TO_BOHR
        cells_angstrom = cells_angstrom * self.pbc.reshape(1, 3, 1)
        positions_angstrom = positions / ANGSTROM_TO_BOHR

        systems = [
            (self.types, positions_angstrom[i], cells_angstrom[i], self.pbc)
            for i in range(n_structures)
        ]
        if n_structures == 1:
            results = [self.evaluator.compute(*systems[0])]
        else:
            results = self.evaluator.compute_batch(systems)
        self.evaluations += n_structures

        energies = np.array([r["energy"] for r in results]) * EV_TO_HARTREE
        forces = np.stack([r["forces"] for r in results]) * EV_PER_ANGSTROM_TO_ATOMIC
        virials = np.stack([r["virial"].T for r in results]) * EV_TO_HARTREE
        return energies, forces, virials

    def serve(
        self,
        address: str,
        *,
        unix: bool = True,
        port: int = 31415,
        sockets_prefix: str = "/tmp/ipi_",
        connect_timeout: float = 60.0,
    ) -> None:
        """Connect to the server and answer its requests until it exits.

        :param address: the name of the unix socket (the ``<address>`` of
            i-PI's ``<ffsocket mode="unix">``) or the host name of the server
        :param unix: use a unix socket (``sockets_prefix + address``) instead
            of TCP
        :param port: the TCP port, for TCP sockets
        :param sockets_prefix: where i-PI creates its unix sockets
        :param connect_timeout: how long to wait (s) for the server to open the
            socket
        """
        connection = _connect(address, unix, port, sockets_prefix, connect_timeout)
        try:
            self._serve(connection)
        except ServerClosed:
            pass
        finally:
            connection.close()

    def _serve(self, connection: socket.socket) -> None:
        initialized = False
        batch_size = 1
        results: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None
        while True:
            header = _recv_exactly(connection, HEADER_LENGTH)
            if header == STATUS:
                if not initialized:
                    connection.sendall(NEEDINIT)
                elif results is not None:
                    connection.sendall(HAVEDATA)
                else:
                    connection.sendall(READY)
            elif header == INIT:
                _recv_int(connection)  # replica index, not used
                length = _recv_int(connection)
                text = _recv_exactly(connection, length).decode("utf-8", "replace")
                batch_size = _batch_size(text)
                initialized = True
            elif header == POSDATA:
                if batch_size == 1:
                    cells = _recv_array(connection, np.float64, 9).reshape(1, 3, 3)
                    _recv_array(connection, np.float64, 9)  # inverse cell
                    n_atoms = _recv_int(connection)
                    positions = _recv_array(connection, np.float64, 3 * n_atoms)
                else:
                    n_atoms = _recv_int(connection)
                    # cell and inverse cell of every structure, then positions
                    both = _recv_array(connection, np.float64, 18 * batch_size)
                    cells = both.reshape(batch_size, 2, 3, 3)[:, 0]
                    positions = _recv_array(
                        connection, np.float64, 3 * n_atoms * batch_size
                    )
                positions = positions.reshape(-1, n_atoms, 3)
                results = self.compute(cells, positions)
            elif header == GETFORCE:
                if results is None:
                    raise RuntimeError("i-PI asked for forces before sending positions")
                connection.sendall(FORCEREADY + _force_message(*results, batch_size))
                results = None
            elif header == EXIT:
                return
            else:
                raise RuntimeError(f"unexpected message from i-PI: {header!r}")


def _batch_size(init_text: str) -> int:
    """The ``batch_size:N`` entry of i-PI's initialization string (1 if none)."""
    for entry in init_text.split(","):
        key, separator, value = entry.partition(":")
        if separator and key.strip() == "batch_size":
            return int(value.strip())
    return 1


def _force_message(
    energies: np.ndarray, forces: np.ndarray, virials: np.ndarray, batch_size: int
) -> bytes:
    n_atoms = np.int32(forces.shape[1])
    no_extras = np.int32(0).tobytes()
    if batch_size == 1:
        return (
            np.float64(energies[0]).tobytes()
            + n_atoms.tobytes()
            + np.ascontiguousarray(forces[0], dtype=np.float64).tobytes()
            + np.ascontiguousarray(virials[0], dtype=np.float64).tobytes()
            + no_extras
        )
    return (
        np.ascontiguousarray(energies, dtype=np.float64).tobytes()
        + n_atoms.tobytes()
        + np.ascontiguousarray(forces, dtype=np.float64).tobytes()
        + np.ascontiguousarray(virials, dtype=np.float64).tobytes()
        + no_extras * len(energies)
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m metatensor.torch.atomistic.ipi",
        description=(
            "Serve energies, forces and virials of an atomistic model to an i-PI "
            "server, until the server stops."
        ),
    )
    parser.add_argument("model", help="the saved model (e.g. model.pt)")
    parser.add_argument(
        "--template",
        required=True,
        help=(
            "a structure file ASE can read, giving the atomic types, the order of "
            "the atoms and the periodic directions"
        ),
    )
    parser.add_argument(
        "--address",
        required=True,
        help="the name of the unix socket, or the host name of the server",
    )
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument(
        "--unix", action="store_true", help="use a unix socket (the default)"
    )
    kind.add_argument(
        "--port", type=int, default=None, help="use a TCP socket on this port"
    )
    parser.add_argument(
        "--sockets-prefix",
        default="/tmp/ipi_",
        help="where i-PI creates unix sockets (default: /tmp/ipi_)",
    )
    parser.add_argument(
        "--device", default=None, help="the torch device to run the model on"
    )
    parser.add_argument(
        "--check-consistency",
        action="store_true",
        help="check the consistency of the model's inputs and outputs",
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=60.0,
        help="how long to wait for the server, in seconds (default: 60)",
    )
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """The command line client: ``python -m metatensor.torch.atomistic.ipi
    --help`` lists its arguments.

    :param argv: the command line arguments (by default ``sys.argv[1:]``)
    :return: the exit status (0 once the server stopped)
    """
    args = _parser().parse_args(argv)

    import ase.io

    if not os.path.exists(args.template):
        raise FileNotFoundError(f"--template: no file at {args.template!r}")
    template = ase.io.read(args.template)
    client = IPIClient(
        args.model,
        template.numbers,
        template.pbc,
        device=args.device,
        check_consistency=args.check_consistency,
    )
    client.serve(
        args.address,
        unix=args.port is None,
        port=args.port if args.port is not None else 0,
        sockets_prefix=args.sockets_prefix,
        connect_timeout=args.connect_timeout,
    )
    print(
        f"i-PI client: the server stopped after {client.evaluations} evaluations",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
