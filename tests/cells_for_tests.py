"""The example cells of tinygrad_rnn.nn.examples (a peephole LSTM and an IndRNN, plain Tensor ops), as a
file the tests load the way a user's cell is loaded: `--cell tests/cells_for_tests.py:PeepholeLSTMCell`;
and the IndRNN's hand-written step pair, shared by the manual and compare tests."""

import numpy as np

from tinygrad_rnn.nn.examples import IndRNNCell, PeepholeLSTMCell

__all__ = ["IndRNNCell", "PeepholeLSTMCell", "indrnn_step_backward", "indrnn_step_forward"]


def indrnn_step_forward(x, h_prev, p):
    """h = relu(x W_ihᵀ + b + u ⊙ h_prev), u = weight_hh a vector (H,)."""
    h = np.maximum(x @ p["weight_ih"].T + p["bias"] + p["weight_hh"] * h_prev, 0)
    return h, (x, h_prev, h, p)


def indrnn_step_backward(dh, cache):
    """da = dh ⊙ [h > 0]; dW_ih = daᵀ x, db = Σ da, du = Σ da ⊙ h_prev; dx = da W_ih, dh_prev = da ⊙ u."""
    x, h_prev, h, p = cache
    da = dh * (h > 0)
    dparams = {"weight_ih": da.T @ x, "bias": da.sum(axis=0), "weight_hh": (da * h_prev).sum(axis=0)}
    return da @ p["weight_ih"], da * p["weight_hh"], dparams
