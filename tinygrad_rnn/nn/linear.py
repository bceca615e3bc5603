"""Linear: y = x Wᵀ + b over any leading axes (as torch.nn.Linear)."""

from typing import Any

import numpy as np

from ..factories import generator
from ..functions import linear
from ..tensor import Tensor
from .init import float_dtype, uniform
from .module import Module, as_input


class Linear(Module):
    """y = x Wᵀ + b. weight: (out_features, in_features), bias: (out_features,), both U(−1/√in, 1/√in)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype: Any = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        rng = generator(rng)
        dtype = float_dtype(dtype, "Linear")
        bound = 1 / np.sqrt(in_features) if in_features > 0 else 0.0
        self.weight = uniform(rng, bound, (out_features, in_features), dtype)
        self.bias = uniform(rng, bound, (out_features,), dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        x = as_input(x, self.weight.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear: expected input with last dimension {self.in_features} (in_features), "
                f"got shape {x.shape}"
            )
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        )
