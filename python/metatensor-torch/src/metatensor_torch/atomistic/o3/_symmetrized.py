"""Averaging the outputs of a model over O(3): :py:class:`SymmetrizedModel`."""

import math
from typing import Dict, List, Optional, Tuple

import torch

from ..._block import TensorBlock
from ..._labels import Labels
from ..._tensor import TensorMap
from .._outputs import ModelOutput
from .._system import NeighborListOptions, System
from ._transformations import O3Transformations


# TorchScript can not use global strings, the names are repeated in `forward`
_VARIANCE = "o3::variance::"


def rotation_grid(degree: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Rotations and weights of a quadrature over SO(3), exact for functions of
    the rotation whose expansion in Wigner D matrices stops at angular momentum
    ``degree``.

    The rotations are ``Rz(alpha) Ry(beta) Rz(gamma)``, with ``alpha`` and
    ``gamma`` on uniform grids of ``degree + 1`` angles and ``cos(beta)`` on the
    ``degree // 2 + 1`` Gauss-Legendre nodes.

    :param degree: the largest angular momentum integrated exactly
    :return: ``(n, 3, 3)`` float64 rotation matrices and their ``(n,)``
        weights, summing to 1
    """
    if degree < 0:
        raise ValueError(f"the degree of the grid must be non-negative, got {degree}")
    n_angles = degree + 1
    angles = [2 * math.pi * i / n_angles for i in range(n_angles)]
    nodes, beta_weights = _gauss_legendre(degree // 2 + 1)

    def rz(angle: float) -> torch.Tensor:
        # rotation around z
        c, s = math.cos(angle), math.sin(angle)
        return torch.tensor(
            [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64
        )

    def ry(cos_beta: float) -> torch.Tensor:
        # rotation around y, from the cosine of the angle
        c = cos_beta
        s = math.sqrt(max(0.0, 1 - c * c))
        return torch.tensor(
            [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=torch.float64
        )

    rotations = []
    weights = []
    for alpha in angles:
        for node, weight in zip(nodes, beta_weights):
            for gamma in angles:
                rotations.append(rz(alpha) @ ry(node) @ rz(gamma))
                weights.append(weight / (2 * n_angles * n_angles))
    return torch.stack(rotations), torch.tensor(weights, dtype=torch.float64)


def _gauss_legendre(n: int) -> Tuple[List[float], List[float]]:
    """Nodes and weights of the ``n``-points Gauss-Legendre quadrature on
    ``[-1, 1]`` (Newton iterations on the Legendre polynomial)."""
    nodes = []
    weights = []
    for i in range(n):
        x = math.cos(math.pi * (i + 0.75) / (n + 0.5))
        for _ in range(100):
            p0, p1 = 1.0, x
            for k in range(2, n + 1):
                p0, p1 = p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
            if n == 1:
                p0, p1 = 1.0, x
            derivative = n * (x * p1 - p0) / (x * x - 1)
            step = p1 / derivative
            x -= step
            if abs(step) < 1e-15:
                break
        p0, p1 = 1.0, x
        for k in range(2, n + 1):
            p0, p1 = p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
        if n == 1:
            p0, p1 = 1.0, x
        derivative = n * (x * p1 - p0) / (x * x - 1)
        nodes.append(x)
        weights.append(2 / ((1 - x * x) * derivative * derivative))
    return nodes, weights


def _copy_output(output: ModelOutput) -> ModelOutput:
    return ModelOutput(
        quantity=output.quantity,
        unit=output.unit,
        sample_kind=output.sample_kind,
        description=output.description,
    )


class SymmetrizedModel(torch.nn.Module):
    """Average the outputs of a model over O(3), to make a model that is not
    equivariant by construction exactly invariant (or equivariant) under the
    rotations and inversion covered by a quadrature grid.

    Requesting an output of the wrapped model evaluates the model on rotated
    (and inverted) copies of each system, transforms each result back to the
    frame of the input (Cartesian and spherical component axes, see
    :py:class:`O3Transformations`; other outputs are averaged as they are) and
    returns the weighted average. Requesting ``o3::variance::<name>`` returns
    the variance of the back-transformed ``<name>`` over the grid, averaged
    over the components (zero for an equivariant model): a diagnostic of how
    far from equivariant the model is.

    The grid is a product quadrature over Euler angles (uniform in the two
    angles around ``z``, Gauss-Legendre in the cosine of the angle around
    ``y``), exact for functions of the rotation with angular momenta up to its
    degree, times the two elements of the inversion group.

    Gradients of the averaged outputs are computed by autograd through all the
    evaluations (explicit gradients can not be requested).

    :param model: the model to wrap (a :py:class:`ModelInterface`; use
        :py:meth:`wrap` for an :py:class:`AtomisticModel`)
    :param max_angular_momentum_target: the largest ``o3_lambda`` of the
        spherical outputs to transform back (Cartesian outputs have no limit)
    :param max_angular_momentum_input: the largest ``o3_lambda`` of the
        spherical data in the systems' custom inputs
    :param max_angular_momentum_character: character projections are not
        implemented, this must be ``None``
    :param max_angular_momentum_grid: degree of the quadrature grid; defaults
        to ``2 * max_angular_momentum_target + 1``
    :param batch_size: how many transformed systems are given to the model in
        one call
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        max_angular_momentum_target: int,
        max_angular_momentum_input: int = 0,
        max_angular_momentum_character: Optional[int] = None,
        max_angular_momentum_grid: Optional[int] = None,
        batch_size: int = 32,
    ):
        super().__init__()
        if max_angular_momentum_target < 0 or max_angular_momentum_input < 0:
            raise ValueError("the maximal angular momenta must be non-negative")
        if max_angular_momentum_character is not None:
            raise NotImplementedError(
                "character projections (`max_angular_momentum_character`) are "
                "not implemented"
            )
        if batch_size <= 0:
            raise ValueError(f"`batch_size` must be positive, got {batch_size}")
        if max_angular_momentum_grid is None:
            max_angular_momentum_grid = 2 * max_angular_momentum_target + 1
        if max_angular_momentum_grid < 0:
            raise ValueError(
                "`max_angular_momentum_grid` must be non-negative, got "
                + str(max_angular_momentum_grid)
            )

        rotations, weights = rotation_grid(max_angular_momentum_grid)
        matrices = torch.cat([rotations, -rotations])
        weights = torch.cat([weights, weights]) / 2

        self.module = model
        self._batch_size = batch_size
        self._grid_degree = max_angular_momentum_grid
        self.transformations = O3Transformations(
            matrices, max(max_angular_momentum_target, max_angular_momentum_input)
        )
        self.register_buffer("_weights", weights)
        self._n_operations = matrices.shape[0]
        inputs: Dict[str, ModelOutput] = {}
        if hasattr(model, "requested_inputs"):
            inputs = dict(model.requested_inputs())
        self._requested_inputs = inputs

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        """The neighbor lists requested by the wrapped model."""
        return self.module.requested_neighbor_lists()

    def requested_inputs(self) -> Dict[str, ModelOutput]:
        """The custom inputs requested by the wrapped model."""
        return self._requested_inputs

    @property
    def n_evaluations(self) -> int:
        """The number of model evaluations per input system."""
        return self._n_operations

    def _chunk_selected_atoms(
        self, selected_atoms: Optional[Labels], origins: List[int]
    ) -> Optional[Labels]:
        if selected_atoms is None:
            return None
        values = selected_atoms.values
        system = values[:, 0]
        parts: List[torch.Tensor] = []
        for local, origin in enumerate(origins):
            rows = values[system == origin]
            rows = rows.clone()
            rows[:, 0] = local
            parts.append(rows)
        return Labels(["system", "atom"], torch.cat(parts))

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        """Evaluate the O(3) averages (and variances) of the requested outputs.

        :param systems: the systems
        :param outputs: the requested outputs: outputs of the wrapped model,
            or ``o3::variance::<name>``
        :param selected_atoms: the atoms to compute outputs for
        :return: the averaged outputs
        """
        requests: Dict[str, ModelOutput] = {}
        variances: List[str] = []
        for name, request in outputs.items():
            if len(request.explicit_gradients) != 0:
                raise ValueError(
                    "SymmetrizedModel can not compute explicit gradients (requested "
                    + "for '"
                    + name
                    + "'), use autograd instead"
                )
            if name.startswith("o3::character_projection::"):
                raise ValueError("character projections are not implemented")
            if name.startswith("o3::variance::"):
                base = name[14:]
                variances.append(base)
                if base not in requests:
                    requests[base] = _copy_output(request)
            else:
                requests[name] = _copy_output(request)

        n_operations = self._n_operations
        total = len(systems) * n_operations
        collected: Dict[str, List[TensorMap]] = {}
        for name in requests.keys():
            empty: List[TensorMap] = []
            collected[name] = empty

        for start in range(0, total, self._batch_size):
            stop = min(total, start + self._batch_size)
            chunk: List[System] = []
            operations: List[int] = []
            origins: List[int] = []
            for copy in range(start, stop):
                chunk.append(systems[copy // n_operations])
                operations.append(copy % n_operations)
                origins.append(copy // n_operations)
            rotated = self.transformations._systems_with(
                chunk, operations, False, False
            )
            results = self.module(
                rotated,
                requests,
                self._chunk_selected_atoms(selected_atoms, origins),
            )
            system_operations = torch.tensor(operations, device=self._weights.device)
            for name in requests.keys():
                back = self.transformations._tensormap_with(
                    results[name], system_operations, True, False
                )
                collected[name].append(_shift_systems(back, start))

        averaged: Dict[str, TensorMap] = {}
        for name in outputs.keys():
            if name.startswith("o3::variance::"):
                base = name[14:]
                averaged[name] = self._reduce(collected[base], n_operations, True)
            else:
                averaged[name] = self._reduce(collected[name], n_operations, False)
        return averaged

    def _reduce(
        self, parts: List[TensorMap], n_operations: int, variance: bool
    ) -> TensorMap:
        """Weighted average (or variance) over the copies of each system."""
        first = parts[0]
        blocks: List[TensorBlock] = []
        for i in range(len(first.keys)):
            key = first.keys.entry(i)
            values: List[torch.Tensor] = []
            samples: List[torch.Tensor] = []
            for part in parts:
                position = part.keys.position(key)
                if position is None:
                    raise ValueError(
                        "the model returned different keys for the rotated systems"
                    )
                block = part.block_by_id(position)
                values.append(block.values)
                samples.append(block.samples.values)
            template = first.block_by_id(i)
            all_values = torch.cat(values)
            all_samples = torch.cat(samples).clone()
            column = template.samples.names.index("system")
            copies = all_samples[:, column].to(torch.long)
            all_samples[:, column] = (copies // n_operations).to(all_samples.dtype)
            weights = self._weights.to(all_values.dtype)[copies % n_operations]
            unique, inverse = torch.unique(all_samples, dim=0, return_inverse=True)

            shape = [unique.shape[0]] + list(all_values.shape[1:])
            weight_shape = [-1] + [1] * (all_values.dim() - 1)
            mean = torch.zeros(
                shape, dtype=all_values.dtype, device=all_values.device
            ).index_add(0, inverse, all_values * weights.reshape(weight_shape))
            new_samples = Labels(template.samples.names, unique)
            if not variance:
                blocks.append(
                    TensorBlock(
                        mean, new_samples, template.components, template.properties
                    )
                )
                continue

            difference = all_values - mean[inverse]
            squared = difference * difference * weights.reshape(weight_shape)
            spread = torch.zeros(
                shape, dtype=all_values.dtype, device=all_values.device
            ).index_add(0, inverse, squared)
            if spread.dim() > 2:
                spread = spread.reshape(spread.shape[0], -1, spread.shape[-1])
                spread = spread.mean(dim=1)
            no_components: List[Labels] = []
            blocks.append(
                TensorBlock(spread, new_samples, no_components, template.properties)
            )

        result = TensorMap(first.keys, blocks)
        for name, value in first.info().items():
            result.set_info(name, value)
        return result

    @staticmethod
    def wrap(
        model,
        *,
        max_angular_momentum_target: Optional[int] = None,
        max_angular_momentum_input: Optional[int] = None,
        max_angular_momentum_character: Optional[int] = None,
        max_angular_momentum_grid: Optional[int] = None,
        batch_size: int = 32,
    ):
        """Wrap an :py:class:`AtomisticModel` in a :py:class:`SymmetrizedModel`,
        giving a new :py:class:`AtomisticModel` with the same metadata,
        neighbor lists and inputs, where every output is averaged over O(3),
        and with an additional ``o3::variance::<name>`` output for each output.

        :param model: the :py:class:`AtomisticModel` to wrap
        :param max_angular_momentum_target: the largest ``o3_lambda`` of the
            spherical outputs (0 when ``None``: Cartesian and scalar outputs
            need nothing more)
        :param max_angular_momentum_input: the largest ``o3_lambda`` of
            spherical custom inputs (0 when ``None``)
        :param max_angular_momentum_character: must be ``None`` (character
            projections are not implemented)
        :param max_angular_momentum_grid: degree of the quadrature grid
        :param batch_size: how many transformed systems are evaluated at once
        :return: the wrapped model
        """
        from .._model import AtomisticModel
        from .._outputs import ModelCapabilities

        if not isinstance(model, AtomisticModel):
            raise TypeError(
                f"`model` must be an AtomisticModel, not {type(model).__name__}"
            )
        module = SymmetrizedModel(
            model.module,
            max_angular_momentum_target=max_angular_momentum_target or 0,
            max_angular_momentum_input=max_angular_momentum_input or 0,
            max_angular_momentum_character=max_angular_momentum_character,
            max_angular_momentum_grid=max_angular_momentum_grid,
            batch_size=batch_size,
        )
        capabilities = model.capabilities()
        outputs: Dict[str, ModelOutput] = {}
        for name, output in capabilities.outputs.items():
            outputs[name] = output
        for name, output in capabilities.outputs.items():
            if "::" not in name or not name.startswith("o3::"):
                outputs[_VARIANCE + name] = ModelOutput(
                    unit="",
                    sample_kind=output.sample_kind,
                    description="variance over O(3) of '" + name + "'",
                )
        new_capabilities = ModelCapabilities(
            outputs=outputs,
            atomic_types=capabilities.atomic_types,
            interaction_range=capabilities.interaction_range,
            length_unit=capabilities.length_unit,
            supported_devices=capabilities.supported_devices,
            dtype=capabilities.dtype,
        )
        return AtomisticModel(module.eval(), model.metadata(), new_capabilities)


def _shift_systems(tensor: TensorMap, offset: int) -> TensorMap:
    """Add ``offset`` to the ``"system"`` sample of all blocks."""
    if offset == 0:
        return tensor
    blocks: List[TensorBlock] = []
    for block in tensor.blocks():
        column = block.samples.names.index("system")
        values = block.samples.values.clone()
        values[:, column] += offset
        blocks.append(
            TensorBlock(
                block.values,
                Labels(block.samples.names, values),
                block.components,
                block.properties,
            )
        )
    result = TensorMap(tensor.keys, blocks)
    for name, value in tensor.info().items():
        result.set_info(name, value)
    return result
