"""`tinygrad-rnn demo`: the tour: manual BPTT vs autograd vs finite differences, every cell, a picture."""

import argparse
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..comparison import Report, compare
from ..nn import Recurrent
from ..nn.examples import PeepholeLSTMCell
from ..viz.backends import FORMATS
from .arguments import Parser, output_file
from .check import CELLS as CHECK_CELLS
from .check import add_check_parser, run_check
from .graph import add_graph_parser, graph
from .threads import add_threads_option, blas_threads


def _parse(add_parser: Callable[[Any], None], argv: Sequence[str]) -> argparse.Namespace:
    """The arguments another command would get from `argv` (its own parser, defaults included)."""
    parser = Parser()
    add_parser(parser.add_subparsers())
    return parser.parse_args(argv)


def demo(args: argparse.Namespace) -> int:
    """The tour: manual BPTT vs the autograd vs finite differences, every cell, then a picture."""
    with blas_threads(args.threads, 5, 4, 16):  # tiny networks: one thread
        return _demo(args)


def _demo(args: argparse.Namespace) -> int:
    print("1. A 2-layer bidirectional LSTM on a padded batch (lengths 5, 3, 2): the hand-written")
    print("   BPTT of tinygrad_rnn.manual against the autograd and central finite differences.\n")
    argv = ["check", "--cell", "lstm", "--num-layers", "2", "--bidirectional", "--lengths", "5,3,2", "--fd"]
    code = run_check(_parse(add_check_parser, [*argv, "--seed", str(args.seed)]))
    print("\n2. Every cell type, 2 layers, bidirectional, batch_first, random lengths:\n")
    for cell in CHECK_CELLS:
        report = compare_cell(cell, args.seed)
        print(f"   {cell:<17} {report.verdict()}")
        code = max(code, 0 if report.ok else 1)
    print(
        "\n   and a cell of your own (1 layer), nn.Recurrent(PeepholeLSTMCell), against finite differences:\n"
    )
    report = compare_own_cell(args.seed)
    print(f"   {'peephole lstm':<17} {report.verdict()}")
    code = max(code, 0 if report.ok else 1)
    print("\n3. The unrolled graph of a 3-step LSTM, gradients coloured by their norm:")
    code = max(code, graph(_parse(add_graph_parser, ["graph", "--cell", "lstm", "--seq-len", "3", "--grads",
                                              "--detail", "cells", "-o", str(args.output)])))  # fmt: skip
    return code


def compare_cell(cell: str, seed: int) -> Report:
    """One silent comparison for the demo's summary."""
    layer, options = CHECK_CELLS[cell]
    rng = np.random.default_rng(seed)
    model = layer(3, 4, 2, batch_first=True, bidirectional=True, dtype=np.float64, rng=seed, **options)
    x = rng.standard_normal((3, 5, 3))
    return compare(model, x, lengths=rng.integers(1, 6, size=3))


def compare_own_cell(seed: int) -> Report:
    """A cell written with plain Tensor ops (nn.examples), its layer's autograd against finite differences."""
    rng = np.random.default_rng(seed)
    model = Recurrent(PeepholeLSTMCell, 3, 3, dtype="float64", rng=seed)
    x = rng.standard_normal((4, 2, 3))
    return compare(model, x, lengths=[4, 2], finite_differences=True)


def add_demo_parser(commands: Any) -> None:
    p = commands.add_parser("demo", help="the tour: check every cell, then draw the unrolled graph")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "-o",
        "--output",
        type=output_file(FORMATS, {"gv": "dot"}),
        default="demo_graph.svg",
        help="where to write the picture",
    )
    add_threads_option(p)
    p.set_defaults(run=demo)
