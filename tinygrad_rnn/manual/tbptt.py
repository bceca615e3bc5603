"""Truncated backpropagation through time, and clipping gradients by their global norm.

Truncated BPTT with k-step chunks: the sequence is cut into [0, k), [k, 2k), ...; each chunk runs
forward from the previous chunk's final state and backward within itself only.  The carried state
is a constant for the next chunk — autograd's `h = h.detach()` between chunks — so no gradient
crosses a boundary:  ∂L_chunk/∂θ  is taken with the incoming state held fixed, and

    loss = Σ_chunks L_chunk  (= the untruncated loss: the forward pass is unchanged),
    grads = Σ_chunks ∂L_chunk/∂θ  (= the full BPTT gradient when k ≥ T).
"""

from typing import Any

import numpy as np

from .cell import Params
from .lm import lm_backward, lm_chunk_forward, lm_inputs
from .stack import hx_from_state


def lm_truncated_bptt(
    tokens: np.ndarray,
    targets: np.ndarray,
    params: Params,
    k: int,
    *,
    mode: Any,
    num_layers: int = 1,
    bidirectional: bool = False,
    hx: Any = None,
    lengths: Any = None,
    batch_first: bool = False,
    nonlinearity: str = "tanh",
    reset_after: bool = True,
) -> tuple[float, Params, Any]:
    """(total loss, grads summed over chunks, final state) of `lm_forward`'s model, chunked by k steps.

    Arguments are those of `lm_forward`.  With lengths, a chunk that starts at or after L_n leaves
    sequence n's state unchanged and adds nothing to the loss.
    """
    if not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"lm_truncated_bptt: expected a chunk length k ≥ 1, got {k!r}")
    cell, tokens, targets, state, mask = lm_inputs(
        tokens, targets, mode, hx, lengths, batch_first, nonlinearity, reset_after
    )
    total, grads = 0.0, {}
    for start in range(0, len(tokens), k):
        chunk = slice(start, start + k)
        loss, state, cache = lm_chunk_forward(
            cell,
            tokens[chunk],
            targets[chunk],
            params,
            num_layers=num_layers,
            bidirectional=bidirectional,
            state0=state,
            mask=None if mask is None else mask[chunk],
        )
        total += loss
        grads = {key: grads[key] + g if key in grads else g for key, g in lm_backward(cache).items()}
    return total, grads, hx_from_state(state, cell)


def clip_grad_norm(grads: Params, max_norm: float) -> tuple[Params, float]:
    """(clipped copies, total norm) with PyTorch's clip_grad_norm_ semantics, without mutating `grads`.

    total_norm = ‖(all gradients concatenated)‖₂;  coef = max_norm / (total_norm + 1e−6);  every
    gradient is multiplied by coef when coef < 1 and copied unchanged otherwise.
    """
    total_norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
    coef = max_norm / (total_norm + 1e-6)
    if coef < 1:
        return {key: g * coef for key, g in grads.items()}, total_norm
    return {key: g.copy() for key, g in grads.items()}, total_norm
