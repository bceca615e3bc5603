"""The `tinygrad-rnn` command line (also `python -m tinygrad_rnn`): one module per command."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
