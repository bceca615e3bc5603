"""Adagrad: per-element step sizes from the running sum of squared gradients (torch.optim.Adagrad)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, buffer, check_range, count_step


class Adagrad(Optimizer):
    """s ← s + g² (s starts at initial_accumulator_value), θ ← θ − lr/(1 + (t − 1)·lr_decay) · g/(√s + ε);
    g includes λ·θ for weight decay λ."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "eps": eps,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def check_options(self, options: dict[str, Any]) -> None:
        super().check_options(options)
        for key in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_range("Adagrad", key, options[key], 0.0)

    def state_keys(self, group: dict[str, Any]) -> set[str]:
        return {"step", "sum"}

    def update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        step = count_step(state)
        total = buffer(state, "sum", param, group["initial_accumulator_value"])
        total += grad * grad
        lr = group["lr"] / (1.0 + (step - 1) * group["lr_decay"])
        param -= lr * (grad / (np.sqrt(total) + group["eps"]))
