"""A recurrent layer from what a model or a command is told: a built-in's name or a cell class.

`make_layer("lstm", D, H, ...)` is nn.LSTM; `make_layer(PeepholeLSTMCell, D, H, ...)` is
nn.Recurrent(PeepholeLSTMCell, D, H, ...), the cell given `dtype=` (resolved: float32 by default) and
`rng=` when its constructor takes them (nn's cells do; a cell that draws its own weights some other
way is left to it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from ..init import float_dtype
from ..module import Module
from .layer import Recurrent, RecurrentBase
from .rnn import LAYERS

CellSpec = str | Callable[..., Module]


def make_layer(
    cell: CellSpec,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    *,
    dropout: float = 0.0,
    bidirectional: bool = False,
    dtype: Any = None,
    rng: np.random.Generator | int | None = None,
) -> RecurrentBase:
    """nn.RNN/LSTM/GRU for 'rnn', 'lstm', 'gru'; nn.Recurrent(cell, ...) for a cell class."""
    check_cell(cell, "make_layer")
    shape = {"dropout": dropout, "bidirectional": bidirectional}
    if isinstance(cell, str):
        return LAYERS[cell](input_size, hidden_size, num_layers, **shape, dtype=dtype, rng=rng)
    # the dtype resolved (float32 by default), so a cell may hand it straight to numpy
    given = (("dtype", float_dtype(dtype, "make_layer")), ("rng", rng))
    options = {k: v for k, v in given if _takes(cell, k)}
    return Recurrent(cell, input_size, hidden_size, num_layers, **shape, **options)


def check_cell(cell: Any, owner: str) -> None:
    """Refuse what names no layer: an unknown name, an instance, something not callable."""
    if isinstance(cell, str) and cell not in LAYERS:
        raise ValueError(f"{owner}: cell must be one of {sorted(LAYERS)} or a cell class, got {cell!r}")
    if not isinstance(cell, str) and (isinstance(cell, Module) or not callable(cell)):
        raise TypeError(f"{owner}: cell must be one of {sorted(LAYERS)} or a cell class, got {cell!r:.80}")


def _takes(factory: Callable[..., Any], keyword: str) -> bool:
    """Whether `factory(..., keyword=...)` is accepted (a named parameter or **kwargs)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # no signature to read (some builtins): pass nothing extra
        return False
    return any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        or (p.name == keyword and p.kind is not inspect.Parameter.POSITIONAL_ONLY)
        for p in parameters
    )
