"""``mts``: a command-line tool to look inside, compare and convert ``.mts``
files, with numpy only.

.. code-block:: text

    mts show FILE [--all | --max-blocks N] [--json]
    mts diff A B [--rtol R] [--atol A] [--max-differences N]
    mts convert IN OUT [--dtype float32|float64] [--compress | --no-compress]
    mts labels FILE [--block K] [--axis samples|components|properties]
               [--gradient P] [--start S] [--limit N | --all]

Errors about the files (missing, not an ``.mts`` file, truncated, ...) are
reported in one line naming the file, with exit status 2. ``mts diff`` exits
with 0 when the files hold the same data and 1 when they differ.
"""

import argparse
import os
import sys
from typing import List, Optional

from ._reader import CliError


__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mts",
        description="Look inside, compare and convert metatensor (.mts) files.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    show = commands.add_parser(
        "show",
        help="what a file holds: kind, keys, and for each block the shapes, "
        "dtypes, Labels and gradients",
        description="Print what a file holds, reading only its metadata.",
    )
    show.add_argument("file", metavar="FILE")
    group = show.add_mutually_exclusive_group()
    group.add_argument(
        "--all", action="store_true", help="describe every block (no summary)"
    )
    group.add_argument(
        "--max-blocks",
        type=int,
        default=10,
        metavar="N",
        help="describe the first N blocks, and summarize the others (default 10)",
    )
    show.add_argument("--json", action="store_true", help="print JSON for scripts")

    diff = commands.add_parser(
        "diff",
        help="do two files hold the same data? (exit status 0 if yes, 1 if not)",
        description="Compare two files: the keys, the metadata of every block and "
        "gradient, then the values within tolerances. Blocks are matched by key. "
        "Exit status: 0 when the data is the same, 1 when it differs, 2 on errors.",
    )
    diff.add_argument("file_a", metavar="A")
    diff.add_argument("file_b", metavar="B")
    diff.add_argument(
        "--rtol", type=float, default=0.0, help="relative tolerance (default 0)"
    )
    diff.add_argument(
        "--atol", type=float, default=0.0, help="absolute tolerance (default 0)"
    )
    diff.add_argument(
        "--max-differences",
        type=int,
        default=10,
        metavar="N",
        help="print at most N differences (default 10)",
    )

    convert = commands.add_parser(
        "convert",
        help="rewrite a file (another dtype, with or without compression)",
        description="Rewrite a file, replacing OUT atomically once complete. "
        "Uncompressed files can be memory-mapped by `load(..., mmap=True)`.",
    )
    convert.add_argument("input", metavar="IN")
    convert.add_argument("output", metavar="OUT")
    convert.add_argument(
        "--dtype", choices=["float32", "float64"], help="convert the values"
    )
    convert.add_argument(
        "--compress",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="DEFLATE-compress the members (default: --no-compress)",
    )

    labels = commands.add_parser(
        "labels",
        help="print the entries of one Labels of a file",
        description="Print the entries of the keys (default), or of one axis of "
        "one block with --block. Only the requested entries are read.",
    )
    labels.add_argument("file", metavar="FILE")
    labels.add_argument(
        "--block",
        metavar="K",
        help="block index, or key values as name=value[,name=value...]",
    )
    labels.add_argument(
        "--axis",
        choices=["samples", "components", "properties"],
        help="which Labels of the block (default: samples)",
    )
    labels.add_argument(
        "--gradient", metavar="P", help="use the gradient with respect to P"
    )
    labels.add_argument(
        "--start", type=int, default=0, metavar="S", help="first entry to print"
    )
    group = labels.add_mutually_exclusive_group()
    group.add_argument(
        "--limit",
        type=int,
        default=20,
        metavar="N",
        help="print at most N entries (default 20)",
    )
    group.add_argument("--all", action="store_true", help="print all entries")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the ``mts`` command line tool.

    :param argv: the arguments (without the program name), ``sys.argv[1:]`` if
        ``None``
    :return: the exit status
    """
    parser = _parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as e:
        # argparse exits with 2 for usage errors, 0 for --help
        return int(e.code or 0)

    output = sys.stdout
    try:
        if arguments.command == "show":
            from ._show import show

            max_blocks = None if arguments.all else arguments.max_blocks
            if max_blocks is not None and max_blocks < 0:
                raise CliError("--max-blocks must be non-negative")
            return show(arguments.file, max_blocks, arguments.json, output)
        elif arguments.command == "diff":
            from ._diff import diff

            return diff(
                arguments.file_a,
                arguments.file_b,
                arguments.rtol,
                arguments.atol,
                max(arguments.max_differences, 0),
                output,
            )
        elif arguments.command == "convert":
            from ._convert import convert

            return convert(
                arguments.input,
                arguments.output,
                arguments.dtype,
                arguments.compress,
                output,
            )
        else:
            from ._show import labels

            if arguments.start < 0 or arguments.limit < 0:
                raise CliError("--start and --limit must be non-negative")
            limit = None if arguments.all else arguments.limit
            return labels(
                arguments.file,
                arguments.block,
                arguments.axis,
                arguments.gradient,
                arguments.start,
                limit,
                output,
            )
    except CliError as e:
        where = f"{e.path}: " if e.path else ""
        sys.stderr.write(f"mts {arguments.command}: {where}{e.message}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the output was piped to a program that stopped reading (`head`, ...)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
