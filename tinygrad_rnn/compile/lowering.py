"""Each op as source code: the lines a recorded op becomes in a generated step, forward and backward.

`LOWERINGS[op class]` is a pair of functions over a `Site` (one op of a program: the variable names
of what it reads and writes, their shapes, its options). `forward(site)` gives the lines computing
the outputs from the inputs, the same numpy calls as the op's own `forward`; `backward(site, g)`,
given the names of the outputs' gradients (None for an output no gradient reaches), gives lines and
one gradient expression per input (None where none is needed), the formulas of the op's `backward`.
An op not in the table is not compiled: its program is replayed (replay.py).

The table is the compiler's knowledge of the ops; what each op saves and which inputs need a
gradient come from the recorded program (`Op.needs`), nothing else from `Function`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ops


class Site:
    """One op in generated code: `x` the names of its inputs, `y` of its outputs, `k` its position."""

    def __init__(
        self,
        k: int,
        function: type,
        x: list[str],
        y: list[str],
        shapes_in: list[tuple[int, ...]],
        shapes_out: list[tuple[int, ...]],
        dtypes_in: list[np.dtype],
        dtypes_out: list[np.dtype],
        options: dict[str, Any],
        transposed: dict[int, str],
    ) -> None:
        self.k, self.function, self.x, self.y, self.options = k, function, x, y, options
        self.shapes_in, self.shapes_out = shapes_in, shapes_out
        self.dtypes_in, self.dtypes_out = dtypes_in, dtypes_out
        self.transposed = transposed  # input index -> name of a C-ordered copy of its transpose
        self.constants: dict[str, Any] = {}
        self.deferred: set[int] = set()  # inputs whose gradient is a DeferredProduct
        self.quiet = False  # the forward overflows by design (sigmoid's e^-x): run it under errstate
        self.locals: list[tuple[str, str]] = []  # (name, expression over this op's output)

    def const(self, value: Any) -> str:
        """A name for a value bound into the generated code (an option, a shape, a zero)."""
        name = f"c{self.k}_{len(self.constants)}"
        self.constants[name] = value
        return name

    def tmp(self, label: str) -> str:
        """A name for a value the forward computes besides the outputs (a mask, a difference)."""
        return f"t{self.k}_{label}"

    def local(self, expr: str) -> str:
        """A local derivative: an expression of the forward's values only (σ′ = y(1 − y), 1 − y²), of
        the output's shape. Inlined in a step's backward; a sequence computes it for all steps at once
        before its backward loop (codegen.py)."""
        name = f"d{self.k}_{len(self.locals)}"
        self.locals.append((name, expr))
        return name

    def ub(self, expr: str, i: int) -> str:
        """`expr` (of the output's shape) summed back to input i's shape (ops.unbroadcast)."""
        if self.shapes_in[i] == self.shapes_out[0]:
            return expr
        return f"_unbroadcast({expr}, {self.const(self.shapes_in[i])})"


Lines = list[str]
Grads = tuple[Lines, list[str | None]]
Forward = Callable[[Site], Lines]
Backward = Callable[[Site, list[str | None]], Grads]
LOWERINGS: dict[type, tuple[Forward, Backward | None]] = {}


def lowers(function: type, backward: Backward | None = None) -> Callable[[Forward], Forward]:
    def register(forward: Forward) -> Forward:
        LOWERINGS[function] = (forward, backward)
        return forward

    return register


def _grads(*exprs: str | None) -> Grads:
    return [], list(exprs)


# --- elementwise -----------------------------------------------------------------------------------


def _binary(symbol: str) -> Forward:
    return lambda s: [f"{s.y[0]} = {s.x[0]} {symbol} {s.x[1]}"]


lowers(ops.Add, lambda s, g: _grads(s.ub(g[0], 0), s.ub(g[0], 1)))(_binary("+"))
lowers(ops.Sub, lambda s, g: _grads(s.ub(g[0], 0), s.ub(f"-{g[0]}", 1)))(_binary("-"))
lowers(ops.Mul, lambda s, g: _grads(s.ub(f"{g[0]} * {s.x[1]}", 0), s.ub(f"{g[0]} * {s.x[0]}", 1)))(
    _binary("*")
)


def _div_backward(s: Site, g: list[str | None]) -> Grads:
    over = s.tmp("over")  # g / b, shared by both gradients as in ops.Div
    return [f"{over} = {g[0]} / {s.x[1]}"], [s.ub(over, 0), s.ub(f"-{over} * {s.x[0]} / {s.x[1]}", 1)]


lowers(ops.Div, _div_backward)(_binary("/"))
lowers(ops.Neg, lambda s, g: _grads(f"-{g[0]}"))(lambda s: [f"{s.y[0]} = -{s.x[0]}"])
lowers(ops.Exp, lambda s, g: _grads(f"{g[0]} * {s.y[0]}"))(lambda s: [f"{s.y[0]} = np.exp({s.x[0]})"])
lowers(ops.Log, lambda s, g: _grads(f"{g[0]} / {s.x[0]}"))(lambda s: [f"{s.y[0]} = np.log({s.x[0]})"])
lowers(ops.Sqrt, lambda s, g: _grads(f"{g[0]} / {s.local(f'(2 * {s.y[0]})')}"))(
    lambda s: [f"{s.y[0]} = np.sqrt({s.x[0]})"]
)
lowers(ops.Tanh, lambda s, g: _grads(f"{g[0]} * {s.local(f'(1 - {s.y[0]} * {s.y[0]})')}"))(
    lambda s: [f"{s.y[0]} = np.tanh({s.x[0]})"]
)


def _sigmoid(s: Site) -> Lines:
    """ops.stable_sigmoid's calls, e^-x's overflow to inf silenced once around the generated code
    (`quiet`), not per call."""
    s.quiet = True
    y, x = s.y[0], s.x[0]
    return [
        f"{y} = np.negative({x}, out=np.empty_like({x}))",
        f"np.exp({y}, out={y})",
        f"{y} += 1",
        f"np.reciprocal({y}, out={y})",
    ]


lowers(ops.Sigmoid, lambda s, g: _grads(f"{g[0]} * {s.local(f'({s.y[0]} * (1 - {s.y[0]}))')}"))(_sigmoid)
lowers(ops.Softplus, lambda s, g: _grads(f"{g[0]} * {s.local(f'_softplus_slope({s.x[0]})')}"))(
    lambda s: [f"{s.y[0]} = _softplus({s.x[0]})"]
)
lowers(ops.Reciprocal, lambda s, g: _grads(f"-{g[0]} * {s.local(f'({s.y[0]} * {s.y[0]})')}"))(
    lambda s: [f"{s.y[0]} = _reciprocal({s.x[0]})"]
)
lowers(ops.Relu, lambda s, g: _grads(f"{g[0]} * {s.tmp('positive')}"))(
    lambda s: [f"{s.tmp('positive')} = {s.x[0]} > 0", f"{s.y[0]} = {s.x[0]} * {s.tmp('positive')}"]
)
lowers(ops.Abs, lambda s, g: _grads(f"{g[0]} * {s.tmp('sign')}"))(
    lambda s: [f"{s.tmp('sign')} = np.sign({s.x[0]})", f"{s.y[0]} = np.abs({s.x[0]})"]
)


@lowers(
    ops.Addcmul,
    lambda s, g: _grads(s.ub(g[0], 0), s.ub(f"{g[0]} * {s.x[2]}", 1), s.ub(f"{g[0]} * {s.x[1]}", 2)),
)
def _addcmul(s: Site) -> Lines:
    c, a, b = s.x
    if s.shapes_in[0] == s.shapes_out[0]:
        return [f"{s.y[0]} = {a} * {b}", f"{s.y[0]} += {c}"]
    return [f"{s.y[0]} = {a} * {b} + {c}"]


def _lerp_backward(s: Site, g: list[str | None]) -> Grads:
    end = s.tmp("end")
    return [f"{end} = {g[0]} * {s.x[2]}"], [
        s.ub(f"{g[0]} - {end}", 0),
        s.ub(end, 1),
        s.ub(f"{g[0]} * {s.tmp('difference')}", 2),
    ]


@lowers(ops.Lerp, _lerp_backward)
def _lerp(s: Site) -> Lines:
    start, end, weight = s.x
    d = s.tmp("difference")
    return [f"{d} = {end} - {start}", f"{s.y[0]} = {weight} * {d}", f"{s.y[0]} += {start}"]


def _where_backward(s: Site, g: list[str | None]) -> Grads:
    zero, cond = s.const(np.zeros((), s.dtypes_out[0])), s.tmp("cond")
    return _grads(
        s.ub(f"np.where({cond}, {g[0]}, {zero})", 0), s.ub(f"np.where({cond}, {zero}, {g[0]})", 1), None
    )


@lowers(ops.Where, _where_backward)
def _where(s: Site) -> Lines:
    cond = s.tmp("cond")
    return [f"{cond} = np.array({s.x[2]}, dtype=bool)", f"{s.y[0]} = np.where({cond}, {s.x[0]}, {s.x[1]})"]


def _extremum(name: str, wins: str) -> tuple[Forward, Backward]:
    def forward(s: Site) -> Lines:
        return [f"{s.y[0]} = np.{name}({s.x[0]}, {s.x[1]})"]

    def backward(s: Site, g: list[str | None]) -> Grads:
        a, b = s.x
        both = s.tmp("grads")
        line = f"{both} = _winner_takes_grad({g[0]}, {a}, {b}, {a} {wins} {b})"
        return [line], [f"{both}[0]", f"{both}[1]"]

    return forward, backward


for _function, _name, _wins in ((ops.Maximum, "maximum", ">"), (ops.Minimum, "minimum", "<")):
    _forward, _backward = _extremum(_name, _wins)
    lowers(_function, _backward)(_forward)


@lowers(ops.Compare)
def _compare(s: Site) -> Lines:
    return [f"{s.y[0]} = {s.const(s.options['ufunc'])}({s.x[0]}, {s.x[1]})"]


@lowers(ops.ArgMax)
def _argmax(s: Site) -> Lines:
    return [f"{s.y[0]} = np.argmax({s.x[0]}, axis={s.const(s.options['axis'])})"]


@lowers(ops.Cast, lambda s, g: _grads(f"{g[0]}.astype({s.const(s.dtypes_in[0])})"))
def _cast(s: Site) -> Lines:
    return [f"{s.y[0]} = {s.x[0]}.astype({s.const(s.options['dtype'])})"]


# --- reduce ----------------------------------------------------------------------------------------


def _reduction(name: str) -> tuple[Forward, Backward]:
    def forward(s: Site) -> Lines:
        axis, keepdims = s.const(s.options["axis"]), s.const(s.options["keepdims"])
        return [f"{s.y[0]} = np.{name}({s.x[0]}, axis={axis}, keepdims={keepdims})"]

    def backward(s: Site, g: list[str | None]) -> Grads:
        grad = g[0]
        if name == "mean":
            count = ops.reduced_count(s.shapes_in[0], s.options["axis"])
            grad = f"{g[0]} / {s.const(s.dtypes_out[0].type(count))}"
        args = ", ".join(s.const(v) for v in (s.shapes_in[0], s.options["axis"], s.options["keepdims"]))
        return _grads(f"_expand_reduced({grad}, {args})")

    return forward, backward


for _function, _name in ((ops.Sum, "sum"), (ops.Mean, "mean")):
    _forward, _backward = _reduction(_name)
    lowers(_function, _backward)(_forward)


def _softmax_backward(s: Site, g: list[str | None]) -> Grads:
    axis = s.const(s.options["axis"])
    return _grads(f"{s.y[0]} * ({g[0]} - np.sum({g[0]} * {s.y[0]}, axis={axis}, keepdims=True))")


@lowers(ops.Softmax, _softmax_backward)
def _softmax(s: Site) -> Lines:
    axis = s.const(s.options["axis"])
    shifted = s.tmp("shifted")
    return [
        f"{shifted} = np.exp({s.x[0]} - np.max({s.x[0]}, axis={axis}, keepdims=True, initial=-np.inf))",
        f"{s.y[0]} = {shifted} / np.sum({shifted}, axis={axis}, keepdims=True)",
    ]


# --- matmul ----------------------------------------------------------------------------------------


def _linear_backward(s: Site, g: list[str | None]) -> Grads:
    x, weight = s.x[0], s.x[1]
    rows = int(np.prod(s.shapes_out[0][:-1], dtype=np.int64))
    s.deferred.add(1)
    if len(s.shapes_out[0]) == 2 and len(s.shapes_in[0]) == 2:
        dweight = f"_Deferred({g[0]}, {x})"
    else:
        left, right = s.const((rows, s.shapes_out[0][-1])), s.const((rows, s.shapes_in[0][-1]))
        dweight = f"_Deferred({g[0]}.reshape({left}), {x}.reshape({right}))"
    bias = [s.ub(g[0], 2)] if len(s.x) == 3 else []
    return _grads(f"{g[0]} @ {weight}", dweight, *bias)


@lowers(ops.Linear, _linear_backward)
def _linear(s: Site) -> Lines:
    weight_t = s.transposed.get(1, f"{s.x[1]}.T")
    lines = [f"{s.y[0]} = {s.x[0]} @ {weight_t}"]
    if len(s.x) == 3:
        lines.append(f"{s.y[0]} += {s.x[2]}")
    return lines


def _matmul_backward(s: Site, g: list[str | None]) -> Grads:
    s.deferred.add(1)
    return _grads(f"{g[0]} @ {s.x[1]}.T", f"_Deferred({s.x[0]}, {g[0]})")


@lowers(ops.MatMul, _matmul_backward)
def _matmul(s: Site) -> Lines:
    if len(s.shapes_in[0]) != 2 or len(s.shapes_in[1]) != 2:
        raise NotImplementedError("MatMul of operands that are not both 2-D")
    return [f"{s.y[0]} = {s.x[0]} @ {s.x[1]}"]


# --- shape and indexing ----------------------------------------------------------------------------

lowers(ops.Reshape, lambda s, g: _grads(f"{g[0]}.reshape({s.const(s.shapes_in[0])})"))(
    lambda s: [f"{s.y[0]} = {s.x[0]}.reshape({s.const(s.options['shape'])})"]
)
lowers(ops.Contiguous, lambda s, g: _grads(g[0]))(lambda s: [f"{s.y[0]} = np.ascontiguousarray({s.x[0]})"])


def _permute_backward(s: Site, g: list[str | None]) -> Grads:
    inverse = s.const(tuple(np.argsort(s.options["axes"]).tolist()))
    return _grads(f"({g[0]}.T if type({g[0]}) is _Deferred else np.transpose({g[0]}, {inverse}))")


lowers(ops.Permute, _permute_backward)(
    lambda s: [f"{s.y[0]} = np.transpose({s.x[0]}, {s.const(s.options['axes'])})"]
)


def _getitem_backward(s: Site, g: list[str | None]) -> Grads:
    index, dx = s.const(_owned_index(s.options["index"])), s.tmp("dx")
    scatter = (
        f"{dx}[{index}] = {g[0]}"
        if ops.is_basic_index(s.options["index"])
        else f"np.add.at({dx}, {index}, {g[0]})"
    )
    return [f"{dx} = np.zeros({s.const(s.shapes_in[0])}, dtype={g[0]}.dtype)", scatter], [dx]


@lowers(ops.GetItem, _getitem_backward)
def _getitem(s: Site) -> Lines:
    return [f"{s.y[0]} = {s.x[0]}[{s.const(_owned_index(s.options['index']))}]"]


def _owned_index(index: Any) -> Any:
    """Index arrays copied once, when the program is compiled (ops.GetItem copies them per call)."""
    items = index if isinstance(index, tuple) else (index,)
    owned = tuple(np.array(i) if isinstance(i, np.ndarray | list) else i for i in items)
    return owned if isinstance(index, tuple) else owned[0]


def _pieces_backward(s: Site, g: list[str | None]) -> Grads:
    """Split and Unbind: the pieces' gradients put back together, zeros where none arrived."""
    lines, parts = [], []
    dtype = s.const(s.dtypes_out[0])
    for j, grad in enumerate(g):
        if grad is None:
            grad = s.tmp(f"zero{j}")
            lines.append(f"{grad} = np.zeros({s.const(s.shapes_out[j])}, {dtype})")
        parts.append(grad)
    axis = s.const(s.options["axis"])
    join = "np.concatenate" if "sizes" in s.options else "np.stack"
    return lines, [f"{join}(({', '.join(parts)},), axis={axis})"]


def _pieces(s: Site) -> Lines:
    lead = ":, " * (s.options["axis"] % len(s.shapes_in[0]))
    if "sizes" in s.options:
        starts = np.cumsum((0, *s.options["sizes"])).tolist()
        return [f"{y} = {s.x[0]}[{lead}{a}:{b}]" for y, a, b in zip(s.y, starts, starts[1:], strict=False)]
    return [f"{y} = {s.x[0]}[{lead}{i}]" for i, y in enumerate(s.y)]


lowers(ops.Split, _pieces_backward)(_pieces)
lowers(ops.Unbind, _pieces_backward)(_pieces)


def _joined_backward(s: Site, g: list[str | None]) -> Grads:
    """Cat and Stack: each input's gradient is its piece of the output's."""
    lead = ":, " * (s.options["axis"] % len(s.shapes_out[0]))
    if s.function is ops.Stack:
        return _grads(*[f"{g[0]}[{lead}{i}]" for i in range(len(s.x))])
    axis = s.options["axis"] % len(s.shapes_out[0])
    starts = np.cumsum((0, *[shape[axis] for shape in s.shapes_in])).tolist()
    return _grads(*[f"{g[0]}[{lead}{a}:{b}]" for a, b in zip(starts, starts[1:], strict=False)])


def _joined(join: str) -> Forward:
    return lambda s: [f"{s.y[0]} = np.{join}(({', '.join(s.x)},), axis={s.const(s.options['axis'])})"]


lowers(ops.Cat, _joined_backward)(_joined("concatenate"))
lowers(ops.Stack, _joined_backward)(_joined("stack"))


def _reciprocal(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):  # 1/0 = inf, as ops.Reciprocal
        return np.reciprocal(x)


RUNTIME: dict[str, Any] = {
    "np": np,
    "_reciprocal": _reciprocal,
    "_softplus": ops.softplus,
    "_softplus_slope": ops.softplus_slope,
    "_unbroadcast": ops.unbroadcast,
    "_expand_reduced": ops._expand_reduced,
    "_winner_takes_grad": ops._winner_takes_grad,
}
