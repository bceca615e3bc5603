"""`tinygrad-rnn graph`: run a small recurrent layer forward and backward, render its unrolled graph."""

import argparse
from typing import Any

import numpy as np

from .. import Tensor, viz
from ..nn.recurrent import LAYERS


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


def add_graph_parser(commands: Any) -> None:
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
