"""Per-block torch modules used by the metatensor layers.

Each of them behaves as the torch module it extends, and also provides
``gradient_forward(values, rows, gradients)``: the chain rule for explicit
gradient blocks (see :py:mod:`._gradients`), written so that TorchScript can
compile it. Subclasses keep the parameter names of the torch modules
(``weight``, ``bias``), so ``state_dict`` keys are unchanged.
"""

from typing import List, Optional

import torch

from .._backend import torch_jit_is_scripting
from ._gradients import (
    expand_like,
    gradient_forward_eager,
    scale_gradients,
    supports_scripted_gradients,
)


def _no_scripted_gradients() -> str:
    return (
        "explicit gradients are only supported in TorchScript for the modules of "
        "metatensor.learn.nn (or modules with a `gradient_forward` method)"
    )


class _Linear(torch.nn.Linear):
    """``torch.nn.Linear``; gradients get the weights but never the bias."""

    @torch.jit.export
    def gradient_forward(
        self,
        values: torch.Tensor,
        rows: List[torch.Tensor],
        gradients: List[torch.Tensor],
    ) -> List[torch.Tensor]:
        return [torch.nn.functional.linear(g, self.weight) for g in gradients]

    def _supports_scripted_gradients(self) -> bool:
        return True


class _Identity(torch.nn.Identity):
    """``torch.nn.Identity``, also for gradients."""

    @torch.jit.export
    def gradient_forward(
        self,
        values: torch.Tensor,
        rows: List[torch.Tensor],
        gradients: List[torch.Tensor],
    ) -> List[torch.Tensor]:
        return gradients

    def _supports_scripted_gradients(self) -> bool:
        return True


class _ReLU(torch.nn.ReLU):
    """``torch.nn.ReLU``; gradients are multiplied by ``values > 0``."""

    @torch.jit.export
    def gradient_forward(
        self,
        values: torch.Tensor,
        rows: List[torch.Tensor],
        gradients: List[torch.Tensor],
    ) -> List[torch.Tensor]:
        derivative = (values > 0).to(values.dtype)
        return scale_gradients(derivative, rows, gradients)

    def _supports_scripted_gradients(self) -> bool:
        return True


class _SiLU(torch.nn.SiLU):
    """``torch.nn.SiLU``; gradients are multiplied by ``σ(x) (1 + x (1 - σ(x)))``."""

    @torch.jit.export
    def gradient_forward(
        self,
        values: torch.Tensor,
        rows: List[torch.Tensor],
        gradients: List[torch.Tensor],
    ) -> List[torch.Tensor]:
        sigmoid = torch.sigmoid(values)
        derivative = sigmoid * (1.0 + values * (1.0 - sigmoid))
        return scale_gradients(derivative, rows, gradients)

    def _supports_scripted_gradients(self) -> bool:
        return True


class _Tanh(torch.nn.Tanh):
    """``torch.nn.Tanh``; gradients are multiplied by ``1 - tanh(x)^2``."""

    @torch.jit.export
    def gradient_forward(
        self,
        values: torch.Tensor,
        rows: List[torch.Tensor],
        gradients: List[torch.Tensor],
    ) -> List[torch.Tensor]:
        derivative = 1.0 - torch.tanh(values) ** 2
        return scale_gradients(derivative, rows, gradients)

    def _supports_scripted_gradients(self) -> bool:
        return True


class _LayerNorm(torch.nn.Module):
    """Normalise each sample over all its non-sample axes (components and
    properties together): ``(x - mean) / sqrt(var + eps)`` (``x / sqrt(var +
    eps)`` with ``mean=False``, the variance being always centred), then scale
    by ``weight`` and shift by ``bias`` along the last axis."""

    def __init__(
        self,
        in_features: int,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        mean: bool = True,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        self.in_features = in_features
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.mean = mean
        if elementwise_affine:
            self.weight = torch.nn.Parameter(
                torch.ones(in_features, device=device, dtype=dtype)
            )
            if bias:
                self.bias = torch.nn.Parameter(
                    torch.zeros(in_features, device=device, dtype=dtype)
                )
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, mean={self.mean}"
        )

    def _statistics(self, values: torch.Tensor):
        dims = list(range(1, values.dim()))
        centered = values - values.mean(dim=dims, keepdim=True)
        variance = (centered * centered).mean(dim=dims, keepdim=True)
        return centered, torch.sqrt(variance + self.eps)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        centered, scale = self._statistics(input)
        if self.mean:
            output = centered / scale
        else:
            output = input / scale

        weight = self.weight
        if weight is not None:
            output = output * weight
        bias = self.bias
        if bias is not None:
            output = output + bias
        return output

    @torch.jit.export
    def gradient_forward(
        self,
        values: torch.Tensor,
        rows: List[torch.Tensor],
        gradients: List[torch.Tensor],
    ) -> List[torch.Tensor]:
        centered, scale = self._statistics(values)
        results: List[torch.Tensor] = []
        for r, g in zip(rows, gradients):
            dims = list(range(g.dim() - values.dim() + 1, g.dim()))
            c = expand_like(centered.index_select(0, r), g)
            s = expand_like(scale.index_select(0, r), g)
            # d scale = mean(centered * d x) / scale
            d_scale = (c * g).mean(dim=dims, keepdim=True) / s
            if self.mean:
                d_output = (g - g.mean(dim=dims, keepdim=True)) / s - c * d_scale / (
                    s * s
                )
            else:
                x = expand_like(values.index_select(0, r), g)
                d_output = g / s - x * d_scale / (s * s)

            weight = self.weight
            if weight is not None:
                d_output = d_output * weight
            results.append(d_output)
        return results

    def _supports_scripted_gradients(self) -> bool:
        return True


class _CovariantTransform(torch.nn.Module):
    """Apply ``module`` to the norm of covariant features over their component
    axis, and scale the features by the result: ``module(|x|) * x``. Input
    shape: ``(samples, components, properties)``."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module
        if supports_scripted_gradients(module):
            # checked with `hasattr` by TorchScript (a compile-time condition)
            self._scripted_gradients = True

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        assert len(input.shape) == 3, "input must be 3-dimensional"
        norm = torch.linalg.vector_norm(input, dim=1, keepdim=True)
        return self.module(norm) * input

    @torch.jit.export
    def gradient_forward(
        self,
        values: torch.Tensor,
        rows: List[torch.Tensor],
        gradients: List[torch.Tensor],
    ) -> List[torch.Tensor]:
        assert len(values.shape) == 3, "input must be 3-dimensional"
        norm = torch.linalg.vector_norm(values, dim=1, keepdim=True)
        scale = self.module(norm)

        # gradients of the norm, zero where the norm is zero
        d_norms: List[torch.Tensor] = []
        for r, g in zip(rows, gradients):
            x = expand_like(values.index_select(0, r), g)
            n = expand_like(norm.index_select(0, r), g)
            dot = (x * g).sum(dim=g.dim() - 2, keepdim=True)
            safe = torch.where(n > 0, n, torch.ones_like(n))
            d_norms.append(torch.where(n > 0, dot / safe, torch.zeros_like(dot)))

        if torch_jit_is_scripting():
            if hasattr(self, "_scripted_gradients"):
                d_scales = self.module.gradient_forward(norm, rows, d_norms)
            else:
                raise ValueError(_no_scripted_gradients())
        else:
            d_scales = gradient_forward_eager(self.module, norm, rows, d_norms)

        results: List[torch.Tensor] = []
        for i, g in enumerate(gradients):
            r = rows[i]
            x = expand_like(values.index_select(0, r), g)
            s = expand_like(scale.index_select(0, r), g)
            results.append(d_scales[i] * x + s * g)
        return results

    def _supports_scripted_gradients(self) -> bool:
        return hasattr(self, "_scripted_gradients")


class _Sequential(torch.nn.Sequential):
    """``torch.nn.Sequential``, gradients go through each layer in turn."""

    def __init__(self, *args: torch.nn.Module):
        super().__init__(*args)
        if all(supports_scripted_gradients(layer) for layer in args):
            # checked with `hasattr` by TorchScript (a compile-time condition)
            self._scripted_gradients = True

    @torch.jit.export
    def gradient_forward(
        self,
        values: torch.Tensor,
        rows: List[torch.Tensor],
        gradients: List[torch.Tensor],
    ) -> List[torch.Tensor]:
        # work on a copy, some layers might modify their input in place
        values = values.clone()
        for layer in self:
            if torch_jit_is_scripting():
                if hasattr(self, "_scripted_gradients"):
                    gradients = layer.gradient_forward(values, rows, gradients)
                else:
                    raise ValueError(_no_scripted_gradients())
            else:
                gradients = gradient_forward_eager(layer, values, rows, gradients)
            values = layer(values)
        return gradients

    def _supports_scripted_gradients(self) -> bool:
        return hasattr(self, "_scripted_gradients")
