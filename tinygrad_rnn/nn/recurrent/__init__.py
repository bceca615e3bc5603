"""Recurrent layers, readable in this order:

- protocol.py: what a cell is (torch's `forward(x_t, state=None) -> new_state`) and its check;
- layer.py: the one recurrence over time, layers, directions, lengths, dropout and hx
  (`RecurrentBase`), and `Recurrent`, which runs any cell with it;
- rnn.py, steps.py, cells.py: the built-ins. RNN, LSTM and GRU run the same recurrence with
  optimised steps and torch's parameter names; RNNCell, LSTMCell and GRUCell are cells;
- factory.py: a layer from a built-in's name or a cell class (what models and commands are given).
"""

from .cells import GRUCell, LSTMCell, RNNCell, RNNCellBase
from .factory import CellSpec, make_layer
from .layer import Recurrent, RecurrentBase
from .protocol import State
from .rnn import GRU, LAYERS, LSTM, RNN, RNNBase

__all__ = [
    "CellSpec",
    "GRU",
    "GRUCell",
    "LAYERS",
    "LSTM",
    "LSTMCell",
    "RNN",
    "RNNBase",
    "RNNCell",
    "RNNCellBase",
    "Recurrent",
    "RecurrentBase",
    "State",
    "make_layer",
]
