"""A recorded program (replay.Program) as two generated Python functions: a step's forward and backward.

`generate(program)` writes straight-line source, one or a few numpy lines per op (lowering.py),
and `exec`s it once:

    forward(values, transposed) -> (outputs, saved)
        values: the arrays of the program's external slots (the step's inputs, then the captured
        tensors); transposed: C-ordered copies of the captured weights' transposes, made once per
        forward pass (a product by a transposed view is several times slower); saved: what
        backward reads.
    backward(saved, grads, full) -> (input gradients, locals or None)
    forward_into(values, transposed, into): forward, also copying what `derivatives` reads into
        `into` (a step's rows of buffers over all steps)
    backward_local(saved, grads, full, local): backward, its local derivatives (σ′, tanh′: lowering's
        `Site.local`) given, computed for all steps of a sequence at once by
    derivatives(*those buffers) -> the local derivatives of every step, stacked
        grads: one per step output (None: zeros); gradients are summed per slot in the order the
        replayed backward sums them (newest op first), so the results agree with replay to rounding;
        a weight's gradient stays a DeferredProduct, so the engine sums all steps' in one GEMM;
        `full` returns every slot's gradient too (retained gradients).

No interpreter loop over ops and no ctx object per op: the ops' `forward` and `backward` are not
called, their formulas are inlined. A program with an op the table does not know gives the reason
instead (`Unsupported`), and is replayed.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np

from ..engine import DeferredProduct, _value
from ..replay import Program
from .lowering import LOWERINGS, RUNTIME, Site


class Code(NamedTuple):
    forward: Any
    forward_into: Any  # forward(values, transposed, into): also copies the values `derivatives` takes
    backward: Any
    transposed: tuple[int, ...]  # the external slots whose transposes `forward` takes
    source: str
    quiet: bool  # call `forward` under np.errstate(over="ignore") (see lowering's sigmoid)
    backward_local: Any  # backward(saved, grads, full, local): the local derivatives given
    derivatives: Any  # derivatives(*saved values stacked over steps) -> the local derivatives, stacked
    local_inputs: tuple[tuple[int, ...], np.dtype]  # shapes and dtypes of what `derivatives` takes


class Unsupported(NamedTuple):
    reason: str


def _acc(a: Any, b: Any) -> Any:
    """a + b for gradients, either of which may be a DeferredProduct (kept deferred when both are)."""
    if type(a) is DeferredProduct and type(b) is DeferredProduct:
        total = DeferredProduct.__new__(DeferredProduct)
        total.lefts, total.rights = a.lefts + b.lefts, a.rights + b.rights
        return total
    return _value(a) + _value(b)


def accumulate(sums: list[Any], grads: Any) -> None:
    """sums[k] += grads[k] over the steps; a weight's DeferredProducts are gathered into one."""
    if not sums:
        sums.extend([None] * len(grads))
    for k, g in enumerate(grads):
        if g is None:
            continue
        total = sums[k]
        if total is None:  # a product's lists are copied, as the steps' are extended into them
            sums[k] = _copied(g) if type(g) is DeferredProduct else g
        elif type(g) is DeferredProduct and type(total) is DeferredProduct:
            total.lefts += g.lefts
            total.rights += g.rights
        else:
            sums[k] = _value(total) + _value(g)


def _copied(product: DeferredProduct) -> DeferredProduct:
    total = DeferredProduct.__new__(DeferredProduct)
    total.lefts, total.rights = list(product.lefts), list(product.rights)
    return total


NAME = re.compile(r"\b[vt]\d+(?:_\w+)?\b")


def structure_key(program: Program) -> Any:
    """What the generated code depends on: ops, wiring, options, shapes and dtypes (not the weights)."""
    return (
        tuple((op.function, op.inputs, op.outputs, op.needs, _option_key(op.options)) for op in program.ops),
        tuple((s.shape, s.dtype, s.requires_grad) for s in program.slots),
        program.external,
        program.outputs,
        len(program.signature[2]),
    )


def _option_key(options: dict[str, Any]) -> Any:
    return tuple(
        (k, ("array", v.dtype.str, v.shape, v.tobytes()) if isinstance(v, np.ndarray) else repr(v))
        for k, v in sorted(options.items())
        if k != "weight_t"  # a copy of a weight's transpose: made afresh per forward pass here
    )


def generate(program: Program) -> Code | Unsupported:
    """The program's forward and backward as generated functions (see the module docstring)."""
    slots, inputs = program.slots, len(program.signature[2])
    names = [f"v{s}" for s in range(len(slots))]
    transposed = sorted(
        {
            op.inputs[1]
            for op in program.ops
            if op.function.__name__ == "Linear" and inputs <= op.inputs[1] < program.external
        }
    )
    namespace: dict[str, Any] = {**RUNTIME, "_Deferred": DeferredProduct, "_acc": _acc, "_value": _value}
    sites, forward_lines = [], []
    fused = _fused_pieces(program)
    for k, op in enumerate(program.ops):
        lowering = LOWERINGS.get(op.function)
        if lowering is None:
            return Unsupported(f"the op {op.function.__name__} is not compiled")
        site = Site(
            k,
            op.function,
            [names[s] for s in op.inputs],
            [names[s] for s in op.outputs],
            [slots[s].shape for s in op.inputs],
            [slots[s].shape for s in op.outputs],
            [slots[s].dtype for s in op.inputs],
            [slots[s].dtype for s in op.outputs],
            op.options,
            {p: f"w{s}" for p, s in enumerate(op.inputs) if s in transposed},
        )
        try:
            if k in fused:
                forward_lines += _fused_forward(program, k, fused[k], site, names, slots)
            else:
                forward_lines += lowering[0](site)
        except NotImplementedError as error:
            return Unsupported(f"{op.function.__name__}: {error}")
        if op.needs is not None and lowering[1] is None:
            return Unsupported(f"the op {op.function.__name__} has no compiled gradient")
        sites.append(site)
    backward_lines, returned = _backward(program, sites, names)
    local = [pair for site in sites for pair in site.locals]
    used = backward_lines + [expr for _, expr in local]
    saved = sorted({n for line in used for n in NAME.findall(line)} - set(returned), key=_order)
    defined = {n for line in forward_lines for n in NAME.findall(line.split("=")[0])} | set(
        names[: program.external]
    )
    saved = [n for n in saved if n in defined]
    outputs = ", ".join(names[s] if slots[s].shape else f"np.asarray({names[s]})" for s in program.outputs)
    external = ", ".join(names[: program.external])
    unpack_saved = f"    ({''.join(n + ', ' for n in saved)}) = saved"
    finish = (
        f"    return ({''.join(n + ', ' for n in _external_grads(program, returned))}), "
        "(locals() if full else None)"
    )
    local_inputs = sorted({n for _, expr in local for n in NAME.findall(expr)}, key=_order)
    source = "\n".join(
        [
            "def forward(values, transposed):",
            f"    ({external},) = values",
            f"    ({''.join(f'w{s}, ' for s in transposed)}) = transposed",
            *[f"    {line}" for line in forward_lines],
            f"    return ({outputs},), ({''.join(n + ', ' for n in saved)})",
            "",
            "def forward_into(values, transposed, into):",
            f"    ({external},) = values",
            f"    ({''.join(f'w{s}, ' for s in transposed)}) = transposed",
            *[f"    {line}" for line in forward_lines],
            f"    ({''.join(f'into_{n}, ' for n in local_inputs)}) = into",
            *[f"    into_{n}[...] = {n}" for n in local_inputs],
            f"    return ({outputs},), ({''.join(n + ', ' for n in saved)})",
            "",
            "def backward(saved, grads, full):",
            unpack_saved,
            *[f"    {name} = {expr}" for name, expr in local],
            *[f"    {line}" for line in backward_lines],
            finish,
            "",
            "def backward_local(saved, grads, full, local):",
            unpack_saved,
            f"    ({''.join(name + ', ' for name, _ in local)}) = local",
            *[f"    {line}" for line in backward_lines],
            finish,
            "",
            f"def derivatives({', '.join(local_inputs)}):",
            f"    return ({''.join(expr + ', ' for _, expr in local)})",
        ]
    )
    for site in sites:
        namespace.update(site.constants)
    exec(compile(source, f"<compiled step {id(program):x}>", "exec"), namespace)  # noqa: S102
    return Code(
        namespace["forward"],
        namespace["forward_into"],
        namespace["backward"],
        tuple(transposed),
        source,
        any(s.quiet for s in sites),
        namespace["backward_local"],
        namespace["derivatives"],
        tuple((slots[int(n[1:])].shape, slots[int(n[1:])].dtype) for n in local_inputs),
    )


FUSIBLE = frozenset({"Sigmoid", "Tanh", "Exp", "Neg"})  # elementwise, one input, no options


def _fused_pieces(program: Program) -> dict[int, tuple[int, int, int]]:
    """Ops applying the same elementwise function to two or more pieces of one Split (the sigmoids of
    an LSTM's i, f, o): op -> (the group's first op, the Split, which piece). The first computes the
    function once on the Split's input; each takes its piece of that as its output (same values)."""
    made = {s: (k, j) for k, op in enumerate(program.ops) for j, s in enumerate(op.outputs)}
    groups: dict[tuple[int, type], list[tuple[int, int]]] = {}
    for k, op in enumerate(program.ops):
        source = made.get(op.inputs[0]) if op.inputs else None
        if op.function.__name__ in FUSIBLE and source is not None:
            split, piece = source
            if program.ops[split].function.__name__ == "Split":
                groups.setdefault((split, op.function), []).append((k, piece))
    return {
        k: (members[0][0], split, piece)
        for (split, _), members in groups.items()
        if len(members) > 1
        for k, piece in members
    }


def _fused_forward(
    program: Program, k: int, group: tuple[int, int, int], site: Site, names: list[str], slots: list[Any]
) -> list[str]:
    """Op k's forward in a fused group: the first computes the function on the whole Split input."""
    first, split, piece = group
    whole = f"t{first}_whole"
    lines = []
    if k == first:
        source = program.ops[split].inputs[0]
        whole_site = Site(
            k, site.function, [names[source]], [whole], [slots[source].shape], [slots[source].shape],
            [slots[source].dtype], [slots[source].dtype], site.options, {},
        )  # fmt: skip
        lines += LOWERINGS[site.function][0](whole_site)
        site.quiet = whole_site.quiet
        site.constants.update(whole_site.constants)
    options = program.ops[split].options
    lead = ":, " * (options["axis"] % len(slots[program.ops[split].inputs[0]].shape))
    starts = np.cumsum((0, *options["sizes"])).tolist()
    return [*lines, f"{site.y[0]} = {whole}[{lead}{starts[piece]}:{starts[piece + 1]}]"]


def _order(name: str) -> tuple[int, str]:
    return int(re.match(r"[vt](\d+)", name).group(1)), name  # type: ignore[union-attr]


def _backward(program: Program, sites: list[Site], names: list[str]) -> tuple[list[str], set[str]]:
    """The backward's lines and the gradient names it defines (g<slot>)."""
    slots = program.slots
    lines = [f"({''.join(f'g{s}, ' for s in program.outputs)}) = grads"]
    for s in program.outputs:
        zeros = sites[0].const(np.zeros(slots[s].shape, slots[s].dtype)) if sites else "None"
        lines.append(f"if g{s} is None: g{s} = {zeros}")
    reached = set(program.outputs)
    deferred: set[int] = set()
    for k in reversed(range(len(program.ops))):
        op, site = program.ops[k], sites[k]
        if op.needs is None or not any(s in reached for s in op.outputs):
            continue
        grads = [f"g{s}" if s in reached else None for s in op.outputs]
        if op.function.__name__ != "Permute":
            for s in op.outputs:
                if s in deferred:
                    lines.append(f"g{s} = g{s}.value()")
                    deferred.discard(s)
        before, exprs = LOWERINGS[op.function][1](site, grads)  # type: ignore[misc]
        lines += before
        for p, (s, expr) in enumerate(zip(op.inputs, exprs, strict=True)):
            if expr is None or not op.needs[p]:
                continue
            is_deferred = p in site.deferred or (
                op.function.__name__ == "Permute" and op.outputs[0] in deferred
            )
            if s not in reached:
                lines.append(f"g{s} = {expr}")
                reached.add(s)
                if is_deferred:
                    deferred.add(s)
            elif is_deferred or s in deferred:
                lines.append(f"g{s} = _acc(g{s}, {expr})")
                if not (is_deferred and s in deferred):
                    deferred.discard(s)
            else:
                lines.append(f"g{s} = g{s} + {expr}")
    return lines, {f"g{s}" for s in reached}


def _external_grads(program: Program, returned: set[str]) -> list[str]:
    return [f"g{s}" if f"g{s}" in returned else "None" for s in range(program.external)]
