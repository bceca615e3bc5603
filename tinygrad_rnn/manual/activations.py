"""Pointwise nonlinearities whose derivatives are taken from their outputs."""

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^{−x}).  For x ≪ 0, e^{−x} overflows to inf and 1 / (1 + inf) = 0 is the right
    limit, so the overflow is silenced (no warning) rather than avoided.  Derivative: σ(1 − σ)."""
    with np.errstate(over="ignore"):
        sigma = np.negative(x)
        np.exp(sigma, out=sigma)
    sigma += 1
    return np.reciprocal(sigma, out=sigma)
