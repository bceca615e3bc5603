"""Ways to make a tensor: zeros, ones, randn, rand, zeros_like, arange, eye (as torch).

Inside a step being recorded for replay, a tensor filled from Python numbers (zeros, ones, arange,
eye) is a constant compared by value; a random draw keeps the step op by op (replay.py).
"""

from typing import Any

import numpy as np

from .context import outside_data
from .tensor import DEFAULT_FLOAT, Tensor


def _shape(shape: tuple[Any, ...]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = tuple(shape[0])
    return tuple(int(n) for n in shape)


def _make(array: np.ndarray, requires_grad: bool, name: str | None) -> Tensor:
    """A leaf owning `array` (made here from Python numbers, so no copy)."""
    t = Tensor._make(array, False, None, 0, None)
    t.requires_grad_(requires_grad)
    t.name = name
    return t


def _drawn(array: np.ndarray, requires_grad: bool, name: str | None) -> Tensor:
    outside_data("a random tensor was drawn")
    return _make(array, requires_grad, name)


def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    return _make(np.zeros(_shape(shape), dtype=dtype or DEFAULT_FLOAT), requires_grad, name)


def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    return _make(np.ones(_shape(shape), dtype=dtype or DEFAULT_FLOAT), requires_grad, name)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(np.zeros(t.shape, dtype=dtype or t.dtype), requires_grad, None)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(np.ones(t.shape, dtype=dtype or t.dtype), requires_grad, None)


def generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator (used as it is), a seed, or None (fresh entropy): the one way
    randomness comes in, since there is no global random state."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def randn(
    *shape: Any,
    dtype: Any = None,
    requires_grad: bool = False,
    rng: np.random.Generator | int | None = None,
    name: str | None = None,
) -> Tensor:
    """Standard normal samples from `rng` (a Generator or a seed; no global random state)."""
    array = generator(rng).standard_normal(_shape(shape)).astype(dtype or DEFAULT_FLOAT)
    return _drawn(array, requires_grad, name)


def rand(
    *shape: Any,
    dtype: Any = None,
    requires_grad: bool = False,
    rng: np.random.Generator | int | None = None,
    name: str | None = None,
) -> Tensor:
    """Uniform samples in [0, 1) from `rng` (a Generator or a seed)."""
    array = generator(rng).random(_shape(shape)).astype(dtype or DEFAULT_FLOAT)
    return _drawn(array, requires_grad, name)


def arange(
    start: float, end: float | None = None, step: float = 1, *, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    """Like torch.arange: integers give int64, any float argument gives float32 unless dtype says."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = np.int64 if all(isinstance(v, int) for v in (start, end, step)) else DEFAULT_FLOAT
    return _make(np.arange(start, end, step, dtype=dtype), requires_grad, None)


def eye(n: int, m: int | None = None, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(np.eye(n, m, dtype=dtype or DEFAULT_FLOAT), requires_grad, None)
