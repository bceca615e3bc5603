"""What the built-in RNN, LSTM and GRU share: gate pre-activations with an input projection.

Every built-in cell's gate pre-activations are  x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh  (row vectors,
G gates of width H stacked in the rows of the weights).  As a `Cell` (cell.py):

    project:   u = gx = x W_ihᵀ + b_ih                 all steps in one GEMM, (T·N, D) × (D, G·H)
    forward:   the recurrence on gx_t                  (rnn.py, lstm.py, gru.py)
    backward:  (dgx_t, dstate_prev, dgh_t)             dgh_t = dL/d(gh_t), gh_t = (hidden input) W_hhᵀ + b_hh
    gather:    dx = dgx W_ih and the weights' gradients, sums over time as single GEMMs:

    dW_ih = Σ_t dgx_tᵀ x_t,   db_ih = Σ_t Σ_n dgx_t,   dW_hh = Σ_t dgh_tᵀ h_{t−1},   db_hh = Σ_t Σ_n dgh_t.

(GRU with reset_after=False multiplies W_hn by r ⊙ h_{t−1} instead of h_{t−1}; it supplies its own
`weight_hh_grad`.)  A recurrence's caches carry `h_prev`.
"""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from .cell import Cell, Gathered, Params, State
from .gemm import column_sum, linear, linear_input_grad, outer

WEIGHT_KEYS = ("weight_ih", "weight_hh")
BIAS_KEYS = ("bias_ih", "bias_hh")
WeightGrad = Callable[[np.ndarray, Sequence[Any], bool], np.ndarray]


def check_gate_params(
    params: Params, input_width: int, key_format: str, *, name: str, gates: int, projection: bool = False
) -> int | tuple[int, int]:
    """Check one cell's parameter keys and shapes against the input width; return H.

    Expected: weight_ih (G·H, D), weight_hh (G·H, H) and either both biases (G·H,) or neither.
    With `projection` (the LSTM's) a weight_hr (P, H), 0 < P < H, may come too: weight_hh is then
    (G·H, P) and the state's widths (P, H) are returned. `key_format` (e.g. '{}_l1_reverse') names the
    layer-level key in messages.
    """
    given = sorted(params)
    unexpected = sorted(set(params) - set(WEIGHT_KEYS + BIAS_KEYS + (("weight_hr",) if projection else ())))
    if unexpected:
        raise ValueError(f"{name}: unexpected parameters {[key_format.format(k) for k in unexpected]}")
    for key in WEIGHT_KEYS + (BIAS_KEYS if any(k in params for k in BIAS_KEYS) else ()):
        if key not in params:
            raise KeyError(f"{name}: missing parameter {key_format.format(key)!r}; given keys {given}")
    weight_ih, weight_hh = params["weight_ih"], params["weight_hh"]
    label = key_format.format
    weight_hr = params.get("weight_hr")
    if weight_hr is not None:
        if weight_hr.ndim != 2 or not 0 < weight_hr.shape[0] < weight_hr.shape[1]:
            raise ValueError(
                f"{name}: {label('weight_hr')} must have shape (P, H) with 0 < P < H, got {weight_hr.shape}"
            )
        expected = (gates * weight_hr.shape[1], weight_hr.shape[0])
        if weight_hh.shape != expected:
            raise ValueError(
                f"{name}: {label('weight_hh')} expected shape ({gates}·H, P) = {expected} for "
                f"{label('weight_hr')} of shape {weight_hr.shape}, got {weight_hh.shape}"
            )
    elif weight_hh.ndim != 2 or weight_hh.shape[0] != gates * weight_hh.shape[1]:
        raise ValueError(
            f"{name}: {label('weight_hh')} must have shape ({gates}·H, H), got {weight_hh.shape}"
        )
    rows = weight_hh.shape[0]
    if weight_ih.shape != (rows, input_width):
        raise ValueError(
            f"{name}: {label('weight_ih')} expected shape ({rows}, {input_width}) for inputs of width "
            f"{input_width}, got {weight_ih.shape}"
        )
    for key in BIAS_KEYS:
        if key in params and params[key].shape != (rows,):
            raise ValueError(f"{name}: {label(key)} expected shape ({rows},), got {params[key].shape}")
    return weight_hh.shape[1] if weight_hr is None else (weight_hr.shape[0], weight_hr.shape[1])


def project(x: np.ndarray, params: Params) -> np.ndarray:
    """gx = x W_ihᵀ + b_ih for every step at once.   x: (T, N, D) → (T, N, G·H)."""
    return linear(x, params["weight_ih"], params.get("bias_ih"))


def plain_weight_hh_grad(dgh: np.ndarray, steps: Sequence[Any], per_step: bool) -> np.ndarray:
    """dW_hh = Σ_t dgh_tᵀ h_{t−1} for cells whose hidden input is h_{t−1} itself (RNN, LSTM, GRU)."""
    return outer(dgh, np.stack([s.h_prev for s in steps]), per_step)


def param_grads(
    params: Params, x: np.ndarray, dgx: np.ndarray, dgh: np.ndarray, dw_hh: np.ndarray, per_step: bool
) -> Params:
    """dW_ih = Σ_t dgx_tᵀ x_t, db_ih = Σ dgx, db_hh = Σ dgh (one GEMM or sum over the stacked steps) and
    the given dW_hh; with `per_step` each step's share, (T, *shape)."""
    grads = {"weight_ih": outer(dgx, x, per_step), "weight_hh": dw_hh}
    if "bias_ih" in params:
        grads["bias_ih"] = column_sum(dgx, per_step)
        # one delta for both (RNN, LSTM): the same sum, copied so the two gradients do not alias
        grads["bias_hh"] = grads["bias_ih"].copy() if dgh is dgx else column_sum(dgh, per_step)
    return grads


def gather(
    x: np.ndarray,
    params: Params,
    dgxs: list[np.ndarray],
    dghs: list[np.ndarray],
    steps: list[Any],
    per_step: bool,
    *,
    weight_hh_grad: WeightGrad,
) -> Gathered:
    """dx = dgx W_ih and the summed weight gradients (and with `per_step` each step's share, (T, *shape))."""
    dgx = np.stack(dgxs)
    # RNN, LSTM (and GRU with reset_after=False) return one array as both deltas: stack it once.
    dgh = dgx if all(a is b for a, b in zip(dgxs, dghs, strict=True)) else np.stack(dghs)
    dx = linear_input_grad(dgx, params["weight_ih"])
    grads = param_grads(params, x, dgx, dgh, weight_hh_grad(dgh, steps, False), False)
    by_step = param_grads(params, x, dgx, dgh, weight_hh_grad(dgh, steps, True), True) if per_step else None
    return dx, grads, by_step


def gated_cell(
    name: str,
    gates: int,
    state_names: tuple[str, ...],
    forward: Callable[[np.ndarray, State, Params], tuple[State, Any]],
    backward: Callable[[State, Any], tuple[np.ndarray, State, np.ndarray]],
    weight_hh_grad: WeightGrad = plain_weight_hh_grad,
) -> Cell:
    """A built-in recurrence as a `Cell`: `forward` and `backward` work on the projected input gx_t."""
    return Cell(
        name=name,
        state_names=state_names,
        tuple_state=len(state_names) > 1,
        project=project,
        forward=forward,
        backward=backward,
        gather=partial(gather, weight_hh_grad=weight_hh_grad),
        check=partial(check_gate_params, name=name, gates=gates),
    )
