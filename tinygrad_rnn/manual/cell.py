"""The manual cell protocol: any recurrence as a pair of numpy step functions.

    step_forward(x_t, state, params)  → (new_state, cache)
    step_backward(dstate, cache)      → (dx_t, dstate_prev, dparams)

x_t: (N, D).  state and dstate: an ndarray (N, H) or a tuple of them, shaped like the cell's state,
the first array being the hidden state h (the step's output).  params and dparams: dicts under the
cell's own parameter names ("weight_ih", "peep", ...), of any shapes; dparams is this step's share
dθ_t of each parameter's gradient, so a sequence's gradient is dθ = Σ_t dθ_t.  `pair_cell` turns
such a pair into a `Cell`, which the sequence and stack machinery (sequence.py, stack.py) runs over
time, layers, directions and lengths.

A `Cell` is the pair split where speed is won: what does not depend on the state is done for all
steps at once,

    project(x, params) → u                         x: (T, N, D); u[t] is step t's input
    forward(u_t, state, params) → (state, cache)   the recurrence
    backward(dstate, cache) → (du_t, dstate_prev, part_t)
    gather(x, params, du, parts, caches, per_step) → (dx, dparams, per-step dparams or None)

A pair projects nothing (u = x) and gathers by summing its steps' dparams.  The built-in RNN, LSTM
and GRU project u = x W_ihᵀ + b_ih in one GEMM and gather dW = Σ_t δ_tᵀ a_t as one GEMM (gated.py);
their public pairs (rnn_step_forward, ...) are that split run on a single step (`cell_step_forward`).
States are tuples inside the machinery; `tuple_state` says which form the cell's own functions use.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

Params = dict[str, np.ndarray]
State = tuple[np.ndarray, ...]
StepForward = Callable[[np.ndarray, Any, Params], tuple[Any, Any]]
StepBackward = Callable[[Any, Any], tuple[np.ndarray, Any, Params]]
Gathered = tuple[np.ndarray, Params, Params | None]


class Cell(NamedTuple):
    """A recurrence as the machinery runs it (see the module docstring).

    check(params, input width, key format) → H, or the width of each state array (an LSTM with a
    projection: (P, H)), when given, validates a layer-direction's parameters before anything runs
    (key format names a key in messages, e.g. '{}_l1_reverse').
    fused, when given, is a whole-sequence `fused.Kernel` run in place of the steps where it applies.
    """

    name: str
    state_names: tuple[str, ...]
    tuple_state: bool
    project: Callable[[np.ndarray, Params], Any]
    forward: Callable[[Any, State, Params], tuple[State, Any]]
    backward: Callable[[State, Any], tuple[Any, State, Any]]
    gather: Callable[[np.ndarray, Params, list[Any], list[Any], list[Any], bool], Gathered]
    check: Callable[[Params, int, str], int] | None = None
    fused: Any = None


def state_names(count: int) -> tuple[str, ...]:
    """Names of a state's arrays in messages and reports: h; h, c; h, s1, s2, ..."""
    return ("h", "c") if count == 2 else ("h", *(f"s{i}" for i in range(1, count)))


def pair_cell(step_forward: StepForward, step_backward: StepBackward, state: Any, name: str = "cell") -> Cell:
    """The `Cell` that runs a user's pair step by step.

    `state`: an example state (e.g. the initial one) — an ndarray, or a tuple/list of them, which
    fixes the form the pair receives and returns.
    """
    if not callable(step_forward) or not callable(step_backward):
        raise TypeError(
            f"{name}: expected a pair (step_forward, step_backward) of functions, got "
            f"({type(step_forward).__name__}, {type(step_backward).__name__})"
        )
    tuple_state = isinstance(state, tuple | list)
    count = len(state) if tuple_state else 1

    def as_tuple(value: Any, what: str) -> State:
        if tuple_state != isinstance(value, tuple | list):
            expected = f"a tuple of {count} arrays" if tuple_state else "one array"
            raise ValueError(f"{name}: {what} returned a {type(value).__name__}, expected {expected} like hx")
        return tuple(value) if tuple_state else (value,)

    def forward(x_t: np.ndarray, state: State, params: Params) -> tuple[State, Any]:
        new_state, cache = step_forward(x_t, state if tuple_state else state[0], params)
        return as_tuple(new_state, "step_forward"), cache

    def backward(dstate: State, cache: Any) -> tuple[np.ndarray, State, Params]:
        dx, dstate_prev, dparams = step_backward(dstate if tuple_state else dstate[0], cache)
        return dx, as_tuple(dstate_prev, "step_backward"), dparams

    return Cell(name, state_names(count), tuple_state, _no_projection, forward, backward, _sum_steps)


def _no_projection(x: np.ndarray, params: Params) -> np.ndarray:
    return x


def _sum_steps(
    x: np.ndarray, params: Params, dxs: list[Any], parts: list[Any], caches: list[Any], per_step: bool
) -> Gathered:
    """dx stacked over t; dθ = Σ_t dθ_t from each step's dparams, checked against params' keys and shapes."""
    for t, (dx, part) in enumerate(zip(dxs, parts, strict=True)):
        if np.shape(dx) != x.shape[1:]:
            raise ValueError(
                f"step_backward at t={t}: expected dx_t of shape {x.shape[1:]}, got {np.shape(dx)}"
            )
        if not isinstance(part, dict) or set(part) != set(params):
            given = sorted(part) if isinstance(part, dict) else type(part).__name__
            raise ValueError(
                f"step_backward at t={t}: expected dparams with keys {sorted(params)}, got {given}"
            )
        for key, value in params.items():
            if np.shape(part[key]) != np.shape(value):
                raise ValueError(
                    f"step_backward at t={t}: expected dparams[{key!r}] of shape {np.shape(value)}, "
                    f"got {np.shape(part[key])}"
                )
    steps = {key: np.stack([np.asarray(part[key]) for part in parts]) for key in params}
    grads = {key: s.sum(axis=0) for key, s in steps.items()}
    return np.stack(dxs), grads, steps if per_step else None


def state_widths(
    cell: Cell, params: Params, input_width: int, key_format: str, state: Any
) -> tuple[int, ...]:
    """The last dimension of each state array: the cell's check says it (H for every array, or one
    width each), or for a pair, which has no check, the given state's arrays (or arrays (…, H))."""
    if cell.check is not None:
        widths = cell.check(params, input_width, key_format)
        return widths if isinstance(widths, tuple) else (widths,) * len(cell.state_names)
    if state is None:
        raise ValueError(f"{cell.name}: the initial state is required for a cell given as a pair")
    return tuple(np.shape(s)[-1] for s in state)


def check_state(
    cell: Cell, state: State, lead: tuple[int, ...], widths: tuple[int, ...], suffix: str
) -> None:
    """The state must hold one array of shape (*lead, width) (e.g. (N, H)) per name in `cell.state_names`.

    Messages name the arrays `name + suffix`, e.g. "h0", "c_prev".
    """
    if len(state) != len(cell.state_names):
        raise ValueError(f"{cell.name}: expected a state of {len(cell.state_names)} arrays, got {len(state)}")
    for name, s, width in zip(cell.state_names, state, widths, strict=True):
        if np.shape(s) != (*lead, width):
            raise ValueError(
                f"{cell.name}: {name + suffix} expected shape {(*lead, width)}, got {np.shape(s)}"
            )


class StepCache(NamedTuple):
    """What `cell_step_backward` needs: the step's input, the cell's own cache, the parameters."""

    x: np.ndarray
    core: Any
    params: Params
    cell: Cell


def cell_step_forward(cell: Cell, x: np.ndarray, state: State, params: Params) -> tuple[State, StepCache]:
    """One step of a `Cell` as the public step_forward: project x_t, then the recurrence.

    x: (N, D), state arrays: (N, H).
    """
    if np.ndim(x) != 2:
        raise ValueError(f"{cell.name}: expected x of shape (N, D), got {np.shape(x)}")
    check_state(cell, state, (x.shape[0],), state_widths(cell, params, x.shape[1], "{}", state), "_prev")
    new_state, core = cell.forward(cell.project(x[None], params)[0], state, params)
    return new_state, StepCache(x=x, core=core, params=params, cell=cell)


def cell_step_backward(dstate: State, cache: StepCache) -> tuple[np.ndarray, State, Params]:
    """Reverse of `cell_step_forward`: the recurrence's backward, then the step's dx and dparams."""
    du, dstate_prev, part = cache.cell.backward(dstate, cache.core)
    dx, dparams, _ = cache.cell.gather(cache.x[None], cache.params, [du], [part], [cache.core], False)
    return dx[0], dstate_prev, dparams
