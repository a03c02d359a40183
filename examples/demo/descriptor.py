"""A smooth radial and angular descriptor of atomic environments, written with
torch and stored in a :py:class:`metatensor.torch.TensorMap`.

For each atom ``i`` and each neighbor type ``b``, the neighbors ``j`` within the
cutoff build a density expanded on ``n_radial`` radial functions and on the
Cartesian moments of the unit vector ``u = r_ij / |r_ij|`` up to order 2:

.. math::

    A^{(0)}_{b n}(i) = \\sum_{j \\in b} g_n(r_{ij}), \\quad
    A^{(1)}_{b n, \\alpha}(i) = \\sum_{j \\in b} g_n(r_{ij}) u_\\alpha, \\quad
    A^{(2)}_{b n, \\alpha\\beta}(i) = \\sum_{j \\in b} g_n(r_{ij}) u_\\alpha u_\\beta

with exponentially decaying radial functions ``g_n(r) = exp(-a_n (r - r_0))
f_c(r)`` (the functional form of the densities of effective medium theory,
with ``n_radial`` decay rates ``a_n`` between 1 and 4 Å^-1 and ``r_0`` = 2.5 Å).
The cutoff function ``f_c`` is 1 up to ``r_c - w`` (``w`` = 1 Å) and then goes
to zero as ``(1 + cos(pi (r - r_c + w) / w)) / 2``, with a zero slope at the
cutoff: the descriptor, the energy and the forces are continuous when atoms
cross the cutoff. The features are the radial densities ``A^(0)_bn`` (body
order 2) and the rotational invariants (body order 3), contractions of the
moments for each pair of neighbor types ``(b1, b2)`` and radial indices
``(n1, n2)``,

.. math::

    p^{(l)}_{b_1 b_2 n_1 n_2}(i) = A^{(l)}_{b_1 n_1}(i) \\cdot A^{(l)}_{b_2 n_2}(i)

(a Cartesian version of the SOAP power spectrum: ``l = 1`` sums ``cos(theta)``
over pairs of neighbors, ``l = 2`` sums ``cos(theta)^2``). The properties are
named ``body_order, neighbor_1_type, neighbor_2_type, n_1, n_2, l``, with -1 in
the dimensions that the radial densities do not use.

The same code computes the descriptor inside the exported model (TorchScript,
from the neighbor list of a ``System``; forces then come from automatic
differentiation through the pair vectors), and the descriptor with its
gradients with respect to the atomic positions used for training (the
derivatives are written explicitly, and checked against automatic
differentiation in the tests).
"""

import math
from typing import List, Optional, Tuple

import torch

from metatensor.torch import Labels, TensorBlock, TensorMap


# columns of the moments of each order in the 13 moments of one pair: 1, u_a,
# u_a u_b
def _moment_columns() -> List[List[int]]:
    return [[0], [1, 2, 3], [4, 5, 6, 7, 8, 9, 10, 11, 12]]


class PowerSpectrum(torch.nn.Module):
    """Rotation-invariant descriptor of atomic environments, one block per
    center type (see the module documentation).

    :param atomic_types: the atomic types (atomic numbers) this descriptor
        knows, as centers and as neighbors
    :param cutoff: cutoff radius, in Å
    :param n_radial: number of radial functions
    :param width: width of the region where the cutoff function goes from 1
        to 0, in Å
    """

    def __init__(
        self,
        atomic_types: List[int],
        cutoff: float,
        n_radial: int,
        width: float = 1.0,
    ):
        super().__init__()
        if len(atomic_types) == 0:
            raise ValueError("`atomic_types` must not be empty")
        if not 0.0 < width < cutoff:
            raise ValueError(
                f"`width` must be positive and smaller than `cutoff`, got {width}"
            )
        self.atomic_types = sorted(atomic_types)
        self.cutoff = float(cutoff)
        self.n_radial = int(n_radial)
        n_types = len(self.atomic_types)

        self.width = float(width)
        # decay rates of the radial functions (1/Å)
        rates = torch.linspace(1.0, 4.0, self.n_radial, dtype=torch.float64)
        self.register_buffer("rates", rates)

        # atomic type -> index in `atomic_types`, -1 for unknown types
        type_index = torch.full((max(self.atomic_types) + 1,), -1, dtype=torch.long)
        type_index[torch.tensor(self.atomic_types)] = torch.arange(n_types)
        self.register_buffer("type_index", type_index)

        # the pairs of (neighbor type, radial index) entering the invariants:
        # (b1, n1) <= (b2, n2), all of them for b1 < b2
        combinations = []
        for b1 in range(n_types):
            for b2 in range(b1, n_types):
                for n1 in range(self.n_radial):
                    for n2 in range(self.n_radial):
                        if b1 == b2 and n2 < n1:
                            continue
                        combinations.append([b1, b2, n1, n2])
        combinations = torch.tensor(combinations, dtype=torch.long)
        self.register_buffer("combinations", combinations)
        n = self.n_radial
        b1, b2 = combinations[:, 0], combinations[:, 1]
        n1, n2 = combinations[:, 2], combinations[:, 3]
        # index of A[b1, n1] . A[b2, n2] in a flattened (T, T, n, n) array
        self.register_buffer("product_index", ((b1 * n_types + b2) * n + n1) * n + n2)
        # indices in a flattened (T, n, n) array (see `_gradient_values`)
        self.register_buffer("first_index", (b2 * n + n1) * n + n2)
        self.register_buffer("second_index", (b1 * n + n2) * n + n1)

        # properties: the radial densities (body order 2), then the invariants
        # (body order 3); unused dimensions are set to -1
        types = torch.tensor(self.atomic_types, dtype=torch.int32)
        radial_b = torch.arange(n_types).repeat_interleave(self.n_radial)
        radial_n = torch.arange(self.n_radial).repeat(n_types)
        minus_one = torch.full_like(radial_n, -1, dtype=torch.int32)
        properties = [
            torch.stack(
                [
                    torch.full_like(minus_one, 2),
                    types[radial_b],
                    minus_one,
                    radial_n.to(torch.int32),
                    minus_one,
                    torch.zeros_like(minus_one),
                ],
                dim=1,
            )
        ]
        for o3_l in range(3):
            properties.append(
                torch.stack(
                    [
                        torch.full_like(n1, 3, dtype=torch.int32),
                        types[b1],
                        types[b2],
                        n1.to(torch.int32),
                        n2.to(torch.int32),
                        torch.full_like(n1, o3_l, dtype=torch.int32),
                    ],
                    dim=1,
                )
            )
        self.register_buffer("properties_values", torch.concatenate(properties))

        # standardization of the features of each center type (set by
        # `set_standardization`, identity by default)
        n_features = self.properties_values.shape[0]
        self.register_buffer("mean", torch.zeros(n_types, n_features))
        self.register_buffer("scale", torch.ones(n_types, n_features))

    @property
    def n_features(self) -> int:
        """Number of features (properties) of each block."""
        return int(self.properties_values.shape[0])

    def keys(self) -> Labels:
        """The keys of the descriptor: one block per center type."""
        values = torch.tensor(self.atomic_types, dtype=torch.int32).reshape(-1, 1)
        return Labels(["center_type"], values.to(self.type_index.device))

    def properties(self) -> Labels:
        """The properties of every block of the descriptor."""
        return Labels(
            ["body_order", "neighbor_1_type", "neighbor_2_type", "n_1", "n_2", "l"],
            self.properties_values,
            assume_unique=True,
        )

    def set_standardization(self, mean: torch.Tensor, scale: torch.Tensor):
        """Set the standardization of the features: each block's values become
        ``(x - mean[center]) / scale[center]``.

        :param mean: ``(n_types, n_features)`` means of the raw features
        :param scale: ``(n_types, n_features)`` positive scales
        """
        if mean.shape != self.mean.shape or scale.shape != self.scale.shape:
            raise ValueError(
                f"`mean` and `scale` must have the shape {list(self.mean.shape)}, "
                f"got {list(mean.shape)} and {list(scale.shape)}"
            )
        if not bool(torch.all(scale > 0)):
            raise ValueError("`scale` must only contain positive values")
        self.mean.copy_(mean)
        self.scale.copy_(scale)

    @torch.jit.unused
    def fit_standardization(self, systems: List[Tuple[torch.Tensor, ...]]):
        """Set the standardization from the mean and standard deviation of the
        raw features of the atoms of each center type in ``systems``.

        :param systems: for each system, the arguments of
            :py:meth:`raw_features` (types, first, second, vectors)
        """
        raw = torch.concatenate([self.raw_features(*system) for system in systems])
        types = torch.concatenate([system[0] for system in systems])
        center = self._type_indices(types)
        mean = torch.zeros_like(self.mean)
        scale = torch.ones_like(self.scale)
        for index in range(len(self.atomic_types)):
            features = raw[center == index]
            if features.shape[0] > 1:
                mean[index] = features.mean(dim=0)
                std = features.std(dim=0)
                scale[index] = torch.where(std > 1e-8, std, torch.ones_like(std))
        self.set_standardization(mean, scale)

    def radial(self, distances: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The radial functions and their derivatives at ``distances``.

        :param distances: ``(n_pairs,)`` distances, in Å
        :return: two ``(n_pairs, n_radial)`` tensors, ``g_n(r)`` and
            ``g_n'(r)``
        """
        rates = self.rates.to(distances.dtype)
        r = distances.unsqueeze(1)
        # position in the switching region of the cutoff function, in [0, 1]
        x = torch.clamp((r - self.cutoff + self.width) / self.width, 0.0, 1.0)
        angle = math.pi * x
        f_cut = 0.5 * (1.0 + torch.cos(angle))
        d_f_cut = torch.where(
            (x > 0.0) & (x < 1.0), -0.5 * math.pi / self.width * torch.sin(angle), 0.0
        )
        exponential = torch.exp(-rates * (r - 2.5))
        d_exponential = -rates * exponential
        return exponential * f_cut, d_exponential * f_cut + exponential * d_f_cut

    def pair_moments(
        self, vectors: torch.Tensor, with_derivatives: bool
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The moments ``g_n(r) * [1, u_a, u_a u_b]`` of each pair, and (if
        ``with_derivatives``) their derivatives with respect to the pair vector.

        :param vectors: ``(n_pairs, 3)`` pair vectors
        :param with_derivatives: compute the derivatives (an empty tensor is
            returned otherwise)
        :return: ``(n_pairs, n_radial, 13)`` moments and ``(n_pairs, 3,
            n_radial, 13)`` derivatives (direction of the derivative second)
        """
        n_pairs = vectors.shape[0]
        distances = torch.linalg.vector_norm(vectors, dim=1)
        u = vectors / distances.unsqueeze(1)
        g, dg = self.radial(distances)
        uu = (u.unsqueeze(2) * u.unsqueeze(1)).reshape(n_pairs, 9)
        angular = torch.concatenate([torch.ones_like(u[:, :1]), u, uu], dim=1)
        moments = g.unsqueeze(2) * angular.unsqueeze(1)
        if not with_derivatives:
            return moments, torch.empty(0, dtype=vectors.dtype, device=vectors.device)

        # d u_a / d v_c = (delta_ac - u_a u_c) / r, shape (P, c, a)
        eye = torch.eye(3, dtype=vectors.dtype, device=vectors.device)
        d_u = (eye.unsqueeze(0) - u.unsqueeze(2) * u.unsqueeze(1)) / distances.reshape(
            -1, 1, 1
        )
        # d (u_a u_b) / d v_c = d_u[c, a] u_b + u_a d_u[c, b]
        d_uu = d_u.unsqueeze(3) * u.reshape(n_pairs, 1, 1, 3) + u.reshape(
            n_pairs, 1, 3, 1
        ) * d_u.unsqueeze(2)
        d_angular = torch.concatenate(
            [torch.zeros_like(d_u[:, :, :1]), d_u, d_uu.reshape(n_pairs, 3, 9)],
            dim=2,
        )
        # product rule: g' u_c angular + g d_angular
        derivatives = (dg.reshape(n_pairs, 1, -1, 1) * u.reshape(n_pairs, 3, 1, 1)) * (
            angular.reshape(n_pairs, 1, 1, 13)
        ) + g.reshape(n_pairs, 1, -1, 1) * d_angular.unsqueeze(2)
        return moments, derivatives

    def densities(
        self,
        n_atoms: int,
        first: torch.Tensor,
        neighbor_type: torch.Tensor,
        moments: torch.Tensor,
    ) -> torch.Tensor:
        """Sum the pair moments on the first atom of each pair, separately for
        each neighbor type.

        :return: ``(n_atoms, n_types, n_radial, 13)`` densities
        """
        n_types = len(self.atomic_types)
        flat = moments.reshape(moments.shape[0], -1)
        densities = torch.zeros(
            n_atoms * n_types, flat.shape[1], dtype=moments.dtype, device=moments.device
        )
        densities.index_add_(0, first * n_types + neighbor_type, flat)
        return densities.reshape(n_atoms, n_types, self.n_radial, 13)

    def invariants(self, densities: torch.Tensor) -> torch.Tensor:
        """Contract the densities into rotational invariants.

        :param densities: ``(n_atoms, n_types, n_radial, 13)``
        :return: ``(n_atoms, n_features)`` raw (not standardized) features
        """
        n_atoms = densities.shape[0]
        features: List[torch.Tensor] = [densities[:, :, :, 0].reshape(n_atoms, -1)]
        for columns in _moment_columns():
            moments = densities[:, :, :, columns[0] : columns[-1] + 1]
            products = torch.einsum("ibnc,idmc->ibdnm", moments, moments)
            features.append(
                products.reshape(n_atoms, -1).index_select(1, self.product_index)
            )
        return torch.concatenate(features, dim=1)

    def invariant_derivatives(
        self,
        densities: torch.Tensor,
        first: torch.Tensor,
        neighbor_type: torch.Tensor,
        derivatives: torch.Tensor,
    ) -> torch.Tensor:
        """Derivatives of the invariants of the first atom of each pair with
        respect to the pair vector.

        :return: ``(n_pairs, 3, n_features)``
        """
        n_pairs = derivatives.shape[0]
        first_mask = (
            neighbor_type.unsqueeze(1) == self.combinations[:, 0].unsqueeze(0)
        ).to(derivatives.dtype)
        second_mask = (
            neighbor_type.unsqueeze(1) == self.combinations[:, 1].unsqueeze(0)
        ).to(derivatives.dtype)
        center_densities = densities.index_select(0, first)
        # radial densities: d A[i, b, n, 0] / dv = delta(b, t) dm[n, 0]
        n_types = len(self.atomic_types)
        one_hot = (
            neighbor_type.unsqueeze(1)
            == torch.arange(n_types, device=neighbor_type.device).unsqueeze(0)
        ).to(derivatives.dtype)
        radial = one_hot.reshape(n_pairs, 1, n_types, 1) * derivatives[
            :, :, :, 0
        ].unsqueeze(2)
        features: List[torch.Tensor] = [radial.reshape(n_pairs, 3, -1)]
        for columns in _moment_columns():
            start, stop = columns[0], columns[-1] + 1
            # X[p, d, b, n, m] = sum_c dA[p, d, n, c] A[i(p), b, m, c]
            x = torch.einsum(
                "pdnc,pbmc->pdbnm",
                derivatives[:, :, :, start:stop],
                center_densities[:, :, :, start:stop],
            ).reshape(n_pairs, 3, -1)
            features.append(
                x.index_select(2, self.first_index) * first_mask.unsqueeze(1)
                + x.index_select(2, self.second_index) * second_mask.unsqueeze(1)
            )
        return torch.concatenate(features, dim=2)

    def standardize(self, features: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
        """Standardize ``features`` of atoms with center type indices ``center``."""
        mean = self.mean.to(features.dtype).index_select(0, center)
        scale = self.scale.to(features.dtype).index_select(0, center)
        return (features - mean) / scale

    def forward(
        self,
        types: torch.Tensor,
        system_index: torch.Tensor,
        atom_index: torch.Tensor,
        first: torch.Tensor,
        second: torch.Tensor,
        vectors: torch.Tensor,
        neighbor_types: Optional[torch.Tensor] = None,
    ) -> TensorMap:
        """Compute the descriptor (without explicit gradients) of a set of
        atoms, from a full neighbor list. Gradients with respect to
        ``vectors`` are available through automatic differentiation.

        :param types: ``(n_atoms,)`` atomic types
        :param system_index: ``(n_atoms,)`` system each atom belongs to
        :param atom_index: ``(n_atoms,)`` index of each atom in its system
        :param first: ``(n_pairs,)`` index of the center atom of each pair
        :param second: ``(n_pairs,)`` index of the neighbor of each pair
        :param vectors: ``(n_pairs, 3)`` pair vectors (from ``first`` to
            ``second``), including the pairs in both directions
        :param neighbor_types: ``(n_pairs,)`` atomic types of the neighbors;
            when given, ``second`` is not used, and the neighbors do not need
            to be among the described atoms (to describe only some atoms of a
            system)
        :return: one block per center type, with samples ``system, atom`` and
            the properties of :py:meth:`properties`
        """
        n_atoms = types.shape[0]
        center = self._type_indices(types)
        if neighbor_types is None:
            neighbor_type = center.index_select(0, second)
        else:
            neighbor_type = self._type_indices(neighbor_types)
        moments, _ = self.pair_moments(vectors, False)
        densities = self.densities(n_atoms, first, neighbor_type, moments)
        features = self.standardize(self.invariants(densities), center)

        blocks: List[TensorBlock] = []
        properties = self.properties()
        for index in range(len(self.atomic_types)):
            atoms = torch.nonzero(center == index).reshape(-1)
            samples = torch.stack(
                [
                    system_index.index_select(0, atoms),
                    atom_index.index_select(0, atoms),
                ],
                dim=1,
            ).to(torch.int32)
            blocks.append(
                TensorBlock(
                    values=features.index_select(0, atoms),
                    samples=Labels(["system", "atom"], samples, assume_unique=True),
                    components=[],
                    properties=properties,
                )
            )
        return TensorMap(self.keys(), blocks)

    def _type_indices(self, types: torch.Tensor) -> torch.Tensor:
        types = types.to(torch.long)
        if types.shape[0] != 0:
            if int(types.min()) < 0 or int(types.max()) >= self.type_index.shape[0]:
                raise ValueError(
                    "the systems contain atomic types unknown to the model"
                )
        center = self.type_index.index_select(0, types)
        if bool(torch.any(center < 0)):
            raise ValueError("the systems contain atomic types unknown to the model")
        return center

    @torch.jit.unused
    def raw_features(
        self,
        types: torch.Tensor,
        first: torch.Tensor,
        second: torch.Tensor,
        vectors: torch.Tensor,
    ) -> torch.Tensor:
        """The raw (not standardized) features of each atom, used to compute the
        standardization.

        :return: ``(n_atoms, n_features)``
        """
        center = self._type_indices(types)
        moments, _ = self.pair_moments(vectors, False)
        densities = self.densities(
            types.shape[0], first, center.index_select(0, second), moments
        )
        return self.invariants(densities)

    @torch.jit.unused
    def compute_with_gradients(
        self,
        system: int,
        types: torch.Tensor,
        first: torch.Tensor,
        second: torch.Tensor,
        vectors: torch.Tensor,
    ) -> TensorMap:
        """Compute the descriptor of one system together with its gradients
        with respect to the atomic positions (a ``"positions"`` gradient block
        in each block, with samples ``sample, system, atom`` and one ``xyz``
        component).

        :param system: index of the system, stored in the ``system`` dimension
            of the samples
        :param types: ``(n_atoms,)`` atomic types
        :param first: ``(n_pairs,)`` index of the center atom of each pair
        :param second: ``(n_pairs,)`` index of the neighbor of each pair
        :param vectors: ``(n_pairs, 3)`` pair vectors, ``r_second - r_first``
            (+ the periodic shift), for the pairs in both directions
        """
        n_atoms = types.shape[0]
        center = self._type_indices(types)
        neighbor_type = center.index_select(0, second)
        moments, derivatives = self.pair_moments(vectors, True)
        densities = self.densities(n_atoms, first, neighbor_type, moments)
        features = self.standardize(self.invariants(densities), center)
        pair_gradients = self.invariant_derivatives(
            densities, first, neighbor_type, derivatives
        ) / self.scale.to(vectors.dtype).index_select(
            0, center.index_select(0, first)
        ).unsqueeze(1)

        # the pair vector is r_second - r_first: d/dr_second = +d/dv and
        # d/dr_first = -d/dv. Contributions to the same (center, atom) are summed
        all_first = torch.concatenate([first, first])
        all_atoms = torch.concatenate([second, first])
        rows, inverse = torch.unique(
            all_first * n_atoms + all_atoms, return_inverse=True
        )
        gradients = torch.zeros(
            rows.shape[0], 3, pair_gradients.shape[2], dtype=vectors.dtype
        )
        gradients.index_add_(
            0, inverse, torch.concatenate([pair_gradients, -pair_gradients])
        )
        row_center = rows // n_atoms
        row_atom = rows % n_atoms

        xyz = Labels(["xyz"], torch.arange(3, dtype=torch.int32).reshape(-1, 1))
        properties = self.properties()
        blocks = []
        for index in range(len(self.atomic_types)):
            atoms = torch.nonzero(center == index).reshape(-1)
            # position of each atom in this block (-1 for other center types)
            position = torch.full((n_atoms,), -1, dtype=torch.long)
            position[atoms] = torch.arange(len(atoms))
            samples = torch.stack([torch.full_like(atoms, system), atoms], dim=1).to(
                torch.int32
            )
            block = TensorBlock(
                values=features[atoms],
                samples=Labels(["system", "atom"], samples, assume_unique=True),
                components=[],
                properties=properties,
            )
            selected = torch.nonzero(center[row_center] == index).reshape(-1)
            gradient_samples = torch.stack(
                [
                    position[row_center[selected]],
                    torch.full_like(selected, system),
                    row_atom[selected],
                ],
                dim=1,
            ).to(torch.int32)
            block.add_gradient(
                "positions",
                TensorBlock(
                    values=gradients[selected],
                    samples=Labels(
                        ["sample", "system", "atom"],
                        gradient_samples,
                        assume_unique=True,
                    ),
                    components=[xyz],
                    properties=properties,
                ),
            )
            blocks.append(block)
        return TensorMap(self.keys(), blocks)
