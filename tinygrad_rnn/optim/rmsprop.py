"""RMSprop, optionally centered and with momentum (torch.optim.RMSprop)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, buffer, check_range, count_step


class RMSprop(Optimizer):
    """v ← α·v + (1 − α)·g²; centered: ḡ ← α·ḡ + (1 − α)·g and a = √(v − ḡ²) + ε, else a = √v + ε;
    θ ← θ − lr·g/a, or with momentum μ: b ← μ·b + g/a, θ ← θ − lr·b. g includes λ·θ (weight decay)."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "centered": centered,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def check_options(self, options: dict[str, Any]) -> None:
        super().check_options(options)
        for key in ("alpha", "eps", "weight_decay", "momentum"):
            check_range("RMSprop", key, options[key], 0.0)

    def state_keys(self, group: dict[str, Any]) -> set[str]:
        keys = {"step", "square_avg"} | ({"grad_avg"} if group["centered"] else set())
        return keys | ({"momentum_buffer"} if group["momentum"] > 0 else set())

    def update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        alpha = group["alpha"]
        count_step(state)
        square_avg = buffer(state, "square_avg", param)
        square_avg *= alpha
        square_avg += (1.0 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = buffer(state, "grad_avg", param)
            grad_avg *= alpha
            grad_avg += (1.0 - alpha) * grad
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += group["eps"]
        if group["momentum"] > 0:
            buf = buffer(state, "momentum_buffer", param)
            buf *= group["momentum"]
            buf += grad / avg
            param -= group["lr"] * buf
        else:
            param -= group["lr"] * (grad / avg)
