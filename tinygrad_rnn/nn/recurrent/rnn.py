"""RNN, LSTM and GRU layers with PyTorch's signatures, parameter names (`weight_ih_l0`, ...) and shapes.

They run the one recurrence of layer.py with their own optimised steps (steps.py): per layer and
direction the input projection of all time steps is one matmul, and each step one matmul for all
gates. Steps are recorded under ``rnn``, ``lstm`` or ``gru`` scopes (``lstm.l0.t3``, ``lstm.l0r.t3``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...tensor import Tensor
from ..init import float_dtype, uniform
from ..scopes import TimeDirection
from .checks import check_compile, check_flag, check_size
from .layer import RecurrentBase
from .steps import GRUStep, LSTMStep, RNNStep

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
CELL_NAMES = {"RNN_TANH": "rnn", "RNN_RELU": "rnn", "LSTM": "lstm", "GRU": "gru"}  # in the step scopes


def nonlinearity_mode(nonlinearity: str) -> str:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


def projection_size(owner: str, mode: str, proj_size: Any, hidden_size: int) -> int:
    """torch's proj_size: an int, 0 (no projection) or in 1..H−1, and for LSTM only."""
    proj_size = check_size(owner, "proj_size", proj_size, minimum=0)
    if proj_size and mode != "LSTM":
        raise ValueError(f"{owner}: proj_size is only supported for LSTM, got proj_size={proj_size}")
    if proj_size >= hidden_size:
        raise ValueError(
            f"{owner}: proj_size has to be smaller than hidden_size ({hidden_size}), got {proj_size}"
        )
    return proj_size


def init_bound(hidden_size: int) -> float:
    """1/√H, torch's U(−1/√H, 1/√H) (0 for H = 0, where there is nothing to draw)."""
    return 1 / np.sqrt(hidden_size) if hidden_size else 0.0


class RNNBase(RecurrentBase):
    """The weights of RNN, LSTM and GRU (torch.nn.RNNBase): weight_ih_l{k}[_reverse] (G·H, D or dirs·H),
    weight_hh_l{k} (G·H, H), bias_ih_l{k}, bias_hh_l{k} (G·H,), all U(−1/√H, 1/√H). An LSTM with
    proj_size P > 0 also has weight_hr_l{k} (P, H); h is then of width P (weight_hh (4H, P), the next
    layer's input dirs·P, h_n (L·dirs, N, P)) while c keeps H."""

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
        proj_size: int = 0,
        dtype: Any = None,
        rng: np.random.Generator | int | None = None,
        compile: bool | None = None,  # noqa: A002
    ) -> None:
        name = type(self).__name__
        bias = check_flag(name, "bias", bias)
        super().__init__(
            input_size, hidden_size, num_layers, batch_first, dropout, bidirectional, rng, CELL_NAMES[mode]
        )
        self.mode, self.bias, self.reset_after = mode, bias, check_flag(name, "reset_after", reset_after)
        self.compile = check_compile(
            name, compile, None
        )  # the built-in steps are pure: replayed unless False
        self.state_names = ("h_0", "c_0") if mode == "LSTM" else ("hx",)
        self.proj_size = projection_size(name, mode, proj_size, self.hidden_size)
        dtype = float_dtype(dtype, name)
        hidden = self.hidden_size
        bound, rows = init_bound(hidden), GATES[mode] * hidden
        for layer in range(self.num_layers):
            width = self._layer_input_size(layer)
            for suffix in self._suffixes(layer):
                setattr(self, f"weight_ih{suffix}", uniform(self._rng, bound, (rows, width), dtype))
                setattr(
                    self, f"weight_hh{suffix}", uniform(self._rng, bound, (rows, self._state_size(0)), dtype)
                )
                if bias:
                    setattr(self, f"bias_ih{suffix}", uniform(self._rng, bound, (rows,), dtype))
                    setattr(self, f"bias_hh{suffix}", uniform(self._rng, bound, (rows,), dtype))
                if self.proj_size:
                    setattr(
                        self, f"weight_hr{suffix}", uniform(self._rng, bound, (self.proj_size, hidden), dtype)
                    )

    def _direction(self, layer: int, way: TimeDirection) -> RNNStep | LSTMStep | GRUStep:
        suffix = way.suffix(layer)
        w_ih, w_hh = getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}")
        b_ih, b_hh = (
            (getattr(self, f"bias_ih{suffix}"), getattr(self, f"bias_hh{suffix}"))
            if self.bias
            else (None, None)
        )
        if self.mode == "LSTM":
            return LSTMStep(
                w_ih, w_hh, b_ih, b_hh, getattr(self, f"weight_hr{suffix}") if self.proj_size else None
            )
        if self.mode == "GRU":
            return GRUStep(w_ih, w_hh, b_ih, b_hh, self.reset_after)
        return RNNStep(w_ih, w_hh, b_ih, b_hh, "tanh" if self.mode == "RNN_TANH" else "relu")

    def _zero_state(self, batch: int) -> Tensor | tuple[Tensor, Tensor]:
        h, c = (
            Tensor._make(np.zeros((batch, self._state_size(part)), dtype=self.dtype), False, None, 0, None)
            for part in (0, 1)
        )
        return (h, c) if self.mode == "LSTM" else h

    def _state_size(self, part: int) -> int:
        """h (part 0) is proj_size wide when projected; c keeps hidden_size."""
        return self.proj_size if part == 0 and self.proj_size else self.hidden_size

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            text += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            text += ", nonlinearity='relu'"
        if not self.bias:
            text += ", bias=False"
        text += self._extra_options()
        if self.mode == "GRU" and not self.reset_after:
            text += ", reset_after=False"
        return text


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
        compile: bool | None = None,  # noqa: A002
    ) -> None:
        super().__init__(
            nonlinearity_mode(nonlinearity),
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype=dtype,
            rng=rng,
            compile=compile,
        )
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """LSTM with gates i|f|g|o stacked in the rows of weight_ih_l{k} (4H, ·), as torch.nn.LSTM;
    proj_size P > 0 projects h to P columns, h_t = (o ⊙ tanh(c_t)) W_hrᵀ (torch's LSTM with projections)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        dtype: Any = None,
        rng: np.random.Generator | int | None = None,
        compile: bool | None = None,  # noqa: A002
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
            proj_size=proj_size,
            dtype=dtype,
            rng=rng,
            compile=compile,
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
        compile: bool | None = None,  # noqa: A002
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
            compile=compile,
        )


LAYERS: dict[str, type[RNNBase]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}  # by the names commands take
