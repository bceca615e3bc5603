"""Gradient clipping, in place on the parameters' `.grad` (torch.nn.utils' names and semantics)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ...tensor import Tensor


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0) -> float:
    """Scale all gradients together so their joint norm is at most `max_norm`; return the norm before.

    total = ‖(‖g_1‖_p, ‖g_2‖_p, ...)‖_p (the p-norm of all gradients seen as one vector; p = inf is
    the largest |g|). With coef = max_norm / (total + 1e-6), every gradient is multiplied by coef
    when coef < 1. Parameters whose grad is None are skipped; with none, the norm is 0.
    """
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be non-negative, got {max_norm!r}")
    if not (norm_type == math.inf or norm_type > 0):
        raise ValueError(f"clip_grad_norm_: norm_type must be positive or inf, got {norm_type!r}")
    grads = _grads("clip_grad_norm_", parameters)
    if not grads:
        return 0.0
    norms = [np.linalg.norm(g.reshape(-1), ord=norm_type) for g in grads]
    total = float(np.linalg.norm(np.array(norms, dtype=np.float64), ord=norm_type))
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads:
            g *= coef
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into [−clip_value, clip_value], in place."""
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be non-negative, got {clip_value!r}")
    for g in _grads("clip_grad_value_", parameters):
        np.clip(g, -clip_value, clip_value, out=g)


def _grads(op: str, parameters: Tensor | Iterable[Tensor]) -> list[np.ndarray]:
    """The raw gradient arrays of the parameters that have one (validated before any is touched)."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: expected Tensors, parameter {i} is {type(p).__name__}")
    return [p.grad.data for p in params if p.grad is not None]
