"""``mts show`` and ``mts labels``."""

import json
from typing import Any, Dict, List, Optional, TextIO

import numpy as np

from ._reader import CliError, MtsFile, convert_errors


def human_size(size: int) -> str:
    """``size`` in bytes, as a short human-readable string.

    :param size: the size in bytes
    """
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def entries(count: int) -> str:
    """``"1 entry"``, ``"2 entries"``, ...

    :param count: the number of entries
    """
    return f"{count} entry" if count == 1 else f"{count} entries"


def _labels_text(labels: Dict[str, Any]) -> str:
    names = ", ".join(labels["names"]) if labels["names"] else "(no dimensions)"
    return f"{names} ({entries(labels['count'])})"


def _key_dict(names: List[str], values: np.ndarray) -> Dict[str, int]:
    return {name: int(v) for name, v in zip(names, values)}


def describe(file: MtsFile, max_blocks: Optional[int]) -> Dict[str, Any]:
    """Description of the content of ``file`` (what ``mts show --json``
    prints).

    :param file: the file
    :param max_blocks: describe at most this many blocks (all if ``None``)
    """
    result: Dict[str, Any] = {
        "file": file.path,
        "kind": file.kind_name,
        "file_size": file.size,
        "compressed_members": file.compressed_members,
        "members": len(file.entries),
    }
    if file.kind == "labels":
        names, _, count = file.labels_values("", 0, 0)
        result["labels"] = {"names": names, "count": count}
        return result

    blocks = []
    if file.kind == "tensor":
        names, keys, n_blocks = file.labels_values("keys.npy", 0, max_blocks)
        result["keys"] = {"names": names, "count": n_blocks}
        result["info"] = file.info()
        for i in range(len(keys)):
            block = file.block_description(f"blocks/{i}/")
            block = {"index": i, "key": _key_dict(names, keys[i]), **block}
            blocks.append(block)
    else:
        n_blocks = 1
        blocks.append(file.block_description(""))

    result["blocks"] = blocks
    result["blocks_omitted"] = n_blocks - len(blocks)
    if result["blocks_omitted"] != 0:
        # a summary of the blocks that are not shown, from the ZIP directory
        # only: the number of blocks and the size of their members
        stored = 0
        for name, entry in file.entries.items():
            if name.startswith("blocks/"):
                index = name[7:].split("/", 1)[0]
                if index.isdigit() and len(blocks) <= int(index) < n_blocks:
                    stored += entry.size
        result["omitted_summary"] = {"count": result["blocks_omitted"], "size": stored}
    return result


def _block_lines(block: Dict[str, Any], indent: str) -> List[str]:
    shape = "(" + ", ".join(str(s) for s in block["shape"]) + ")"
    lines = [
        f"{indent}values: {shape} {block['dtype']}, {human_size(block['size'])}",
        f"{indent}samples: {_labels_text(block['samples'])}",
    ]
    for component in block["components"]:
        lines.append(f"{indent}components: {_labels_text(component)}")
    if "properties" in block and "parameter" not in block:
        lines.append(f"{indent}properties: {_labels_text(block['properties'])}")
    for gradient in block["gradients"]:
        gshape = "(" + ", ".join(str(s) for s in gradient["shape"]) + ")"
        lines.append(
            f"{indent}gradient '{gradient['parameter']}': {gshape} "
            f"{gradient['dtype']}, {human_size(gradient['size'])}"
        )
        for line in _block_lines(gradient, indent + "    ")[1:]:
            lines.append(line)
    return lines


def format_description(description: Dict[str, Any]) -> str:
    """The text printed by ``mts show``.

    :param description: the output of :py:func:`describe`
    """
    compressed = description["compressed_members"]
    if description["kind"] == "Labels":
        storage = "NPY file"
    elif compressed == 0:
        storage = "uncompressed (can be memory-mapped)"
    else:
        storage = (
            f"{compressed} of {description['members']} members "
            "DEFLATE-compressed (`mts convert` writes an uncompressed copy)"
        )
    lines = [
        f"{description['file']}: {description['kind']}, "
        f"{human_size(description['file_size'])}, {storage}"
    ]
    if description["kind"] == "Labels":
        lines.append(f"labels: {_labels_text(description['labels'])}")
        return "\n".join(lines)

    if description["kind"] == "TensorMap":
        lines.append(f"keys: {_labels_text(description['keys'])}")
        for name, value in sorted(description["info"].items()):
            lines.append(f"info: {name} = {value!r}")

    for block in description["blocks"]:
        if "key" in block:
            key = ", ".join(f"{k}={v}" for k, v in block["key"].items())
            lines.append(f"block {block['index']}: {key}")
        else:
            lines.append("block:")
        lines.extend(_block_lines(block, "    "))

    omitted = description["blocks_omitted"]
    if omitted != 0:
        size = human_size(description["omitted_summary"]["size"])
        lines.append(
            f"... {omitted} more blocks ({size} of data), use --all to show them"
        )
    return "\n".join(lines)


def show(path: str, max_blocks: Optional[int], as_json: bool, output: TextIO) -> int:
    """``mts show``.

    :param path: the file
    :param max_blocks: describe at most this many blocks (all if ``None``)
    :param as_json: print JSON instead of text
    :param output: where to print
    :return: the exit status
    """
    file = convert_errors(MtsFile, path, path=path)
    try:
        description = convert_errors(describe, file, max_blocks, path=path)
    finally:
        file.close()
    if as_json:
        # one line: the pure-Python encoder used for indented output is slow
        # for files with many blocks
        output.write(json.dumps(description) + "\n")
    else:
        output.write(format_description(description) + "\n")
    return 0


# ============================================================================ #
# mts labels


def _select_block(file: MtsFile, block: Optional[str]) -> str:
    """Member prefix of the block selected by ``block`` (an index or
    ``name=value,...``)."""
    if file.kind == "block":
        if block not in (None, "0"):
            raise CliError("the file contains a single TensorBlock, use --block 0")
        return ""
    if block is None:
        raise CliError("--block is required with --axis")

    names, keys, count = file.labels_values("keys.npy")
    if "=" not in block:
        try:
            index = int(block)
        except ValueError:
            raise CliError(
                f"invalid --block '{block}': expected an index or name=value,..."
            ) from None
        if not -count <= index < count:
            raise CliError(f"block index {index} is out of range ({count} blocks)")
        return f"blocks/{index % count}/"

    mask = np.ones(count, dtype=bool)
    for part in block.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in names:
            raise CliError(
                f"'{name}' is not a key dimension, the keys are {', '.join(names)}"
            )
        try:
            mask &= keys[:, names.index(name)] == int(value)
        except ValueError:
            raise CliError(f"invalid value in --block '{part}'") from None
    matching = np.nonzero(mask)[0]
    if len(matching) != 1:
        raise CliError(f"{len(matching)} blocks match --block '{block}'")
    return f"blocks/{int(matching[0])}/"


def format_entries(
    names: List[str], values: np.ndarray, start: int, count: int
) -> List[str]:
    """Rows of a table of Labels entries, with their index.

    :param names: the names of the dimensions
    :param values: the entries to print
    :param start: the index of the first entry
    :param count: the total number of entries
    """
    index_width = max(len(str(max(start + len(values) - 1, 0))), 1)
    columns = [f"{'#':>{index_width}}"]
    widths = []
    for j, name in enumerate(names):
        width = len(name)
        if len(values) != 0:
            column = values[:, j]
            width = max(width, len(str(column.min())), len(str(column.max())))
        widths.append(width)
        columns.append(f"{name:>{width}}")
    lines = ["  ".join(columns)]
    indices = np.arange(start, start + len(values))
    for index, row in zip(indices.tolist(), values.tolist()):
        cells = [f"{index:>{index_width}}"]
        cells.extend(f"{v:>{w}}" for v, w in zip(row, widths))
        lines.append("  ".join(cells))
    return lines


def labels(
    path: str,
    block: Optional[str],
    axis: Optional[str],
    gradient: Optional[str],
    start: int,
    limit: Optional[int],
    output: TextIO,
) -> int:
    """``mts labels``.

    :param path: the file
    :param block: the block (index or ``name=value,...``), ``None`` for the keys
    :param axis: ``"samples"``, ``"components"`` or ``"properties"``
    :param gradient: the gradient parameter, if any
    :param start: the first entry to print
    :param limit: the number of entries to print (all if ``None``)
    :param output: where to print
    :return: the exit status
    """
    file = convert_errors(MtsFile, path, path=path)
    try:
        return convert_errors(
            _labels, file, block, axis, gradient, start, limit, output, path=path
        )
    finally:
        file.close()


def _labels(file, block, axis, gradient, start, limit, output) -> int:
    if file.kind == "labels":
        if block is not None or axis is not None or gradient is not None:
            raise CliError("this file contains Labels, --block/--axis do not apply")
        members = [("labels", "")]
    elif file.kind == "tensor" and block is None and axis is None and gradient is None:
        members = [("keys", "keys.npy")]
    else:
        axis = axis or "samples"
        prefix = _select_block(file, block)
        if gradient is not None:
            if gradient not in file.gradients.get(prefix, ()):
                available = ", ".join(sorted(file.gradients.get(prefix, ()))) or "none"
                raise CliError(
                    f"this block has no gradient '{gradient}' (gradients: {available})"
                )
            if axis == "properties":
                raise CliError("gradients share the properties of their block")
            prefix += f"gradients/{gradient}/"
        if axis == "components":
            n_components = len(file.header(prefix + "values.npy").shape) - 2
            members = [
                (f"components[{i}]", prefix + f"components/{i}.npy")
                for i in range(n_components)
            ]
            if not members:
                output.write("this block has no components\n")
                return 0
        else:
            members = [(axis, prefix + f"{axis}.npy")]

    for title, member in members:
        stop = None if limit is None else start + limit
        names, values, count = file.labels_values(member, start, stop)
        shown = f"entries {start} to {start + len(values) - 1}" if len(values) else ""
        header = f"{title}: {', '.join(names) or '(no dimensions)'}, {entries(count)}"
        if len(values) != count:
            header += f" (showing {shown})" if shown else " (none shown)"
        output.write(header + "\n")
        output.write("\n".join(format_entries(names, values, start, count)) + "\n")
        remaining = count - start - len(values)
        if remaining > 0:
            more = "entry" if remaining == 1 else "entries"
            output.write(
                f"... {remaining} more {more}, use --start {start + len(values)} "
                "or --all\n"
            )
    return 0
