"""The LSTM over a whole sequence as one kernel (see fused.py; the equations are lstm.py's).

Forward, a_t the gate pre-activations with the sigmoid rows halved (s = ½ on i, f, o and 1 on g):

    a_t = s ⊙ (x_t W_ihᵀ + b_ih + b_hh) + h_{t−1} (s ⊙ W_hh)ᵀ;   [i|f|g|o] = s ⊙ tanh(a_t) + (1 − s)
    c_t = f ⊙ c_{t−1} + i ⊙ g;   h_t = o ⊙ tanh(c_t)

Backward: the local derivatives for all steps at once,

    k_t = o ⊙ (1 − tanh²c_t)                       (dL/dc_t gets dL/dh_t ⊙ k_t)
    D_t = [g ⊙ i(1 − i) | c_{t−1} ⊙ f(1 − f) | i ⊙ (1 − g²) | tanh c_t ⊙ o(1 − o)]

then per step, from the last:  dh += doutput_t;  dc += dh ⊙ k_t;  δ_t = D_t ⊙ [dc | dc | dc | dh];
dc ← dc ⊙ f;  dh ← δ_t W_hh   (δ_t is both the input's and W_hh's delta).
"""

from typing import Any, NamedTuple

import numpy as np

from .cell import Params, State
from .fused import Kernel, gate_scale, project_scaled, summed_bias


class LSTMRecord(NamedTuple):
    gates: np.ndarray  # (T, N, 4H) i|f|g|o
    hs: np.ndarray  # (T+1, N, H)
    cs: np.ndarray  # (T+1, N, H)
    tanh_c: np.ndarray  # (T, N, H)
    weight_hh: np.ndarray


def forward(x: np.ndarray, state0: State, params: Params) -> tuple[State, State, LSTMRecord]:
    h0, c0 = state0
    steps, batch, _ = x.shape
    hidden = h0.shape[-1]
    scale = gate_scale(4, hidden, (2,), params["weight_hh"].dtype)
    gates = project_scaled(x, params, scale, summed_bias(params, scale))
    dtype = np.result_type(gates, h0, c0)
    gates = gates.astype(dtype, copy=False)
    weight_hh_t = np.ascontiguousarray((params["weight_hh"] * scale[:, None]).T)
    shift = 1 - scale
    hs, cs = np.empty((2, steps + 1, batch, hidden), dtype=dtype)
    tanh_c = np.empty((steps, batch, hidden), dtype=dtype)
    hs[0], cs[0] = h0, c0
    i, f, g, o = (gates[..., k * hidden : (k + 1) * hidden] for k in range(4))
    for t in range(steps):
        a, c, tanh_c_t = gates[t], cs[t + 1], tanh_c[t]
        a += hs[t] @ weight_hh_t
        np.tanh(a, out=a)
        a *= scale
        a += shift
        np.multiply(f[t], cs[t], out=c)
        c += i[t] * g[t]
        np.tanh(c, out=tanh_c_t)
        np.multiply(o[t], tanh_c_t, out=hs[t + 1])
    record = LSTMRecord(gates, hs, cs, tanh_c, params["weight_hh"])
    return (hs, cs), (hs[-1], cs[-1]), record


def backward(dy: np.ndarray, dstate_n: State, record: LSTMRecord, keep: bool) -> tuple[Any, ...]:
    gates, cs, tanh_c = record.gates, record.cs, record.tanh_c
    steps, batch, hidden = tanh_c.shape
    i, f, g, o = (gates[..., k * hidden : (k + 1) * hidden] for k in range(4))
    to_c = o * (1 - tanh_c * tanh_c)
    delta = np.empty_like(gates)
    delta[..., :hidden] = g * i * (1 - i)
    delta[..., hidden : 2 * hidden] = cs[:-1] * f * (1 - f)
    delta[..., 2 * hidden : 3 * hidden] = i * (1 - g * g)
    delta[..., 3 * hidden :] = tanh_c * o * (1 - o)
    by_gate = delta.reshape(steps, batch, 4, hidden)
    dh, dc = (d.astype(gates.dtype, copy=True) for d in dstate_n)
    flows = np.empty((4, steps, batch, hidden), dtype=gates.dtype) if keep else None
    for t in reversed(range(steps)):
        dh += dy[t]
        if keep:
            flows[0, t], flows[1, t] = dh, dc
        dc += dh * to_c[t]
        gate_t = by_gate[t]
        gate_t[:, :3] *= dc[:, None]
        gate_t[:, 3] *= dh
        dc *= f[t]
        dh = delta[t] @ record.weight_hh
        if keep:
            flows[2, t], flows[3, t] = dh, dc
    dflows = ((flows[0], flows[1]), (flows[2], flows[3])) if keep else (None, None)
    return delta, delta, (dh, dc), *dflows


LSTM_KERNEL = Kernel(forward, backward, applies=lambda params: "weight_hr" not in params)
