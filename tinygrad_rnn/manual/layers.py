"""The non-recurrent layers of a language model, applied at every time step at once.

affine:     y = x Wᵀ + b                          dx = dy W,  dW = Σ dyᵀ x,  db = Σ dy
embedding:  e = weight[ids]                      dweight[v] = Σ_{positions with id v} de
softmax cross-entropy, per position with ŷ = softmax(o):
            L = Σ_valid (logsumexp(o) − o_y)     dL/do = ŷ − onehot(y) at valid positions, 0 elsewhere
"""

from typing import NamedTuple

import numpy as np

from .cell import Params
from .gemm import column_sum, linear, linear_input_grad, outer


class AffineCache(NamedTuple):
    x: np.ndarray
    params: Params


class EmbeddingCache(NamedTuple):
    ids: np.ndarray
    num_embeddings: int


def affine_forward(x: np.ndarray, params: Params) -> tuple[np.ndarray, AffineCache]:
    """PyTorch's Linear: y = x Wᵀ + b.   x: (..., D), weight: (V, D), bias: (V,) optional → y: (..., V)."""
    if "weight" not in params:
        raise KeyError(f"affine: missing parameter 'weight'; given keys {sorted(params)}")
    weight = params["weight"]
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"affine: weight {weight.shape} expects inputs of width {weight.shape[1]}, got {x.shape}"
        )
    return linear(x, weight, params.get("bias")), AffineCache(x=x, params=params)


def affine_backward(dy: np.ndarray, cache: AffineCache) -> tuple[np.ndarray, Params]:
    """(dx, {'weight': Σ dyᵀ x, 'bias': Σ dy}) summed over every leading (time, batch) axis."""
    dx = linear_input_grad(dy, cache.params["weight"])
    dparams = {"weight": outer(dy, cache.x)}
    if "bias" in cache.params:
        dparams["bias"] = column_sum(dy)
    return dx, dparams


def embedding_forward(ids: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, EmbeddingCache]:
    """e = weight[ids].   ids: integers of any shape in [0, V), weight: (V, E) → e: (*ids.shape, E)."""
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"embedding: expected integer ids, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= weight.shape[0]):
        raise ValueError(
            f"embedding: expected ids in [0, {weight.shape[0]}), got range [{ids.min()}, {ids.max()}]"
        )
    return weight[ids], EmbeddingCache(ids=ids, num_embeddings=weight.shape[0])


def embedding_backward(de: np.ndarray, cache: EmbeddingCache) -> np.ndarray:
    """dweight (V, E): the rows of de summed per id, so a repeated id accumulates all its positions."""
    dweight = np.zeros((cache.num_embeddings, de.shape[-1]), dtype=de.dtype)
    np.add.at(dweight, cache.ids.reshape(-1), de.reshape(-1, de.shape[-1]))
    return dweight


def softmax_cross_entropy(
    logits: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    ignore_index: int | None = None,
) -> tuple[float, np.ndarray]:
    """(loss, dlogits) for logits (..., V) and integer targets (...), e.g. (T, N, V) and (T, N).

    A position is valid where `mask` (bool, shaped like targets) is true and its target is not
    `ignore_index`.  loss = Σ_valid (logsumexp(o) − o_y), a sum (not a mean) over valid positions;
    dlogits = softmax(o) − onehot(y) at valid positions, 0 elsewhere.  logsumexp subtracts the row
    maximum first, so large logits do not overflow.
    """
    targets = np.asarray(targets)
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"softmax_cross_entropy: expected targets of shape {logits.shape[:-1]}, got {targets.shape}"
        )
    valid = np.ones(targets.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if valid.shape != targets.shape:
        raise ValueError(f"softmax_cross_entropy: expected mask of shape {targets.shape}, got {valid.shape}")
    if ignore_index is not None:
        valid = valid & (targets != ignore_index)
    classes = logits.shape[-1]
    if np.any(valid & ((targets < 0) | (targets >= classes))):
        raise ValueError(f"softmax_cross_entropy: expected targets in [0, {classes}) at valid positions")
    safe_targets = np.where(valid, targets, 0)[..., None]
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=-1, keepdims=True)
    log_probs = shifted - np.log(total)
    loss = -np.sum(np.take_along_axis(log_probs, safe_targets, axis=-1)[..., 0], where=valid)
    dlogits = exp / total
    np.put_along_axis(dlogits, safe_targets, np.take_along_axis(dlogits, safe_targets, axis=-1) - 1, axis=-1)
    return float(loss), dlogits * valid[..., None]
