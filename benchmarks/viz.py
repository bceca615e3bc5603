"""How long `viz.draw` takes on an unrolled single-layer LSTM of 50, 200 and 1000 steps.

Prints a table (best of 5, milliseconds); asserts nothing. The model is `nn.LSTM`, whose layers record
one scope per step (``lstm.l0.t<t>``).
"""

import time
from collections.abc import Callable
from functools import partial

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import nn, viz
from tinygrad_rnn.viz.walk import topological


def lstm_loss(steps: int, batch: int = 4, inputs: int = 8, hidden: int = 16) -> tg.Tensor:
    """Σ output ⊙ G through a one-layer nn.LSTM (float64), the graph `draw` is timed on."""
    rng = np.random.default_rng(0)
    model = nn.LSTM(inputs, hidden, dtype=np.float64, rng=0)
    output, _ = model(tg.Tensor(rng.standard_normal((steps, batch, inputs)), name="x"))
    return (output * tg.Tensor(rng.standard_normal(output.shape))).sum()


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
        tensors = len(topological(loss.node))
        times = [best_ms(partial(viz.draw, loss, **options)) for options in cases.values()]
        print(f"{steps:>6}{tensors:>9}" + "".join(f"{ms:>20.1f}" for ms in times))


if __name__ == "__main__":
    main()
