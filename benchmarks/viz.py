"""How long `viz.draw` and `viz.render` take on an unrolled single-layer LSTM of 50, 200 and 1000 steps.

Prints two tables (milliseconds; asserts nothing): drawing (best of 5) with every step and with the
default elision (`viz.READABLE_STEPS`), and rendering to svg (one run) with the default elision, which
keeps a render of any length within seconds. The model is `nn.LSTM`, whose layers record one scope per
step (``lstm.l0.t<t>``).
"""

import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import nn, viz
from tinygrad_rnn.viz.walk import topological


def lstm_loss(steps: int, batch: int = 4, inputs: int = 8, hidden: int = 16) -> tg.Tensor:
    """Σ output ⊙ G through a one-layer nn.LSTM (float64), the graph `draw` is timed on."""
    rng = np.random.default_rng(0)
    model = nn.LSTM(inputs, hidden, dtype=np.float64, rng=0)
    output, _ = model(tg.Tensor(rng.standard_normal((steps, batch, inputs)), name="x"))
    return (output * tg.Tensor(rng.standard_normal(output.shape), name="G")).sum()


def best_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return 1e3 * best


def main() -> None:
    drawing = {
        "cells": {"detail": "cells", "max_steps": None},
        "cells+grads": {"detail": "cells", "show_grads": True, "max_steps": None},
        "ops": {"detail": "ops", "max_steps": None},
        "ops elided": {"detail": "ops"},
    }
    rendering = {"cells elided": {"detail": "cells", "show_grads": True}, "ops elided": {"detail": "ops"}}
    print("draw, ms")
    print(f"{'steps':>6}{'tensors':>9}" + "".join(f"{name:>16}" for name in drawing))
    losses = {}
    for steps in (50, 200, 1000):
        loss = losses[steps] = lstm_loss(steps)
        viz.retain_grads(loss)
        loss.backward()
        tensors = len(topological(loss.node))
        times = [best_ms(partial(viz.draw, loss, **options)) for options in drawing.values()]
        print(f"{steps:>6}{tensors:>9}" + "".join(f"{ms:>16.1f}" for ms in times))
    if viz.find_renderer("svg") is None:
        print("render: skipped, neither the system Graphviz nor graphviz-pure is installed")
        return
    print(f"render to svg with {viz.find_renderer('svg')}, ms")
    print(f"{'steps':>6}" + "".join(f"{name:>16}" for name in rendering))
    with tempfile.TemporaryDirectory() as folder:
        for steps, loss in losses.items():
            path = Path(folder, "g.svg")
            times = [best_ms(partial(viz.render, loss, path, **options), 1) for options in rendering.values()]
            print(f"{steps:>6}" + "".join(f"{ms:>16.1f}" for ms in times))


if __name__ == "__main__":
    main()
