"""Hoisting: the ops of a step that read only x_t and the weights, run once for all steps of a sequence.

`split(program, kx, n, steps)` cuts a step's program in two programs that codegen.py compiles as any:

- `pre`, run once before the loop: the ops reading only the captured tensors (weight-only: `W.T`),
  and the products of x_t by a weight (`x_t W_ihᵀ + b`, `x_t @ W`), with the x parts of all steps
  stacked into (T·N, D) rows: one GEMM for all steps. Its outputs are the values the loop reads.
- `step`, the rest, reading those values as inputs: a weight-only value as it is, an x-dependent one
  as step t's rows.

Backward runs them in reverse: the loop leaves the gradients of the hoisted values (an x-dependent one
in (T·N, ·) rows, a weight-only one summed over steps), and `pre`'s backward turns them into the x
parts' and weights' gradients in one pass (dW = Gᵀ X: one GEMM over all steps).

Only row-wise products are hoisted (a Linear or 2-D MatMul whose left operand is an x part, (N, D),
and whose right operand is a weight or a weight-only value), so that stacking the steps' rows is
exact; the ops' order within the step is kept.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, NamedTuple

import numpy as np

from ..engine import _value
from ..replay import Op, Program, Slot
from .codegen import Code, accumulate


class Split(NamedTuple):
    pre: Program
    step: Program
    x_rows: tuple[bool, ...]  # per pre output: True if it varies per step (rows), False if weight-only
    step_slots: dict[int, int]  # original slot -> slot in `step` (for the outputs)


def split(program: Program, kx: int, n: int, steps: int) -> Split | None:
    """The program cut into its hoisted part and the loop's part (None: nothing to hoist)."""
    slots, k_in, external = program.slots, len(program.signature[2]), program.external
    if k_in != kx + n or any(len(slots[s].shape) != 2 for s in range(kx)):
        return None
    rows = slots[0].shape[0] if kx else 0
    weight_only = set(range(k_in, external))
    x_dependent = set(range(kx))
    hoisted: list[int] = []
    for k, op in enumerate(program.ops):
        ins = op.inputs
        if all(s in weight_only for s in ins):
            weight_only.update(op.outputs)
            hoisted.append(k)
        elif (
            op.function.__name__ in ("Linear", "MatMul")
            and ins[0] < kx
            and all(s in weight_only for s in ins[1:])
            and len(slots[ins[1]].shape) == 2
        ):
            x_dependent.update(op.outputs)
            hoisted.append(k)
    if not any(s in x_dependent for k in hoisted for s in program.ops[k].outputs):
        return None  # weight-only ops alone: the per-pass transposes already cover `W.T`
    made = {s for k in hoisted for s in program.ops[k].outputs}
    if any(s in made for s in program.outputs):
        return None
    kept = [k for k in range(len(program.ops)) if k not in set(hoisted)]
    read_by_loop = sorted({s for k in kept for s in program.ops[k].inputs if s in made})
    boundary_x = [s for s in read_by_loop if s in x_dependent]
    boundary_w = [s for s in read_by_loop if s not in x_dependent]

    # pre: x parts (stacked), captured, the hoisted ops' outputs
    def stacked(s: int) -> Slot:
        slot = slots[s]
        if s in x_dependent:
            return slot._replace(shape=(steps * rows, *slot.shape[1:]))
        return slot

    pre_order = list(range(kx)) + list(range(k_in, external)) + sorted(made)
    pre_number = {s: i for i, s in enumerate(pre_order)}
    pre = Program(
        (None, True, program.signature[2][:kx]),
        [stacked(s) for s in pre_order],
        kx + external - k_in,
        [],
        [_renumbered(program.ops[k], pre_number) for k in hoisted],
        tuple(pre_number[s] for s in boundary_x + boundary_w),
        False,
    )
    # step: x parts, state, x-dependent values, captured, weight-only values, then the rest
    step_order = list(range(k_in)) + boundary_x + list(range(k_in, external)) + boundary_w
    step_order += [s for k in kept for s in program.ops[k].outputs]
    step_number = {s: i for i, s in enumerate(step_order)}
    step = Program(
        (None, True, (None,) * (k_in + len(boundary_x))),  # what codegen counts as inputs: no transposes
        [slots[s] for s in step_order],
        external + len(read_by_loop),
        [],
        [_renumbered(program.ops[k], step_number) for k in kept],
        tuple(step_number[s] for s in program.outputs),
        program.structure,
    )
    return Split(pre, step, (True,) * len(boundary_x) + (False,) * len(boundary_w), step_number)


def _renumbered(op: Op, number: dict[int, int]) -> Op:
    return op._replace(
        inputs=tuple(number[s] for s in op.inputs), outputs=tuple(number[s] for s in op.outputs)
    )


class Hoisted:
    """A split program's `pre` run for one sequence: the values the loop reads, and its backward."""

    def __init__(
        self,
        split: Split,
        pre_code: Code,
        step_code: Code,
        xs: list[list[np.ndarray]],
        captured: list[np.ndarray],
    ) -> None:
        self.split, self.pre_code, self.step_code = split, pre_code, step_code
        kx, self.rows, self.captured = len(xs[0]), xs[0][0].shape[0], len(captured)
        stacked = [np.concatenate([x[p] for x in xs]) for p in range(kx)]
        transposed = tuple(np.ascontiguousarray(captured[s - kx].T) for s in pre_code.transposed)
        with np.errstate(over="ignore") if pre_code.quiet else nullcontext():
            out, self.saved = pre_code.forward(stacked + captured, transposed)
        self.x_values = [o for o, x_rows in zip(out, split.x_rows, strict=True) if x_rows]
        weight_only = [
            np.ascontiguousarray(o) for o, x_rows in zip(out, split.x_rows, strict=True) if not x_rows
        ]
        self.static = captured + weight_only
        first = len(split.step.signature[2])  # the first static slot of the step program
        self.transposed = tuple(np.ascontiguousarray(self.static[s - first].T) for s in step_code.transposed)

    def values(self, t: int, x: list[np.ndarray], state: list[np.ndarray]) -> list[np.ndarray]:
        """Step t's external values: its x parts and state, its rows of the x-dependent values, the
        captured tensors and the weight-only values."""
        rows = self.rows
        return x + state + [v[t * rows : (t + 1) * rows] for v in self.x_values] + self.static

    def row_grads(self, steps: int) -> list[np.ndarray]:
        """Buffers for the gradients of the x-dependent values, filled step by step (rows)."""
        return [np.zeros_like(v) for v in self.x_values]

    def backward(
        self, rows: list[np.ndarray], sums: list[Any], x_grads: list[Any], kx: int, steps: int
    ) -> tuple[list[Any], list[Any]]:
        """`pre`'s backward from the loop's gradients: the x parts' (added to each step's) and the
        captured tensors' (added to the loop's sums)."""
        pre = self.split.pre
        producers = {s: op.function for op in pre.ops for s in op.outputs}
        weight_only = [
            g if g is None or producers[s].takes_products else _value(g)
            for g, s in zip(sums[self.captured :], pre.outputs[len(rows) :], strict=False)
        ]
        returned, _ = self.pre_code.backward(self.saved, rows + weight_only, False)
        for p, g in enumerate(returned[:kx]):
            if g is None:
                continue
            for t in range(steps):
                g_t = g[t * self.rows : (t + 1) * self.rows]
                own = x_grads[t * kx + p]
                x_grads[t * kx + p] = g_t if own is None else own + g_t
        captured = sums[: self.captured] or [None] * self.captured
        accumulate(captured, returned[kx:])
        return x_grads, captured
