"""Values for the pictures: the graph keeps only what backward needs, so a forward pass that should
show its values runs under `keep_values()`, which notes a summary of every tensor an op reads or makes.

    with tg.viz.keep_values() as values:
        loss = (model(x)[0] * G).sum()
    tg.viz.retain_grads(loss)
    loss.backward()
    tg.viz.page(loss, params=model, values=values)

While it is active the recurrent layers run their steps op by op (a replayed or compiled step has
no tensor per op to note), as a tape that records the ops does (context.current_tape).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..context import current_tape
from ..tensor import Node, Tensor

Summary = tuple[float, float, float]  # min, mean, max


class KeptValues:
    """The summaries noted under `keep_values()`, by graph node (held weakly: a freed node is gone)."""

    def __init__(self) -> None:
        self.summaries: weakref.WeakKeyDictionary[Node, Summary] = weakref.WeakKeyDictionary()

    def note(self, t: Tensor) -> None:
        if t.node not in self.summaries:
            array = t.data
            if array.size and array.dtype.kind in "fiub":
                finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
                values = finite if finite.size else array
                self.summaries[t.node] = (float(values.min()), float(values.mean()), float(values.max()))

    def of(self, nodes: list[Any]) -> Summary | None:
        """The summary of several graph nodes taken together (a split's pieces), None if not noted."""
        found = [self.summaries[n] for n in nodes if n in self.summaries]
        if not found or len(found) != len(nodes):
            return None
        lows, means, highs = zip(*found, strict=True)
        return min(lows), math.fsum(means) / len(means), max(highs)


class _NotingCalls(list):
    """A tape's list of op calls that notes each call's inputs and outputs as it is appended."""

    def __init__(self, kept: KeptValues) -> None:
        super().__init__()
        self.kept = kept

    def append(self, call: Any) -> None:
        _, inputs, _, result, _ = call
        for t in (*inputs, *(result if isinstance(result, tuple) else (result,))):
            self.kept.note(t)


class _ValueTape:
    """What `Function.apply` writes to while values are kept (the reasons a replay tape would note
    are read by nobody here)."""

    __slots__ = ("calls", "refused", "outside")

    def __init__(self, kept: KeptValues) -> None:
        self.calls = _NotingCalls(kept)
        self.refused: str | None = None
        self.outside: str | None = None


@contextmanager
def keep_values() -> Iterator[KeptValues]:
    """Note a (min, mean, max) summary of every tensor an op reads or makes inside the block."""
    kept = KeptValues()
    token = current_tape.set(_ValueTape(kept))
    try:
        yield kept
    finally:
        current_tape.reset(token)
