"""Conversions between the classes of metatensor-core (``metatensor.Labels``,
``metatensor.TensorBlock``, ``metatensor.TensorMap``) and the TorchScript
classes of this package."""

import warnings
from typing import Any

import numpy as np
import torch

import metatensor

from ._block import TensorBlock
from ._labels import Labels
from ._tensor import TensorMap


def _to_torch(array: Any) -> torch.Tensor:
    if isinstance(array, torch.Tensor):
        return array
    if isinstance(array, np.ndarray):
        with warnings.catch_warnings():
            # read-only numpy arrays (e.g. labels values) are shared as-is
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(array)
    raise TypeError(f"can not convert {type(array)} to a torch tensor")


def _labels_from_core(labels: "metatensor.Labels") -> Labels:
    values = _to_torch(labels.values).to(torch.int32)
    return Labels(list(labels.names), values, assume_unique=True)


def _block_from_core(block: "metatensor.TensorBlock", cache: dict) -> TensorBlock:
    def convert(labels):
        key = id(labels)
        result = cache.get(key)
        if result is None:
            result = _labels_from_core(labels)
            cache[key] = (result, labels)
        else:
            result = result[0]
        return result

    values = _to_torch(block.values)
    samples = convert(block.samples)
    components = [convert(c) for c in block.components]
    properties = convert(block.properties)
    if samples.values.device != values.device:
        samples = samples.to(values.device)
        components = [c.to(values.device) for c in components]
        properties = properties.to(values.device)
    result = TensorBlock(values, samples, components, properties)
    for parameter, gradient in block.gradients():
        result.add_gradient(parameter, _block_from_core(gradient, cache))
    return result


def from_core(data: Any) -> Any:
    """Convert a metatensor-core ``Labels``, ``TensorBlock`` or ``TensorMap``
    (holding numpy arrays or torch tensors) to the corresponding
    :py:mod:`metatensor.torch` class. Data is shared without copies whenever
    possible (numpy arrays are wrapped with ``torch.from_numpy``).

    :param data: the metatensor-core object to convert
    """
    if isinstance(data, metatensor.Labels):
        return _labels_from_core(data)
    elif isinstance(data, metatensor.TensorBlock):
        return _block_from_core(data, {})
    elif isinstance(data, metatensor.TensorMap):
        cache: dict = {}
        blocks = [_block_from_core(block, cache) for block in data.blocks()]
        keys = _labels_from_core(data.keys)
        if len(blocks) != 0 and keys.values.device != blocks[0].values.device:
            keys = keys.to(blocks[0].values.device)
        result = TensorMap(keys, blocks)
        for key, value in data.info().items():
            result.set_info(key, value)
        return result
    raise TypeError(
        "`data` must be a metatensor-core Labels, TensorBlock or TensorMap, "
        f"not {type(data)}"
    )


def _labels_to_core(labels: Labels) -> "metatensor.Labels":
    return metatensor.Labels(labels.names, labels.values, assume_unique=True)


def _block_to_core(block: TensorBlock, cache: dict) -> "metatensor.TensorBlock":
    def convert(labels):
        key = id(labels)
        result = cache.get(key)
        if result is None:
            result = _labels_to_core(labels)
            cache[key] = (result, labels)
        else:
            result = result[0]
        return result

    result = metatensor.TensorBlock(
        block.values,
        convert(block.samples),
        [convert(c) for c in block.components],
        convert(block.properties),
    )
    for parameter, gradient in block.gradients():
        result.add_gradient(parameter, _block_to_core(gradient, cache))
    return result


def to_core(data: Any) -> Any:
    """Convert a :py:mod:`metatensor.torch` ``Labels``, ``TensorBlock`` or
    ``TensorMap`` to the corresponding metatensor-core class, holding the same
    torch tensors (no copies).

    :param data: the object to convert
    """
    if isinstance(data, Labels):
        return _labels_to_core(data)
    elif isinstance(data, TensorBlock):
        return _block_to_core(data, {})
    elif isinstance(data, TensorMap):
        cache: dict = {}
        blocks = [_block_to_core(block, cache) for block in data.blocks()]
        result = metatensor.TensorMap(_labels_to_core(data.keys), blocks)
        for key, value in data.info().items():
            result.set_info(key, value)
        return result
    raise TypeError(
        "`data` must be a metatensor.torch Labels, TensorBlock or TensorMap, "
        f"not {type(data)}"
    )
