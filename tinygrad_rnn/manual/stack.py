"""Stacks of recurrent layers × directions, for any manual cell, with PyTorch's nn.RNN interface.

Layer k, direction d (0 forward, 1 reverse) reads its parameters from layer-level keys (layout.py:
weight_ih_l{k}[_reverse] for the built-in layers, cell_l{k}[_reverse].<name> for nn.Recurrent) and
its initial state from hx[k·dirs + d].  Layer 0 reads x; layer k > 0 reads the concatenation
[forward | reverse] of layer k−1's outputs (width dirs·H).  The output is the top layer's
[forward | reverse] outputs (T, N, dirs·H); h_n[k·dirs + d] is each layer-direction's final state.
H is the width of h, the state's first array: P for an LSTM with a projection weight_hr (P, H),
whose c keeps H (each state array has its own width, `SequenceCache.widths`).

The cell is 'rnn', 'lstm', 'gru', a `Cell`, or a user's pair (step_forward, step_backward) — see
cell.py; a pair needs hx, since its state's structure is known only from an example.

Backward visits the layers top-down: the gradient on layer k's output is split into its directions'
halves, each direction runs BPTT (`sequence.sequence_backward`), and the two dx are added to give the
gradient on layer k−1's output.
"""

from typing import Any, NamedTuple

import numpy as np

from .cell import Cell, Params, State, pair_cell, state_widths
from .gru import gru_cell
from .layout import split_params, stream_name
from .lstm import LSTM_CELL
from .rnn import rnn_cell
from .sequence import BPTTSteps, SequenceCache, lengths_mask, sequence_backward, sequence_forward

MODES = ("rnn", "lstm", "gru")


class StackCache(NamedTuple):
    """layers[k][d] is layer k direction d's `SequenceCache`; the rest restores the caller's layout."""

    layers: list[list[SequenceCache]]
    cell: Cell
    batch_first: bool
    unbatched: bool


def make_cell(mode: Any, nonlinearity: str = "tanh", reset_after: bool = True, hx: Any = None) -> Cell:
    """The `Cell` for mode 'rnn' (with `nonlinearity`), 'lstm', 'gru' (with `reset_after`), a `Cell`,
    or a pair (step_forward, step_backward), whose state's form is read from `hx`."""
    if isinstance(mode, Cell):
        return mode
    if isinstance(mode, tuple | list):
        if len(mode) != 2:
            raise ValueError(f"expected a pair (step_forward, step_backward), got {len(mode)} items")
        if hx is None:
            raise ValueError(
                "a (step_forward, step_backward) pair needs hx: its state's form (an array, or a tuple "
                "of them) is known only from an example"
            )
        return pair_cell(*mode, state=hx)
    if mode == "rnn":
        return rnn_cell(nonlinearity)
    if mode == "lstm":
        return LSTM_CELL
    if mode == "gru":
        return gru_cell(reset_after)
    raise ValueError(f"expected mode in {MODES} or a (step_forward, step_backward) pair, got {mode!r}")


def state_from_hx(hx: Any, cell: Cell) -> State | None:
    """hx as the caller gives it (None, h0, or a tuple such as (h0, c0)) → a state tuple, or None."""
    if hx is None:
        return None
    if not cell.tuple_state:
        return (hx,)
    if not isinstance(hx, tuple | list) or len(hx) != len(cell.state_names):
        expected = ", ".join(f"{name}0" for name in cell.state_names)
        got = f"{len(hx)} arrays" if isinstance(hx, tuple | list) else type(hx).__name__
        raise ValueError(f"{cell.name}: expected hx = ({expected}), got {got}")
    return tuple(hx)


def hx_from_state(state: State, cell: Cell) -> Any:
    """A state tuple → the caller's form: h for RNN and GRU, (h, c) for LSTM, the cell's own form."""
    return tuple(state) if cell.tuple_state else state[0]


def stack_forward(
    cell: Cell,
    x: np.ndarray,
    params: Params,
    *,
    num_layers: int,
    bidirectional: bool,
    state0: State | None,
    mask: np.ndarray | None,
) -> tuple[np.ndarray, State, list[list[SequenceCache]]]:
    """Time-major core of `recurrent_forward`.   x: (T, N, D); state0 arrays (L·dirs, N, H) or None."""
    directions = 2 if bidirectional else 1
    layer_params, formats = split_params(params, num_layers, directions)
    widths = state_widths(cell, layer_params[0], x.shape[-1], formats[0], state0)
    shapes = [(num_layers * directions, x.shape[1], w) for w in widths]
    if state0 is None:
        state0 = tuple(np.zeros(shape, dtype=x.dtype) for shape in shapes)
    for name, s, shape in zip(cell.state_names, state0, shapes, strict=True):
        if np.shape(s) != shape:
            raise ValueError(
                f"{cell.name}: {name}0 expected shape (L·dirs, N, H) = {shape}, got {np.shape(s)}"
            )
    layer_input = x
    finals: list[State] = []
    caches: list[list[SequenceCache]] = []
    for layer in range(num_layers):
        outputs, caches_layer = [], []
        for direction in range(directions):
            index = layer * directions + direction
            output, final, cache = sequence_forward(
                cell,
                layer_input,
                tuple(s[index] for s in state0),
                layer_params[index],
                mask,
                reverse=direction == 1,
                key_format=formats[index],
            )
            outputs.append(output)
            finals.append(final)
            caches_layer.append(cache)
        layer_input = np.concatenate(outputs, axis=-1) if directions == 2 else outputs[0]
        caches.append(caches_layer)
    state_n = tuple(np.stack([final[i] for final in finals]) for i in range(len(cell.state_names)))
    return layer_input, state_n, caches


def stack_backward(
    doutput: np.ndarray,
    dstate_n: tuple[np.ndarray | None, ...],
    layers: list[list[SequenceCache]],
    return_steps: bool = False,
) -> tuple[np.ndarray, State, Params, dict[str, BPTTSteps]]:
    """Time-major core of `recurrent_backward`: (dx, dstate0, dparams, per-step records).

    Gradients come out under the layer-level keys they went in with; they and the records are
    listed in the parameters' order (layer 0 first) although computed top-down.
    """
    directions = len(layers[0])
    widths = layers[0][0].widths
    hidden = widths[0]  # the width of each direction's output
    count = len(layers) * directions
    for name, d, w in zip(layers[0][0].cell.state_names, dstate_n, widths, strict=True):
        shape = (count, doutput.shape[1], w)
        if d is not None and np.shape(d) != shape:
            raise ValueError(f"d{name}_n expected shape (L·dirs, N, H) = {shape}, got {np.shape(d)}")
    dstate0: list[State] = [()] * count
    dparams: list[Params] = [{}] * count
    records: list[BPTTSteps | None] = [None] * count
    doutput_layer = doutput
    for layer in reversed(range(len(layers))):
        dinput = None
        for direction in range(directions):
            index = layer * directions + direction
            dx, dstate0[index], dparams[index], records[index] = sequence_backward(
                doutput_layer[..., direction * hidden : (direction + 1) * hidden],
                tuple(None if d is None else d[index] for d in dstate_n),
                layers[layer][direction],
                return_steps,
            )
            dinput = dx if dinput is None else dinput + dx
        doutput_layer = dinput
    formats = [cache.key_format for layer in layers for cache in layer]
    grads = {fmt.format(key): g for fmt, d in zip(formats, dparams, strict=True) for key, g in d.items()}
    steps = {
        stream_name(index // directions, index % directions): record._replace(
            dparams={formats[index].format(key): g for key, g in record.dparams.items()}
        )
        for index, record in enumerate(records)
        if record is not None
    }
    dstate = tuple(np.stack([d[i] for d in dstate0]) for i in range(len(dstate0[0])))
    return doutput_layer, dstate, grads, steps


def recurrent_forward(
    mode: Any,
    x: np.ndarray,
    params: Params,
    *,
    num_layers: int = 1,
    bidirectional: bool = False,
    hx: Any = None,
    lengths: Any = None,
    batch_first: bool = False,
    nonlinearity: str = "tanh",
    reset_after: bool = True,
) -> tuple[np.ndarray, Any, StackCache]:
    """A PyTorch-style recurrent stack: (output, h_n, cache), h_n = (h_n, c_n) for LSTM.

    mode: 'rnn', 'lstm', 'gru', or any cell as a pair (step_forward, step_backward) (then hx is
    required and h_n has its form) or a `Cell`.  params: layer-level keys (see layout.py).
    x: (T, N, D), or (N, T, D) with batch_first, or unbatched (T, D) (batch_first then ignored, as
    in PyTorch).  hx: None (zeros), h0 (L·dirs, N, H) or (h0, c0) for LSTM ((L·dirs, H) unbatched).
    output: (T, N, dirs·H) in the layout of x.  `lengths`: one int per sequence, 1 ≤ L_n ≤ T, with
    packed-sequence semantics (outputs at t ≥ L_n are zero, h_n is each sequence's last valid state).
    """
    cell = make_cell(mode, nonlinearity, reset_after, hx)
    unbatched = x.ndim == 2
    state0 = state_from_hx(hx, cell)
    if unbatched:
        x = x[:, None]
        state0 = None if state0 is None else tuple(np.asarray(s)[:, None] for s in state0)
    elif batch_first:
        x = x.swapaxes(0, 1)
    if x.ndim != 3:
        raise ValueError(f"{cell.name}: expected x of shape (T, N, D) or (T, D), got {x.shape}")
    mask = lengths_mask(lengths, *x.shape[:2])
    output, state_n, layers = stack_forward(
        cell, x, params, num_layers=num_layers, bidirectional=bidirectional, state0=state0, mask=mask
    )
    if unbatched:
        output, state_n = output[:, 0], tuple(s[:, 0] for s in state_n)
    elif batch_first:
        output = output.swapaxes(0, 1)
    cache = StackCache(layers=layers, cell=cell, batch_first=batch_first, unbatched=unbatched)
    return output, hx_from_state(state_n, cell), cache


def recurrent_backward(
    doutput: np.ndarray, dh_n: Any, cache: StackCache, return_steps: bool = False
) -> tuple[np.ndarray, Any, Params] | tuple[np.ndarray, Any, Params, dict[str, BPTTSteps]]:
    """BPTT through `recurrent_forward`: (dx, dhx, dparams) in the caller's layouts.

    dh_n: None (zeros), or like h_n; for LSTM a pair (dh_n, dc_n) in which either may be None.
    dparams has exactly the keys of params.  With `return_steps` a fourth element maps 'l{k}' /
    'l{k}_reverse' to that layer-direction's `BPTTSteps` (dL/dh_t per step, and each step's
    contribution to the layer-level parameter gradients).
    """
    cell, first = cache.cell, cache.layers[0][0]
    length, batch = first.x.shape[:2]
    width = len(cache.layers[0]) * first.widths[0]
    if cache.unbatched:
        expected = (length, width)
    else:
        expected = (batch, length, width) if cache.batch_first else (length, batch, width)
    if doutput.shape != expected:
        raise ValueError(
            f"{cell.name}: expected doutput of shape {expected} (like output), got {doutput.shape}"
        )
    dstate_n = (None,) * len(cell.state_names) if dh_n is None else state_from_hx(dh_n, cell)
    if cache.unbatched:
        doutput = doutput[:, None]
        dstate_n = tuple(None if d is None else np.asarray(d)[:, None] for d in dstate_n)
    elif cache.batch_first:
        doutput = doutput.swapaxes(0, 1)
    dx, dstate0, grads, steps = stack_backward(doutput, dstate_n, cache.layers, return_steps)
    if cache.unbatched:
        dx, dstate0 = dx[:, 0], tuple(d[:, 0] for d in dstate0)
    elif cache.batch_first:
        dx = dx.swapaxes(0, 1)
    dhx = hx_from_state(dstate0, cell)
    return (dx, dhx, grads, steps) if return_steps else (dx, dhx, grads)
