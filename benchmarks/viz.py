"""How long `viz.draw` takes on an unrolled single-layer LSTM of 50, 200 and 1000 steps.

Prints a table (best of 5, milliseconds); asserts nothing. The LSTM is written with Tensor ops under
the step scopes nn's layers record (``lstm.l0.t<t>``), with the input projection before the loop.
"""

import time
from collections.abc import Callable
from functools import partial

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import viz
from tinygrad_rnn.viz.walk import topological


def lstm_loss(steps: int, batch: int = 4, inputs: int = 8, hidden: int = 16) -> tg.Tensor:
    """(h_T-stack * G).sum() through an LSTM: i, f, g, o = chunk(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal((steps, batch, inputs)), name="x")
    w_ih = tg.Tensor(rng.standard_normal((4 * hidden, inputs)), requires_grad=True, name="weight_ih_l0")
    w_hh = tg.Tensor(rng.standard_normal((4 * hidden, hidden)), requires_grad=True, name="weight_hh_l0")
    b_ih = tg.zeros(4 * hidden, dtype=np.float64, requires_grad=True, name="bias_ih_l0")
    b_hh = tg.zeros(4 * hidden, dtype=np.float64, requires_grad=True, name="bias_hh_l0")
    projected = x @ w_ih.T + b_ih
    h = c = tg.zeros(batch, hidden, dtype=np.float64)
    hs = []
    for t in range(steps):
        with tg.scope(f"lstm.l0.t{t}"):
            i, f, g, o = (projected[t] + h @ w_hh.T + b_hh).chunk(4, 1)
            c = f.sigmoid() * c + i.sigmoid() * g.tanh()
            h = o.sigmoid() * c.tanh()
        hs.append(h)
    out = tg.stack(hs)
    return (out * tg.Tensor(rng.standard_normal(out.shape))).sum()


def best_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return 1e3 * best


def main() -> None:
    cases = {
        "cells": {"detail": "cells"},
        "cells+grads": {"detail": "cells", "show_grads": True},
        "ops": {"detail": "ops"},
        "ops max_steps=8": {"detail": "ops", "max_steps": 8},
    }
    print(f"{'steps':>6}{'tensors':>9}" + "".join(f"{name + ' ms':>20}" for name in cases))
    for steps in (50, 200, 1000):
        loss = lstm_loss(steps)
        viz.retain_grads(loss)
        loss.backward()
        tensors = len(topological(loss))
        times = [best_ms(partial(viz.draw, loss, **options)) for options in cases.values()]
        print(f"{steps:>6}{tensors:>9}" + "".join(f"{ms:>20.1f}" for ms in times))


if __name__ == "__main__":
    main()
