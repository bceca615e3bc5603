"""tinygrad_rnn: recurrent networks from scratch — a numpy autograd, hand-written BPTT, pictures."""

from . import export, manual, nn, optim, viz
from .allocator import keep_freed_memory
from .comparison import compare
from .context import enable_grad, is_grad_enabled, no_grad, scope
from .factories import arange, eye, ones, ones_like, rand, randn, zeros, zeros_like
from .functions import addcmul, addmm, cat, lerp, linear, stack, where
from .gradcheck import GradcheckError, gradcheck
from .serialization import load, save
from .tensor import Function, Tensor

__all__ = [
    "addcmul",
    "addmm",
    "Function",
    "GradcheckError",
    "Tensor",
    "arange",
    "cat",
    "compare",
    "enable_grad",
    "eye",
    "export",
    "gradcheck",
    "is_grad_enabled",
    "keep_freed_memory",
    "lerp",
    "linear",
    "load",
    "manual",
    "nn",
    "optim",
    "viz",
    "no_grad",
    "ones",
    "ones_like",
    "rand",
    "randn",
    "save",
    "scope",
    "stack",
    "where",
    "zeros",
    "zeros_like",
]
__version__ = "0.1.0"
