"""The `tinygrad-rnn` command: demo, check (manual BPTT vs autograd), graph (the unrolled graph),
train and sample (the character-level language model), bench (a training step, timed),
export (a trained model as a PyTorch file).
One module per command; this one only dispatches."""

import argparse
from collections.abc import Sequence

from ..allocator import keep_freed_memory
from .arguments import Parser
from .bench import add_bench_parser
from .check import add_check_parser
from .demo import add_demo_parser
from .export import add_export_parser
from .graph import add_graph_parser
from .train import add_train_parsers


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tinygrad-rnn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_demo_parser(commands)
    add_check_parser(commands)
    add_graph_parser(commands)
    add_train_parsers(commands)
    add_bench_parser(commands)
    add_export_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code (2 for a command-line mistake, reported in one line on stderr)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # a mistake (2) or --help (0): the parser has printed what to say
        return stop.code if isinstance(stop.code, int) else 0
    keep_freed_memory()  # a command is a training (or timing) loop: no pages faulted in every step
    return args.run(args)
