"""RNNCell, LSTMCell, GRUCell: one time step as a module, with torch's parameter names and shapes.

Each follows the cell protocol (protocol.py), so `nn.Recurrent(nn.LSTMCell, D, H)` runs it over a
sequence; the layers RNN, LSTM and GRU run the same steps (steps.py) with one projection per layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import ShapeError
from ...factories import generator, zeros
from ...tensor import Tensor
from ..init import float_dtype, uniform
from ..module import Module
from .checks import as_input, check_size
from .rnn import GATES, init_bound, nonlinearity_mode
from .steps import GRUStep, LSTMStep, RNNStep


class RNNCellBase(Module):
    """weight_ih (G·H, D), weight_hh (G·H, H), bias_ih, bias_hh (G·H,), all U(−1/√H, 1/√H)."""

    pure = True  # a step is a function of (x_t, state, parameters): nn.Recurrent may replay it

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        bias: bool,
        dtype: Any,
        rng: np.random.Generator | int | None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.input_size = check_size(name, "input_size", input_size, minimum=0)
        self.hidden_size = check_size(name, "hidden_size", hidden_size, minimum=0)
        self.mode, self.bias = mode, bool(bias)
        rng, dtype = generator(rng), float_dtype(dtype, name)
        bound, rows = init_bound(self.hidden_size), GATES[mode] * self.hidden_size
        self.weight_ih = uniform(rng, bound, (rows, self.input_size), dtype)
        self.weight_hh = uniform(rng, bound, (rows, self.hidden_size), dtype)
        self.bias_ih = uniform(rng, bound, (rows,), dtype) if self.bias else None
        self.bias_hh = uniform(rng, bound, (rows,), dtype) if self.bias else None

    def _check_input(self, input: Any) -> tuple[Tensor, bool]:
        """The input as an (N, D) Tensor, and whether it came batched."""
        name = type(self).__name__
        x = as_input(name, input, self.dtype)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ShapeError(
                f"{name}: expected input of shape (N, {self.input_size}) or ({self.input_size},), "
                f"got {x.shape}"
            )
        return (x, True) if x.ndim == 2 else (x.unsqueeze(0), False)

    def initial_state(self, batch_size: int) -> Tensor | tuple[Tensor, ...]:
        """Zeros (N, H): the state before the first step when none is given (a pair for LSTMCell)."""
        return zeros(batch_size, self.hidden_size, dtype=self.dtype)

    def _check_state(self, value: Any, batch: int, batched: bool, label: str) -> Tensor:
        """A state as an (N, H) Tensor: the one given, checked against the input, or zeros."""
        if value is None:
            return zeros(batch, self.hidden_size, dtype=self.dtype)
        name = type(self).__name__
        h = as_input(name, value, self.dtype)
        expected = (batch, self.hidden_size) if batched else (self.hidden_size,)
        if h.shape != expected:
            raise ShapeError(f"{name}: expected {label} of shape {expected} (as the input's), got {h.shape}")
        return h if batched else h.unsqueeze(0)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


def _unbatch(t: Tensor, batched: bool) -> Tensor:
    return t if batched else t.squeeze(0)


class RNNCell(RNNCellBase):
    """h' = φ(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh), φ = tanh or relu."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        *,
        dtype: Any = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(nonlinearity_mode(nonlinearity), input_size, hidden_size, bias, dtype, rng)
        self.nonlinearity = nonlinearity

    def forward(self, input: Any, hx: Any = None) -> Tensor:
        x, batched = self._check_input(input)
        h = self._check_state(hx, x.shape[0], batched, "hx")
        step = RNNStep(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.nonlinearity)
        return _unbatch(step(step.project(x), h), batched)


class LSTMCell(RNNCellBase):
    """i|f|g|o = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh; c' = σ(f) c + σ(i) tanh(g); h' = σ(o) tanh(c')."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        dtype: Any = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__("LSTM", input_size, hidden_size, bias, dtype, rng)

    def initial_state(self, batch_size: int) -> tuple[Tensor, Tensor]:
        return super().initial_state(batch_size), super().initial_state(batch_size)  # (h_0, c_0)

    def forward(self, input: Any, hx: Any = None) -> tuple[Tensor, Tensor]:
        if hx is not None and (not isinstance(hx, tuple | list) or len(hx) != 2):
            raise ShapeError(f"LSTMCell: expected hx = (h, c), got {type(hx).__name__}")
        x, batched = self._check_input(input)
        h0, c0 = hx if hx is not None else (None, None)
        h = self._check_state(h0, x.shape[0], batched, "h")
        c = self._check_state(c0, x.shape[0], batched, "c")
        step = LSTMStep(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        h, c = step(step.project(x), (h, c))
        return _unbatch(h, batched), _unbatch(c, batched)


class GRUCell(RNNCellBase):
    """r|z|n gates; h' = (1 − z) ⊙ n + z ⊙ h. reset_after picks where r enters n (see GRUStep)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        reset_after: bool = True,
        dtype: Any = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__("GRU", input_size, hidden_size, bias, dtype, rng)
        self.reset_after = reset_after

    def forward(self, input: Any, hx: Any = None) -> Tensor:
        x, batched = self._check_input(input)
        h = self._check_state(hx, x.shape[0], batched, "hx")
        step = GRUStep(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.reset_after)
        return _unbatch(step(step.project(x), h), batched)
