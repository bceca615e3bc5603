"""The steps left in a sequence, compiled as one node: a loop over the generated step (codegen.py).

Once a layer-direction's step runs compiled, the steps after it have the same signature (their state
is the previous step's output), so `CompiledSequence` runs them all: its forward calls the
generated forward once per step, carrying the state as arrays; its backward calls the generated
backward once per step, newest first, carrying the state's gradient, and sums the captured
weights' gradients over the steps (a weight's DeferredProducts become one GEMM over all steps when
the engine reads them). No Tensor, node or engine visit per step.

To the engine and to pictures it is the steps it replaces: each step's outputs are Tensors with the
step's scope and names ('h', 'c'); `origin` unfolds a step into its recorded ops on demand
(a CompiledStep stand-in per step, with the outputs' nodes as made); retained gradients get the
complete gradient of each step's outputs. The arrays backward reads are watched as the steps'
would be: a parent's version (x_t, the initial state, the weights), and each step output that the
step making it saves, or the next step reads.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np

from ..context import grad_enabled
from ..engine import OpNode, _creation_order, _value, _versions
from ..replay import Program, ReplayedStep
from ..tensor import Node, Tensor
from .codegen import Code, accumulate
from .hoist import Hoisted, Split
from .step import CompiledStep

LOCAL_LIMIT = 4096  # elements of a step's array up to which its local derivatives are computed at once


class CompiledSequence(OpNode):
    """Steps t_0..t_{S−1} of one program. Parents: each step's x parts, the initial state's parts,
    the captured tensors; outputs: each step's state parts, step after step."""

    multi_output = True

    @property
    def saves_output(self) -> bool:  # type: ignore[override]
        return True

    @property
    def output_counter(self) -> tuple[int]:  # type: ignore[override]
        return (sum(c[0] for c in self.__dict__.get("watched", ())),)

    def watch_output(self, index: int, counter: list[int]) -> None:
        if index in self.read_outputs:
            self.__dict__.setdefault("watched", []).append(counter)

    def release(self) -> None:
        self.saved = None
        OpNode.release(self)
        self.__dict__.pop("local", None)
        self.__dict__.pop("into", None)

    def store_retained(self, grads_out: list[Any]) -> None:
        """Nothing yet: a step output's complete gradient includes the later steps', known only when
        backward reaches its step (`keep_retained`)."""

    def reads_input(self, i: int) -> bool:
        p = self.slot_of_parent(i)
        return ReplayedStep.reads_input(self.stand_in(0), p)

    def slot_of_parent(self, i: int) -> int:
        kx, n, steps = self.kx, self.n, self.steps
        if i < steps * kx:
            return i % kx
        if i < steps * kx + n:
            return kx + i - steps * kx
        return kx + n + i - steps * kx - n

    @staticmethod
    def backward(ctx: CompiledSequence, *grads: Any) -> tuple[Any, ...]:
        kx, n, steps = ctx.kx, ctx.n, ctx.steps
        retained = ctx.retained is not None or "stand_ins" in ctx.__dict__
        hoisted = ctx.hoisted
        if hoisted is None:
            step_backward = ctx.step_backward(ctx.code, retained)
        elif retained:  # retained gradients are the unhoisted steps': their saved values made again
            code = ctx.code

            def step_backward(t: int, g: list[Any]) -> Any:
                state = ctx.initial if t == 0 else list(ctx.states[t - 1])
                with np.errstate(over="ignore") if code.quiet else nullcontext():
                    _, saved = code.forward(ctx.xs[t] + state + ctx.captured, ctx.transposed)
                return code.backward(saved, g, True)

        else:
            step_backward = ctx.step_backward(hoisted.step_code, False)

        rows = [] if hoisted is None or retained else hoisted.row_grads(steps)
        hoisted = None if retained else hoisted
        x_grads: list[Any] = [None] * (steps * kx)
        sums: list[Any] = []
        carry: tuple[Any, ...] = (None,) * n
        for t in range(steps - 1, -1, -1):
            g = list(grads[t * n : (t + 1) * n])
            for j in range(n):
                c = carry[j]
                if c is not None:
                    g[j] = c if g[j] is None else g[j] + _value(c)
            returned, slots = step_backward(t, g)
            if retained:
                ctx.keep_retained(t, slots)
            x_grads[t * kx : (t + 1) * kx] = returned[:kx]
            carry = returned[kx : kx + n]
            for buffer, g_row in zip(rows, returned[kx + n :], strict=False):
                if g_row is not None:
                    buffer[t * hoisted.rows : (t + 1) * hoisted.rows] = g_row
            accumulate(sums, returned[kx + n + len(rows) :])
        if rows:
            x_grads, sums = hoisted.backward(rows, sums, x_grads, kx, steps)
        return (*x_grads, *[_value(c) for c in carry], *sums)

    def step_backward(self, code: Code, full: bool) -> Callable[[int, list[Any]], Any]:
        """Step t's generated backward; with the local derivatives of all steps computed at once
        (kept while the graph is retained) when the forward filled their buffers."""
        saved = self.saved
        if self.into is None:
            return lambda t, g: code.backward(saved[t], g, full)
        if "local" not in self.__dict__:
            self.local = code.derivatives(*self.into)
        local = self.local
        return lambda t, g: code.backward_local(saved[t], g, full, [d[t] for d in local])

    def keep_retained(self, t: int, slots: dict[str, Any]) -> None:
        """Retained gradients of step t: its outputs' (complete now) and, if unfolded, its ops'."""
        program = self.program
        if self.retained is not None:
            complete: list[Any] = [None] * (self.steps * self.n)
            for j, s in enumerate(program.outputs):
                complete[t * self.n + j] = _value(slots.get(f"g{s}"))
            OpNode.store_retained(self, complete)
        stand_in = self.__dict__.get("stand_ins", {}).get(t)
        if stand_in is not None and "unfolded" in stand_in.__dict__:
            for c, op in zip(stand_in.inner, program.ops, strict=True):
                if c.retained is not None:
                    c.store_retained([_value(slots.get(f"g{s}")) for s in op.outputs])

    def origin(self, index: int) -> tuple[OpNode, int]:
        t, j = divmod(index, self.n)
        return self.stand_in(t).origin(j)

    def stand_in(self, t: int) -> CompiledStep:
        """Step t as a compiled step of its own (no values), for pictures and checks to walk into."""
        stand_ins = self.__dict__.setdefault("stand_ins", {})
        if t in stand_ins:
            return stand_ins[t]
        kx, n, steps = self.kx, self.n, self.steps
        step = CompiledStep.__new__(CompiledStep)
        step.program, step.code, step.scope = self.program, self.code, self.scopes[t]
        previous = list(self.parents[steps * kx : steps * kx + n]) if t == 0 else self.step_nodes(t - 1)
        step.parents = (*self.parents[t * kx : (t + 1) * kx], *previous, *self.parents[steps * kx + n :])
        step.made = [weakref.ref(node) for node in self.step_nodes(t)]
        stand_ins[t] = step
        return step

    def step_nodes(self, t: int) -> list[Node]:
        """The nodes of step t's outputs: those the caller holds, or new ones standing for them."""
        kept = self.__dict__.setdefault("kept_nodes", {})
        nodes = []
        for j in range(self.n):
            index = t * self.n + j
            node = self.made[index]()
            if node is None:
                node = kept.get(index)
            if node is None:
                slot = self.program.slots[self.program.outputs[j]]
                stand_in = np.broadcast_to(np.zeros((), slot.dtype), slot.shape)
                node = kept[index] = Node(self, index, stand_in, slot.requires_grad, self.scopes[t])
                node.name = slot.name
            nodes.append(node)
        return nodes


def run_sequence(
    program: Program,
    code: Code,
    captured: list[np.ndarray],
    transposed: tuple[np.ndarray, ...],
    xs: list[list[Tensor]],
    state: list[Tensor],
    scopes: list[str | None],
    split: tuple[Split, Code, Code] | None = None,
) -> list[list[Tensor]]:
    """Run the steps with inputs `xs` (each step's x parts) from `state`: each step's state parts;
    with `split` (hoist.py: the split program and the code of its two parts), the hoisted ops first."""
    out_arrays, saved = [], []
    x_arrays = [[u._data for u in x] for x in xs]
    initial = carry = [t._data for t in state]
    hoisted = None if split is None else Hoisted(*split, x_arrays, captured)
    loop = code if hoisted is None else hoisted.step_code
    # the local derivatives at once pay where a step's arrays are small (numpy's per-call cost shows);
    # on large ones, copying the values they read costs what they save (measured at mid: 3-8 % slower)
    small = all(int(np.prod(shape)) <= LOCAL_LIMIT for shape, _ in loop.local_inputs)
    into = [np.empty((len(xs), *shape), dtype) for shape, dtype in loop.local_inputs] if small else None
    forward = loop.forward_into if small else lambda values, transposed, _: loop.forward(values, transposed)
    with np.errstate(over="ignore") if loop.quiet else nullcontext():
        for t, x in enumerate(x_arrays):
            rows = [b[t] for b in into] if into is not None else None
            if hoisted is None:
                out, kept = forward(x + carry + captured, transposed, rows)
            else:
                out, kept = forward(hoisted.values(t, x, carry), hoisted.transposed, rows)
            out_arrays.append(out)
            saved.append(kept)
            carry = list(out)
    n, kx, steps = len(state), len(xs[0]), len(xs)
    ctx = CompiledSequence.__new__(CompiledSequence)
    tensors = [t for x in xs for t in x] + state + program.captured
    record = False
    if grad_enabled.get():
        nodes = tuple([t.node for t in tensors])
        needs = tuple([node.requires_grad for node in nodes])
        record = True in needs
    if record:
        ctx.program, ctx.code, ctx.saved, ctx.scopes, ctx.into = program, code, saved, scopes, into
        ctx.hoisted = hoisted
        if hoisted is not None:  # what the unhoisted steps would read, for retained gradients
            ctx.xs, ctx.initial, ctx.states = x_arrays, initial, out_arrays
            ctx.captured, ctx.transposed = captured, transposed
        ctx.kx, ctx.n, ctx.steps, ctx.n_outputs = kx, n, steps, n * steps
        ctx.parents, ctx.needs_input_grad = nodes, needs
        ctx.sequence = next(_creation_order)
        ctx.saved_inputs = _saved_parents(program, kx, n, steps)
        ctx.versions = _versions(nodes, ctx.saved_inputs)
        ctx.read_outputs = _read_outputs(program, kx, n, steps)
    make, slots = Tensor._make, program.slots
    result = []
    for t, out in enumerate(out_arrays):
        parts = []
        for j, (array, s) in enumerate(zip(out, program.outputs, strict=True)):
            made = make(
                array, record and slots[s].requires_grad, ctx if record else None, t * n + j, scopes[t]
            )
            made.node.name = slots[s].name
            parts.append(made)
        result.append(parts)
    if record:
        ctx.made = [weakref.ref(p.node) for parts in result for p in parts]
    return result


def _saved_parents(program: Program, kx: int, n: int, steps: int) -> tuple[int, ...]:
    """The parents whose values some step's backward reads: x parts, the initial state, weights."""
    saved = []
    for p in program.saved_inputs:
        if p < kx:
            saved += [t * kx + p for t in range(steps)]
        elif p < kx + n:
            saved.append(steps * kx + p - kx)
        else:
            saved.append(steps * kx + n + p - kx - n)
    return tuple(sorted(saved))


def _read_outputs(program: Program, kx: int, n: int, steps: int) -> frozenset[int]:
    """The outputs whose arrays backward reads: saved by the op making them, or by the next step."""
    read_by_next = {p - kx for p in program.saved_inputs if kx <= p < kx + n}
    return frozenset(
        t * n + j
        for t in range(steps)
        for j in range(n)
        if j in program.saved_outputs or (j in read_by_next and t < steps - 1)
    )
