"""Equivariant non-linear transformation of covariant blocks."""

from typing import List, Optional, Union

import torch

from .._backend import Labels, TensorMap
from ._layers import _CovariantTransform
from ._module import Module
from ._module_map import ModuleMap
from ._utils import (
    _check_in_keys,
    _check_module_map_parameter,
    _check_out_properties,
    _invariant_indices,
)


class EquivariantTransformation(Module):
    """Apply arbitrary modules to the blocks of a map while keeping O(3)
    equivariance.

    Invariant blocks (selected by ``invariant_keys``) go through their module
    directly. For covariant blocks ``x`` of shape ``(samples, components,
    properties)``, the module is applied to the norm of ``x`` over the
    components (which is invariant) and scales ``x``: ``module(|x|) * x``; the
    module must then return as many properties as it gets (or one). Explicit
    gradients follow the chain rule.

    :param modules: one module per key
    :param in_keys: keys of the blocks this layer applies to
    :param in_features: number of input properties, for all keys or per key
    :param out_features: number of output properties, for all keys or per key
        (one of ``out_features`` and ``out_properties`` must be given)
    :param out_properties: properties of the output blocks, one per key
    :param invariant_keys: which keys are invariant, defaults to
        ``Labels(["o3_lambda", "o3_sigma"], [[0, 1]])``
    """

    def __init__(
        self,
        modules: List[torch.nn.Module],
        in_keys: Labels,
        in_features: Union[int, List[int]],
        out_features: Optional[Union[int, List[int]]] = None,
        out_properties: Optional[List[Labels]] = None,
        invariant_keys: Optional[Labels] = None,
    ) -> None:
        super().__init__()
        _check_in_keys(in_keys)
        n = len(in_keys)
        modules = list(modules)
        if len(modules) != n:
            raise ValueError(
                "`modules` must have same length as `in_keys`, but "
                f"len(modules) != len(in_keys) [{len(modules)} != {n}]"
            )
        out_properties = _check_out_properties(out_properties, n)
        _check_module_map_parameter(in_features, "in_features", int, n, "in_keys")
        if out_features is None:
            if out_properties is None:
                raise ValueError(
                    "If `out_features` is not provided, "
                    "`out_properties` must be provided."
                )
        else:
            _check_module_map_parameter(out_features, "out_features", int, n, "in_keys")

        invariant = set(_invariant_indices(in_keys, invariant_keys))
        per_key: List[torch.nn.Module] = []
        for i, module in enumerate(modules):
            if i in invariant:
                per_key.append(module)
            else:
                per_key.append(_CovariantTransform(module))
        self.module_map = ModuleMap(in_keys, per_key, out_properties)

    def forward(self, tensor: TensorMap) -> TensorMap:
        """:param tensor: the input map"""
        return self.module_map(tensor)
