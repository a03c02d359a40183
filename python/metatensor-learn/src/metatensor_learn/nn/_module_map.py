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
            inputs = _prepare_blocks(self._in_keys, tensor)
        else:
            inputs = _prepare_blocks_eager(self._in_keys, tensor)
        positions, values, rows, gradients = inputs

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

        if torch_jit_is_scripting():
            return _assemble(
                tensor, positions, new_values, new_gradients, self._out_properties
            )
        else:
            return _assemble_eager(
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


def _prepare_blocks(
    in_keys: Labels, tensor: TensorMap
) -> Tuple[
    List[int], List[torch.Tensor], List[List[torch.Tensor]], List[List[torch.Tensor]]
]:
    """For each block of ``tensor``: the position of its key in ``in_keys``, its
    values, and for each gradient the rows of the values (``sample`` column) and
    the gradient values."""
    keys = tensor.keys
    positions: List[int] = []
    values: List[torch.Tensor] = []
    rows: List[List[torch.Tensor]] = []
    gradients: List[List[torch.Tensor]] = []
    for i in range(len(keys)):
        key = keys.entry(i)
        position = in_keys.position(key)
        if position is None:
            raise KeyError("key " + str(key) + " not found in modules.")
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

        positions.append(position)
        values.append(block_values)
        rows.append(block_rows)
        gradients.append(block_gradients)
    return positions, values, rows, gradients


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
            new_block.add_gradient(
                parameters[j],
                TensorBlock(
                    values=gradients[i][j],
                    samples=gradient.samples,
                    components=gradient.components,
                    properties=properties,
                ),
            )
        blocks.append(new_block)
    return TensorMap(tensor.keys, blocks)


if getattr(_backend, "METADATA_TRACEABLE", False):
    _prepare_blocks_eager = _prepare_blocks
    _assemble_eager = _assemble
else:
    # metadata operations of the core classes use numpy, which torch.compile
    # can not trace: keep them out of compiled graphs (only the modules are
    # compiled)
    _prepare_blocks_eager = torch.compiler.disable(_prepare_blocks)
    _assemble_eager = torch.compiler.disable(_assemble)
