"""The language model of the classic derivations: Embedding → recurrent stack → Linear.

h_t = tanh(U x_t + W h_{t−1} + b), o_t = V h_t + c, ŷ_t = softmax(o_t), L = Σ_t L_t, with
U = rnn.weight_ih_l0, W = rnn.weight_hh_l0, V = decoder.weight (and LSTM or GRU in place of tanh).
"""

from typing import Any

import numpy as np

from ..factories import generator
from ..tensor import Tensor
from .embedding import Embedding
from .linear import Linear
from .module import Module
from .recurrent import LAYERS


class LanguageModel(Module):
    """forward(tokens (T, N) ints, hx=None, lengths=None) -> (logits (T, N, V), state)."""

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden_size: int,
        cell: str = "lstm",
        num_layers: int = 1,
        dropout: float = 0.0,
        *,
        dtype: Any = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        if cell not in LAYERS:
            raise ValueError(f"LanguageModel: cell must be one of {sorted(LAYERS)}, got {cell!r}")
        rng = generator(rng)
        self.cell = cell
        self.embedding = Embedding(vocab_size, embedding_dim, dtype=dtype, rng=rng)
        self.rnn = LAYERS[cell](embedding_dim, hidden_size, num_layers, dropout=dropout, dtype=dtype, rng=rng)
        self.decoder = Linear(hidden_size, vocab_size, dtype=dtype, rng=rng)

    def forward(self, tokens: Any, hx: Any = None, lengths: Any = None) -> tuple[Tensor, Any]:
        output, state = self.rnn(self.embedding(tokens), hx, lengths=lengths)
        return self.decoder(output), state
