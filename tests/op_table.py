"""The one table of public ops the tests read: each op's call here and in torch, its inputs, its kind
and the op class it records.

test_ops checks every row's gradient (finite differences, torch, float32) and runs the elementwise
and reduction rows on generated shapes; the fuzzer (fuzz_programs.py) draws its unary and reduction
steps from those rows; the replay cells (test_replay.py) use the bounded elementwise rows;
test_saved_values.py changes every row's inputs and output in place before backward;
test_op_table.py checks that every public Tensor op, module function, `nn.functional` function and
op class in ops.py has a row. Adding an op is one row here.

Domains: `normal` any value, `positive` in [0.5, 2], `away_from_zero` |x| ≥ 0.2 (a kink at 0 is never
within eps), `distinct` well-separated values (no ties for max).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import ops


def normal(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.standard_normal(shape)


def positive(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def away_from_zero(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    """Values with |x| ≥ 0.2, so a kink at 0 (relu, abs) is never within eps."""
    return lambda rng: rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def distinct(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    """A permutation of well-separated values, so max has a unique arg-max and no ties."""
    n = int(np.prod(shape))
    return lambda rng: (rng.permutation(np.arange(n, dtype=np.float64)).reshape(shape) - n / 2) * 0.1 + 0.013


DOMAINS = {"normal": normal, "positive": positive, "away_from_zero": away_from_zero, "distinct": distinct}


def torch() -> Any:
    return __import__("torch")


class Row(NamedTuple):
    """One public op. `tiny` and `torch` take Tensors (and, for a reduction, `dim` and `keepdim`);
    `shapes` are its inputs' shapes in the canonical case, all drawn from `domain`."""

    name: str
    tiny: Callable[..., Any]
    torch: Callable[..., Any] | None  # None: the same call works on torch tensors
    shapes: tuple[tuple[int, ...], ...]
    kind: str  # elementwise | binary | reduction | matmul | shape | join | softmax | function | loss
    op: type | None  # the op class the call records last (None: a composition of other ops)
    domain: str = "normal"

    @property
    def inputs(self) -> list[Callable[[np.random.Generator], np.ndarray]]:
        return [DOMAINS[self.domain](*s) for s in self.shapes]

    @property
    def torch_call(self) -> Callable[..., Any]:
        return self.tiny if self.torch is None else self.torch


def _amax(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    return x.amax(dim=() if dim is None else dim, keepdim=keepdim)


def _amin(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    return x.amin(dim=() if dim is None else dim, keepdim=keepdim)


UNARY_SHAPE = ((3, 4),)
ROWS = [
    # elementwise: x -> f(x), same shape (the fuzzer and the generated-shape tests take them all)
    Row("neg", lambda a: -a, None, UNARY_SHAPE, "elementwise", ops.Neg),
    Row("exp", lambda a: a.exp(), None, UNARY_SHAPE, "elementwise", ops.Exp),
    Row("log", lambda a: a.log(), None, UNARY_SHAPE, "elementwise", ops.Log, "positive"),
    Row("sqrt", lambda a: a.sqrt(), None, UNARY_SHAPE, "elementwise", ops.Sqrt, "positive"),
    Row("reciprocal", lambda a: a.reciprocal(), None, UNARY_SHAPE, "elementwise", ops.Reciprocal, "positive"),
    Row("tanh", lambda a: a.tanh(), None, UNARY_SHAPE, "elementwise", ops.Tanh),
    Row("sigmoid", lambda a: a.sigmoid(), None, UNARY_SHAPE, "elementwise", ops.Sigmoid),
    Row("relu", lambda a: a.relu(), None, UNARY_SHAPE, "elementwise", ops.Relu, "away_from_zero"),
    Row("abs", lambda a: a.abs(), None, UNARY_SHAPE, "elementwise", ops.Abs, "away_from_zero"),
    Row(
        "clip",
        lambda a: a.clip(-0.5, 0.7),
        lambda a: a.clamp(-0.5, 0.7),
        ((4, 5),),
        "elementwise",
        ops.Clip,
        "distinct",
    ),  # fmt: skip
    Row(
        "to",
        lambda a: a.to(np.float32).to(np.float64),
        lambda a: a.float().double(),
        UNARY_SHAPE,
        "elementwise",
        ops.Cast,
    ),  # fmt: skip
    # binary: two tensors broadcast together
    Row("add", lambda a, b: a + b, None, ((3, 4), (3, 4)), "binary", ops.Add),
    Row("sub", lambda a, b: a - b, None, ((3, 1), (2, 3, 4)), "binary", ops.Sub),
    Row("mul", lambda a, b: a * b, None, ((2, 3, 4), (3, 1)), "binary", ops.Mul),
    Row("div", lambda a, b: a / b, None, ((3, 4), (4,)), "binary", ops.Div, "positive"),
    Row("pow", lambda a: a**3, None, UNARY_SHAPE, "elementwise", ops.Pow),
    Row("pow_tensor", lambda a, b: a**b, None, ((3, 4), (4,)), "binary", ops.PowTensor, "positive"),
    Row("maximum", lambda a, b: a.maximum(b), None, ((3, 4), (4,)), "binary", ops.Maximum),
    Row("minimum", lambda a, b: a.minimum(b), None, ((3, 4), (3, 1)), "binary", ops.Minimum),
    # reductions: (x, dim=None, keepdim=False)
    Row(
        "sum",
        lambda a, dim=None, keepdim=False: a.sum(dim=dim, keepdim=keepdim),
        lambda a, dim=None, keepdim=False: a.sum(dim=dim, keepdim=keepdim),
        UNARY_SHAPE,
        "reduction",
        ops.Sum,
    ),  # fmt: skip
    Row(
        "mean",
        lambda a, dim=None, keepdim=False: a.mean(dim=dim, keepdim=keepdim),
        lambda a, dim=None, keepdim=False: a.mean(dim=dim, keepdim=keepdim),
        UNARY_SHAPE,
        "reduction",
        ops.Mean,
    ),  # fmt: skip
    Row(
        "max",
        lambda a, dim=None, keepdim=False: a.max(dim=dim, keepdim=keepdim),
        _amax,
        UNARY_SHAPE,
        "reduction",
        ops.Max,
        "distinct",
    ),  # fmt: skip
    Row(
        "min",
        lambda a, dim=None, keepdim=False: a.min(dim=dim, keepdim=keepdim),
        _amin,
        UNARY_SHAPE,
        "reduction",
        None,
        "distinct",
    ),  # fmt: skip
    Row(
        "var",
        lambda a, dim=None, keepdim=False: a.var(dim=dim, keepdim=keepdim),
        lambda a, dim=None, keepdim=False: a.var(dim=dim, keepdim=keepdim),
        UNARY_SHAPE,
        "reduction",
        None,
    ),  # fmt: skip
    # softmax along an axis
    Row("softmax", lambda a: a.softmax(-1), None, ((3, 5),), "softmax", ops.Softmax),
    Row("log_softmax", lambda a: a.log_softmax(1), None, ((2, 4, 3),), "softmax", ops.LogSoftmax),
    # products
    Row("matmul", lambda a, b: a @ b, None, ((3, 4), (4, 5)), "matmul", ops.MatMul),
    Row(
        "linear",
        lambda x, w, b: tg.linear(x, w, b),
        lambda x, w, b: torch().nn.functional.linear(x, w, b),
        ((3, 4), (5, 4), (5,)),
        "function",
        ops.Linear,
    ),  # fmt: skip
    Row(
        "addmm",
        lambda c, a, b: tg.addmm(c, a, b),
        lambda c, a, b: torch().addmm(c, a, b),
        ((3, 5), (3, 4), (4, 5)),
        "function",
        ops.Linear,
    ),  # fmt: skip
    Row(
        "addcmul",
        lambda c, a, b: tg.addcmul(c, a, b),
        lambda c, a, b: torch().addcmul(c, a, b),
        ((3, 4), (3, 4), (4,)),
        "function",
        ops.Addcmul,
    ),  # fmt: skip
    Row(
        "lerp",
        lambda s, e, w: tg.lerp(s, e, w),
        lambda s, e, w: torch().lerp(s, e, w),
        ((3, 4), (3, 4), (3, 4)),
        "function",
        ops.Lerp,
    ),  # fmt: skip
    Row(
        "where",
        lambda a, b: tg.where(np.array([True, False, True, True]), a, b),
        lambda a, b: torch().where(torch().tensor([True, False, True, True]), a, b),
        ((3, 4), (4,)),
        "function",
        ops.Where,
    ),  # fmt: skip
    # shape and indexing
    Row("reshape", lambda a: a.reshape(4, -1), None, ((2, 3, 4),), "shape", ops.Reshape),
    Row("flatten", lambda a: a.flatten(), None, ((2, 3),), "shape", ops.Reshape),
    Row("permute", lambda a: a.permute(2, 0, 1), None, ((2, 3, 4),), "shape", ops.Permute),
    Row("transpose", lambda a: a.transpose(0, 2), None, ((2, 3, 4),), "shape", ops.Permute),
    Row("squeeze", lambda a: a.squeeze(1), None, ((3, 1, 4),), "shape", ops.Reshape),
    Row("unsqueeze", lambda a: a.unsqueeze(-1), None, ((3, 4),), "shape", ops.Reshape),
    Row("contiguous", lambda a: a.T.contiguous(), None, ((3, 4),), "shape", ops.Contiguous),
    Row("getitem", lambda a: a[1:, ::2], None, ((3, 5),), "shape", ops.GetItem),
    Row("split", lambda a: a.split([1, 3, 2], 1), None, ((2, 6),), "shape", ops.Split),
    Row("chunk", lambda a: a.chunk(2, 1), None, ((3, 4),), "shape", ops.Split),
    Row("unbind", lambda a: a.unbind(1), None, ((2, 3, 4),), "shape", ops.Unbind),
    Row(
        "pad",
        lambda a: a.pad(((1, 0), (2, 3)), value=0.5),
        lambda a: torch().nn.functional.pad(a, (2, 3, 1, 0), value=0.5),
        ((2, 3),),
        "shape",
        ops.Pad,
    ),  # fmt: skip
    Row(
        "cat",
        lambda a, b: tg.cat([a, b, a], 1),
        lambda a, b: torch().cat([a, b, a], 1),
        ((2, 3), (2, 1)),
        "join",
        ops.Cat,
    ),  # fmt: skip
    Row(
        "stack",
        lambda a, b: tg.stack([a, b], 1),
        lambda a, b: torch().stack([a, b], 1),
        ((2, 3), (2, 3)),
        "join",
        ops.Stack,
    ),  # fmt: skip
]
BY_NAME = {row.name: row for row in ROWS}


def of_kind(*kinds: str) -> list[Row]:
    return [row for row in ROWS if row.kind in kinds]
