"""A training step of RNN, LSTM and GRU: autograd vs manual vs PyTorch (see tinygrad_rnn/cli/bench.py).

`python benchmarks/recurrent.py [--configs char,mid] [--cells lstm] [--runs 5] [--no-torch]`,
the same as `tinygrad-rnn bench ...`.
"""

import sys

from tinygrad_rnn.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
