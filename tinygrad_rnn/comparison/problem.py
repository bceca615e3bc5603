"""What the paths share: the layer, its inputs as arrays, the upstream gradients, the manual cell.

A recurrent layer (nn.RNN / nn.LSTM / nn.GRU, or nn.Recurrent of any cell) is compared on the loss

    L = Σ output ⊙ G + Σ h_n ⊙ G_h  (+ Σ c_n ⊙ G_c, ...: one G per array of the state),
    G ~ N(0, 1) from `seed`,

so dL/doutput = G exactly and every element of the output carries its own weight (a uniform
upstream gradient, as from a mean, would hide permuted or transposed gradients).  A language model
(a module with submodules embedding, rnn, decoder) is compared on its cross-entropy summed over the
valid positions t < L_n.  All paths receive the same arrays; `Run` is what each returns.

The manual side is a cell for `manual.recurrent_forward`: the built-in layers' own ('rnn', 'lstm',
'gru' with their options), the built-in cells' inside nn.Recurrent(nn.LSTMCell, ...), or the user's
pair (step_forward, step_backward); None when only finite differences are asked for.
"""

from typing import Any, NamedTuple

import numpy as np

from ..context import no_grad
from ..manual.cell import state_names
from ..manual.convert import MODES
from ..nn import Recurrent, RecurrentBase, RNNBase
from ..nn.recurrent import RNNCellBase
from ..tensor import Tensor
from .measures import tolerance_for


class Problem(NamedTuple):
    """The arrays and options of one comparison; every float array is in the parameters' dtype.

    layer:    the recurrent layer (the module itself, or a language model's `rnn`).
    x:        recurrent input in the layer's layout ((T, N, D), (N, T, D) or unbatched (T, D)).
    tokens, targets: the language model's integer ids (T, N).
    state0:   the initial state's arrays, each (L·dirs, N, H) ((L·dirs, H) unbatched); zeros when
              not given.  `tuple_state`: whether the layer takes and returns them as a tuple.
    upstream: G for 'output', 'h_n', 'c_n', ... (recurrent layers; empty for a language model).
    manual:   the cell `manual.recurrent_forward` runs (see the module docstring), `options` its
              keyword arguments (num_layers, bidirectional, batch_first, nonlinearity, reset_after).
    """

    module: Any
    layer: RecurrentBase
    is_lm: bool
    dtype: np.dtype
    x: np.ndarray | None
    tokens: np.ndarray | None
    targets: np.ndarray | None
    state0: tuple[np.ndarray, ...]
    tuple_state: bool
    lengths: np.ndarray | None
    upstream: dict[str, np.ndarray]
    tbptt: int | None
    max_norm: float | None
    manual: Any
    options: dict[str, Any]

    @property
    def state_names(self) -> tuple[str, ...]:
        """('h',), ('h', 'c'), ... or the cell's own names: the arrays of a state, as in h0 / h_n."""
        return names_of_state(self.layer, len(self.state0))

    def as_hx(self, state: tuple[Any, ...]) -> Any:
        """A state's arrays (or Tensors) in the form the layer and the manual cell take."""
        return tuple(state) if self.tuple_state else state[0]


class Run(NamedTuple):
    """One path's results, keyed alike on both sides.

    forward:      'output' (recurrent) or 'loss' (language model), 'h_n', and 'c_n' for LSTM.
    params:       dL/dθ under the module's `named_parameters()` names, before any clipping.
    inputs:       'x', 'h0' (and 'c0'): dL/dx and dL/d(initial state) — recurrent modules only.
    step_dh:      per layer-direction ('l0', 'l0_reverse', ...): dL/dh_t stacked over t, (T, N, H).
    step_dparams: per layer-direction, each shared parameter's per-step contribution (T, *shape)
                  (the manual path only).
    clipped:      the parameter gradients after clipping by global norm, when asked; total_norm the
                  norm before clipping.
    records:      per layer-direction, manual's `BPTTSteps` (what each step saw and received), for
                  re-running single steps (the manual path only).
    """

    forward: dict[str, np.ndarray]
    params: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]
    step_dh: dict[str, np.ndarray]
    step_dparams: dict[str, dict[str, np.ndarray]]
    clipped: dict[str, np.ndarray] | None
    total_norm: float | None
    records: dict[str, Any] | None = None


def _array(value: Any, dtype: Any = None) -> np.ndarray:
    """A copy of a Tensor's or an array-like's values, converted to `dtype` when given."""
    return np.array(value.data if isinstance(value, Tensor) else value, dtype=dtype)


def _integers(value: Any, label: str) -> np.ndarray:
    array = _array(value)
    if array.dtype.kind not in "iu":
        raise TypeError(f"compare: expected integer {label}, got dtype {array.dtype}")
    return array


def _layer_of(module: Any) -> tuple[RecurrentBase, bool]:
    """The recurrent layer to compare and whether `module` is a language model around it."""
    is_lm = all(hasattr(module, name) for name in ("embedding", "rnn", "decoder"))
    layer = module.rnn if is_lm else module
    if not isinstance(layer, RecurrentBase):
        raise TypeError(
            "compare: expected an nn.RNN / nn.LSTM / nn.GRU / nn.Recurrent, or a language model with "
            f"submodules embedding, rnn and decoder; got {type(module).__name__}"
        )
    if layer.dropout > 0 and layer.training:
        raise ValueError(
            f"compare: the layer applies dropout={layer.dropout} between layers, which the manual path "
            "does not; call module.eval() or build it with dropout=0"
        )
    return layer, is_lm


def _builtin_manual(layer: RecurrentBase) -> tuple[Any, dict[str, Any]]:
    """The manual cell of a built-in layer, or of nn.Recurrent over a built-in cell; (None, {}) else."""
    owner = layer.cell_at(0) if isinstance(layer, Recurrent) else layer
    if not isinstance(owner, RNNBase | RNNCellBase):
        return None, {}
    options = dict(MODES[owner.mode])
    if owner.mode == "GRU":
        options["reset_after"] = bool(owner.reset_after)
    return options.pop("mode"), options


def _manual_cell(layer: RecurrentBase, manual: Any, finite_differences: bool) -> tuple[Any, dict[str, Any]]:
    """What the manual path runs, and its keyword arguments for `manual.recurrent_forward`."""
    options = {
        "num_layers": layer.num_layers,
        "bidirectional": layer.bidirectional,
        "batch_first": layer.batch_first,
    }
    if manual is not None:
        if not isinstance(manual, tuple | list) or len(manual) != 2 or not all(map(callable, manual)):
            raise TypeError(
                f"compare: expected manual=(step_forward, step_backward), two functions; got {manual!r}"
            )
        return tuple(manual), options
    cell, extra = _builtin_manual(layer)
    if cell is None and not finite_differences:
        raise ValueError(
            f"compare: {type(layer).__name__}({layer.cell_name}) has no built-in manual BPTT; pass "
            "manual=(step_forward, step_backward), or finite_differences=True to check the autograd alone"
        )
    return cell, {**options, **extra}


def names_of_state(layer: RecurrentBase, count: int) -> tuple[str, ...]:
    """The names of a state of `count` arrays: the cell class's own `state_names` (e.g. ('h', 'm'))
    when it declares as many, else ('h',), ('h', 'c'), ('h', 's1', 's2'), ..."""
    own = getattr(getattr(layer, "cell", None), "state_names", None)
    if isinstance(own, tuple | list) and len(own) == count and all(isinstance(n, str) for n in own):
        return tuple(own)
    return state_names(count)


def _state_form(
    problem_module: Any, layer: RecurrentBase, is_lm: bool, example: np.ndarray
) -> tuple[int, bool, tuple[int, ...]]:
    """(number of arrays, whether a tuple, each array's width) of the layer's state, from a forward
    pass without a graph (widths differ for an LSTM with a projection: h (…, P), c (…, H))."""
    with no_grad():
        _, state = problem_module(example) if is_lm else layer(example)
    parts = state if isinstance(state, tuple) else (state,)
    return len(parts), isinstance(state, tuple), tuple(p.shape[-1] for p in parts)


def _initial_state(
    hx: Any,
    lead: tuple[int, ...],
    widths: tuple[int, ...],
    dtype: np.dtype,
    names: tuple[str, ...],
    is_tuple: bool,
) -> tuple[np.ndarray, ...]:
    """hx as a tuple of arrays of shapes (*lead, width) (zeros when hx is None)."""
    count = len(names)
    shapes = [(*lead, w) for w in widths]
    if hx is None:
        return tuple(np.zeros(shape, dtype=dtype) for shape in shapes)
    if is_tuple != isinstance(hx, tuple | list) or (is_tuple and len(hx) != count):
        expected = f"({', '.join(n + '0' for n in names)})" if is_tuple else "h0, one array"
        raise ValueError(
            f"compare: expected hx = {expected}, like the layer's state; got {type(hx).__name__}"
        )
    state = tuple(_array(p, dtype) for p in (hx if is_tuple else (hx,)))
    for name, s, shape in zip(names, state, shapes, strict=True):
        if s.shape != shape:
            raise ValueError(f"compare: expected {name}0 of shape (L·dirs, N, H) = {shape}, got {s.shape}")
    return state


def make_problem(
    module: Any,
    inputs: Any,
    *,
    hx: Any,
    lengths: Any,
    targets: Any,
    tbptt: int | None,
    max_norm: float | None,
    seed: int,
    manual: Any,
    finite_differences: bool,
) -> Problem:
    """Check the arguments of `compare` and bring them to arrays; draw the upstream gradients."""
    layer, is_lm = _layer_of(module)
    dtype = np.dtype(next(iter(module.parameters())).dtype)
    tolerance_for(dtype)
    if tbptt is not None and (not is_lm or not isinstance(tbptt, int | np.integer) or tbptt < 1):
        raise ValueError(f"compare: tbptt needs a language model and a chunk length k ≥ 1, got {tbptt!r}")
    if max_norm is not None and not max_norm > 0:
        raise ValueError(f"compare: max_norm must be positive, got {max_norm!r}")
    cell, options = _manual_cell(layer, manual, finite_differences)
    rows = layer.num_layers * layer.num_directions
    lengths = None if lengths is None else _integers(lengths, "lengths")
    common = dict(tbptt=tbptt, max_norm=max_norm, manual=cell, options=options, lengths=lengths)
    if is_lm:
        if targets is None:
            raise ValueError("compare: a language model needs targets (T, N) for its cross-entropy")
        tokens, targets = _integers(inputs, "tokens"), _integers(targets, "targets")
        if tokens.ndim != 2 or targets.shape != tokens.shape:
            raise ValueError(
                "compare: expected tokens and targets of one shape (T, N), "
                f"got {tokens.shape} and {targets.shape}"
            )
        count, is_tuple, widths = _state_form(module, layer, True, tokens[:1])
        names = names_of_state(layer, count)
        state0 = _initial_state(hx, (rows, tokens.shape[1]), widths, dtype, names, is_tuple)
        return Problem(
            module, layer, True, dtype, None, tokens, targets, state0, is_tuple, upstream={}, **common
        )
    if targets is not None:
        raise ValueError("compare: targets are for a language model; a recurrent layer's loss is Σ out ⊙ G")
    x = _array(inputs, dtype)
    if x.ndim not in (2, 3) or x.shape[-1] != layer.input_size:
        raise ValueError(
            f"compare: expected x of shape (T, N, {layer.input_size}) (or (N, T, ·) with batch_first, or "
            f"unbatched (T, {layer.input_size})), got {x.shape}"
        )
    batch = () if x.ndim == 2 else (x.shape[0 if layer.batch_first else 1],)
    count, is_tuple, widths = _state_form(module, layer, False, x)
    names = names_of_state(layer, count)
    state0 = _initial_state(hx, (rows, *batch), widths, dtype, names, is_tuple)
    shapes = {"output": (*x.shape[:-1], layer.num_directions * widths[0])}
    shapes.update({f"{name}_n": s.shape for name, s in zip(names, state0, strict=True)})
    rng = np.random.default_rng(seed)
    upstream = {key: rng.standard_normal(shape).astype(dtype) for key, shape in shapes.items()}
    return Problem(module, layer, False, dtype, x, None, None, state0, is_tuple, upstream=upstream, **common)
