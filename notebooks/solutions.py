"""Reference solutions to the notebooks' exercises (try them first!).

Each backward takes the cache of the step_forward shown in its notebook; `exercises.py` falls back to
these when the reader's version is missing or wrong, and the tests check that they pass.
"""

from collections.abc import Callable

import numpy as np


def central_difference(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Notebook 1: ∂f/∂x_i ≈ (f(x + ε e_i) − f(x − ε e_i)) / 2ε for every element i; x is restored."""
    grad = np.zeros_like(x, dtype=float)
    for i in np.ndindex(x.shape):
        kept = x[i]
        x[i] = kept + eps
        up = f(x)
        x[i] = kept - eps
        down = f(x)
        x[i] = kept
        grad[i] = (up - down) / (2 * eps)
    return grad


def rnn_step_backward(dh, cache):
    """Notebook 2: δ = dh ⊙ (1 − h²); dW_ih = δᵀx, dW_hh = δᵀh_prev, db = Σδ; dx = δW_ih, dh_prev = δW_hh."""
    x, h_prev, h, p = cache
    delta = dh * (1 - h**2)
    dparams = {
        "weight_ih": delta.T @ x,
        "weight_hh": delta.T @ h_prev,
        "bias_ih": delta.sum(axis=0),
        "bias_hh": delta.sum(axis=0),
    }
    return delta @ p["weight_ih"], delta @ p["weight_hh"], dparams


def lstm_step_backward(dstate, cache):
    """Notebook 3: back through h = o ⊙ tanh c and c = f ⊙ c_prev + i ⊙ g, then the gates' sigmoids/tanh."""
    dh, dc = dstate
    x, h_prev, c_prev, i, f, g, o, tanh_c, p = cache
    do = dh * tanh_c
    dc = dc + dh * o * (1 - tanh_c**2)
    di, df, dg = dc * g, dc * c_prev, dc * i
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)], axis=1)
    dparams = {
        "weight_ih": da.T @ x,
        "weight_hh": da.T @ h_prev,
        "bias_ih": da.sum(axis=0),
        "bias_hh": da.sum(axis=0),
    }
    return da @ p["weight_ih"], (da @ p["weight_hh"], dc * f), dparams


def peephole_step_backward(dstate, cache):
    """Notebook 6: the peephole LSTM's step, backward lines mirroring the forward ones in reverse."""
    dh, dc = dstate
    x, h_prev, c_prev, i, f, g, o, c, tanh_c, p = cache
    da_o = dh * tanh_c * o * (1 - o)
    dc = dc + dh * o * (1 - tanh_c**2) + da_o * p["peep_o"]
    da_i, da_f, da_g = dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g**2)
    dc_prev = dc * f + da_i * p["peep_i"] + da_f * p["peep_f"]
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)
    dparams = {
        "weight_ih": da.T @ x,
        "weight_hh": da.T @ h_prev,
        "bias": da.sum(axis=0),
        "peep_i": (da_i * c_prev).sum(axis=0),
        "peep_f": (da_f * c_prev).sum(axis=0),
        "peep_o": (da_o * c).sum(axis=0),
    }
    return da @ p["weight_ih"], (da @ p["weight_hh"], dc_prev), dparams
