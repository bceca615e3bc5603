"""The one table of public ops the tests read: each op's call here and in torch, its inputs, its kind
and the op class it records.

Read by: test_ops (every row's gradient against finite differences and torch, float32 kept; the
unary, elementwise, softmax and reduction rows on generated shapes), test_functional (the
`functional` rows), the fuzzer (fuzz_programs.py: its unary and reduction steps are these rows),
the replay cells (test_replay.py: the unary rows defined everywhere), test_trust (unary, softmax
and reduction rows on 0-d and empty inputs), test_saved_values (every row's inputs and output changed
in place before backward). test_op_table checks that every public Tensor op, module function,
`nn.functional` function and op class in ops.py has a row, and that the fuzzer draws every row.
Adding an op is one row here.

Domains: `normal` any value, `positive` in [0.5, 2], `away_from_zero` |x| ≥ 0.2 (a kink at 0 is never
within eps), `distinct` well-separated values (no ties for max).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import ops
from tinygrad_rnn.nn import functional as F  # noqa: N812


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


def into_domain(domain: str, x: np.ndarray) -> np.ndarray:
    """A generated array (values in [-3, 3]) moved into a domain, keeping its shape."""
    if domain == "positive":
        return np.abs(x) + 0.5
    if domain == "away_from_zero":
        return np.where(x >= 0, x + 0.2, x - 0.2)
    if domain == "distinct":  # the same order, no near-ties under eps, no value at clip's bounds
        return np.argsort(np.argsort(x.ravel(), kind="stable")).reshape(x.shape) * 0.1 + 0.013
    return x


DOMAINS = {"normal": normal, "positive": positive, "away_from_zero": away_from_zero, "distinct": distinct}


def torch() -> Any:
    return __import__("torch")


def tf() -> Any:
    return torch().nn.functional


def tt(array: np.ndarray) -> Any:
    """A torch tensor of `array` (torch imported only when a torch test runs)."""
    return torch().from_numpy(np.array(array))


SAME = "same"  # the row's call works on torch tensors as written


class Row(NamedTuple):
    """One public op. `tiny` and `torch` take Tensors (a reduction also `dim`, `keepdim`); `shapes`
    are its inputs' shapes in the canonical case, each drawn from `domain`; `op` is the op class the
    call records last (None: a composition of other ops)."""

    name: str
    tiny: Callable[..., Any]
    torch: Callable[..., Any] | str | None  # SAME, or None: no torch counterpart
    shapes: tuple[tuple[int, ...], ...]
    kind: str  # see KINDS
    op: type | None
    domain: str = "normal"

    @property
    def inputs(self) -> list[Callable[[np.random.Generator], np.ndarray]]:
        return [DOMAINS[self.domain](*s) for s in self.shapes]

    @property
    def torch_call(self) -> Callable[..., Any] | None:
        return self.tiny if self.torch == SAME else self.torch  # type: ignore[return-value]


KINDS = {
    "unary": "x -> f(x), no option",
    "elementwise": "x -> f(x) with a constant option (clip bounds, an exponent)",
    "cast": "a dtype change",
    "binary": "two tensors broadcast together",
    "reduction": "(x, dim=None, keepdim=False) -> x reduced over dim",
    "softmax": "along one axis",
    "product": "matmul, linear, addmm",
    "function": "module functions of several tensors",
    "shape": "views, copies and pieces",
    "join": "cat, stack",
    "functional": "nn.functional: losses, embedding",
    "random": "draws from an rng",
    "comparison": "a boolean mask or indices, without a gradient (a recorded op: replay computes it afresh)",
}


def _amax(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    return x.amax(dim=() if dim is None else dim, keepdim=keepdim)


def _amin(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    return x.amin(dim=() if dim is None else dim, keepdim=keepdim)


def _max(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    return x.max(dim=dim, keepdim=keepdim)


def _min(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    return x.min(dim=dim, keepdim=keepdim)


def _logsumexp(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    return x.logsumexp(dim=dim, keepdim=keepdim)


def _torch_logsumexp(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    return torch().logsumexp(x, dim=tuple(range(x.ndim)) if dim is None else dim, keepdim=keepdim)


def _var(x: Any, dim: Any = None, keepdim: bool = False, correction: int = 1) -> Any:
    return x.var(dim=dim, keepdim=keepdim, correction=correction)


def _sum(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    return x.sum(dim=dim, keepdim=keepdim)


def _mean(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    return x.mean(dim=dim, keepdim=keepdim)


MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])
TARGETS = np.array([1, 0, 4, 2])  # classes of (4, 5) logits
PROBABILITIES = np.array([[0.0, 1.0, 0.3], [0.9, 0.5, 1.0]])  # targets of (2, 3) logits
IDS = np.array([[1, 3, 3, 0], [5, 1, 3, 2]])  # repeated ids, for a (6, 3) weight
X = ((3, 4),)

# fmt: off
ROWS = [
    Row("neg", lambda a: -a, SAME, X, "unary", ops.Neg),
    Row("exp", lambda a: a.exp(), SAME, X, "unary", ops.Exp),
    Row("log", lambda a: a.log(), SAME, X, "unary", ops.Log, "positive"),
    Row("sqrt", lambda a: a.sqrt(), SAME, X, "unary", ops.Sqrt, "positive"),
    Row("reciprocal", lambda a: a.reciprocal(), SAME, X, "unary", ops.Reciprocal, "positive"),
    Row("tanh", lambda a: a.tanh(), SAME, X, "unary", ops.Tanh),
    Row("sigmoid", lambda a: a.sigmoid(), SAME, X, "unary", ops.Sigmoid),
    Row("relu", lambda a: a.relu(), SAME, X, "unary", ops.Relu, "away_from_zero"),
    Row("abs", lambda a: a.abs(), SAME, X, "unary", ops.Abs, "away_from_zero"),
    Row("softplus", lambda a: a.softplus(), lambda a: tf().softplus(a), X, "unary", ops.Softplus),
    Row("clip", lambda a: a.clip(-0.5, 0.7), lambda a: a.clamp(-0.5, 0.7), ((4, 5),), "elementwise", ops.Clip,
        "distinct"),
    Row("pow", lambda a: a**3, SAME, X, "elementwise", ops.Pow),
    Row("to", lambda a: a.to(np.float32), lambda a: a.float(), X, "cast", ops.Cast),
    Row("add", lambda a, b: a + b, SAME, ((3, 4), (3, 4)), "binary", ops.Add),
    Row("sub", lambda a, b: a - b, SAME, ((3, 1), (2, 3, 4)), "binary", ops.Sub),
    Row("mul", lambda a, b: a * b, SAME, ((2, 3, 4), (3, 1)), "binary", ops.Mul),
    Row("div", lambda a, b: a / b, SAME, ((3, 4), (4,)), "binary", ops.Div, "positive"),
    Row("pow_tensor", lambda a, b: a**b, SAME, ((3, 4), (4,)), "binary", ops.PowTensor, "positive"),
    Row("maximum", lambda a, b: a.maximum(b), SAME, ((3, 4), (4,)), "binary", ops.Maximum),
    Row("minimum", lambda a, b: a.minimum(b), SAME, ((3, 4), (3, 1)), "binary", ops.Minimum),
    Row("sum", _sum, SAME, X, "reduction", ops.Sum),
    Row("mean", _mean, SAME, X, "reduction", ops.Mean),
    Row("max", _max, _amax, X, "reduction", ops.Max, "distinct"),
    Row("min", _min, _amin, X, "reduction", None, "distinct"),
    Row("var", _var, SAME, X, "reduction", None),
    Row("logsumexp", _logsumexp, _torch_logsumexp, X, "reduction", ops.LogSumExp),
    Row("softmax", lambda a: a.softmax(-1), SAME, ((3, 5),), "softmax", ops.Softmax),
    Row("log_softmax", lambda a: a.log_softmax(-1), SAME, ((2, 4, 3),), "softmax", ops.LogSoftmax),
    Row("matmul", lambda a, b: a @ b, SAME, ((3, 4), (4, 5)), "product", ops.MatMul),
    Row("linear", lambda x, w, b: tg.linear(x, w, b), lambda x, w, b: tf().linear(x, w, b),
        ((3, 4), (5, 4), (5,)), "product", ops.Linear),
    Row("addmm", lambda c, a, b: tg.addmm(c, a, b), lambda c, a, b: torch().addmm(c, a, b),
        ((3, 5), (3, 4), (4, 5)), "product", ops.Linear),
    Row("addcmul", lambda c, a, b: tg.addcmul(c, a, b), lambda c, a, b: torch().addcmul(c, a, b),
        ((3, 4), (3, 4), (4,)), "function", ops.Addcmul),
    Row("lerp", lambda s, e, w: tg.lerp(s, e, w), lambda s, e, w: torch().lerp(s, e, w),
        ((3, 4), (3, 4), (3, 4)), "function", ops.Lerp),
    Row("where", lambda a, b: tg.where(MASK, a, b), lambda a, b: torch().where(tt(MASK), a, b),
        ((3, 4), (4,)), "function", ops.Where),
    Row("reshape", lambda a: a.reshape(4, -1), SAME, ((2, 3, 4),), "shape", ops.Reshape),
    Row("flatten", lambda a: a.flatten(), SAME, ((2, 3),), "shape", ops.Reshape),
    Row("permute", lambda a: a.permute(2, 0, 1), SAME, ((2, 3, 4),), "shape", ops.Permute),
    Row("transpose", lambda a: a.transpose(0, 2), SAME, ((2, 3, 4),), "shape", ops.Permute),
    Row("squeeze", lambda a: a.squeeze(1), SAME, ((3, 1, 4),), "shape", ops.Reshape),
    Row("unsqueeze", lambda a: a.unsqueeze(-1), SAME, X, "shape", ops.Reshape),
    Row("contiguous", lambda a: a.T.contiguous(), SAME, X, "shape", ops.Contiguous),
    Row("getitem", lambda a: a[1:, ::2], SAME, ((3, 5),), "shape", ops.GetItem),
    Row("split", lambda a: a.split([1, 3, 2], 1), SAME, ((2, 6),), "shape", ops.Split),
    Row("chunk", lambda a: a.chunk(2, 1), SAME, X, "shape", ops.Split),
    Row("unbind", lambda a: a.unbind(1), SAME, ((2, 3, 4),), "shape", ops.Unbind),
    Row("pad", lambda a: a.pad(((1, 0), (2, 3)), value=0.5), lambda a: tf().pad(a, (2, 3, 1, 0), value=0.5),
        ((2, 3),), "shape", ops.Pad),
    Row("cat", lambda a, b: tg.cat([a, b, a], 1), lambda a, b: torch().cat([a, b, a], 1),
        ((2, 3), (2, 1)), "join", ops.Cat),
    Row("stack", lambda a, b: tg.stack([a, b], 1), lambda a, b: torch().stack([a, b], 1),
        ((2, 3), (2, 3)), "join", ops.Stack),
    Row("cross_entropy", lambda x: F.cross_entropy(x, TARGETS), lambda x: tf().cross_entropy(x, tt(TARGETS)),
        ((4, 5),), "functional", None),
    Row("nll_loss", lambda x: F.nll_loss(x.log_softmax(1), TARGETS),
        lambda x: tf().nll_loss(x.log_softmax(1), tt(TARGETS)), ((4, 5),), "functional", None),
    Row("mse_loss", lambda x, y: F.mse_loss(x, y), lambda x, y: tf().mse_loss(x, y), ((2, 3), (2, 3)),
        "functional", None),
    Row("binary_cross_entropy_with_logits", lambda x: F.binary_cross_entropy_with_logits(x, PROBABILITIES),
        lambda x: tf().binary_cross_entropy_with_logits(x, tt(PROBABILITIES)), ((2, 3),), "functional", None),
    Row("embedding", lambda w: F.embedding(IDS, w), lambda w: tf().embedding(tt(IDS), w), ((6, 3),),
        "functional", ops.GetItem),
    Row("dropout", lambda x: F.dropout(x, 0.3, rng=np.random.default_rng(0)), None, ((4, 5),), "random",
        None),
    Row("lt", lambda a, b: a < b, SAME, ((3, 4), (4,)), "comparison", ops.Compare),
    Row("le", lambda a, b: a <= b, SAME, ((3, 4), (4,)), "comparison", ops.Compare),
    Row("gt", lambda a, b: a > b, SAME, ((3, 4), (4,)), "comparison", ops.Compare),
    Row("ge", lambda a, b: a >= b, SAME, ((3, 4), (4,)), "comparison", ops.Compare),
    Row("eq", lambda a, b: a == b[:1], SAME, ((3, 4), (1, 4)), "comparison", ops.Compare),
    Row("ne", lambda a, b: a != b[:1], SAME, ((3, 4), (1, 4)), "comparison", ops.Compare),
    Row("argmax", lambda a: a.argmax(1), SAME, X, "comparison", ops.ArgMax, "distinct"),
]
# fmt: on
BY_NAME = {row.name: row for row in ROWS}


def of_kind(*kinds: str) -> list[Row]:
    return [row for row in ROWS if row.kind in kinds]
