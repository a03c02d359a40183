"""Chain several layers, block by block."""

from typing import Any, List, Optional

from .._backend import Labels, TensorMap
from ._layers import _Sequential
from ._module import Module
from ._module_map import ModuleMap
from ._utils import _check_in_keys


def _as_module_map(arg: Any) -> ModuleMap:
    if isinstance(arg, ModuleMap):
        return arg
    module_map = getattr(arg, "module_map", None)
    if isinstance(module_map, ModuleMap):
        return module_map
    raise TypeError(
        "all layers given to `Sequential` must be `ModuleMap` or metatensor.learn "
        f"layers with a `module_map`, got {type(arg)}"
    )


class Sequential(Module):
    """Chain layers (:py:class:`ModuleMap` or any layer of this module) into a
    single layer: for each key, the modules of all layers for this key are
    combined in a :py:class:`torch.nn.Sequential`. Output properties are the
    ones of the last layer.

    :param in_keys: keys of the blocks this layer applies to; every layer must
        have a module for each of them
    :param args: the layers, in order
    """

    def __init__(self, in_keys: Labels, *args: List[ModuleMap]) -> None:
        super().__init__()
        _check_in_keys(in_keys)
        module_maps = [_as_module_map(arg) for arg in args]

        # position of each key of `in_keys` in the keys of every layer
        positions: List[List[int]] = []
        for layer, module_map in enumerate(module_maps):
            layer_positions = []
            for i in range(len(in_keys)):
                key = in_keys.entry(i)
                position = module_map.in_keys.position(key)
                if position is None:
                    raise ValueError(
                        f"key {key} of `in_keys` is missing from the keys of "
                        f"layer {layer}"
                    )
                layer_positions.append(position)
            positions.append(layer_positions)

        modules = []
        for i in range(len(in_keys)):
            modules.append(
                _Sequential(
                    *[
                        module_map.module_list[positions[layer][i]]
                        for layer, module_map in enumerate(module_maps)
                    ]
                )
            )

        out_properties: Optional[List[Labels]] = None
        if len(module_maps) != 0:
            last = module_maps[-1].out_properties
            if last is not None:
                out_properties = [last[position] for position in positions[-1]]
        self.module_map = ModuleMap(in_keys, modules, out_properties)

    def forward(self, tensor: TensorMap) -> TensorMap:
        """:param tensor: the input map"""
        return self.module_map(tensor)
