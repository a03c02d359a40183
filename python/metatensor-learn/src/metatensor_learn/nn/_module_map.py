"""``ModuleMap``: apply one torch module per block of a TensorMap."""

import copy
import warnings
from typing import List, Optional, Tuple

import torch

from .. import _backend
from .._backend import Labels, TensorBlock, TensorMap, torch_jit_is_scripting
from .._dispatch import index_tensor, range_labels_values
from ._gradients import gradient_forward_eager, supports_scripted_gradients
from ._module import Module
from ._utils import _check_in_keys, _check_out_properties


class ModuleMapInterface(torch.nn.Module):
    """Signature every module wrapped in a :py:class:`ModuleMap` must have (this
    lets TorchScript index the ``ModuleList`` with a runtime integer)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        pass


class _GradientModuleInterface(torch.nn.Module):
    """Modules which also propagate explicit gradients (see ``_gradients.py``)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        pass

    def gradient_forward(
        self,
        values: torch.Tensor,
        rows: List[torch.Tensor],
        gradients: List[torch.Tensor],
    ) -> List[torch.Tensor]:
        pass


with warnings.catch_warnings():
    # torch >= 2.10 deprecates TorchScript, but it is still the way to export
    # models using metatensor.torch.learn
    warnings.simplefilter("ignore", DeprecationWarning)
    ModuleMapInterface = torch.jit.interface(ModuleMapInterface)
    _GradientModuleInterface = torch.jit.interface(_GradientModuleInterface)


class ModuleMap(Module):
    """Apply a different :py:class:`torch.nn.Module` to the values of each block
    of a :py:class:`TensorMap`.

    Each block with key ``in_keys[i]`` goes through ``modules[i]``, which maps
    the block values (``(samples, *components, properties)``) to new values with
    the same samples and components. Gradient blocks follow the chain rule: each
    gradient direction goes through the Jacobian of the module at the
    corresponding sample (so a linear layer applies its weights but not its bias
    to gradients, and an activation multiplies them by its derivative).

    Models built from this class (and from all the layers of this module) can
    be compiled with ``torch.jit.script`` (the ``metatensor.torch.learn``
    flavour) and with ``torch.compile(model, fullgraph=True)`` (both flavours).
    The values of the keys are data for ``torch.compile``, and the compiled code
    can not use them to pick the module of each block: it expects the keys of
    the input to be ``in_keys`` in the same order, and checks it when running
    (a ``RuntimeError`` otherwise). Maps with a subset of ``in_keys`` need a
    graph break (they work without ``fullgraph=True``).

    :param in_keys: keys of the blocks the modules apply to
    :param modules: one module per entry of ``in_keys``, each taking and
        returning a single tensor
    :param out_properties: properties of the output blocks, one Labels per key.
        By default, properties are named ``"_"`` and numbered from 0.
    """

    def __init__(
        self,
        in_keys: Labels,
        modules: List[torch.nn.Module],
        out_properties: Optional[List[Labels]] = None,
    ):
        super().__init__()
        _create_graph_break_function()
        _check_in_keys(in_keys)
        modules = list(modules)
        if len(in_keys) != len(modules):
            raise ValueError(
                "in_keys and modules must match in length, but found "
                f"{len(in_keys)} != {len(modules)} [len(in_keys) != len(modules)]"
            )
        if isinstance(out_properties, (list, tuple)):
            if len(out_properties) != len(in_keys):
                raise ValueError(
                    "out_properties and in_keys must match in length, but found "
                    f"{len(out_properties)} != {len(in_keys)} "
                    "[len(out_properties) != len(in_keys)]"
                )
        out_properties = _check_out_properties(out_properties, len(in_keys))
        if out_properties is None:
            # the Labels classes cache the names they validated, and
            # torch.compile guards on this cache: validate the name of the
            # default properties now, not in the first compiled call (which
            # would make the second call compile again)
            Labels.range("_", 1)

        self.module_list = torch.nn.ModuleList(modules)
        self.register_buffer("_in_keys", in_keys)
        self.register_buffer("_out_properties", out_properties)
        if all(supports_scripted_gradients(module) for module in modules):
            # checked with `hasattr` by TorchScript to compile gradient support
            self._scripted_gradients = True

    @classmethod
    def from_module(
        cls,
        in_keys: Labels,
        module: torch.nn.Module,
        out_properties: Optional[List[Labels]] = None,
    ) -> "ModuleMap":
        """Create a :py:class:`ModuleMap` with an independent deep copy of
        ``module`` for each entry of ``in_keys``.

        :param in_keys: keys of the blocks the modules apply to
        :param module: the module to copy for every key
        :param out_properties: properties of the output blocks, one per key
        """
        modules = [copy.deepcopy(module) for _ in range(len(in_keys))]
        return cls(in_keys, modules, out_properties)

    @property
    def in_keys(self) -> Labels:
        """Keys of the blocks this map applies to."""
        return self._in_keys

    @property
    def out_properties(self) -> Optional[List[Labels]]:
        """Properties of the output blocks, or ``None`` for default ones."""
        return self._out_properties

    def forward(self, tensor: TensorMap) -> TensorMap:
        """Apply the modules to the blocks of ``tensor``.

        :param tensor: input map; its keys must be a subset of ``in_keys`` (in
            any order)
        :return: a map with the same keys, samples and components as ``tensor``
        """
        if torch_jit_is_scripting():
            positions = _block_positions(self._in_keys, tensor.keys)
        else:
            positions = _block_positions_eager(self._in_keys, tensor.keys)
        values, rows, gradients = _prepare_blocks(tensor)

        new_values: List[torch.Tensor] = []
        new_gradients: List[List[torch.Tensor]] = []
        for i in range(len(positions)):
            position = positions[i]
            # gradients first: modules working in place would change `values`
            if len(gradients[i]) != 0:
                block_gradients = self._gradient_forward(
                    position, values[i], rows[i], gradients[i]
                )
            else:
                block_gradients = gradients[i]
            module: ModuleMapInterface = self.module_list[position]
            new_values.append(module.forward(values[i]))
            new_gradients.append(block_gradients)

        return _assemble(
            tensor, positions, new_values, new_gradients, self._out_properties
        )

    def _gradient_forward(
        self,
        position: int,
        values: torch.Tensor,
        rows: List[torch.Tensor],
        gradients: List[torch.Tensor],
    ) -> List[torch.Tensor]:
        if torch_jit_is_scripting():
            if hasattr(self, "_scripted_gradients"):
                module: _GradientModuleInterface = self.module_list[position]
                return module.gradient_forward(values, rows, gradients)
            else:
                raise ValueError(
                    "gradients are only supported in TorchScript for the modules "
                    "of metatensor.learn.nn, use metatensor.remove_gradients() "
                    "or a module with a `gradient_forward` method"
                )
        else:
            return gradient_forward_eager(
                self.module_list[position], values, rows, gradients
            )

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for i, module in enumerate(self.module_list):
            key = self._in_keys.entry(i)
            module_repr = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({key}): {module_repr}")
        lines.append(")")
        return "\n".join(lines)


def _block_positions(in_keys: Labels, keys: Labels) -> List[int]:
    """The position in ``in_keys`` of each entry of ``keys``."""
    positions: List[int] = []
    for i in range(len(keys)):
        key = keys.entry(i)
        position = in_keys.position(key)
        if position is None:
            raise KeyError("key " + str(key) + " not found in modules.")
        positions.append(position)
    return positions


def _prepare_blocks(
    tensor: TensorMap,
) -> Tuple[List[torch.Tensor], List[List[torch.Tensor]], List[List[torch.Tensor]]]:
    """For each block of ``tensor``: its values, and for each gradient the rows
    of the values (``sample`` column) and the gradient values."""
    values: List[torch.Tensor] = []
    rows: List[List[torch.Tensor]] = []
    gradients: List[List[torch.Tensor]] = []
    for i in range(len(tensor.keys)):
        block = tensor.block_by_id(i)
        block_values = block.values

        block_rows: List[torch.Tensor] = []
        block_gradients: List[torch.Tensor] = []
        for parameter in block.gradients_list():
            gradient = block.gradient(parameter)
            if len(gradient.gradients_list()) != 0:
                raise NotImplementedError(
                    "gradients of gradients are not supported by ModuleMap"
                )
            samples = gradient.samples.column("sample")
            block_rows.append(index_tensor(samples, block_values))
            block_gradients.append(gradient.values)

        values.append(block_values)
        rows.append(block_rows)
        gradients.append(block_gradients)
    return values, rows, gradients


def _assemble(
    tensor: TensorMap,
    positions: List[int],
    values: List[torch.Tensor],
    gradients: List[List[torch.Tensor]],
    out_properties: Optional[List[Labels]],
) -> TensorMap:
    """Build the output map from the new values and gradients of each block,
    keeping the metadata of ``tensor``."""
    blocks: List[TensorBlock] = []
    for i in range(len(positions)):
        block = tensor.block_by_id(i)
        new_values = values[i]
        if out_properties is None:
            properties = Labels(
                "_",
                range_labels_values(new_values.shape[-1], new_values),
                assume_unique=True,
            )
        else:
            properties = out_properties[positions[i]].to(new_values.device)

        new_block = TensorBlock(
            values=new_values,
            samples=block.samples,
            components=block.components,
            properties=properties,
        )
        parameters = block.gradients_list()
        for j in range(len(parameters)):
            gradient = block.gradient(parameters[j])
            new_gradient = TensorBlock(
                values=gradients[i][j],
                samples=gradient.samples,
                components=gradient.components,
                properties=properties,
            )
            if torch_jit_is_scripting():
                new_block.add_gradient(parameters[j], new_gradient)
            else:
                _add_gradient_eager(new_block, parameters[j], new_gradient)
        blocks.append(new_block)

    if torch_jit_is_scripting():
        return TensorMap(tensor.keys, blocks)
    else:
        return _new_tensor_map_eager(tensor.keys, blocks)


# ----------------------------------------------------------------------------- #
# Python-only helpers (never compiled by TorchScript), handling torch.compile   #
# ----------------------------------------------------------------------------- #
#
# Under `torch.compile`, the values of Labels are traced like tensors (the
# numpy arrays of the core classes too: dynamo translates numpy code to torch
# code), so nothing may depend on them: dynamo can not guard on data, and
# `fullgraph=True` forbids the graph breaks that reading them would need.
# Only the number of blocks, the Labels names, and array shapes/dtypes are
# static information.


def _block_positions_eager(in_keys: Labels, keys: Labels) -> List[int]:
    if torch.compiler.is_compiling():
        return _block_positions_compiled(in_keys, keys)
    return _block_positions(in_keys, keys)


def _block_positions_compiled(in_keys: Labels, keys: Labels) -> List[int]:
    """Resolve the module of each block from static information: when the input
    has as many keys as ``in_keys`` with the same names, block ``i`` goes
    through module ``i``, and the graph checks (without reading the data at
    trace time) that the keys are ``in_keys`` in the same order."""
    count = len(keys)
    if count == len(in_keys) and list(keys.names) == list(in_keys.names):
        actual = torch.as_tensor(keys.values)
        expected = torch.as_tensor(in_keys.values).to(actual.device)
        torch._assert_async(
            torch.all(actual == expected),
            "under torch.compile, the keys of the TensorMap given to ModuleMap "
            "must be the ModuleMap in_keys, in the same order",
        )
        return list(range(count))
    return _block_positions_graph_break(in_keys, keys)


_GRAPH_BREAK_REASON = (
    "ModuleMap: the TensorMap keys are not the in_keys of the module (not the "
    "same number of keys or not the same names), matching blocks to modules "
    "needs the values of the keys"
)


def _create_graph_break_function() -> None:
    """Create the version of ``_block_positions`` that ``torch.compile`` does not
    trace (it can not be created while tracing). ``torch.compiler.disable``
    imports ``torch._dynamo`` (about a second), so this happens when the first
    ``ModuleMap`` is built rather than when this module is imported."""
    global _BLOCK_POSITIONS_DISABLED
    if _BLOCK_POSITIONS_DISABLED is None:
        _BLOCK_POSITIONS_DISABLED = torch.compiler.disable(
            _block_positions, reason=_GRAPH_BREAK_REASON
        )


def _block_positions_graph_break(in_keys: Labels, keys: Labels) -> List[int]:
    if _BLOCK_POSITIONS_DISABLED is None:
        raise RuntimeError("internal error: the ModuleMap graph break is missing")
    return _BLOCK_POSITIONS_DISABLED(in_keys, keys)


_BLOCK_POSITIONS_DISABLED = None


def _add_gradient_eager(block: TensorBlock, parameter: str, gradient: TensorBlock):
    if _CORE_CLASSES and torch.compiler.is_compiling():
        # `add_gradient` of the core classes checks the values of the gradient
        # samples (data-dependent). The samples and components come from a valid
        # input gradient, `TensorBlock()` checked the shapes: only check what
        # `add_gradient` adds, from static information.
        if gradient.values.dtype != block.values.dtype:
            raise ValueError(
                "the gradient values have dtype "
                f"{gradient.values.dtype} but the block values have dtype "
                f"{block.values.dtype}"
            )
        if gradient.values.device != block.values.device:
            raise ValueError(
                f"the gradient values are on device {gradient.values.device} but "
                f"the block values are on device {block.values.device}"
            )
        block._add_gradient_unchecked(parameter, gradient)
    else:
        block.add_gradient(parameter, gradient)


def _new_tensor_map_eager(keys: Labels, blocks: List[TensorBlock]) -> TensorMap:
    if _CORE_CLASSES and torch.compiler.is_compiling():
        # dynamo can not trace all the checks of the core `TensorMap()`. The
        # keys, samples, components and gradients come from a valid input map:
        # check the rest, from static information.
        if len(blocks) != 0:
            first = blocks[0]
            for block in blocks[1:]:
                if block.properties.names != first.properties.names:
                    raise ValueError(
                        "all output blocks must have the same property names, got "
                        f"{block.properties.names} and {first.properties.names}"
                    )
                if block.values.dtype != first.values.dtype:
                    raise ValueError(
                        "all output blocks must have the same dtype, got "
                        f"{block.values.dtype} and {first.values.dtype}"
                    )
                if block.values.device != first.values.device:
                    raise ValueError(
                        "all output blocks must be on the same device, got "
                        f"{block.values.device} and {first.values.device}"
                    )
        return TensorMap._unchecked(keys, blocks)
    return TensorMap(keys, blocks)


# the core classes (numpy metadata) and not the ones of metatensor.torch
_CORE_CLASSES = getattr(_backend, "CORE_CLASSES", False)
