"""What the two paths share: the module, its inputs as arrays, the upstream gradients, the options.

A recurrent module (nn.RNN / nn.LSTM / nn.GRU) is compared on the loss

    L = Σ output ⊙ G + Σ h_n ⊙ G_h  (+ Σ c_n ⊙ G_c for LSTM),   G, G_h, G_c ~ N(0, 1) from `seed`,

so dL/doutput = G exactly and every element of the output carries its own weight (a uniform
upstream gradient, as from a mean, would hide permuted or transposed gradients).  A language model
(a module with submodules embedding, rnn, decoder) is compared on its cross-entropy summed over the
valid positions t < L_n.  Both paths receive the same arrays; `Run` is what each returns.
"""

from typing import Any, NamedTuple

import numpy as np

from ..nn import RNNBase
from ..tensor import Tensor
from .measures import tolerance_for

STATE_NAMES = {"LSTM": ("h", "c")}


class Problem(NamedTuple):
    """The arrays and options of one comparison; every float array is in the parameters' dtype.

    x:        recurrent input in the module's layout ((T, N, D), (N, T, D) or unbatched (T, D)).
    tokens, targets: the language model's integer ids (T, N).
    state0:   (h0,) or (h0, c0), each (L·dirs, N, H) ((L·dirs, H) unbatched); zeros when not given.
    upstream: G for 'output', 'h_n' and 'c_n' (recurrent modules; empty for a language model).
    """

    module: Any
    rnn: RNNBase
    is_lm: bool
    dtype: np.dtype
    x: np.ndarray | None
    tokens: np.ndarray | None
    targets: np.ndarray | None
    state0: tuple[np.ndarray, ...]
    lengths: np.ndarray | None
    upstream: dict[str, np.ndarray]
    tbptt: int | None
    max_norm: float | None

    @property
    def state_names(self) -> tuple[str, ...]:
        """('h',) or ('h', 'c'): the arrays of a state, named as in h0 / h_n."""
        return STATE_NAMES.get(self.rnn.mode, ("h",))


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
    """

    forward: dict[str, np.ndarray]
    params: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]
    step_dh: dict[str, np.ndarray]
    step_dparams: dict[str, dict[str, np.ndarray]]
    clipped: dict[str, np.ndarray] | None
    total_norm: float | None


def _array(value: Any, dtype: Any = None) -> np.ndarray:
    """A copy of a Tensor's or an array-like's values, converted to `dtype` when given."""
    return np.array(value.data if isinstance(value, Tensor) else value, dtype=dtype)


def _integers(value: Any, label: str) -> np.ndarray:
    array = _array(value)
    if array.dtype.kind not in "iu":
        raise TypeError(f"compare: expected integer {label}, got dtype {array.dtype}")
    return array


def _recurrent_of(module: Any) -> tuple[RNNBase, bool]:
    """The recurrent stack to compare and whether `module` is a language model around it."""
    is_lm = all(hasattr(module, name) for name in ("embedding", "rnn", "decoder"))
    rnn = module.rnn if is_lm else module
    if not isinstance(rnn, RNNBase):
        raise TypeError(
            "compare: expected an nn.RNN / nn.LSTM / nn.GRU, or a language model with submodules "
            f"embedding, rnn and decoder; got {type(module).__name__}"
        )
    if rnn.dropout > 0 and rnn.training:
        raise ValueError(
            f"compare: the module applies dropout={rnn.dropout} between layers, which the manual path "
            "does not; call module.eval() or build it with dropout=0"
        )
    return rnn, is_lm


def _initial_state(
    hx: Any, rows: tuple[int, ...], dtype: np.dtype, names: tuple[str, ...]
) -> tuple[np.ndarray, ...]:
    """hx as a tuple of arrays of shape `rows` (zeros when hx is None)."""
    if hx is None:
        return tuple(np.zeros(rows, dtype=dtype) for _ in names)
    parts = tuple(hx) if len(names) == 2 else (hx,)
    if len(names) == 2 and len(parts) != 2:
        raise ValueError(f"compare: expected hx = (h0, c0) for an LSTM, got {len(parts)} arrays")
    state = tuple(_array(p, dtype) for p in parts)
    for name, s in zip(names, state, strict=True):
        if s.shape != rows:
            raise ValueError(f"compare: expected {name}0 of shape (L·dirs, N, H) = {rows}, got {s.shape}")
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
) -> Problem:
    """Check the arguments of `compare` and bring them to arrays; draw the upstream gradients."""
    rnn, is_lm = _recurrent_of(module)
    dtype = np.dtype(rnn.dtype)
    tolerance_for(dtype)
    if tbptt is not None and (not is_lm or not isinstance(tbptt, int | np.integer) or tbptt < 1):
        raise ValueError(f"compare: tbptt needs a language model and a chunk length k ≥ 1, got {tbptt!r}")
    if max_norm is not None and not max_norm > 0:
        raise ValueError(f"compare: max_norm must be positive, got {max_norm!r}")
    names = STATE_NAMES.get(rnn.mode, ("h",))
    rows = rnn.num_layers * rnn.num_directions
    lengths = None if lengths is None else _integers(lengths, "lengths")
    if is_lm:
        if targets is None:
            raise ValueError("compare: a language model needs targets (T, N) for its cross-entropy")
        tokens, targets = _integers(inputs, "tokens"), _integers(targets, "targets")
        if tokens.ndim != 2 or targets.shape != tokens.shape:
            raise ValueError(
                "compare: expected tokens and targets of one shape (T, N), "
                f"got {tokens.shape} and {targets.shape}"
            )
        state0 = _initial_state(hx, (rows, tokens.shape[1], rnn.hidden_size), dtype, names)
        return Problem(module, rnn, True, dtype, None, tokens, targets, state0, lengths, {}, tbptt, max_norm)
    if targets is not None:
        raise ValueError("compare: targets are for a language model; a recurrent module's loss is Σ out ⊙ G")
    x = _array(inputs, dtype)
    if x.ndim not in (2, 3) or x.shape[-1] != rnn.input_size:
        raise ValueError(
            f"compare: expected x of shape (T, N, {rnn.input_size}) (or (N, T, ·) with batch_first, or "
            f"unbatched (T, {rnn.input_size})), got {x.shape}"
        )
    batch = () if x.ndim == 2 else (x.shape[0 if rnn.batch_first else 1],)
    state0 = _initial_state(hx, (rows, *batch, rnn.hidden_size), dtype, names)
    shapes = {"output": (*x.shape[:-1], rnn.num_directions * rnn.hidden_size)}
    shapes.update({f"{name}_n": state0[0].shape for name in names})
    rng = np.random.default_rng(seed)
    upstream = {key: rng.standard_normal(shape).astype(dtype) for key, shape in shapes.items()}
    return Problem(module, rnn, False, dtype, x, None, None, state0, lengths, upstream, tbptt, max_norm)
