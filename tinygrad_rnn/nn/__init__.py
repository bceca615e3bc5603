"""tinygrad_rnn.nn: modules built from Tensor ops only, with PyTorch's names, shapes and init."""

from . import functional, utils
from .container import Sequential
from .dropout import Dropout
from .embedding import Embedding
from .language_model import LanguageModel
from .linear import Linear
from .module import Module, Parameter
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, Recurrent, RecurrentBase, RNNBase, RNNCell

__all__ = [
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "RNN",
    "RNNBase",
    "RNNCell",
    "Recurrent",
    "RecurrentBase",
    "Dropout",
    "Embedding",
    "LanguageModel",
    "Linear",
    "Module",
    "Parameter",
    "Sequential",
    "functional",
    "utils",
]
