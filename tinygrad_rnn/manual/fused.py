"""Whole-sequence kernels: the built-in RNN, LSTM and GRU run over all steps at once, written for speed.

The step pairs (rnn.py, lstm.py, gru.py) are the readable derivation and what a single step runs; a layer-
direction without lengths runs the same equations as one kernel instead (`Cell.fused`), which is what
hand-written numpy looks like when timed:

- states live in preallocated (T+1, N, H) buffers, updated in place (no per-step arrays or records);
- the sigmoid gates' rows of the weights are halved once, so one tanh per step gives every gate:
  σ(a) = ½ tanh(a/2) + ½ (exact halving; the same σ to rounding);
- both biases are added in the input projection, one GEMM over all steps (GRU's b_hn stays inside
  r ⊙ (…), so it is added per step);
- the backward's local derivatives (the factors that multiply dL/dh_t and dL/dc_t) are computed for
  all steps at once after the forward, so the backward loop only carries the two gradients;
- the weights' gradients are one GEMM each over the stacked deltas (gated.py's `param_grads`).

With lengths (masks), a projected LSTM (weight_hr) or the GRU with reset_after=False the step path runs.

A kernel works in processing order (x reversed for the reverse direction); `fused_forward` and
`fused_backward` turn its results into time order, the output, the gradients and the per-step records
(`BPTTSteps`) that the step path gives too.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .cell import Params, State
from .gated import param_grads
from .gemm import linear, linear_input_grad, outer


class Kernel(NamedTuple):
    """forward(x, state0, params) → (states, state_n, record), `states` one (T+1, N, w) buffer per state
    array with [0] the initial state and [t+1] the state after step t (states[0] holds h);
    backward(dy, dstate_n, record, keep) → (dgx, dgh, dstate0, dstates, dprevs), dgx and dgh the
    deltas of the input-side and hidden-side pre-activations (T, N, G·H); with `keep`, dstates and
    dprevs hold per step the gradient the step received and the one it sent to its previous state,
    else None.  `applies(params)` says whether the kernel handles these parameters."""

    forward: Callable[[np.ndarray, State, Params], tuple[np.ndarray, State, Any]]
    backward: Callable[[np.ndarray, State, Any, bool], tuple[Any, ...]]
    applies: Callable[[Params], bool]


class FusedRecord(NamedTuple):
    """A fused layer-direction's forward: the kernel's own record, h_{t−1} per step (time order),
    and the state each step started from (per array, time order)."""

    kernel: Kernel
    core: Any
    h_prev: np.ndarray
    states_in: State


def gate_scale(gates: int, hidden: int, tanh_gates: tuple[int, ...], dtype: Any) -> np.ndarray:
    """(G·H,) ½ on the sigmoid gates' rows and 1 on the tanh gates' rows: tanh(scale ⊙ a) gives all."""
    scale = np.full(gates * hidden, 0.5, dtype=dtype)
    for gate in tanh_gates:
        scale[gate * hidden : (gate + 1) * hidden] = 1
    return scale


def in_order(a: np.ndarray, reverse: bool) -> np.ndarray:
    """Time order ↔ processing order along the first axis."""
    return a[::-1] if reverse else a


def fused_forward(
    kernel: Kernel, x: np.ndarray, state0: State, params: Params, reverse: bool
) -> tuple[np.ndarray, State, FusedRecord]:
    """(output (T, N, H), final state, record) of one layer-direction through `kernel`."""
    states, state_n, core = kernel.forward(in_order(x, reverse), state0, params)
    states_in = tuple(in_order(s[:-1], reverse) for s in states)
    # the caller gets copies: changing them must not change what the backward reads
    output, state_n = np.array(in_order(states[0][1:], reverse)), tuple(s.copy() for s in state_n)
    return output, state_n, FusedRecord(kernel, core, states_in[0], states_in)


def fused_backward(
    doutput: np.ndarray,
    dstate_n: State,
    x: np.ndarray,
    params: Params,
    record: FusedRecord,
    reverse: bool,
    keep: bool,
) -> tuple[np.ndarray, State, Params, Params | None, tuple[State, State] | None]:
    """(dx, dstate0, dparams, per-step dparams or None, (dstates, dprevs) in time order or None)."""
    dgx, dgh, dstate0, dstates, dprevs = record.kernel.backward(
        in_order(doutput, reverse), dstate_n, record.core, keep
    )
    dgx, dgh = in_order(dgx, reverse), in_order(dgh, reverse)
    dx = linear_input_grad(dgx, params["weight_ih"])
    grads = param_grads(params, x, dgx, dgh, outer(dgh, record.h_prev), False)
    if not keep:
        return dx, dstate0, grads, None, None
    by_step = param_grads(params, x, dgx, dgh, outer(dgh, record.h_prev, per_step=True), True)
    flows = (tuple(in_order(d, reverse) for d in dstates), tuple(in_order(d, reverse) for d in dprevs))
    return dx, dstate0, grads, by_step, flows


def summed_bias(params: Params, scale: Any = 1, hidden_rows: slice = slice(None)) -> np.ndarray | None:
    """scale ⊙ (b_ih + b_hh[hidden_rows]) for the input projection, or None without biases."""
    if "bias_ih" not in params:
        return None
    bias = params["bias_ih"].copy()
    bias[hidden_rows] += params["bias_hh"][hidden_rows]
    return bias * scale


def project_scaled(x: np.ndarray, params: Params, scale: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """scale ⊙ (x W_ihᵀ + b) for every step, (T, N, G·H), in the dtype the state will have."""
    return linear(x, params["weight_ih"] * scale[:, None], bias)
