"""Pointwise nonlinearities whose derivatives are taken from their outputs."""

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^{−x}), evaluated without overflow: with e = e^{−|x|} ∈ (0, 1],
    σ(x) = 1 / (1 + e) for x ≥ 0 and e / (1 + e) for x < 0.  Derivative: σ(1 − σ)."""
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)
    sigma = np.maximum(e, x >= 0)  # the numerator: 1 where x ≥ 0, e where x < 0 (e ≤ 1)
    e += 1
    sigma /= e
    return sigma
