"""Registration of the metatensor classes as pytree nodes, so they can be used
as inputs and outputs of ``torch.export`` and ``torch.compile``.

* ``Labels`` flatten to their ``values`` (names are static context);
* ``TensorBlock`` flatten to ``[values, samples, properties, *components,
  *gradients]`` with ``(n_components, gradient parameters)`` as context;
* ``TensorMap`` flatten to ``[keys, *blocks]`` with the (sorted) info as context.
"""

import json

import torch
import torch.utils._pytree as pytree
from torch.utils._pytree import GetAttrKey, MappingKey, SequenceKey

from ._block import TensorBlock
from ._labels import Labels
from ._tensor import TensorMap


def _labels_flatten(labels):
    return [labels.values], tuple(labels.names)


def _labels_unflatten(children, context):
    return Labels(list(context), children[0], assume_unique=True)


def _labels_flatten_with_keys(labels):
    return [(GetAttrKey("values"), labels.values)], tuple(labels.names)


def _block_flatten(block):
    parameters = tuple(block.gradients_list())
    children = [block.values, block.samples, block.properties]
    children += list(block.components)
    children += [block.gradient(p) for p in parameters]
    return children, (len(block.components), parameters)


def _block_unflatten(children, context):
    n_components, parameters = context
    block = TensorBlock(
        children[0], children[1], list(children[3 : 3 + n_components]), children[2]
    )
    for parameter, gradient in zip(parameters, children[3 + n_components :]):
        block.add_gradient(parameter, gradient)
    return block


def _block_flatten_with_keys(block):
    children, context = _block_flatten(block)
    keys = [GetAttrKey("values"), GetAttrKey("samples"), GetAttrKey("properties")]
    keys += [SequenceKey(i) for i in range(context[0])]
    keys += [MappingKey(p) for p in context[1]]
    return list(zip(keys, children)), context


def _tensor_flatten(tensor):
    return [tensor.keys] + tensor.blocks(), tuple(sorted(tensor.info().items()))


def _tensor_unflatten(children, context):
    tensor = TensorMap(children[0], list(children[1:]))
    for key, value in context:
        tensor.set_info(key, value)
    return tensor


def _tensor_flatten_with_keys(tensor):
    children, context = _tensor_flatten(tensor)
    keys = [GetAttrKey("keys")] + [SequenceKey(i) for i in range(len(children) - 1)]
    return list(zip(keys, children)), context


def _block_to_json(context):
    return json.dumps([context[0], list(context[1])])


def _block_from_json(data):
    n_components, parameters = json.loads(data)
    return (n_components, tuple(parameters))


def _tensor_to_json(context):
    return json.dumps([list(item) for item in context])


def _tensor_from_json(data):
    return tuple(tuple(item) for item in json.loads(data))


_REGISTERED = False


def register_pytree_nodes():
    """Register Labels, TensorBlock and TensorMap as pytree nodes (only once)."""
    global _REGISTERED
    if _REGISTERED:
        return
    pytree.register_pytree_node(
        Labels,
        _labels_flatten,
        _labels_unflatten,
        flatten_with_keys_fn=_labels_flatten_with_keys,
        serialized_type_name="metatensor.torch.Labels",
        to_dumpable_context=lambda context: json.dumps(list(context)),
        from_dumpable_context=lambda data: tuple(json.loads(data)),
    )
    pytree.register_pytree_node(
        TensorBlock,
        _block_flatten,
        _block_unflatten,
        flatten_with_keys_fn=_block_flatten_with_keys,
        serialized_type_name="metatensor.torch.TensorBlock",
        to_dumpable_context=_block_to_json,
        from_dumpable_context=_block_from_json,
    )
    pytree.register_pytree_node(
        TensorMap,
        _tensor_flatten,
        _tensor_unflatten,
        flatten_with_keys_fn=_tensor_flatten_with_keys,
        serialized_type_name="metatensor.torch.TensorMap",
        to_dumpable_context=_tensor_to_json,
        from_dumpable_context=_tensor_from_json,
    )
    # objects are pickled through their `.mts` bytes (see `_classes.py`): loading
    # them runs the `.mts` reader, which never executes code from the file, so it
    # is safe for `torch.load(weights_only=True)` (used by `torch.export.load`)
    from ._classes import _block_from_buffer, _labels_from_buffer, _tensor_from_buffer

    torch.serialization.add_safe_globals(
        [
            Labels,
            TensorBlock,
            TensorMap,
            _labels_from_buffer,
            _block_from_buffer,
            _tensor_from_buffer,
        ]
    )
    _REGISTERED = True
