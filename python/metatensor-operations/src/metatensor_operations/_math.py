"""Element-wise math on TensorMaps: ``abs``, ``add``, ``subtract``,
``multiply``, ``divide`` and ``pow``, with explicit gradients propagated by the
chain rule.

For a gradient block, each row ``r`` refers to the values row ``s = sample[r]``
(first column of the gradient samples), and has extra gradient-specific
components (``xyz``, ...) in front of the values components. The chain rules below
take the parent values at ``s`` and broadcast them over these extra components.
"""

from typing import Any, List, Union

from . import _dispatch
from ._backend import (
    TensorBlock,
    TensorMap,
    torch_jit_annotate,
    torch_jit_is_scripting,
    torch_jit_script,
)
from ._utils import (
    _check_blocks_raise,
    _check_no_gradients_of_gradients,
    _check_same_gradients_raise,
    _check_tensor_type,
    _matching_blocks,
)


# ======================================================================== #
# helpers                                                                  #
# ======================================================================== #


def _is_scalar(value: Any) -> bool:
    if torch_jit_is_scripting():
        return isinstance(value, (int, float))
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    # numpy integer / floating scalars
    return _dispatch.is_numpy_scalar(value)


def _check_tensor_or_scalar(B: Any, fname: str) -> None:
    if not torch_jit_is_scripting():
        if not isinstance(B, TensorMap) and not _is_scalar(B):
            raise TypeError(
                f"`B` must be a metatensor TensorMap or a scalar value, not {type(B)}"
            )


def _parent_rows(values, gradient: TensorBlock):
    """The rows of ``values`` that each gradient row refers to, reshaped to
    broadcast against the gradient values (extra gradient components get a
    size-1 axis)."""
    parent = _dispatch.take(values, gradient.samples.column("sample"), 0)
    n_extra = len(gradient.values.shape) - len(values.shape)
    if n_extra == 0:
        return parent
    shape = [int(parent.shape[0])]
    for _ in range(n_extra):
        shape.append(1)
    for size in parent.shape[1:]:
        shape.append(int(size))
    return _dispatch.reshape(parent, shape)


def _new_block(values, block: TensorBlock) -> TensorBlock:
    """A block with the given values and the metadata of ``block``."""
    return TensorBlock(values, block.samples, block.components, block.properties)


def _new_gradient(values, gradient: TensorBlock) -> TensorBlock:
    """A gradient block with the given values and the metadata of ``gradient``."""
    return TensorBlock(
        values, gradient.samples, gradient.components, gradient.properties
    )


def _map_blocks(A: TensorMap, blocks: List[TensorBlock]) -> TensorMap:
    return TensorMap(A.keys, blocks)


def _check_pair(block_1: TensorBlock, block_2: TensorBlock, fname: str) -> None:
    _check_blocks_raise(block_1, block_2, fname, "all")
    _check_same_gradients_raise(block_1, block_2, fname, "all")
    _check_no_gradients_of_gradients(block_1)
    _check_no_gradients_of_gradients(block_2)


# ======================================================================== #
# abs                                                                      #
# ======================================================================== #


def _abs_block(block: TensorBlock) -> TensorBlock:
    _check_no_gradients_of_gradients(block)
    values = block.values
    result = _new_block(_dispatch.abs(values), block)
    if len(block.gradients_list()) != 0:
        sign = _dispatch.sign(values)
        for parameter, gradient in block.gradients():
            grad = _parent_rows(sign, gradient) * gradient.values
            result.add_gradient(parameter, _new_gradient(grad, gradient))
    return result


@torch_jit_script
def abs(A: TensorMap) -> TensorMap:
    """Absolute value of every entry of ``A``.

    Gradients follow :math:`\\nabla |A| = \\mathrm{sign}(A) \\nabla A` (with a
    zero gradient where ``A`` is zero).

    :param A: input :py:class:`TensorMap`
    :return: a new :py:class:`TensorMap` with the same metadata as ``A``
    """
    _check_tensor_type(A, "A")
    blocks = torch_jit_annotate(List[TensorBlock], [])
    for block in A.blocks():
        blocks.append(_abs_block(block))
    return _map_blocks(A, blocks)


# ======================================================================== #
# add & subtract                                                           #
# ======================================================================== #


def _add_scalar_block(block: TensorBlock, scalar: float) -> TensorBlock:
    _check_no_gradients_of_gradients(block)
    result = _new_block(block.values + scalar, block)
    for parameter, gradient in block.gradients():
        grad = _dispatch.copy(gradient.values)
        result.add_gradient(parameter, _new_gradient(grad, gradient))
    return result


def _add_blocks(
    block_1: TensorBlock, block_2: TensorBlock, fname: str, sign: float
) -> TensorBlock:
    """``block_1 + sign * block_2``, with ``sign`` either 1 or -1."""
    _check_pair(block_1, block_2, fname)
    if sign > 0:
        values = block_1.values + block_2.values
    else:
        values = block_1.values - block_2.values
    result = _new_block(values, block_1)
    for parameter, gradient_1 in block_1.gradients():
        gradient_2 = block_2.gradient(parameter)
        if sign > 0:
            grad = gradient_1.values + gradient_2.values
        else:
            grad = gradient_1.values - gradient_2.values
        result.add_gradient(parameter, _new_gradient(grad, gradient_1))
    return result


def _add_impl(A: TensorMap, B: Union[float, int, TensorMap], sign: float) -> TensorMap:
    _check_tensor_type(A, "A")
    _check_tensor_or_scalar(B, "add")
    blocks = torch_jit_annotate(List[TensorBlock], [])
    if isinstance(B, TensorMap):
        blocks_B = _matching_blocks(A, B, "add")
        for i in range(len(A)):
            blocks.append(_add_blocks(A.block_by_id(i), blocks_B[i], "add", sign))
    else:
        scalar = sign * float(B)
        for block in A.blocks():
            blocks.append(_add_scalar_block(block, scalar))
    return _map_blocks(A, blocks)


@torch_jit_script
def add(A: TensorMap, B: Union[float, int, TensorMap]) -> TensorMap:
    """Add ``B`` to ``A``.

    ``B`` can be a scalar (added to every value, gradients are copied) or a
    :py:class:`TensorMap` with the same keys (in any order) and, for each key, a
    block with the same metadata and gradients (metadata) as the block of ``A``:
    values and gradients are added.

    :param A: first :py:class:`TensorMap`
    :param B: second :py:class:`TensorMap` or a scalar
    :return: a new :py:class:`TensorMap` with the keys and metadata of ``A``
    :raises NotEqualError: if the metadata of ``A`` and ``B`` differ
    """
    return _add_impl(A, B, 1.0)


@torch_jit_script
def subtract(A: TensorMap, B: Union[float, int, TensorMap]) -> TensorMap:
    """Subtract ``B`` from ``A``: ``A - B``.

    ``B`` can be a scalar or a :py:class:`TensorMap`, with the same rules as
    :py:func:`add` (error messages mention ``add``).

    :param A: first :py:class:`TensorMap`
    :param B: second :py:class:`TensorMap` or a scalar
    :return: a new :py:class:`TensorMap` with the keys and metadata of ``A``
    :raises NotEqualError: if the metadata of ``A`` and ``B`` differ
    """
    return _add_impl(A, B, -1.0)


# ======================================================================== #
# multiply                                                                 #
# ======================================================================== #


def _multiply_scalar_block(block: TensorBlock, scalar: float) -> TensorBlock:
    _check_no_gradients_of_gradients(block)
    result = _new_block(block.values * scalar, block)
    for parameter, gradient in block.gradients():
        result.add_gradient(
            parameter, _new_gradient(gradient.values * scalar, gradient)
        )
    return result


def _multiply_blocks(block_1: TensorBlock, block_2: TensorBlock) -> TensorBlock:
    _check_pair(block_1, block_2, "multiply")
    values_1 = block_1.values
    values_2 = block_2.values
    result = _new_block(values_1 * values_2, block_1)
    for parameter, gradient_1 in block_1.gradients():
        gradient_2 = block_2.gradient(parameter)
        grad = _parent_rows(values_1, gradient_2) * gradient_2.values
        grad = grad + gradient_1.values * _parent_rows(values_2, gradient_1)
        result.add_gradient(parameter, _new_gradient(grad, gradient_1))
    return result


@torch_jit_script
def multiply(A: TensorMap, B: Union[float, int, TensorMap]) -> TensorMap:
    """Multiply ``A`` by ``B``, element-wise.

    With a scalar ``B``, values and gradients are multiplied by ``B``. With a
    :py:class:`TensorMap` (same rules as :py:func:`add`), values are multiplied
    element-wise and gradients follow the product rule
    :math:`\\nabla(AB) = A \\nabla B + B \\nabla A`.

    :param A: first :py:class:`TensorMap`
    :param B: second :py:class:`TensorMap` or a scalar
    :return: a new :py:class:`TensorMap` with the keys and metadata of ``A``
    :raises NotEqualError: if the metadata of ``A`` and ``B`` differ
    """
    _check_tensor_type(A, "A")
    _check_tensor_or_scalar(B, "multiply")
    blocks = torch_jit_annotate(List[TensorBlock], [])
    if isinstance(B, TensorMap):
        blocks_B = _matching_blocks(A, B, "multiply")
        for i in range(len(A)):
            blocks.append(_multiply_blocks(A.block_by_id(i), blocks_B[i]))
    else:
        scalar = float(B)
        for block in A.blocks():
            blocks.append(_multiply_scalar_block(block, scalar))
    return _map_blocks(A, blocks)


# ======================================================================== #
# divide                                                                   #
# ======================================================================== #


def _divide_blocks(block_1: TensorBlock, block_2: TensorBlock) -> TensorBlock:
    _check_pair(block_1, block_2, "divide")
    values_1 = block_1.values
    values_2 = block_2.values
    result = _new_block(values_1 / values_2, block_1)
    for parameter, gradient_1 in block_1.gradients():
        gradient_2 = block_2.gradient(parameter)
        denominator = _parent_rows(values_2, gradient_1)
        grad = gradient_1.values / denominator
        grad = grad - _parent_rows(values_1, gradient_2) * gradient_2.values / (
            denominator * denominator
        )
        result.add_gradient(parameter, _new_gradient(grad, gradient_1))
    return result


def _divide_scalar_block(block: TensorBlock, scalar: float) -> TensorBlock:
    _check_no_gradients_of_gradients(block)
    result = _new_block(block.values / scalar, block)
    for parameter, gradient in block.gradients():
        result.add_gradient(
            parameter, _new_gradient(gradient.values / scalar, gradient)
        )
    return result


@torch_jit_script
def divide(A: TensorMap, B: Union[float, int, TensorMap]) -> TensorMap:
    """Divide ``A`` by ``B``, element-wise.

    With a scalar ``B``, values and gradients are divided by ``B``. With a
    :py:class:`TensorMap` (same rules as :py:func:`add`), values are divided
    element-wise and gradients follow the quotient rule
    :math:`\\nabla(A/B) = \\nabla A / B - A \\nabla B / B^2`.

    :param A: first :py:class:`TensorMap`
    :param B: second :py:class:`TensorMap` or a scalar
    :return: a new :py:class:`TensorMap` with the keys and metadata of ``A``
    :raises NotEqualError: if the metadata of ``A`` and ``B`` differ
    """
    _check_tensor_type(A, "A")
    _check_tensor_or_scalar(B, "divide")
    blocks = torch_jit_annotate(List[TensorBlock], [])
    if isinstance(B, TensorMap):
        blocks_B = _matching_blocks(A, B, "divide")
        for i in range(len(A)):
            blocks.append(_divide_blocks(A.block_by_id(i), blocks_B[i]))
    else:
        scalar = float(B)
        for block in A.blocks():
            blocks.append(_divide_scalar_block(block, scalar))
    return _map_blocks(A, blocks)


# ======================================================================== #
# pow                                                                      #
# ======================================================================== #


def _pow_block(block: TensorBlock, exponent: float) -> TensorBlock:
    _check_no_gradients_of_gradients(block)
    values = block.values
    result = _new_block(_dispatch.power(values, exponent), block)
    if len(block.gradients_list()) != 0:
        if exponent == 0.0:
            # A^0 is constant, avoid 0 * inf = NaN where A is zero
            factor = _dispatch.zeros_like(values)
        else:
            factor = exponent * _dispatch.power(values, exponent - 1.0)
        for parameter, gradient in block.gradients():
            grad = _parent_rows(factor, gradient) * gradient.values
            result.add_gradient(parameter, _new_gradient(grad, gradient))
    return result


@torch_jit_script
def pow(A: TensorMap, B: Union[float, int]) -> TensorMap:
    """Raise every value of ``A`` to the power ``B`` (a scalar).

    Gradients follow :math:`\\nabla A^B = B A^{B - 1} \\nabla A`.

    :param A: input :py:class:`TensorMap`
    :param B: the exponent, a scalar
    :return: a new :py:class:`TensorMap` with the same metadata as ``A``
    """
    _check_tensor_type(A, "A")
    if not torch_jit_is_scripting():
        if not _is_scalar(B):
            raise TypeError(f"`B` must be a scalar value, not {type(B)}")
    exponent = float(B)
    blocks = torch_jit_annotate(List[TensorBlock], [])
    for block in A.blocks():
        blocks.append(_pow_block(block, exponent))
    return _map_blocks(A, blocks)


__all__ = [
    "abs",
    "add",
    "divide",
    "multiply",
    "pow",
    "subtract",
]
