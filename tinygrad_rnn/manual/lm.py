"""A recurrent language model: Embedding → recurrent stack → Linear → softmax cross-entropy over time.

For the one-layer tanh RNN this is the notes' model, in their letters (row vectors here):

    x_t = E[token_t]                         E = embedding.weight (V, E)
    h_t = tanh(U x_t + W h_{t−1} + b)        U = rnn.weight_ih_l0, W = rnn.weight_hh_l0, b = b_ih + b_hh
    o_t = V h_t + c                          V = decoder.weight (V, H·dirs), c = decoder.bias
    ŷ_t = softmax(o_t),   L = Σ_t L_t = Σ_t Σ_n −log ŷ_t[y_t]     (summed, never averaged)

Backward: dL/do_t = ŷ_t − onehot(y_t);  dV = Σ_t (dL/do_t)ᵀ h_t,  dc = Σ_t dL/do_t;
dL/dh_t = (dL/do_t) V + δ_{t+1} W (BPTT in the stack);  dE[v] = Σ_{t: token_t = v} dL/dx_t.

params keys: 'embedding.weight', 'rnn.<layer-level key>' (e.g. 'rnn.weight_ih_l0'), 'decoder.weight',
optionally 'decoder.bias' — the names of a module with submodules embedding, rnn, decoder.
"""

from typing import Any, NamedTuple

import numpy as np

from .cell import Cell, Params, State
from .layers import (
    AffineCache,
    EmbeddingCache,
    affine_backward,
    affine_forward,
    embedding_backward,
    embedding_forward,
    softmax_cross_entropy,
)
from .sequence import BPTTSteps, SequenceCache, lengths_mask
from .stack import hx_from_state, make_cell, stack_backward, stack_forward, state_from_hx

SUBMODULES = ("embedding.", "rnn.", "decoder.")


class LMCache(NamedTuple):
    """What `lm_backward` needs; dlogits = dL/do is computed with the loss in the forward pass."""

    embedding: EmbeddingCache
    rnn: list[list[SequenceCache]]
    decoder: AffineCache
    dlogits: np.ndarray


def submodule(params: Params, prefix: str) -> Params:
    """The entries of `params` under 'prefix.', with the prefix removed."""
    return {key[len(prefix) + 1 :]: value for key, value in params.items() if key.startswith(prefix + ".")}


def lm_inputs(
    tokens: Any,
    targets: Any,
    mode: Any,
    hx: Any,
    lengths: Any,
    batch_first: bool,
    nonlinearity: str,
    reset_after: bool,
) -> tuple[Cell, np.ndarray, np.ndarray, State | None, np.ndarray | None]:
    """Check the caller's arguments and bring them to the time-major form of `lm_chunk_forward`."""
    cell = make_cell(mode, nonlinearity, reset_after, hx)
    tokens, targets = np.asarray(tokens), np.asarray(targets)
    if tokens.ndim != 2 or targets.shape != tokens.shape:
        raise ValueError(
            f"lm: expected tokens and targets of one shape (T, N), got {tokens.shape}, {targets.shape}"
        )
    if batch_first:
        tokens, targets = tokens.T, targets.T
    return cell, tokens, targets, state_from_hx(hx, cell), lengths_mask(lengths, *tokens.shape)


def lm_chunk_forward(
    cell: Cell,
    tokens: np.ndarray,
    targets: np.ndarray,
    params: Params,
    *,
    num_layers: int,
    bidirectional: bool,
    state0: State | None,
    mask: np.ndarray | None,
) -> tuple[float, State, LMCache]:
    """Time-major core of `lm_forward`; mask (T, N, 1) bool may exclude whole sequences (length 0)."""
    if "embedding.weight" not in params:
        raise KeyError(f"lm: missing parameter 'embedding.weight'; given keys {sorted(params)}")
    unexpected = sorted(key for key in params if not key.startswith(SUBMODULES))
    if unexpected:
        raise ValueError(f"lm: unexpected parameter keys {unexpected}; expected names under {SUBMODULES}")
    x, embedding_cache = embedding_forward(tokens, params["embedding.weight"])
    output, state_n, rnn_cache = stack_forward(
        cell,
        x,
        submodule(params, "rnn"),
        num_layers=num_layers,
        bidirectional=bidirectional,
        state0=state0,
        mask=mask,
    )
    logits, decoder_cache = affine_forward(output, submodule(params, "decoder"))
    loss, dlogits = softmax_cross_entropy(logits, targets, mask=None if mask is None else mask[..., 0])
    cache = LMCache(embedding=embedding_cache, rnn=rnn_cache, decoder=decoder_cache, dlogits=dlogits)
    return loss, state_n, cache


def lm_forward(
    tokens: np.ndarray,
    targets: np.ndarray,
    params: Params,
    *,
    mode: Any,
    num_layers: int = 1,
    bidirectional: bool = False,
    hx: Any = None,
    lengths: Any = None,
    batch_first: bool = False,
    nonlinearity: str = "tanh",
    reset_after: bool = True,
) -> tuple[float, Any, LMCache]:
    """(loss, h_n, cache) for integer tokens and targets (T, N) ((N, T) with batch_first).

    The loss is summed over the valid positions t < L_n.  hx and h_n are as in `recurrent_forward`
    ((L·dirs, N, H), or a pair for LSTM).
    """
    cell, tokens, targets, state0, mask = lm_inputs(
        tokens, targets, mode, hx, lengths, batch_first, nonlinearity, reset_after
    )
    loss, state_n, cache = lm_chunk_forward(
        cell,
        tokens,
        targets,
        params,
        num_layers=num_layers,
        bidirectional=bidirectional,
        state0=state0,
        mask=mask,
    )
    return loss, hx_from_state(state_n, cell), cache


def lm_backward(cache: LMCache, return_steps: bool = False) -> Params | tuple[Params, dict[str, BPTTSteps]]:
    """Gradients of the summed loss under the keys of params.

    With `return_steps`, also the stack's per-step records: 'l0', 'l0_reverse', ... → `BPTTSteps`
    with dL/dh_t per step and each step's contribution to the 'rnn.*' gradients.
    """
    doutput, ddecoder = affine_backward(cache.dlogits, cache.decoder)
    no_dstate = (None,) * len(cache.rnn[0][0].cell.state_names)
    dx, _, drnn, records = stack_backward(doutput, no_dstate, cache.rnn, return_steps)
    dembedding = embedding_backward(dx, cache.embedding)
    grads = {
        "embedding.weight": dembedding,
        **{"rnn." + key: g for key, g in drnn.items()},
        **{"decoder." + key: g for key, g in ddecoder.items()},
    }
    if not return_steps:
        return grads
    steps = {
        name: record._replace(dparams={"rnn." + key: g for key, g in record.dparams.items()})
        for name, record in records.items()
    }
    return grads, steps
