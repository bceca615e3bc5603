"""The time loop of one layer in one direction, for any `Cell`: lengths, masks, reverse order, BPTT.

Forward over t in processing order (0..T−1, or T−1..0 when `reverse`):

    u = project(x)                           all steps at once (x W_ihᵀ + b_ih for the built-ins)
    s_t = forward(u_t, s_prev)               s_prev is the state after the previous processed step
    with lengths: m_t[n] = (t < L_n);  state ← m_t ? s_t : state;  output_t = m_t ? h_t : 0

so for sequence n the steps t ≥ L_n neither change the state nor produce output: h_n is each
sequence's last valid state (forward), or the state after t = 0 (reverse, which thus starts at
t = L_n − 1 from h0) — PyTorch's packed-sequence semantics.  A step's output h_t is its state's
first array.

Backward (BPTT), over the steps in the opposite order, with δ the gradient carried on the state:

    dL/dh_t = doutput_t + δ_h                the output path plus the path through step t+1
    cell's share = m_t ⊙ (dL/dh_t, δ_c …);   passed through unchanged = (1 − m_t) ⊙ δ
    (du_t, dstate_prev, part_t) = backward(cell's share);   δ ← dstate_prev + passed through

then `gather` turns the du_t and parts into dx and the parameters' gradients (for the built-ins one
GEMM each over the stacked steps).  Masked steps receive zero gradient, so they add nothing to dθ.

Without lengths, a cell with a whole-sequence kernel (`Cell.fused`, fused.py: the built-in RNN,
LSTM and GRU) runs it instead of the steps: the same equations, the same results and records.
"""

from typing import Any, NamedTuple

import numpy as np

from .cell import Cell, Params, State, check_state, state_widths
from .fused import FusedRecord, fused_backward, fused_forward


class SequenceCache(NamedTuple):
    """One layer-direction's forward record; `steps[t]` is the cell cache of time step t, `widths`
    those of its state's arrays (H each, or (P, H) for a projected LSTM; the output's is widths[0]),
    `key_format` the name of its parameters in the stack ('{}_l0', 'cell_l0.{}'), `states[t]` the
    state step t started from.  When the cell's whole-sequence kernel ran, `fused` holds its record
    and `steps` and `states` are empty."""

    cell: Cell
    x: np.ndarray
    params: Params
    mask: np.ndarray | None
    reverse: bool
    steps: list[Any]
    widths: tuple[int, ...]
    key_format: str
    states: list[State]
    fused: FusedRecord | None = None


class BPTTSteps(NamedTuple):
    """Per-step quantities of one backward pass, indexed by time step t (not processing order).

    dh:       (T, N, H) dL/dh_t, the total gradient reaching step t's hidden state (its output path
              plus what flows back from later steps); zero at padded steps t ≥ L_n.
    dparams:  each shared parameter's contribution of step t, shape (T, *param shape), under the same
              keys as the gradients; summing over axis 0 gives the gradient itself.
    x:        (T, N, D) the layer-direction's input; state_in: the state each step started from,
              per array (T, N, H); dstate: the gradient each step's backward received, per array
              (dstate[0] = dh); dstate_prev: what that backward returned for state_in.  With these
              a step can be re-run and checked on its own (compare does).
    """

    dh: np.ndarray
    dparams: Params
    x: np.ndarray
    state_in: State
    dstate: State
    dstate_prev: State


def lengths_mask(lengths: Any, steps: int, batch: int) -> np.ndarray | None:
    """(T, N, 1) bool with mask[t, n] = t < lengths[n]; None when `lengths` is None.

    `lengths` holds one integer per sequence with 1 ≤ length ≤ T, else ValueError.
    """
    if lengths is None:
        return None
    lengths = np.asarray(lengths)
    if lengths.shape != (batch,):
        raise ValueError(f"lengths: expected {batch} lengths (one per sequence), got shape {lengths.shape}")
    if not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths: expected integers, got dtype {lengths.dtype}")
    if np.any((lengths < 1) | (lengths > steps)):
        raise ValueError(f"lengths: expected every length in [1, T={steps}], got {lengths.tolist()}")
    return (np.arange(steps)[:, None] < lengths[None, :])[..., None]


def time_order(steps: int, reverse: bool) -> range:
    """The order in which a direction visits the time steps."""
    return range(steps - 1, -1, -1) if reverse else range(steps)


def check_step_state(cell: Cell, what: str, t: int, given: State, expected: State) -> None:
    """A step must return a state shaped like the one it was given (names the step and the arrays)."""
    if len(given) != len(expected) or any(
        np.shape(g) != np.shape(e) for g, e in zip(given, expected, strict=True)
    ):
        raise ValueError(
            f"{cell.name}: {what} at t={t} returned a state of shapes {[np.shape(g) for g in given]}, "
            f"expected {[np.shape(e) for e in expected]} (like the state it was given)"
        )


def sequence_forward(
    cell: Cell,
    x: np.ndarray,
    state0: State,
    params: Params,
    mask: np.ndarray | None,
    reverse: bool,
    key_format: str = "{}",
) -> tuple[np.ndarray, State, SequenceCache]:
    """Run `cell` over x: (T, N, D) from state0 (arrays (N, H)) → output (T, N, H), final state.

    `key_format` names the parameters in messages (e.g. '{}_l1_reverse' in a stack).
    """
    steps, batch, width = x.shape
    widths = state_widths(cell, params, width, key_format, state0)
    check_state(cell, state0, (batch,), widths, "0")
    if mask is None and cell.fused is not None and cell.fused.applies(params):
        output, state, record = fused_forward(cell.fused, x, state0, params, reverse)
        return (
            output,
            state,
            SequenceCache(cell, x, params, mask, reverse, [], widths, key_format, [], record),
        )
    inputs = cell.project(x, params)
    caches: list[Any] = [None] * steps
    outputs: list[Any] = [None] * steps
    states: list[State] = [()] * steps
    state = state0
    for t in time_order(steps, reverse):
        states[t] = state
        new_state, caches[t] = cell.forward(inputs[t], state, params)
        check_step_state(cell, "step_forward", t, new_state, state)
        if mask is None:
            state, outputs[t] = new_state, new_state[0]
        else:
            state = tuple(np.where(mask[t], new, old) for new, old in zip(new_state, state, strict=True))
            outputs[t] = np.where(mask[t], new_state[0], 0)
    cache = SequenceCache(cell, x, params, mask, reverse, caches, widths, key_format, states)
    return np.stack(outputs), state, cache


def layer_forward(
    cell: Cell, x: np.ndarray, state0: State, params: Params, lengths: Any, reverse: bool
) -> tuple[np.ndarray, State, SequenceCache]:
    """The public entry of one layer-direction: x and `lengths` checked, then `sequence_forward`."""
    if x.ndim != 3:
        raise ValueError(f"{cell.name}: expected x of shape (T, N, D), got {x.shape}")
    return sequence_forward(cell, x, state0, params, lengths_mask(lengths, *x.shape[:2]), reverse)


def sequence_backward(
    doutput: np.ndarray,
    dstate_n: tuple[np.ndarray | None, ...],
    cache: SequenceCache,
    return_steps: bool = False,
) -> tuple[np.ndarray, State, Params, BPTTSteps | None]:
    """BPTT through `sequence_forward`: (dx (T, N, D), dstate0, dparams, per-step record or None).

    doutput: (T, N, H); dstate_n: gradient on the final state, entries may be None (zeros).
    """
    cell, x, params, mask = cache.cell, cache.x, cache.params, cache.mask
    expected = (*x.shape[:2], cache.widths[0])
    if doutput.shape != expected:
        raise ValueError(
            f"{cell.name}: expected doutput of shape (T, N, H) = {expected}, got {doutput.shape}"
        )
    dstate = tuple(
        np.zeros((x.shape[1], w), dtype=doutput.dtype) if d is None else d
        for d, w in zip(dstate_n, cache.widths, strict=True)
    )
    if cache.fused is not None:
        dx, dstate0, dparams, by_step, flows = fused_backward(
            doutput, dstate, x, params, cache.fused, cache.reverse, return_steps
        )
        steps = None
        if flows is not None:
            steps = BPTTSteps(flows[0][0], by_step, x, cache.fused.states_in, *flows)
        return dx, dstate0, dparams, steps
    dinputs: list[Any] = [None] * len(x)
    parts: list[Any] = [None] * len(x)
    dcells: list[Any] = [None] * len(x)
    dprevs: list[Any] = [None] * len(x)
    for t in reversed(time_order(len(x), cache.reverse)):
        dcell = (dstate[0] + doutput[t],) + dstate[1:]
        if mask is not None:
            dthrough = tuple(np.where(mask[t], 0, d) for d in dstate)
            dcell = tuple(np.where(mask[t], d, 0) for d in dcell)
        dinputs[t], dstate_prev, parts[t] = cell.backward(dcell, cache.steps[t])
        check_step_state(cell, "step_backward", t, dstate_prev, dcell)
        dstate = dprevs[t] = dstate_prev
        if mask is not None:
            dstate = tuple(a + b for a, b in zip(dstate, dthrough, strict=True))
        dcells[t] = dcell
    dx, dparams, by_step = cell.gather(x, params, dinputs, parts, cache.steps, return_steps)
    steps = None
    if return_steps:
        dstates = tuple(np.stack(parts) for parts in zip(*dcells, strict=True))
        states_in = tuple(np.stack(parts) for parts in zip(*cache.states, strict=True))
        dprev = tuple(np.stack(parts) for parts in zip(*dprevs, strict=True))
        steps = BPTTSteps(dstates[0], by_step, x, states_in, dstates, dprev)
    return dx, dstate, dparams, steps
