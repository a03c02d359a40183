"""Rotational averaging of the predictions of an ASE calculator
(:py:class:`SymmetrizedCalculator`), for models that are not exactly invariant
to rotations. Only imported by :py:mod:`.ase_calculator`."""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import ase
import numpy as np
from ase.calculators.calculator import (
    Calculator,
    PropertyNotImplementedError,
    all_changes,
)


def rotation_quadrature(
    l_max: int, include_inversion: bool = True
) -> Tuple[np.ndarray, np.ndarray]:
    """A quadrature over rotations, exact for functions of the rotation whose
    expansion in Wigner D-matrices stops at angular momentum ``l_max``.

    The rotations are ``Rz(alpha) @ Ry(beta) @ Rz(gamma)`` with ``alpha`` and
    ``gamma`` on uniform grids of ``l_max + 1`` angles and ``cos(beta)`` on the
    ``l_max // 2 + 1`` Gauss-Legendre nodes: the average of ``D^l_{m m'}`` over
    the grid is zero for ``1 <= l <= l_max``, as over all rotations.

    :param l_max: the largest angular momentum integrated exactly
    :param include_inversion: also include the rotations composed with the
        inversion (average over O(3) instead of SO(3))
    :return: the rotation matrices ``(n, 3, 3)`` and their weights ``(n,)``,
        summing to 1
    """
    if l_max < 0:
        raise ValueError(f"`l_max` must be non-negative, got {l_max}")
    n_angles = l_max + 1
    angles = 2 * np.pi * np.arange(n_angles) / n_angles
    nodes, beta_weights = np.polynomial.legendre.leggauss(l_max // 2 + 1)
    betas = np.arccos(nodes)

    def rz(angle: np.ndarray) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        zero, one = np.zeros_like(angle), np.ones_like(angle)
        return np.stack(
            [
                np.stack([c, -s, zero], -1),
                np.stack([s, c, zero], -1),
                [0, 0, 1] * one[..., None],
            ],
            -2,
        )

    def ry(angle: np.ndarray) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        zero, one = np.zeros_like(angle), np.ones_like(angle)
        return np.stack(
            [
                np.stack([c, zero, s], -1),
                [0, 1, 0] * one[..., None],
                np.stack([-s, zero, c], -1),
            ],
            -2,
        )

    alpha, beta, gamma = np.meshgrid(
        angles, np.arange(len(betas)), angles, indexing="ij"
    )
    rotations = rz(alpha.ravel()) @ ry(betas[beta.ravel()]) @ rz(gamma.ravel())
    weights = beta_weights[beta.ravel()] / (2 * n_angles * n_angles)
    if include_inversion:
        rotations = np.concatenate([rotations, -rotations])
        weights = np.concatenate([weights, weights]) / 2
    return rotations, weights


class SymmetrizedCalculator(Calculator):
    """Average the energy, forces and stress of a
    :py:class:`MetatomicCalculator` over rotated copies of the structure.

    The structure (positions, cell and momenta) is rotated by each rotation
    ``R`` of a quadrature (see :py:func:`rotation_quadrature`), all the copies
    are evaluated in batches with :py:meth:`MetatomicCalculator.compute_energy`,
    and the predictions are rotated back and averaged: ``E = sum_k w_k E_k``,
    ``F = sum_k w_k F_k R_k``, ``sigma = sum_k w_k R_k^T sigma_k R_k``. For a
    model which is not exactly invariant, this removes the components of the
    energy that depend on the orientation with angular momentum ``1 <= l <=
    l_max``. The standard deviation of the energy over the rotations is stored
    in ``results["energy_rotational_std"]`` with ``store_rotational_std``.

    :param base_calculator: the calculator to average
    :param l_max: the largest angular momentum removed exactly
    :param batch_size: how many rotated copies to evaluate in one model call
        (all of them by default)
    :param include_inversion: also average over the inversion (O(3))
    :param apply_space_group_symmetry: also average over the space-group
        operations of the structure. This is not supported yet (it needs a
        symmetry finder such as spglib): ``True`` raises
        :py:class:`NotImplementedError`
    :param store_rotational_std: store the standard deviation of the energy
        over the rotations
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(
        self,
        base_calculator: Any,
        *,
        l_max: int = 3,
        batch_size: Optional[int] = None,
        include_inversion: bool = True,
        apply_space_group_symmetry: bool = False,
        store_rotational_std: bool = False,
    ):
        super().__init__()
        if apply_space_group_symmetry:
            raise NotImplementedError(
                "`apply_space_group_symmetry=True` is not supported: averaging over "
                "the space group of the structure is not implemented"
            )
        if not hasattr(base_calculator, "compute_energy"):
            raise TypeError(
                "`base_calculator` must be a MetatomicCalculator, got "
                f"{type(base_calculator).__name__}"
            )
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"`batch_size` must be positive, got {batch_size}")
        self.base_calculator = base_calculator
        self.rotations, self.weights = rotation_quadrature(l_max, include_inversion)
        self._batch_size = batch_size or len(self.rotations)
        self._store_std = store_rotational_std

    def calculate(
        self,
        atoms: Optional[ase.Atoms] = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = tuple(all_changes),
    ) -> None:
        """Compute the rotationally averaged ``properties`` of ``atoms``.

        :param atoms: the structure
        :param properties: the ASE properties to compute
        :param system_changes: what changed since the last calculation
        """
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        for name in properties:
            if name not in self.implemented_properties:
                raise PropertyNotImplementedError(
                    f"SymmetrizedCalculator can not compute '{name}', only "
                    f"{self.implemented_properties}"
                )
        gradients = any(name in ("forces", "stress") for name in properties)
        gradients = gradients or self.base_calculator.parameters.get(
            "do_gradients_with_energy", True
        )

        energies: List[float] = []
        forces: List[np.ndarray] = []
        stresses: List[np.ndarray] = []
        for start in range(0, len(self.rotations), self._batch_size):
            batch = [
                _rotated(atoms, rotation)
                for rotation in self.rotations[start : start + self._batch_size]
            ]
            result = self.base_calculator.compute_energy(
                batch, compute_forces_and_stresses=gradients
            )
            energies += result["energy"]
            forces += result.get("forces", [])
            stresses += result.get("stress", [])

        weights = self.weights
        energy = float(np.dot(weights, energies))
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        if self._store_std:
            variance = np.dot(weights, (np.asarray(energies) - energy) ** 2)
            self.results["energy_rotational_std"] = float(np.sqrt(variance))
        if len(forces) != 0:
            # F_k = R_k F (as rows: F @ R_k^T), so F = F_k @ R_k
            rotated = np.einsum("kij,kjl->kil", np.stack(forces), self.rotations)
            self.results["forces"] = np.einsum("k,kil->il", weights, rotated)
        if len(stresses) != 0:
            back = np.einsum(
                "kji,kjl,klm->kim", self.rotations, np.stack(stresses), self.rotations
            )
            stress = np.einsum("k,kim->im", weights, back)
            self.results["stress"] = _full_3x3_to_voigt(stress)

    def todict(self) -> Dict[str, Any]:
        raise RuntimeError("SymmetrizedCalculator can not be serialized with `todict`")


def _rotated(atoms: ase.Atoms, rotation: np.ndarray) -> ase.Atoms:
    """A copy of ``atoms`` rotated by ``rotation`` (positions, cell, momenta)."""
    copy = atoms.copy()
    copy.positions = atoms.positions @ rotation.T
    copy.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    if "momenta" in atoms.arrays:
        copy.arrays["momenta"] = atoms.arrays["momenta"] @ rotation.T
    return copy


def _full_3x3_to_voigt(stress: np.ndarray) -> np.ndarray:
    """``[xx, yy, zz, yz, xz, xy]`` of a 3x3 tensor, symmetrized."""
    return np.array(
        [
            stress[0, 0],
            stress[1, 1],
            stress[2, 2],
            (stress[1, 2] + stress[2, 1]) / 2,
            (stress[0, 2] + stress[2, 0]) / 2,
            (stress[0, 1] + stress[1, 0]) / 2,
        ]
    )
