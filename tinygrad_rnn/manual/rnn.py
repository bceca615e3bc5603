"""The vanilla (Elman) RNN: one step and one sequence, forward and BPTT.

Forward, for each step (row vectors, PyTorch's layout; G = 1):

    a_t = x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh
    h_t = φ(a_t),   φ = tanh or relu

Backward through time, with δ_t = dL/da_t:

    dL/dh_t = δ_{t+1} W_hh + dL/doutput_t    (the path through step t+1 plus the output path)
    δ_t = dL/dh_t ⊙ (1 − h_t²)               (tanh; relu: dL/dh_t ⊙ [h_t > 0])
    dW_ih = Σ_t δ_tᵀ x_t,   dW_hh = Σ_t δ_tᵀ h_{t−1},   db_ih = db_hh = Σ_t Σ_n δ_t,   dx_t = δ_t W_ih

In the notes' column-vector letters h_t = tanh(U x_t + W h_{t−1} + b): U = weight_ih, W = weight_hh,
b = b_ih + b_hh (PyTorch keeps two biases; their gradients are equal), and the notes'
dL/dW = Σ_t diag(1 − h_t²) dL/dh_t h_{t−1}ᵀ is the row form dW_hh above.  (One of the notes swaps the
letters, H_t = f(W X_t + U H_{t−1} + b); the names weight_ih / weight_hh are unambiguous.)
"""

from functools import partial
from typing import Any, NamedTuple

import numpy as np

from .cell import Cell, Params, StepCache, cell_step_backward, cell_step_forward
from .gated import gated_cell
from .gemm import linear
from .rnn_fused import rnn_kernel
from .sequence import BPTTSteps, SequenceCache, layer_forward, sequence_backward

NONLINEARITIES = ("tanh", "relu")


class RNNStep(NamedTuple):
    """The recurrent part of one step: its input and output states and W_hh."""

    h_prev: np.ndarray
    h: np.ndarray
    weight_hh: np.ndarray
    nonlinearity: str


def _forward(gx: np.ndarray, state: tuple[np.ndarray, ...], params: Params, nonlinearity: str):
    (h_prev,) = state
    a = gx + linear(h_prev, params["weight_hh"], params.get("bias_hh"))
    h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
    return (h,), RNNStep(h_prev=h_prev, h=h, weight_hh=params["weight_hh"], nonlinearity=nonlinearity)


def _backward(dstate: tuple[np.ndarray, ...], step: RNNStep):
    (dh,) = dstate
    da = dh * (1 - step.h * step.h) if step.nonlinearity == "tanh" else dh * (step.h > 0)
    dh_prev = da @ step.weight_hh
    return da, (dh_prev,), da


def rnn_cell(nonlinearity: str = "tanh") -> Cell:
    """The RNN recurrence as a `Cell` (G = 1), for the sequence loop and the stacks."""
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"rnn: expected nonlinearity in {NONLINEARITIES}, got {nonlinearity!r}")
    cell = gated_cell("rnn", 1, ("h",), partial(_forward, nonlinearity=nonlinearity), _backward)
    return cell._replace(fused=rnn_kernel(nonlinearity))


def rnn_step_forward(
    x_t: np.ndarray, h_prev: np.ndarray, params: Params, nonlinearity: str = "tanh"
) -> tuple[np.ndarray, StepCache]:
    """h = φ(x_t W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh).   x_t: (N, D), h_prev: (N, H) → h: (N, H)."""
    (h,), cache = cell_step_forward(rnn_cell(nonlinearity), x_t, (h_prev,), params)
    return h, cache


def rnn_step_backward(dh: np.ndarray, cache: StepCache) -> tuple[np.ndarray, np.ndarray, Params]:
    """δ = dh ⊙ φ'(a);  dW_ih = δᵀ x_t;  dW_hh = δᵀ h_prev;  db = Σ_n δ;  dx = δ W_ih;  dh_prev = δ W_hh."""
    dx, (dh_prev,), dparams = cell_step_backward((dh,), cache)
    return dx, dh_prev, dparams


def rnn_forward(
    x: np.ndarray,
    h0: np.ndarray,
    params: Params,
    lengths: Any = None,
    reverse: bool = False,
    nonlinearity: str = "tanh",
) -> tuple[np.ndarray, np.ndarray, SequenceCache]:
    """One RNN layer over a sequence.   x: (T, N, D), h0: (N, H) → output (T, N, H), h_n (N, H).

    `lengths` (N ints, 1 ≤ L_n ≤ T) and `reverse` follow PyTorch's packed sequences (see `sequence`).
    """
    output, (h_n,), cache = layer_forward(rnn_cell(nonlinearity), x, (h0,), params, lengths, reverse)
    return output, h_n, cache


def rnn_backward(
    doutput: np.ndarray, dh_n: np.ndarray | None, cache: SequenceCache, return_steps: bool = False
) -> tuple[np.ndarray, np.ndarray, Params] | tuple[np.ndarray, np.ndarray, Params, BPTTSteps]:
    """BPTT: (dx (T, N, D), dh0 (N, H), dparams); dh_n may be None (zeros).

    With `return_steps` a fourth element, `BPTTSteps`, holds dL/dh_t for every step and each step's
    contribution to every shared parameter's gradient.
    """
    dx, (dh0,), dparams, steps = sequence_backward(doutput, (dh_n,), cache, return_steps)
    return (dx, dh0, dparams, steps) if return_steps else (dx, dh0, dparams)
