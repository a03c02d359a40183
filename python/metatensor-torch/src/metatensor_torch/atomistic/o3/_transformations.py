"""O(3) transformations (rotations and improper rotations) of systems, blocks
and maps: :py:class:`O3Transformations` and :py:func:`random_transformations`.

Naming conventions of the component axes (as in the atomistic data of
metatensor):

* an axis named ``xyz`` or ``xyz_<k>`` is Cartesian (entries ``x, y, z``) and is
  transformed by the 3x3 matrix ``R``;
* an axis named ``o3_mu`` or ``o3_mu_<k>`` is spherical, with ``2l + 1``
  entries for ``m = -l, ..., l``: it is transformed by the real Wigner D matrix
  of the proper part of ``R`` (see :py:mod:`._wigner`) for ``l`` given by the
  key dimension ``o3_lambda`` (``o3_lambda_<k>``). Under an improper
  operation, it also gets the factor ``sigma * (-1)^l``, with ``sigma`` the key
  dimension ``o3_sigma`` (``o3_sigma_<k>``, +1 when absent);
* other axes (and blocks without components) are left unchanged.
"""

from typing import List, Optional, Tuple

import torch

from ..._block import TensorBlock
from ..._labels import Labels, LabelsEntry
from ..._tensor import TensorMap
from .._system import System
from ._wigner import real_wigner_matrices


def _axis_kind(name: str) -> Tuple[int, str]:
    """``(kind, suffix)`` of a component axis: kind 1 is Cartesian, 2 is
    spherical, 0 anything else."""
    if name == "xyz":
        return 1, ""
    if name.startswith("xyz_"):
        return 1, name[3:]
    if name == "o3_mu":
        return 2, ""
    if name.startswith("o3_mu_"):
        return 2, name[5:]
    return 0, ""


def _key_value(key: LabelsEntry, name: str, default: int, required: bool) -> int:
    if name in key.names:
        return key[name]
    if required:
        raise ValueError(
            "the key of a block with spherical components must have a '"
            + name
            + "' dimension"
        )
    return default


def _apply_on_axis(values: torch.Tensor, matrices: torch.Tensor, axis: int):
    """``values[s, ..., i (axis), ...] -> sum_j matrices[s, i, j] values[s, ...,
    j, ...]``, with one matrix per row ``s``."""
    moved = values.movedim(axis, -1)
    shape = moved.shape
    flat = moved.reshape(shape[0], -1, shape[-1])
    result = torch.bmm(flat, matrices.transpose(1, 2))
    return result.reshape(shape).movedim(-1, axis)


class O3Transformations(torch.nn.Module):
    """A batch of ``N`` O(3) operations (rotations, possibly composed with the
    inversion), to transform :py:class:`System`, :py:class:`TensorBlock` and
    :py:class:`TensorMap` data.

    Cartesian component axes (named ``xyz`` or ``xyz_<k>``) are transformed
    with the 3x3 matrices; spherical ones (``o3_mu`` or ``o3_mu_<k>``, for the
    angular momentum in the ``o3_lambda`` / ``o3_lambda_<k>`` key dimension)
    with the real Wigner D matrices, times ``sigma * (-1)^l`` for improper
    operations (``sigma`` is the ``o3_sigma`` key dimension).

    The Wigner D matrices up to ``max_angular_momentum`` are computed in the
    constructor (in Python, without any extra package); the transform methods
    can be compiled with TorchScript.

    :param matrices: ``(N, 3, 3)`` orthogonal matrices, float32 or float64
    :param max_angular_momentum: the largest angular momentum of spherical
        data to transform
    """

    def __init__(self, matrices: torch.Tensor, max_angular_momentum: int):
        super().__init__()
        if not isinstance(matrices, torch.Tensor):
            raise TypeError("`matrices` must be a torch.Tensor")
        if matrices.dim() != 3 or matrices.shape[1:] != (3, 3):
            raise ValueError(
                "`matrices` must have shape (N, 3, 3), got "
                + str(tuple(matrices.shape))
            )
        if matrices.shape[0] == 0:
            raise ValueError("`matrices` must contain at least one transformation")
        if matrices.dtype not in (torch.float32, torch.float64):
            raise ValueError(
                f"`matrices` must be float32 or float64, got {matrices.dtype}"
            )
        if max_angular_momentum < 0:
            raise ValueError(
                "`max_angular_momentum` must be non-negative, got "
                + str(max_angular_momentum)
            )

        as_double = matrices.detach().to(device="cpu", dtype=torch.float64)
        identity = torch.eye(3, dtype=torch.float64)
        error = (as_double @ as_double.transpose(1, 2) - identity).abs().max()
        tolerance = 1e-8 if matrices.dtype == torch.float64 else 1e-5
        if float(error) > tolerance:
            raise ValueError(
                "`matrices` must be orthogonal (R @ R.T == I), the largest "
                f"deviation is {float(error):.3e}"
            )

        improper = torch.linalg.det(as_double) < 0
        proper = torch.where(improper.reshape(-1, 1, 1), -as_double, as_double)
        wigner = real_wigner_matrices(proper, max_angular_momentum)

        self._max_angular_momentum = max_angular_momentum
        self.register_buffer("_matrices", matrices.detach().clone())
        self.register_buffer("_improper", improper.to(matrices.device))
        # all the Wigner matrices in one buffer, so that `.to()` moves them
        packed = torch.cat([d.reshape(d.shape[0], -1) for d in wigner], dim=1)
        self.register_buffer(
            "_wigner", packed.to(device=matrices.device, dtype=matrices.dtype)
        )

    @property
    def matrices(self) -> torch.Tensor:
        """The ``(N, 3, 3)`` transformation matrices."""
        return self._matrices

    @property
    def max_angular_momentum(self) -> int:
        """The largest angular momentum with Wigner D matrices."""
        return self._max_angular_momentum

    @property
    def improper_mask(self) -> torch.Tensor:
        """``(N,)`` boolean tensor, true for improper operations
        (determinant -1)."""
        return self._improper

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the matrices."""
        return self._matrices.dtype

    @property
    def device(self) -> torch.device:
        """The device of the matrices."""
        return self._matrices.device

    def __len__(self) -> int:
        return self._matrices.shape[0]

    # ------------------------------------------------------------------ #

    def wigner_D_matrices(self, ell: int) -> torch.Tensor:
        """The real Wigner D matrices of the proper part of the operations
        (``R`` or ``-R``) for angular momentum ``ell``; the factor of improper
        operations is applied separately when transforming data.

        :param ell: angular momentum in ``[0, max_angular_momentum]``
        :return: ``(N, 2 ell + 1, 2 ell + 1)`` tensor
        """
        if ell < 0 or ell > self._max_angular_momentum:
            raise ValueError(
                "angular momentum "
                + str(ell)
                + " is outside of [0, "
                + str(self._max_angular_momentum)
                + "], the range of these transformations"
            )
        start = 0
        for previous in range(ell):
            start += (2 * previous + 1) * (2 * previous + 1)
        size = 2 * ell + 1
        data = self._wigner[:, start : start + size * size]
        return data.reshape(-1, size, size)

    def inverse_wigner_D_matrices(self, ell: int) -> torch.Tensor:
        """The transposed (inverse) Wigner D matrices for ``ell``.

        :param ell: angular momentum in ``[0, max_angular_momentum]``
        :return: ``(N, 2 ell + 1, 2 ell + 1)`` tensor
        """
        return self.wigner_D_matrices(ell).transpose(1, 2)

    def _cartesian(self, inverse: bool, add_inversion: bool) -> torch.Tensor:
        matrices = self._matrices
        if inverse:
            matrices = matrices.transpose(1, 2)
        if add_inversion:
            matrices = -matrices
        return matrices

    def _parity(self, ell: int, sigma: int, add_inversion: bool) -> torch.Tensor:
        """Factor of the spherical data of each operation."""
        improper = self._improper
        if add_inversion:
            improper = torch.logical_not(improper)
        factor = sigma * (1 - 2 * (ell % 2))
        ones = torch.ones(
            improper.shape, dtype=self._matrices.dtype, device=self.device
        )
        return torch.where(improper, ones * factor, ones)

    def _spherical(
        self, ell: int, sigma: int, inverse: bool, add_inversion: bool
    ) -> torch.Tensor:
        if inverse:
            matrices = self.inverse_wigner_D_matrices(ell)
        else:
            matrices = self.wigner_D_matrices(ell)
        return matrices * self._parity(ell, sigma, add_inversion).reshape(-1, 1, 1)

    def _batched(self, vectors: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
        size = matrices.shape[1]
        if vectors.shape[-1] != size:
            raise ValueError(
                "the last dimension of the data must have "
                + str(size)
                + " entries, got "
                + str(vectors.shape[-1])
            )
        flat = vectors.reshape(1, -1, size).expand(matrices.shape[0], -1, size)
        result = torch.bmm(flat, matrices.transpose(1, 2))
        if matrices.shape[0] == 1:
            return result.reshape(vectors.shape)
        shape = [matrices.shape[0]] + list(vectors.shape)
        return result.reshape(shape)

    def transform_cartesian(
        self, vectors: torch.Tensor, add_inversion: bool = False
    ) -> torch.Tensor:
        """Apply the operations to Cartesian vectors (``v -> R v``).

        :param vectors: ``(..., 3)`` tensor
        :param add_inversion: compose every operation with the inversion
        :return: the transformed vectors, with the shape of the input for one
            operation, or ``(N, ..., 3)`` for ``N > 1`` operations
        """
        return self._batched(vectors, self._cartesian(False, add_inversion))

    def inverse_transform_cartesian(
        self, vectors: torch.Tensor, add_inversion: bool = False
    ) -> torch.Tensor:
        """Apply the inverse operations to Cartesian vectors (``v -> R^T v``).

        :param vectors: ``(..., 3)`` tensor
        :param add_inversion: compose every operation with the inversion
            before inverting
        :return: the transformed vectors (shapes as in
            :py:meth:`transform_cartesian`)
        """
        return self._batched(vectors, self._cartesian(True, add_inversion))

    def transform_spherical(
        self, values: torch.Tensor, ell: int, sigma: int, add_inversion: bool = False
    ) -> torch.Tensor:
        """Apply the operations to spherical data of angular momentum ``ell``.

        :param values: ``(..., 2 ell + 1)`` tensor
        :param ell: angular momentum in ``[0, max_angular_momentum]``
        :param sigma: +1 for proper (polar) data, -1 for pseudo data: improper
            operations multiply the data by ``sigma * (-1)^ell``
        :param add_inversion: compose every operation with the inversion
        :return: the transformed values (shapes as in
            :py:meth:`transform_cartesian`)
        """
        return self._batched(values, self._spherical(ell, sigma, False, add_inversion))

    def inverse_transform_spherical(
        self, values: torch.Tensor, ell: int, sigma: int, add_inversion: bool = False
    ) -> torch.Tensor:
        """Apply the inverse operations to spherical data of angular momentum
        ``ell``.

        :param values: ``(..., 2 ell + 1)`` tensor
        :param ell: angular momentum in ``[0, max_angular_momentum]``
        :param sigma: +1 for proper data, -1 for pseudo data
        :param add_inversion: compose every operation with the inversion
            before inverting
        :return: the transformed values
        """
        return self._batched(values, self._spherical(ell, sigma, True, add_inversion))

    # ------------------------------------------------------------------ #
    # blocks and maps

    def _row_operations(
        self, samples: Labels, system_ids: Optional[torch.Tensor]
    ) -> torch.Tensor:
        """Index of the operation applied to each sample."""
        n_operations = self._matrices.shape[0]
        if n_operations == 1:
            return torch.zeros(len(samples), dtype=torch.long, device=self.device)
        if "system" not in samples.names:
            raise ValueError(
                "with more than one transformation, the samples must have a "
                + "'system' dimension to choose the transformation of each row"
            )
        systems = samples.column("system").to(torch.long)
        if system_ids is None:
            operations = systems
        else:
            ids = system_ids.to(device=systems.device, dtype=torch.long)
            if ids.shape != (n_operations,):
                raise ValueError(
                    "`system_ids` must have one entry per transformation ("
                    + str(n_operations)
                    + ")"
                )
            sorted_ids, order = torch.sort(ids)
            if bool(torch.any(sorted_ids[1:] == sorted_ids[:-1])):
                raise ValueError("`system_ids` must not contain duplicates")
            position = torch.searchsorted(sorted_ids, systems).clamp(
                max=n_operations - 1
            )
            found = sorted_ids[position] == systems
            if not bool(torch.all(found)):
                raise ValueError("some 'system' sample values are not in `system_ids`")
            operations = order[position]
        if len(operations) != 0:
            if bool(torch.any(operations < 0)) or bool(
                torch.any(operations >= n_operations)
            ):
                raise ValueError(
                    "the 'system' sample values must be in [0, "
                    + str(n_operations)
                    + ") to index the transformations"
                )
        return operations.to(self.device)

    def _transform_values(
        self,
        key: LabelsEntry,
        values: torch.Tensor,
        components: List[Labels],
        operations: torch.Tensor,
        inverse: bool,
        add_inversion: bool,
    ) -> torch.Tensor:
        for axis, component in enumerate(components):
            if len(component.names) != 1:
                continue
            kind, suffix = _axis_kind(component.names[0])
            if kind == 0:
                continue
            if kind == 1:
                if len(component) != 3:
                    raise ValueError(
                        "the Cartesian component '"
                        + component.names[0]
                        + "' must have 3 entries"
                    )
                matrices = self._cartesian(inverse, add_inversion)
            else:
                ell = _key_value(key, "o3_lambda" + suffix, 0, True)
                sigma = _key_value(key, "o3_sigma" + suffix, 1, False)
                if len(component) != 2 * ell + 1:
                    raise ValueError(
                        "the spherical component '"
                        + component.names[0]
                        + "' must have 2 * o3_lambda + 1 entries"
                    )
                matrices = self._spherical(ell, sigma, inverse, add_inversion)
            values = _apply_on_axis(values, matrices[operations], axis + 1)
        return values

    def _block(
        self,
        key: LabelsEntry,
        block: TensorBlock,
        operations: torch.Tensor,
        inverse: bool,
        add_inversion: bool,
    ) -> TensorBlock:
        values = self._transform_values(
            key, block.values, block.components, operations, inverse, add_inversion
        )
        result = TensorBlock(values, block.samples, block.components, block.properties)
        for parameter in block.gradients_list():
            gradient = block.gradient(parameter)
            if len(gradient.gradients_list()) != 0:
                raise ValueError("gradients of gradients can not be transformed")
            parent_rows = gradient.samples.column("sample").to(torch.long)
            gradient_operations = operations[parent_rows.to(operations.device)]
            gradient_values = self._transform_values(
                key,
                gradient.values,
                gradient.components,
                gradient_operations,
                inverse,
                add_inversion,
            )
            result.add_gradient(
                parameter,
                TensorBlock(
                    gradient_values,
                    gradient.samples,
                    gradient.components,
                    gradient.properties,
                ),
            )
        return result

    def _transform_block(
        self,
        key: LabelsEntry,
        block: TensorBlock,
        system_ids: Optional[torch.Tensor],
        inverse: bool,
        add_inversion: bool,
    ) -> TensorBlock:
        operations = self._row_operations(block.samples, system_ids)
        return self._block(key, block, operations, inverse, add_inversion)

    def _tensormap_with(
        self,
        tensor: TensorMap,
        system_operations: torch.Tensor,
        inverse: bool,
        add_inversion: bool,
    ) -> TensorMap:
        """Transform the rows of ``tensor`` with the ``"system"`` sample ``s``
        by operation ``system_operations[s]``."""
        blocks: List[TensorBlock] = []
        for i in range(len(tensor.keys)):
            block = tensor.block_by_id(i)
            if "system" not in block.samples.names:
                raise ValueError(
                    "the samples of the blocks must have a 'system' dimension"
                )
            systems = block.samples.column("system").to(torch.long)
            operations = system_operations[systems.to(system_operations.device)]
            blocks.append(
                self._block(
                    tensor.keys.entry(i),
                    block,
                    operations.to(self.device),
                    inverse,
                    add_inversion,
                )
            )
        result = TensorMap(tensor.keys, blocks)
        for name, value in tensor.info().items():
            result.set_info(name, value)
        return result

    def _transform_tensormap(
        self,
        tensor: TensorMap,
        system_ids: Optional[torch.Tensor],
        inverse: bool,
        add_inversion: bool,
    ) -> TensorMap:
        blocks: List[TensorBlock] = []
        for i in range(len(tensor.keys)):
            blocks.append(
                self._transform_block(
                    tensor.keys.entry(i),
                    tensor.block_by_id(i),
                    system_ids,
                    inverse,
                    add_inversion,
                )
            )
        result = TensorMap(tensor.keys, blocks)
        for name, value in tensor.info().items():
            result.set_info(name, value)
        return result

    def transform_block(
        self,
        key: LabelsEntry,
        block: TensorBlock,
        system_ids: Optional[torch.Tensor] = None,
        add_inversion: bool = False,
    ) -> TensorBlock:
        """Apply the operations to a block and its gradients.

        :param key: the key of the block (its ``o3_lambda`` and ``o3_sigma``
            dimensions describe spherical components)
        :param block: the block, with the dtype and device of the operations
        :param system_ids: with ``N > 1`` operations, the rows with the
            ``"system"`` sample ``system_ids[i]`` use operation ``i``; when
            ``None``, the ``"system"`` sample is the index of the operation.
            Gradient rows use the operation of their parent row.
        :param add_inversion: compose every operation with the inversion
        :return: a new block with the same metadata
        """
        return self._transform_block(key, block, system_ids, False, add_inversion)

    def inverse_transform_block(
        self,
        key: LabelsEntry,
        block: TensorBlock,
        system_ids: Optional[torch.Tensor] = None,
        add_inversion: bool = False,
    ) -> TensorBlock:
        """Apply the inverse operations to a block and its gradients (see
        :py:meth:`transform_block`).

        :param key: the key of the block
        :param block: the block
        :param system_ids: which operation applies to which ``"system"``
        :param add_inversion: compose every operation with the inversion
            before inverting
        :return: a new block with the same metadata
        """
        return self._transform_block(key, block, system_ids, True, add_inversion)

    def transform_tensormap(
        self,
        tensor: TensorMap,
        system_ids: Optional[torch.Tensor] = None,
        add_inversion: bool = False,
    ) -> TensorMap:
        """Apply the operations to all the blocks of a map (and their
        gradients), see :py:meth:`transform_block`.

        :param tensor: the map, with the dtype and device of the operations
        :param system_ids: which operation applies to which ``"system"``
        :param add_inversion: compose every operation with the inversion
        :return: a new map with the same metadata and info
        """
        return self._transform_tensormap(tensor, system_ids, False, add_inversion)

    def inverse_transform_tensormap(
        self,
        tensor: TensorMap,
        system_ids: Optional[torch.Tensor] = None,
        add_inversion: bool = False,
    ) -> TensorMap:
        """Apply the inverse operations to all the blocks of a map (and their
        gradients), see :py:meth:`transform_block`.

        :param tensor: the map
        :param system_ids: which operation applies to which ``"system"``
        :param add_inversion: compose every operation with the inversion
            before inverting
        :return: a new map with the same metadata and info
        """
        return self._transform_tensormap(tensor, system_ids, True, add_inversion)

    # ------------------------------------------------------------------ #
    # systems

    def _transform_systems(
        self, systems: List[System], inverse: bool, add_inversion: bool
    ) -> List[System]:
        n_operations = self._matrices.shape[0]
        if len(systems) != n_operations:
            raise ValueError(
                "expected one system per transformation ("
                + str(n_operations)
                + "), got "
                + str(len(systems))
            )
        operations: List[int] = []
        for index in range(n_operations):
            operations.append(index)
        return self._systems_with(systems, operations, inverse, add_inversion)

    def _systems_with(
        self,
        systems: List[System],
        operations: List[int],
        inverse: bool,
        add_inversion: bool,
    ) -> List[System]:
        """Transform ``systems[i]`` with operation ``operations[i]``."""
        all_matrices = self._cartesian(inverse, add_inversion)
        result: List[System] = []
        for position, system in enumerate(systems):
            index = operations[position]
            if system.dtype != self._matrices.dtype:
                raise ValueError(
                    "the systems must have the dtype of the transformations"
                )
            rotation = all_matrices[index]
            # positions and cell vectors are rows: r -> R r is rows @ R^T
            new = System(
                system.types,
                system.positions @ rotation.T,
                system.cell @ rotation.T,
                system.pbc,
            )
            for options in system.known_neighbor_lists():
                neighbors = system.get_neighbor_list(options)
                rows = torch.full(
                    [len(neighbors.samples)],
                    index,
                    dtype=torch.long,
                    device=self.device,
                )
                vectors = _apply_on_axis(neighbors.values, all_matrices[rows], 1)
                new.add_neighbor_list(
                    options,
                    TensorBlock(
                        vectors,
                        neighbors.samples,
                        neighbors.components,
                        neighbors.properties,
                    ),
                )
            for name in system.known_data():
                data = system.get_data(name)
                blocks: List[TensorBlock] = []
                for i in range(len(data.keys)):
                    block = data.block_by_id(i)
                    rows = torch.full(
                        [len(block.samples)],
                        index,
                        dtype=torch.long,
                        device=self.device,
                    )
                    blocks.append(
                        self._block(
                            data.keys.entry(i), block, rows, inverse, add_inversion
                        )
                    )
                transformed = TensorMap(data.keys, blocks)
                for info_name, value in data.info().items():
                    transformed.set_info(info_name, value)
                new.add_data(name, transformed, _private_warn_on_deprecated=False)
            result.append(new)
        return result

    def transform_systems(
        self, systems: List[System], add_inversion: bool = False
    ) -> List[System]:
        """Apply the operations to systems: ``systems[i]`` is transformed by
        operation ``i`` (pass the same system multiple times to get multiple
        transformed copies of it).

        Positions, cell vectors, the vectors of the neighbor lists and the
        custom data (following the naming conventions of the components) are
        transformed; types and periodic boundary conditions are kept.

        :param systems: one system per operation, with their dtype and device
        :param add_inversion: compose every operation with the inversion
        :return: the transformed systems
        """
        return self._transform_systems(systems, False, add_inversion)

    def inverse_transform_systems(
        self, systems: List[System], add_inversion: bool = False
    ) -> List[System]:
        """Apply the inverse operations to systems (see
        :py:meth:`transform_systems`).

        :param systems: one system per operation
        :param add_inversion: compose every operation with the inversion
            before inverting
        :return: the transformed systems
        """
        return self._transform_systems(systems, True, add_inversion)


def _quaternions_to_matrices(q: torch.Tensor) -> torch.Tensor:
    q = q / torch.linalg.norm(q, dim=1, keepdim=True)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    rows = [
        1 - 2 * (y * y + z * z),
        2 * (x * y - z * w),
        2 * (x * z + y * w),
        2 * (x * y + z * w),
        1 - 2 * (x * x + z * z),
        2 * (y * z - x * w),
        2 * (x * z - y * w),
        2 * (y * z + x * w),
        1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, dim=1).reshape(-1, 3, 3)


def random_transformations(
    n: int,
    max_angular_momentum: int = 0,
    *,
    device: torch.device,
    dtype: torch.dtype,
    add_inversions: bool = False,
    generator: Optional[torch.Generator] = None,
) -> O3Transformations:
    """``n`` random operations, uniformly distributed over SO(3) (the rotations),
    or over O(3) with ``add_inversions``.

    Rotations come from unit quaternions with normally distributed components
    (uniform on the sphere of quaternions, which gives the Haar measure of
    SO(3)); with ``add_inversions``, each one is composed with the inversion
    with probability 1/2.

    :param n: the number of operations, positive
    :param max_angular_momentum: the largest angular momentum of the spherical
        data to transform
    :param device: the device of the operations
    :param dtype: float32 or float64
    :param add_inversions: sample O(3) instead of SO(3)
    :param generator: random number generator (the global one if ``None``)
    :return: the operations
    """
    if n <= 0:
        raise ValueError(f"`n` must be positive, got {n}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"`dtype` must be torch.float32 or torch.float64, got {dtype}")
    sample_device = "cpu" if generator is None else generator.device
    quaternions = torch.randn(
        n, 4, generator=generator, dtype=torch.float64, device=sample_device
    )
    matrices = _quaternions_to_matrices(quaternions)
    if add_inversions:
        flip = torch.rand(n, generator=generator, device=sample_device) < 0.5
        matrices = torch.where(flip.reshape(-1, 1, 1), -matrices, matrices)
    return O3Transformations(
        matrices.to(device=device, dtype=dtype), max_angular_momentum
    )
