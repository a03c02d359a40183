"""Linear layers applied block by block."""

from typing import List, Optional, Union

import torch

from .._backend import Labels, TensorMap
from ._layers import _Linear
from ._module import Module
from ._module_map import ModuleMap
from ._utils import (
    _check_in_keys,
    _check_module_map_parameter,
    _check_out_properties,
    _invariant_indices,
)


def _out_features(
    out_features: Union[None, int, List[int]],
    out_properties: Optional[List[Labels]],
    n: int,
) -> List[int]:
    if out_features is None:
        if out_properties is None:
            raise ValueError(
                "If `out_features` is not provided, `out_properties` must be provided."
            )
        return [len(properties) for properties in out_properties]

    out_features = _check_module_map_parameter(
        out_features, "out_features", int, n, "in_keys"
    )
    if out_properties is not None:
        for i, (count, properties) in enumerate(zip(out_features, out_properties)):
            if count != len(properties):
                raise ValueError(
                    f"`out_features` and `out_properties` do not match for key {i}: "
                    f"{count} features but {len(properties)} properties"
                )
    return out_features


class Linear(Module):
    """Apply a :py:class:`torch.nn.Linear` to the properties of each block.

    Explicit gradients go through the weights only (the bias is constant, it
    does not contribute to gradients).

    :param in_keys: keys of the blocks this layer applies to
    :param in_features: number of input properties, for all keys or per key
    :param out_features: number of output properties, for all keys or per key.
        Taken from ``out_properties`` if not given.
    :param out_properties: properties of the output blocks, one per key
    :param bias: whether to use a bias, for all keys or per key
    :param device: device of the parameters, and of the Labels stored by
        the layer (``in_keys``, ``out_properties``)
    :param dtype: dtype of the parameters
    """

    def __init__(
        self,
        in_keys: Labels,
        in_features: Union[int, List[int]],
        out_features: Optional[Union[int, List[int]]] = None,
        out_properties: Optional[List[Labels]] = None,
        *,
        bias: Union[bool, List[bool]] = True,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        _check_in_keys(in_keys)
        n = len(in_keys)
        out_properties = _check_out_properties(out_properties, n)
        in_features = _check_module_map_parameter(
            in_features, "in_features", int, n, "in_keys"
        )
        out_features = _out_features(out_features, out_properties, n)
        bias = _check_module_map_parameter(bias, "bias", bool, n, "in_keys")

        modules = [
            _Linear(in_features[i], out_features[i], bias[i], device, dtype)
            for i in range(n)
        ]
        self.module_map = ModuleMap(in_keys, modules, out_properties)
        if device is not None:
            # the Labels stored by the module map follow the parameters
            self.to(device=device)

    def forward(self, tensor: TensorMap) -> TensorMap:
        """Apply the linear layer of each key to the corresponding block.

        :param tensor: the input map
        """
        return self.module_map(tensor)


class EquivariantLinear(Module):
    """A :py:class:`Linear` layer that keeps O(3) equivariance: invariant blocks
    (selected by ``invariant_keys``) get a bias, covariant blocks do not. The
    weights act on the property axis only, so they commute with rotations of
    the component axis.

    :param in_keys: keys of the blocks this layer applies to
    :param in_features: number of input properties, for all keys or per key
    :param out_features: number of output properties, for all keys or per key.
        Taken from ``out_properties`` if not given.
    :param out_properties: properties of the output blocks, one per key
    :param invariant_keys: which keys are invariant, defaults to
        ``Labels(["o3_lambda", "o3_sigma"], [[0, 1]])``
    :param bias: whether invariant blocks use a bias, for all of them or one
        value per invariant key
    :param device: device of the parameters, and of the Labels stored by
        the layer (``in_keys``, ``out_properties``)
    :param dtype: dtype of the parameters
    """

    def __init__(
        self,
        in_keys: Labels,
        in_features: Union[int, List[int]],
        out_features: Optional[Union[int, List[int]]] = None,
        out_properties: Optional[List[Labels]] = None,
        invariant_keys: Optional[Labels] = None,
        *,
        bias: Union[bool, List[bool]] = True,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        _check_in_keys(in_keys)
        n = len(in_keys)
        out_properties = _check_out_properties(out_properties, n)
        in_features = _check_module_map_parameter(
            in_features, "in_features", int, n, "in_keys"
        )
        out_features = _out_features(out_features, out_properties, n)

        invariant = _invariant_indices(in_keys, invariant_keys)
        bias = _check_module_map_parameter(
            bias, "bias", bool, len(invariant), "invariant_keys"
        )
        key_bias = [False] * n
        for i, position in enumerate(invariant):
            key_bias[position] = bias[i]

        modules = [
            _Linear(in_features[i], out_features[i], key_bias[i], device, dtype)
            for i in range(n)
        ]
        self.module_map = ModuleMap(in_keys, modules, out_properties)
        if device is not None:
            # the Labels stored by the module map follow the parameters
            self.to(device=device)

    def forward(self, tensor: TensorMap) -> TensorMap:
        """Apply the linear layer of each key to the corresponding block.

        :param tensor: the input map
        """
        return self.module_map(tensor)
