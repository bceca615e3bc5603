"""The language model of the classic derivations: Embedding → recurrent stack → Linear.

h_t = tanh(U x_t + W h_{t−1} + b), o_t = V h_t + c, ŷ_t = softmax(o_t), L = Σ_t L_t, with
U = rnn.weight_ih_l0, W = rnn.weight_hh_l0, V = decoder.weight (and LSTM or GRU in place of tanh,
or any cell: `cell=PeepholeLSTMCell` makes the stack nn.Recurrent(PeepholeLSTMCell, ...)).
"""

from typing import Any

import numpy as np

from ..factories import generator
from ..tensor import Tensor
from .embedding import Embedding
from .linear import Linear
from .module import Module
from .recurrent.factory import CellSpec, check_cell, make_layer


class LanguageModel(Module):
    """forward(tokens (T, N) ints, hx=None, lengths=None) -> (logits (T, N, V), state).

    `cell` is 'rnn', 'lstm', 'gru' (nn.RNN/LSTM/GRU) or a cell class following the cell protocol
    (nn.Recurrent of it; the cell gets `dtype=` and `rng=` when it takes them). The state is the
    recurrent stack's h_n, in the cell's structure.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden_size: int,
        cell: CellSpec = "lstm",
        num_layers: int = 1,
        dropout: float = 0.0,
        *,
        dtype: Any = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        check_cell(cell, "LanguageModel")
        rng = generator(rng)
        self.cell = cell
        self.embedding = Embedding(vocab_size, embedding_dim, dtype=dtype, rng=rng)
        self.rnn = make_layer(
            cell, embedding_dim, hidden_size, num_layers, dropout=dropout, dtype=dtype, rng=rng
        )
        self.decoder = Linear(hidden_size, vocab_size, dtype=dtype, rng=rng)
        model_dtype = self.embedding.weight.dtype
        for name, p in self.rnn.named_parameters():
            if p.dtype != model_dtype:
                raise TypeError(
                    f"LanguageModel: the recurrent stack's parameter {name} is {p.dtype} but the model is "
                    f"{model_dtype}; make the cell's parameters in the dtype= it is given"
                )

    def forward(self, tokens: Any, hx: Any = None, lengths: Any = None) -> tuple[Tensor, Any]:
        output, state = self.rnn(self.embedding(tokens), hx, lengths=lengths)
        return self.decoder(output), state
