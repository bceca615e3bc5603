"""What the three recurrences share: the cell interface, parameter checks, and the weight gradients.

Every cell's gate pre-activations are  x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh  (row vectors, gates
stacked in rows of the weights, G gates of width H).  The input projection gx = x W_ihᵀ + b_ih does
not depend on the state, so a sequence computes it for all steps at once; a `Cell` does only the
recurrent part:

    forward(gx_t, state_prev, params) → (state_t, step_cache)
    backward(dstate_t, step_cache)    → (dgx_t, dgh_t, dstate_prev)

where dgx_t is dL/d(gx_t) and dgh_t is dL/d(gh_t), gh_t = (hidden input) W_hhᵀ + b_hh.  The shared
weights' gradients are then sums over time, each one GEMM over the stacked steps:

    dW_ih = Σ_t dgx_tᵀ x_t,   db_ih = Σ_t Σ_n dgx_t,   dW_hh = Σ_t dgh_tᵀ h_{t−1},   db_hh = Σ_t Σ_n dgh_t.

(GRU with reset_after=False multiplies W_hn by r ⊙ h_{t−1} instead of h_{t−1}; its cell supplies its
own `weight_hh_grad`.)  A state is a tuple of arrays: (h,) for RNN and GRU, (h, c) for LSTM.
"""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from .gemm import column_sum, linear, linear_input_grad, outer

Params = dict[str, np.ndarray]
State = tuple[np.ndarray, ...]


class Cell(NamedTuple):
    """One recurrence: `gates` blocks of H rows in the weights; its state arrays are `state_names`."""

    name: str
    gates: int
    state_names: tuple[str, ...]
    forward: Callable[[np.ndarray, State, Params], tuple[State, Any]]
    backward: Callable[[State, Any], tuple[np.ndarray, np.ndarray, State]]
    weight_hh_grad: Callable[[np.ndarray, Sequence[Any], bool], np.ndarray]


class StepCache(NamedTuple):
    """What a single step's backward needs: its input, the cell's own cache, the parameters."""

    x: np.ndarray
    core: Any
    params: Params
    cell: Cell


WEIGHT_KEYS = ("weight_ih", "weight_hh")
BIAS_KEYS = ("bias_ih", "bias_hh")


def check_cell_params(params: Params, cell: Cell, input_width: int, suffix: str = "") -> int:
    """Check one cell's parameter keys and shapes against the input width; return H.

    Expected: weight_ih (G·H, D), weight_hh (G·H, H) and either both biases (G·H,) or neither.
    `suffix` (e.g. "_l1_reverse") only names the layer-level key in messages.
    """
    given = sorted(params)
    for key in WEIGHT_KEYS + (BIAS_KEYS if any(k in params for k in BIAS_KEYS) else ()):
        if key not in params:
            raise KeyError(f"{cell.name}: missing parameter {key + suffix!r}; given keys {given}")
    weight_ih, weight_hh = params["weight_ih"], params["weight_hh"]
    if weight_hh.ndim != 2 or weight_hh.shape[0] != cell.gates * weight_hh.shape[1]:
        raise ValueError(
            f"{cell.name}: weight_hh{suffix} must have shape ({cell.gates}·H, H), got {weight_hh.shape}"
        )
    rows = weight_hh.shape[0]
    if weight_ih.shape != (rows, input_width):
        raise ValueError(
            f"{cell.name}: weight_ih{suffix} expected shape ({rows}, {input_width}) for inputs of width "
            f"{input_width}, got {weight_ih.shape}"
        )
    for key in BIAS_KEYS:
        if key in params and params[key].shape != (rows,):
            raise ValueError(f"{cell.name}: {key}{suffix} expected shape ({rows},), got {params[key].shape}")
    return weight_hh.shape[1]


def check_state(cell: Cell, state: State, shape: tuple[int, ...], suffix: str) -> None:
    """The state must hold one array of `shape` (e.g. (N, H)) per name in `cell.state_names`.

    Messages name the arrays `name + suffix`, e.g. "h0", "c_prev".
    """
    if len(state) != len(cell.state_names):
        raise ValueError(f"{cell.name}: expected a state of {len(cell.state_names)} arrays, got {len(state)}")
    for name, s in zip(cell.state_names, state, strict=True):
        if np.shape(s) != shape:
            raise ValueError(f"{cell.name}: {name + suffix} expected shape {shape}, got {np.shape(s)}")


def plain_weight_hh_grad(dgh: np.ndarray, steps: Sequence[Any], per_step: bool) -> np.ndarray:
    """dW_hh = Σ_t dgh_tᵀ h_{t−1} for cells whose hidden input is h_{t−1} itself (RNN, LSTM, GRU)."""
    return outer(dgh, np.stack([s.h_prev for s in steps]), per_step)


def param_grads(
    cell: Cell,
    params: Params,
    x: np.ndarray,
    dgx: np.ndarray,
    dgh: np.ndarray,
    steps: Sequence[Any],
    per_step: bool = False,
) -> Params:
    """The shared weights' gradients from the stacked per-step deltas.

    x: (T, N, D), dgx and dgh: (T, N, G·H), steps: the T cell caches.  Returns the summed
    gradients, or with `per_step` each step's contribution (T, *shape) under the same keys.
    """
    grads = {
        "weight_ih": outer(dgx, x, per_step),
        "weight_hh": cell.weight_hh_grad(dgh, steps, per_step),
    }
    if "bias_ih" in params:
        grads["bias_ih"] = column_sum(dgx, per_step)
        grads["bias_hh"] = column_sum(dgh, per_step)
    return grads


def step_forward(cell: Cell, x: np.ndarray, state: State, params: Params) -> tuple[State, StepCache]:
    """One step: gx = x W_ihᵀ + b_ih, then the cell's recurrence.   x: (N, D), state arrays: (N, H)."""
    if x.ndim != 2:
        raise ValueError(f"{cell.name}: expected x of shape (N, D), got {x.shape}")
    hidden = check_cell_params(params, cell, x.shape[1])
    check_state(cell, state, (x.shape[0], hidden), "_prev")
    gx = linear(x, params["weight_ih"], params.get("bias_ih"))
    new_state, core = cell.forward(gx, state, params)
    return new_state, StepCache(x=x, core=core, params=params, cell=cell)


def step_backward(dstate: State, cache: StepCache) -> tuple[np.ndarray, State, Params]:
    """Reverse of `step_forward`: the cell's backward, then dx = dgx W_ih and the weight gradients."""
    dgx, dgh, dstate_prev = cache.cell.backward(dstate, cache.core)
    dparams = param_grads(cache.cell, cache.params, cache.x[None], dgx[None], dgh[None], [cache.core])
    dx = linear_input_grad(dgx, cache.params["weight_ih"])
    return dx, dstate_prev, dparams
