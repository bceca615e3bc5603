"""`tinygrad-rnn graph`: run a small recurrent layer forward and backward, render its unrolled graph.

Every tensor the command makes is named (x, h0, c0, the loss weights G, loss). Sequences longer than
`viz.READABLE_STEPS` are drawn with their middle steps elided unless `--all-steps` is given, and a
render that takes longer than `--timeout` seconds is stopped. An .html output is the page
(`viz.page`): every step of every layer-direction, to explore in a browser.
"""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import Tensor, viz
from ..lm.cells import resolve_cell
from ..lm.data import InputError
from ..nn.recurrent import make_layer
from ..viz.backends import FORMATS
from .arguments import output_file, positive_float, positive_int
from .cells import add_cell_option
from .threads import add_threads_option, blas_threads


def graph(args: argparse.Namespace) -> int:
    """Build a small recurrent layer, run forward and backward, and render its unrolled graph."""
    rows, inner = args.batch, args.hidden_size
    with blas_threads(args.threads, rows, inner, 4 * inner):
        return _graph(args)


def _graph(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    try:
        cell = resolve_cell(args.cell)
    except InputError as error:
        print(f"tinygrad-rnn graph: error: {error}", file=sys.stderr)
        return 2
    model = make_layer(
        cell,
        args.input_size,
        args.hidden_size,
        args.layers,
        bidirectional=args.bidirectional,
        dtype=np.float64,
        rng=rng,
    )
    # x, h0 and c0 require grad so that the picture shows dL/dx and dL/dh0 (and keeps their names:
    # an op on tensors that need no gradient records nothing, its result is a new, unnamed leaf)
    x = Tensor(rng.standard_normal((args.steps, args.batch, args.input_size)), requires_grad=True, name="x")
    state_shape = (args.layers * (2 if args.bidirectional else 1), args.batch, args.hidden_size)
    h0 = Tensor(np.zeros(state_shape), requires_grad=True, name="h0")
    c0 = Tensor(np.zeros(state_shape), requires_grad=True, name="c0")
    output, _ = model(x, {"lstm": (h0, c0), "rnn": h0, "gru": h0}.get(args.cell))  # your cell: its zeros
    loss = (output * Tensor(rng.standard_normal(output.shape), name="G")).sum()
    loss.name = "loss"
    page = args.output.suffix.lower() == ".html"
    if args.grads or page:
        viz.retain_grads(loss)
    loss.backward()
    if page:
        return _written(lambda: viz.page(loss, params=model, timeout=args.timeout).save(args.output))
    max_steps = None if args.all_steps else args.max_steps or "auto"
    picture = viz.draw(
        loss,
        detail=args.detail,
        show_grads=args.grads,
        max_steps=max_steps,
        params=model,
        rankdir=args.rankdir,
    )
    if picture.elided:
        print(f"tinygrad-rnn graph: {picture.elided}; --all-steps draws every step", file=sys.stderr)
    return _written(lambda: viz.render(picture, args.output, timeout=args.timeout))


def _written(write: Callable[[], Path]) -> int:
    """Run `write`, say where it wrote (0) or why it could not (1)."""
    try:
        path = write()
    except viz.RenderError as error:
        print(f"tinygrad-rnn graph: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def add_graph_parser(commands: Any) -> None:
    p = commands.add_parser(
        "graph", help="render the unrolled graph of a small RNN/LSTM/GRU or your own cell"
    )
    add_cell_option(p, "lstm", "lstm")
    p.add_argument("--steps", type=positive_int, default=4, help="T")
    p.add_argument("--layers", type=positive_int, default=1)
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--batch", type=positive_int, default=2, help="N")
    p.add_argument("--input-size", type=positive_int, default=3, help="D")
    p.add_argument("--hidden-size", type=positive_int, default=4, help="H")
    p.add_argument("--detail", choices=["ops", "cells"], default="ops")
    p.add_argument("--grads", action="store_true", help="colour nodes by the norm of their gradient")
    steps = p.add_mutually_exclusive_group()
    steps.add_argument(
        "--max-steps",
        type=positive_int,
        help=f"draw the first and last steps of each layer, the rest as one (default {viz.READABLE_STEPS}, "
        "fewer for a big cell's ops)",
    )
    steps.add_argument("--all-steps", action="store_true", help="draw every step, however many")
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=viz.RENDER_TIMEOUT,
        metavar="SECONDS",
        help=f"stop a render that runs longer (default {viz.RENDER_TIMEOUT:g})",
    )
    p.add_argument(
        "--rankdir",
        choices=["LR", "TB"],
        default="LR",
        help="time runs left to right (LR, wide) or top to bottom (TB, narrow: fits a page)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "-o",
        "--output",
        type=output_file(FORMATS, {"gv": "dot"}),
        default="graph.svg",
        help=f"file to write (.{', .'.join(FORMATS)}; pdf needs the system Graphviz; html: a page)",
    )
    add_threads_option(p)
    p.set_defaults(run=graph)
