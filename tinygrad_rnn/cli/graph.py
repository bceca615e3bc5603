"""`tinygrad-rnn graph`: run a small recurrent layer forward and backward, render its unrolled graph.

Every tensor the command makes is named (x, h0, c0, the loss weights G, loss). Sequences longer than
`viz.READABLE_STEPS` are drawn with their middle steps elided unless `--all-steps` is given, and a
render that takes longer than `--timeout` seconds is stopped. An .html output is the page
(`viz.page`): every step of every layer-direction, to explore in a browser. Either is written to a
temporary file beside the target and renamed over it, so an interrupted render leaves nothing
half-written.
"""

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from .. import Tensor, viz
from ..lm.cells import resolve_cell
from ..lm.data import InputError
from ..nn.recurrent import make_layer
from ..viz.backends import FORMATS
from .arguments import add_shape_options, output_file, parse_lengths, positive_float, positive_int
from .cells import add_cell_option
from .failures import fail
from .threads import add_threads_option, blas_threads


def graph(args: argparse.Namespace) -> int:
    """Build a small recurrent layer, run forward and backward, and render its unrolled graph."""
    rows, inner = args.batch_size, args.hidden_size
    with blas_threads(args.threads, rows, inner, 4 * inner):
        try:
            return _graph(args)
        except InputError as error:
            return fail("graph", error)


def _graph(args: argparse.Namespace) -> int:
    if args.output.suffix.lower() == ".pdf" and shutil.which("dot") is None:
        raise InputError(
            f"-o {args.output}: pdf needs the system Graphviz (`dot` on the PATH: apt-get install graphviz, "
            "brew install graphviz, ...); .svg, .png and .dot need nothing more"
        )
    rng = np.random.default_rng(args.seed)
    cell = resolve_cell(args.cell)
    model = make_layer(
        cell,
        args.input_size,
        args.hidden_size,
        args.num_layers,
        bidirectional=args.bidirectional,
        dtype=np.float64,
        rng=rng,
    )
    model.batch_first = args.batch_first  # a plain flag read by forward, as in torch
    # x, h0 and c0 require grad so that the picture shows dL/dx and dL/dh0 (and keeps their names:
    # an op on tensors that need no gradient records nothing, its result is a new, unnamed leaf)
    layout = (args.batch_size, args.seq_len) if args.batch_first else (args.seq_len, args.batch_size)
    x = Tensor(rng.standard_normal((*layout, args.input_size)), requires_grad=True, name="x")
    lengths = parse_lengths(args.lengths, args.seq_len, args.batch_size, rng)
    state_shape = (args.num_layers * (2 if args.bidirectional else 1), args.batch_size, args.hidden_size)
    h0 = Tensor(np.zeros(state_shape), requires_grad=True, name="h0")
    c0 = Tensor(np.zeros(state_shape), requires_grad=True, name="c0")
    hx = {"lstm": (h0, c0), "rnn": h0, "gru": h0}.get(args.cell)  # your cell: its zeros
    page = args.output.suffix.lower() == ".html"
    with viz.keep_values() if page else nullcontext() as values:  # the page shows values too
        output, _ = model(x, hx, lengths=lengths)
        loss = (output * Tensor(rng.standard_normal(output.shape), name="G")).sum()
    loss.name = "loss"
    if args.grads or page:
        viz.retain_grads(loss)
    loss.backward()
    if page:
        page_of = viz.page(loss, params=model, values=values, timeout=args.timeout)
        return _written(args.output, page_of.save)
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
    return _written(args.output, lambda path: viz.render(picture, path, timeout=args.timeout))


def _written(target: Path, write: Callable[[Path], Any]) -> int:
    """`write(temporary)` beside the target, then the temporary renamed over it; say where it wrote
    (0) or why it could not (1)."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp{target.suffix}")
    try:
        write(temporary)
        os.replace(temporary, target)
    except viz.RenderError as error:
        print(f"tinygrad-rnn graph: error: {error}", file=sys.stderr)
        return 1
    finally:
        temporary.unlink(missing_ok=True)
    print(f"wrote {target}")
    return 0


def add_graph_parser(commands: Any) -> None:
    p = commands.add_parser(
        "graph", help="render the unrolled graph of a small RNN/LSTM/GRU or your own cell"
    )
    add_cell_option(p, "lstm", "lstm")
    add_shape_options(p, seq_len=4, batch_size=2, input_size=3, hidden_size=4)
    p.add_argument("--lengths", help='one length per sequence, e.g. "4,2", or "random"')
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
