"""Real spherical harmonics and real Wigner D matrices.

The real Wigner D matrix of a rotation ``R`` for angular momentum ``l`` is
*defined* here by how the real spherical harmonics of angular momentum ``l``
change when their argument is rotated:

.. math::

    Y_l(R \\hat r) = D^l(R) \\, Y_l(\\hat r) \\quad \\text{for all } \\hat r

with ``Y_l`` the vector of the ``2l + 1`` real spherical harmonics ordered by
``m = -l, ..., l`` (the ``o3_mu`` axis of metatensor data). The harmonics are the
orthonormal ones without the Condon-Shortley phase: ``m > 0`` goes with
``cos(m phi)``, ``m < 0`` with ``sin(|m| phi)``, and for ``l = 1`` they are
proportional to ``(y, z, x)``. ``D^l`` is then orthogonal and a representation:
``D(R1 R2) = D(R1) D(R2)``.

``D^l(R)`` is found by evaluating the harmonics on a fixed set of points and on
the rotated points, and solving the (over-determined, exactly consistent)
linear system by least squares, in float64 on the CPU. This needs no Euler
angles (no special cases at the poles) and no external package.
"""

import math
from typing import Dict, List

import torch


def real_spherical_harmonics(points: torch.Tensor, max_l: int) -> List[torch.Tensor]:
    """The real spherical harmonics of the directions of ``points``.

    :param points: ``(n, 3)`` tensor of non-zero vectors
    :param max_l: the largest angular momentum
    :return: for each ``l`` in ``[0, max_l]``, a ``(n, 2l + 1)`` tensor, with
        ``m = -l, ..., l`` along the second axis
    """
    points = points / torch.linalg.norm(points, dim=-1, keepdim=True)
    x, y, z = points[:, 0], points[:, 1], points[:, 2]

    # cos_m = Re((x + iy)^m), sin_m = Im((x + iy)^m) = sin(theta)^m {cos, sin}(m phi)
    cos_m = [torch.ones_like(x)]
    sin_m = [torch.zeros_like(x)]
    for m in range(1, max_l + 1):
        cos_m.append(x * cos_m[m - 1] - y * sin_m[m - 1])
        sin_m.append(x * sin_m[m - 1] + y * cos_m[m - 1])

    # q[l][m] = P_l^m(z) / sin(theta)^m, without the Condon-Shortley phase
    q: Dict[int, Dict[int, torch.Tensor]] = {}
    for m in range(max_l + 1):
        double_factorial = 1.0
        for k in range(1, 2 * m, 2):
            double_factorial *= k
        q.setdefault(m, {})[m] = torch.full_like(z, double_factorial)
        if m + 1 <= max_l:
            q.setdefault(m + 1, {})[m] = (2 * m + 1) * z * q[m][m]
        for ell in range(m + 2, max_l + 1):
            q.setdefault(ell, {})[m] = (
                (2 * ell - 1) * z * q[ell - 1][m] - (ell + m - 1) * q[ell - 2][m]
            ) / (ell - m)

    result = []
    for ell in range(max_l + 1):
        columns = []
        for m in range(-ell, ell + 1):
            am = abs(m)
            norm = math.sqrt(
                (2 * ell + 1)
                / (4 * math.pi)
                * math.factorial(ell - am)
                / math.factorial(ell + am)
            )
            if m == 0:
                columns.append(norm * q[ell][0])
            elif m > 0:
                columns.append(math.sqrt(2) * norm * q[ell][am] * cos_m[am])
            else:
                columns.append(math.sqrt(2) * norm * q[ell][am] * sin_m[am])
        result.append(torch.stack(columns, dim=1))
    return result


_POINTS: Dict[int, torch.Tensor] = {}


def _fit_points(max_l: int) -> torch.Tensor:
    """Fixed directions used to find the Wigner matrices (about three times
    as many as the unknowns of the largest ``l``, on a Fibonacci sphere)."""
    if max_l not in _POINTS:
        n = 3 * (2 * max_l + 1) + 8
        index = torch.arange(n, dtype=torch.float64) + 0.5
        z = 1 - 2 * index / n
        phi = math.pi * (1 + math.sqrt(5)) * index
        r = torch.sqrt(1 - z * z)
        _POINTS[max_l] = torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], dim=1)
    return _POINTS[max_l]


def real_wigner_matrices(rotations: torch.Tensor, max_l: int) -> List[torch.Tensor]:
    """The real Wigner D matrices of proper rotations.

    :param rotations: ``(n, 3, 3)`` rotation matrices (determinant +1)
    :param max_l: the largest angular momentum
    :return: for each ``l`` in ``[0, max_l]``, a float64 CPU tensor of shape
        ``(n, 2l + 1, 2l + 1)``
    """
    rotations = rotations.detach().to(device="cpu", dtype=torch.float64)
    points = _fit_points(max_l)
    reference = real_spherical_harmonics(points, max_l)
    # rotated[k, p] = R_k @ points[p]
    rotated = torch.einsum("kij,pj->kpi", rotations, points).reshape(-1, 3)
    harmonics = real_spherical_harmonics(rotated, max_l)

    result = []
    for ell in range(max_l + 1):
        size = 2 * ell + 1
        # Y(R p) = D Y(p) for every point: Y_rot = Y_ref @ D^T
        solver = torch.linalg.pinv(reference[ell])
        rotated_harmonics = harmonics[ell].reshape(len(rotations), -1, size)
        transposed = torch.einsum("mp,kpn->kmn", solver, rotated_harmonics)
        result.append(transposed.transpose(1, 2).contiguous())
    return result
