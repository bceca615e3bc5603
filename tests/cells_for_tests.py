"""The example cells of tinygrad_rnn.nn.examples (a peephole LSTM and an IndRNN, plain Tensor ops), as a
file the tests load the way a user's cell is loaded: `--cell tests/cells_for_tests.py:PeepholeLSTMCell`."""

from tinygrad_rnn.nn.examples import IndRNNCell, PeepholeLSTMCell

__all__ = ["IndRNNCell", "PeepholeLSTMCell"]
