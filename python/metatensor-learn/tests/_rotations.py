"""Real Wigner D matrices (for the real spherical harmonics with ``o3_mu`` from
``-l`` to ``l``) and rotation of O(3)-equivariant TensorMaps, for tests.

``D_l(R)`` is obtained by fitting ``Y_l(R r) = D_l(R) Y_l(r)`` over random
points ``r``, with real spherical harmonics built from scipy's complex ones;
for ``l = 1`` this is the rotation matrix in ``(y, z, x)`` order.
"""

from typing import Dict

import numpy as np
import scipy.special
from scipy.spatial.transform import Rotation

from metatensor import TensorBlock, TensorMap


def real_spherical_harmonics(l: int, points: np.ndarray) -> np.ndarray:  # noqa: E741
    """Real spherical harmonics ``Y_l^m`` for ``m = -l..l`` at the directions of
    ``points`` (``(n, 3)``), shape ``(n, 2l + 1)``, orthonormal on the sphere."""
    x, y, z = points.T
    r = np.linalg.norm(points, axis=1)
    theta = np.arccos(np.clip(z / r, -1.0, 1.0))
    phi = np.arctan2(y, x)
    result = np.zeros((points.shape[0], 2 * l + 1))
    for m in range(-l, l + 1):
        complex_y = scipy.special.sph_harm_y(l, abs(m), theta, phi)
        if m > 0:
            result[:, m + l] = np.sqrt(2) * (-1) ** m * complex_y.real
        elif m < 0:
            result[:, m + l] = np.sqrt(2) * (-1) ** m * complex_y.imag
        else:
            result[:, l] = complex_y.real
    return result


def wigner_d_real(l: int, rotation: Rotation) -> np.ndarray:  # noqa: E741
    """The ``(2l + 1, 2l + 1)`` real Wigner D matrix of ``rotation``."""
    points = np.random.default_rng(0).normal(size=(20 * (2 * l + 1), 3))
    before = real_spherical_harmonics(l, points)
    after = real_spherical_harmonics(l, rotation.apply(points))
    # after = before @ D.T
    d_transpose, *_ = np.linalg.lstsq(before, after, rcond=None)
    return d_transpose.T


def wigner_d_matrices(max_l: int, rotation: Rotation) -> Dict[int, np.ndarray]:
    return {l: wigner_d_real(l, rotation) for l in range(max_l + 1)}  # noqa: E741


def rotate_tensor(tensor: TensorMap, matrices: Dict[int, np.ndarray]) -> TensorMap:
    """Rotate the ``o3_mu`` component of each block (keys must have
    ``o3_lambda``) with the Wigner D matrices. Gradients are dropped."""
    import torch

    blocks = []
    for key, block in tensor.items():
        values = block.values
        d = torch.tensor(matrices[int(key["o3_lambda"])], dtype=values.dtype)
        rotated = torch.einsum("mn,snp->smp", d, values)
        blocks.append(
            TensorBlock(rotated, block.samples, block.components, block.properties)
        )
    return TensorMap(tensor.keys, blocks)
