"""The `tinygrad-rnn` command: demo (more subcommands join as the library grows)."""

import argparse
from collections.abc import Sequence

import numpy as np

from . import Tensor, gradcheck, stack


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)
