"""How many BLAS threads a command uses: one where its matrices are small, every core where they help.

A recurrent step multiplies an (N, H) state by an (H, G·H) weight. Below about 2²⁵ multiply-adds per
product a second BLAS thread costs more than it gives: on this project's 2-core machine a (32, 128) ×
(128, 512) product took 0.1 ms on one thread and 2 ms on two while the other core was busy, and
training ran 6-8 times slower. Larger products (bench's `big`) gain from every core. `--threads K`
overrides the choice. The limit holds for the command only (threadpoolctl restores the pools after).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

from .arguments import positive_int

SMALL = 2**25  # multiply-adds per matrix product below which one thread is faster


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="K",
        help="BLAS threads (default: 1 when the matrices are small, as here mostly, else every core)",
    )


def threads_for(rows: int, inner: int, cols: int) -> int:
    """The threads worth using for a (rows, inner) × (inner, cols) product: 1 if small, else all cores
    this process may run on."""
    if rows * inner * cols < SMALL:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def blas_threads(requested: int | None, rows: int, inner: int, cols: int) -> Iterator[int]:
    """Run the block with `requested` BLAS threads, or with `threads_for(rows, inner, cols)` when None;
    yields the number used."""
    threads = requested if requested is not None else threads_for(rows, inner, cols)
    with threadpool_limits(limits=threads, user_api="blas"):
        yield threads
