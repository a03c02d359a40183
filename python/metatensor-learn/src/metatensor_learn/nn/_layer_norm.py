"""Layer normalisation applied block by block."""

from typing import List, Optional, Union

import torch

from .._backend import Labels, TensorMap
from ._layers import _Identity, _LayerNorm
from ._module import Module
from ._module_map import ModuleMap
from ._utils import (
    _check_in_keys,
    _check_module_map_parameter,
    _check_out_properties,
    _invariant_indices,
)


def _layer_norms(
    in_features: Union[int, List[int]],
    eps: Union[float, List[float]],
    elementwise_affine: Union[bool, List[bool]],
    bias: Union[bool, List[bool]],
    mean: Union[bool, List[bool]],
    device: Optional[torch.device],
    dtype: Optional[torch.dtype],
    n: int,
    ref_name: str,
) -> List[_LayerNorm]:
    in_features = _check_module_map_parameter(
        in_features, "in_features", int, n, ref_name
    )
    eps = _check_module_map_parameter(eps, "eps", float, n, ref_name)
    elementwise_affine = _check_module_map_parameter(
        elementwise_affine, "elementwise_affine", bool, n, ref_name
    )
    bias = _check_module_map_parameter(bias, "bias", bool, n, ref_name)
    mean = _check_module_map_parameter(mean, "mean", bool, n, ref_name)
    return [
        _LayerNorm(
            in_features[i],
            eps=eps[i],
            elementwise_affine=elementwise_affine[i],
            bias=bias[i],
            mean=mean[i],
            device=device,
            dtype=dtype,
        )
        for i in range(n)
    ]


class LayerNorm(Module):
    """Normalise each sample of each block over all its components and
    properties: ``y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias``,
    where ``weight`` and ``bias`` have one entry per property. Explicit
    gradients follow the chain rule. The input is never modified.

    :param in_keys: keys of the blocks this layer applies to
    :param in_features: number of properties, for all keys or per key
    :param out_properties: properties of the output blocks, one per key
    :param eps: added to the variance, for all keys or per key
    :param elementwise_affine: whether to learn ``weight`` (and ``bias``)
    :param bias: whether to learn ``bias`` (with ``elementwise_affine``)
    :param mean: whether to subtract the mean (the variance is always computed
        around the mean)
    :param device: device of the parameters, and of the Labels stored by
        the layer (``in_keys``, ``out_properties``)
    :param dtype: dtype of the parameters
    """

    def __init__(
        self,
        in_keys: Labels,
        in_features: List[int],
        out_properties: Optional[List[Labels]] = None,
        *,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        mean: bool = True,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        _check_in_keys(in_keys)
        n = len(in_keys)
        out_properties = _check_out_properties(out_properties, n)
        modules = _layer_norms(
            in_features,
            eps,
            elementwise_affine,
            bias,
            mean,
            device,
            dtype,
            n,
            "in_keys",
        )
        self.module_map = ModuleMap(in_keys, modules, out_properties)
        if device is not None:
            # the Labels stored by the module map follow the parameters
            self.to(device=device)

    def forward(self, tensor: TensorMap) -> TensorMap:
        """:param tensor: the input map"""
        return self.module_map(tensor)


class InvariantLayerNorm(Module):
    """:py:class:`LayerNorm` applied to the invariant blocks only (selected by
    ``invariant_keys``), leaving covariant blocks unchanged. The per-key
    parameters (lists) have one entry per invariant key.

    :param in_keys: keys of the blocks this layer applies to
    :param in_features: number of properties, for all invariant keys or per
        invariant key
    :param out_properties: properties of the output blocks, one per key
    :param invariant_keys: which keys are invariant, defaults to
        ``Labels(["o3_lambda", "o3_sigma"], [[0, 1]])``
    :param eps: added to the variance
    :param elementwise_affine: whether to learn ``weight`` (and ``bias``)
    :param bias: whether to learn ``bias`` (with ``elementwise_affine``)
    :param mean: whether to subtract the mean
    :param device: device of the parameters, and of the Labels stored by
        the layer (``in_keys``, ``out_properties``)
    :param dtype: dtype of the parameters
    """

    def __init__(
        self,
        in_keys: Labels,
        in_features: List[int],
        out_properties: Optional[List[Labels]] = None,
        invariant_keys: Optional[Labels] = None,
        *,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        mean: bool = True,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        _check_in_keys(in_keys)
        n = len(in_keys)
        out_properties = _check_out_properties(out_properties, n)
        invariant = _invariant_indices(in_keys, invariant_keys)
        norms = _layer_norms(
            in_features,
            eps,
            elementwise_affine,
            bias,
            mean,
            device,
            dtype,
            len(invariant),
            "invariant_keys",
        )
        modules: List[torch.nn.Module] = [_Identity() for _ in range(n)]
        for i, position in enumerate(invariant):
            modules[position] = norms[i]
        self.module_map = ModuleMap(in_keys, modules, out_properties)
        if device is not None:
            # the Labels stored by the module map follow the parameters
            self.to(device=device)

    def forward(self, tensor: TensorMap) -> TensorMap:
        """:param tensor: the input map"""
        return self.module_map(tensor)
