"""The GRU (reset_after=True) over a whole sequence as one kernel (see fused.py; equations in gru.py).

Forward, with the r and z rows halved (s = ½ on r, z and 1 on n) and b_hh's r, z rows in the projection:

    gx_t = s ⊙ (x_t W_ihᵀ + b_ih + [b_hr | b_hz | 0]);   gh_t = h_{t−1} (s ⊙ W_hh)ᵀ
    [r | z] = ½ tanh(gx_rz + gh_rz) + ½;   hn_t = gh_n + b_hn;   n = tanh(gx_n + r ⊙ hn_t)
    h_t = (h_{t−1} − n) ⊙ z + n

Backward: the local derivatives for all steps at once,

    k_n = (1 − z)(1 − n²),   k_z = (h_{t−1} − n) z(1 − z),   k_r = hn_t r(1 − r)

then per step, from the last:  dh += doutput_t;  da_n = dh ⊙ k_n;  dgh = [da_n ⊙ k_r | dh ⊙ k_z | da_n ⊙ r];
dgx = [dgh_r | dgh_z | da_n];  dh ← dh ⊙ z + dgh W_hh.
"""

from typing import Any, NamedTuple

import numpy as np

from .cell import Params, State
from .fused import Kernel, gate_scale, project_scaled, summed_bias


class GRURecord(NamedTuple):
    gates: np.ndarray  # (T, N, 3H) r|z|n
    hs: np.ndarray  # (T+1, N, H)
    hn: np.ndarray  # (T, N, H) h_{t−1} W_hnᵀ + b_hn
    weight_hh: np.ndarray


def forward(x: np.ndarray, state0: State, params: Params) -> tuple[State, State, GRURecord]:
    (h0,) = state0
    steps, batch, _ = x.shape
    hidden = h0.shape[-1]
    scale = gate_scale(3, hidden, (2,), params["weight_hh"].dtype)
    gates = project_scaled(x, params, scale, summed_bias(params, scale, slice(0, 2 * hidden)))
    dtype = np.result_type(gates, h0)
    gates = gates.astype(dtype, copy=False)
    weight_hh_t = np.ascontiguousarray((params["weight_hh"] * scale[:, None]).T)
    bias_hn = params["bias_hh"][2 * hidden :] if "bias_hh" in params else np.zeros(hidden, dtype)
    hs = np.empty((steps + 1, batch, hidden), dtype=dtype)
    hn = np.empty((steps, batch, hidden), dtype=dtype)
    hs[0] = h0
    rz, n = gates[..., : 2 * hidden], gates[..., 2 * hidden :]
    for t in range(steps):
        rz_t, n_t, hn_t, h_t = rz[t], n[t], hn[t], hs[t + 1]
        gh = hs[t] @ weight_hh_t
        np.add(gh[:, 2 * hidden :], bias_hn, out=hn_t)
        rz_t += gh[:, : 2 * hidden]
        np.tanh(rz_t, out=rz_t)
        rz_t *= 0.5
        rz_t += 0.5
        n_t += rz_t[:, :hidden] * hn_t
        np.tanh(n_t, out=n_t)
        np.subtract(hs[t], n_t, out=h_t)
        h_t *= rz_t[:, hidden:]
        h_t += n_t
    return (hs,), (hs[-1],), GRURecord(gates, hs, hn, params["weight_hh"])


def backward(dy: np.ndarray, dstate_n: State, record: GRURecord, keep: bool) -> tuple[Any, ...]:
    gates, hs, hn = record.gates, record.hs, record.hn
    steps, batch, hidden = hn.shape
    r, z, n = (gates[..., k * hidden : (k + 1) * hidden] for k in range(3))
    to_n = (1 - z) * (1 - n * n)
    to_z = (hs[:-1] - n) * z * (1 - z)
    to_r = hn * r * (1 - r)
    dgh = np.empty_like(gates)
    da_n = np.empty((steps, batch, hidden), dtype=gates.dtype)
    dh = dstate_n[0].astype(gates.dtype, copy=True)
    flows = np.empty((2, steps, batch, hidden), dtype=gates.dtype) if keep else None
    for t in reversed(range(steps)):
        da_n_t, dgh_t = da_n[t], dgh[t]
        dh += dy[t]
        if keep:
            flows[0, t] = dh
        np.multiply(dh, to_n[t], out=da_n_t)
        np.multiply(da_n_t, to_r[t], out=dgh_t[:, :hidden])
        np.multiply(dh, to_z[t], out=dgh_t[:, hidden : 2 * hidden])
        np.multiply(da_n_t, r[t], out=dgh_t[:, 2 * hidden :])
        dh *= z[t]
        dh += dgh_t @ record.weight_hh
        if keep:
            flows[1, t] = dh
    dgx = np.concatenate([dgh[..., : 2 * hidden], da_n], axis=-1)
    dflows = ((flows[0],), (flows[1],)) if keep else (None, None)
    return dgx, dgh, (dh,), *dflows


GRU_KERNEL = Kernel(forward, backward, applies=lambda params: True)
