"""Embedding: a lookup table of vectors, one row per id (as torch.nn.Embedding)."""

from typing import Any

import numpy as np

from ..factories import generator
from ..tensor import Tensor
from . import functional as F
from .init import float_dtype
from .module import Module, Parameter


class Embedding(Module):
    """weight (V, E) ~ N(0, 1); forward(ids) = weight[ids]. The row `padding_idx` starts at zero and
    receives no gradient."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        dtype: Any = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx must be in [-{num_embeddings}, {num_embeddings}), "
                    f"got {padding_idx}"
                )
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        weight = (
            generator(rng)
            .standard_normal((num_embeddings, embedding_dim))
            .astype(float_dtype(dtype, "Embedding"))
        )
        if padding_idx is not None:
            weight[padding_idx] = 0
        self.weight = Parameter(weight)

    def forward(self, ids: Any) -> Tensor:
        return F.embedding(ids, self.weight, padding_idx=self.padding_idx)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")
