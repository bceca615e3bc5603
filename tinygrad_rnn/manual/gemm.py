"""The matrix products every manual layer is built from, each one GEMM over all leading axes.

A recurrent layer's input projection, its weight gradients and a decoder over time all have the
form (..., D) × (G, D)ᵀ or Σ (..., G)ᵀ (..., D); flattening the leading (time, batch) axes turns each
into a single matrix product instead of one per step.
"""

import numpy as np


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """y = x Wᵀ + b.   x: (..., D), weight: (G, D), bias: (G,) or None  →  y: (..., G)."""
    y = x.reshape(-1, x.shape[-1]) @ weight.T
    if bias is not None:
        y = y + bias
    return y.reshape(*x.shape[:-1], weight.shape[0])


def linear_input_grad(dy: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """dx = dy W for y = x Wᵀ + b.   dy: (..., G), weight: (G, D)  →  dx: (..., D)."""
    return (dy.reshape(-1, dy.shape[-1]) @ weight).reshape(*dy.shape[:-1], weight.shape[1])


def outer(d: np.ndarray, a: np.ndarray, per_step: bool = False) -> np.ndarray:
    """dW = Σ dᵀ a over every leading axis: (..., G), (..., D) → (G, D).

    With `per_step` the first (time) axis is kept: (T, N, G), (T, N, D) → (T, G, D), the
    contribution of each step; summing it over axis 0 gives the plain result.
    """
    if per_step:
        return np.einsum("tng,tnd->tgd", d, a)
    return d.reshape(-1, d.shape[-1]).T @ a.reshape(-1, a.shape[-1])


def column_sum(d: np.ndarray, per_step: bool = False) -> np.ndarray:
    """db = Σ d over every leading axis: (..., G) → (G,); with `per_step` (T, N, G) → (T, G)."""
    if per_step:
        return d.sum(axis=1)
    return d.reshape(-1, d.shape[-1]).sum(axis=0)
