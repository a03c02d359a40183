"""Serialization of :py:class:`System` to ``.mta`` files and buffers.

A ``.mta`` file is a ZIP archive (members stored without compression) with:

* ``types.npy`` (int32), ``positions.npy`` (float64), ``cell.npy`` (float64) and
  ``pbc.npy`` (bool), in the NPY format;
* for each neighbor list ``i`` (in the order of
  :py:meth:`System.known_neighbor_lists`), ``pairs/<i>/options.json`` (the JSON
  state of the :py:class:`NeighborListOptions`) and ``pairs/<i>/data.mts`` (the
  :py:class:`TensorBlock`, in metatensor's ``.mts`` format);
* for each custom data ``name``, ``data/<name>.mts`` (the
  :py:class:`TensorMap`).

Positions and cell are always written as float64 (for compatibility with other
readers of this format, float32/float16 data is converted losslessly), while the
neighbor lists and data keep their own dtype, which is the dtype of the system.
When loading, the system gets back this dtype: the positions and cell are
converted to the dtype of the stored neighbor lists and data (all of them share
the same dtype), or stay float64 when the file has neither. Pickling a system
also records its dtype, so that ``pickle`` round trips keep it in every case.
Systems are always loaded on the CPU, and the data is detached from any
computational graph when saving.

These functions are only available in Python: in TorchScript they compile but
raise an error when called.
"""

import io
import os
import pathlib
import tempfile
import zipfile
from typing import Optional

import numpy as np
import torch

from .._io import load_block_buffer as _load_block_buffer
from .._io import load_buffer as _load_buffer
from .._io import save_buffer as _save_buffer
from .._labels import _not_in_torchscript
from .._tensor import TensorMap
from ._system import NeighborListOptions, System


# ============================================================================ #
# writing


def _npy_bytes(array: np.ndarray) -> bytes:
    output = io.BytesIO()
    np.save(output, array, allow_pickle=False)
    return output.getvalue()


def _detached_tensor_map(tensor: TensorMap) -> TensorMap:
    """A copy of ``tensor`` on CPU, without autograd history (sharing memory
    when possible)."""
    from .._block import TensorBlock

    tensor = tensor.to("cpu")
    blocks = []
    for block in tensor.blocks():
        new_block = TensorBlock(
            block.values.detach(), block.samples, block.components, block.properties
        )
        for parameter, gradient in block.gradients():
            if len(gradient.gradients_list()) != 0:
                raise ValueError(
                    "can not save custom data with gradients of gradients in a system"
                )
            new_block.add_gradient(
                parameter,
                TensorBlock(
                    gradient.values.detach(),
                    gradient.samples,
                    gradient.components,
                    gradient.properties,
                ),
            )
        blocks.append(new_block)
    result = TensorMap(tensor.keys, blocks)
    for key, value in tensor.info().items():
        result.set_info(key, value)
    return result


def _system_bytes(system: System) -> bytes:
    if not isinstance(system, System):
        raise TypeError(f"`system` must be a System, got {type(system)}")
    from .._block import TensorBlock

    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(
            "types.npy", _npy_bytes(system.types.cpu().numpy().astype(np.int32))
        )
        archive.writestr(
            "positions.npy",
            _npy_bytes(system.positions.detach().cpu().to(torch.float64).numpy()),
        )
        archive.writestr(
            "cell.npy",
            _npy_bytes(system.cell.detach().cpu().to(torch.float64).numpy()),
        )
        archive.writestr(
            "pbc.npy", _npy_bytes(system.pbc.cpu().numpy().astype(np.bool_))
        )
        for i, options in enumerate(system.known_neighbor_lists()):
            neighbors = system.get_neighbor_list(options).to("cpu")
            neighbors = TensorBlock(
                neighbors.values.detach(),
                neighbors.samples,
                neighbors.components,
                neighbors.properties,
            )
            archive.writestr(f"pairs/{i}/options.json", options.__getstate__()[0])
            archive.writestr(
                f"pairs/{i}/data.mts", _save_buffer(neighbors).numpy().tobytes()
            )
        for name in system.known_data():
            tensor = _detached_tensor_map(system.get_data(name))
            archive.writestr(f"data/{name}.mts", _save_buffer(tensor).numpy().tobytes())
    return output.getvalue()


def _save_eager(file, system: System):
    data = _system_bytes(system)
    if isinstance(file, (str, pathlib.Path)):
        path = str(file)
        if not path.endswith(".mta"):
            raise RuntimeError(
                f"the path to save a system must end with '.mta', got '{path}'"
            )
        # write to a temporary file first, to never leave a partial file
        directory = os.path.dirname(os.path.abspath(path))
        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".mta.tmp")
        try:
            with os.fdopen(handle, "wb") as output:
                output.write(data)
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
    elif hasattr(file, "write"):
        file.write(data)
    else:
        raise TypeError(
            "`file` must be a str, a pathlib.Path or a writable file-like object, "
            f"got {type(file)}"
        )


def _save_buffer_eager(system: System) -> torch.Tensor:
    return torch.frombuffer(bytearray(_system_bytes(system)), dtype=torch.uint8)


# ============================================================================ #
# reading


def _read_npy(archive: zipfile.ZipFile, name: str, kind: str) -> np.ndarray:
    try:
        data = archive.read(name)
    except KeyError:
        raise ValueError(f"invalid system file: missing '{name}'") from None
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as error:
        raise ValueError(
            f"invalid system file: could not read '{name}': {error}"
        ) from None
    if array.dtype.kind != kind:
        raise ValueError(
            f"invalid system file: unexpected dtype {array.dtype} for '{name}'"
        )
    return array


def _pair_indexes(names) -> list:
    indexes = set()
    for name in names:
        parts = name.split("/")
        if len(parts) == 3 and parts[0] == "pairs" and parts[2] == "options.json":
            try:
                indexes.add(int(parts[1]))
            except ValueError:
                raise ValueError(
                    f"invalid system file: unexpected member '{name}'"
                ) from None
    return sorted(indexes)


def _system_from_bytes(data, dtype: Optional[torch.dtype] = None) -> System:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data), "r")
    except zipfile.BadZipFile:
        raise ValueError("invalid system data: this is not a ZIP archive") from None

    with archive:
        names = archive.namelist()
        types = _read_npy(archive, "types.npy", "i")
        positions = _read_npy(archive, "positions.npy", "f")
        cell = _read_npy(archive, "cell.npy", "f")
        pbc = _read_npy(archive, "pbc.npy", "b")

        pairs = []
        for i in _pair_indexes(names):
            state = archive.read(f"pairs/{i}/options.json").decode("utf8")
            options = NeighborListOptions.__new__(NeighborListOptions)
            options.__setstate__((state,))
            try:
                block_data = archive.read(f"pairs/{i}/data.mts")
            except KeyError:
                raise ValueError(
                    f"invalid system file: missing 'pairs/{i}/data.mts'"
                ) from None
            block = _load_block_buffer(
                torch.frombuffer(bytearray(block_data), dtype=torch.uint8)
            )
            pairs.append((options, block))

        extra = []
        for name in names:
            if name.startswith("data/") and name.endswith(".mts"):
                tensor = _load_buffer(
                    torch.frombuffer(bytearray(archive.read(name)), dtype=torch.uint8)
                )
                extra.append((name[5:-4], tensor))

    if dtype is None:
        dtype = torch.float64
        stored = [block.dtype for _, block in pairs]
        stored += [tensor.dtype for _, tensor in extra if len(tensor) != 0]
        if len(stored) != 0:
            dtype = stored[0]

    system = System(
        types=torch.from_numpy(np.ascontiguousarray(types)).to(torch.int32),
        positions=torch.from_numpy(np.ascontiguousarray(positions)).to(dtype),
        cell=torch.from_numpy(np.ascontiguousarray(cell)).to(dtype),
        pbc=torch.from_numpy(np.ascontiguousarray(pbc)).to(torch.bool),
    )
    for options, block in pairs:
        system.add_neighbor_list(options, block)
    for name, tensor in extra:
        system.add_data(name, tensor, _private_warn_on_deprecated=False)
    return system


def _load_system_eager(file) -> System:
    if isinstance(file, (str, pathlib.Path)):
        with open(file, "rb") as input:
            data = input.read()
    elif hasattr(file, "read"):
        data = file.read()
    else:
        raise TypeError(
            "`file` must be a str, a pathlib.Path or a readable file-like object, "
            f"got {type(file)}"
        )
    return _system_from_bytes(data)


def _load_system_buffer_eager(buffer) -> System:
    if not isinstance(buffer, torch.Tensor):
        raise TypeError(f"`buffer` must be a torch.Tensor, got {type(buffer)}")
    if buffer.dtype != torch.uint8 or buffer.dim() != 1:
        raise ValueError(
            "`buffer` must be a 1-dimensional tensor of uint8, got a tensor with "
            f"dtype {buffer.dtype} and {buffer.dim()} dimensions"
        )
    return _system_from_bytes(buffer.cpu().contiguous().numpy().tobytes())


# ============================================================================ #
# public functions


def save(file: str, system: System):
    """Save a :py:class:`System` (with its neighbor lists and custom data) to a
    ``.mta`` file, see :py:mod:`metatensor.torch.atomistic` for the format.

    :param file: path of the file, which must end with ``.mta`` (``str`` or
        ``pathlib.Path``), or a writable binary file-like object
    :param system: the system to save
    """
    if torch.jit.is_scripting():
        raise RuntimeError(_not_in_torchscript("metatensor.torch.atomistic.save"))
    else:
        _save_eager(file, system)


def save_buffer(system: System) -> torch.Tensor:
    """Save a :py:class:`System` to an in-memory buffer, a 1-D ``uint8`` tensor
    with the content of a ``.mta`` file.

    :param system: the system to save
    """
    if torch.jit.is_scripting():
        raise RuntimeError(
            _not_in_torchscript("metatensor.torch.atomistic.save_buffer")
        )
    else:
        return _save_buffer_eager(system)


def load_system(file: str) -> System:
    """Load a :py:class:`System` from a ``.mta`` file, on the CPU.

    :param file: path of the file (``str`` or ``pathlib.Path``) or a readable
        binary file-like object
    """
    if torch.jit.is_scripting():
        raise RuntimeError(
            _not_in_torchscript("metatensor.torch.atomistic.load_system")
        )
    else:
        return _load_system_eager(file)


def load_system_buffer(buffer: torch.Tensor) -> System:
    """Load a :py:class:`System` from an in-memory buffer created by
    :py:func:`save_buffer`, on the CPU.

    :param buffer: 1-D ``uint8`` tensor
    """
    if torch.jit.is_scripting():
        raise RuntimeError(
            _not_in_torchscript("metatensor.torch.atomistic.load_system_buffer")
        )
    else:
        return _load_system_buffer_eager(buffer)


# ============================================================================ #
# pickling (added to the class after its compilation)


def _unpickle_system(data: bytes, dtype: str) -> System:
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise ValueError(f"invalid dtype '{dtype}' in pickled System")
    return _system_from_bytes(data, torch_dtype)


def _system_reduce(self):
    dtype = str(self.dtype).replace("torch.", "")
    return (_unpickle_system, (_system_bytes(self), dtype))


System.__reduce__ = _system_reduce
