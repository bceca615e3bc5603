"""The `tinygrad-rnn` command: demo, check (manual BPTT vs autograd), graph (the unrolled graph),
train and sample (the character-level language model), bench (a training step, timed)."""

import argparse
from collections.abc import Sequence

import numpy as np

from . import Tensor, viz
from .bench import add_bench_parser
from .check import CELLS as CHECK_CELLS
from .check import add_check_parser, run_check
from .compare import Report, compare
from .nn.recurrent import LAYERS
from .train_cli import add_train_parsers


def demo(args: argparse.Namespace) -> int:
    """The tour: manual BPTT vs the autograd vs finite differences, every cell, then a picture."""
    parser = build_parser()
    print("1. A 2-layer bidirectional LSTM on a padded batch (lengths 5, 3, 2): the hand-written")
    print("   BPTT of tinygrad_rnn.manual against the autograd and central finite differences.\n")
    code = run_check(parser.parse_args(["check", "--cell", "lstm", "--layers", "2", "--bidirectional",
                                        "--lengths", "5,3,2", "--fd", "--seed", str(args.seed)]))  # fmt: skip
    print("\n2. Every cell type, 2 layers, bidirectional, batch_first, random lengths:\n")
    for cell in CHECK_CELLS:
        report = compare_cell(cell, args.seed)
        print(f"   {cell:<17} {report.verdict()}")
        code = max(code, 0 if report.ok else 1)
    print("\n3. The unrolled graph of a 3-step LSTM, gradients coloured by their norm:")
    code = max(code, graph(parser.parse_args(["graph", "--cell", "lstm", "--steps", "3", "--grads",
                                              "--detail", "cells", "-o", args.output])))  # fmt: skip
    return code


def compare_cell(cell: str, seed: int) -> Report:
    """One silent comparison for the demo's summary."""
    layer, options = CHECK_CELLS[cell]
    rng = np.random.default_rng(seed)
    model = layer(3, 4, 2, batch_first=True, bidirectional=True, dtype=np.float64, rng=seed, **options)
    x = rng.standard_normal((3, 5, 3))
    return compare(model, x, lengths=rng.integers(1, 6, size=3))


def graph(args: argparse.Namespace) -> int:
    """Build a small recurrent layer, run forward and backward, and render its unrolled graph."""
    rng = np.random.default_rng(args.seed)
    model = LAYERS[args.cell](
        args.input_size,
        args.hidden_size,
        args.layers,
        bidirectional=args.bidirectional,
        dtype=np.float64,
        rng=rng,
    )
    x = Tensor(rng.standard_normal((args.steps, args.batch, args.input_size)), name="x")
    output, _ = model(x)
    loss = (output * Tensor(rng.standard_normal(output.shape))).sum()
    loss.name = "loss"
    if args.grads:
        viz.retain_grads(loss)
    loss.backward()
    picture = viz.draw(
        loss, detail=args.detail, show_grads=args.grads, max_steps=args.max_steps, params=model
    )
    try:
        path = viz.render(picture, args.output)
    except viz.RenderError as error:
        print(error)
        return 1
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinygrad-rnn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("demo", help="the tour: check every cell, then draw the unrolled graph")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default="demo_graph.svg", help="where to write the picture")
    p.set_defaults(run=demo)
    add_check_parser(commands)
    p = commands.add_parser("graph", help="render the unrolled graph of a small RNN/LSTM/GRU")
    p.add_argument("--cell", choices=sorted(LAYERS), default="lstm")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--input-size", type=int, default=3)
    p.add_argument("--hidden-size", type=int, default=4)
    p.add_argument("--detail", choices=["ops", "cells"], default="ops")
    p.add_argument("--grads", action="store_true", help="colour nodes by the norm of their gradient")
    p.add_argument("--max-steps", type=int, default=None, help="draw only the first and last steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default="graph.svg", help="file to write (.svg, .png, .pdf or .dot)")
    p.set_defaults(run=graph)
    add_train_parsers(commands)
    add_bench_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)
