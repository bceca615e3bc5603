"""Central finite differences in float64, on plain numpy arrays.

Used by `gradcheck` (autograd side) and by the tests of `manual` (which never sees a Tensor).
"""

from collections.abc import Callable

import numpy as np


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """dL/dx by central differences: (f(x + eps e_i) - f(x - eps e_i)) / 2 eps for every element i.

    `f` reads `x` (a float64 array) each time it is called; `x` is perturbed in place one element
    at a time and restored exactly before returning.
    """
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient: expected a float64 array, got {x.dtype}")
    if not x.flags.c_contiguous:
        raise ValueError("numerical_gradient: expected a C-contiguous array (it is perturbed in place)")
    grad = np.zeros_like(x)
    flat, flat_grad = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        f_plus = float(f())
        flat[i] = original - eps
        f_minus = float(f())
        flat[i] = original
        flat_grad[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad
