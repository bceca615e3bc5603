"""The LSTM: one step and one sequence, forward and BPTT.

Forward (PyTorch's layout; gates stacked i|f|g|o in the rows of the weights, G = 4):

    [a_i | a_f | a_g | a_o] = x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh
    i = σ(a_i),  f = σ(a_f),  g = tanh(a_g),  o = σ(a_o)
    c_t = f ⊙ c_{t−1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)                  or, with a projection (torch's proj_size P):
    h_t = r_t W_hrᵀ,  r_t = o ⊙ tanh(c_t)   weight_hr (P, H); h is (N, P), weight_hh (4H, P)

Backward, given dL/dh_t (= δ_{t+1} W_hh + output path) and dL/dc_t from step t+1:

    (projected: dr = dh W_hr, dW_hr = Σ_t dh_tᵀ r_t; below dh stands for dr)
    do = dh ⊙ tanh(c_t);    dc = dL/dc_t + dh ⊙ o ⊙ (1 − tanh²(c_t))
    df = dc ⊙ c_{t−1};  di = dc ⊙ g;  dg = dc ⊙ i;  dL/dc_{t−1} = dc ⊙ f
    δ = [di ⊙ i(1 − i) | df ⊙ f(1 − f) | dg ⊙ (1 − g²) | do ⊙ o(1 − o)]
    dh_{t−1} (recurrent part) = δ W_hh;   dW_ih = Σ_t δ_tᵀ x_t;   dW_hh = Σ_t δ_tᵀ h_{t−1}

The notes' W_i x_t + U_i h_{t−1} are the i-rows of weight_ih and weight_hh; their ĉ_t is g.
"""

from functools import partial
from typing import Any, NamedTuple

import numpy as np

from .activations import sigmoid
from .cell import Params, StepCache, cell_step_backward, cell_step_forward
from .gated import check_gate_params, gated_cell, gather, plain_weight_hh_grad
from .gemm import linear, outer
from .lstm_fused import LSTM_KERNEL
from .sequence import BPTTSteps, SequenceCache, layer_forward, sequence_backward

Pair = tuple[np.ndarray, np.ndarray]


class LSTMStep(NamedTuple):
    """The recurrent part of one step: previous state, gate activations, tanh(c), W_hh, and with a
    projection r = o ⊙ tanh(c) and W_hr (None without)."""

    h_prev: np.ndarray
    c_prev: np.ndarray
    i: np.ndarray
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray
    tanh_c: np.ndarray
    weight_hh: np.ndarray
    r: np.ndarray
    weight_hr: np.ndarray | None


def _forward(gx: np.ndarray, state: tuple[np.ndarray, ...], params: Params):
    h_prev, c_prev = state
    a = gx + linear(h_prev, params["weight_hh"], params.get("bias_hh"))
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=-1)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    r = o * tanh_c
    weight_hr = params.get("weight_hr")
    h = r if weight_hr is None else linear(r, weight_hr)
    step = LSTMStep(h_prev, c_prev, i, f, g, o, tanh_c, params["weight_hh"], r, weight_hr)
    return (h, c), step


def _backward(dstate: tuple[np.ndarray, ...], step: LSTMStep):
    """(δ, (dh_prev, dc_prev), dh): δ is both the input's and W_hh's delta; dh (on the projected h)
    is the step's part for dW_hr."""
    dh_out, dc = dstate
    dh = dh_out if step.weight_hr is None else dh_out @ step.weight_hr
    do = dh * step.tanh_c
    dtanh_c = dh * step.o
    dc = dc + dtanh_c * (1 - step.tanh_c * step.tanh_c)
    df, dc_prev, di, dg = dc * step.c_prev, dc * step.f, dc * step.g, dc * step.i
    da_i, da_f = di * step.i * (1 - step.i), df * step.f * (1 - step.f)
    da_g, da_o = dg * (1 - step.g * step.g), do * step.o * (1 - step.o)
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=-1)
    dh_prev = da @ step.weight_hh
    return da, (dh_prev, dc_prev), dh_out


def _gather(x: np.ndarray, params: Params, das: list, dhs: list, steps: list, per_step: bool):
    """The gated cells' gather with δ_t as both deltas, plus dW_hr = Σ_t dh_tᵀ r_t when projected."""
    dx, grads, by_step = gather(x, params, das, das, steps, per_step, weight_hh_grad=plain_weight_hh_grad)
    if "weight_hr" in params:
        dh, r = np.stack(dhs), np.stack([s.r for s in steps])
        grads["weight_hr"] = outer(dh, r)
        if by_step is not None:
            by_step["weight_hr"] = outer(dh, r, per_step=True)
    return dx, grads, by_step


LSTM_CELL = gated_cell("lstm", 4, ("h", "c"), _forward, _backward)._replace(
    gather=_gather,
    check=partial(check_gate_params, name="lstm", gates=4, projection=True),
    fused=LSTM_KERNEL,
)


def lstm_step_forward(x_t: np.ndarray, state: Pair, params: Params) -> tuple[Pair, StepCache]:
    """((h, c), cache) for one step.   x_t: (N, D), state = (h_prev, c_prev), each (N, H) (h (N, P)
    when params hold a projection weight_hr (P, H))."""
    (h, c), cache = cell_step_forward(LSTM_CELL, x_t, tuple(state), params)
    return (h, c), cache


def lstm_step_backward(dstate: Pair, cache: StepCache) -> tuple[np.ndarray, Pair, Params]:
    """(dx, (dh_prev, dc_prev), dparams) from (dh, dc) = (dL/dh, dL/dc) of this step's outputs."""
    dx, (dh_prev, dc_prev), dparams = cell_step_backward(tuple(dstate), cache)
    return dx, (dh_prev, dc_prev), dparams


def lstm_forward(
    x: np.ndarray, state0: Pair, params: Params, lengths: Any = None, reverse: bool = False
) -> tuple[np.ndarray, Pair, SequenceCache]:
    """One LSTM layer.   x: (T, N, D), (h0, c0) each (N, H) → output (T, N, H), (h_n, c_n).

    `lengths` and `reverse` follow PyTorch's packed sequences (see `sequence`).
    """
    output, (h_n, c_n), cache = layer_forward(LSTM_CELL, x, tuple(state0), params, lengths, reverse)
    return output, (h_n, c_n), cache


def lstm_backward(
    doutput: np.ndarray, dstate_n: Pair | None, cache: SequenceCache, return_steps: bool = False
) -> tuple[np.ndarray, Pair, Params] | tuple[np.ndarray, Pair, Params, BPTTSteps]:
    """BPTT: (dx, (dh0, dc0), dparams); dstate_n = (dh_n, dc_n), either (or the pair) may be None.

    With `return_steps` a fourth element, `BPTTSteps`, holds dL/dh_t per step and each step's
    contribution to every shared parameter's gradient.
    """
    dh_n, dc_n = (None, None) if dstate_n is None else dstate_n
    dx, (dh0, dc0), dparams, steps = sequence_backward(doutput, (dh_n, dc_n), cache, return_steps)
    return (dx, (dh0, dc0), dparams, steps) if return_steps else (dx, (dh0, dc0), dparams)
