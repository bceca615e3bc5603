"""A compiled step in the graph: a replayed step (replay.ReplayedStep) whose forward and backward are the
generated functions of its program (codegen.py) instead of the ops' own, called one by one.

To the engine and to pictures it is a replayed step: the same inputs (the step's inputs, then its
captured tensors), outputs, saved-input versions and watched outputs, so in-place changes of what
backward reads raise, `retain_graph` and freeing behave the same, and `origin` unfolds into the
recorded ops. The per-op ctx objects exist only when a picture or a check asks for them (`inner`):
they carry the op classes and `needs_input_grad`, not values.
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import cached_property
from typing import Any

import numpy as np

from ..engine import OpNode, _value
from ..replay import Program, ReplayedStep
from ..tensor import Function, Tensor
from .codegen import Code


class CompiledStep(ReplayedStep):
    """One compiled step: `code` the program's generated functions, `saved` what its backward reads."""

    release = Function.release  # the saved arrays are this node's own, not its ops'

    @cached_property
    def inner(self) -> list[Function]:  # type: ignore[override]
        """A ctx per recorded op, for pictures (`origin`) and `reads_input`; made when asked."""
        made = []
        for op in self.program.ops:
            c = op.function.__new__(op.function)
            c.needs_input_grad = op.needs
            made.append(c)
        return made

    @staticmethod
    def backward(ctx: CompiledStep, *grads: Any) -> tuple[Any, ...]:  # type: ignore[override]
        unfolded = "unfolded" in ctx.__dict__
        inner_retained = unfolded and any(c.retained is not None for c in ctx.inner)
        full = ctx.retained is not None or inner_retained
        returned, slots = ctx.code.backward(ctx.saved, grads, full)
        if full:
            program = ctx.program
            if ctx.retained is not None:
                OpNode.store_retained(ctx, [_value(slots.get(f"g{s}")) for s in program.outputs])
            if inner_retained:
                for c, op in zip(ctx.inner, program.ops, strict=True):
                    if c.retained is not None:
                        c.store_retained([_value(slots.get(f"g{s}")) for s in op.outputs])
        return returned


class Bound:
    """A compiled program bound to one forward pass: its captured arrays and their transposes are
    read once, and each call runs one step."""

    __slots__ = ("program", "code", "captured", "transposed")

    def __init__(self, program: Program, code: Code) -> None:
        self.program, self.code = program, code
        self.captured: list[np.ndarray] | None = None
        self.transposed: tuple[np.ndarray, ...] = ()

    def prepare(self) -> list[np.ndarray]:
        """The captured arrays (and the transposes the code takes), read at the first step of a pass."""
        if self.captured is None:
            self.captured = [t._data for t in self.program.captured]
            first = self.program.external - len(self.captured)  # the slot of the first captured
            self.transposed = tuple(
                np.ascontiguousarray(self.captured[s - first].T) for s in self.code.transposed
            )
        return self.captured

    def __call__(self, inputs: list[Tensor]) -> Any:
        program, code = self.program, self.code
        with np.errstate(over="ignore") if code.quiet else nullcontext():
            out, saved = code.forward([t._data for t in inputs] + self.prepare(), self.transposed)
        ctx = CompiledStep.__new__(CompiledStep)
        ctx.program, ctx.code, ctx.saved = program, code, saved
        return program.finish(ctx, inputs + program.captured, out)
