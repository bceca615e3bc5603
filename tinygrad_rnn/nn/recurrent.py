"""RNN, LSTM and GRU layers and cells with PyTorch's signatures, parameter names and shapes.

Layers run time-major inside (T, N, ·); `batch_first` is handled at the boundary. Per layer and
direction the input projection of all time steps is one matmul; each step is one matmul for all
gates. Every step's ops are recorded under a scope such as ``lstm.l0.t3`` (``lstm.l0r.t3`` for the
reverse direction), which pictures use to draw one cluster per step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..context import scope
from ..factories import generator
from ..functions import cat, stack, where
from ..tensor import Tensor
from . import functional as F
from .init import float_dtype, uniform
from .module import Module
from .scopes import layer_scope, step_scope
from .steps import GRUStep, LSTMStep, RNNStep, State

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _as_input(owner: str, value: Any, dtype: np.dtype) -> Tensor:
    t = value if isinstance(value, Tensor) else Tensor(np.asarray(value), dtype=None)
    if t.dtype != dtype:
        raise TypeError(
            f"{owner}: input has dtype {t.dtype} but the parameters are {dtype}; "
            "convert one (model.double() / model.float(), or tensor.double() / tensor.float())"
        )
    return t


def _nonlinearity_mode(nonlinearity: str) -> str:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


class RNNBase(Module):
    """The shared machinery of RNN, LSTM and GRU (torch.nn.RNNBase)."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        reset_after: bool = True,
        dtype: Any = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        for label, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            if not isinstance(value, int | np.integer) or value <= 0:
                raise ValueError(f"{name}: {label} must be a positive integer, got {value!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout}")
        self.mode, self.input_size, self.hidden_size = mode, int(input_size), int(hidden_size)
        self.num_layers, self.bias, self.batch_first = int(num_layers), bool(bias), bool(batch_first)
        self.dropout, self.bidirectional, self.reset_after = float(dropout), bool(bidirectional), reset_after
        self._rng = generator(rng)
        dtype = float_dtype(dtype, name)
        bound = 1 / np.sqrt(hidden_size)
        rows = GATES[mode] * hidden_size
        for layer in range(self.num_layers):
            width = self.input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes(layer):
                setattr(self, f"weight_ih{suffix}", uniform(self._rng, bound, (rows, width), dtype))
                setattr(self, f"weight_hh{suffix}", uniform(self._rng, bound, (rows, hidden_size), dtype))
                if bias:
                    setattr(self, f"bias_ih{suffix}", uniform(self._rng, bound, (rows,), dtype))
                    setattr(self, f"bias_hh{suffix}", uniform(self._rng, bound, (rows,), dtype))

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def _step(self, suffix: str) -> RNNStep | LSTMStep | GRUStep:
        w_ih, w_hh = getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}")
        b_ih, b_hh = (
            (getattr(self, f"bias_ih{suffix}"), getattr(self, f"bias_hh{suffix}"))
            if self.bias
            else (None, None)
        )
        if self.mode == "LSTM":
            return LSTMStep(w_ih, w_hh, b_ih, b_hh)
        if self.mode == "GRU":
            return GRUStep(w_ih, w_hh, b_ih, b_hh, self.reset_after)
        return RNNStep(w_ih, w_hh, b_ih, b_hh, "tanh" if self.mode == "RNN_TANH" else "relu")

    # --- checking what comes in ----------------------------------------------------------------------

    def _check_input(self, input: Any) -> tuple[Tensor, bool]:
        """The input as a time-major (T, N, D) Tensor, and whether it came batched."""
        name = type(self).__name__
        x = _as_input(name, input, self.dtype)
        if x.ndim not in (2, 3):
            layout = "(N, T, D)" if self.batch_first else "(T, N, D)"
            raise ValueError(
                f"{name}: expected a 3-D {layout} or an unbatched 2-D (T, D) input, got shape {x.shape}"
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{name}: expected input of width {self.input_size} (input_size) in the last dimension, "
                f"got shape {x.shape}"
            )
        batched = x.ndim == 3
        x = (x.transpose(0, 1) if self.batch_first else x) if batched else x.unsqueeze(1)
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"{name}: the input has no time steps or no sequences, shape {input.shape}")
        return x, batched

    def _check_state(self, value: Any, batch: int, batched: bool, label: str) -> list[Tensor]:
        """One (N, H) initial state per layer and direction from hx of shape (L·dirs, N, H)."""
        name = type(self).__name__
        rows = self.num_layers * self.num_directions
        expected = (rows, batch, self.hidden_size) if batched else (rows, self.hidden_size)
        if value is None:
            zeros = Tensor._make(np.zeros((batch, self.hidden_size), dtype=self.dtype), False, None, 0, None)
            return [zeros] * rows
        state = _as_input(name, value, self.dtype)
        if state.shape != expected:
            raise ValueError(f"{name}: expected {label} of shape {expected}, got {state.shape}")
        if not batched:
            state = state.unsqueeze(1)
        return list(state.unbind(0))

    def _initial_states(self, hx: Any, batch: int, batched: bool) -> list[State]:
        if self.mode != "LSTM":
            return self._check_state(hx, batch, batched, "hx")
        if hx is None:
            hx = (None, None)
        if not isinstance(hx, tuple | list) or len(hx) != 2:
            raise ValueError(f"LSTM: expected hx = (h_0, c_0), got {type(hx).__name__}")
        h0 = self._check_state(hx[0], batch, batched, "h_0")
        c0 = self._check_state(hx[1], batch, batched, "c_0")
        return list(zip(h0, c0, strict=True))

    def _step_masks(self, lengths: Any, steps: int, batch: int, batched: bool) -> list[np.ndarray | None]:
        """For each step t, an (N, 1) mask of the sequences still running (None when all are)."""
        if lengths is None:
            return [None] * steps
        name = type(self).__name__
        if not batched:
            raise ValueError(f"{name}: lengths need a batched input; an unbatched input is one full sequence")
        lengths = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
        if lengths.shape != (batch,) or lengths.dtype.kind not in "iu":
            raise ValueError(
                f"{name}: expected lengths as {batch} integers (one per sequence), got {lengths.dtype} of "
                f"shape {lengths.shape}"
            )
        if lengths.min() < 1 or lengths.max() > steps:
            raise ValueError(
                f"{name}: every length must be in 1..{steps} (the number of time steps), "
                f"got {lengths.tolist()}"
            )
        shortest = lengths.min()
        return [None if t < shortest else (lengths > t)[:, None] for t in range(steps)]

    # --- the recurrence ------------------------------------------------------------------------------

    def _run_direction(
        self, layer: int, reverse: bool, x: Tensor, state: State, masks: list[np.ndarray | None]
    ) -> tuple[Tensor, State]:
        """One layer in one direction over the whole sequence: outputs (T, N, H) and the final state."""
        label = layer_scope(self.mode, layer, reverse)
        steps, batch, width = x.shape
        with scope(label):
            step = self._step(f"_l{layer}{'_reverse' if reverse else ''}")
            blocks = step.project(x.reshape(steps * batch, width))
            per_step = list(zip(*[b.reshape(steps, batch, -1).unbind(0) for b in blocks], strict=True))
        outputs: list[Tensor | None] = [None] * steps
        for t in reversed(range(steps)) if reverse else range(steps):
            with scope(step_scope(label, t)):
                new_state = step(per_step[t], state)
                h = new_state[0] if isinstance(new_state, tuple) else new_state
                if masks[t] is None:
                    outputs[t], state = h, new_state
                else:
                    outputs[t] = where(masks[t], h, 0.0)
                    state = _keep_finished(masks[t], new_state, state)
        return stack(outputs), state

    def forward(self, input: Any, hx: Any = None, lengths: Any = None) -> tuple[Tensor, Any]:
        """output (T, N, dirs·H) (or (N, T, ·) with batch_first, or (T, dirs·H) unbatched), and h_n
        (L·dirs, N, H) — (h_n, c_n) for LSTM. With `lengths`, padded steps leave the state alone and
        output zeros; h_n is each sequence's last valid state."""
        x, batched = self._check_input(input)
        steps, batch = x.shape[0], x.shape[1]
        masks = self._step_masks(lengths, steps, batch, batched)
        initial = self._initial_states(hx, batch, batched)
        finals: list[State] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                out, final = self._run_direction(layer, direction == 1, x, initial[len(finals)], masks)
                outputs.append(out)
                finals.append(final)
            x = outputs[0] if len(outputs) == 1 else cat(outputs, axis=2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True, rng=self._rng)
        return self._shape_output(x, finals, batched)

    def _shape_output(self, x: Tensor, finals: list[State], batched: bool) -> tuple[Tensor, Any]:
        if self.mode == "LSTM":
            h_n = stack([h for h, _ in finals])
            c_n = stack([c for _, c in finals])
            if not batched:
                return x.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
            return (x.transpose(0, 1) if self.batch_first else x), (h_n, c_n)
        h_n = stack(finals)
        if not batched:
            return x.squeeze(1), h_n.squeeze(1)
        return (x.transpose(0, 1) if self.batch_first else x), h_n

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            text += ", nonlinearity='relu'"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        if self.mode == "GRU" and not self.reset_after:
            text += ", reset_after=False"
        return text


def _keep_finished(mask: np.ndarray, new: State, old: State) -> State:
    """Sequences that have ended (mask False) keep their previous state."""
    if isinstance(new, tuple):
        return tuple(where(mask, n, o) for n, o in zip(new, old, strict=True))
    return where(mask, new, old)


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh) (or relu), as torch.nn.RNN."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        dtype: Any = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(
            _nonlinearity_mode(nonlinearity),
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype=dtype,
            rng=rng,
        )
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """LSTM with gates i|f|g|o stacked in the rows of weight_ih_l{k} (4H, ·), as torch.nn.LSTM."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        dtype: Any = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype=dtype,
            rng=rng,
        )


class GRU(RNNBase):
    """GRU with gates r|z|n in the rows of weight_ih_l{k} (3H, ·), as torch.nn.GRU; reset_after=False
    gives the original formulation n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        reset_after: bool = True,
        dtype: Any = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            reset_after=reset_after,
            dtype=dtype,
            rng=rng,
        )


LAYERS: dict[str, type[RNNBase]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}  # by the names commands take
