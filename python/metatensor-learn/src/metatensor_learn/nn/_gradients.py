"""Forward propagation of explicit gradients through per-block torch modules.

A block ``values`` of shape ``(n_samples, *C)`` goes through a module ``f``
acting on each sample independently. A gradient block of these values holds, for
each gradient row ``r``, ``d values[sample(r)] / d x`` with shape
``(n_rows, *G, *C)`` (``G`` are the gradient components, e.g. ``xyz``). By the
chain rule, the gradient of ``f(values)`` is the Jacobian-vector product of
``f`` at ``values[sample(r)]`` along each of these directions.

Modules defined in this package provide this product as a
``gradient_forward(values, rows, gradients)`` method, which TorchScript can
compile. Other modules go through :py:func:`gradient_forward_eager`, which knows
``torch.nn.Linear``/``Identity``/``Sequential`` and uses forward-mode automatic
differentiation (:py:func:`torch.func.jvp`) for everything else.
"""

import math
import warnings
from typing import List

import torch


def expand_like(array: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Insert the gradient component axes of ``gradient`` (of shape
    ``(n, *G, *C)``) after the first axis of ``array`` (``(n, *C)``), so that
    ``array`` broadcasts against ``gradient``."""
    n_extra = gradient.dim() - array.dim()
    if n_extra == 0:
        return array
    shape = [array.shape[0]] + [1] * n_extra + list(array.shape[1:])
    return array.reshape(shape)


def scale_gradients(
    derivative: torch.Tensor, rows: List[torch.Tensor], gradients: List[torch.Tensor]
) -> List[torch.Tensor]:
    """Chain rule of an element-wise function: multiply each gradient array by
    ``derivative`` (the derivative of the function at each values entry), taken
    at the values row of each gradient row (``rows``)."""
    return [
        expand_like(derivative.index_select(0, r), g) * g
        for r, g in zip(rows, gradients)
    ]


def supports_scripted_gradients(module: torch.nn.Module) -> bool:
    """Does ``module`` (and everything it wraps) provide a ``gradient_forward``
    method that TorchScript can compile?"""
    check = getattr(module, "_supports_scripted_gradients", None)
    if check is not None:
        return check()
    return False


def _generic_jvp(
    module: torch.nn.Module, values: torch.Tensor, gradient: torch.Tensor
) -> torch.Tensor:
    """Jacobian-vector product of ``module`` at ``values`` (``(n, *C)``) along
    ``gradient`` (``(n, *G, *C)``), with forward-mode automatic differentiation.
    The gradient components are folded into the sample axis, so ``module`` sees
    inputs with the same number of dimensions as ``values``."""
    n = values.shape[0]
    n_extra = gradient.dim() - values.dim()
    extra = list(gradient.shape[1 : 1 + n_extra])
    count = int(math.prod(extra))
    tangent = gradient.reshape([n * count] + list(values.shape[1:]))
    primal = values.repeat_interleave(count, dim=0) if count != 1 else values.clone()
    if torch.compiler.is_compiling():
        # dynamo traces torch.func transforms, but not changes of the
        # warning filters
        _, output = torch.func.jvp(module, (primal,), (tangent,))
    else:
        with warnings.catch_warnings():
            # torch.func scripts some helpers on first use, which warns about
            # the deprecation of TorchScript in recent torch versions
            warnings.filterwarnings(
                "ignore", message=".*torch.jit.*", category=DeprecationWarning
            )
            _, output = torch.func.jvp(module, (primal,), (tangent,))
    return output.reshape([n] + extra + list(output.shape[1:]))


def gradient_forward_eager(
    module: torch.nn.Module,
    values: torch.Tensor,
    rows: List[torch.Tensor],
    gradients: List[torch.Tensor],
) -> List[torch.Tensor]:
    """Propagate ``gradients`` through ``module`` (Python only).

    :param module: the module applied to ``values``
    :param values: input values of the module, ``(n_samples, *C)``
    :param rows: for each gradient, the row of ``values`` of each gradient row
    :param gradients: the gradients of ``values``, each ``(n_rows, *G, *C)``
    :return: the gradients of ``module(values)``
    """
    rule = getattr(module, "gradient_forward", None)
    if rule is not None:
        return rule(values, rows, gradients)

    if isinstance(module, torch.nn.Identity):
        return list(gradients)
    if isinstance(module, torch.nn.Linear):
        # the bias does not depend on the input, it never enters gradients
        return [torch.nn.functional.linear(g, module.weight) for g in gradients]
    if isinstance(module, torch.nn.Sequential):
        gradients = list(gradients)
        layers = list(module)
        for i, layer in enumerate(layers):
            gradients = gradient_forward_eager(layer, values, rows, gradients)
            if i != len(layers) - 1:
                values = layer(values.clone())
        return gradients

    return [
        _generic_jvp(module, values.index_select(0, r), g)
        for r, g in zip(rows, gradients)
    ]
