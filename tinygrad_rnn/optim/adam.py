"""Adam (L2 weight decay in the gradient) and AdamW (decoupled weight decay), as torch.optim."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, buffer, check_range, count_step


class Adam(Optimizer):
    """m ← β₁·m + (1 − β₁)·g, v ← β₂·v + (1 − β₂)·g², v̂ = max(v̂, v) with amsgrad (else v̂ = v),
    θ ← θ − lr/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + ε); g includes λ·θ for weight decay λ."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def check_options(self, options: dict[str, Any]) -> None:
        super().check_options(options)
        name = type(self).__name__
        betas = options["betas"]
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        check_range(name, "betas[0]", betas[0], 0.0, 1.0)
        check_range(name, "betas[1]", betas[1], 0.0, 1.0)
        check_range(name, "eps", options["eps"], 0.0)
        check_range(name, "weight_decay", options["weight_decay"], 0.0)

    def state_keys(self, group: dict[str, Any]) -> set[str]:
        return {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if group["amsgrad"] else set())

    def update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        beta1, beta2 = group["betas"]
        step = count_step(state)
        exp_avg = buffer(state, "exp_avg", param)
        exp_avg_sq = buffer(state, "exp_avg_sq", param)
        exp_avg *= beta1
        exp_avg += (1.0 - beta1) * grad
        exp_avg_sq *= beta2
        exp_avg_sq += (1.0 - beta2) * grad * grad
        second_moment = exp_avg_sq
        if group["amsgrad"]:
            second_moment = buffer(state, "max_exp_avg_sq", param)
            np.maximum(second_moment, exp_avg_sq, out=second_moment)
        denom = np.sqrt(second_moment) / math.sqrt(1.0 - beta2**step) + group["eps"]
        param -= group["lr"] / (1.0 - beta1**step) * (exp_avg / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay: θ ← θ·(1 − lr·λ) before the Adam step (g excludes λ·θ)."""

    decoupled_weight_decay = True

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
