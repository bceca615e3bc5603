"""Record a loop's step once, then replay it as one op: the engine's fast path for recurrences.

A recurrent layer runs the same ops on the same shapes at every time step. `Replayer(step)` wraps
such a step, `step(*args) -> Tensor or tuple of Tensors`, args being Tensors, tuples of them or None:

1. A call whose inputs have a shape, dtype or requires_grad not seen before runs eagerly, op by op,
   while `Function.apply` writes every call on a tape. The tape becomes a `Program`: the op classes,
   their options, and which slot (an input, a tensor from outside such as a weight, or an earlier
   op's output) each op reads and writes.
2. When two consecutive recordings give the same program (same ops, wiring and options; the same
   weights; equal values for constants made inside the step), the program is trusted: the following
   calls with that signature are replayed.
3. A replayed call is one `ReplayedStep` node in the graph. Its forward calls each op's `forward` on
   the arrays directly, without Tensor, Node or scope objects per op; its backward calls the ops'
   `backward` newest first on a flat list of gradients. The ops, their saved arrays and their
   gradients are those of the eager run, so results agree to rounding (bit for bit unless a state
   feeds several ops of the step, whose gradients are then summed in another order); the engine's
   checks (gradient shapes and dtypes, in-place changes of what backward reads) stay on.

Pictures and reports see inside: a replayed step's outputs answer `parents` and `op` with the
recorded ops (`origin`), whose nodes are built only when someone walks there.

What is never replayed: a step of fewer than `MIN_OPS` ops (nothing to gain), a step whose Python
reads values (`bool`, `item`, `tolist`, `numpy`), detaches or changes values in place (the tape
refuses it), returns one of its inputs or a view (`chunk` pieces as the state share a version counter
with their base, which a replayed node's outputs would not), or records two differing programs in a
row (a random mask drawn per step, a Python counter). Such a step runs eagerly every time. A
dependence on values that does not show in two consecutive steps (reading `.data` directly, say)
cannot be seen: give the layer `replay=False` for such a cell.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from .context import current_scope, current_tape, grad_enabled
from .engine import (
    UNCHANGED,
    DeferredProduct,
    OpNode,
    _add_grad,
    _checked_grad,
    _creation_order,
    _value,
    _versions,
)
from .tensor import Function, Node, Tensor

Step = Callable[..., Any]
PythonState = Callable[[], dict[str, Any]]  # a snapshot of the Python state a step could change
# A step of fewer ops runs eagerly: replaying one product and one tanh (the RNN's step) costs about
# what it saves, as the per-step bookkeeping of a replayed node outweighs two ops' (measured: 1.3x)
MIN_OPS = 3


class Tape:
    """What `Function.apply` writes while a step is recorded, and why the step may not be replayed:
    `refused` (its Python read or changed values) or `outside` (values from outside the recorded ops
    came in: an array, a random draw)."""

    __slots__ = ("calls", "refused", "outside")

    def __init__(self) -> None:
        self.calls: list[tuple[type[Function], tuple[Tensor, ...], dict[str, Any], Any, Function | None]] = []
        self.refused: str | None = None
        self.outside: str | None = None


class Slot(NamedTuple):
    """One array of a program: what the engine checks a gradient against, and what pictures show."""

    shape: tuple[int, ...]
    dtype: np.dtype
    requires_grad: bool
    name: str | None
    scope: str | None  # relative to the step's scope ("" when recorded in it)


class Op(NamedTuple):
    function: type[Function]
    inputs: tuple[int, ...]  # slots read
    options: dict[str, Any]
    outputs: tuple[int, ...]  # slots written
    needs: tuple[bool, ...] | None  # needs_input_grad, None when the eager call recorded no graph
    saved_inputs: tuple[int, ...]  # which inputs the eager call saved for backward (engine.saved_by)
    saves_output: bool  # whether it saved its output


class Program:
    """A recorded step: slots 0..k−1 are the step's inputs, then the tensors it took from outside
    (`captured`: weights, constants), then the outputs of its ops in order."""

    def __init__(
        self,
        signature: Any,
        slots: list[Slot],
        external: int,
        captured: list[Tensor],
        ops: list[Op],
        outputs: tuple[int, ...],
        structure: bool,
    ) -> None:
        self.signature, self.slots, self.captured, self.ops = signature, slots, captured, ops
        self.external, self.outputs, self.structure = external, outputs, structure

    # what replaying needs, made once the program is trusted (most recordings are only compared)

    @cached_property
    def saved_inputs(self) -> tuple[int, ...]:
        """The external slots some op saves for backward: only their in-place changes can matter."""
        saved = {s for op in self.ops if op.needs is not None for s in _saved_slots(op)}
        return tuple(sorted(s for s in saved if s < self.external))

    @cached_property
    def backward_plan(self) -> list[tuple[Any, ...]]:
        """Newest first, the ops that recorded a graph, each with the slots it sends gradients to and
        what they are checked against (as the engine checks every edge), and the step outputs it made."""
        step_output = {s: i for i, s in enumerate(self.outputs)}
        return [
            (
                k,
                op.function,
                op.outputs,
                [(i, s, self.slots[s]) for i, s in enumerate(op.inputs) if op.needs[i]],
                len(op.inputs),
                [(j, step_output[s]) for j, s in enumerate(op.outputs) if s in step_output],
            )
            for k, op in reversed(list(enumerate(self.ops)))
            if op.needs is not None
        ]

    @cached_property
    def producer(self) -> list[tuple[int, int]]:
        """(op, output) behind each step output."""
        made = {s: (k, j) for k, op in enumerate(self.ops) for j, s in enumerate(op.outputs)}
        return [made[s] for s in self.outputs]

    @cached_property
    def saved_outputs(self) -> frozenset[int]:
        """The step outputs that the op making them saves (tanh, sigmoid, exp): their changes matter."""
        return frozenset(i for i, (k, _) in enumerate(self.producer) if self.ops[k].saves_output)

    def same_as(self, other: Program) -> bool:
        """Whether two recordings describe the same computation (see the module docstring)."""
        if (
            self.signature != other.signature
            or self.outputs != other.outputs
            or len(self.ops) != len(other.ops)
            or len(self.captured) != len(other.captured)
        ):
            return False
        for a, b in zip(self.ops, other.ops, strict=True):
            if a.function is not b.function or a.inputs != b.inputs or a.needs != b.needs:
                return False
            if a.saved_inputs != b.saved_inputs or a.saves_output != b.saves_output:
                return False
            if a.options.keys() != b.options.keys() or not all(
                _same_value(a.options[k], b.options[k]) for k in a.options
            ):
                return False
        return all(_same_tensor(a, b) for a, b in zip(self.captured, other.captured, strict=True))

    def run(self, inputs: list[Tensor]) -> Any:
        """Replay on new inputs: the step's result, made by one ReplayedStep node."""
        tensors = inputs + self.captured
        arrays = [t._data for t in tensors]
        ctx = ReplayedStep.__new__(ReplayedStep)
        ctx.program = self
        return self.finish(ctx, tensors, ctx.forward_ops(arrays))

    def finish(self, ctx: ReplayedStep, tensors: list[Tensor], out: list[np.ndarray]) -> Any:
        """The step's result: Tensors of the arrays `out` made by the node `ctx` (a replayed step, or a
        compiled one: tinygrad_rnn/compile), which enters the graph when some input needs a gradient."""
        record = False
        if grad_enabled.get():
            nodes = tuple([t.node for t in tensors])
            needs = tuple([n.requires_grad for n in nodes])
            record = True in needs
        scope = current_scope.get()
        if record:
            ctx.parents, ctx.needs_input_grad = nodes, needs
            ctx.sequence = next(_creation_order)
            ctx.versions = _versions(nodes, self.saved_inputs)
            ctx.n_outputs, ctx.scope = len(out), scope
        make, slots = Tensor._make, self.slots
        result = []
        for i, (array, s) in enumerate(zip(out, self.outputs, strict=True)):
            t = make(array, record and slots[s].requires_grad, ctx if record else None, i, scope)
            t.node.name = slots[s].name
            result.append(t)
        if record:
            ctx.made = [weakref.ref(t.node) for t in result]
        return tuple(result) if self.structure else result[0]


class ReplayedStep(OpNode):
    """One replayed step in the graph, a node of the engine's protocol (engine.OpNode) like one op
    call: its inputs are the step's inputs and captured tensors, its outputs the step's outputs;
    `inner` holds the ctx of every op, as the eager run would."""

    multi_output = True

    @property
    def saved_inputs(self) -> tuple[int, ...]:  # type: ignore[override]
        return self.program.saved_inputs

    @property
    def saves_output(self) -> bool:  # type: ignore[override]
        return bool(self.program.saved_outputs)

    @property
    def output_counter(self) -> tuple[int]:  # type: ignore[override]
        """The changes of the outputs that an op inside saved (each watched output has a counter)."""
        return (sum(c[0] for c in self.__dict__.get("watched", ())),)

    def watch_output(self, index: int, counter: list[int]) -> None:
        if index in self.program.saved_outputs:
            self.__dict__.setdefault("watched", []).append(counter)

    def reads_input(self, i: int) -> bool:
        return any(
            self.inner[k].reads_input(p)
            for k, op in enumerate(self.program.ops)
            if op.needs is not None
            for p, s in enumerate(op.inputs)
            if s == i and p in op.saved_inputs
        )

    def store_retained(self, grads_out: list[Any]) -> None:
        """Nothing yet: an output used inside the step too has its complete gradient only when
        backward reaches the op that made it, and backward stores it there."""

    def release(self) -> None:
        for c in self.inner:
            c.saved = None
        self.freed = True

    def forward_ops(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Each op's forward on the arrays, in order, each with a ctx of its own (kept for backward)."""
        program = self.program
        values: list[Any] = arrays + [None] * (len(program.slots) - len(arrays))
        inner = []
        ndarray = np.ndarray
        for function, inputs, options, outputs, needs, _, _ in program.ops:
            c = function.__new__(function)
            c.needs_input_grad = needs
            out = function.forward(c, *[values[s] for s in inputs], **options)
            if function.multi_output:
                for s, o in zip(outputs, out, strict=True):
                    values[s] = o if type(o) is ndarray else np.asarray(o)
            else:
                values[outputs[0]] = out if type(out) is ndarray else np.asarray(out)
            inner.append(c)
        self.inner = inner
        return [values[s] for s in program.outputs]

    @staticmethod
    def backward(ctx: ReplayedStep, *grads: Any) -> tuple[Any, ...]:
        """The ops' backward newest first, gradients summed per slot as the engine sums them per node."""
        program, inner = ctx.program, ctx.inner
        sums: list[Any] = [None] * len(program.slots)
        owned: set[int] = set()
        for s, g in zip(program.outputs, grads, strict=True):
            sums[s] = g
        ndarray = np.ndarray
        for k, function, outputs, edges, n_inputs, step_outputs in program.backward_plan:
            c = inner[k]
            if function.multi_output:
                grads_out = [_value(sums[s]) for s in outputs]
                if all(g is None for g in grads_out):
                    continue
            else:
                g = sums[outputs[0]]
                if g is None:
                    continue
                if type(g) is DeferredProduct and (not function.takes_products or c.retained is not None):
                    g = g.value()
                grads_out = [g]
            if c.retained is not None:
                c.store_retained(grads_out)
            if ctx.retained is not None and step_outputs:  # complete now: uses inside the step are in
                complete = [None] * len(program.outputs)
                for j, i in step_outputs:
                    complete[i] = _value(grads_out[j])
                OpNode.store_retained(ctx, complete)
            grads_in = function.backward(c, *grads_out)
            if len(grads_in) != n_inputs:
                raise RuntimeError(
                    f"backward: {function.__name__}.backward returned {len(grads_in)} gradients for "
                    f"{n_inputs} inputs"
                )
            for i, s, slot in edges:
                g = grads_in[i]
                if g is None:
                    continue
                if type(g) is not ndarray or g.shape != slot[0] or g.dtype is not slot[1]:
                    g = _checked_grad(c, i, slot, g)
                if sums[s] is None:
                    sums[s] = g
                else:
                    _add_grad(sums, owned, s, g)  # type: ignore[arg-type]
        return tuple(sums[: program.external])

    def origin(self, index: int) -> tuple[Function, int]:
        k, j = self.program.producer[index]
        return self._unfolded()[k], j

    def _unfolded(self) -> list[Function]:
        """The inner ctxs with `parents` set, so that walks see each op as the eager run made it; the
        step's outputs are the nodes the layer holds, other arrays get nodes of their own."""
        if "unfolded" in self.__dict__:
            return self.inner
        program, scope = self.program, self.__dict__.get("scope")
        nodes: list[Node | None] = list(self.parents) + [None] * (len(program.slots) - len(self.parents))
        for i, s in enumerate(program.outputs):
            nodes[s] = self.made[i]()
        for c, op in zip(self.inner, program.ops, strict=True):
            c.parents = tuple(nodes[s] for s in op.inputs)
            for j, s in enumerate(op.outputs):
                if nodes[s] is None:
                    nodes[s] = _slot_node(program.slots[s], c if op.needs is not None else None, j, scope)
        self.unfolded = True
        return self.inner


def _slot_node(slot: Slot, ctx: Function | None, index: int, scope: str | None) -> Node:
    stand_in = np.broadcast_to(np.zeros((), slot.dtype), slot.shape)  # Node reads shape and dtype
    full_scope = scope if not slot.scope else (slot.scope if scope is None else f"{scope}.{slot.scope}")
    node = Node(ctx, index, stand_in, slot.requires_grad and ctx is not None, full_scope)
    node.name = slot.name
    return node


def _saved_slots(op: Op) -> list[int]:
    return [op.inputs[p] for p in op.saved_inputs]


def _same_tensor(a: Tensor, b: Tensor) -> bool:
    if a is b:
        return True
    return (
        not a.requires_grad
        and not b.requires_grad
        and a.dtype == b.dtype
        and a.shape == b.shape
        and np.array_equal(a._data, b._data)
    )


def _same_value(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _flatten(args: tuple[Any, ...]) -> tuple[list[Tensor], tuple[Any, ...]] | None:
    """The Tensors in args (each a Tensor, None, or a tuple/list of Tensors) and their structure;
    None for anything else."""
    flat: list[Tensor] = []
    structure: list[Any] = []
    for arg in args:
        if arg is None:
            structure.append(None)
        elif isinstance(arg, Tensor):
            flat.append(arg)
            structure.append(1)
        elif isinstance(arg, tuple | list) and all(isinstance(a, Tensor) for a in arg):
            flat.extend(arg)
            structure.append((type(arg), len(arg)))
        else:
            return None
    return flat, tuple(structure)


def signature_of(inputs: list[Tensor], structure: tuple[Any, ...]) -> Any:
    """What a program is recorded for: the arguments' structure, grad mode, and each input's shape,
    dtype and requires_grad."""
    return (
        structure,
        grad_enabled.get(),
        tuple([(t._data.shape, t._data.dtype, t.node.requires_grad) for t in inputs]),
    )


def _record(
    step: Step, args: tuple[Any, ...], inputs: list[Tensor], signature: Any, python_state: PythonState | None
) -> tuple[Any, Program | None, str | None]:
    """Run the step eagerly on a tape: its result, the program (None when it cannot be replayed) and
    why it cannot (None when it can, or when the step gave no state: the layer reports that)."""
    tape = Tape()
    before = python_state() if python_state is not None else None
    token = current_tape.set(tape)
    try:
        result = step(*args)
    finally:
        current_tape.reset(token)
    reason = tape.refused or tape.outside
    if reason is None and python_state is not None:
        changed = _first_difference(before, python_state())
        if changed is not None:
            reason = f"the step changed the cell's Python state ({changed})"
    if reason is not None:
        return result, None, reason
    return result, _program(tape, inputs, result, signature), None


def _first_difference(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """The first entry of two snapshots of Python state that differs (None if none does)."""
    for key in before.keys() | after.keys():
        if key not in before or key not in after or not _same_value(before[key], after[key]):
            return key
    return None


def _program(tape: Tape, inputs: list[Tensor], result: Any, signature: Any) -> Program | None:
    structure = isinstance(result, tuple)
    results = result if structure else (result,)
    if not results or any(not isinstance(t, Tensor) for t in results):
        return None  # not a state: the layer reports it
    slot_of: dict[int, int] = {}
    slots: list[Slot] = []
    scope = current_scope.get()

    def add(t: Tensor) -> int:
        slot_of[id(t)] = len(slots)
        node = t.node
        relative = node.scope
        if scope is not None and relative is not None:
            relative = "" if relative == scope else relative.removeprefix(scope + ".")
        slots.append(Slot(t.shape, t.dtype, node.requires_grad, node.name, relative))
        return slot_of[id(t)]

    for t in inputs:
        if id(t) in slot_of:
            return None  # one tensor passed twice
        add(t)
    made = {id(o) for *_, out, _ in tape.calls for o in (out if type(out) is tuple else (out,))}
    captured: list[Tensor] = []
    for _, ins, _, _, _ in tape.calls:
        for t in ins:
            if id(t) not in slot_of and id(t) not in made:
                add(t)
                captured.append(t)
    external = len(slots)
    ops = []
    for function, ins, options, out, ctx in tape.calls:
        reads = tuple(slot_of[id(t)] for t in ins)
        writes = tuple(add(t) for t in (out if function.multi_output else (out,)))
        if ctx is None:
            ops.append(Op(function, reads, options, writes, None, (), False))
        else:
            ops.append(
                Op(function, reads, options, writes, ctx.needs_input_grad, ctx.saved_inputs, ctx.saves_output)
            )
    outputs = tuple(slot_of[id(t)] for t in results)
    if (
        len(set(outputs)) != len(outputs)
        or min(outputs) < external
        or any(t.node.counter is not UNCHANGED for t in results)  # a view, or changed in place
    ):
        return None
    return Program(signature, slots, external, captured, ops, outputs, structure)


class Replayer:
    """`Replayer(step)(*args)` gives `step(*args)`, replaying the step once two consecutive calls
    with the same signature recorded the same program (see the module docstring).

    `python_state()`, if given, snapshots the Python state the step may change (the cell modules'
    attributes, their generators): a recording that changes it is refused. A refused signature runs
    eagerly from then on, and each later call with it reports `refused(reason)` (a step recorded once
    and never again, as the first step of a sequence, loses nothing and says nothing).
    """

    def __init__(
        self,
        step: Step,
        python_state: PythonState | None = None,
        refused: Callable[[str], None] | None = None,
    ) -> None:
        self.step = step
        self.python_state = python_state
        self.refused = refused
        self.program: Program | None = None
        self.candidate: Program | None = None
        self.refusals: dict[Any, str] = {}  # signature -> why its recording was refused
        self.eager = False  # a step too short to gain from replay

    def __call__(self, *args: Any) -> Any:
        if self.eager:
            return self.step(*args)
        flattened = _flatten(args)
        if flattened is None:
            return self.step(*args)
        inputs, structure = flattened
        signature = signature_of(inputs, structure)
        program = self.program
        if program is not None and program.signature == signature:
            return program.run(inputs)
        if signature in self.refusals:
            if self.refused is not None:
                self.refused(self.refusals[signature])
            return self.step(*args)
        result, recorded, reason = _record(self.step, args, inputs, signature, self.python_state)
        if reason is not None:
            self.refusals[signature] = reason
            self.candidate = None
            return result
        if recorded is not None and self.candidate is not None and self.candidate.same_as(recorded):
            self.program = recorded
            self.eager = len(recorded.ops) < MIN_OPS
        self.candidate = recorded
        return result
