"""Losses, softmax, dropout, embedding and linear as functions of Tensors (torch.nn.functional's names).

Everything here is composed from the Tensor's primitive ops (log_softmax, fancy-index gathers, where,
sum, ...), so every gradient comes from the autograd; nothing has a hand-written backward.
Letters: N (batch), C (classes), V (vocabulary), H (embedding size).
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np

from ..factories import generator
from ..functions import linear, where

__all__ = [
    "REDUCTIONS",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "dropout",
    "embedding",
    "linear",
    "log_softmax",
    "mse_loss",
    "nll_loss",
    "softmax",
]
from ..tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """softmax(x)_i = exp(x_i) / Σ_j exp(x_j) along `dim`."""
    return _float_tensor(x, "softmax", "x").softmax(dim=dim)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """log_softmax(x)_i = x_i − log Σ_j exp(x_j) along `dim` (never overflows)."""
    return _float_tensor(x, "log_softmax", "x").log_softmax(dim=dim)


def cross_entropy(
    logits: Tensor,
    target: Any,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """ℓ_i = (1 − ε)·(−log p_i[y_i]) + ε·(1/C) Σ_c −log p_i[c], with p_i = softmax over the class axis.

    Shapes as torch: logits (C,) with a scalar target, (N, C) with target (N,), or (N, C, d1, ...) with
    target (N, d1, ...); the class axis is 1 (0 for a 1-D input). `target` holds integer class indices
    (int ndarray or int Tensor). Positions whose target is `ignore_index` contribute 0 and are not
    counted: 'mean' divides by the number of kept targets (nan if there are none, as torch).
    """
    _check_options("cross_entropy", reduction, label_smoothing)
    flat, keep, shape = _class_targets(logits, target, ignore_index, "cross_entropy")
    log_p = logits.log_softmax(dim=min(1, logits.ndim - 1))
    return _negative_log_likelihood(log_p, flat, keep, shape, reduction, label_smoothing)


def nll_loss(log_probs: Tensor, target: Any, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """ℓ_i = −log_probs_i[y_i]; shapes, `ignore_index` and `reduction` as in `cross_entropy`."""
    _check_options("nll_loss", reduction, 0.0)
    flat, keep, shape = _class_targets(log_probs, target, ignore_index, "nll_loss")
    return _negative_log_likelihood(log_probs, flat, keep, shape, reduction, 0.0)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """ℓ = (input − target)², of equal shapes; `target` is a Tensor (gradient flows to it) or an array."""
    _check_options("mse_loss", reduction, 0.0)
    x = _float_tensor(input, "mse_loss", "input")
    y = _same_shape_target(x, target, "mse_loss")
    diff = x - y
    return _reduce(diff * diff, reduction)


def binary_cross_entropy_with_logits(
    logits: Tensor, target: Any, reduction: str = "mean", pos_weight: Any = None
) -> Tensor:
    """ℓ = (1 − y)·x + (1 + (p − 1)·y)·(max(−x, 0) + log(1 + e^{−|x|})), the stable form of
    −[p·y·log σ(x) + (1 − y)·log(1 − σ(x))]; with p = 1 it is max(x, 0) − x·y + log(1 + e^{−|x|}).

    `target` (probabilities in [0, 1]) has the logits' shape; `pos_weight` p broadcasts against it
    (one weight per class along the last axis, as torch). No exp ever sees a positive argument.
    """
    _check_options("binary_cross_entropy_with_logits", reduction, 0.0)
    x = _float_tensor(logits, "binary_cross_entropy_with_logits", "logits")
    y = _same_shape_target(x, target, "binary_cross_entropy_with_logits")
    p = None if pos_weight is None else _positive_class_weight(pos_weight, x)
    softplus_of_minus_x = (-x).maximum(0.0) + ((-x.abs()).exp() + 1.0).log()
    if p is not None:
        softplus_of_minus_x = (1.0 + (p - 1.0) * y) * softplus_of_minus_x
    return _reduce((1.0 - y) * x + softplus_of_minus_x, reduction)


def dropout(
    x: Tensor, p: float = 0.5, training: bool = True, rng: np.random.Generator | int | None = None
) -> Tensor:
    """Inverted dropout: y = x ⊙ m / (1 − p), m_i ~ Bernoulli(1 − p) drawn from `rng`.

    `rng` is a Generator (or a seed); no global random state is touched. With training=False or
    p = 0 the input itself is returned; p = 1 zeroes everything (as torch).
    """
    if isinstance(p, bool) or not isinstance(p, Real) or not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    x = _float_tensor(x, "dropout", "x")
    if not training or p == 0:
        return x
    keep = generator(rng).random(x.shape) >= p
    return x * (keep * (1.0 / (1.0 - p) if p < 1 else 0.0))


def embedding(ids: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """out[..., :] = weight[ids[...], :]: ids of any shape (integers in [0, V)), weight (V, H).

    The gradient of a row sums over every position that looked it up; the `padding_idx` row
    receives no gradient (its value is still returned), as torch.
    """
    index = _integer_array(ids, "embedding", "ids")
    w = _float_tensor(weight, "embedding", "weight")
    if w.ndim != 2:
        raise ValueError(f"embedding: weight must be (V, H), got shape {w.shape}")
    vocabulary = w.shape[0]
    if index.size and (index.min() < 0 or index.max() >= vocabulary):
        bad = index[(index < 0) | (index >= vocabulary)].flat[0]
        raise ValueError(f"embedding: id {bad} is out of range for a vocabulary of {vocabulary} (0..V-1)")
    if padding_idx is not None and not -vocabulary <= padding_idx < vocabulary:
        raise ValueError(f"embedding: padding_idx {padding_idx} is out of range for V = {vocabulary}")
    rows = w[index]
    if padding_idx is None:
        return rows
    looked_up = (index != padding_idx % vocabulary)[..., None]
    return where(looked_up, rows, rows.detach())


# --- helpers ---------------------------------------------------------------------------------------


def _check_options(op: str, reduction: str, label_smoothing: float) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing!r}")


def _float_tensor(x: Any, op: str, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be floating point, got dtype {x.dtype}")
    return x


def _integer_array(value: Any, op: str, name: str) -> np.ndarray:
    array = value.data if isinstance(value, Tensor) else np.asarray(value)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{op}: {name} must hold integer indices, got dtype {array.dtype}")
    return array


def _same_shape_target(x: Tensor, target: Any, op: str) -> Tensor:
    y = target if isinstance(target, Tensor) else Tensor(target, dtype=x.dtype)
    if y.dtype.kind != "f":
        raise TypeError(f"{op}: target must be floating point, got dtype {y.dtype}")
    if y.shape != x.shape:
        raise ValueError(f"{op}: target has shape {y.shape}, expected {x.shape} (the input's shape)")
    return y


def _positive_class_weight(pos_weight: Any, x: Tensor) -> Tensor:
    p = pos_weight if isinstance(pos_weight, Tensor) else Tensor(pos_weight, dtype=x.dtype)
    if p.ndim > x.ndim or any(n not in (1, m) for n, m in zip(p.shape[::-1], x.shape[::-1], strict=False)):
        raise ValueError(
            f"binary_cross_entropy_with_logits: pos_weight of shape {p.shape} does not broadcast to the "
            f"logits' shape {x.shape} (give one weight per class, shape {x.shape[-1:]})"
        )
    return p


def _class_targets(
    scores: Tensor, target: Any, ignore_index: int, op: str
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Validate class-index targets; return them flattened (ignored ones set to 0), the flat keep
    mask and the target's shape."""
    _float_tensor(scores, op, "input")
    if scores.ndim == 0:
        raise ValueError(f"{op}: input needs a class axis, got a 0-d tensor")
    t = _integer_array(target, op, "target")
    if scores.ndim == 1:
        expected, classes = (), scores.shape[0]
    else:
        expected, classes = (scores.shape[0],) + scores.shape[2:], scores.shape[1]
    if t.shape != expected:
        raise ValueError(
            f"{op}: target has shape {t.shape}, expected {expected} for input of shape {scores.shape} "
            f"(classes on axis {min(1, scores.ndim - 1)})"
        )
    keep = t != ignore_index
    outside = keep & ((t < 0) | (t >= classes))
    if outside.any():
        raise ValueError(
            f"{op}: class index {t[outside].flat[0]} is out of range for {classes} classes "
            f"(expected 0..{classes - 1} or ignore_index={ignore_index})"
        )
    return np.where(keep, t, 0).reshape(-1), keep.reshape(-1), t.shape


def _rows_by_class(scores: Tensor) -> Tensor:
    """(M, C): one row per target position, classes along the last axis."""
    if scores.ndim == 1:
        return scores.reshape(1, -1)
    if scores.ndim == 2:
        return scores
    return scores.permute(0, *range(2, scores.ndim), 1).reshape(-1, scores.shape[1])


def _negative_log_likelihood(
    log_p: Tensor,
    flat_target: np.ndarray,
    keep: np.ndarray,
    shape: tuple[int, ...],
    reduction: str,
    label_smoothing: float,
) -> Tensor:
    rows = _rows_by_class(log_p)
    per_item = -rows[np.arange(rows.shape[0]), flat_target]
    if label_smoothing:
        per_item = (1.0 - label_smoothing) * per_item - (label_smoothing / rows.shape[1]) * rows.sum(axis=1)
    per_item = where(keep, per_item, 0.0)
    if reduction == "mean":
        kept = int(keep.sum())
        # torch divides by the number of kept targets; with none the mean is 0/0 = nan, the gradient 0
        return per_item.sum() / kept if kept else per_item.sum() * float("nan")
    return _reduce(per_item.reshape(shape), reduction)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()
