"""Comparison of TensorMaps and TensorBlocks: exact equality, approximate
equality and equality of the metadata only.

Each comparison comes in four flavours: ``<name>`` and ``<name>_block`` return a
bool, ``<name>_raise`` and ``<name>_block_raise`` return ``None`` or raise
:py:class:`NotEqualError` explaining the first difference they found.
"""

from typing import Any, List, Union

from . import _dispatch
from ._backend import (
    TensorBlock,
    TensorMap,
    isinstance_metatensor,
    torch_jit_is_scripting,
    torch_jit_script,
)
from ._utils import (
    NotEqualError,
    _check_block_type,
    _check_blocks_impl,
    _check_same_gradients_impl,
    _check_same_keys_impl,
    _check_tensor_type,
    _metadata_to_check,
)


# ======================================================================== #
# implementation                                                           #
# ======================================================================== #


def _values_impl(
    values_1,
    values_2,
    what: str,
    exact: bool,
    rtol: float,
    atol: float,
    equal_nan: bool,
) -> str:
    if list(values_1.shape) != list(values_2.shape):
        return f"{what} shapes are different"
    if exact:
        if not _dispatch.array_equal(values_1, values_2):
            return f"{what} are not equal"
    else:
        if not _dispatch.allclose(
            values_1, values_2, rtol=rtol, atol=atol, equal_nan=equal_nan
        ):
            return f"{what} are not allclose"
    return ""


def _block_impl(
    block_1: TensorBlock,
    block_2: TensorBlock,
    fname: str,
    exact: bool,
    rtol: float,
    atol: float,
    equal_nan: bool,
) -> str:
    message = _values_impl(
        block_1.values, block_2.values, "values", exact, rtol, atol, equal_nan
    )
    if message != "":
        return message

    message = _check_blocks_impl(block_1, block_2, fname, "all")
    if message != "":
        return message

    message = _check_same_gradients_impl(block_1, block_2, fname, "all")
    if message != "":
        return message

    for parameter in block_1.gradients_list():
        gradient_1 = block_1.gradient(parameter)
        gradient_2 = block_2.gradient(parameter)
        message = _values_impl(
            gradient_1.values,
            gradient_2.values,
            f"gradient '{parameter}' values",
            exact,
            rtol,
            atol,
            equal_nan,
        )
        if message != "":
            return message
        if len(gradient_1.gradients_list()) != 0:
            raise NotImplementedError("gradients of gradients are not supported")
    return ""


def _tensor_impl(
    tensor_1: TensorMap,
    tensor_2: TensorMap,
    fname: str,
    exact: bool,
    rtol: float,
    atol: float,
    equal_nan: bool,
) -> str:
    message = _check_same_keys_impl(tensor_1, tensor_2, fname)
    if message != "":
        return message

    keys = tensor_1.keys
    same_order = keys == tensor_2.keys
    for i in range(len(keys)):
        block_1 = tensor_1.block_by_id(i)
        if same_order:
            block_2 = tensor_2.block_by_id(i)
        else:
            block_2 = tensor_2.block(keys.entry(i))
        message = _block_impl(block_1, block_2, fname, exact, rtol, atol, equal_nan)
        if message != "":
            return f"blocks for key {keys.entry(i).print()} are different: " + message
    return ""


def _metadata_block_impl(
    block_1: TensorBlock,
    block_2: TensorBlock,
    check: Union[List[str], str],
    check_gradients: bool,
) -> str:
    message = _check_blocks_impl(block_1, block_2, "equal_metadata", check)
    if message != "":
        return message
    if check_gradients:
        message = _check_same_gradients_impl(block_1, block_2, "equal_metadata", check)
    return message


def _metadata_tensor_impl(
    tensor_1: TensorMap,
    tensor_2: TensorMap,
    check: Union[List[str], str],
    check_gradients: bool,
) -> str:
    message = _check_same_keys_impl(tensor_1, tensor_2, "equal_metadata")
    if message != "":
        return message

    keys = tensor_1.keys
    same_order = keys == tensor_2.keys
    for i in range(len(keys)):
        block_1 = tensor_1.block_by_id(i)
        if same_order:
            block_2 = tensor_2.block_by_id(i)
        else:
            block_2 = tensor_2.block(keys.entry(i))
        message = _metadata_block_impl(block_1, block_2, check, check_gradients)
        if message != "":
            return f"blocks for key {keys.entry(i).print()} are different: " + message
    return ""


def _not_a(value: Any, name: str, typename: str) -> str:
    # in TorchScript, the arguments types are checked by the compiler
    if not torch_jit_is_scripting():
        if not isinstance_metatensor(value, typename):
            return f"`{name}` must be a metatensor {typename}, not {type(value)}"
    return ""


def _raise(message: str) -> None:
    if message != "":
        raise NotEqualError(message)


# ======================================================================== #
# exact equality                                                           #
# ======================================================================== #


@torch_jit_script
def equal_raise(tensor_1: TensorMap, tensor_2: TensorMap) -> None:
    """Check that two :py:class:`TensorMap` are exactly equal, raising a
    :py:class:`NotEqualError` with the reason otherwise.

    The keys must be the same (in any order); for each key, the two blocks must
    have the same values (shape and entries, NaN are never equal), the same
    samples, components and properties (in the same order) and the same
    gradients (metadata and values).

    :param tensor_1: first :py:class:`TensorMap`
    :param tensor_2: second :py:class:`TensorMap`
    """
    _check_tensor_type(tensor_1, "tensor_1")
    _check_tensor_type(tensor_2, "tensor_2")
    _raise(_tensor_impl(tensor_1, tensor_2, "equal", True, 0.0, 0.0, False))


@torch_jit_script
def equal(tensor_1: TensorMap, tensor_2: TensorMap) -> bool:
    """Are two :py:class:`TensorMap` exactly equal? See :py:func:`equal_raise`
    for the rules.

    :param tensor_1: first :py:class:`TensorMap`
    :param tensor_2: second :py:class:`TensorMap`
    """
    _check_tensor_type(tensor_1, "tensor_1")
    _check_tensor_type(tensor_2, "tensor_2")
    return _tensor_impl(tensor_1, tensor_2, "equal", True, 0.0, 0.0, False) == ""


@torch_jit_script
def equal_block_raise(block_1: TensorBlock, block_2: TensorBlock) -> None:
    """Check that two :py:class:`TensorBlock` are exactly equal (values,
    metadata and gradients), raising a :py:class:`NotEqualError` with the reason
    otherwise.

    :param block_1: first :py:class:`TensorBlock`
    :param block_2: second :py:class:`TensorBlock`
    """
    _check_block_type(block_1, "block_1")
    _check_block_type(block_2, "block_2")
    _raise(_block_impl(block_1, block_2, "equal", True, 0.0, 0.0, False))


@torch_jit_script
def equal_block(block_1: TensorBlock, block_2: TensorBlock) -> bool:
    """Are two :py:class:`TensorBlock` exactly equal? See
    :py:func:`equal_block_raise`.

    :param block_1: first :py:class:`TensorBlock`
    :param block_2: second :py:class:`TensorBlock`
    """
    _check_block_type(block_1, "block_1")
    _check_block_type(block_2, "block_2")
    return _block_impl(block_1, block_2, "equal", True, 0.0, 0.0, False) == ""


# ======================================================================== #
# approximate equality                                                     #
# ======================================================================== #


@torch_jit_script
def allclose_raise(
    tensor_1: TensorMap,
    tensor_2: TensorMap,
    rtol: float = 1e-13,
    atol: float = 1e-12,
    equal_nan: bool = False,
) -> None:
    """Check that two :py:class:`TensorMap` are approximately equal, raising a
    :py:class:`NotEqualError` with the reason otherwise.

    The metadata rules are the ones of :py:func:`equal_raise`; values and
    gradients are compared with ``allclose``: ``|a - b| <= atol + rtol * |b|``.
    Mixing numpy arrays and torch tensors raises ``TypeError``.

    :param tensor_1: first :py:class:`TensorMap`
    :param tensor_2: second :py:class:`TensorMap`
    :param rtol: relative tolerance
    :param atol: absolute tolerance
    :param equal_nan: should two NaN be considered equal?
    """
    _check_tensor_type(tensor_1, "tensor_1")
    _check_tensor_type(tensor_2, "tensor_2")
    _raise(_tensor_impl(tensor_1, tensor_2, "allclose", False, rtol, atol, equal_nan))


@torch_jit_script
def allclose(
    tensor_1: TensorMap,
    tensor_2: TensorMap,
    rtol: float = 1e-13,
    atol: float = 1e-12,
    equal_nan: bool = False,
) -> bool:
    """Are two :py:class:`TensorMap` approximately equal? See
    :py:func:`allclose_raise`.

    :param tensor_1: first :py:class:`TensorMap`
    :param tensor_2: second :py:class:`TensorMap`
    :param rtol: relative tolerance
    :param atol: absolute tolerance
    :param equal_nan: should two NaN be considered equal?
    """
    _check_tensor_type(tensor_1, "tensor_1")
    _check_tensor_type(tensor_2, "tensor_2")
    message = _tensor_impl(tensor_1, tensor_2, "allclose", False, rtol, atol, equal_nan)
    return message == ""


@torch_jit_script
def allclose_block_raise(
    block_1: TensorBlock,
    block_2: TensorBlock,
    rtol: float = 1e-13,
    atol: float = 1e-12,
    equal_nan: bool = False,
) -> None:
    """Check that two :py:class:`TensorBlock` are approximately equal, raising a
    :py:class:`NotEqualError` with the reason otherwise. See
    :py:func:`allclose_raise`.

    :param block_1: first :py:class:`TensorBlock`
    :param block_2: second :py:class:`TensorBlock`
    :param rtol: relative tolerance
    :param atol: absolute tolerance
    :param equal_nan: should two NaN be considered equal?
    """
    _check_block_type(block_1, "block_1")
    _check_block_type(block_2, "block_2")
    _raise(_block_impl(block_1, block_2, "allclose", False, rtol, atol, equal_nan))


@torch_jit_script
def allclose_block(
    block_1: TensorBlock,
    block_2: TensorBlock,
    rtol: float = 1e-13,
    atol: float = 1e-12,
    equal_nan: bool = False,
) -> bool:
    """Are two :py:class:`TensorBlock` approximately equal? See
    :py:func:`allclose_raise`.

    :param block_1: first :py:class:`TensorBlock`
    :param block_2: second :py:class:`TensorBlock`
    :param rtol: relative tolerance
    :param atol: absolute tolerance
    :param equal_nan: should two NaN be considered equal?
    """
    _check_block_type(block_1, "block_1")
    _check_block_type(block_2, "block_2")
    message = _block_impl(block_1, block_2, "allclose", False, rtol, atol, equal_nan)
    return message == ""


# ======================================================================== #
# metadata                                                                 #
# ======================================================================== #


@torch_jit_script
def equal_metadata_raise(
    tensor_1: TensorMap,
    tensor_2: TensorMap,
    check: Union[List[str], str] = "all",
    check_gradients: bool = True,
) -> None:
    """Check that two :py:class:`TensorMap` have the same metadata, raising a
    :py:class:`NotEqualError` with the reason otherwise.

    The keys are always compared (in any order). For each key, the ``check``
    metadata of the blocks must be equal, in the same order; with
    ``check_gradients``, the gradients must also have the same parameters and
    ``check`` metadata. Arguments which are not TensorMap are reported as
    :py:class:`NotEqualError`.

    :param tensor_1: first :py:class:`TensorMap`
    :param tensor_2: second :py:class:`TensorMap`
    :param check: ``"all"`` or a list containing some of ``"samples"``,
        ``"components"`` and ``"properties"``
    :param check_gradients: should the gradients be compared too?
    """
    _metadata_to_check(check)
    message = _not_a(tensor_1, "tensor_1", "TensorMap")
    if message == "":
        message = _not_a(tensor_2, "tensor_2", "TensorMap")
    if message == "":
        message = _metadata_tensor_impl(tensor_1, tensor_2, check, check_gradients)
    _raise(message)


@torch_jit_script
def equal_metadata(
    tensor_1: TensorMap,
    tensor_2: TensorMap,
    check: Union[List[str], str] = "all",
    check_gradients: bool = True,
) -> bool:
    """Do two :py:class:`TensorMap` have the same metadata? See
    :py:func:`equal_metadata_raise`; arguments which are not TensorMap give
    ``False``.

    :param tensor_1: first :py:class:`TensorMap`
    :param tensor_2: second :py:class:`TensorMap`
    :param check: ``"all"`` or a list containing some of ``"samples"``,
        ``"components"`` and ``"properties"``
    :param check_gradients: should the gradients be compared too?
    """
    _metadata_to_check(check)
    if _not_a(tensor_1, "tensor_1", "TensorMap") != "":
        return False
    if _not_a(tensor_2, "tensor_2", "TensorMap") != "":
        return False
    message = _metadata_tensor_impl(tensor_1, tensor_2, check, check_gradients)
    return message == ""


@torch_jit_script
def equal_metadata_block_raise(
    block_1: TensorBlock,
    block_2: TensorBlock,
    check: Union[List[str], str] = "all",
    check_gradients: bool = True,
) -> None:
    """Check that two :py:class:`TensorBlock` have the same metadata, raising a
    :py:class:`NotEqualError` with the reason otherwise. See
    :py:func:`equal_metadata_raise`.

    :param block_1: first :py:class:`TensorBlock`
    :param block_2: second :py:class:`TensorBlock`
    :param check: ``"all"`` or a list containing some of ``"samples"``,
        ``"components"`` and ``"properties"``
    :param check_gradients: should the gradients be compared too?
    """
    _metadata_to_check(check)
    message = _not_a(block_1, "block_1", "TensorBlock")
    if message == "":
        message = _not_a(block_2, "block_2", "TensorBlock")
    if message == "":
        message = _metadata_block_impl(block_1, block_2, check, check_gradients)
    _raise(message)


@torch_jit_script
def equal_metadata_block(
    block_1: TensorBlock,
    block_2: TensorBlock,
    check: Union[List[str], str] = "all",
    check_gradients: bool = True,
) -> bool:
    """Do two :py:class:`TensorBlock` have the same metadata? See
    :py:func:`equal_metadata_raise`.

    :param block_1: first :py:class:`TensorBlock`
    :param block_2: second :py:class:`TensorBlock`
    :param check: ``"all"`` or a list containing some of ``"samples"``,
        ``"components"`` and ``"properties"``
    :param check_gradients: should the gradients be compared too?
    """
    _metadata_to_check(check)
    if _not_a(block_1, "block_1", "TensorBlock") != "":
        return False
    if _not_a(block_2, "block_2", "TensorBlock") != "":
        return False
    message = _metadata_block_impl(block_1, block_2, check, check_gradients)
    return message == ""


__all__ = [
    "allclose",
    "allclose_block",
    "allclose_block_raise",
    "allclose_raise",
    "equal",
    "equal_block",
    "equal_block_raise",
    "equal_metadata",
    "equal_metadata_block",
    "equal_metadata_block_raise",
    "equal_metadata_raise",
    "equal_raise",
]
