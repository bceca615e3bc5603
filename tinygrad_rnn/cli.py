"""The `tinygrad-rnn` command: demo, check (manual vs autograd), graph (a picture of the unrolled graph)."""

import argparse
from collections.abc import Sequence

import numpy as np

from . import Tensor, gradcheck, nn, stack, viz

LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def demo(args: argparse.Namespace) -> int:
    """A vanilla RNN written with Tensor ops: forward over T steps, backward, gradcheck."""
    rng = np.random.default_rng(args.seed)
    steps, batch, inputs, hidden = args.steps, args.batch, args.input_size, args.hidden_size
    x = Tensor(rng.standard_normal((steps, batch, inputs)), name="x")
    w_ih = Tensor(rng.uniform(-0.5, 0.5, (hidden, inputs)), requires_grad=True, name="weight_ih")
    w_hh = Tensor(rng.uniform(-0.5, 0.5, (hidden, hidden)), requires_grad=True, name="weight_hh")
    b = Tensor(np.zeros(hidden), requires_grad=True, name="bias")
    target = rng.standard_normal((steps, batch, hidden))

    def loss_of(w_ih: Tensor, w_hh: Tensor, b: Tensor) -> Tensor:
        h = Tensor(np.zeros((batch, hidden)))
        outputs = []
        for t in range(steps):
            h = (x[t] @ w_ih.T + h @ w_hh.T + b).tanh()  # h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)
            outputs.append(h)
        return ((stack(outputs) - Tensor(target)) ** 2).sum()

    loss = loss_of(w_ih, w_hh, b)
    loss.backward()
    print(f"vanilla RNN, T={steps} N={batch} D={inputs} H={hidden}: loss = {loss.item():.6f}")
    for p in (w_ih, w_hh, b):
        print(f"  ||dL/d{p.name}|| = {np.linalg.norm(p.grad.data):.6f}")
    ok = gradcheck(loss_of, [w_ih, w_hh, b])
    print(f"gradcheck against central finite differences (float64): {'ok' if ok else 'FAILED'}")
    return 0


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
    p = commands.add_parser("demo", help="a vanilla RNN with the autograd, checked by finite differences")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--input-size", type=int, default=3)
    p.add_argument("--hidden-size", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=demo)
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)
