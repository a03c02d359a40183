"""Building blocks for neural networks acting on metatensor data: each layer
applies torch modules to the blocks of a :py:class:`TensorMap`, keeping the
metadata (and propagating explicit gradients with the chain rule)."""

from ._activations import (  # noqa: F401
    InvariantReLU,
    InvariantSiLU,
    InvariantTanh,
    ReLU,
    SiLU,
    Tanh,
)
from ._equivariant import EquivariantTransformation  # noqa: F401
from ._layer_norm import InvariantLayerNorm, LayerNorm  # noqa: F401
from ._linear import EquivariantLinear, Linear  # noqa: F401
from ._module import Buffer, Module  # noqa: F401
from ._module_map import ModuleMap  # noqa: F401
from ._sequential import Sequential  # noqa: F401


__all__ = [
    "Buffer",
    "EquivariantLinear",
    "EquivariantTransformation",
    "InvariantLayerNorm",
    "InvariantReLU",
    "InvariantSiLU",
    "InvariantTanh",
    "LayerNorm",
    "Linear",
    "Module",
    "ModuleMap",
    "ReLU",
    "Sequential",
    "SiLU",
    "Tanh",
]
