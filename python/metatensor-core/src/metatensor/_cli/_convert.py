"""``mts convert``: rewrite a file with another dtype or compression."""

import os
import zipfile
from typing import Optional, TextIO

import numpy as np

from ._reader import CliError, MtsFile, convert_errors


_DTYPES = {"float32": np.float32, "float64": np.float64}


def _converted_block(block, dtype):
    from .._block import TensorBlock

    values = np.asarray(block.values)
    if dtype is not None and values.dtype != dtype:
        if values.dtype.kind not in "fc":
            raise CliError(
                f"can not convert values of type {values.dtype} to {np.dtype(dtype)}"
            )
        values = values.astype(dtype)
    result = TensorBlock(values, block.samples, block.components, block.properties)
    for parameter in block.gradients_list():
        gradient = _converted_block(block.gradient(parameter), dtype)
        result.add_gradient(parameter, gradient)
    return result


def _convert_data(data, kind: str, dtype):
    from .._tensor import TensorMap

    if dtype is None:
        return data
    if kind == "block":
        return _converted_block(data, dtype)
    blocks = [_converted_block(block, dtype) for block in data.blocks()]
    result = TensorMap(data.keys, blocks)
    for key, value in data.info().items():
        result.set_info(key, value)
    return result


def _write_compressed(file, data, kind: str):
    from ..io import _save

    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, header, payload in _save.archive_members(data, kind):
            info = zipfile.ZipInfo(name.decode("utf8"), date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            size = len(header) + len(payload)
            with archive.open(info, "w", force_zip64=size > 0x7FFFFFFF) as member:
                if header:
                    member.write(header)
                if len(payload) != 0:
                    member.write(payload)


def _convert(input_path: str, output_path: str, dtype_name, compress, output):
    from .. import io
    from ..io import _save

    file = convert_errors(MtsFile, input_path, path=input_path)
    kind = file.kind
    file.close()

    dtype = None if dtype_name is None else _DTYPES[dtype_name]
    if kind == "labels":
        if dtype is not None or compress:
            raise CliError(
                "Labels files can not be converted to another dtype or compressed",
                input_path,
            )
        data = convert_errors(io.load_labels, input_path, path=input_path)
    elif kind == "block":
        data = convert_errors(io.load_block, input_path, path=input_path)
    else:
        # read (not mapped) to verify the checksums of the data being copied
        data = convert_errors(io.load, input_path, path=input_path)

    data = _convert_data(data, kind, dtype)

    def write(stream):
        if kind == "labels":
            stream.write(_save.labels_file(data))
        elif compress:
            _write_compressed(stream, data, kind)
        else:
            _save.write_archive(stream, _save.archive_members(data, kind))

    # replace the output only once it is complete, as `save` does
    convert_errors(
        _save.write_file_atomically, os.fspath(output_path), write, path=output_path
    )
    output.write(
        f"wrote {output_path} ({'DEFLATE-compressed' if compress else 'uncompressed'}"
        + (f", {dtype_name}" if dtype_name else "")
        + ")\n"
    )
    return 0


def convert(
    input_path: str,
    output_path: str,
    dtype: Optional[str],
    compress: bool,
    output: TextIO,
) -> int:
    """``mts convert``.

    :param input_path: the file to read
    :param output_path: the file to write (replaced once complete)
    :param dtype: ``"float32"``, ``"float64"`` or ``None`` to keep the dtype
    :param compress: write DEFLATE-compressed members
    :param output: where to print
    :return: the exit status
    """
    return _convert(input_path, output_path, dtype, compress, output)
