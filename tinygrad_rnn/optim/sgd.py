"""Stochastic gradient descent with momentum, dampening and Nesterov momentum (torch.optim.SGD)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, check_range


class SGD(Optimizer):
    """θ ← θ − lr·d with g the gradient (negated if maximize, plus λ·θ for weight decay λ):

    without momentum d = g; with momentum μ, b ← μ·b + (1 − τ)·g (b = g at the first step) and
    d = b, or d = g + μ·b with nesterov (which needs μ > 0 and dampening τ = 0).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def check_options(self, options: dict[str, Any]) -> None:
        super().check_options(options)
        for key in ("momentum", "dampening", "weight_decay"):
            check_range("SGD", key, options[key], 0.0)
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError(
                f"SGD: nesterov needs momentum > 0 and dampening = 0, got momentum={options['momentum']}, "
                f"dampening={options['dampening']}"
            )

    def state_keys(self, group: dict[str, Any]) -> set[str]:
        return {"momentum_buffer"} if group["momentum"] else set()

    def update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        momentum = group["momentum"]
        if momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = np.array(grad, dtype=param.dtype)
            else:
                state["momentum_buffer"] *= momentum
                state["momentum_buffer"] += (1.0 - group["dampening"]) * grad
            buf = state["momentum_buffer"]
            grad = grad + momentum * buf if group["nesterov"] else buf
        param -= group["lr"] * grad
