"""How two arrays are said to agree: absolute and relative error, tolerances, gate blocks.

For a computed a and a reference m of one shape:

    abs = max_i |a_i − m_i|,     rel = abs / max(‖a‖∞, ‖m‖∞)     (0 when both are zero)

The relative error is taken against the largest magnitude of the quantity, not element by element,
so an element that is tiny by cancellation does not turn round-off into a large ratio.  NaN or inf
anywhere gives rel = inf, which no tolerance accepts.
"""

import re
from typing import NamedTuple

import numpy as np

TOLERANCES = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}
FD_TOLERANCE = 1e-6  # central differences in float64 with eps = 1e-6: error ~ eps² + 1e-16 / eps
GATE_LABELS = {"LSTM": ("i", "f", "g", "o"), "GRU": ("r", "z", "n")}
STACKED_KEY = re.compile(r"(?:^|\.)(?:weight|bias)_(?:ih|hh)_l\d+(?:_reverse)?$")


class Agreement(NamedTuple):
    """abs = max |a − m|, rel = abs / max(‖a‖∞, ‖m‖∞), scale = ‖a‖∞ (the first array's size)."""

    abs: float
    rel: float
    scale: float


def agreement(a: np.ndarray, m: np.ndarray) -> Agreement:
    """The errors between a and m (same shape), computed in float64."""
    a, m = np.asarray(a, dtype=np.float64), np.asarray(m, dtype=np.float64)
    if a.shape != m.shape:
        raise ValueError(f"agreement: shapes differ, {a.shape} and {m.shape}")
    if a.size == 0:
        return Agreement(0.0, 0.0, 0.0)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(m))):
        return Agreement(np.inf, np.inf, float(np.max(np.abs(a))))
    scale_a, scale_m = float(np.max(np.abs(a))), float(np.max(np.abs(m)))
    err = float(np.max(np.abs(a - m)))
    scale = max(scale_a, scale_m)
    return Agreement(err, err / scale if scale > 0 else 0.0, scale_a)


def tolerance_for(dtype: np.dtype) -> float:
    """The default relative tolerance between the two paths: 1e-10 in float64, 1e-4 in float32."""
    dtype = np.dtype(dtype)
    if dtype not in TOLERANCES:
        raise TypeError(f"compare: expected float64 or float32 parameters, got {dtype}")
    return TOLERANCES[dtype]


def gate_blocks(name: str, shape: tuple[int, ...], mode: str) -> tuple[str, ...]:
    """Labels of the gate blocks stacked in the rows of a recurrent parameter, () when unstacked.

    weight_ih_l{k} (G·H, ·), weight_hh_l{k} (G·H, H) and the biases (G·H,) hold the gates in row
    blocks of H: LSTM i|f|g|o, GRU r|z|n.  An RNN (G = 1) and every other parameter give ().
    """
    labels = GATE_LABELS.get(mode, ())
    if not labels or not STACKED_KEY.search(name) or shape[0] % len(labels):
        return ()
    return labels


def block_agreements(
    a: np.ndarray, m: np.ndarray, labels: tuple[str, ...]
) -> tuple[tuple[str, Agreement], ...]:
    """Per gate block: the errors of rows [b·H, (b+1)·H), relative to the whole parameter's scale.

    Using the parameter's scale keeps the blocks' verdicts consistent with the parameter's own.
    """
    if not labels:
        return ()
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(m))))
    rows = a.shape[0] // len(labels)
    blocks = []
    for b, label in enumerate(labels):
        part = agreement(a[b * rows : (b + 1) * rows], m[b * rows : (b + 1) * rows])
        blocks.append((label, part._replace(rel=part.abs / scale if scale > 0 else part.abs)))
    return tuple(blocks)
