"""``mts diff``: do two files hold the same data?"""

from typing import List, Optional, TextIO

import numpy as np

from ._reader import CliError, MtsFile, convert_errors


# number of values compared at once, to bound the memory used for large blocks
_CHUNK = 1 << 22


class Differences:
    """Differences found so far, printing the first ``limit`` of them."""

    def __init__(self, output: TextIO, limit: int):
        self.output = output
        self.limit = limit
        self.count = 0

    def add(self, where: str, message: str):
        """Record (and print, within the limit) a difference.

        :param where: what differs (block, axis, ...)
        :param message: how it differs
        """
        if self.count < self.limit:
            self.output.write(f"{where}: {message}\n")
        self.count += 1


def _load(path: str, kind: str):
    from .. import io

    if kind == "labels":
        return io.load_labels(path)
    elif kind == "block":
        return io.load_block(path, mmap=True)
    return io.load(path, mmap=True)


def _entry_text(names: List[str], row) -> str:
    return "(" + ", ".join(f"{n}={int(v)}" for n, v in zip(names, row)) + ")"


def compare_labels(a, b, where: str, differences: Differences) -> bool:
    """Compare two Labels, reporting the first differing entries.

    :param a: the Labels of the first file
    :param b: the Labels of the second file
    :param where: what these Labels are, for the messages
    :param differences: where to report differences
    :return: whether the Labels are the same
    """
    if list(a.names) != list(b.names):
        differences.add(
            where, f"names differ: [{', '.join(a.names)}] != [{', '.join(b.names)}]"
        )
        return False
    if len(a) != len(b):
        differences.add(where, f"{len(a)} entries != {len(b)} entries")
        return False
    values_a = np.asarray(a.values)
    values_b = np.asarray(b.values)
    rows = np.nonzero(np.any(values_a != values_b, axis=1))[0]
    if len(rows) == 0:
        return True
    first = int(rows[0])
    differences.add(
        where,
        f"{len(rows)} entries differ, first at entry {first}: "
        f"{_entry_text(a.names, values_a[first])} != "
        f"{_entry_text(b.names, values_b[first])}",
    )
    return False


def _position_text(block, flat_index: int) -> str:
    """Describe the entry at ``flat_index`` in the values of ``block``."""
    index = np.unravel_index(flat_index, block.values.shape)
    samples = block.samples
    parts = [
        f"sample {index[0]} {_entry_text(samples.names, samples.values[index[0]])}"
    ]
    for i, component in enumerate(block.components):
        row = component.values[index[1 + i]]
        parts.append(f"component {_entry_text(component.names, row)}")
    row = block.properties.values[index[-1]]
    parts.append(f"property {_entry_text(block.properties.names, row)}")
    return ", ".join(parts)


def compare_values(
    a, b, where: str, rtol: float, atol: float, differences: Differences
) -> bool:
    """Compare the values of two blocks with the same metadata, in chunks.

    :param a: the block of the first file
    :param b: the block of the second file
    :param where: what these blocks are, for the messages
    :param rtol: relative tolerance
    :param atol: absolute tolerance
    :param differences: where to report differences
    :return: whether the values are the same within the tolerances
    """
    values_a = np.asarray(a.values)
    values_b = np.asarray(b.values)
    same = True
    if values_a.dtype != values_b.dtype:
        differences.add(where, f"dtype {values_a.dtype} != {values_b.dtype}")
        same = False

    flat_a = values_a.reshape(-1)
    flat_b = values_b.reshape(-1)
    n_different = 0
    first: Optional[int] = None
    max_error = 0.0
    for start in range(0, len(flat_a), _CHUNK):
        chunk_a = flat_a[start : start + _CHUNK]
        chunk_b = flat_b[start : start + _CHUNK]
        if values_a.dtype.kind in "fc" or values_b.dtype.kind in "fc":
            close = np.isclose(chunk_a, chunk_b, rtol=rtol, atol=atol, equal_nan=True)
            different = np.nonzero(~close)[0]
            if len(different) != 0:
                error = np.abs(
                    chunk_a[different].astype(np.complex128)
                    - chunk_b[different].astype(np.complex128)
                )
                finite = error[np.isfinite(error)]
                if len(finite) != 0:
                    max_error = max(max_error, float(finite.max()))
        else:
            different = np.nonzero(chunk_a != chunk_b)[0]
            if len(different) != 0:
                max_error = max(
                    max_error,
                    float(
                        np.abs(
                            chunk_a[different].astype(np.float64)
                            - chunk_b[different].astype(np.float64)
                        ).max()
                    ),
                )
        if len(different) != 0:
            if first is None:
                first = start + int(different[0])
            n_different += len(different)

    if first is None:
        return same

    differences.add(
        where,
        f"{n_different} of {len(flat_a)} values differ (rtol={rtol}, atol={atol}), "
        f"largest absolute difference {max_error:.6g}; first at "
        f"{_position_text(a, first)}: {flat_a[first].item()!r} != "
        f"{flat_b[first].item()!r}",
    )
    return False


def compare_blocks(
    a, b, where: str, rtol: float, atol: float, differences: Differences
) -> bool:
    """Compare two blocks: metadata, values and gradients.

    :param a: the block of the first file
    :param b: the block of the second file
    :param where: what these blocks are, for the messages
    :param rtol: relative tolerance
    :param atol: absolute tolerance
    :param differences: where to report differences
    :return: whether the blocks are the same
    """
    same = compare_labels(a.samples, b.samples, f"{where} samples", differences)
    if len(a.components) != len(b.components):
        differences.add(
            where,
            f"{len(a.components)} components != {len(b.components)} components",
        )
        same = False
    else:
        for i, (ca, cb) in enumerate(zip(a.components, b.components)):
            same &= compare_labels(ca, cb, f"{where} components[{i}]", differences)
    same &= compare_labels(
        a.properties, b.properties, f"{where} properties", differences
    )

    if same:
        same = compare_values(a, b, f"{where} values", rtol, atol, differences)

    gradients_a = sorted(a.gradients_list())
    gradients_b = sorted(b.gradients_list())
    if gradients_a != gradients_b:
        differences.add(
            where,
            f"gradients [{', '.join(gradients_a)}] != [{', '.join(gradients_b)}]",
        )
        same = False
    for parameter in gradients_a:
        if parameter in gradients_b:
            same &= compare_blocks(
                a.gradient(parameter),
                b.gradient(parameter),
                f"{where} gradient '{parameter}'",
                rtol,
                atol,
                differences,
            )
    return same


def _compare(path_a, path_b, rtol, atol, output, limit) -> int:
    file_a = convert_errors(MtsFile, path_a, path=path_a)
    file_a.close()
    file_b = convert_errors(MtsFile, path_b, path=path_b)
    file_b.close()
    kind_a, kind_b = file_a.kind, file_b.kind

    differences = Differences(output, limit)
    if kind_a != kind_b:
        differences.add(
            "file", f"{file_a.kind_name} in {path_a}, {file_b.kind_name} in {path_b}"
        )
        return 1

    a = convert_errors(_load, path_a, kind_a, path=path_a)
    b = convert_errors(_load, path_b, kind_b, path=path_b)
    if kind_a == "labels":
        same = compare_labels(a, b, "labels", differences)
    elif kind_a == "block":
        same = compare_blocks(a, b, "block", rtol, atol, differences)
    else:
        same = _compare_tensors(a, b, rtol, atol, differences)

    if not same:
        if differences.count > limit:
            output.write(
                f"... {differences.count - limit} more differences "
                "(--max-differences to show them)\n"
            )
        return 1
    return 0


def _compare_tensors(a, b, rtol, atol, differences: Differences) -> bool:
    keys_a, keys_b = a.keys, b.keys
    if list(keys_a.names) != list(keys_b.names):
        differences.add(
            "keys",
            f"names differ: [{', '.join(keys_a.names)}] != [{', '.join(keys_b.names)}]",
        )
        return False

    same = True
    # blocks are matched by key, the order of the keys does not matter
    for i in range(len(keys_a)):
        key = keys_a.entry(i)
        where = f"block {_entry_text(keys_a.names, keys_a.values[i])}"
        j = keys_b.position(key)
        if j is None:
            differences.add(where, f"only in the first file (block {i})")
            same = False
            continue
        same &= compare_blocks(
            a.block_by_id(i), b.block_by_id(j), where, rtol, atol, differences
        )
    for j in range(len(keys_b)):
        if keys_a.position(keys_b.entry(j)) is None:
            where = f"block {_entry_text(keys_b.names, keys_b.values[j])}"
            differences.add(where, f"only in the second file (block {j})")
            same = False

    if a.info() != b.info():
        differences.add("info", f"{dict(a.info())} != {dict(b.info())}")
        same = False
    return same


def diff(
    path_a: str, path_b: str, rtol: float, atol: float, limit: int, output: TextIO
) -> int:
    """``mts diff``.

    :param path_a: the first file
    :param path_b: the second file
    :param rtol: relative tolerance
    :param atol: absolute tolerance
    :param limit: print at most this many differences
    :param output: where to print
    :return: the exit status, 0 when the files hold the same data, 1 if not
    """
    if rtol < 0 or atol < 0:
        raise CliError("--rtol and --atol must be non-negative")
    status = _compare(path_a, path_b, rtol, atol, output, limit)
    if status == 0:
        output.write("the files hold the same data\n")
    return status
