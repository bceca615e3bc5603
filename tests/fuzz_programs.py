"""Random programs for the fuzzer (tests/test_fuzz.py): DAGs over the public ops, run here and in torch.

A `Program` is a list of `Step`s over numbered values: leaves (float64 inputs that require grad,
among them the weights of recurrent cells), buffers (the caller's own numpy arrays: indices, masks,
class targets, conditions) and op results. It is built by `programs()`, a hypothesis strategy that
evaluates every step in torch as it goes, so that each op sees valid shapes and domains (log and sqrt
of positive values, divisors away from 0, finite values). `run(program, lib)` executes it with one
library's adapter (`TINY` or `TORCH`): forward, then — to check that nothing the graph keeps can be
changed under it — the buffers are refilled and the detached values overwritten, then
loss = Σ (out ⊙ G) goes backward. `repr(program)` is a short Python-like reproduction.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from op_table import BY_NAME, Row, of_kind

import tinygrad_rnn as tg
from tinygrad_rnn.compile import CompiledReplayer, StepCache
from tinygrad_rnn.nn.recurrent.purity import declared_pure, python_state

F64 = np.float64
LIMIT = 1e6  # values beyond this are rejected (no overflow, no catastrophic loss of precision)


# --- the program -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Buf:
    """A reference to buffer k (an index array, a mask, targets) inside a step's arguments."""

    k: int

    def __repr__(self) -> str:
        return f"b{self.k}"


@dataclass
class Step:
    op: str
    inputs: tuple[int, ...]
    args: tuple[Any, ...]
    outputs: tuple[int, ...]


@dataclass
class Cell:
    kind: str  # RNNCell, LSTMCell, GRUCell, or one of IMPURE
    input_size: int
    hidden_size: int
    bias: bool
    nonlinearity: str
    params: tuple[int, ...]  # leaf ids of weight_ih, weight_hh[, bias_ih, bias_hh]


# Cells declared pure whose steps are not all pure: the fast path must notice (purity.py) or, for a
# mask from a comparison, replay it right. Their step: a = x W_ihᵀ + h W_hhᵀ + b_ih, then
IMPURE = {
    "ThresholdCell": "a = where(a > 0.25, a / 2, a)",  # a comparison: a recorded op, replayed afresh
    "CounterCell": "every 2nd step a = a / 2",  # a Python counter on the cell
    "CoinCell": "a = a · (1 or ½, a coin from the cell's own generator)",  # equal coins in a row are common
}


def impure_step(cell: Any, x: Any, h: Any, where: Callable[..., Any]) -> Any:
    """h' = tanh(a) for one of IMPURE, in either library; `cell` holds its weights and Python state."""
    a = x @ cell.weight_ih.T + cell.bias_ih
    if h is not None:
        a = a + h @ cell.weight_hh.T
    if cell.kind == "ThresholdCell":
        a = where(a > 0.25, a * 0.5, a)
    elif cell.kind == "CounterCell":
        cell.t += 1
        a = a * 0.5 if cell.t % 2 == 0 else a
    else:
        a = a * (1.0 if cell.draws.random() < 0.5 else 0.5)
    return a.tanh()


class Program:
    """Leaves, buffers and cells, the steps over them, the outputs with their seeds G, and the changes
    made after forward. A plain class, so that hypothesis prints a failing program by its __repr__."""

    def __init__(self) -> None:
        self.leaves: dict[int, np.ndarray] = {}
        self.buffers: list[np.ndarray] = []
        self.refills: list[np.ndarray] = []  # what each buffer holds after forward
        self.cells: list[Cell] = []
        self.steps: list[Step] = []
        self.outputs: list[int] = []
        self.seeds: list[np.ndarray] = []  # G for each output
        self.writes: list[int] = []  # detached values overwritten after forward

    def __repr__(self) -> str:
        lines = [""]
        cell_params = {i for c in self.cells for i in c.params}
        for i, a in self.leaves.items():
            if i not in cell_params:
                lines.append(f"v{i} = leaf({a.shape})")
        for k, b in enumerate(self.buffers):
            lines.append(f"b{k} = np.array({b.tolist()!r}, dtype={b.dtype})")
        for k, c in enumerate(self.cells):
            extra = "" if c.bias else ", bias=False"
            extra += "" if c.kind != "RNNCell" or c.nonlinearity == "tanh" else ", nonlinearity='relu'"
            names = ", ".join(f"v{i}" for i in c.params)
            how = f"; {IMPURE[c.kind]}" if c.kind in IMPURE else ""
            lines.append(
                f"cell{k} = nn.{c.kind}({c.input_size}, {c.hidden_size}{extra})  # params {names}{how}"
            )
        for s in self.steps:
            outs = ", ".join(f"v{i}" for i in s.outputs)
            lines.append(f"{outs} = {OPS[s.op].show(s)}")
        lines.append(f"loss = Σ (out ⊙ G) over {', '.join(f'v{i}' for i in self.outputs)}")
        for k, b in enumerate(self.refills):
            lines.append(f"# after forward: b{k}[...] = {b.tolist()!r}")
        for i in self.writes:
            lines.append(f"# after forward: v{i}[...] = 0.5 (a detached value)")
        lines.append("loss.backward()")
        return "\n    ".join(lines)


# --- the two libraries -------------------------------------------------------------------------------


def _resolve(item: Any, bufs: list[Any]) -> Any:
    if isinstance(item, tuple):
        return tuple(_resolve(i, bufs) for i in item)
    return bufs[item.k] if isinstance(item, Buf) else item


class TinyImpureCell(tg.nn.Module):
    pure = True  # declared, as a researcher would: the guards must catch the counter and the coin

    def __init__(self, c: Cell) -> None:
        super().__init__()
        self.kind, self.t, self.draws = c.kind, 0, np.random.default_rng(7)
        h, d = c.hidden_size, c.input_size
        self.weight_ih = tg.nn.Parameter(np.zeros((h, d)))
        self.weight_hh = tg.nn.Parameter(np.zeros((h, h)))
        self.bias_ih = tg.nn.Parameter(np.zeros(h))

    def forward(self, x: Any, h: Any = None) -> Any:
        return impure_step(self, x, h, tg.where)


class TorchImpureCell(torch.nn.Module):
    def __init__(self, c: Cell) -> None:
        super().__init__()
        self.kind, self.t, self.draws = c.kind, 0, np.random.default_rng(7)
        h, d = c.hidden_size, c.input_size
        self.weight_ih = torch.nn.Parameter(torch.zeros(h, d, dtype=torch.float64))
        self.weight_hh = torch.nn.Parameter(torch.zeros(h, h, dtype=torch.float64))
        self.bias_ih = torch.nn.Parameter(torch.zeros(h, dtype=torch.float64))

    def forward(self, x: Any, h: Any = None) -> Any:
        return impure_step(self, x, h, torch.where)


class Tiny:
    """tinygrad_rnn: buffers are the caller's own arrays, refilled after the forward pass."""

    name = "tinygrad_rnn"
    F = tg.nn.functional
    cat, stack, where = staticmethod(tg.cat), staticmethod(tg.stack), staticmethod(tg.where)
    addmm, addcmul, lerp = staticmethod(tg.addmm), staticmethod(tg.addcmul), staticmethod(tg.lerp)

    @staticmethod
    def call(row: Row, *args: Any) -> Any:
        return row.tiny(*args)

    @staticmethod
    def pad(x: Any, widths: tuple[tuple[int, int], ...], value: float) -> Any:
        return x.pad(widths, value=value)

    @staticmethod
    def leaf(a: np.ndarray) -> Any:
        return tg.Tensor(a.copy(), requires_grad=True, dtype=F64)

    @staticmethod
    def buffer(a: np.ndarray) -> Any:
        return a

    @staticmethod
    def refill(buf: Any, values: np.ndarray) -> None:
        buf[...] = values

    @staticmethod
    def const(a: np.ndarray) -> Any:
        return a

    @staticmethod
    def maximum(x: Any, y: Any) -> Any:
        return x.maximum(y)

    @staticmethod
    def minimum(x: Any, y: Any) -> Any:
        return x.minimum(y)

    @staticmethod
    def linear(x: Any, w: Any, b: Any) -> Any:
        return tg.nn.functional.linear(x, w, b)

    @staticmethod
    def cell(c: Cell, params: list[np.ndarray]) -> tuple[Any, list[Any]]:
        if c.kind in IMPURE:
            module = TinyImpureCell(c)
            tensors = [module.weight_ih, module.weight_hh, module.bias_ih]
            for t, a in zip(tensors, params, strict=True):
                t.data[...] = a
            return module, tensors
        kind = getattr(tg.nn, c.kind)
        extra = {"nonlinearity": c.nonlinearity} if c.kind == "RNNCell" else {}
        module = kind(c.input_size, c.hidden_size, bias=c.bias, dtype=F64, **extra)
        tensors = [
            getattr(module, n) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")[: len(params)]
        ]
        for t, a in zip(tensors, params, strict=True):
            t.data[...] = a
        return module, tensors

    @staticmethod
    def scan(module: Any, x: Any, hx: Any) -> Any:
        """The cell over x's first axis as a layer runs it with default settings: through the fast path
        (compiled, tinygrad_rnn/compile) with its guards when the cell is declared pure (all are here)."""
        assert declared_pure(module, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            replayer = CompiledReplayer(module, StepCache(), lambda: python_state([module]))
            xs, outputs = x.unbind(0), []
            for t, x_t in enumerate(xs):  # as a layer: once a step runs compiled, the rest as one node
                states = None if hx is None else replayer.rest(list(xs[t:]), hx, [None] * (len(xs) - t))
                states = states or [replayer(x_t, hx)]
                outputs += [s[0] if isinstance(s, tuple) else s for s in states]
                hx = states[-1]
                if len(states) > 1 or t == len(xs) - 1:
                    break
            return tg.stack(outputs)

    @staticmethod
    def grad(t: Any) -> np.ndarray | None:
        return None if t.grad is None else np.array(t.grad.data)

    @staticmethod
    def value(t: Any) -> np.ndarray:
        return np.array(t.data)

    @staticmethod
    def requires_grad(t: Any) -> bool:
        return t.requires_grad


class Torch:
    """PyTorch, float64: buffers are copied at the start, so backward sees their original values."""

    name = "torch"
    F = torch.nn.functional
    cat, stack = staticmethod(torch.cat), staticmethod(torch.stack)
    addmm, addcmul, lerp = staticmethod(torch.addmm), staticmethod(torch.addcmul), staticmethod(torch.lerp)

    @staticmethod
    def call(row: Row, *args: Any) -> Any:
        return row.torch_call(*args)

    @staticmethod
    def pad(x: Any, widths: tuple[tuple[int, int], ...], value: float) -> Any:
        return torch.nn.functional.pad(x, [n for pair in reversed(widths) for n in pair], value=value)

    @staticmethod
    def leaf(a: np.ndarray) -> Any:
        return torch.tensor(a, dtype=torch.float64, requires_grad=True)

    @staticmethod
    def buffer(a: np.ndarray) -> Any:
        return torch.from_numpy(a.copy())

    @staticmethod
    def refill(buf: Any, values: np.ndarray) -> None:
        """Torch's copy of the buffer keeps its values: the reference is the program as written."""

    @staticmethod
    def const(a: np.ndarray) -> Any:
        return torch.from_numpy(np.asarray(a, dtype=F64).copy())

    @staticmethod
    def where(cond: Any, a: Any, b: Any) -> Any:
        if not isinstance(b, torch.Tensor):
            b = torch.tensor(b, dtype=torch.float64)
        return torch.where(cond, a, b)

    @staticmethod
    def maximum(x: Any, y: Any) -> Any:
        return torch.maximum(x, y if isinstance(y, torch.Tensor) else torch.tensor(y, dtype=torch.float64))

    @staticmethod
    def minimum(x: Any, y: Any) -> Any:
        return torch.minimum(x, y if isinstance(y, torch.Tensor) else torch.tensor(y, dtype=torch.float64))

    @staticmethod
    def linear(x: Any, w: Any, b: Any) -> Any:
        return torch.nn.functional.linear(x, w, b)

    @staticmethod
    def cell(c: Cell, params: list[np.ndarray]) -> tuple[Any, list[Any]]:
        if c.kind in IMPURE:
            module = TorchImpureCell(c)
            tensors = [module.weight_ih, module.weight_hh, module.bias_ih]
            with torch.no_grad():
                for t, a in zip(tensors, params, strict=True):
                    t.copy_(torch.from_numpy(a))
            return module, tensors
        kind = getattr(torch.nn, c.kind)
        extra = {"nonlinearity": c.nonlinearity} if c.kind == "RNNCell" else {}
        module = kind(c.input_size, c.hidden_size, bias=c.bias, dtype=torch.float64, **extra)
        tensors = [
            getattr(module, n) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")[: len(params)]
        ]
        with torch.no_grad():
            for t, a in zip(tensors, params, strict=True):
                t.copy_(torch.from_numpy(a))
        return module, tensors

    @staticmethod
    def scan(module: Any, x: Any, hx: Any) -> Any:
        """The cell over x's first axis, step by step."""
        return _loop(module, x, hx, torch.stack)

    @staticmethod
    def grad(t: Any) -> np.ndarray | None:
        return None if t.grad is None else t.grad.numpy().copy()

    @staticmethod
    def value(t: Any) -> np.ndarray:
        return t.detach().numpy().copy()

    @staticmethod
    def requires_grad(t: Any) -> bool:
        return t.requires_grad


TINY, TORCH = Tiny(), Torch()


# --- the ops -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """fn(lib, buffers, *inputs, *args) -> a value or a tuple of them. `fmt` shows a step: a format
    string ({0}, {1}, ...: the inputs, then the arguments) or a function of the step."""

    fn: Callable[..., Any]
    fmt: str | Callable[[Step], str]

    def show(self, s: Step) -> str:
        if callable(self.fmt):
            return self.fmt(s)
        return self.fmt.format(*[f"v{i}" for i in s.inputs], *[_show_arg(a) for a in s.args])


def _show_arg(a: Any) -> str:
    if (
        isinstance(a, tuple)
        and a
        and any(isinstance(i, Buf | slice) or i is None or i is Ellipsis for i in a)
    ):
        return ", ".join(_show_index(i) for i in a)
    return repr(a)


def _show_index(i: Any) -> str:
    if isinstance(i, slice):
        parts = ["" if p is None else str(p) for p in (i.start, i.stop, i.step)]
        return ":".join(parts[:2] if i.step is None else parts)
    return "..." if i is Ellipsis else repr(i)


def _show_joined(name: str) -> Callable[[Step], str]:
    return lambda s: f"{name}([{', '.join(f'v{i}' for i in s.inputs)}], dim={s.args[0]})"


def _show_cell(s: Step) -> str:
    state = ", ".join(f"v{i}" for i in s.inputs[1:])
    hx = "None" if not state else (state if len(s.inputs) == 2 else f"({state})")
    return f"cell{s.args[0]}(v{s.inputs[0]}, {hx})"


def _cell_step(L: Any, B: Any, x: Any, *rest: Any) -> Any:
    *state, module = rest
    hx = None if not state else (state[0] if len(state) == 1 else tuple(state))
    return module(x, hx)


def _loop(step: Callable[[Any, Any], Any], x: Any, hx: Any, stack: Callable[[list[Any]], Any]) -> Any:
    """step(x_t, hx) over x's first axis; the stacked h of every step (h is a state's first part)."""
    outputs = []
    for x_t in x.unbind(0):
        hx = step(x_t, hx)
        outputs.append(hx[0] if isinstance(hx, tuple) else hx)
    return stack(outputs)


def _show_scan(s: Step) -> str:
    return "scan(" + _show_cell(s) + ")  # the cell over the first axis; replayed from step 3 on"


def _scan(L: Any, B: Any, x: Any, *rest: Any) -> Any:
    *state, module = rest
    return L.scan(module, x, None if not state else (state[0] if len(state) == 1 else tuple(state)))


def _row(row: Row, fmt: str) -> Op:
    """A step calling an op table row, through each library's own call."""
    return Op(lambda L, B, *args: L.call(row, *args), fmt)


UNARY = tuple(row.name for row in of_kind("unary"))
REDUCTIONS = tuple(row.name for row in of_kind("reduction"))
OPS: dict[str, Op] = {
    **{row.name: _row(row, f"{{0}}.{row.name}()") for row in of_kind("unary")},
    **{
        row.name: _row(
            row,
            f"{{0}}.{row.name}(dim={{1}}, keepdim={{2}}"
            + (", correction={3})" if row.name == "var" else ")"),
        )
        for row in of_kind("reduction")
    },
    "detach": Op(lambda L, B, x: x.detach(), "{0}.detach()"),
    "add": Op(lambda L, B, x, y: x + y, "{0} + {1}"),
    "sub": Op(lambda L, B, x, y: x - y, "{0} - {1}"),
    "mul": Op(lambda L, B, x, y: x * y, "{0} * {1}"),
    "div": Op(lambda L, B, x, y: x / y, "{0} / {1}"),
    "add_scalar": Op(lambda L, B, x, c: x + c, "{0} + {1}"),
    "rsub_scalar": Op(lambda L, B, x, c: c - x, "{1} - {0}"),
    "mul_scalar": Op(lambda L, B, x, c: c * x, "{1} * {0}"),
    "rdiv_scalar": Op(lambda L, B, x, c: c / x, "{1} / {0}"),
    "pow": Op(lambda L, B, x, p: x**p, "{0} ** {1}"),
    "pow_tensor": Op(lambda L, B, x, y: x**y, "{0} ** {1}"),
    "clip": Op(lambda L, B, x, lo, hi: x.clip(lo, hi), "{0}.clip({1}, {2})"),
    "maximum": Op(lambda L, B, x, y: L.maximum(x, y), "{0}.maximum({1})"),
    "minimum": Op(lambda L, B, x, y: L.minimum(x, y), "{0}.minimum({1})"),
    "maximum_scalar": Op(lambda L, B, x, c: L.maximum(x, c), "{0}.maximum({1})"),
    "minimum_scalar": Op(lambda L, B, x, c: L.minimum(x, c), "{0}.minimum({1})"),
    "matmul": Op(lambda L, B, x, y: x @ y, "{0} @ {1}"),
    "linear": Op(lambda L, B, x, w, b: L.linear(x, w, b), "F.linear({0}, {1}, {2})"),
    "linear_nobias": Op(lambda L, B, x, w: L.linear(x, w, None), "F.linear({0}, {1})"),
    "addmm": Op(lambda L, B, c, a, b: L.addmm(c, a, b), "addmm({0}, {1}, {2})"),
    "addcmul": Op(lambda L, B, c, a, b: L.addcmul(c, a, b), "addcmul({0}, {1}, {2})"),
    "lerp": Op(lambda L, B, a, b, w: L.lerp(a, b, w), "lerp({0}, {1}, {2})"),
    "lerp_scalar": Op(lambda L, B, a, b, w: L.lerp(a, b, w), "lerp({0}, {1}, {2})"),
    "getitem": Op(lambda L, B, x, index: x[_resolve(index, B)], "{0}[{1}]"),
    "reshape": Op(lambda L, B, x, shape: x.reshape(shape), "{0}.reshape({1})"),
    "permute": Op(lambda L, B, x, axes: x.permute(axes), "{0}.permute({1})"),
    "transpose": Op(lambda L, B, x, a, b: x.transpose(a, b), "{0}.transpose({1}, {2})"),
    "squeeze": Op(lambda L, B, x, d: x.squeeze() if d is None else x.squeeze(d), "{0}.squeeze({1})"),
    "unsqueeze": Op(lambda L, B, x, d: x.unsqueeze(d), "{0}.unsqueeze({1})"),
    "flatten": Op(lambda L, B, x: x.flatten(), "{0}.flatten()"),
    "contiguous": Op(lambda L, B, x: x.contiguous(), "{0}.contiguous()"),
    "pad": Op(lambda L, B, x, w, v: L.pad(x, w, v), "{0}.pad({1}, value={2})"),
    "embedding": Op(lambda L, B, w, ids: L.F.embedding(B[ids.k], w), "F.embedding({1}, {0})"),
    "cat": Op(lambda L, B, *a: L.cat(list(a[:-1]), dim=a[-1]), _show_joined("cat")),
    "stack": Op(lambda L, B, *a: L.stack(list(a[:-1]), dim=a[-1]), _show_joined("stack")),
    "split": Op(lambda L, B, x, s, d: tuple(x.split(s, dim=d)), "{0}.split({1}, dim={2})"),
    "chunk": Op(lambda L, B, x, n, d: tuple(x.chunk(n, dim=d)), "{0}.chunk({1}, dim={2})"),
    "unbind": Op(lambda L, B, x, d: tuple(x.unbind(dim=d)), "{0}.unbind(dim={1})"),
    "where": Op(lambda L, B, a, b, cond: L.where(B[cond.k], a, b), "where({2}, {0}, {1})"),
    "where_scalar": Op(lambda L, B, a, cond, c: L.where(B[cond.k], a, c), "where({1}, {0}, {2})"),
    "where_gt": Op(lambda L, B, x, a, b, c: L.where(x > c, a, b), "where({0} > {3}, {1}, {2})"),
    "where_eq": Op(lambda L, B, x, a, b, c: L.where(x == c, a, b), "where({0} == {3}, {1}, {2})"),
    "softmax": Op(lambda L, B, x, d: x.softmax(dim=d), "{0}.softmax(dim={1})"),
    "log_softmax": Op(lambda L, B, x, d: x.log_softmax(dim=d), "{0}.log_softmax(dim={1})"),
    "cross_entropy": Op(
        lambda L, B, x, t, r, s: L.F.cross_entropy(x, B[t.k], reduction=r, label_smoothing=s),
        "F.cross_entropy({0}, {1}, reduction={2!s}, label_smoothing={3})",
    ),
    "nll_loss": Op(
        lambda L, B, x, t, r: L.F.nll_loss(x, B[t.k], reduction=r), "F.nll_loss({0}, {1}, reduction={2})"
    ),
    "mse_loss": Op(
        lambda L, B, x, y, r: L.F.mse_loss(x, y, reduction=r), "F.mse_loss({0}, {1}, reduction={2})"
    ),
    "mse_loss_buffer": Op(
        lambda L, B, x, t, r: L.F.mse_loss(x, B[t.k], reduction=r), "F.mse_loss({0}, {1}, reduction={2})"
    ),
    "binary_cross_entropy_with_logits": Op(
        lambda L, B, x, t, r, p: L.F.binary_cross_entropy_with_logits(
            x, B[t.k], reduction=r, pos_weight=None if p is None else B[p.k]
        ),
        "F.binary_cross_entropy_with_logits({0}, {1}, reduction={2}, pos_weight={3})",
    ),
    "cell": Op(_cell_step, _show_cell),
    "scan": Op(_scan, _show_scan),
}


# --- running a program -------------------------------------------------------------------------------


@dataclass
class Outcome:
    values: dict[int, np.ndarray]  # the outputs after the forward pass
    grads: dict[int, np.ndarray | None]  # every leaf's gradient
    error: RuntimeError | None  # what backward raised (None: it ran)


def _execute(L: Any, bufs: list[Any], env: dict[int, Any], modules: list[Any], s: Step) -> tuple[Any, ...]:
    args = (modules[s.args[0]],) if s.op in ("cell", "scan") else s.args
    out = OPS[s.op].fn(L, bufs, *[env[i] for i in s.inputs], *args)
    return out if isinstance(out, tuple) else (out,)


def run(program: Program, L: Any, refill: bool = True, write: bool = True) -> Outcome:
    """Forward, loss = Σ (out ⊙ G), then refill the buffers and overwrite the detached values the
    program lists (each if asked), then backward. A RuntimeError from backward is returned, not raised."""
    env: dict[int, Any] = {}
    modules = []
    for c in program.cells:
        module, tensors = L.cell(c, [program.leaves[i] for i in c.params])
        modules.append(module)
        env.update(zip(c.params, tensors, strict=True))
    for i, a in program.leaves.items():
        env.setdefault(i, L.leaf(a))
    leaves = {i: env[i] for i in program.leaves}
    bufs = [L.buffer(b.copy()) for b in program.buffers]
    for s in program.steps:
        env.update(zip(s.outputs, _execute(L, bufs, env, modules, s), strict=True))
    values = {i: L.value(env[i]) for i in program.outputs}
    loss = None
    for i, g in zip(program.outputs, program.seeds, strict=True):
        term = (env[i] * L.const(g)).sum()
        loss = term if loss is None else loss + term
    for buf, new in zip(bufs, program.refills if refill else [], strict=False):
        L.refill(buf, new)
    for i in program.writes if write else []:
        env[i][...] = 0.5
    error = None
    if loss is not None and L.requires_grad(loss):
        try:
            loss.backward()
        except RuntimeError as e:
            error = e
    return Outcome(values, {i: L.grad(t) for i, t in leaves.items()}, error)


# --- generating a program ----------------------------------------------------------------------------


class Invalid(Exception):
    """The step drawn is not valid here (torch refuses it, or its values leave the safe range)."""


SIZES = (2, 3, 1, 4, 0, 2, 3)  # dimension sizes drawn; 0 about one time in seven
EXPONENTS = (2, 3, 0, 1, -1, 0.5, 1.5, -2, 2.5)
CLIPS = ((-0.5, 0.5), (None, 0.3), (0.0, None), (-1.0, 1.0))
SCALARS = (0.5, -1.5, 2.0, 0.0)


@functools.cache
def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)  # made once: building a strategy costs more than drawing from it


def _broadcast(*shapes: Any) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError as e:
        raise Invalid from e


class Builder:
    """Draws a program step by step, evaluating each step in torch to keep shapes and domains valid."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw
        self.rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        self.p = Program()
        self.vals: dict[int, torch.Tensor] = {}  # torch values of every value id, as generated
        self.bufs: list[torch.Tensor] = []
        self.modules: list[Any] = []
        self.next_id = 0

    # draws
    def choice(self, options: Any) -> Any:
        return options[self.integer(0, len(options) - 1)]  # shrinks towards the first option

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(_integers(lo, hi))

    def coin(self) -> bool:
        return self.draw(_integers(0, 1)) == 1

    def shape(self, max_ndim: int = 3) -> tuple[int, ...]:
        return tuple(self.choice(SIZES) for _ in range(self.integer(0, max_ndim)))

    # values
    def leaf(self, shape: tuple[int, ...], values: np.ndarray | None = None) -> int:
        i = self.next_id
        self.next_id += 1
        a = self.rng.standard_normal(shape) if values is None else values
        self.p.leaves[i] = a
        self.vals[i] = TORCH.leaf(a)
        return i

    def buffer(self, a: np.ndarray, refill: np.ndarray) -> Buf:
        a = np.asarray(a)
        self.p.buffers.append(a)
        self.p.refills.append(np.asarray(refill, dtype=a.dtype))
        self.bufs.append(TORCH.buffer(a))
        return Buf(len(self.p.buffers) - 1)

    def pick(self, pred: Callable[[torch.Tensor], bool] = lambda t: True) -> int:
        """A value already made (reuse), preferring 0-d ones sometimes; raises Invalid if none fits."""
        ids = [i for i, t in self.vals.items() if pred(t)]
        if not ids:
            raise Invalid
        scalars = [i for i in ids if self.vals[i].ndim == 0]
        if scalars and self.integer(0, 3) == 0:
            return self.choice(scalars)
        return ids[-1 - self.integer(0, len(ids) - 1)]  # recent values first

    def partner(self, shape: tuple[int, ...]) -> int:
        """A value broadcasting with `shape`: of that shape, 0-d, a smaller shape or a larger one."""
        mode = self.integer(0, 3)
        if mode == 0:
            target = shape
        elif mode == 1:
            target = ()
        elif mode == 2:
            drop = self.integer(0, len(shape))
            target = tuple(1 if self.coin() else n for n in shape[drop:])
        else:
            target = (self.choice(SIZES),) + tuple(1 if self.coin() else n for n in shape)
        reuse = [i for i, t in self.vals.items() if tuple(t.shape) == target]
        if reuse and self.coin():
            return self.choice(reuse)
        return self.leaf(target)

    def emit(self, op: str, inputs: tuple[int, ...], args: tuple[Any, ...] = ()) -> tuple[int, ...]:
        step = Step(op, inputs, args, ())
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch warns about var with no degrees of freedom
                outs = _execute(TORCH, self.bufs, self.vals, self.modules, step)
        except (RuntimeError, ValueError, IndexError, TypeError) as e:
            raise Invalid from e
        for t in outs:
            if t.dtype != torch.float64 or (t.numel() and not bool((t.abs() <= LIMIT).all())):
                raise Invalid  # (a NaN fails the comparison too)
        ids = tuple(range(self.next_id, self.next_id + len(outs)))
        self.next_id += len(outs)
        self.vals.update(zip(ids, outs, strict=True))
        self.p.steps.append(Step(op, inputs, args, ids))
        return ids

    def positive(self, i: int) -> int:
        """i itself if all its values are > 0.05, else i * i + 0.5."""
        if bool((self.vals[i] > 0.05).all()):
            return i
        (sq,) = self.emit("mul", (i, i))
        return self.emit("add_scalar", (sq,), (0.5,))[0]

    def away_from_zero(self, i: int) -> int:
        return i if bool((self.vals[i].abs() > 0.1).all()) else self.positive(i)

    def mark(self) -> tuple[int, ...]:
        return self.next_id, len(self.p.buffers), len(self.p.cells), len(self.p.steps)

    def restore(self, mark: tuple[int, ...]) -> None:
        """Forget what a step that turned out invalid had added."""
        self.next_id, nb, nc, ns = mark
        for d in (self.p.leaves, self.vals):
            for i in [i for i in d if i >= self.next_id]:
                del d[i]
        del self.p.buffers[nb:], self.p.refills[nb:], self.bufs[nb:]
        del self.p.cells[nc:], self.modules[nc:], self.p.steps[ns:]

    # one family of ops each
    def unary(self) -> None:
        op = self.choice(UNARY)
        x = self.pick()
        if op == "exp" and self.vals[x].numel() and float(self.vals[x].detach().max()) > 5:
            (x,) = self.emit("tanh", (x,))
        if BY_NAME[op].domain == "positive":
            x = self.positive(x)
        self.emit(op, (x,))

    def detach(self) -> None:
        """x.detach(), sometimes viewed further: values outside the graph that share x's memory."""
        (d,) = self.emit("detach", (self.pick(),))
        if self.coin():
            n = self.vals[d].ndim
            view = ("getitem", (slice(None, None, 2),)) if n else ("unsqueeze", 0)
            self.emit(view[0], (d,), view[1:])

    def binary(self) -> None:
        op = self.choice(("add", "sub", "mul", "div", "maximum", "minimum", "pow_tensor"))
        x = self.pick()
        y = x if self.integer(0, 4) == 0 else self.partner(tuple(self.vals[x].shape))
        if self.coin():
            x, y = y, x
        if op == "div":
            y = self.away_from_zero(y)
        if op == "pow_tensor":
            x = self.positive(x)
        self.emit(op, (x, y))

    def scalar(self) -> None:
        op = self.choice(
            ("add_scalar", "rsub_scalar", "mul_scalar", "rdiv_scalar", "maximum_scalar", "minimum_scalar")
        )
        x = self.pick()
        if op == "rdiv_scalar":
            x = self.away_from_zero(x)
        self.emit(op, (x,), (self.choice(SCALARS),))

    def power(self) -> None:
        p = self.choice(EXPONENTS)
        x = self.pick()
        if not float(p).is_integer():
            x = self.positive(x)
        elif p < 0:
            x = self.away_from_zero(x)
        self.emit("pow", (x,), (p,))

    def clip(self) -> None:
        self.emit("clip", (self.pick(),), self.choice(CLIPS))

    def reduction(self) -> None:
        op = self.choice(REDUCTIONS)
        x = self.pick()
        t = self.vals[x]
        n = t.ndim
        kind = self.integer(0, 2)
        if kind == 0 or n == 0 and kind == 2:
            dim = None
        elif kind == 1:
            dim = self.integer(-max(n, 1), max(n, 1) - 1)
        else:
            first = self.integer(0, n - 1)
            dim = (first, (first + self.integer(1, max(n - 1, 1))) % n - n)
            if len(set(d % n for d in dim)) < 2:
                raise Invalid
        args = (dim, self.coin()) + ((self.choice((1, 0)),) if op == "var" else ())
        if op == "var":  # no degrees of freedom: torch gives nan (or an empty result), we refuse
            axes = range(n) if dim is None or n == 0 else [dim] if isinstance(dim, int) else dim
            if math.prod(t.shape[a] for a in axes) <= args[2]:
                raise Invalid
        self.emit(op, (x,), args)

    def matmul(self) -> None:
        x = self.pick(lambda t: 1 <= t.ndim <= 3)
        shape = tuple(self.vals[x].shape)
        k = shape[-1]
        m = self.choice(SIZES)
        options = [(k,), (k, m), (self.choice(SIZES), k, m)]
        if len(shape) == 3:
            options += [(1, k, m), (shape[0], k, m)]
        target = self.choice(options)
        if len(shape) >= 2 and self.integer(0, 3) == 0:
            (y,) = self.emit("transpose", (x,), (-1, -2))  # x @ xᵀ: a value used twice by one op
        else:
            reuse = [i for i, t in self.vals.items() if tuple(t.shape) == target]
            y = self.choice(reuse) if reuse and self.coin() else self.leaf(target)
        if self.coin() and len(shape) <= 2 and self.vals[y].ndim <= 2:
            # the other side: yᵀ @ xᵀ
            (y,) = self.emit("permute", (y,), (tuple(reversed(range(self.vals[y].ndim))),))
            (x,) = self.emit("permute", (x,), (tuple(reversed(range(len(shape)))),))
            x, y = y, x
        self.emit("matmul", (x, y))

    def affine(self) -> None:
        op = self.choice(("linear", "linear_nobias", "addmm", "addcmul", "lerp", "lerp_scalar"))
        if op.startswith("linear"):
            x = self.pick(lambda t: t.ndim >= 1)
            w = self.leaf((self.choice(SIZES), self.vals[x].shape[-1]))
            if op == "linear_nobias":
                self.emit(op, (x, w))
            else:
                # a bias that broadcasts to the output (torch also takes one that enlarges it, we refuse)
                bias = self.partner_exact(self.choice(((self.vals[w].shape[0],), (), (1,))))
                self.emit(op, (x, w, bias))
        elif op == "addmm":
            a = self.pick(lambda t: t.ndim == 2)
            n, k = self.vals[a].shape
            m = self.choice(SIZES)
            c_shape = self.choice(((n, m), (m,), (1, m), (n, 1), ()))
            self.emit(op, (self.leaf(c_shape), a, self.leaf((k, m))))
        else:
            c = self.pick()
            shape = tuple(self.vals[c].shape)
            a = self.partner(shape)
            b = self.partner(shape)
            if op == "lerp_scalar":
                self.emit(op, (c, a), (self.choice((0.3, 0.7)),))
                return
            self.emit(op, (c, a, b))

    def index(self) -> None:
        x = self.pick()
        shape = tuple(self.vals[x].shape)
        items: list[Any] = []
        d, advanced, ellipsis = 0, False, False
        for _ in range(self.integer(1, 3)):
            kind = self.integer(0, 5)
            if kind == 0 and d < len(shape) and shape[d] > 0:
                items.append(self.integer(-shape[d], shape[d] - 1))
                d += 1
            elif kind == 1 and d < len(shape):
                start = self.choice((None, 0, 1, -2))
                items.append(slice(start, self.choice((None, 2, -1)), self.choice((None, 1, 2))))
                d += 1
            elif kind == 2:
                items.append(None)
            elif kind == 3 and not ellipsis:
                items.append(Ellipsis)
                ellipsis = True
                d = len(shape)  # the rest goes by the Ellipsis; nothing after it consumes a named axis
            elif kind == 4 and d < len(shape) and not advanced:
                size = self.choice((3, 1, 0, 2)) if shape[d] > 0 else 0
                # one index array, or two side by side (x[i, j]: their pairs, broadcast together)
                for n in shape[d : d + self.integer(1, 2)] if size else shape[d : d + 1]:
                    ids = self.rng.integers(-n, n, size) if n else np.zeros(0, np.int64)
                    refill = self.rng.integers(-n, n, size) if n else ids
                    items.append(self.buffer(ids.astype(np.int64), refill.astype(np.int64)))
                    d += 1
                advanced = True
            elif kind == 5 and d < len(shape) and not advanced:
                span = self.integer(1, len(shape) - d)
                mask = self.rng.random(shape[d : d + span]) < 0.5
                items.append(self.buffer(mask, ~mask))
                advanced, d = True, d + span
        self.emit("getitem", (x,), (tuple(items),))

    def embedding(self) -> None:
        """F.embedding(ids, w): rows of a weight gathered by the caller's id array (refilled later)."""
        w = self.pick(lambda t: t.ndim == 2 and t.shape[0] > 0)
        rows = self.vals[w].shape[0]
        shape = self.shape(max_ndim=2)
        ids = self.buffer(self.rng.integers(0, rows, shape), self.rng.integers(0, rows, shape))
        self.emit("embedding", (w,), (ids,))

    def reshape(self) -> None:
        op = self.choice(
            ("reshape", "permute", "transpose", "squeeze", "unsqueeze", "flatten", "contiguous", "pad")
        )
        x = self.pick()
        shape = tuple(self.vals[x].shape)
        n = len(shape)
        if op == "reshape":
            size = math.prod(shape)
            options = [(size,), (1, size), (size, 1), (-1,), ()]
            options += [(d, size // d) for d in (2, 3) if size and size % d == 0]
            options += [(-1, d) for d in (2, 3) if size and size % d == 0]
            if n >= 2:
                options.append(shape[:-2] + (shape[-2] * shape[-1],))
            self.emit(op, (x,), (self.choice(options),))
        elif op == "permute":
            self.emit(op, (x,), (tuple(int(i) for i in self.rng.permutation(n)),))
        elif op == "transpose":
            if n < 2:
                raise Invalid
            self.emit(op, (x,), (self.integer(-n, n - 1), self.integer(-n, n - 1)))
        elif op == "squeeze":
            self.emit(op, (x,), (self.choice((None,) + tuple(range(-n, n))),))
        elif op == "unsqueeze":
            self.emit(op, (x,), (self.integer(-n - 1, n),))
        elif op == "contiguous":
            if n >= 2 and self.coin():
                (x,) = self.emit("transpose", (x,), (-1, -2))
            self.emit(op, (x,))
        elif op == "pad":
            widths = tuple((self.integer(0, 2), self.integer(0, 2)) for _ in range(n))
            self.emit(op, (x,), (widths, self.choice(SCALARS)))
        else:
            self.emit(op, (x,))

    def join(self) -> None:
        op = self.choice(("cat", "stack"))
        x = self.pick(lambda t: op == "stack" or t.ndim >= 1)
        shape = tuple(self.vals[x].shape)
        n = len(shape)
        dim = self.integer(-n - 1, n) if op == "stack" else self.integer(-n, n - 1)
        parts = [x]
        for _ in range(self.integer(0, 2)):
            if self.coin():
                parts.append(x)
                continue
            target = list(shape)
            if op == "cat":
                target[dim] = self.choice(SIZES)
            reuse = [i for i, t in self.vals.items() if list(t.shape) == target]
            parts.append(self.choice(reuse) if reuse and self.coin() else self.leaf(tuple(target)))
        self.emit(op, tuple(parts), (dim,))

    def split(self) -> None:
        op = self.choice(("split", "split_sections", "chunk", "unbind"))
        x = self.pick(lambda t: t.ndim >= 1)
        shape = tuple(self.vals[x].shape)
        dim = self.integer(-len(shape), len(shape) - 1)
        length = shape[dim]
        if op == "split":
            self.emit(op, (x,), (self.integer(1, 3), dim))
        elif op == "split_sections":
            cut = self.integer(0, length)
            self.emit("split", (x,), ([cut, length - cut], dim))
        elif op == "chunk":
            self.emit(op, (x,), (self.integer(1, 3), dim))
        else:
            self.emit(op, (x,), (dim,))

    def where(self) -> None:
        op = self.choice(("where", "where_scalar", "where_gt", "where_eq"))
        a = self.pick()
        shape = tuple(self.vals[a].shape)
        if op in ("where_gt", "where_eq"):
            x = self.partner(shape)
            self.emit(op, (x, a, self.partner(shape)), (self.choice((0.0, 0.5)),))
            return
        b = self.partner(shape)
        full = _broadcast(self.vals[a].shape, self.vals[b].shape)
        cond_shape = full[self.integer(0, len(full)) :]
        mask = self.rng.random(cond_shape) < 0.5
        cond = self.buffer(mask, ~mask)
        if op == "where":
            self.emit(op, (a, b), (cond,))
        else:
            self.emit(op, (a,), (cond, self.choice(SCALARS)))

    def softmax(self) -> None:
        op = self.choice(("softmax", "log_softmax"))
        x = self.pick()
        n = max(self.vals[x].ndim, 1)
        self.emit(op, (x,), (self.integer(-n, n - 1),))

    def loss(self) -> None:
        op = self.choice(
            ("cross_entropy", "nll_loss", "mse_loss", "mse_loss_buffer", "binary_cross_entropy_with_logits")
        )
        reduction = self.choice(("mean", "sum", "none"))
        if op in ("cross_entropy", "nll_loss"):
            x = self.pick(lambda t: 1 <= t.ndim <= 3 and t.shape[min(1, t.ndim - 1)] > 0)
            shape = tuple(self.vals[x].shape)
            classes = shape[min(1, len(shape) - 1)]
            t_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
            target = np.asarray(self.rng.integers(0, classes, t_shape))
            target[self.rng.random(t_shape) < 0.2] = -100  # ignore_index
            refill = self.rng.integers(0, classes, t_shape)
            t = self.buffer(target.astype(np.int64), refill.astype(np.int64))
            if op == "nll_loss":
                if self.coin():
                    (x,) = self.emit("log_softmax", (x,), (min(1, len(shape) - 1),))
                self.emit(op, (x,), (t, reduction))
            else:
                self.emit(op, (x,), (t, reduction, self.choice((0.0, 0.1))))
            return
        x = self.pick()
        shape = tuple(self.vals[x].shape)
        if op == "mse_loss":
            reuse = [i for i, t in self.vals.items() if tuple(t.shape) == shape]
            self.emit(op, (x, self.choice(reuse) if self.coin() else self.leaf(shape)), (reduction,))
        elif op == "mse_loss_buffer":
            y = self.rng.standard_normal(shape)
            self.emit(op, (x,), (self.buffer(y, self.rng.standard_normal(shape)), reduction))
        else:
            y = self.buffer(self.rng.random(shape), self.rng.random(shape))
            pos = None
            if shape and self.coin():
                pos = self.buffer(
                    self.rng.uniform(0.5, 2.0, shape[-1:]), self.rng.uniform(0.5, 2.0, shape[-1:])
                )
            self.emit(op, (x,), (y, reduction, pos))

    def cell(self) -> None:
        kind = self.choice(("RNNCell", "LSTMCell", "GRUCell"))
        x = self.pick(lambda t: t.ndim in (1, 2) and t.shape[-1] > 0)
        d = self.vals[x].shape[-1]
        known = [k for k, c in enumerate(self.p.cells) if c.kind == kind and c.input_size == d]
        if known and self.coin():
            k = self.choice(known)
        else:
            k = self.new_cell(kind, d)
        h = self.p.cells[k].hidden_size
        state_shape = tuple(self.vals[x].shape[:-1]) + (h,)
        state: tuple[int, ...] = ()
        if self.coin():
            state = tuple(self.partner_exact(state_shape) for _ in range(2 if kind == "LSTMCell" else 1))
        self.emit("cell", (x, *state), (k,))

    def scan(self) -> None:
        """A cell run over a sequence (T, N, D), T >= 4, so that the engine replays its later steps
        (or, for a cell of IMPURE, must not)."""
        kind = self.choice(("RNNCell", "LSTMCell", "GRUCell", *IMPURE))
        sequences = [i for i, t in self.vals.items() if t.ndim == 3 and t.shape[0] >= 4 and t.shape[2] > 0]
        if sequences and self.coin():
            x = self.choice(sequences)
        else:
            x = self.leaf((self.integer(4, 6), self.integer(1, 2), self.integer(1, 3)))
        steps, batch, d = self.vals[x].shape
        known = [k for k, c in enumerate(self.p.cells) if c.kind == kind and c.input_size == d]
        k = self.choice(known) if known and self.coin() else self.new_cell(kind, d)
        state: tuple[int, ...] = ()
        if self.coin():
            shape = (batch, self.p.cells[k].hidden_size)
            state = tuple(self.partner_exact(shape) for _ in range(2 if kind == "LSTMCell" else 1))
        self.emit("scan", (x, *state), (k,))

    def partner_exact(self, shape: tuple[int, ...]) -> int:
        reuse = [i for i, t in self.vals.items() if tuple(t.shape) == shape]
        return self.choice(reuse) if reuse and self.coin() else self.leaf(shape)

    def new_cell(self, kind: str, d: int) -> int:
        h = self.integer(1, 3)
        bias = self.integer(0, 3) > 0
        nonlinearity = self.choice(("tanh", "relu")) if kind == "RNNCell" else "tanh"
        rows = {"RNNCell": 1, "LSTMCell": 4, "GRUCell": 3}.get(kind, 1) * h
        if kind in IMPURE:
            bias = True
        shapes = [(rows, d), (rows, h)] + (
            [(rows,)] if kind in IMPURE else [(rows,), (rows,)] if bias else []
        )
        params = tuple(self.leaf(s, self.rng.uniform(-1, 1, s) / math.sqrt(h)) for s in shapes)
        cell = Cell(kind, d, h, bias, nonlinearity, params)
        self.p.cells.append(cell)
        module, tensors = TORCH.cell(cell, [self.p.leaves[i] for i in params])
        self.modules.append(module)
        self.vals.update(zip(params, tensors, strict=True))
        return len(self.p.cells) - 1

    FAMILIES = (
        "unary", "binary", "scalar", "power", "clip", "reduction", "matmul", "affine", "index", "reshape",
        "join", "split", "where", "softmax", "loss", "cell", "scan", "detach", "embedding",
    )  # fmt: skip

    def build(self, max_steps: int) -> Program:
        for _ in range(self.integer(1, 2)):
            self.leaf(self.shape())
        for _ in range(self.integer(1, max_steps)):
            for _attempt in range(4):
                mark = self.mark()
                try:
                    getattr(self, self.choice(self.FAMILIES))()
                    break
                except Invalid:
                    self.restore(mark)
        self.finish()
        return self.p

    def finish(self) -> None:
        """Outputs: every value no step consumed, and a few others; the detached values to overwrite."""
        if self.integer(0, 3) == 0:  # a detached alias of a value some op may have saved
            mark = self.mark()
            try:
                self.detach()
            except Invalid:
                self.restore(mark)
        frozen = [i for i, t in self.vals.items() if not t.requires_grad and t.numel() > 0]
        if frozen and self.coin():
            self.p.writes.append(self.choice(frozen))
        used = {i for s in self.p.steps if s.op != "detach" for i in s.inputs}
        for i in self.vals:
            if i not in used or self.integer(0, 5) == 0:
                self.p.outputs.append(i)
                self.p.seeds.append(self.rng.standard_normal(tuple(self.vals[i].shape)))


@st.composite
def programs(draw: Any, max_steps: int = 8) -> Program:
    """A random program of up to `max_steps` ops (plus the steps that keep domains valid)."""
    return Builder(draw).build(max_steps)
