"""Shared helpers: the :py:class:`NotEqualError` exception, the global "checks"
toggle, and the metadata comparisons used by many operations.

The ``_check_*_impl`` functions return an empty string when the inputs match and
the reason why they don't otherwise; ``_check_*`` return a bool and
``_check_*_raise`` raise :py:class:`NotEqualError` with that reason.
"""

import os
from typing import Any, List, Union

from ._backend import (
    Labels,
    TensorBlock,
    TensorMap,
    torch_jit_annotate,
    torch_jit_is_scripting,
)


class NotEqualError(Exception):
    """Exception used to indicate that two metatensor objects are different"""

    pass


# ======================================================================== #
# checks toggle                                                            #
# ======================================================================== #


def _checks_from_environment() -> bool:
    value = os.environ.get("METATENSOR_UNSAFE_DISABLE_CHECKS", "")
    return value.strip().lower() not in ("true", "1", "yes", "on")


_CHECKS_ENABLED = _checks_from_environment()


def checks_enabled() -> bool:
    """Are metadata checks enabled?

    The default is ``True``, unless the ``METATENSOR_UNSAFE_DISABLE_CHECKS``
    environment variable is set to ``true``, ``1``, ``yes`` or ``on``. This can
    be changed with :py:class:`unsafe_enable_checks` and
    :py:class:`unsafe_disable_checks`.

    .. note::

        Operations currently always run their checks, whatever this flag says.
    """
    return _CHECKS_ENABLED


def _set_checks(value: bool) -> None:
    global _CHECKS_ENABLED
    _CHECKS_ENABLED = value


class _ChecksToggle:
    _value: bool = True

    def __init__(self) -> None:
        self._previous = _CHECKS_ENABLED
        _set_checks(self._value)

    def __enter__(self) -> "_ChecksToggle":
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        _set_checks(self._previous)

    def __repr__(self) -> str:
        return "checks enabled" if self._value else "checks disabled"


class unsafe_enable_checks(_ChecksToggle):
    """Enable metadata checks. The state changes as soon as the object is
    created, and is restored when leaving a ``with`` block:

    >>> from metatensor.operations import checks_enabled, unsafe_enable_checks
    >>> with unsafe_enable_checks():
    ...     checks_enabled()
    True
    """

    _value = True


class unsafe_disable_checks(_ChecksToggle):
    """Disable metadata checks (unsafe: wrong inputs can give wrong results). The
    state changes as soon as the object is created, and is restored when leaving
    a ``with`` block:

    >>> from metatensor.operations import checks_enabled, unsafe_disable_checks
    >>> with unsafe_disable_checks():
    ...     checks_enabled()
    False
    """

    _value = False


# ======================================================================== #
# argument checks                                                          #
# ======================================================================== #


def _check_tensor_type(value: Any, name: str) -> None:
    """Raise ``TypeError`` if ``value`` is not a TensorMap (outside TorchScript)."""
    if not torch_jit_is_scripting():
        if not isinstance(value, TensorMap):
            raise TypeError(
                f"`{name}` must be a metatensor TensorMap, not {type(value)}"
            )


def _check_block_type(value: Any, name: str) -> None:
    """Raise ``TypeError`` if ``value`` is not a TensorBlock (outside
    TorchScript)."""
    if not torch_jit_is_scripting():
        if not isinstance(value, TensorBlock):
            raise TypeError(
                f"`{name}` must be a metatensor TensorBlock, not {type(value)}"
            )


def _check_labels_type(value: Any, name: str) -> None:
    """Raise ``TypeError`` if ``value`` is not Labels (outside TorchScript)."""
    if not torch_jit_is_scripting():
        if not isinstance(value, Labels):
            raise TypeError(f"`{name}` must be metatensor Labels, not {type(value)}")


def _metadata_to_check(check: Union[List[str], str]) -> List[str]:
    """Normalize the ``check`` argument of the metadata comparisons."""
    if isinstance(check, str):
        if check == "all":
            return ["samples", "components", "properties"]
        raise ValueError("`check` must be a list of strings or 'all'")

    result = torch_jit_annotate(List[str], [])
    for metadata in check:
        if metadata not in ["samples", "components", "properties"]:
            raise ValueError(f"Invalid metadata to check: {metadata}")
        result.append(metadata)
    return result


# ======================================================================== #
# keys                                                                     #
# ======================================================================== #


def _check_same_keys_impl(a: TensorMap, b: TensorMap, fname: str) -> str:
    keys_a = a.keys
    keys_b = b.keys
    if keys_a.names != keys_b.names:
        return (
            f"inputs to '{fname}' should have the same keys names, "
            f"got '{keys_a.names}' and '{keys_b.names}'"
        )

    if len(keys_a) != len(keys_b):
        return (
            f"inputs to '{fname}' should have the same number of blocks, "
            f"got {len(keys_a)} and {len(keys_b)}"
        )

    if keys_a == keys_b:
        return ""

    # same names and same length: same set if every key of `a` is in `b`
    if len(keys_b.select(keys_a)) != len(keys_a):
        return f"inputs to '{fname}' should have the same keys"
    return ""


def _check_same_keys(a: TensorMap, b: TensorMap, fname: str) -> bool:
    """Do ``a`` and ``b`` have the same keys (in any order)?"""
    return _check_same_keys_impl(a, b, fname) == ""


def _check_same_keys_raise(a: TensorMap, b: TensorMap, fname: str) -> None:
    """Raise :py:class:`NotEqualError` if ``a`` and ``b`` don't have the same
    keys (in any order)."""
    message = _check_same_keys_impl(a, b, fname)
    if message != "":
        raise NotEqualError(message)


def _matching_blocks(a: TensorMap, b: TensorMap, fname: str) -> List[TensorBlock]:
    """Check that ``a`` and ``b`` have the same keys, and return the blocks of
    ``b`` in the order of the keys of ``a``."""
    _check_same_keys_raise(a, b, fname)
    if a.keys == b.keys:
        return b.blocks()
    positions = b.keys.select(a.keys)
    return b.blocks_by_id([int(i) for i in positions])


# ======================================================================== #
# blocks                                                                   #
# ======================================================================== #


def _compare_labels(first: Labels, second: Labels, metadata: str, prefix: str) -> str:
    """Compare two Labels, returns an error message (empty if they are equal)."""
    if len(first) != len(second):
        return prefix + f"{metadata} of the two `TensorBlock` have different lengths"
    if first.names != second.names:
        return prefix + f"{metadata} names are not the same or not in the same order"
    if not first == second:
        return prefix + f"{metadata} are not the same or not in the same order"
    return ""


def _compare_components(first: List[Labels], second: List[Labels], prefix: str) -> str:
    if len(first) != len(second):
        return prefix + "components of the two `TensorBlock` have different lengths"
    for component_1, component_2 in zip(first, second):
        if component_1.names != component_2.names:
            return prefix + "components names are not the same or not in the same order"
        if len(component_1) != len(component_2) or not component_1 == component_2:
            return prefix + "components are not the same or not in the same order"
    return ""


def _check_blocks_impl(
    block_1: TensorBlock,
    block_2: TensorBlock,
    fname: str,
    check: Union[List[str], str] = "all",
) -> str:
    for metadata in _metadata_to_check(check):
        prefix = f"inputs to '{fname}' should have the same {metadata}:\n"
        if metadata == "samples":
            message = _compare_labels(
                block_1.samples, block_2.samples, "samples", prefix
            )
        elif metadata == "properties":
            message = _compare_labels(
                block_1.properties, block_2.properties, "properties", prefix
            )
        else:
            message = _compare_components(
                block_1.components, block_2.components, prefix
            )
        if message != "":
            return message
    return ""


def _check_blocks(
    block_1: TensorBlock,
    block_2: TensorBlock,
    fname: str,
    check: Union[List[str], str] = "all",
) -> bool:
    """Do the two blocks have the same metadata (the ones in ``check``)?"""
    return _check_blocks_impl(block_1, block_2, fname, check) == ""


def _check_blocks_raise(
    block_1: TensorBlock,
    block_2: TensorBlock,
    fname: str,
    check: Union[List[str], str] = "all",
) -> None:
    """Raise :py:class:`NotEqualError` if the two blocks have different
    ``check`` metadata (``"all"`` or a list of ``"samples"``,
    ``"components"``, ``"properties"``)."""
    message = _check_blocks_impl(block_1, block_2, fname, check)
    if message != "":
        raise NotEqualError(message)


# ======================================================================== #
# gradients                                                                #
# ======================================================================== #


def _check_same_gradients_impl(
    block_1: TensorBlock,
    block_2: TensorBlock,
    fname: str,
    check: Union[List[str], str] = "all",
) -> str:
    prefix = f"inputs to '{fname}' should have the same gradients:\n"
    parameters_1 = block_1.gradients_list()
    parameters_2 = block_2.gradients_list()
    if len(parameters_1) != len(parameters_2):
        return (
            prefix + "the two `TensorBlock` have different numbers of gradients: "
            f"{parameters_1} and {parameters_2}"
        )
    for parameter in parameters_1:
        if parameter not in parameters_2:
            return (
                prefix + f"gradient with respect to '{parameter}' is missing in the "
                "second `TensorBlock`"
            )

    to_check = _metadata_to_check(check)
    for parameter in parameters_1:
        gradient_1 = block_1.gradient(parameter)
        gradient_2 = block_2.gradient(parameter)
        for metadata in to_check:
            message = ""
            if metadata == "samples":
                message = _compare_labels(
                    gradient_1.samples,
                    gradient_2.samples,
                    f"gradient '{parameter}' samples",
                    prefix,
                )
            elif metadata == "properties":
                message = _compare_labels(
                    gradient_1.properties,
                    gradient_2.properties,
                    f"gradient '{parameter}' properties",
                    prefix,
                )
            else:
                message = _compare_components(
                    gradient_1.components,
                    gradient_2.components,
                    prefix + f"gradient '{parameter}': ",
                )
            if message != "":
                return message
    return ""


def _check_same_gradients(
    block_1: TensorBlock,
    block_2: TensorBlock,
    fname: str,
    check: Union[List[str], str] = "all",
) -> bool:
    """Do the two blocks have the same gradients, with the same ``check``
    metadata?"""
    return _check_same_gradients_impl(block_1, block_2, fname, check) == ""


def _check_same_gradients_raise(
    block_1: TensorBlock,
    block_2: TensorBlock,
    fname: str,
    check: Union[List[str], str] = "all",
) -> None:
    """Raise :py:class:`NotEqualError` if the two blocks have different
    gradient parameters, or gradients with different ``check`` metadata."""
    message = _check_same_gradients_impl(block_1, block_2, fname, check)
    if message != "":
        raise NotEqualError(message)


def _check_gradient_presence_raise(
    block: TensorBlock, parameters: List[str], fname: str
) -> None:
    """Raise ``ValueError`` if one of the ``parameters`` is not a gradient of
    ``block``."""
    for parameter in parameters:
        if not block.has_gradient(parameter):
            raise ValueError(
                f"requested gradient '{parameter}' in '{fname}' is not defined "
                "in this tensor"
            )


def _check_no_gradients_of_gradients(block: TensorBlock) -> None:
    """Raise ``NotImplementedError`` if a gradient of ``block`` has gradients."""
    for _, gradient in block.gradients():
        if len(gradient.gradients_list()) != 0:
            raise NotImplementedError("gradients of gradients are not supported")


__all__ = [
    "NotEqualError",
    "checks_enabled",
    "unsafe_disable_checks",
    "unsafe_enable_checks",
]
