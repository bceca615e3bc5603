"""Two custom cells written with plain Tensor ops, as a user would: shared by the tests (and usable as
`--cell tests/cells_for_tests.py:PeepholeLSTMCell` on the command line).

PeepholeLSTMCell (Gers & Schmidhuber 2000): the gates also see the cell state,
    i = σ(x W_iᵀ + h U_iᵀ + b_i + p_i ⊙ c),  f = σ(x W_fᵀ + h U_fᵀ + b_f + p_f ⊙ c),
    g = tanh(x W_gᵀ + h U_gᵀ + b_g),  c' = f ⊙ c + i ⊙ g,
    o = σ(x W_oᵀ + h U_oᵀ + b_o + p_o ⊙ c'),  h' = o ⊙ tanh(c').
IndRNNCell (Li et al. 2018): h' = relu(x Wᵀ + b + u ⊙ h), a vector recurrent weight u (H,).
"""

from __future__ import annotations

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import nn


def _uniform(rng: np.random.Generator, hidden: int, shape: tuple[int, ...], dtype) -> nn.Parameter:
    bound = 1 / np.sqrt(hidden) if hidden else 0.0
    return nn.Parameter(rng.uniform(-bound, bound, shape).astype(dtype or np.float32))


class PeepholeLSTMCell(nn.Module):
    """weight_ih (4H, D), weight_hh (4H, H), bias (4H,) in i|f|g|o order; peep_i, peep_f, peep_o (H,)."""

    def __init__(self, input_size: int, hidden_size: int, *, dtype=None, rng=None) -> None:
        super().__init__()
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.hidden_size = hidden_size
        self.weight_ih = _uniform(rng, hidden_size, (4 * hidden_size, input_size), dtype)
        self.weight_hh = _uniform(rng, hidden_size, (4 * hidden_size, hidden_size), dtype)
        self.bias = _uniform(rng, hidden_size, (4 * hidden_size,), dtype)
        self.peep_i = _uniform(rng, hidden_size, (hidden_size,), dtype)
        self.peep_f = _uniform(rng, hidden_size, (hidden_size,), dtype)
        self.peep_o = _uniform(rng, hidden_size, (hidden_size,), dtype)

    def forward(self, x: tg.Tensor, state: tuple[tg.Tensor, tg.Tensor] | None = None):
        if state is None:
            zeros = tg.zeros(x.shape[0], self.hidden_size, dtype=x.dtype)
            state = (zeros, zeros)
        h, c = state
        i, f, g, o = (x @ self.weight_ih.T + h @ self.weight_hh.T + self.bias).chunk(4, 1)
        i = (i + self.peep_i * c).sigmoid()
        f = (f + self.peep_f * c).sigmoid()
        c = f * c + i * g.tanh()
        o = (o + self.peep_o * c).sigmoid()
        return o * c.tanh(), c


class IndRNNCell(nn.Module):
    """weight_ih (H, D), bias (H,), weight_hh (H,): each unit sees only its own past."""

    def __init__(self, input_size: int, hidden_size: int, *, dtype=None, rng=None) -> None:
        super().__init__()
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.hidden_size = hidden_size
        self.weight_ih = _uniform(rng, hidden_size, (hidden_size, input_size), dtype)
        self.bias = _uniform(rng, hidden_size, (hidden_size,), dtype)
        self.weight_hh = nn.Parameter(rng.uniform(0.0, 1.0, (hidden_size,)).astype(dtype or np.float32))

    def forward(self, x: tg.Tensor, h: tg.Tensor | None = None) -> tg.Tensor:
        pre = x @ self.weight_ih.T + self.bias
        return (pre if h is None else pre + self.weight_hh * h).relu()
