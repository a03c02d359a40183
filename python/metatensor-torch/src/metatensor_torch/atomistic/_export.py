"""Registration of the atomistic classes as pytree nodes, so that an
:py:class:`AtomisticModel` (or the module it wraps) can be exported with
``torch.export`` (and traced by ``torch.compile``):

* ``System`` flattens to ``[types, positions, cell, pbc, *neighbor lists,
  *extra data]``, the neighbor-list options and the data names are static
  context;
* ``ModelOutput`` has no children, its JSON representation is the context;
* ``ModelEvaluationOptions`` flattens to ``[selected_atoms]``, with the length
  unit and the requested outputs as context.
"""

from typing import Any, List, Tuple

import torch.utils._pytree as pytree
from torch.utils._pytree import GetAttrKey, MappingKey, SequenceKey

from ._outputs import ModelEvaluationOptions, ModelOutput
from ._system import NeighborListOptions, System


_SYSTEM_FIELDS = ["types", "positions", "cell", "pbc"]


def _system_flatten(system: System) -> Tuple[List[Any], Any]:
    all_options = system.known_neighbor_lists()
    names = system.known_data()
    children = [system.types, system.positions, system.cell, system.pbc]
    children += [system.get_neighbor_list(options) for options in all_options]
    children += [system.get_data(name) for name in names]
    context = (
        tuple(
            (
                options.cutoff,
                options.full_list,
                options.strict,
                options.length_unit,
                tuple(options.requestors()),
            )
            for options in all_options
        ),
        tuple(names),
    )
    return children, context


def _system_unflatten(children: List[Any], context: Any) -> System:
    all_options, names = context
    system = System(children[0], children[1], children[2], children[3])
    for i, (cutoff, full_list, strict, length_unit, requestors) in enumerate(
        all_options
    ):
        options = NeighborListOptions(cutoff, full_list, strict)
        options.length_unit = length_unit
        for requestor in requestors:
            options.add_requestor(requestor)
        system.add_neighbor_list(options, children[4 + i])
    for i, name in enumerate(names):
        system.add_data(name, children[4 + len(all_options) + i])
    return system


def _system_flatten_with_keys(system: System) -> Tuple[List[Any], Any]:
    children, context = _system_flatten(system)
    keys = [GetAttrKey(name) for name in _SYSTEM_FIELDS]
    keys += [SequenceKey(i) for i in range(len(context[0]))]
    keys += [MappingKey(name) for name in context[1]]
    return list(zip(keys, children)), context


def _output_flatten(output: ModelOutput) -> Tuple[List[Any], Any]:
    return [], output.__getstate__()[0]


def _output_unflatten(children: List[Any], context: Any) -> ModelOutput:
    output = ModelOutput()
    output.__setstate__((context,))
    return output


def _options_flatten(options: ModelEvaluationOptions) -> Tuple[List[Any], Any]:
    outputs = tuple(
        (name, output.__getstate__()[0]) for name, output in options.outputs.items()
    )
    return [options.selected_atoms], (options.length_unit, outputs)


def _options_unflatten(children: List[Any], context: Any) -> ModelEvaluationOptions:
    length_unit, outputs = context
    return ModelEvaluationOptions(
        length_unit=length_unit,
        outputs={name: _output_unflatten([], state) for name, state in outputs},
        selected_atoms=children[0],
    )


def _options_flatten_with_keys(
    options: ModelEvaluationOptions,
) -> Tuple[List[Any], Any]:
    children, context = _options_flatten(options)
    return [(GetAttrKey("selected_atoms"), children[0])], context


def register_pytree_nodes() -> None:
    """Register ``System``, ``ModelOutput`` and ``ModelEvaluationOptions`` as
    pytree nodes (once)."""
    if System not in pytree.SUPPORTED_NODES:
        pytree.register_pytree_node(
            System,
            _system_flatten,
            _system_unflatten,
            flatten_with_keys_fn=_system_flatten_with_keys,
        )
    if ModelOutput not in pytree.SUPPORTED_NODES:
        pytree.register_pytree_node(
            ModelOutput,
            _output_flatten,
            _output_unflatten,
            flatten_with_keys_fn=_output_flatten,
        )
    if ModelEvaluationOptions not in pytree.SUPPORTED_NODES:
        pytree.register_pytree_node(
            ModelEvaluationOptions,
            _options_flatten,
            _options_unflatten,
            flatten_with_keys_fn=_options_flatten_with_keys,
        )
