"""torch.nn.utils' names: gradient clipping (clip_grad.py) and packed sequences (`nn.utils.rnn`)."""

from . import rnn
from .clip_grad import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_", "rnn"]
