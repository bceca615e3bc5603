"""Checking what comes into the recurrent layers and cells, as torch checks it.

Sizes must be ints and flags bools (TypeError otherwise, as torch: `bias=0` and `input_size=3.0`
are refused); shape mismatches raise `ShapeError`, which `except RuntimeError` written for torch
catches too.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np

from ...errors import DTypeError
from ...tensor import Tensor
from ..module import as_input as layer_input


def check_size(owner: str, label: str, value: Any, minimum: int = 1) -> int:
    """An int size ≥ `minimum` (1 for layers; cells, as torch's, accept a hidden size of 0)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{owner}: {label} should be of type int, got {type(value).__name__} {value!r}")
    if value < minimum:
        bound = "greater than zero" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{owner}: {label} must be {bound}, got {value}")
    return int(value)


def check_flag(owner: str, label: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{owner}: {label} should be of type bool, got {type(value).__name__} {value!r}")
    return bool(value)


def check_compile(owner: str, compile: Any, replay: Any) -> bool | str | None:  # noqa: A002
    """The `compile=` knob (None, True, "replay" or False), or its earlier name `replay=`; not both,
    differing."""
    if compile == "replay" and replay in (None, True):
        return "replay"
    for label, value in (("compile", compile), ("replay", replay)):
        if value is not None and not isinstance(value, bool | np.bool_):
            raise TypeError(
                f"{owner}: {label} should be None (the cell's own `pure` declaration), True, False or "
                f"(compile only) 'replay', got {type(value).__name__} {value!r}"
            )
    if compile is not None and replay is not None and bool(compile) != bool(replay):
        raise ValueError(
            f"{owner}: compile={compile} and replay={replay} disagree (replay is compile's old name)"
        )
    value = compile if compile is not None else replay
    return None if value is None else bool(value)


def check_dropout(owner: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value <= 1:
        raise ValueError(f"{owner}: dropout should be a number in [0, 1] (a probability), got {value!r}")
    return float(value)


def as_input(owner: str, value: Any, dtype: np.dtype, integers: bool = False) -> Tensor:
    """`value` as a Tensor of the parameters' dtype: an ndarray is wrapped, Python numbers and lists
    take `dtype` (nn.module.as_input); a Tensor or ndarray of another float dtype is refused, and of
    an integer dtype too unless `integers` (a cell's state may have an integer part, a step count)."""
    t = layer_input(value, dtype)
    if t.dtype != dtype and not (integers and t.dtype.kind in "iub"):
        raise DTypeError(
            f"{owner}: input has dtype {t.dtype} but the parameters are {dtype}; "
            "convert one (model.double() / model.float(), or tensor.double() / tensor.float())"
        )
    return t
