"""Element-wise activation functions applied block by block."""

from typing import List, Optional, Union

import torch

from .._backend import Labels, TensorMap
from ._layers import _Identity, _ReLU, _SiLU, _Tanh
from ._module import Module
from ._module_map import ModuleMap
from ._utils import _check_in_keys, _check_out_properties, _invariant_indices


def _activation(name: str, in_place: bool) -> torch.nn.Module:
    if name == "relu":
        return _ReLU(inplace=in_place)
    elif name == "silu":
        return _SiLU(inplace=in_place)
    elif name == "tanh":
        return _Tanh()
    raise ValueError(f"unknown activation '{name}'")


def _module_map(
    name: str,
    in_keys: Labels,
    out_properties: Union[None, Labels, List[Labels]],
    invariant_keys: Optional[Labels],
    only_invariant: bool,
    in_place: bool,
) -> ModuleMap:
    _check_in_keys(in_keys)
    n = len(in_keys)
    out_properties = _check_out_properties(out_properties, n)
    if only_invariant:
        invariant = set(_invariant_indices(in_keys, invariant_keys))
    else:
        invariant = set(range(n))

    modules: List[torch.nn.Module] = []
    for i in range(n):
        if i in invariant:
            modules.append(_activation(name, in_place))
        else:
            modules.append(_Identity())
    return ModuleMap(in_keys, modules, out_properties)


class ReLU(Module):
    """Apply :py:class:`torch.nn.ReLU` to the values of every block. Explicit
    gradients are multiplied by the derivative (``values > 0``).

    :param in_keys: keys of the blocks this layer applies to
    :param out_properties: properties of the output blocks: one Labels used for
        every key, or one per key (default: ``Labels("_", [[0], [1], ...])``)
    :param in_place: modify the input values in place
    """

    def __init__(
        self,
        in_keys: Labels,
        out_properties: Optional[Labels] = None,
        *,
        in_place: bool = False,
    ) -> None:
        super().__init__()
        self.module_map = _module_map(
            "relu", in_keys, out_properties, None, False, in_place
        )

    def forward(self, tensor: TensorMap) -> TensorMap:
        """:param tensor: the input map"""
        return self.module_map(tensor)


class SiLU(Module):
    """Apply :py:class:`torch.nn.SiLU` to the values of every block. Explicit
    gradients are multiplied by the derivative.

    :param in_keys: keys of the blocks this layer applies to
    :param out_properties: properties of the output blocks: one Labels used for
        every key, or one per key (default: ``Labels("_", [[0], [1], ...])``)
    :param in_place: modify the input values in place
    """

    def __init__(
        self,
        in_keys: Labels,
        out_properties: Optional[Labels] = None,
        *,
        in_place: bool = False,
    ) -> None:
        super().__init__()
        self.module_map = _module_map(
            "silu", in_keys, out_properties, None, False, in_place
        )

    def forward(self, tensor: TensorMap) -> TensorMap:
        """:param tensor: the input map"""
        return self.module_map(tensor)


class Tanh(Module):
    """Apply :py:class:`torch.nn.Tanh` to the values of every block. Explicit
    gradients are multiplied by the derivative.

    :param in_keys: keys of the blocks this layer applies to
    :param out_properties: properties of the output blocks: one Labels used for
        every key, or one per key (default: ``Labels("_", [[0], [1], ...])``)
    """

    def __init__(
        self, in_keys: Labels, out_properties: Optional[Labels] = None
    ) -> None:
        super().__init__()
        self.module_map = _module_map(
            "tanh", in_keys, out_properties, None, False, False
        )

    def forward(self, tensor: TensorMap) -> TensorMap:
        """:param tensor: the input map"""
        return self.module_map(tensor)


class InvariantReLU(Module):
    """Apply :py:class:`torch.nn.ReLU` to the invariant blocks only (selected by
    ``invariant_keys``), leaving covariant blocks unchanged, which keeps O(3)
    equivariance.

    :param in_keys: keys of the blocks this layer applies to
    :param out_properties: properties of the output blocks: one Labels used for
        every key, or one per key (default: ``Labels("_", [[0], [1], ...])``)
    :param invariant_keys: which keys are invariant, defaults to
        ``Labels(["o3_lambda", "o3_sigma"], [[0, 1]])``
    :param in_place: modify the input values in place
    """

    def __init__(
        self,
        in_keys: Labels,
        out_properties: Optional[Labels] = None,
        invariant_keys: Optional[Labels] = None,
        *,
        in_place: bool = False,
    ) -> None:
        super().__init__()
        self.module_map = _module_map(
            "relu", in_keys, out_properties, invariant_keys, True, in_place
        )

    def forward(self, tensor: TensorMap) -> TensorMap:
        """:param tensor: the input map"""
        return self.module_map(tensor)


class InvariantSiLU(Module):
    """Apply :py:class:`torch.nn.SiLU` to the invariant blocks only (selected by
    ``invariant_keys``), leaving covariant blocks unchanged.

    :param in_keys: keys of the blocks this layer applies to
    :param out_properties: properties of the output blocks: one Labels used for
        every key, or one per key (default: ``Labels("_", [[0], [1], ...])``)
    :param invariant_keys: which keys are invariant, defaults to
        ``Labels(["o3_lambda", "o3_sigma"], [[0, 1]])``
    :param in_place: modify the input values in place
    """

    def __init__(
        self,
        in_keys: Labels,
        out_properties: Optional[Labels] = None,
        invariant_keys: Optional[Labels] = None,
        *,
        in_place: bool = False,
    ) -> None:
        super().__init__()
        self.module_map = _module_map(
            "silu", in_keys, out_properties, invariant_keys, True, in_place
        )

    def forward(self, tensor: TensorMap) -> TensorMap:
        """:param tensor: the input map"""
        return self.module_map(tensor)


class InvariantTanh(Module):
    """Apply :py:class:`torch.nn.Tanh` to the invariant blocks only (selected by
    ``invariant_keys``), leaving covariant blocks unchanged.

    :param in_keys: keys of the blocks this layer applies to
    :param out_properties: properties of the output blocks: one Labels used for
        every key, or one per key (default: ``Labels("_", [[0], [1], ...])``)
    :param invariant_keys: which keys are invariant, defaults to
        ``Labels(["o3_lambda", "o3_sigma"], [[0, 1]])``
    """

    def __init__(
        self,
        in_keys: Labels,
        out_properties: Optional[Labels] = None,
        invariant_keys: Optional[Labels] = None,
    ) -> None:
        super().__init__()
        self.module_map = _module_map(
            "tanh", in_keys, out_properties, invariant_keys, True, False
        )

    def forward(self, tensor: TensorMap) -> TensorMap:
        """:param tensor: the input map"""
        return self.module_map(tensor)
