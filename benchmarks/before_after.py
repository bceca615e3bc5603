"""This checkout against another one (an earlier commit), alternated in one process: one training step
(forward and backward of Σ out ⊙ G, float32, `optimizer.zero_grad()` first) of the built-in layers
and of the peephole cell through `nn.Recurrent`, with each version's default settings.

The other checkout's package is imported under another name, so both run in this process, in turn,
many times over: the machine's slow spells fall on both alike. Prints the minimum and median of
each and their ratios (after / before); asserts nothing.

    git worktree add /tmp/before <commit>
    python benchmarks/before_after.py --before /tmp/before [--alternations 20] [--configs char,long]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import tinygrad_rnn

CONFIGS = {"char": (25, 1, 65, 100), "mid": (64, 32, 256, 256), "long": (1000, 8, 64, 64)}
MODELS = ("rnn", "lstm", "gru", "peephole")


def load_as(checkout: Path, name: str) -> ModuleType:
    """The package `tinygrad_rnn` of another checkout, imported as `name` (its imports are relative)."""
    root = checkout / "tinygrad_rnn"
    spec = importlib.util.spec_from_file_location(
        name, root / "__init__.py", submodule_search_locations=[str(root)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"before_after: no package at {root}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def training_step(lib: ModuleType, model_name: str, config: str) -> Any:
    steps, batch, width, hidden = CONFIGS[config]
    rng = np.random.default_rng(0)
    if model_name == "peephole":
        examples = importlib.import_module(f"{lib.__name__}.nn.examples")
        model = lib.nn.Recurrent(examples.PeepholeLSTMCell, width, hidden, rng=0)
    else:
        model = getattr(lib.nn, model_name.upper())(width, hidden, rng=0)
    x = lib.Tensor(rng.standard_normal((steps, batch, width)).astype(np.float32))
    g = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    optimizer = lib.optim.SGD(model.parameters(), lr=0.0)

    def step() -> float:
        start = time.perf_counter()
        optimizer.zero_grad()
        output, _ = model(x)
        output.backward(g)
        return time.perf_counter() - start

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the other checkout's folder")
    parser.add_argument("--alternations", type=int, default=20)
    parser.add_argument("--configs", default="char,mid,long")
    args = parser.parse_args()
    before = load_as(args.before, "tinygrad_rnn_before")
    with threadpool_limits(limits=1, user_api="blas"):
        blas = [
            f"{i['internal_api']} {i.get('architecture', '')}"
            for i in threadpool_info()
            if i["user_api"] == "blas"
        ]
        print(f"BLAS: {', '.join(blas)} (1 thread); after = {Path(tinygrad_rnn.__file__).parent.parent}")
        header = ("model", "config", "before ms min/med", "after ms min/med", "after/before min", "med")
        print(f"{header[0]:<9} {header[1]:<6} {header[2]:>18} {header[3]:>17} {header[4]:>17} {header[5]:>6}")
        for config in args.configs.split(","):
            for model in MODELS:
                steps = {
                    "before": training_step(before, model, config),
                    "after": training_step(tinygrad_rnn, model, config),
                }
                for step in steps.values():
                    step()  # warm-up
                alternations = args.alternations if config == "char" else max(3, args.alternations // 4)
                times: dict[str, list[float]] = {"before": [], "after": []}
                for _ in range(alternations):
                    for name, step in steps.items():
                        times[name].append(step() * 1e3)
                lo = {k: min(v) for k, v in times.items()}
                med = {k: statistics.median(v) for k, v in times.items()}
                print(
                    f"{model:<9} {config:<6} {lo['before']:>8.1f}/{med['before']:<9.1f} "
                    f"{lo['after']:>7.1f}/{med['after']:<9.1f} {lo['after'] / lo['before']:>17.2f} "
                    f"{med['after'] / med['before']:>6.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
