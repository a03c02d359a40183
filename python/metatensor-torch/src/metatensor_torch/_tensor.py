"""TorchScript-compatible :py:class:`TensorMap`.

Model-file ABI: ``__torch__.metatensor_torch._tensor.TensorMap`` with
attributes ``_keys: Labels``, ``_blocks: List[TensorBlock]``, ``_info_keys:
List[str]`` and ``_info_values: List[str]`` (the global metadata, as two
parallel lists rather than a dictionary: converting a Python ``dict`` when
crossing the Python/TorchScript boundary costs ten times more than a ``list``).
"""

import warnings
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor

from . import _eager
from . import _tensor_ops as ops
from ._block import TensorBlock, _descendants, _parse_to, _relative
from ._errors import InvalidParameterError
from ._labels import Labels, LabelsEntry, _not_in_torchscript, _spaces
from ._utils import dtype_name


def _names_list(names: List[str]) -> str:
    return "[" + ", ".join(names) + "]"


def _gradient_structure(block: TensorBlock) -> List[str]:
    """A description of the names of all gradients of a block (sorted), used to
    check that all blocks in a map have the same gradients."""
    result: List[str] = []
    root = block._path
    for data in _descendants(block._gradients, root):
        description = _relative(data.path, root) + ":" + ",".join(data.samples.names)
        for component in data.components:
            description += ":" + component.names[0]
        result.append(description)
    result.sort()
    return result


def _check_map(keys: Labels, blocks: List[TensorBlock]):
    if keys.values.shape[0] != len(blocks):
        raise InvalidParameterError(
            "invalid parameter: expected the same number of blocks as the number "
            + "of entries in the keys ("
            + str(keys.values.shape[0])
            + ") when creating a `TensorMap`, got "
            + str(len(blocks))
        )
    if len(blocks) == 0:
        return
    first = blocks[0]
    first_values = first.values
    device = first_values.device
    dtype = first_values.dtype
    if keys.values.device != device:
        raise InvalidParameterError(
            "cannot create TensorMap: keys and blocks must be on the same device, "
            + "got "
            + str(keys.values.device)
            + " and "
            + str(device)
        )
    sample_names = first.samples.names
    component_names = [c.names[0] for c in first.components]
    property_names = first.properties.names
    check_gradients = len(first._parameters) != 0
    structure = _gradient_structure(first)
    for block in blocks[1:]:
        values = block.values
        if values.device != device:
            raise InvalidParameterError(
                "invalid parameter: invalid tensor map: got blocks on different "
                + "devices, at least '"
                + str(device)
                + "' and '"
                + str(values.device)
                + "' were detected"
            )
        if values.dtype != dtype:
            raise InvalidParameterError(
                "invalid parameter: invalid tensor map: got blocks with different "
                + "dtypes, at least '"
                + dtype_name(dtype)
                + "' and '"
                + dtype_name(values.dtype)
                + "' were detected"
            )
        names = block.samples.names
        if names != sample_names:
            raise InvalidParameterError(
                "invalid parameter: all blocks must have the same sample dimensions, "
                + "got "
                + _names_list(names)
                + " and "
                + _names_list(sample_names)
            )
        components = block.components
        if len(components) != len(component_names):
            raise InvalidParameterError(
                "invalid parameter: all blocks must contains the same set of "
                + "components, the current block has "
                + str(len(components))
                + " components while the first block has "
                + str(len(component_names))
            )
        names = [c.names[0] for c in components]
        if names != component_names:
            raise InvalidParameterError(
                "invalid parameter: all blocks must have the same component "
                + "dimensions, got "
                + _names_list(names)
                + " and "
                + _names_list(component_names)
            )
        names = block.properties.names
        if names != property_names:
            raise InvalidParameterError(
                "invalid parameter: all blocks must have the same property "
                + "dimensions, got "
                + _names_list(names)
                + " and "
                + _names_list(property_names)
            )
        if check_gradients or len(block._parameters) != 0:
            if _gradient_structure(block) != structure:
                raise InvalidParameterError(
                    "invalid parameter: all blocks must have the same set of "
                    + "gradients, with the same sample, property and component "
                    + "dimensions, and the same must be true for gradients of "
                    + "gradients"
                )


class TensorMap:
    """A sparse tensor: a list of :py:class:`TensorBlock`, each associated with
    one entry of the ``keys``.

    :param keys: Labels with one entry for each block
    :param blocks: list of blocks; they become views inside this map (gradients
        can not be added to them anymore) and are shared, not copied.
    """

    def __init__(self, keys: Labels, blocks: List[TensorBlock]):
        if not torch.jit.is_scripting():
            blocks = _eager.check_map_types(keys, blocks)
        _check_map(keys, blocks)
        for block in blocks:
            block._is_view = True
        self._keys = keys
        self._blocks = blocks
        # `clear()` keeps TorchScript from sharing one constant list between
        # instances, see `TensorBlock.__init__`
        info_keys: List[str] = []
        info_keys.clear()
        self._info_keys = info_keys
        info_values: List[str] = []
        info_values.clear()
        self._info_values = info_values

    # ------------------------------------------------------------------ #
    # accessors                                                            #
    # ------------------------------------------------------------------ #

    @property
    def keys(self) -> Labels:
        """the keys of this map, one entry for each block"""
        return self._keys

    def __len__(self) -> int:
        return len(self._blocks)

    @property
    def sample_names(self) -> List[str]:
        """names of the samples dimensions of all blocks"""
        if len(self._blocks) == 0:
            return []
        return self._blocks[0].samples.names

    @property
    def component_names(self) -> List[str]:
        """names of the components dimensions of all blocks"""
        if len(self._blocks) == 0:
            return []
        return [c.names[0] for c in self._blocks[0].components]

    @property
    def property_names(self) -> List[str]:
        """names of the properties dimensions of all blocks"""
        if len(self._blocks) == 0:
            return []
        return self._blocks[0].properties.names

    @property
    def device(self) -> torch.device:
        """device of the keys (and of all blocks)"""
        return self._keys.values.device

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the values of all blocks (the default dtype for an empty
        map)"""
        if len(self._blocks) == 0:
            return torch.empty(0).dtype
        return self._blocks[0].values.dtype

    @property
    def is_view(self) -> bool:
        """always ``False``: maps are never views"""
        return False

    # ------------------------------------------------------------------ #
    # info                                                                 #
    # ------------------------------------------------------------------ #

    def set_info(self, key: str, value: str):
        """Set the global metadata ``key`` to ``value``."""
        for i, existing in enumerate(self._info_keys):
            if existing == key:
                self._info_values[i] = value
                return
        self._info_keys.append(key)
        self._info_values.append(value)

    def get_info(self, key: str) -> Optional[str]:
        """Get the global metadata ``key``, or ``None``."""
        for i, existing in enumerate(self._info_keys):
            if existing == key:
                return self._info_values[i]
        return None

    def info(self) -> Dict[str, str]:
        """All global metadata of this map."""
        result: Dict[str, str] = {}
        for i, key in enumerate(self._info_keys):
            result[key] = self._info_values[i]
        return result

    # ------------------------------------------------------------------ #
    # blocks                                                               #
    # ------------------------------------------------------------------ #

    def block_by_id(self, index: int) -> TensorBlock:
        """Get the block at position ``index``."""
        count = len(self._blocks)
        if index >= count or index < -count:
            raise IndexError(
                "block index out of bounds: we have "
                + str(count)
                + " blocks but the index is "
                + str(index)
            )
        return self._blocks[index]

    def blocks_by_id(self, indices: List[int]) -> List[TensorBlock]:
        """Get the blocks at the given positions."""
        return [self.block_by_id(i) for i in indices]

    def _selection_labels(
        self, selection: Union[Labels, LabelsEntry, Dict[str, int]]
    ) -> Labels:
        device = self._keys.values.device
        if isinstance(selection, Labels):
            return selection
        elif isinstance(selection, LabelsEntry):
            return Labels(selection.names, selection.values.reshape(1, -1), True)
        else:
            names: List[str] = []
            values: List[int] = []
            for name, value in selection.items():
                names.append(name)
                values.append(value)
            tensor = torch.tensor([values], dtype=torch.int32, device=device)
            return Labels(names, tensor.reshape(1, len(names)), True)

    def _select(self, selection: Union[Labels, LabelsEntry, Dict[str, int]]) -> Tensor:
        labels = self._selection_labels(selection)
        return self._keys.select(labels.to(self._keys.values.device))

    def block(
        self,
        selection: Union[None, int, Labels, LabelsEntry, Dict[str, int]] = None,
    ) -> TensorBlock:
        """Get a single block: the only one (``selection=None``), the one at a
        given index (``int``), or the one whose key matches a selection
        (``Labels`` with one entry, ``LabelsEntry`` or ``Dict[str, int]``)."""
        if not torch.jit.is_scripting():
            selection = _eager.check_selection(selection, False)
        if selection is None:
            count = len(self._blocks)
            if count == 0:
                raise InvalidParameterError("there is no block in this TensorMap")
            if count > 1:
                raise InvalidParameterError(
                    "there is more than one block in this TensorMap, provide a "
                    + "selection"
                )
            return self._blocks[0]
        elif isinstance(selection, int):
            return self.block_by_id(selection)
        else:
            labels = self._selection_labels(selection)
            if labels.values.shape[0] != 1:
                raise InvalidParameterError(
                    "block selection must contain exactly one entry, got "
                    + str(labels.values.shape[0])
                )
            matching = self._keys.select(labels.to(self._keys.values.device))
            description = labels.entry(0).print()
            if matching.shape[0] == 0:
                raise InvalidParameterError(
                    "could not find blocks matching the selection " + description
                )
            if matching.shape[0] > 1:
                raise InvalidParameterError(
                    "got more than one matching block for "
                    + description
                    + ", use the `blocks` function to select more than one block"
                )
            return self._blocks[int(matching[0])]

    def __getitem__(
        self, selection: Union[int, Labels, LabelsEntry, Dict[str, int]]
    ) -> TensorBlock:
        return self.block(selection)

    def blocks(
        self,
        selection: Union[
            None, int, List[int], Labels, LabelsEntry, Dict[str, int]
        ] = None,
    ) -> List[TensorBlock]:
        """Get multiple blocks: all of them (``selection=None``), a list of indices,
        or all blocks whose key matches a selection."""
        if not torch.jit.is_scripting():
            selection = _eager.check_selection(selection, True)
        if selection is None:
            return [b for b in self._blocks]
        elif isinstance(selection, int):
            return [self.block_by_id(selection)]
        elif isinstance(selection, list):
            return self.blocks_by_id(selection)
        else:
            matching: List[int] = self._select(selection).cpu().tolist()
            return [self._blocks[i] for i in matching]

    def items(self) -> List[Tuple[LabelsEntry, TensorBlock]]:
        """All ``(key, block)`` pairs of this map."""
        result: List[Tuple[LabelsEntry, TensorBlock]] = []
        for i, block in enumerate(self._blocks):
            result.append((self._keys.entry(i), block))
        return result

    # ------------------------------------------------------------------ #
    # transformations                                                      #
    # ------------------------------------------------------------------ #

    def _with_info(self, keys: Labels, blocks: List[TensorBlock]) -> "TensorMap":
        result = TensorMap(keys, blocks)
        for i, key in enumerate(self._info_keys):
            result._info_keys.append(key)
            result._info_values.append(self._info_values[i])
        return result

    def keys_to_samples(
        self,
        keys_to_move: Union[str, List[str], Labels],
        fill_value: Union[int, float, complex] = 0,
        sort_samples: bool = True,
    ) -> "TensorMap":
        """Move the given key dimensions to the samples, merging the blocks that
        only differ by these dimensions."""
        if not torch.jit.is_scripting():
            keys_to_move = _eager.names_argument(keys_to_move)
        keys, blocks = ops.keys_to_samples(
            self._keys, self._blocks, keys_to_move, fill_value, sort_samples
        )
        return self._with_info(keys, blocks)

    def keys_to_properties(
        self,
        keys_to_move: Union[str, List[str], Labels],
        fill_value: Union[int, float, complex] = 0,
        sort_samples: bool = True,
    ) -> "TensorMap":
        """Move the given key dimensions to the properties, merging the blocks
        that only differ by these dimensions."""
        if not torch.jit.is_scripting():
            keys_to_move = _eager.names_argument(keys_to_move)
        keys, blocks = ops.keys_to_properties(
            self._keys, self._blocks, keys_to_move, fill_value, sort_samples
        )
        return self._with_info(keys, blocks)

    def components_to_properties(
        self, dimensions: Union[str, List[str]]
    ) -> "TensorMap":
        """Move the given component dimensions to the properties."""
        if not torch.jit.is_scripting():
            dimensions = _eager.names_argument(dimensions)
        blocks = ops.components_to_properties(self._blocks, dimensions)
        return self._with_info(self._keys, blocks)

    def copy(self, deep: bool = True) -> "TensorMap":
        """Copy this map; ``deep=False`` shares the value tensors."""
        blocks = [block.copy(deep) for block in self._blocks]
        return self._with_info(self._keys, blocks)

    def to(
        self,
        arg0: Optional[Union[torch.dtype, torch.device, str]] = None,
        arg1: Optional[Union[torch.dtype, torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
        device: Optional[Union[torch.device, str]] = None,
        arrays: Optional[str] = None,
        non_blocking: bool = False,
    ) -> "TensorMap":
        """Move the keys and all blocks to a different dtype and/or device."""
        new_dtype, new_device = _parse_to(
            "`TensorMap.to`", arg0, arg1, dtype, device, arrays
        )
        keys = self._keys
        if new_device is not None:
            keys = keys.to(new_device, non_blocking)
        blocks = [
            block._transform(False, new_dtype, new_device, non_blocking)
            for block in self._blocks
        ]
        return self._with_info(keys, blocks)

    # ------------------------------------------------------------------ #
    # serialization                                                        #
    # ------------------------------------------------------------------ #

    @staticmethod
    def load(path: str) -> "TensorMap":
        """Load a map from a file (see :py:func:`metatensor.torch.load`)."""
        if torch.jit.is_scripting():
            raise RuntimeError(_not_in_torchscript("TensorMap.load"))
        else:
            return _eager.load(path)

    @staticmethod
    def load_buffer(buffer: Tensor) -> "TensorMap":
        """Load a map from a buffer (see :py:func:`metatensor.torch.load_buffer`)."""
        if torch.jit.is_scripting():
            raise RuntimeError(_not_in_torchscript("TensorMap.load_buffer"))
        else:
            return _eager.load_buffer(buffer)

    def save(self, path: str):
        """Save this map to a file (see :py:func:`metatensor.torch.save`)."""
        if torch.jit.is_scripting():
            raise RuntimeError(_not_in_torchscript("TensorMap.save"))
        else:
            _eager.save(path, self)

    def save_buffer(self) -> Tensor:
        """Save this map to an in-memory buffer (1-D uint8 tensor)."""
        if torch.jit.is_scripting():
            raise RuntimeError(_not_in_torchscript("TensorMap.save_buffer"))
        else:
            return _eager.save_buffer(self)

    # ------------------------------------------------------------------ #
    # printing                                                             #
    # ------------------------------------------------------------------ #

    def print(self, max_keys: int) -> str:
        """Format this map, with at most ``max_keys`` keys (all if negative)."""
        count = len(self._blocks)
        plural = "" if count == 1 else "s"
        lines = [
            "TensorMap with " + str(count) + " block" + plural,
            "    keys: " + _names_list(self._keys.names),
            "    blocks:",
        ]
        n_printed = count if max_keys < 0 else min(max_keys, count)
        widths: List[int] = []
        if n_printed > 0:
            keys = self._keys.values[:n_printed]
            rows: List[List[int]] = []
            if keys.device.type == "meta":
                rows = [[-1 for _n in self._keys.names] for _i in range(n_printed)]
            else:
                key_rows: List[List[int]] = keys.to(torch.int64).cpu().tolist()
                rows = key_rows
            widths = [0 for _ in self._keys.names]
            for row in rows:
                for j, value in enumerate(row):
                    widths[j] = max(widths[j], len(str(value)) + 2)
            for i, row in enumerate(rows):
                line = "      "
                for j, value in enumerate(row):
                    text = str(value)
                    before = (widths[j] - len(text)) // 2
                    after = widths[j] - len(text) - before
                    line += _spaces(before) + text + _spaces(after)
                shape = ", ".join([str(s) for s in self._blocks[i].shape])
                lines.append(line + "  => TensorBlock with shape (" + shape + ")")
        if n_printed < count:
            lines.append("       " + _spaces(sum(widths)) + "...")
        return "\n".join(lines).rstrip("\n")

    def __repr__(self) -> str:
        return self.print(-1)

    def __str__(self) -> str:
        return self.print(7)


# compile the class now (see `_classes.py`); TorchScript resolves names
# through the frame calling `torch.jit.script`, so this must stay here
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.jit.script(TensorMap)
