"""What replaying steps buys: one training step of a layer with its steps replayed against the same
layer with every step run op by op (`replay = False`), alternated in one process.

The two are timed in turn, many times over, so that this machine's slow spells fall on both alike;
the table gives the minimum and the median of each and their ratios, and the marginal cost of one
step (from T = 25 and T = 100 at char's sizes), where the recording of the first steps drops out.
Prints tables; asserts nothing.

    python benchmarks/replay.py [--alternations 40]
"""

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

import tinygrad_rnn as tg
from tinygrad_rnn.cli.bench import training_step
from tinygrad_rnn.nn.examples import PeepholeLSTMCell
from tinygrad_rnn.nn.recurrent import LAYERS, Recurrent

CONFIGS = {"char": (25, 1, 65, 100), "mid": (64, 32, 256, 256), "long": (1000, 8, 64, 64)}
MODELS: dict[str, Callable[[int, int], tg.nn.Module]] = {
    "lstm": lambda d, h: LAYERS["lstm"](d, h, rng=0),
    "gru": lambda d, h: LAYERS["gru"](d, h, rng=0),
    "peephole": lambda d, h: Recurrent(PeepholeLSTMCell, d, h, rng=0),
}


def timed_steps(
    model: tg.nn.Module, steps: int, batch: int, width: int, hidden: int
) -> Callable[[bool], float]:
    """A function timing one step of the bench's `training_step`, replayed or not, in seconds."""
    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal((steps, batch, width)).astype(np.float32))
    g = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    step = {replay: training_step(model, x, g, replay) for replay in (False, True)}

    def timed(replay: bool) -> float:
        start = time.perf_counter()
        step[replay]()
        return time.perf_counter() - start

    return timed


def alternate(timed: Callable[[bool], float], alternations: int) -> dict[bool, list[float]]:
    times: dict[bool, list[float]] = {False: [], True: []}
    for replay in (False, True):
        timed(replay)  # warm-up
    for _ in range(alternations):
        for replay in (False, True):
            times[replay].append(timed(replay) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alternations", type=int, default=40, help="at char; a quarter at mid and long")
    args = parser.parse_args()
    tg.keep_freed_memory()
    print("model     config  op by op ms (min, median)  replayed ms (min, median)  ratio (min, median)")
    for name, make in MODELS.items():
        for config, (steps, batch, width, hidden) in CONFIGS.items():
            count = args.alternations if config == "char" else max(4, args.alternations // 4)
            with threadpool_limits(1 if config != "mid" else 2):
                times = alternate(timed_steps(make(width, hidden), steps, batch, width, hidden), count)
            eager, replayed = times[False], times[True]
            low, mid = min(replayed) / min(eager), statistics.median(replayed) / statistics.median(eager)
            print(
                f"{name:<9} {config:<7} {min(eager):9.2f} {statistics.median(eager):9.2f}       "
                f"{min(replayed):9.2f} {statistics.median(replayed):9.2f}       {low:5.2f} {mid:5.2f}",
                flush=True,
            )
    print("\nmarginal cost of one step at char's sizes (N=1, D=65, H=100), from T = 25 and T = 100, µs")
    for name, make in MODELS.items():
        model = make(65, 100)
        steps = {length: timed_steps(model, length, 1, 65, 100) for length in (25, 100)}
        with threadpool_limits(1):
            best = {
                (length, replay): min(ms)
                for length, step in steps.items()
                for replay, ms in alternate(step, args.alternations // 2).items()
            }
        per_step = {replay: (best[100, replay] - best[25, replay]) / 75 * 1e3 for replay in (False, True)}
        print(f"{name:<9} op by op {per_step[False]:6.0f}   replayed {per_step[True]:6.0f}", flush=True)


if __name__ == "__main__":
    main()
