"""The RNN over a whole sequence as one kernel (see fused.py; the equations are rnn.py's).

Forward:   a_t = x_t W_ihᵀ + b_ih + b_hh + h_{t−1} W_hhᵀ,   h_t = φ(a_t)   (both biases in the projection)
Backward:  φ'(a_t) from the outputs for all steps at once (1 − h_t² for tanh, [h_t > 0] for relu), then
per step, from the last:  dh += doutput_t;  δ_t = dh ⊙ φ'_t;  dh ← δ_t W_hh   (δ_t is both deltas).
"""

from functools import partial
from typing import Any, NamedTuple

import numpy as np

from .cell import Params, State
from .fused import Kernel, summed_bias
from .gemm import linear


class RNNRecord(NamedTuple):
    hs: np.ndarray  # (T+1, N, H)
    weight_hh: np.ndarray
    nonlinearity: str


def forward(
    x: np.ndarray, state0: State, params: Params, nonlinearity: str
) -> tuple[State, State, RNNRecord]:
    (h0,) = state0
    steps, batch, _ = x.shape
    pre = linear(x, params["weight_ih"], summed_bias(params))
    dtype = np.result_type(pre, h0)
    pre = pre.astype(dtype, copy=False)
    weight_hh_t = np.ascontiguousarray(params["weight_hh"].T)
    hs = np.empty((steps + 1, batch, h0.shape[-1]), dtype=dtype)
    hs[0] = h0
    for t in range(steps):
        a = pre[t]
        a += hs[t] @ weight_hh_t
        if nonlinearity == "tanh":
            np.tanh(a, out=hs[t + 1])
        else:
            np.maximum(a, 0, out=hs[t + 1])
    return (hs,), (hs[-1],), RNNRecord(hs, params["weight_hh"], nonlinearity)


def backward(dy: np.ndarray, dstate_n: State, record: RNNRecord, keep: bool) -> tuple[Any, ...]:
    h = record.hs[1:]
    slope = 1 - h * h if record.nonlinearity == "tanh" else (h > 0).astype(h.dtype)
    delta = np.empty_like(h)
    dh = dstate_n[0].astype(h.dtype, copy=True)
    flows = np.empty((2, *h.shape), dtype=h.dtype) if keep else None
    for t in reversed(range(len(h))):
        dh += dy[t]
        np.multiply(dh, slope[t], out=delta[t])
        if keep:
            flows[0, t] = dh
        dh = delta[t] @ record.weight_hh
        if keep:
            flows[1, t] = dh
    dflows = ((flows[0],), (flows[1],)) if keep else (None, None)
    return delta, delta, (dh,), *dflows


def rnn_kernel(nonlinearity: str) -> Kernel:
    """The kernel for φ = tanh or relu."""
    return Kernel(partial(forward, nonlinearity=nonlinearity), backward, applies=lambda params: True)
