"""One training step (forward + backward, float32, loss = Σ out ⊙ G) of RNN, LSTM and GRU, timed for
the autograd (`nn`), the hand-written `manual` package and, when installed, PyTorch. All get G as the
gradient of the output (`output.backward(G)`, manual's doutput = G), so none pays for a loss op.

The autograd step is written as a PyTorch user writes it: `optimizer.zero_grad()` (its default frees
the gradients), forward, backward. It is timed three times: as the layers run by default, the steps
compiled once recorded (tinygrad_rnn/compile), replayed instead (`compile="replay"`,
tinygrad_rnn/replay.py), and with every step run op by op (`compile=False`), so the engine's gains
are ratios of one run. `first call` is what a new layer's first training step costs beyond a later
one: recording its steps and generating their code. `--yardstick FILE.py` adds hand-written numpy training
steps (a file whose `CELLS` maps each cell to `fn(x, h0, [c0,] w_ih, w_hh, b_ih, b_hh, dy)`, such as
the shared bench's manual_ref.py) to the same run.

BLAS and PyTorch threads per config: one where the step's products are small, every core where they
help (`threads.threads_for`), or `--threads K` for all; the last column says which.

Every implementation is measured in this one process run, so the ratios are fair on a noisy machine:
in each of several rounds, every implementation in turn gets a pause, a warm-up and several timed
runs; the figure is the fastest round's median. Peak memory is
what tracemalloc sees numpy allocate during one step (PyTorch's allocations are invisible to it, so
torch has no memory column).
A second table times your own cell: the peephole LSTM of `nn.examples` (plain Tensor ops) through
`nn.Recurrent` against the built-in `nn.LSTM`, at char, mid and long.
Prints tables, and a progress line on stderr before each row; asserts nothing. By default the
small configs (char, mid) in 2 rounds of 3 runs, about a minute on 2 cores; `--full` times every
config in 3 rounds of 5 runs (several minutes). `tinygrad-rnn bench [--full] [--configs char,mid]
[--cells lstm]`, or `python benchmarks/recurrent.py ...`.
"""

from __future__ import annotations

import argparse
import functools
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

from .. import Tensor, manual, optim
from ..lm.cells import import_file
from ..lm.data import InputError
from ..nn.examples import PeepholeLSTMCell
from ..nn.recurrent import LAYERS, Recurrent
from .arguments import positive_int
from .failures import fail
from .threads import add_threads_option, blas_threads

CONFIGS = {
    "char": (25, 1, 65, 100),
    "mid": (64, 32, 256, 256),
    "big": (128, 64, 512, 512),
    "long": (1000, 8, 64, 64),
}


def median_seconds(
    steps: dict[str, Callable[[], object]], runs: int, rounds: int = 1, warmup: int = 2
) -> dict[str, float]:
    """Per step, the fastest of `rounds` medians, each over `runs` runs after `warmup`; a round times
    every implementation in turn, one at a time, so that a slow spell of this shared machine spoils
    one round's median rather than one implementation's figure.

    A pause comes before each: thread pools (PyTorch's OpenMP, OpenBLAS) keep spinning for a while
    after their last call and would slow down whatever is measured next (measured round-robin, torch
    took twice as long and the small autograd cases 40 % longer).
    """
    medians: dict[str, float] = {}
    for _ in range(rounds):
        for name, step in steps.items():
            time.sleep(0.3)
            for _ in range(warmup):
                step()
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
            medians[name] = min(medians.get(name, float("inf")), statistics.median(times))
    return medians


def peak_bytes(step: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def training_step(model: Any, x: Tensor, g: np.ndarray, compile: bool | str) -> Callable[[], None]:  # noqa: A002
    """One autograd training step as a PyTorch user writes it: `optimizer.zero_grad()` (its default
    frees the gradients), forward, and backward of Σ out ⊙ G; the steps compiled (True), replayed
    ("replay") or run op by op (False)."""
    optimizer = optim.SGD(model.parameters(), lr=0.0)

    def step() -> None:
        model.compile = compile
        optimizer.zero_grad()
        output, _ = model(x)
        output.backward(g)  # the gradient of Σ out ⊙ G

    return step


def steps_for(cell: str, config: str, torch_module: Any, yardstick: Any) -> dict[str, Callable[[], object]]:
    """The implementations of one training step, sharing weights, input and G: the autograd layer
    (`training_step`) replayed and op by op, manual, and PyTorch and the yardstick when given."""
    steps, batch, width, hidden = CONFIGS[config]
    rng = np.random.default_rng(0)
    model = LAYERS[cell](width, hidden, rng=rng)
    x = rng.standard_normal((steps, batch, width)).astype(np.float32)
    g = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    params, options = manual.from_module(model)
    x_tensor = Tensor(x)

    def manual_step() -> None:
        output, _, cache = manual.recurrent_forward(x=x, params=params, **options)
        manual.recurrent_backward(g, None, cache)

    implementations = {
        "autograd": training_step(model, x_tensor, g, True),
        "replay": training_step(model, x_tensor, g, "replay"),
        "op by op": training_step(model, x_tensor, g, False),
        "manual": manual_step,
    }
    if yardstick is not None:
        weights = [params[f"{name}_l0"] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        zeros = np.zeros((batch, hidden), np.float32)
        arrays = (x, zeros, zeros, *weights, g) if cell == "lstm" else (x, zeros, *weights, g)
        implementations["yardstick"] = functools.partial(yardstick[cell], *arrays)
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
# (configs, runs, rounds): the default run (about a minute on 2 cores) and --full
QUICK = (("char", "mid"), 3, 2)
FULL = (tuple(CONFIGS), 5, 3)


def custom_cell_steps(config: str, torch_module: Any) -> dict[str, Callable[[], object]]:
    """One autograd training step of nn.Recurrent(PeepholeLSTMCell), compiled, replayed and op by op,
    and of nn.LSTM, with the same input and G; and the same cell as a PyTorch user writes a custom cell
    (an eager loop of torch ops), when torch is given."""
    steps, batch, width, hidden = CONFIGS[config]
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((steps, batch, width)).astype(np.float32))
    g = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    peephole = Recurrent(PeepholeLSTMCell, width, hidden, rng=0)
    lstm = LAYERS["lstm"](width, hidden, rng=0)
    implementations = {
        "peephole": training_step(peephole, x, g, True),
        "replay": training_step(peephole, x, g, "replay"),
        "op by op": training_step(peephole, x, g, False),
        "lstm": training_step(lstm, x, g, True),
    }
    if torch_module is not None:
        implementations["torch eager"] = torch_peephole_step(torch_module, peephole.cell_l0, x.data, g)
    return implementations


def torch_peephole_step(torch: Any, cell: Any, x: np.ndarray, g: np.ndarray) -> Callable[[], None]:
    """nn.examples.PeepholeLSTMCell's step written in torch ops, in a Python loop over time."""
    p = {name: torch.tensor(q.data, requires_grad=True) for name, q in cell.named_parameters()}
    x_t, g_t = torch.from_numpy(x), torch.from_numpy(g)

    def step() -> None:
        for q in p.values():
            q.grad = None
        h = c = torch.zeros(x.shape[1], g.shape[2])
        outputs = []
        for t in range(x.shape[0]):
            i, f, n, o = (x_t[t] @ p["weight_ih"].T + h @ p["weight_hh"].T + p["bias"]).chunk(4, 1)
            i, f = (i + p["peep_i"] * c).sigmoid(), (f + p["peep_f"] * c).sigmoid()
            c = f * c + i * n.tanh()
            h = (o + p["peep_o"] * c).sigmoid() * c.tanh()
            outputs.append(h)
        torch.stack(outputs).backward(g_t)

    return step


def first_call_ms(cell: str, config: str) -> float:
    """What a new layer's first training step costs beyond its third (recording, code generation)."""
    steps, batch, width, hidden = CONFIGS[config]
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((steps, batch, width)).astype(np.float32))
    g = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    step = training_step(LAYERS[cell](width, hidden, rng=0), x, g, True)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return (times[0] - times[2]) * 1e3


def add_bench_parser(subparsers: Any) -> None:
    """Register `bench` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "bench",
        help="time a training step: autograd vs manual vs PyTorch (about a minute; --full: several)",
    )
    (configs, runs, rounds), (all_configs, full_runs, full_rounds) = QUICK, FULL
    p.add_argument(
        "--full",
        action="store_true",
        help=f"every config, {full_rounds} rounds of {full_runs} runs: the whole table (several minutes)",
    )
    p.add_argument(
        "--configs",
        help=f"some of {','.join(CONFIGS)} (default {','.join(configs)}; --full: {','.join(all_configs)})",
    )
    p.add_argument("--cells", default=",".join(LAYERS), help=f"some of {','.join(LAYERS)} (default all)")
    p.add_argument(
        "--runs",
        type=positive_int,
        help=f"timed runs per round, the median kept (default {runs}; --full: {full_runs})",
    )
    p.add_argument(
        "--rounds",
        type=positive_int,
        help=f"rounds over the implementations, the fastest shown (default {rounds}; --full: {full_rounds})",
    )
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when installed")
    p.add_argument(
        "--yardstick",
        metavar="FILE.py",
        help="a file whose CELLS maps rnn, lstm and gru to hand-written numpy training steps, timed "
        "in the same run (e.g. a checkout's ../shared/bench/manual_ref.py)",
    )
    add_threads_option(p)
    p.set_defaults(run=run_bench)


def load_yardstick(path: str) -> dict[str, Callable[..., object]]:
    """The CELLS of a yardstick file (fn(x, h0, [c0,] w_ih, w_hh, b_ih, b_hh, dy) per cell)."""
    cells = getattr(import_file(path, "yardstick"), "CELLS", None)
    if not isinstance(cells, dict) or not set(LAYERS) <= set(cells):
        raise InputError(f"yardstick file {path} has no CELLS dict with {', '.join(LAYERS)}")
    return cells


class Progress:
    """'bench: [k/n] what, s elapsed' on stderr before each row, so a long run says where it is."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def next(self, what: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.start
        print(
            f"bench: [{self.done}/{self.total}] {what} ({elapsed:.0f} s so far)", file=sys.stderr, flush=True
        )


def ratio(ms: dict[str, float], a: str, b: str) -> str:
    return f"{ms[a] / ms[b]:.2f}" if a in ms and b in ms else "-"


def _names(option: str, text: str, known: Any) -> list[str]:
    """A comma-separated list of names, each one of `known`; InputError naming the others."""
    names = text.split(",")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InputError(
            f"{option}: unknown {', '.join(map(repr, unknown))}; expected some of {','.join(known)}"
        )
    return names


def run_bench(args: argparse.Namespace) -> int:
    default_configs, runs, rounds = FULL if args.full else QUICK
    args.runs, args.rounds = args.runs or runs, args.rounds or rounds
    try:
        configs = _names("--configs", args.configs or ",".join(default_configs), CONFIGS)
        cells = _names("--cells", args.cells, LAYERS)
        yardstick = load_yardstick(args.yardstick) if args.yardstick else None
    except InputError as error:
        return fail("bench", error)
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
    torch_text = torch.__version__ if torch else ("left out" if args.no_torch else "not installed")
    print(
        f"{date.today()}, {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}, "
        f"torch {torch_text}; milliseconds, the fastest of {args.rounds} rounds' medians of {args.runs} runs"
    )
    columns = ["yardstick", "manual", "autograd", "replay", "op by op", "torch"]
    header = f"{'cell':<5}{'config':<7}" + "".join(f"{c:>11}" for c in columns)
    header += f"{'man/yard':>10}{'auto/yard':>11}{'auto/replay':>13}{'auto/opbyop':>13}{'auto/torch':>12}"
    header += f"{'first call':>12}{'peak auto MB':>14}{'peak manual MB':>16}{'threads':>9}"
    print(header)
    custom = [config for config in configs if config in CUSTOM_CELL_CONFIGS]
    rows = [(cell, config) for cell in cells for config in configs]
    progress = Progress(len(rows) + len(custom))
    for cell, config in rows:
        progress.next(f"{cell} {config}")
        implementations = steps_for(cell, config, torch, yardstick)
        runs = max(3, args.runs if config != "big" else 3)
        _, batch, _, hidden = CONFIGS[config]
        with blas_threads(args.threads, batch, hidden, 4 * hidden) as threads:
            if torch is not None:
                torch.set_num_threads(threads)
            timed = median_seconds(implementations, runs, args.rounds)
            ms = {name: t * 1e3 for name, t in timed.items()}
            mem = {name: peak_bytes(implementations[name]) / 2**20 for name in ("autograd", "manual")}
            first = first_call_ms(cell, config)
        times = "".join(f"{ms[c]:>11.1f}" if c in ms else f"{'-':>11}" for c in columns)
        print(
            f"{cell:<5}{config:<7}{times}{ratio(ms, 'manual', 'yardstick'):>10}"
            f"{ratio(ms, 'autograd', 'yardstick'):>11}{ratio(ms, 'autograd', 'replay'):>13}"
            f"{ratio(ms, 'autograd', 'op by op'):>13}{ratio(ms, 'autograd', 'torch'):>12}{first:>12.1f}"
            f"{mem['autograd']:>14.1f}{mem['manual']:>16.1f}"
            f"{threads:>9}",
            flush=True,
        )
    if custom:
        print("\nyour own cell: nn.Recurrent(nn.examples.PeepholeLSTMCell) (plain Tensor ops) vs nn.LSTM")
        print(
            f"{'config':<7}{'peephole ms':>12}{'replay ms':>12}{'op by op ms':>12}{'nn.LSTM ms':>12}"
            f"{'torch eager':>12}{'peephole/LSTM':>15}{'peep/torch':>12}"
        )
    for config in custom:
        progress.next(f"your own cell {config}")
        _, batch, _, hidden = CONFIGS[config]
        with blas_threads(args.threads, batch, hidden, 4 * hidden) as threads:
            if torch is not None:
                torch.set_num_threads(threads)
            timed = median_seconds(custom_cell_steps(config, torch), args.runs, args.rounds)
            ms = {name: t * 1e3 for name, t in timed.items()}
        eager = f"{ms['torch eager']:>12.1f}" if "torch eager" in ms else f"{'-':>12}"
        print(
            f"{config:<7}{ms['peephole']:>12.1f}{ms['replay']:>12.1f}{ms['op by op']:>12.1f}"
            f"{ms['lstm']:>12.1f}{eager}{ms['peephole'] / ms['lstm']:>15.2f}"
            f"{ratio(ms, 'peephole', 'torch eager'):>12}",
            flush=True,
        )
    return 0
