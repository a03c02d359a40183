"""O(3) transformations (rotations and improper rotations) of
:py:class:`~metatensor.torch.atomistic.System`,
:py:class:`~metatensor.torch.TensorBlock` and
:py:class:`~metatensor.torch.TensorMap` data, for example to augment training
data with randomly rotated copies of the structures
(:py:class:`O3Transformations`, :py:func:`random_transformations`), and the
averaging of a model's outputs over O(3) (:py:class:`SymmetrizedModel`).

Component axes named ``xyz`` (``xyz_1``, ``xyz_2``, ...) are Cartesian and
transform with the 3x3 matrix ``R``; axes named ``o3_mu`` (``o3_mu_1``, ...)
are spherical and transform with the real Wigner D matrix of angular momentum
given by the key dimension ``o3_lambda`` (``o3_lambda_1``, ...); ``o3_sigma``
(``o3_sigma_1``, ...) is their parity under inversion. The Wigner D matrices
are computed without any extra package.
"""

from ._symmetrized import SymmetrizedModel
from ._transformations import O3Transformations, random_transformations


__all__ = [
    "O3Transformations",
    "SymmetrizedModel",
    "random_transformations",
]
