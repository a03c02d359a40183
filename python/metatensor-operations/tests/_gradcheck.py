"""Finite-difference checks of explicit gradients.

The helpers here build TensorMaps whose values are smooth functions of an input
array (``positions`` of shape ``(n_atoms, 3)`` or a ``strain`` of shape
``(3, 3)``), with the corresponding exact gradients; and check that the gradients
of the TensorMap returned by an operation match finite differences of its values.
"""

from typing import Callable

import numpy as np

from metatensor import Labels, TensorBlock, TensorMap


def _to_numpy(array):
    if isinstance(array, np.ndarray):
        return array
    return array.detach().cpu().numpy()


def positions_tensor(
    positions: np.ndarray, n_properties: int = 3, components: bool = False
) -> TensorMap:
    """Two blocks whose values depend on ``positions`` (shape ``(n_atoms, 3)``),
    with ``positions`` gradients. Sample ``i`` depends on atoms ``i`` and ``i+1``
    (periodic), so gradients have two rows per sample. With ``components=True``,
    the values get a component dimension of size 3."""
    n_atoms = positions.shape[0]
    blocks = []
    for key in range(2):
        atoms = np.arange(key, n_atoms, dtype=np.int32)
        neighbors = (atoms + 1) % n_atoms
        samples = Labels(
            ["system", "atom"], np.stack([np.zeros_like(atoms), atoms], axis=1)
        )
        properties = Labels.range("property", n_properties)
        weights = np.linspace(0.5, 1.5, n_properties) * (key + 1)
        n_components = 3 if components else 1
        comp_weights = np.arange(1, n_components + 1)

        # v[s, c, p] = sin(w_p * c_c * x_i . u) + 0.3 * (x_j . u)^2 * w_p * c_c
        u = np.array([0.3, -0.7, 0.5])
        xi = positions[atoms] @ u
        xj = positions[neighbors] @ u
        scale = comp_weights[None, :, None] * weights[None, None, :]
        values = (
            np.sin(scale * xi[:, None, None]) + 0.3 * xj[:, None, None] ** 2 * scale
        )
        d_xi = np.cos(scale * xi[:, None, None]) * scale
        d_xj = 0.6 * xj[:, None, None] * scale

        n = len(atoms)
        grad_samples = np.zeros((2 * n, 3), dtype=np.int32)
        grad_samples[0::2, 0] = np.arange(n)
        grad_samples[1::2, 0] = np.arange(n)
        grad_samples[0::2, 2] = atoms
        grad_samples[1::2, 2] = neighbors
        gradient = np.zeros((2 * n, 3, n_components, n_properties))
        gradient[0::2] = d_xi[:, None] * u[None, :, None, None]
        gradient[1::2] = d_xj[:, None] * u[None, :, None, None]

        if components:
            comps = [Labels.range("o3_mu", 3)]
        else:
            comps = []
            values = values[:, 0, :]
            gradient = gradient[:, :, 0, :]

        block = TensorBlock(values, samples, comps, properties)
        block.add_gradient(
            "positions",
            TensorBlock(
                gradient,
                Labels(["sample", "system", "atom"], grad_samples),
                [Labels.range("xyz", 3)] + comps,
                properties,
            ),
        )
        blocks.append(block)

    return TensorMap(Labels.range("key", 2), blocks)


def strain_tensor(
    strain: np.ndarray, n_samples: int = 4, n_properties: int = 3
) -> TensorMap:
    """One block whose values depend on a ``(3, 3)`` ``strain`` matrix, with
    ``strain`` gradients (components ``xyz_1``, ``xyz_2``)."""
    a = np.arange(1, n_samples + 1)[:, None, None] * np.linspace(0.2, 1.0, 9).reshape(
        3, 3
    )
    w = np.linspace(0.5, 1.5, n_properties)
    inner = np.einsum("sij,ij->s", a, strain)
    values = np.sin(inner[:, None] * w[None, :])
    gradient = np.cos(inner[:, None] * w[None, :])[:, None, None, :] * (
        a[:, :, :, None] * w[None, None, None, :]
    )
    samples = Labels(["system"], np.arange(n_samples, dtype=np.int32).reshape(-1, 1))
    properties = Labels.range("property", n_properties)
    block = TensorBlock(values, samples, [], properties)
    block.add_gradient(
        "strain",
        TensorBlock(
            gradient,
            Labels(["sample"], np.arange(n_samples, dtype=np.int32).reshape(-1, 1)),
            [Labels.range("xyz_1", 3), Labels.range("xyz_2", 3)],
            properties,
        ),
    )
    return TensorMap(Labels.range("key", 1), [block])


def _dense_derivative(block: TensorBlock, parameter: str, index: tuple) -> np.ndarray:
    """d values / d array[index], from the gradient block."""
    gradient = block.gradient(parameter)
    data = _to_numpy(gradient.values)
    grad_samples = _to_numpy(gradient.samples.values)
    result = np.zeros(_to_numpy(block.values).shape, dtype=data.dtype)
    if parameter == "positions":
        atom_column = gradient.samples.names.index("atom")
        rows = np.nonzero(grad_samples[:, atom_column] == index[0])[0]
        for row in rows:
            result[grad_samples[row, 0]] += data[row, index[1]]
    else:
        for row in range(len(grad_samples)):
            result[grad_samples[row, 0]] += data[row, index[0], index[1]]
    return result


def check_finite_differences(
    function: Callable[[np.ndarray], TensorMap],
    array: np.ndarray,
    parameter: str,
    displacement: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-9,
) -> None:
    """Check that the ``parameter`` gradients of ``function(array)`` match finite
    differences of its values with respect to each entry of ``array``.

    :param function: builds a TensorMap from ``array`` (typically an operation
        applied to :py:func:`positions_tensor` or :py:func:`strain_tensor`)
    :param array: the point at which derivatives are checked
    :param parameter: ``"positions"`` (``array`` is ``(n_atoms, 3)``, gradient
        samples have an ``atom`` column) or another parameter where ``array`` is
        ``(3, 3)`` and the gradient has two leading components
    """
    reference = function(array)
    for index in np.ndindex(*array.shape):
        plus = array.copy()
        plus[index] += displacement / 2
        minus = array.copy()
        minus[index] -= displacement / 2
        tensor_plus = function(plus)
        tensor_minus = function(minus)
        for i in range(len(reference.keys)):
            block = reference.block_by_id(i)
            finite = (
                _to_numpy(tensor_plus.block_by_id(i).values)
                - _to_numpy(tensor_minus.block_by_id(i).values)
            ) / displacement
            analytic = _dense_derivative(block, parameter, index)
            np.testing.assert_allclose(
                analytic,
                finite,
                rtol=rtol,
                atol=atol,
                err_msg=f"wrong {parameter} gradient for block {i} at {index}",
            )
