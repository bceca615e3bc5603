"""Dropout as a module: active in train(), the identity in eval()."""

import numpy as np

from ..factories import generator
from ..tensor import Tensor
from . import functional as F
from .module import Module


class Dropout(Module):
    """Zeroes each element with probability p in training and scales the rest by 1/(1 − p)."""

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p
        self._rng = generator(rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, training=self.training, rng=self._rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"
