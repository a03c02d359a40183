"""Linear algebra on TensorMaps: ``dot``, ``lstsq`` and ``solve``."""

import warnings
from typing import List, Optional

from . import _dispatch
from ._backend import (
    TensorBlock,
    TensorMap,
    torch_jit_annotate,
    torch_jit_is_scripting,
    torch_jit_script,
)
from ._utils import (
    _check_blocks_impl,
    _check_blocks_raise,
    _check_same_gradients_impl,
    _check_same_gradients_raise,
    _check_tensor_type,
    _matching_blocks,
)


# ======================================================================== #
# dot                                                                      #
# ======================================================================== #


def _dot_block(block_1: TensorBlock, block_2: TensorBlock) -> TensorBlock:
    if not block_1.properties == block_2.properties:
        raise ValueError("TensorBlocks in `dot` should have the same properties")
    if len(block_2.components) != 0:
        raise ValueError("the second TensorMap in `dot` should not have components")
    if len(block_2.gradients_list()) != 0:
        raise ValueError("the second TensorMap in `dot` should not have gradients")

    weights = block_2.values
    result = TensorBlock(
        _dispatch.dot(block_1.values, weights),
        block_1.samples,
        block_1.components,
        block_2.samples,
    )
    for parameter, gradient in block_1.gradients():
        if len(gradient.gradients_list()) != 0:
            raise NotImplementedError("gradients of gradients are not supported")
        result.add_gradient(
            parameter,
            TensorBlock(
                _dispatch.dot(gradient.values, weights),
                gradient.samples,
                gradient.components,
                block_2.samples,
            ),
        )
    return result


@torch_jit_script
def dot(tensor_1: TensorMap, tensor_2: TensorMap) -> TensorMap:
    """Compute the dot product of two :py:class:`TensorMap`.

    For each key, the values of the block of ``tensor_1`` (shape ``(n_samples,
    ..., n_properties)``) are multiplied by the transposed values of the block of
    ``tensor_2`` with the same key (shape ``(n_samples_2, n_properties)``),
    giving shape ``(n_samples, ..., n_samples_2)``. The result has the samples
    and components of ``tensor_1``, and **the samples of ``tensor_2`` as
    properties**. Gradients of ``tensor_1`` are propagated the same way;
    ``tensor_2`` must not have gradients nor components.

    :param tensor_1: first :py:class:`TensorMap`
    :param tensor_2: second :py:class:`TensorMap`, with the same keys (in any
        order) and the same properties as ``tensor_1``
    :return: a new :py:class:`TensorMap` with the keys of ``tensor_1``
    :raises NotEqualError: if the keys differ
    :raises ValueError: if the properties differ, or ``tensor_2`` has components
        or gradients
    """
    _check_tensor_type(tensor_1, "tensor_1")
    _check_tensor_type(tensor_2, "tensor_2")
    blocks_2 = _matching_blocks(tensor_1, tensor_2, "dot")
    blocks = torch_jit_annotate(List[TensorBlock], [])
    for i in range(len(tensor_1)):
        blocks.append(_dot_block(tensor_1.block_by_id(i), blocks_2[i]))
    return TensorMap(tensor_1.keys, blocks)


# ======================================================================== #
# lstsq                                                                    #
# ======================================================================== #


def _flatten_rows(values):
    """Reshape to 2-D, all dimensions but the last one flattened into rows."""
    shape = values.shape
    n_rows = 1
    for size in shape[:-1]:
        n_rows *= int(size)
    return _dispatch.reshape(values, [n_rows, int(shape[-1])])


def _stacked_equations(block: TensorBlock, parameters: List[str]):
    """The values of ``block`` and of its gradients (in the order of
    ``parameters``), each flattened to 2-D, stacked along the rows."""
    arrays = [_flatten_rows(block.values)]
    for parameter in parameters:
        arrays.append(_flatten_rows(block.gradient(parameter).values))
    if len(arrays) == 1:
        return arrays[0]
    return _dispatch.concatenate(arrays, 0)


def _lstsq_block(
    X: TensorBlock, Y: TensorBlock, rcond: Optional[float], driver: Optional[str]
) -> TensorBlock:
    _check_blocks_raise(X, Y, "lstsq", ["samples", "components"])
    _check_same_gradients_raise(X, Y, "lstsq", ["samples", "components"])

    parameters = X.gradients_list()
    X_equations = _stacked_equations(X, parameters)
    Y_equations = _stacked_equations(Y, parameters)
    weights = _dispatch.lstsq(X_equations, Y_equations, rcond, driver)
    return TensorBlock(
        _dispatch.make_contiguous(weights.T), Y.properties, [], X.properties
    )


@torch_jit_script
def lstsq(
    X: TensorMap, Y: TensorMap, rcond: Optional[float], driver: Optional[str] = None
) -> TensorMap:
    """Solve the linear least-squares problem ``X w = Y`` for each block.

    For each key, the components of the values are flattened into the rows, and
    the values of each gradient (flattened the same way, in the order of the
    gradients of ``X``) are stacked below the values, as extra equations, for
    ``X`` and ``Y`` alike. The solution ``w`` has shape ``(n_properties_X,
    n_properties_Y)``; the resulting block contains ``w.T``, with the properties
    of ``Y`` as samples, no components, and the properties of ``X`` as
    properties. The result has no gradients.

    :param X: :py:class:`TensorMap` with the coefficients of the equations
    :param Y: :py:class:`TensorMap` with the targets, same keys as ``X`` and for
        each key the same samples, components and gradients (samples and
        components) as ``X``
    :param rcond: cut-off ratio for the small singular values of ``X``, see
        :py:func:`numpy.linalg.lstsq`. ``None`` uses the library default (which
        differs between numpy and torch), and warns.
    :param driver: LAPACK driver, only used for torch tensors, see
        :py:func:`torch.linalg.lstsq`
    :return: a new :py:class:`TensorMap` with the keys of ``X``
    :raises NotEqualError: if the metadata of ``X`` and ``Y`` differ
    """
    _check_tensor_type(X, "X")
    _check_tensor_type(Y, "Y")
    if rcond is None:
        if not torch_jit_is_scripting():
            warnings.warn(
                "WARNING rcond is set to None, which will trigger the default "
                "behavior which is different between numpy and torch lstsq "
                "function, and might result in different value. Use `rcond=-1` "
                "or a specific value to avoid this warning.",
                UserWarning,
                stacklevel=2,
            )

    blocks_Y = _matching_blocks(X, Y, "lstsq")
    blocks = torch_jit_annotate(List[TensorBlock], [])
    for i in range(len(X)):
        blocks.append(_lstsq_block(X.block_by_id(i), blocks_Y[i], rcond, driver))
    return TensorMap(X.keys, blocks)


# ======================================================================== #
# solve                                                                    #
# ======================================================================== #


def _solve_block(X: TensorBlock, Y: TensorBlock) -> TensorBlock:
    shape = X.values.shape
    if len(shape) != 2 or int(shape[0]) != int(shape[1]):
        raise ValueError("the values in each block of X should be a square 2D array")

    # only what matters for the solution is compared: the rows (samples and
    # components) of the values and of the gradients. The gradients themselves
    # are not used (a square system has no room for extra equations)
    message = _check_blocks_impl(X, Y, "solve", ["samples", "components"])
    if message == "":
        message = _check_same_gradients_impl(X, Y, "solve", ["samples", "components"])
    if message != "":
        raise ValueError(message)

    weights = _dispatch.solve(X.values, Y.values)
    return TensorBlock(
        _dispatch.make_contiguous(weights.T), Y.properties, [], X.properties
    )


@torch_jit_script
def solve(X: TensorMap, Y: TensorMap) -> TensorMap:
    """Solve the linear system ``X w = Y`` for each block, where the values of
    ``X`` are square 2-D arrays.

    The metadata of the result is the same as for :py:func:`lstsq`: for each
    key, a block containing ``w.T``, with the properties of ``Y`` as samples, no
    components and the properties of ``X`` as properties. Gradients are not used
    (they can be present, with matching samples and components in ``X`` and
    ``Y``); the result has no gradients.

    :param X: :py:class:`TensorMap` with square 2-D values in each block
    :param Y: :py:class:`TensorMap` with the same keys as ``X``, and for each key
        the same samples (and no components)
    :return: a new :py:class:`TensorMap` with the keys of ``X``
    :raises NotEqualError: if the keys of ``X`` and ``Y`` differ
    :raises ValueError: if the values of ``X`` are not square 2-D arrays, or the
        samples/components of ``X`` and ``Y`` differ
    """
    _check_tensor_type(X, "X")
    _check_tensor_type(Y, "Y")
    blocks_Y = _matching_blocks(X, Y, "solve")
    blocks = torch_jit_annotate(List[TensorBlock], [])
    for i in range(len(X)):
        blocks.append(_solve_block(X.block_by_id(i), blocks_Y[i]))
    return TensorMap(X.keys, blocks)


__all__ = [
    "dot",
    "lstsq",
    "solve",
]
