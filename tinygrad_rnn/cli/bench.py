"""One training step (forward + backward, float32, loss = Σ out ⊙ G) of RNN, LSTM and GRU, timed for
the autograd (`nn`), the hand-written `manual` package and, when installed, PyTorch. All three get G
as the gradient of the output (`output.backward(G)`, manual's doutput = G), so none pays for a loss op.

The autograd step zeroes its gradients in place (`zero_grad(set_to_none=False)`): freeing them every
step lets the C allocator hand the heap back to the OS, and faulting ~10 MB of pages in again costs
this virtual machine 3-5 ms per step (measured with getrusage: 2,000 page faults per step against 0).

BLAS and PyTorch threads per config: one where the step's products are small, every core where they
help (`threads.threads_for`), or `--threads K` for all; the last column says which.

Every implementation is measured in this one process run, so the ratios are fair on a noisy machine:
warm-up, then the median of several runs, with a pause before each implementation. Peak memory is
what tracemalloc sees numpy allocate during one step (PyTorch's allocations are invisible to it, so
torch has no memory column).
A second table times your own cell: the peephole LSTM of `nn.examples` (plain Tensor ops) through
`nn.Recurrent` against the built-in `nn.LSTM`, at char, mid and long.
Prints tables; asserts nothing. `tinygrad-rnn bench [--configs char,mid] [--cells lstm]`, or
`python benchmarks/recurrent.py ...`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np

from .. import Tensor, manual
from ..nn.examples import PeepholeLSTMCell
from ..nn.recurrent import LAYERS, Recurrent
from .arguments import positive_int
from .threads import add_threads_option, blas_threads

CONFIGS = {
    "char": (25, 1, 65, 100),
    "mid": (64, 32, 256, 256),
    "big": (128, 64, 512, 512),
    "long": (1000, 8, 64, 64),
}


def median_seconds(steps: dict[str, Callable[[], object]], runs: int, warmup: int = 3) -> dict[str, float]:
    """The median time of each step over `runs` runs after `warmup`, one implementation at a time.

    A pause comes before each: thread pools (PyTorch's OpenMP, OpenBLAS) keep spinning for a while
    after their last call and would slow down whatever is measured next (measured round-robin, torch
    took twice as long and the small autograd cases 40 % longer).
    """
    medians = {}
    for name, step in steps.items():
        time.sleep(0.5)
        for _ in range(warmup):
            step()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        medians[name] = statistics.median(times)
    return medians


def peak_bytes(step: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def steps_for(cell: str, config: str, torch_module) -> dict[str, Callable[[], object]]:
    """The three implementations of one training step, sharing weights, input and G."""
    steps, batch, width, hidden = CONFIGS[config]
    rng = np.random.default_rng(0)
    model = LAYERS[cell](width, hidden, rng=rng)
    x = rng.standard_normal((steps, batch, width)).astype(np.float32)
    g = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    params, options = manual.from_module(model)

    x_tensor = Tensor(x)

    def autograd_step() -> None:
        model.zero_grad(set_to_none=False)  # keep the gradient buffers (see the module docstring)
        output, _ = model(x_tensor)
        output.backward(g)  # the gradient of Σ out ⊙ G

    def manual_step() -> None:
        output, _, cache = manual.recurrent_forward(x=x, params=params, **options)
        manual.recurrent_backward(g, None, cache)

    implementations = {"autograd": autograd_step, "manual": manual_step}
    if torch_module is not None:
        torch = torch_module
        reference = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](width, hidden)
        reference.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
        x_t, g_t = torch.from_numpy(x), torch.from_numpy(g)

        def torch_step() -> None:
            reference.zero_grad()
            output, _ = reference(x_t)
            output.backward(g_t)

        implementations["torch"] = torch_step
    return implementations


CUSTOM_CELL_CONFIGS = ("char", "mid", "long")


def custom_cell_steps(config: str) -> dict[str, Callable[[], object]]:
    """One autograd training step of nn.Recurrent(PeepholeLSTMCell) and of nn.LSTM, same input and G."""
    steps, batch, width, hidden = CONFIGS[config]
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((steps, batch, width)).astype(np.float32))
    g = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    models = {
        "peephole": Recurrent(PeepholeLSTMCell, width, hidden, rng=0),
        "lstm": LAYERS["lstm"](width, hidden, rng=0),
    }

    def step_of(model: Any) -> Callable[[], None]:
        def step() -> None:
            model.zero_grad(set_to_none=False)
            output, _ = model(x)
            output.backward(g)

        return step

    return {name: step_of(model) for name, model in models.items()}


def add_bench_parser(subparsers: Any) -> None:
    """Register `bench` on an argparse subparsers object."""
    p = subparsers.add_parser("bench", help="time a training step: autograd vs manual vs PyTorch")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"some of {','.join(CONFIGS)}")
    p.add_argument("--cells", default=",".join(LAYERS), help=f"some of {','.join(LAYERS)}")
    p.add_argument(
        "--runs", type=positive_int, default=5, help="timed runs per measurement (the median is shown)"
    )
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when installed")
    add_threads_option(p)
    p.set_defaults(run=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    configs, cells = args.configs.split(","), args.cells.split(",")
    unknown = sorted(set(configs) - set(CONFIGS)) + sorted(set(cells) - set(LAYERS))
    if unknown:
        print(f"tinygrad-rnn bench: error: unknown {', '.join(unknown)}", file=sys.stderr)
        return 2
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
    torch_text = torch.__version__ if torch else ("left out" if args.no_torch else "not installed")
    print(
        f"{date.today()}, {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}, "
        f"torch {torch_text}"
    )
    header = f"{'cell':<5}{'config':<7}{'autograd ms':>12}{'manual ms':>11}{'torch ms':>10}"
    header += (
        f"{'auto/manual':>13}{'auto/torch':>12}{'peak auto MB':>14}{'peak manual MB':>16}{'mem ratio':>11}"
        f"{'threads':>9}"
    )
    print(header)
    for cell in cells:
        for config in configs:
            implementations = steps_for(cell, config, torch)
            runs = max(3, args.runs if config != "big" else 3)
            _, batch, _, hidden = CONFIGS[config]
            with blas_threads(args.threads, batch, hidden, 4 * hidden) as threads:
                if torch is not None:
                    torch.set_num_threads(threads)
                ms = {name: t * 1e3 for name, t in median_seconds(implementations, runs).items()}
                mem = {name: peak_bytes(implementations[name]) / 2**20 for name in ("autograd", "manual")}
            torch_ms = ms.get("torch", float("nan"))
            print(
                f"{cell:<5}{config:<7}{ms['autograd']:>12.1f}{ms['manual']:>11.1f}{torch_ms:>10.1f}"
                f"{ms['autograd'] / ms['manual']:>13.2f}{ms['autograd'] / torch_ms:>12.2f}"
                f"{mem['autograd']:>14.1f}{mem['manual']:>16.1f}{mem['autograd'] / mem['manual']:>11.2f}"
                f"{threads:>9}",
                flush=True,
            )
    custom = [config for config in configs if config in CUSTOM_CELL_CONFIGS]
    if custom:
        print("\nyour own cell: nn.Recurrent(nn.examples.PeepholeLSTMCell) (plain Tensor ops) vs nn.LSTM")
        print(f"{'config':<7}{'peephole ms':>12}{'nn.LSTM ms':>12}{'peephole/LSTM':>15}")
    for config in custom:
        _, batch, _, hidden = CONFIGS[config]
        with blas_threads(args.threads, batch, hidden, 4 * hidden):
            ms = {name: t * 1e3 for name, t in median_seconds(custom_cell_steps(config), args.runs).items()}
        print(
            f"{config:<7}{ms['peephole']:>12.1f}{ms['lstm']:>12.1f}{ms['peephole'] / ms['lstm']:>15.2f}",
            flush=True,
        )
    return 0
