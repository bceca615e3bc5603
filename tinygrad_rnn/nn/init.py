"""Parameter initialisation, drawn from a Generator that is passed in (no global random state)."""

from typing import Any

import numpy as np

from ..tensor import FLOAT_DTYPES, _as_dtype
from .module import Parameter


def float_dtype(dtype: Any, owner: str) -> np.dtype:
    resolved = _as_dtype(dtype) if dtype is not None else np.dtype(np.float32)
    if resolved not in FLOAT_DTYPES:
        raise TypeError(f"{owner}: dtype must be a float dtype, got {resolved}")
    return resolved


def uniform(rng: np.random.Generator, bound: float, shape: tuple[int, ...], dtype: np.dtype) -> Parameter:
    """A Parameter drawn from U(−bound, bound), the init torch uses for Linear and the recurrent layers."""
    return Parameter(rng.uniform(-bound, bound, shape).astype(dtype))
