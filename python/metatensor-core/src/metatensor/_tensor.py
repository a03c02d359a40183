"""The :py:class:`TensorMap` class: a sparse collection of blocks indexed by keys.

The blocks given to the constructor are not consumed: the map stores private
wrappers around the same values and labels (see :py:mod:`metatensor._block`), and
hands out views (fresh wrappers on each access) to its users.

Internal fast path: :py:meth:`TensorMap._unchecked` builds a map without any
check, for code inside the package that already has valid keys and blocks.
"""

import html
import operator
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _array, _to
from ._block import (
    TensorBlock,
    _convert_labels,
    _labels_device_name,
    _names_list,
    _operations,
    _values_device_name,
)
from ._errors import invalid_parameter
from ._labels import Labels, LabelsEntry


_SAME_GRADIENTS_MESSAGE = (
    "all blocks must have the same set of gradients, with the same sample, "
    "property and component dimensions, and the same must be true for gradients "
    "of gradients"
)


def _same_gradient_names(first: TensorBlock, block: TensorBlock) -> bool:
    """Do the two blocks have the same gradients parameters, with the same sample
    and component names, recursively? (property names are the ones of the
    parent, already compared)"""
    first_gradients = first._gradients
    gradients = block._gradients
    if len(first_gradients) != len(gradients):
        return False
    for parameter, reference in first_gradients.items():
        gradient = gradients.get(parameter)
        if gradient is None:
            return False
        if gradient is reference:
            continue
        if gradient._samples is not reference._samples:
            if gradient._samples._names != reference._samples._names:
                return False
        if len(gradient._components) != len(reference._components):
            return False
        for c1, c2 in zip(gradient._components, reference._components):
            if c1 is not c2 and c1._names != c2._names:
                return False
        if gradient._gradients or reference._gradients:
            if not _same_gradient_names(reference, gradient):
                return False
    return True


def _check_tensor(keys: Labels, blocks: List[TensorBlock]) -> None:
    """The metadata checks of the reference, in the same order and with the same
    messages."""
    if len(keys) != len(blocks):
        raise invalid_parameter(
            "expected the same number of blocks as the number of entries in the "
            f"keys ({len(keys)}) when creating a `TensorMap`, got {len(blocks)}"
        )

    if len(blocks) == 0:
        return

    first = blocks[0]
    first_values = first._values
    first_type = type(first_values)
    first_dtype = first_values.dtype
    first_device = _values_device_name(first_values)
    first_origin = None
    for block in blocks:
        values = block._values
        if type(values) is not first_type:
            if first_origin is None:
                first_origin = _array.origin(first_values)
            origin = _array.origin(values)
            if origin != first_origin:
                raise invalid_parameter(
                    "invalid tensor map: got blocks with different origins, at "
                    f"least ('{first_origin}') and ('{origin}') were detected"
                )
        if first_type is not np.ndarray or type(values) is not np.ndarray:
            device = _values_device_name(values)
            if device != first_device:
                raise invalid_parameter(
                    "invalid tensor map: got blocks on different devices, at least "
                    f"'{first_device}' and '{device}' were detected"
                )
        dtype = values.dtype
        if dtype is not first_dtype and dtype != first_dtype:
            raise invalid_parameter(
                "invalid tensor map: got blocks with different dtypes, at least "
                f"'{_array.dtype_name(first_dtype)}' and "
                f"'{_array.dtype_name(dtype)}' were detected"
            )

    keys_device = _labels_device_name(keys)
    if keys_device != first_device:
        raise invalid_parameter(
            "tried to build a TensorMap from keys and blocks on different devices: "
            f"the keys are on '{keys_device}' while the blocks are on "
            f"'{first_device}'"
        )

    first_samples = first._samples
    first_sample_names = first_samples._names
    first_components = first._components
    first_component_names = [c._names for c in first_components]
    first_properties = first._properties
    first_property_names = first_properties._names
    for block in blocks:
        samples = block._samples
        if samples is not first_samples:
            names = samples._names
            if names != first_sample_names:
                raise invalid_parameter(
                    "all blocks must have the same sample dimensions, got "
                    f"{_names_list(names)} and {_names_list(first_sample_names)}"
                )

        components = block._components
        if components is not first_components:
            if len(components) != len(first_components):
                raise invalid_parameter(
                    "all blocks must contains the same set of components, the "
                    f"current block has {len(components)} components while the "
                    f"first block has {len(first_components)}"
                )
            for component, first_names in zip(components, first_component_names):
                names = component._names
                if names != first_names:
                    raise invalid_parameter(
                        "all blocks must have the same component dimensions, got "
                        f"{_names_list(names)} and {_names_list(first_names)}"
                    )

        properties = block._properties
        if properties is not first_properties:
            names = properties._names
            if names != first_property_names:
                raise invalid_parameter(
                    "all blocks must have the same property dimensions, got "
                    f"{_names_list(names)} and {_names_list(first_property_names)}"
                )

        if block._gradients or first._gradients:
            if not _same_gradient_names(first, block):
                raise invalid_parameter(_SAME_GRADIENTS_MESSAGE)


def _selection_labels(selection: Any, kwargs: Dict[str, Any], keys: Labels) -> Labels:
    """Convert the ``selection`` argument of ``block``/``blocks`` to Labels."""
    if selection is None:
        selection = kwargs

    if isinstance(selection, Labels):
        return selection
    elif isinstance(selection, LabelsEntry):
        values = selection.values
        return Labels(selection.names, values.reshape(1, -1), assume_unique=True)
    elif isinstance(selection, dict):
        values = []
        for name, value in selection.items():
            if not isinstance(value, (int, np.integer)):
                raise TypeError(
                    "expected integer values in selection, got "
                    f"{name}={value!r} of type {type(value)}"
                )
            values.append(int(value))
        names = tuple(selection.keys())
        array = np.array([values], dtype=np.int32).reshape(1, len(values))
        key_names = keys._names
        if all(name in key_names for name in names):
            # fast path: the names are valid (they are names of the keys) and
            # unique (they come from a dict), a single row is unique
            array.setflags(write=False)
            return Labels._new(names, array)
        return Labels(list(names), array, assume_unique=True)
    raise TypeError(f"invalid type for block selection: {type(selection)}")


def _format_selection(selection: Labels) -> str:
    # like the reference, only the first entry is shown
    if len(selection) == 0:
        return "()"
    return selection[0].print()


def _center(text: str, width: int) -> str:
    before = (width - len(text)) // 2
    after = width - len(text) - before
    return " " * before + text + " " * after


class TensorMap:
    """A sparse tensor: a list of :py:class:`TensorBlock`, each associated with
    one entry of the ``keys``.

    All blocks must have the same sample, component and property dimension names,
    the same gradients, and live on the same device with the same dtype.

    The blocks are not consumed: they stay usable after the map is built. The
    map shares their values arrays and labels.

    :param keys: one entry for each block
    :param blocks: the blocks, in the same order as the keys
    """

    __slots__ = ("_keys", "_blocks", "_info", "__weakref__")

    def __init__(self, keys: Labels, blocks: Sequence[TensorBlock]):
        if not isinstance(keys, Labels):
            raise TypeError(f"`keys` must be metatensor Labels, not {type(keys)}")

        blocks = list(blocks)
        for block in blocks:
            if not isinstance(block, TensorBlock):
                raise TypeError(
                    "`blocks` elements must be metatensor TensorBlock, "
                    f"not {type(block)}"
                )

        _check_tensor(keys, blocks)

        self._keys = keys
        self._blocks: List[TensorBlock] = [block._owned() for block in blocks]
        self._info: Dict[str, str] = {}

    @classmethod
    def _unchecked(
        cls,
        keys: Labels,
        blocks: Sequence[TensorBlock],
        info: Optional[Dict[str, str]] = None,
    ) -> "TensorMap":
        """Build a map without any check. Only for code inside metatensor that
        already knows the keys and blocks are consistent. The blocks are not
        consumed."""
        tensor = cls.__new__(cls)
        tensor._keys = keys
        tensor._blocks = [block._owned() for block in blocks]
        tensor._info = dict(info) if info else {}
        return tensor

    # ------------------------------------------------------------------ #
    # access                                                               #
    # ------------------------------------------------------------------ #

    @property
    def keys(self) -> Labels:
        """The keys of this map, one entry per block."""
        return self._keys

    def __len__(self) -> int:
        return len(self._blocks)

    def block_by_id(self, index: int) -> TensorBlock:
        """Get the block at position ``index`` (a view).

        :param index: position of the block, in ``[0, len(self))``
        """
        index = operator.index(index)
        blocks = self._blocks
        if index < 0:
            # the reference converts the index to an unsigned 64-bit integer
            raise invalid_parameter(
                f"block index out of bounds: we have {len(blocks)} blocks but the "
                f"index is {index % 2**64}"
            )
        if index >= len(blocks):
            raise IndexError(
                f"block index out of bounds: we have {len(blocks)} blocks but the "
                f"index is {index}"
            )
        return blocks[index]._view()

    def blocks_by_id(self, indices: Sequence[int]) -> List[TensorBlock]:
        """Get the blocks at the given positions (views).

        :param indices: positions of the blocks
        """
        return [self.block_by_id(i) for i in indices]

    def _select(self, selection: Any, kwargs: Dict[str, Any]) -> Tuple:
        labels = _selection_labels(selection, kwargs, self._keys)
        matching = self._keys.select(labels)
        return labels, matching

    def block(
        self,
        selection: Union[None, int, Labels, LabelsEntry, Dict[str, int]] = None,
        **kwargs,
    ) -> TensorBlock:
        """Get the single block matching ``selection`` (a view).

        ``selection`` can be an ``int`` (the position of the block), a
        :py:class:`Labels` (with one or more dimensions of the keys), a
        :py:class:`LabelsEntry` or a ``dict`` of key dimensions to values. Without
        ``selection``, the keyword arguments are used as a ``dict``; without
        anything, this is the only block of the map.

        :param selection: which block to get
        :param kwargs: key dimensions and values, when ``selection`` is ``None``
        """
        if isinstance(selection, int):
            return self.block_by_id(selection)

        labels, matching = self._select(selection, kwargs)
        if len(matching) == 0:
            if len(self._blocks) == 0:
                raise ValueError("there are no blocks in this TensorMap")
            raise ValueError(
                f"couldn't find any block matching {_format_selection(labels)}"
            )
        elif len(matching) > 1:
            raise ValueError(
                f"more than one block matched {_format_selection(labels)}, use "
                "`TensorMap.blocks` to get all of them"
            )
        return self._blocks[int(matching[0])]._view()

    def blocks(
        self,
        selection: Union[None, int, Labels, LabelsEntry, Dict[str, int]] = None,
        **kwargs,
    ) -> List[TensorBlock]:
        """Get all the blocks matching ``selection`` (views), see
        :py:meth:`block` for the possible selections. Without ``selection`` nor
        keyword arguments, all the blocks are returned.

        :param selection: which blocks to get
        :param kwargs: key dimensions and values, when ``selection`` is ``None``
        """
        if selection is None and len(kwargs) == 0:
            return [block._view() for block in self._blocks]
        if isinstance(selection, int):
            return [self.block_by_id(selection)]

        labels, matching = self._select(selection, kwargs)
        if len(matching) == 0 and len(self._blocks) != 0:
            raise ValueError(
                f"Couldn't find any block matching '{_format_selection(labels)}'"
            )
        blocks = self._blocks
        return [blocks[i]._view() for i in matching.tolist()]

    def __getitem__(self, selection: Any) -> TensorBlock:
        if type(selection) is int and 0 <= selection < len(self._blocks):
            # fast path for iteration
            return self._blocks[selection]._view()
        return self.block(selection)

    def items(self) -> Iterator[Tuple[LabelsEntry, TensorBlock]]:
        """Iterate over ``(key, block)`` pairs, blocks being views."""
        blocks = self._blocks
        for key, block in zip(self._keys, blocks):
            yield key, block._view()

    # ------------------------------------------------------------------ #
    # metadata                                                             #
    # ------------------------------------------------------------------ #

    @property
    def sample_names(self) -> List[str]:
        """Names of the sample dimensions (``[]`` for an empty map)."""
        if len(self._blocks) == 0:
            return []
        return list(self._blocks[0]._samples.names)

    @property
    def component_names(self) -> List[str]:
        """Names of the component dimensions (``[]`` for an empty map)."""
        if len(self._blocks) == 0:
            return []
        return [c.names[0] for c in self._blocks[0]._components]

    @property
    def property_names(self) -> List[str]:
        """Names of the property dimensions (``[]`` for an empty map)."""
        if len(self._blocks) == 0:
            return []
        return list(self._blocks[0]._properties.names)

    @property
    def device(self) -> Any:
        """Device of the blocks values (``"cpu"`` for an empty map)."""
        if len(self._blocks) == 0:
            return "cpu"
        return _array.device(self._blocks[0]._values)

    @property
    def dtype(self) -> Any:
        """dtype of the blocks values (``None`` for an empty map)."""
        if len(self._blocks) == 0:
            return None
        return self._blocks[0]._values.dtype

    @property
    def is_view(self) -> bool:
        """Is this map a view inside another object? Always ``False``."""
        return False

    # ------------------------------------------------------------------ #
    # info                                                                 #
    # ------------------------------------------------------------------ #

    def set_info(self, key: str, value: str) -> None:
        """Set a global metadata entry, overwriting any existing one.

        :param key: name of the entry
        :param value: value of the entry
        """
        if not isinstance(key, str):
            raise TypeError(f"`key` must be a string, got {type(key)}")
        if not isinstance(value, str):
            raise TypeError(f"`value` must be a string, got {type(value)}")
        self._info[key] = value

    def get_info(self, key: str) -> Optional[str]:
        """Get a global metadata entry, or ``None`` if it does not exist.

        :param key: name of the entry
        """
        if not isinstance(key, str):
            raise TypeError(f"`key` must be a string, got {type(key)}")
        return self._info.get(key)

    def info(self) -> Dict[str, str]:
        """All global metadata entries, in insertion order."""
        return dict(self._info)

    # ------------------------------------------------------------------ #
    # copies and conversions                                               #
    # ------------------------------------------------------------------ #

    def copy(self, deep: bool = True) -> "TensorMap":
        """Copy this map. The keys and all labels are shared, the info is copied.

        :param deep: with ``True``, the values and gradients are copied; with
            ``False`` the new map uses the same values arrays.
        """
        tensor = TensorMap.__new__(TensorMap)
        tensor._keys = self._keys
        if deep:
            tensor._blocks = [block._deep_copy() for block in self._blocks]
        else:
            # the stored blocks never change, they can be shared
            tensor._blocks = list(self._blocks)
        tensor._info = dict(self._info)
        return tensor

    def __copy__(self) -> "TensorMap":
        return self.copy(deep=False)

    def __deepcopy__(self, memo) -> "TensorMap":
        return self.copy(deep=True)

    def to(
        self,
        *args,
        dtype: Any = None,
        device: Any = None,
        arrays: Optional[str] = None,
        non_blocking: bool = False,
    ) -> "TensorMap":
        """Move all blocks and the keys to another dtype, device or array
        backend. A new map is always returned, with the same info.

        :param args: positional device (``str`` or ``torch.device``) and/or dtype
        :param dtype: new dtype of the values
        :param device: new device of the values and labels
        :param arrays: new array backend, ``"numpy"`` or ``"torch"`` (``None``
            keeps the current one)
        :param non_blocking: passed on to torch when moving between devices
        """
        parsed = _to.parse_to_arguments(
            "`TensorMap.to`", args, dtype, device, arrays, non_blocking
        )
        cache: Dict = {}
        blocks = [block._to(parsed, cache) for block in self._blocks]
        if len(blocks) != 0:
            keys = _convert_labels(self._keys, blocks[0]._values, parsed, cache)
        elif parsed.arrays is not None or parsed.device is not None:
            keys = self._keys.to(
                arrays=parsed.arrays,
                device=parsed.device,
                non_blocking=parsed.non_blocking,
            )
        else:
            keys = self._keys

        tensor = TensorMap.__new__(TensorMap)
        tensor._keys = keys
        tensor._blocks = blocks
        tensor._info = dict(self._info)
        return tensor

    # ------------------------------------------------------------------ #
    # keys and components manipulations                                    #
    # ------------------------------------------------------------------ #

    def _keep_info(self, tensor: "TensorMap") -> "TensorMap":
        for key, value in self._info.items():
            if key not in tensor._info:
                tensor._info[key] = value
        return tensor

    def keys_to_samples(
        self,
        keys_to_move: Union[str, Sequence[str], Labels],
        *,
        fill_value: Any = 0.0,
        sort_samples: bool = True,
    ) -> "TensorMap":
        """Move the given key dimensions to the samples, merging the blocks that
        only differ by these dimensions.

        :param keys_to_move: names of the key dimensions to move
        :param fill_value: value used in the new entries of the values
        :param sort_samples: sort the merged samples
        """
        from ._tensor_keys import keys_to_samples

        result = keys_to_samples(self, keys_to_move, fill_value, sort_samples)
        return self._keep_info(result)

    def keys_to_properties(
        self,
        keys_to_move: Union[str, Sequence[str], Labels],
        *,
        fill_value: Any = 0.0,
        sort_samples: bool = True,
    ) -> "TensorMap":
        """Move the given key dimensions to the properties, merging the blocks
        that only differ by these dimensions.

        :param keys_to_move: names of the key dimensions to move, or
            :py:class:`Labels` with the values to use in the new properties
        :param fill_value: value used in the new entries of the values
        :param sort_samples: sort the merged samples
        """
        from ._tensor_keys import keys_to_properties

        result = keys_to_properties(self, keys_to_move, fill_value, sort_samples)
        return self._keep_info(result)

    def components_to_properties(
        self, dimensions: Union[str, Sequence[str]]
    ) -> "TensorMap":
        """Move the given component dimensions to the properties.

        :param dimensions: names of the component dimensions to move
        """
        from ._tensor_keys import components_to_properties

        result = components_to_properties(self, dimensions)
        return self._keep_info(result)

    # ------------------------------------------------------------------ #
    # printing                                                             #
    # ------------------------------------------------------------------ #

    def print(self, max_keys: int) -> str:
        """String representation of this map, with at most ``max_keys`` keys
        (all of them if ``max_keys`` is negative).

        :param max_keys: maximal number of keys to include
        """
        count = len(self._blocks)
        plural = "" if count == 1 else "s"
        lines = [
            f"TensorMap with {count} block{plural}",
            f"    keys: {_names_list(self._keys.names)}",
            "    blocks:",
        ]

        n_printed = count if max_keys < 0 else min(max_keys, count)
        if n_printed > 0:
            try:
                values = _array.to_numpy(self._keys.values[:n_printed])
            except Exception:  # noqa: BLE001 - data-less devices (torch meta)
                values = np.full((n_printed, len(self._keys.names)), -1)
            cells = values.astype(str)
            n_columns = cells.shape[1]
            if n_columns != 0:
                widths = np.char.str_len(cells).max(axis=0) + 2
            else:
                widths = np.zeros(0, dtype=np.int64)
            for i in range(n_printed):
                row = "".join(
                    _center(cells[i, j], int(widths[j])) for j in range(n_columns)
                )
                shape = self._blocks[i]._shape_str()
                lines.append(f"      {row}  => TensorBlock with shape {shape}")
        else:
            widths = np.zeros(0, dtype=np.int64)

        if n_printed < count:
            lines.append("       " + " " * int(np.sum(widths)) + "...")

        return "\n".join(lines).rstrip("\n")

    def __repr__(self) -> str:
        return self.print(-1)

    def __str__(self) -> str:
        return self.print(7)

    def _repr_html_(self, max_keys: int = 20) -> str:
        esc = html.escape
        count = len(self._blocks)
        names = self._keys.names
        out = [
            "<div>",
            f"<p><b>TensorMap</b> with {count} block{'' if count == 1 else 's'}",
        ]
        if count != 0:
            out.append(
                f", samples: [{esc(', '.join(self.sample_names))}], components: "
                f"[{esc(', '.join(self.component_names))}], properties: "
                f"[{esc(', '.join(self.property_names))}], dtype "
                f"{esc(str(self.dtype))}, device {esc(str(self.device))}"
            )
        out.append("</p><table><tr>")
        out.extend(f"<th>{esc(name)}</th>" for name in names)
        out.append("<th>block shape</th></tr>")

        n_printed = min(count, max_keys)
        if n_printed > 0:
            try:
                values = _array.to_numpy(self._keys.values[:n_printed])
            except Exception:  # noqa: BLE001 - data-less devices (torch meta)
                values = np.full((n_printed, len(names)), -1)
            for i in range(n_printed):
                out.append("<tr>")
                out.extend(f"<td>{v}</td>" for v in values[i].tolist())
                out.append(f"<td>{esc(self._blocks[i]._shape_str())}</td></tr>")
        if n_printed < count:
            out.append(f"<tr><td colspan='{len(names) + 1}'>...</td></tr>")
        out.append("</table></div>")
        return "".join(out)

    # ------------------------------------------------------------------ #
    # operators                                                            #
    # ------------------------------------------------------------------ #

    def __eq__(self, other: Any) -> bool:
        return _operations("==").equal(self, other)

    def __ne__(self, other: Any) -> bool:
        return not _operations("!=").equal(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Any) -> "TensorMap":
        return _operations("+").add(self, other)

    def __sub__(self, other: Any) -> "TensorMap":
        return _operations("-").subtract(self, other)

    def __mul__(self, other: Any) -> "TensorMap":
        return _operations("*").multiply(self, other)

    def __truediv__(self, other: Any) -> "TensorMap":
        return _operations("/").divide(self, other)

    def __matmul__(self, other: Any) -> "TensorMap":
        return _operations("@").dot(self, other)

    def __pow__(self, other: Any) -> "TensorMap":
        return _operations("**").pow(self, other)

    def __neg__(self) -> "TensorMap":
        return _operations("-").multiply(self, -1)

    def __pos__(self) -> "TensorMap":
        return self

    # ------------------------------------------------------------------ #
    # serialization                                                        #
    # ------------------------------------------------------------------ #

    def save(self, file: Any, use_numpy: bool = False) -> None:
        """Save this map to a file, see :py:func:`metatensor.save`.

        :param file: path or binary file-like object
        :param use_numpy: write the file with numpy instead of the native writer
        """
        from .io import save

        save(file, self, use_numpy=use_numpy)

    def save_buffer(self, use_numpy: bool = False) -> memoryview:
        """Save this map to an in-memory buffer.

        :param use_numpy: write the data with numpy instead of the native writer
        """
        from .io import save_buffer

        return save_buffer(self, use_numpy=use_numpy)

    @staticmethod
    def load(file: Any, use_numpy: bool = False) -> "TensorMap":
        """Load a map from a file, see :py:func:`metatensor.load`.

        :param file: path or binary file-like object
        :param use_numpy: read the file with numpy instead of the native reader
        """
        from .io import load

        return load(file, use_numpy=use_numpy)

    @staticmethod
    def load_buffer(buffer: Any, use_numpy: bool = False) -> "TensorMap":
        """Load a map from an in-memory buffer.

        :param buffer: ``bytes``, ``bytearray`` or ``memoryview``
        :param use_numpy: ignored, kept for compatibility
        """
        from .io import load_buffer

        return load_buffer(buffer)

    def __reduce_ex__(self, protocol: int):
        buffer = self.save_buffer()
        if protocol >= 5:
            import pickle

            return TensorMap._from_pickle, (pickle.PickleBuffer(buffer),)
        return TensorMap._from_pickle, (bytes(buffer),)

    @staticmethod
    def _from_pickle(buffer: Any) -> "TensorMap":
        from .io import load_buffer

        return load_buffer(memoryview(buffer))
