"""Two cells written with plain Tensor ops, as you would write your own: examples of the cell protocol
(`nn.Recurrent(PeepholeLSTMCell, D, H, ...)`), used by the tests, the bench and the docs.

PeepholeLSTMCell (Gers & Schmidhuber 2000): the gates also see the cell state,
    i = σ(x W_iᵀ + h U_iᵀ + b_i + p_i ⊙ c),  f = σ(x W_fᵀ + h U_fᵀ + b_f + p_f ⊙ c),
    g = tanh(x W_gᵀ + h U_gᵀ + b_g),  c' = f ⊙ c + i ⊙ g,
    o = σ(x W_oᵀ + h U_oᵀ + b_o + p_o ⊙ c'),  h' = o ⊙ tanh(c').
IndRNNCell (Li et al. 2018): h' = relu(x Wᵀ + b + u ⊙ h), a vector recurrent weight u (H,).
Weights are drawn from U(−1/√H, 1/√H) (u from U(0, 1)) with the `rng` given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..factories import generator, zeros
from ..tensor import Tensor
from .init import float_dtype, uniform
from .module import Module, Parameter


class PeepholeLSTMCell(Module):
    """weight_ih (4H, D), weight_hh (4H, H), bias (4H,) in i|f|g|o order; peep_i, peep_f, peep_o (H,)."""

    pure = True  # its step reads no values and keeps no Python state: nn.Recurrent may replay it

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        dtype: Any = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        rng, dtype = generator(rng), float_dtype(dtype, "PeepholeLSTMCell")
        bound, self.hidden_size = 1 / np.sqrt(hidden_size), hidden_size
        self.weight_ih = uniform(rng, bound, (4 * hidden_size, input_size), dtype)
        self.weight_hh = uniform(rng, bound, (4 * hidden_size, hidden_size), dtype)
        self.bias = uniform(rng, bound, (4 * hidden_size,), dtype)
        self.peep_i = uniform(rng, bound, (hidden_size,), dtype)
        self.peep_f = uniform(rng, bound, (hidden_size,), dtype)
        self.peep_o = uniform(rng, bound, (hidden_size,), dtype)

    def initial_state(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """(h_0, c_0) = zeros (N, H): what the layer starts each sequence from without hx."""
        return (zeros(batch_size, self.hidden_size, dtype=self.weight_ih.dtype),) * 2

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        h, c = self.initial_state(x.shape[0]) if state is None else state
        i, f, g, o = (x @ self.weight_ih.T + h @ self.weight_hh.T + self.bias).chunk(4, 1)
        i = (i + self.peep_i * c).sigmoid()
        f = (f + self.peep_f * c).sigmoid()
        c = f * c + i * g.tanh()
        o = (o + self.peep_o * c).sigmoid()
        return o * c.tanh(), c


class IndRNNCell(Module):
    """weight_ih (H, D), bias (H,), weight_hh (H,): each unit sees only its own past."""

    pure = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        dtype: Any = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        rng, dtype = generator(rng), float_dtype(dtype, "IndRNNCell")
        bound, self.hidden_size = 1 / np.sqrt(hidden_size), hidden_size
        self.weight_ih = uniform(rng, bound, (hidden_size, input_size), dtype)
        self.bias = uniform(rng, bound, (hidden_size,), dtype)
        self.weight_hh = Parameter(rng.uniform(0.0, 1.0, (hidden_size,)).astype(dtype))  # a decay per unit

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        pre = x @ self.weight_ih.T + self.bias
        return (pre if h is None else pre + self.weight_hh * h).relu()
