"""Hand-written forward passes and backpropagation through time, in plain numpy.

An independent derivation of every gradient the autograd computes — it imports numpy only, never the
Tensor — with PyTorch's conventions exactly (row vectors, time-major (T, N, D), gates stacked in the
rows of weight_ih / weight_hh, the parameter names of nn.RNN / nn.LSTM / nn.GRU), so parameters move
between this package, the autograd modules and PyTorch without a transpose.

    cell.py        the manual cell protocol: step_forward / step_backward pairs, `Cell`
    gated.py       what the built-in cells share: the input projection, weight gradients as GEMMs
    rnn.py, lstm.py, gru.py    the built-in recurrences: step and sequence pairs
    sequence.py    the time loop of one layer-direction for any cell: lengths, reverse, BPTT, records
    fused.py, *_fused.py    whole-sequence kernels of the built-in cells, run when there are no lengths
    layout.py      layer-level parameter names (weight_ih_l0, cell_l0.weight_ih)
    stack.py       layers × directions (recurrent_forward / recurrent_backward)
    layers.py      affine over time, embedding, softmax cross-entropy
    lm.py          the language model; tbptt.py truncated BPTT and gradient clipping
    convert.py     parameters and configuration from a module

Any recurrence can be run: a cell is a pair of numpy functions (cell.py)

    step_forward(x_t, state, params) → (new_state, cache)
    step_backward(dstate, cache)     → (dx_t, dstate_prev, dparams)

and `recurrent_forward((step_forward, step_backward), x, params, hx=hx, ...)` runs it over layers,
directions and lengths like the built-in 'rnn', 'lstm' and 'gru' — which are such pairs themselves
(rnn_step_forward / rnn_step_backward, ...), with a faster split for whole sequences.

Every backward returns gradients under exactly the keys of the params it was given.  Per-step
quantities: the sequence and stack backwards (and `lm_backward`) take `return_steps=True` and then
also return `BPTTSteps` records: dL/dh_t for every step and each step's contribution dW_t to every
shared weight's gradient (which sum over t to the gradient).
"""

from .activations import sigmoid
from .cell import Cell, pair_cell
from .convert import from_module
from .gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward
from .layers import (
    affine_backward,
    affine_forward,
    embedding_backward,
    embedding_forward,
    softmax_cross_entropy,
)
from .lm import lm_backward, lm_forward
from .lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward
from .rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward
from .sequence import BPTTSteps
from .stack import recurrent_backward, recurrent_forward
from .tbptt import clip_grad_norm, lm_truncated_bptt

__all__ = [
    "BPTTSteps",
    "Cell",
    "affine_backward",
    "affine_forward",
    "clip_grad_norm",
    "embedding_backward",
    "embedding_forward",
    "from_module",
    "gru_backward",
    "gru_forward",
    "gru_step_backward",
    "gru_step_forward",
    "lm_backward",
    "lm_forward",
    "lm_truncated_bptt",
    "lstm_backward",
    "lstm_forward",
    "lstm_step_backward",
    "lstm_step_forward",
    "pair_cell",
    "recurrent_backward",
    "recurrent_forward",
    "rnn_backward",
    "rnn_forward",
    "rnn_step_backward",
    "rnn_step_forward",
    "sigmoid",
    "softmax_cross_entropy",
]
