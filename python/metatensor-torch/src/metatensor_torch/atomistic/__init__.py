"""``metatensor.torch.atomistic``: define, export and run machine learning
interatomic potentials in simulation engines.

This is the atomistic model interface of metatensor (the API of
``metatomic.torch``), written with the TorchScript classes of
:py:mod:`metatensor.torch`: a model written in Python is wrapped in
:py:class:`AtomisticModel`, saved to one file with its metadata, and run by a
simulation engine (for example through the ASE calculator in
:py:mod:`metatensor.torch.atomistic.ase_calculator`).

The TorchScript classes of this module (``System``, ``NeighborListOptions``,
``ModelOutput``, ...) are compiled when it is imported. Their qualified names
and attribute layouts are part of the model-file ABI (documented in each
module).
"""

from ._units import unit_conversion_factor, validate_unit  # noqa: I001
from ._quantities import (
    check_quantities,
    check_quantity_name,
    new_quantity_name,
    pick_output,
    unit_dimension_for_quantity,
)
from ._outputs import ModelCapabilities, ModelEvaluationOptions, ModelOutput
from ._metadata import ModelMetadata
from ._system import NeighborListOptions, System
from ._neighbors import (
    add_neighbor_lists,
    compute_neighbor_list,
    register_autograd_neighbors,
)
from ._serialization import load_system, load_system_buffer, save, save_buffer
from ._systems_to_torch import systems_to_torch
from ._devices import pick_device
from ._model import (
    AtomisticModel,
    ModelInterface,
    is_atomistic_model,
    load_atomistic_model,
)
from ._model_files import (
    check_atomistic_model,
    load_model_extensions,
    read_model_metadata,
)
from ._export import register_pytree_nodes as _register_pytree_nodes


_register_pytree_nodes()

__all__ = [
    # units and quantities
    "check_quantities",
    "check_quantity_name",
    "new_quantity_name",
    "pick_output",
    "unit_conversion_factor",
    "unit_dimension_for_quantity",
    "validate_unit",
    # model description classes
    "ModelCapabilities",
    "ModelEvaluationOptions",
    "ModelMetadata",
    "ModelOutput",
    # systems, neighbor lists and their serialization
    "NeighborListOptions",
    "System",
    "add_neighbor_lists",
    "compute_neighbor_list",
    "load_system",
    "load_system_buffer",
    "register_autograd_neighbors",
    "save",
    "save_buffer",
    "systems_to_torch",
    # atomistic models
    "AtomisticModel",
    "ModelInterface",
    "check_atomistic_model",
    "is_atomistic_model",
    "load_atomistic_model",
    "load_model_extensions",
    "pick_device",
    "read_model_metadata",
]
