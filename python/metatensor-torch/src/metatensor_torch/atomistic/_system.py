"""Atomistic systems (:py:class:`System`) and the options describing their neighbor
lists (:py:class:`NeighborListOptions`).

Both classes are plain Python classes written in the TorchScript subset of
Python, compiled with ``torch.jit.script`` at the end of this module. Models
saved with TorchScript refer to them by their qualified name and store their
attributes by position, so the following is part of the model-file ABI and must
never change (a new layout needs a new module path):

* ``__torch__.metatensor_torch.atomistic._system.NeighborListOptions``:
  ``_cutoff: float``, ``_full_list: bool``, ``_strict: bool``,
  ``_length_unit: str``, ``_requestors: List[str]``. Its TorchScript pickle
  state (``__getstate__`` / ``__setstate__``) is a 1-tuple holding the JSON
  representation of the options (see :py:meth:`NeighborListOptions.__getstate__`);
* ``__torch__.metatensor_torch.atomistic._system.System``: ``_types: Tensor``
  (1-D int32), ``_positions: Tensor``, ``_cell: Tensor``, ``_pbc: Tensor``
  (bool), ``_neighbor_options: List[NeighborListOptions]`` and
  ``_neighbor_lists: List[TensorBlock]`` (two parallel lists, sorted by
  ``(strict, full_list, cutoff)``), ``_data: Dict[str, TensorMap]``.

All the functions used by the classes are free functions that do not
construct them (TorchScript can not compile recursive calls).
"""

import math
import numbers
import warnings
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor

from .. import _eager
from .._block import TensorBlock, _parse_to
from .._tensor import TensorMap
from .._utils import dtype_name
from ._formatting import _format_fixed, _format_general
from ._json_text import (
    _bits_to_double,
    _double_to_bits,
    _json_bool,
    _json_object,
    _json_optional_string,
    _json_string,
    _json_string_array,
    _parse_json,
)
from ._names import check_quantity_name
from ._units import _unit_conversion_factor, validate_unit


def _options_json(
    cutoff: float,
    full_list: bool,
    strict: bool,
    length_unit: str,
    requestors: List[str],
) -> str:
    """JSON (4-space indent, sorted keys, ASCII only) of NeighborListOptions."""
    keys = ["class", "cutoff", "full_list", "length_unit", "requestors", "strict"]
    values = [
        _json_string("NeighborListOptions"),
        str(_double_to_bits(cutoff)),
        _json_bool(full_list),
        _json_string(length_unit),
        _json_string_array(requestors, 1),
        _json_bool(strict),
    ]
    return _json_object(keys, values, 0)


# ============================================================================ #
# validation


def _check_options_arguments(cutoff: float) -> float:
    if not (cutoff > 0.0) or cutoff == math.inf:
        raise ValueError(
            "`cutoff` must be a positive finite number, got " + str(cutoff)
        )
    return cutoff


def _is_integer_dtype(dtype: torch.dtype) -> bool:
    return (
        dtype == torch.int8
        or dtype == torch.int16
        or dtype == torch.int32
        or dtype == torch.int64
        or dtype == torch.uint8
    )


def _is_float_dtype(dtype: torch.dtype) -> bool:
    return (
        dtype == torch.float64
        or dtype == torch.float32
        or dtype == torch.float16
        or dtype == torch.bfloat16
    )


def _data_checks(tensor: Tensor) -> bool:
    """Whether value-dependent checks can run on ``tensor``."""
    if tensor.device.type == "meta":
        return False
    if not torch.jit.is_scripting():
        return _eager.data_checks_enabled(tensor)
    return True


def _shape_str(tensor: Tensor) -> str:
    return "[" + ", ".join([str(s) for s in tensor.shape]) + "]"


def _check_types(types: Tensor, context: str):
    if len(types.shape) != 1:
        raise ValueError(
            context
            + " must be a 1 dimensional tensor, got a tensor with "
            + str(len(types.shape))
            + " dimensions"
        )
    if not _is_integer_dtype(types.dtype):
        raise ValueError(
            context
            + " must be a tensor of integers, got "
            + dtype_name(types.dtype)
            + " instead"
        )


def _check_positions(positions: Tensor, n_atoms: int, context: str):
    if len(positions.shape) != 2:
        raise ValueError(
            context
            + " must be a 2 dimensional tensor, got a tensor with "
            + str(len(positions.shape))
            + " dimensions"
        )
    if positions.shape[0] != n_atoms or positions.shape[1] != 3:
        raise ValueError(
            context
            + " must be a (len(types) x 3) tensor, got a tensor with shape "
            + _shape_str(positions)
        )
    if not _is_float_dtype(positions.dtype):
        raise ValueError(
            context
            + " must be a tensor of floating point data, got "
            + dtype_name(positions.dtype)
            + " instead"
        )


def _check_cell(cell: Tensor, context: str):
    if len(cell.shape) != 2:
        raise ValueError(
            context
            + " must be a 2 dimensional tensor, got a tensor with "
            + str(len(cell.shape))
            + " dimensions"
        )
    if cell.shape[0] != 3 or cell.shape[1] != 3:
        raise ValueError(
            context + " must be a (3 x 3) tensor, got a tensor with shape "
            "" + _shape_str(cell)
        )


def _check_pbc(pbc: Tensor, context: str):
    if pbc.dtype != torch.bool:
        raise ValueError(
            context
            + " must be a tensor of booleans, got "
            + dtype_name(pbc.dtype)
            + " instead"
        )
    if len(pbc.shape) != 1 or pbc.shape[0] != 3:
        raise ValueError(
            context
            + " must be a 1 dimensional tensor with 3 entries, got a tensor with "
            + "shape "
            + _shape_str(pbc)
        )


def _check_finite(tensor: Tensor, context: str):
    """Positions and cells (2-D tensors) must not contain NaN or infinite
    values: the neighbor list libraries crash on them."""
    if not _data_checks(tensor):
        return
    # fast path: one reduction (the sum of finite values can still overflow,
    # look at each value only when it is not finite)
    if bool(torch.isfinite(torch.sum(tensor.detach()))):
        return
    finite = torch.isfinite(tensor.detach())
    if not bool(torch.all(finite)):
        row = int(torch.nonzero(torch.logical_not(torch.all(finite, dim=1)))[0, 0])
        values: List[float] = tensor[row].detach().to(torch.float64).cpu().tolist()
        raise ValueError(
            context
            + " must contain only finite values, got "
            + str(values)
            + " in row "
            + str(row)
        )


def _check_cell_pbc(cell: Tensor, pbc: Tensor):
    """Cell vectors must be zero along non-periodic directions."""
    if not _data_checks(cell) or not _data_checks(pbc):
        return
    nonzero = torch.any(cell != 0, dim=1)
    invalid = torch.logical_and(nonzero, torch.logical_not(pbc))
    if bool(torch.any(invalid)):
        direction = int(torch.nonzero(invalid)[0, 0])
        raise ValueError(
            "invalid cell: if `pbc` is False along any direction, the "
            + "corresponding cell vector must be zero, but `pbc["
            + str(direction)
            + "]` is False and `cell["
            + str(direction)
            + "]` is not zero"
        )


def _check_same_device(tensor: Tensor, device: torch.device, context: str):
    if tensor.device != device:
        raise ValueError(
            context
            + " must be on the same device as this system, got "
            + str(tensor.device)
            + " and "
            + str(device)
        )


def _check_same_dtype(tensor: Tensor, dtype: torch.dtype, context: str):
    if tensor.dtype != dtype:
        raise ValueError(
            context
            + " must have the same dtype as this system, got "
            + dtype_name(tensor.dtype)
            + " and "
            + dtype_name(dtype)
        )


def _neighbors_samples_names() -> List[str]:
    return ["first_atom", "second_atom", "cell_shift_a", "cell_shift_b", "cell_shift_c"]


def _check_neighbors_metadata(neighbors: TensorBlock):
    """Check the Labels and gradients of a neighbor list block."""
    expected = _neighbors_samples_names()
    if neighbors.samples.names != expected:
        raise ValueError(
            "invalid samples for `neighbors`: the samples names must be "
            + "'first_atom', 'second_atom', 'cell_shift_a', 'cell_shift_b' and "
            + "'cell_shift_c', got ["
            + ", ".join(neighbors.samples.names)
            + "]"
        )
    components = neighbors.components
    valid = len(components) == 1 and components[0].names == ["xyz"]
    if valid and _data_checks(components[0].values):
        reference = torch.arange(3, dtype=torch.int32, device=neighbors.device)
        valid = bool(torch.equal(components[0].values, reference.reshape(3, 1)))
    if not valid:
        raise ValueError(
            "invalid components for `neighbors`: there should be a single 'xyz' "
            + "component with values [[0], [1], [2]]"
        )
    properties = neighbors.properties
    valid = properties.names == ["distance"] and properties.values.shape[0] == 1
    if valid and _data_checks(properties.values):
        valid = int(properties.values[0, 0]) == 0
    if not valid:
        raise ValueError(
            "invalid properties for `neighbors`: there should be a single "
            + "'distance' property with value [[0]]"
        )
    if len(neighbors.gradients_list()) != 0:
        raise ValueError(
            "invalid `neighbors`: the neighbor list block should not have any "
            + "gradients, got gradients with respect to ["
            + ", ".join(neighbors.gradients_list())
            + "]"
        )


def _check_neighbors_atoms(samples: Tensor, n_atoms: int):
    """The atom indices of a neighbor list must refer to atoms of the system."""
    if samples.shape[0] == 0 or not _data_checks(samples):
        return
    smallest, largest = torch.aminmax(samples[:, :2])
    if bool(torch.logical_or(smallest < 0, largest >= n_atoms)):
        atoms = samples[:, :2]
        invalid = torch.logical_or(atoms < 0, atoms >= n_atoms)
        pair = int(torch.nonzero(torch.any(invalid, dim=1))[0, 0])
        row: List[int] = samples[pair].to(torch.int64).tolist()
        raise ValueError(
            "invalid `neighbors`: the atom indices ('first_atom' and "
            + "'second_atom') must be between 0 and "
            + str(n_atoms - 1)
            + " for this system of "
            + str(n_atoms)
            + " atoms, got the pair "
            + str(row)
            + " (sample "
            + str(pair)
            + ")"
        )


def _check_neighbors(neighbors: TensorBlock, positions: Tensor, cell: Tensor):
    """Full validation of a neighbor list for a system with these positions and
    cell (spec: layout, device, dtype, warning about autograd)."""
    if neighbors.device != positions.device:
        raise ValueError(
            "`neighbors` device ("
            + str(neighbors.device)
            + ") does not match this system's device ("
            + str(positions.device)
            + ")"
        )
    if neighbors.dtype != positions.dtype:
        raise ValueError(
            "`neighbors` dtype ("
            + dtype_name(neighbors.dtype)
            + ") does not match this system's dtype ("
            + dtype_name(positions.dtype)
            + ")"
        )
    _check_neighbors_metadata(neighbors)
    _check_neighbors_atoms(neighbors.samples.values, positions.shape[0])
    if (positions.requires_grad or cell.requires_grad) and (
        not neighbors.values.requires_grad
    ):
        warnings.warn(
            "This system's positions or cell requires grad, but the neighbors "
            + "does not. You should use `register_autograd_neighbors()` to make "
            + "sure the neighbors distance vectors are integrated in the "
            + "computational graph."
        )


def _options_less(first: "NeighborListOptions", second: "NeighborListOptions") -> bool:
    """Ordering of the stored neighbor lists: non-strict before strict, half
    before full, then increasing cutoff."""
    if first.strict != second.strict:
        return second.strict
    if first.full_list != second.full_list:
        return second.full_list
    return first.cutoff < second.cutoff


def _reserved_data_names() -> List[str]:
    return ["types", "positions", "position", "cell", "neighbors", "neighbor"]


# ============================================================================ #
# the classes


class NeighborListOptions:
    """Options describing a neighbor list that a model needs.

    :param cutoff: spherical cutoff radius of the list, in the length unit of the
        model (see :py:attr:`length_unit`)
    :param full_list: whether the list contains each pair twice (``i -> j`` and
        ``j -> i``, a *full* list) or once (a *half* list, either orientation)
    :param strict: whether the list contains only pairs closer than the cutoff
        (``True``), or may contain additional pairs (``False``, e.g. a Verlet
        list with a skin)
    :param requestor: name of the code requesting this list (empty strings are
        ignored)

    Two options are equal if they have the same ``cutoff``, ``full_list`` and
    ``strict``; the requestors and the length unit are not compared.
    """

    def __init__(
        self, cutoff: float, full_list: bool, strict: bool, requestor: str = ""
    ):
        if not torch.jit.is_scripting():
            _eager_check_options(cutoff, full_list, strict, requestor)
        self._cutoff = _check_options_arguments(float(cutoff))
        self._full_list = full_list
        self._strict = strict
        self._length_unit = ""
        # built from runtime data, see `TensorBlock.__init__`
        requestors = [requestor]
        requestors.clear()
        self._requestors = requestors
        self.add_requestor(requestor)

    @property
    def cutoff(self) -> float:
        """spherical cutoff radius, in the model length unit"""
        return self._cutoff

    @property
    def full_list(self) -> bool:
        """whether this is a full (``True``) or half (``False``) list"""
        return self._full_list

    @property
    def strict(self) -> bool:
        """whether the list only contains pairs closer than the cutoff"""
        return self._strict

    @property
    def length_unit(self) -> str:
        """length unit of the :py:attr:`cutoff` (the model length unit)"""
        return self._length_unit

    @length_unit.setter
    def length_unit(self, length_unit: str):
        validate_unit("length", length_unit)
        self._length_unit = length_unit

    def engine_cutoff(self, engine_length_unit: str) -> float:
        """The cutoff converted to the length unit of the engine.

        :param engine_length_unit: length unit used by the simulation engine
        """
        return self._cutoff * _unit_conversion_factor(
            self._length_unit, engine_length_unit
        )

    def requestors(self) -> List[str]:
        """names of the codes that requested this neighbor list"""
        return [r for r in self._requestors]

    def add_requestor(self, requestor: str):
        """Add ``requestor`` to the list of codes requesting this neighbor list
        (empty names and names already present are ignored).

        :param requestor: name of the code requesting the list
        """
        if requestor == "":
            return
        if requestor in self._requestors:
            return
        self._requestors.append(requestor)

    def __eq__(self, other: "NeighborListOptions") -> bool:
        return (
            self._cutoff == other._cutoff
            and self._full_list == other._full_list
            and self._strict == other._strict
        )

    def __ne__(self, other: "NeighborListOptions") -> bool:
        return not self.__eq__(other)

    def __str__(self) -> str:
        return (
            "NeighborListOptions(cutoff="
            + _format_fixed(self._cutoff)
            + ", full_list="
            + str(self._full_list)
            + ", strict="
            + str(self._strict)
            + ")"
        )

    def __repr__(self) -> str:
        text = "NeighborListOptions\n    cutoff: " + _format_fixed(self._cutoff)
        if self._length_unit != "":
            text += " " + self._length_unit
        text += "\n    full_list: " + str(self._full_list)
        text += "\n    strict: " + str(self._strict)
        if len(self._requestors) != 0:
            text += "\n    requested by:"
            for requestor in self._requestors:
                text += "\n        - " + requestor
        return text + "\n"

    def __getstate__(self) -> Tuple[str]:
        """The state of these options: a 1-tuple with their JSON
        representation ``{"class": "NeighborListOptions", "cutoff": <int64 bit
        pattern of the double>, "full_list": bool, "length_unit": str,
        "requestors": [str], "strict": bool}`` (4-space indent, sorted keys,
        ASCII only)."""
        return (
            _options_json(
                self._cutoff,
                self._full_list,
                self._strict,
                self._length_unit,
                self._requestors,
            ),
        )

    def __setstate__(self, state: Tuple[str]):
        """Restore these options from the output of :py:meth:`__getstate__`.

        :param state: 1-tuple with the JSON representation of the options
        """
        document = _parse_json(state[0])
        if document.string(document.get(0, "class"), "'class'") != (
            "NeighborListOptions"
        ):
            raise ValueError(
                "invalid JSON data: expected 'class' to be 'NeighborListOptions'"
            )
        bits = document.integer(document.get(0, "cutoff"), "'cutoff'")
        self._cutoff = _bits_to_double(bits)
        self._full_list = document.boolean(document.get(0, "full_list"), "'full_list'")
        self._strict = document.boolean(document.get(0, "strict"), "'strict'")
        length_unit = _json_optional_string(document, 0, "length_unit")
        self._length_unit = length_unit
        requestors = [length_unit]
        requestors.clear()
        if document.has(0, "requestors"):
            node = document.get(0, "requestors")
            for requestor in document.string_list(node, "'requestors'"):
                if requestor != "" and requestor not in requestors:
                    requestors.append(requestor)
        self._requestors = requestors


class System:
    """An atomistic system: atomic types, positions, unit cell and periodic
    boundary conditions, together with neighbor lists and additional data.

    :param types: 1-D tensor of integers, the atomic type of each atom (stored as
        int32)
    :param positions: ``(len(types), 3)`` tensor of floating point positions
    :param cell: ``(3, 3)`` tensor with the cell vectors as rows (row ``i`` is
        the ``i``-th cell vector), with the same dtype as ``positions``. Rows
        for non-periodic directions must be zero.
    :param pbc: 1-D tensor with 3 booleans, the periodic boundary conditions
        along each cell vector

    All tensors must be on the same device.
    """

    def __init__(self, types: Tensor, positions: Tensor, cell: Tensor, pbc: Tensor):
        if not torch.jit.is_scripting():
            _eager_check_tensors(types, positions, cell, pbc)
        device = types.device
        if positions.device != device or cell.device != device or pbc.device != device:
            raise ValueError(
                "`types`, `positions`, `cell`, and `pbc` must be on the same "
                + "device, got "
                + str(device)
                + ", "
                + str(positions.device)
                + ", "
                + str(cell.device)
                + ", and "
                + str(pbc.device)
            )
        _check_types(types, "`types`")
        _check_positions(positions, types.shape[0], "`positions`")
        _check_cell(cell, "`cell`")
        if cell.dtype != positions.dtype:
            raise ValueError(
                "`cell` must have the same dtype as `positions`, got "
                + dtype_name(cell.dtype)
                + " and "
                + dtype_name(positions.dtype)
            )
        _check_pbc(pbc, "`pbc`")
        _check_cell_pbc(cell, pbc)
        _check_finite(positions, "`positions`")
        _check_finite(cell, "`cell`")

        self._types = types.to(torch.int32)
        self._positions = positions
        self._cell = cell
        self._pbc = pbc
        # the `clear()` calls mark the containers as written to: otherwise
        # TorchScript turns the empty literals into constants shared by all
        # instances when `__init__` is called directly (e.g. from C++)
        neighbor_options: List[NeighborListOptions] = []
        neighbor_options.clear()
        self._neighbor_options = neighbor_options
        neighbor_lists: List[TensorBlock] = []
        neighbor_lists.clear()
        self._neighbor_lists = neighbor_lists
        data: Dict[str, TensorMap] = {}
        data.clear()
        self._data = data

    # ------------------------------------------------------------------ #
    # basic data                                                           #
    # ------------------------------------------------------------------ #

    @property
    def types(self) -> Tensor:
        """atomic types of all atoms (1-D int32 tensor)"""
        return self._types

    @types.setter
    def types(self, types: Tensor):
        _check_same_device(types, self._types.device, "new `types`")
        _check_types(types, "new `types`")
        if types.shape[0] != self._types.shape[0]:
            raise ValueError(
                "new `types` must contain "
                + str(self._types.shape[0])
                + " entries, got a tensor with "
                + str(types.shape[0])
                + " entries"
            )
        self._types = types.to(torch.int32)

    @property
    def positions(self) -> Tensor:
        """positions of all atoms, ``(len(system), 3)``"""
        return self._positions

    @positions.setter
    def positions(self, positions: Tensor):
        _check_same_device(positions, self._positions.device, "new `positions`")
        _check_same_dtype(positions, self._positions.dtype, "new `positions`")
        _check_positions(positions, self._types.shape[0], "new `positions`")
        _check_finite(positions, "new `positions`")
        self._positions = positions

    @property
    def cell(self) -> Tensor:
        """unit cell of the system, with cell vectors as rows, ``(3, 3)``"""
        return self._cell

    @cell.setter
    def cell(self, cell: Tensor):
        _check_same_device(cell, self._cell.device, "new `cell`")
        _check_same_dtype(cell, self._cell.dtype, "new `cell`")
        _check_cell(cell, "new `cell`")
        _check_cell_pbc(cell, self._pbc)
        _check_finite(cell, "new `cell`")
        self._cell = cell

    @property
    def pbc(self) -> Tensor:
        """periodic boundary conditions along each cell vector (3 booleans)"""
        return self._pbc

    @pbc.setter
    def pbc(self, pbc: Tensor):
        _check_same_device(pbc, self._pbc.device, "new `pbc`")
        _check_pbc(pbc, "new `pbc`")
        _check_cell_pbc(self._cell, pbc)
        self._pbc = pbc

    def __len__(self) -> int:
        return self._types.shape[0]

    @property
    def device(self) -> torch.device:
        """device of all the data in this system"""
        return self._types.device

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the positions, cell, neighbor lists and additional data"""
        return self._positions.dtype

    def to(
        self,
        arg0: Optional[Union[torch.dtype, torch.device, str]] = None,
        arg1: Optional[Union[torch.dtype, torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
        device: Optional[Union[torch.device, str]] = None,
        non_blocking: bool = False,
    ) -> "System":
        """Move this system (with its neighbor lists and data) to another dtype
        and/or device. ``types`` and ``pbc`` only change device.

        :param arg0: a dtype, a device or a device name (positional)
        :param arg1: a dtype, a device or a device name (positional)
        :param dtype: the new dtype of positions, cell and all data
        :param device: the new device
        :param non_blocking: use non-blocking transfers
        """
        new_dtype, new_device = _parse_to(
            "`System.to`", arg0, arg1, dtype, device, None
        )
        if new_dtype is not None and not _is_float_dtype(new_dtype):
            raise ValueError(
                "`dtype` in `System.to` must be a floating point dtype, got "
                + dtype_name(new_dtype)
            )
        types = self._types
        pbc = self._pbc
        positions = self._positions
        cell = self._cell
        if new_device is not None:
            types = types.to(device=new_device, non_blocking=non_blocking)
            pbc = pbc.to(device=new_device, non_blocking=non_blocking)
        if new_device is not None or new_dtype is not None:
            positions = positions.to(
                device=new_device, dtype=new_dtype, non_blocking=non_blocking
            )
            cell = cell.to(
                device=new_device, dtype=new_dtype, non_blocking=non_blocking
            )
        system = System(types, positions, cell, pbc)
        for i in range(len(self._neighbor_options)):
            system._neighbor_options.append(self._neighbor_options[i])
            system._neighbor_lists.append(
                self._neighbor_lists[i].to(
                    dtype=new_dtype, device=new_device, non_blocking=non_blocking
                )
            )
        for name, tensor in self._data.items():
            system._data[name] = tensor.to(
                dtype=new_dtype, device=new_device, non_blocking=non_blocking
            )
        return system

    # ------------------------------------------------------------------ #
    # neighbor lists                                                       #
    # ------------------------------------------------------------------ #

    def add_neighbor_list(self, options: NeighborListOptions, neighbors: TensorBlock):
        """Add a neighbor list to this system.

        The list must have the samples ``["first_atom", "second_atom",
        "cell_shift_a", "cell_shift_b", "cell_shift_c"]``, a single ``"xyz"``
        component with values ``[[0], [1], [2]]``, a single ``"distance"``
        property with value ``[[0]]``, no gradients, and values with the device
        and dtype of this system, containing the pair vectors
        ``positions[j] - positions[i] + [a, b, c] @ cell``.

        :param options: the options of this neighbor list
        :param neighbors: the neighbor list, as a :py:class:`TensorBlock`
        """
        _check_neighbors(neighbors, self._positions, self._cell)
        index = len(self._neighbor_options)
        for i, existing in enumerate(self._neighbor_options):
            if existing == options:
                raise ValueError(
                    "the neighbors list for "
                    + options.__str__()
                    + " already exists in this system"
                )
            if index == len(self._neighbor_options) and _options_less(
                options, existing
            ):
                index = i
        self._neighbor_options.insert(index, options)
        self._neighbor_lists.insert(index, neighbors)

    def get_neighbor_list(self, options: NeighborListOptions) -> TensorBlock:
        """Get the neighbor list corresponding to ``options`` (only the cutoff,
        ``full_list`` and ``strict`` are compared).

        :param options: the options of the neighbor list
        """
        for i, existing in enumerate(self._neighbor_options):
            if existing == options:
                return self._neighbor_lists[i]
        raise ValueError(
            "No neighbor list for "
            + options.__str__()
            + " was found.\nIs it part of the `requested_neighbor_lists` for "
            + "this model?"
        )

    def known_neighbor_lists(self) -> List[NeighborListOptions]:
        """options of all the neighbor lists in this system, sorted by
        ``(strict, full_list, cutoff)``"""
        return [options for options in self._neighbor_options]

    # ------------------------------------------------------------------ #
    # additional data                                                      #
    # ------------------------------------------------------------------ #

    def add_data(
        self,
        name: str,
        tensor: TensorMap,
        override: bool = False,
        _private_warn_on_deprecated: bool = True,
    ):
        """Add custom data to this system.

        :param name: name of the data: a standard quantity (``"mass"``, ...), a
            variant ``"<quantity>/<variant>"`` or a custom name
            ``"<domain>::<name>[/<variant>]"``. Names of the system's own data
            (``"positions"``, ``"cell"``, ...) are reserved.
        :param tensor: the data, on the device and with the dtype of this system
        :param override: replace existing data with the same name
        :param _private_warn_on_deprecated: warn about deprecated names (used
            internally)
        """
        if name.lower() in _reserved_data_names():
            raise ValueError("custom data can not be named '" + name + "'")
        check_quantity_name(name, _private_warn_on_deprecated)
        if not override and name in self._data:
            raise ValueError(
                "custom data '" + name + "' is already present in this system"
            )
        if tensor.device != self._types.device:
            raise ValueError(
                "device ("
                + str(tensor.device)
                + ") of the custom data '"
                + name
                + "' does not match this system device ("
                + str(self._types.device)
                + ")"
            )
        if tensor.dtype != self._positions.dtype:
            raise ValueError(
                "dtype ("
                + dtype_name(tensor.dtype)
                + ") of the custom data '"
                + name
                + "' does not match this system dtype ("
                + dtype_name(self._positions.dtype)
                + ")"
            )
        self._data[name] = tensor

    def get_data(self, name: str) -> TensorMap:
        """Get the custom data stored as ``name`` in this system.

        :param name: name of the data
        """
        if name.lower() in _reserved_data_names():
            raise ValueError(
                "custom data can not be named '"
                + name
                + "', use the corresponding property of the system instead"
            )
        if name not in self._data:
            raise ValueError("no data for '" + name + "' found in this system")
        return self._data[name]

    def known_data(self) -> List[str]:
        """names of all the custom data in this system"""
        return [name for name in self._data.keys()]

    # ------------------------------------------------------------------ #
    # printing                                                             #
    # ------------------------------------------------------------------ #

    def __str__(self) -> str:
        text = "System with " + str(self._types.shape[0]) + " atoms, "
        cell = self._cell
        if cell.device.type == "meta":
            return text + "on the meta device"
        values: List[float] = cell.detach().to(torch.float64).cpu().reshape(-1).tolist()
        periodic = False
        for value in values:
            if value != 0.0:
                periodic = True
        if not periodic:
            return text + "non periodic"
        return (
            text
            + "periodic cell: ["
            + ", ".join([_format_general(v) for v in values])
            + "]"
        )

    def __repr__(self) -> str:
        return self.__str__()


# ============================================================================ #
# eager-only checks (never compiled)


def _eager_check_options(cutoff, full_list, strict, requestor):
    if isinstance(cutoff, bool) or not isinstance(cutoff, numbers.Real):
        raise TypeError(f"`cutoff` must be a float, got {type(cutoff)}")
    if not isinstance(full_list, bool):
        raise TypeError(f"`full_list` must be a bool, got {type(full_list)}")
    if not isinstance(strict, bool):
        raise TypeError(f"`strict` must be a bool, got {type(strict)}")
    if not isinstance(requestor, str):
        raise TypeError(f"`requestor` must be a str, got {type(requestor)}")


def _eager_check_tensors(types, positions, cell, pbc):
    for name, value in [
        ("types", types),
        ("positions", positions),
        ("cell", cell),
        ("pbc", pbc),
    ]:
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value)}")


# compile the classes now; TorchScript resolves names through the frame calling
# `torch.jit.script`, so this must stay at the end of this module
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.jit.script(NeighborListOptions)
    torch.jit.script(System)
