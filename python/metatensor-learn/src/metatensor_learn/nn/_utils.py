"""Argument checks shared by the layers of ``metatensor.learn.nn``."""

from typing import Any, List, Optional

import torch

from .._backend import Labels, isinstance_metatensor
from .._dispatch import int_array_like


def _is_type(value: Any, expected: type) -> bool:
    if expected is int and isinstance(value, bool):
        return False
    return isinstance(value, expected)


def _check_module_map_parameter(
    value: Any, name: str, expected: type, n: int, ref_name: str
) -> List[Any]:
    """Check a per-key parameter: a single value of type ``expected`` (used for
    all ``n`` keys) or a list of ``n`` such values.

    :return: the list of ``n`` values
    """
    if _is_type(value, expected):
        return [value] * n
    if isinstance(value, list):
        if len(value) != n:
            raise ValueError(
                f"`{name}` must have same length as `{ref_name}`, but "
                f"len({name}) != len({ref_name}) [{len(value)} != {n}]"
            )
        for item in value:
            if not _is_type(item, expected):
                raise TypeError(
                    f"`{name}` must be type {expected} or List of {expected}, "
                    f"but the list contains {type(item)}."
                )
        return list(value)
    raise TypeError(
        f"`{name}` must be type {expected} or List of {expected}, "
        f"but not {type(value)}."
    )


def _check_in_keys(in_keys: Any) -> None:
    if not isinstance_metatensor(in_keys, "Labels"):
        raise TypeError("`in_keys` must be a `Labels` object.")


def _check_out_properties(out_properties: Any, n: int) -> Optional[List[Labels]]:
    """``None``, a single Labels (used for every key) or a list of ``n`` Labels."""
    if out_properties is None:
        return None
    if isinstance_metatensor(out_properties, "Labels"):
        return [out_properties] * n
    if isinstance(out_properties, (list, tuple)):
        out_properties = list(out_properties)
        for labels in out_properties:
            if not isinstance_metatensor(labels, "Labels"):
                raise TypeError(
                    "`out_properties` must be a list of `Labels`, got an element "
                    f"of type {type(labels)}"
                )
        if len(out_properties) != n:
            raise ValueError(
                "`out_properties` must have same length as `in_keys`, but "
                f"len(out_properties) != len(in_keys) [{len(out_properties)} != {n}]"
            )
        return out_properties
    raise TypeError(
        "`out_properties` must be `Labels` or a list of `Labels`, "
        f"not {type(out_properties)}"
    )


def _default_invariant_keys(like: Labels) -> Labels:
    """``Labels(["o3_lambda", "o3_sigma"], [[0, 1]])`` with the array type and
    device of ``like``."""
    values = int_array_like([0, 1], like.values).reshape(1, 2)
    return Labels(["o3_lambda", "o3_sigma"], values)


def _invariant_indices(in_keys: Labels, invariant_keys: Optional[Labels]) -> List[int]:
    """Positions in ``in_keys`` of the keys matching ``invariant_keys``."""
    if invariant_keys is None:
        invariant_keys = _default_invariant_keys(in_keys)
    elif not isinstance_metatensor(invariant_keys, "Labels"):
        raise TypeError("`invariant_keys` must be a `Labels` object.")
    elif isinstance(in_keys.values, torch.Tensor) and isinstance(
        invariant_keys.values, torch.Tensor
    ):
        # `select` needs both Labels on the same device
        invariant_keys = invariant_keys.to(in_keys.values.device)
    selected = in_keys.select(invariant_keys)
    return [int(i) for i in selected.tolist()]
