"""The primitive ops: one Function each, forward and backward side by side.

Every backward returns one gradient per input, of the input's exact shape and dtype (None where the
input needs none). Broadcasting binary ops sum the gradient back with `unbroadcast`.
Grouped: elementwise, reduce, matmul, shape and indexing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .engine import DeferredProduct
from .tensor import Function


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` over the axes that broadcasting added or stretched, so it has `shape`.

    Handles both added leading axes and size-1 axes: the (N, H) + (H,) bias case sums over N.
    """
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    axes = tuple(range(lead)) + stretched
    return grad.sum(axis=axes, keepdims=True).reshape(shape) if axes else grad.reshape(shape)


# --- elementwise -----------------------------------------------------------------------------------


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a + b

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        return unbroadcast(grad, sa), unbroadcast(grad, sb)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a - b

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        return unbroadcast(grad, sa), unbroadcast(-grad, sb) if ctx.needs_input_grad[1] else None


class Mul(Function):
    def reads_input(self, i):
        return self.needs_input_grad[1 - i]  # each operand is read for the other's gradient only

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        da = unbroadcast(grad * b, a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(grad * a, b.shape) if ctx.needs_input_grad[1] else None
        return da, db


class Div(Function):
    def reads_input(self, i):
        return i == 1 or self.needs_input_grad[1]  # b for both gradients, a for db only

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        grad_over_b = grad / b
        da = unbroadcast(grad_over_b, a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(-grad_over_b * a / b, b.shape) if ctx.needs_input_grad[1] else None
        return da, db


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return (-grad,)


class Pow(Function):
    """y = x^p for a constant p; dy/dx = p x^(p-1), and 0 for p = 0 (also at x = 0, as torch)."""

    @staticmethod
    def forward(ctx, x, exponent):
        ctx.save_for_backward(x)
        ctx.exponent = exponent
        return x**exponent

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        p = ctx.exponent
        if p == 0:
            return (np.zeros_like(grad),)
        return (grad * (p * x ** (p - 1)),)


class PowTensor(Function):
    """y = a^b, both tensors (broadcast, as torch.pow): da = g·b·a^(b−1) (0 where b = 0) and
    db = g·y·log a (0 where a = 0 and b ≥ 0, the limit of a^b·log a); a negative a gives nan, as torch."""

    @staticmethod
    def forward(ctx, a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.power(a, b)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        a, b, y = ctx.saved
        da = db = None
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if ctx.needs_input_grad[0]:
                da = unbroadcast(
                    np.where(b == 0, 0, grad * b * np.power(a, b - 1)).astype(grad.dtype), a.shape
                )
            if ctx.needs_input_grad[1]:
                zero = (a == 0) & (b >= 0)
                db = unbroadcast(np.where(zero, 0, grad * y * np.log(a)).astype(grad.dtype), b.shape)
        return da, db


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return (grad * y,)


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return (grad / x,)


class Reciprocal(Function):
    """y = 1 / x; dx = −g y² (only the output is read)."""

    @staticmethod
    def forward(ctx, x):
        with np.errstate(divide="ignore"):
            y = np.reciprocal(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return (-grad * (y * y),)


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return (grad / (2 * y),)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        ctx.save_for_backward(y)  # the derivative needs only the output
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return (grad * (1 - y * y),)


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^-x), exact to rounding in both tails: for x ≪ 0, e^-x overflows to inf and
    1 / (1 + inf) is the correct limit 0, so that overflow is silenced rather than avoided."""
    with np.errstate(over="ignore"):
        y = np.negative(x, out=np.empty_like(x))  # out=: a 0-d input gives a 0-d array, not a scalar
        np.exp(y, out=y)
    y += 1
    return np.reciprocal(y, out=y)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        y = stable_sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return (grad * (y * (1 - y)),)


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + eˣ), as max(x, 0) + log(1 + e^−|x|) (no overflow), and x itself above 20 (as torch)."""
    return np.where(x > 20, x, np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0))


def softplus_slope(x: np.ndarray) -> np.ndarray:
    """d softplus / dx = σ(x) (1 above 20, where softplus is x), in x's dtype."""
    return np.where(x > 20, 1, stable_sigmoid(x)).astype(x.dtype, copy=False)


class Softplus(Function):
    """y = softplus(x); dx = g σ(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return softplus(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return (grad * softplus_slope(x),)


class Relu(Function):
    @staticmethod
    def forward(ctx, x):
        positive = x > 0
        ctx.save_for_backward(positive)
        return x * positive

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved
        return (grad * positive,)


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(np.sign(x))
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (sign,) = ctx.saved
        return (grad * sign,)


class Clip(Function):
    """y = min(max(x, low), high); the gradient passes where low ≤ x ≤ high (as torch.clamp)."""

    @staticmethod
    def forward(ctx, x, low, high):
        inside = np.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        ctx.save_for_backward(inside)
        return np.clip(x, low, high).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved
        return (grad * inside,)


def _winner_takes_grad(
    grad: np.ndarray, a: np.ndarray, b: np.ndarray, a_wins: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The gradients of max/min: the chosen operand takes it, a tie splits it in half (as torch)."""
    share_a = np.where(a == b, 0.5, a_wins).astype(grad.dtype, copy=False)
    return unbroadcast(grad * share_a, a.shape), unbroadcast(grad * (1 - share_a), b.shape)


class Maximum(Function):
    """Elementwise max; at ties the gradient is split in half between the two (as torch.maximum)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        return _winner_takes_grad(grad, a, b, a > b)


class Minimum(Function):
    """Elementwise min; at ties the gradient is split in half between the two (as torch.minimum)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        return _winner_takes_grad(grad, a, b, a < b)


class Addcmul(Function):
    """y = c + a ⊙ b (as torch.addcmul): dc = g, da = g ⊙ b, db = g ⊙ a (each summed to its shape)."""

    def reads_input(self, i):
        # a (input 1) is read for db only, b (input 2) for da only; c never (an array passed as c and
        # as a or b is saved in that role: asked about input 0, the answer is no)
        return i != 0 and self.needs_input_grad[3 - i]

    @staticmethod
    def forward(ctx, c, a, b):
        ctx.save_for_backward(a, b)
        ctx.shape = c.shape
        out = a * b
        if out.shape == c.shape:
            out += c
            return out
        return out + c  # all three broadcast together, as torch

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        needs = ctx.needs_input_grad
        dc = unbroadcast(grad, ctx.shape) if needs[0] else None
        da = unbroadcast(grad * b, a.shape) if needs[1] else None
        db = unbroadcast(grad * a, b.shape) if needs[2] else None
        return dc, da, db


class Lerp(Function):
    """y = start + w ⊙ (end − start) (as torch.lerp): dstart = g ⊙ (1 − w), dend = g ⊙ w,
    dw = g ⊙ (end − start). The GRU's h = (1 − z) ⊙ n + z ⊙ h_prev is lerp(n, h_prev, z)."""

    @staticmethod
    def forward(ctx, start, end, weight):
        difference = end - start
        ctx.save_for_backward(weight, difference)
        ctx.shapes = (start.shape, end.shape)
        out = weight * difference
        out += start
        return out

    @staticmethod
    def backward(ctx, grad):
        weight, difference = ctx.saved
        (start_shape, end_shape), needs = ctx.shapes, ctx.needs_input_grad
        grad_end = grad * weight
        dstart = unbroadcast(grad - grad_end, start_shape) if needs[0] else None
        dend = unbroadcast(grad_end, end_shape) if needs[1] else None
        dweight = unbroadcast(grad * difference, weight.shape) if needs[2] else None
        return dstart, dend, dweight


class Where(Function):
    """y = a where cond else b; the gradient goes to the branch that was taken. The condition is an
    input (a replayed step computes its mask afresh) and is copied: the caller may refill its mask
    before backward."""

    @staticmethod
    def forward(ctx, a, b, cond):
        cond = np.array(cond, dtype=bool)
        ctx.save_for_backward(cond)
        ctx.shapes = (a.shape, b.shape)
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved
        sa, sb = ctx.shapes
        zero = np.zeros((), dtype=grad.dtype)
        da = unbroadcast(np.where(cond, grad, zero), sa) if ctx.needs_input_grad[0] else None
        db = unbroadcast(np.where(cond, zero, grad), sb) if ctx.needs_input_grad[1] else None
        return da, db, None


class Compare(Function):
    """mask = ufunc(a, b) for a comparison ufunc (np.less, np.equal, ...): boolean, without a gradient,
    but recorded like any op, so that a replayed step compares its own values."""

    differentiable = False

    @staticmethod
    def forward(ctx, a, b, ufunc):
        return ufunc(a, b)


class ArgMax(Function):
    """Indices of the maxima along `axis` (int64, without a gradient), recorded like a comparison."""

    differentiable = False

    @staticmethod
    def forward(ctx, x, axis):
        return np.argmax(x, axis=axis)


class Cast(Function):
    rearranges = True

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return (grad.astype(ctx.dtype),)


# --- reduce ----------------------------------------------------------------------------------------


def _expand_reduced(grad: np.ndarray, shape: tuple[int, ...], axis: Any, keepdims: bool) -> np.ndarray:
    """Broadcast the gradient of a reduction back over the axes it reduced."""
    if axis is not None and not keepdims:
        grad = np.expand_dims(grad, axis)
    elif axis is None and not keepdims:
        grad = grad.reshape((1,) * len(shape))
    return np.broadcast_to(grad, shape)


def reduced_count(shape: tuple[int, ...], axis: Any) -> int:
    if axis is None:
        return int(np.prod(shape, dtype=np.int64))
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.args = (x.shape, axis, keepdims)
        return np.sum(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return (_expand_reduced(grad, *ctx.args),)


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.args = (x.shape, axis, keepdims)
        return np.mean(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        shape, axis, _ = ctx.args
        return (_expand_reduced(grad / grad.dtype.type(reduced_count(shape, axis)), *ctx.args),)


class Max(Function):
    """Max over axes (as torch.amax); the gradient of each reduced slice is split evenly among its
    tied maxima (y = max x, dx_i = g·[x_i = y] / #{j: x_j = y}). `min` follows, as −max(−x)."""

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        y = np.max(x, axis=axis, keepdims=True)
        winners = x == y
        ctx.save_for_backward(winners, np.sum(winners, axis=axis, keepdims=True).astype(x.dtype))
        ctx.args = (axis, keepdims)
        if keepdims:
            return y
        return y.reshape(()) if axis is None else np.squeeze(y, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        winners, count = ctx.saved
        axis, keepdims = ctx.args
        if not keepdims:
            grad = grad.reshape(count.shape)
        return (winners * (grad / count),)


class LogSumExp(Function):
    """y = m + log Σ exp(x − m) over the axes, m = max x (so nothing overflows); dx = g exp(x − y),
    the softmax over those axes."""

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        shift = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
        shift = np.where(np.isfinite(shift), shift, 0)  # all −inf (or empty): −inf, not nan
        with np.errstate(divide="ignore"):
            y = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
        if not keepdims:
            y = y.reshape(()) if axis is None else np.squeeze(y, axis=axis)
        ctx.save_for_backward(x, y)
        ctx.args = (x.shape, axis, keepdims)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        return (_expand_reduced(grad, *ctx.args) * np.exp(x - _expand_reduced(y, *ctx.args)),)


class Softmax(Function):
    """y = exp(x − max x) / Σ exp(x − max x); dx = y ⊙ (g − Σ g ⊙ y)."""

    @staticmethod
    def forward(ctx, x, axis):
        shifted = np.exp(x - np.max(x, axis=axis, keepdims=True, initial=-np.inf))
        y = shifted / np.sum(shifted, axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return (y * (grad - np.sum(grad * y, axis=ctx.axis, keepdims=True)),)


class LogSoftmax(Function):
    """y = x − max x − log Σ exp(x − max x) (never overflows); dx = g − softmax(x) Σ g."""

    @staticmethod
    def forward(ctx, x, axis):
        shifted = x - np.max(x, axis=axis, keepdims=True, initial=-np.inf)
        y = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True)) if x.size else shifted
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return (grad - np.exp(y) * np.sum(grad, axis=ctx.axis, keepdims=True),)


# --- matmul ----------------------------------------------------------------------------------------


class MatMul(Function):
    """numpy's matmul: 1-D, 2-D and batched (broadcast) operands.

    2-D: da = g bᵀ, db = aᵀ g. A 1-D operand is treated as a row (a) or a column (b) and the added
    axis removed again; broadcast batch axes are summed back.
    """

    def reads_input(self, i):
        return self.needs_input_grad[1 - i]  # each operand is read for the other's gradient only

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("both operands need at least one dimension (use * for scalars)")
        inner_a, inner_b = a.shape[-1], b.shape[0] if b.ndim == 1 else b.shape[-2]
        if inner_a != inner_b:
            raise ValueError(
                f"cannot multiply {a.shape} by {b.shape}: inner dimensions {inner_a} and {inner_b} differ"
            )
        # torch folds b's batch axes into the rows of one matrix when a has none: b's copy is saved
        # (unless it has one matrix), so b's in-place changes after forward do not matter, as there
        ctx.save_for_backward(a, b.copy() if a.ndim <= 2 < b.ndim and math.prod(b.shape[:-2]) > 1 else b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        if a.ndim == 2 and b.ndim == 2:
            da = grad @ b.T if ctx.needs_input_grad[0] else None
            db = DeferredProduct(a, grad) if ctx.needs_input_grad[1] else None
            return da, db
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2 if b.ndim > 1 else 0)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        da = db = None
        if ctx.needs_input_grad[0]:
            da = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            db = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return da, db


class Linear(Function):
    """y = x Wᵀ (+ b), torch.nn.functional.linear, with b broadcast to y: a bias vector, or any term of
    y's shape such as a recurrent step's input projection.

    dx = g W, dW = Σ gᵀ x (deferred: a weight used at every step gets one GEMM), db = Σ g over the
    broadcast axes. `weight_t`, a C-ordered copy of Wᵀ made once for many calls, only speeds up the
    forward product (numpy multiplies small matrices by a transposed view several times slower).
    """

    def reads_input(self, i):
        return i < 2 and self.needs_input_grad[1 - i]  # x is read for dW only, W for dx only, b never

    @staticmethod
    def forward(ctx, x, weight, *bias, weight_t=None):
        ctx.save_for_backward(x, weight)
        y = x @ (weight.T if weight_t is None else weight_t)
        if bias:
            ctx.bias_shape = bias[0].shape
            y += bias[0]
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved
        needs = ctx.needs_input_grad
        dx = grad @ weight if needs[0] else None
        dweight = None
        if needs[1]:
            rows = math.prod(grad.shape[:-1])  # not -1: a size-0 batch leaves it undetermined
            dweight = DeferredProduct(grad.reshape(rows, grad.shape[-1]), x.reshape(rows, x.shape[-1]))
        if len(needs) == 2:
            return dx, dweight
        return dx, dweight, unbroadcast(grad, ctx.bias_shape) if needs[2] else None


# --- shape and indexing ----------------------------------------------------------------------------


class Reshape(Function):
    rearranges = True
    view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return (grad.reshape(ctx.shape),)


class Contiguous(Function):
    """A C-ordered copy (when the input is not one already): BLAS is fastest on it."""

    rearranges = True
    view = True

    @staticmethod
    def forward(ctx, x):
        return np.ascontiguousarray(x)

    @staticmethod
    def backward(ctx, grad):
        return (grad,)


class Permute(Function):
    rearranges = True
    view = True
    takes_products = True  # the gradient of W.T, deferred (a 2-D DeferredProduct), stays deferred for W

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, grad):
        if type(grad) is DeferredProduct:
            return (grad.T,)
        return (np.transpose(grad, np.argsort(ctx.axes)),)


def _as_tuple(index: Any) -> tuple:
    return index if isinstance(index, tuple) else (index,)


def is_basic_index(index: Any) -> bool:
    """True when numpy would answer with a view (ints, slices, None, Ellipsis only)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(
        i is None
        or i is Ellipsis
        or isinstance(i, slice)
        or (isinstance(i, int | np.integer) and not isinstance(i, bool | np.bool_))
        for i in items
    )


class GetItem(Function):
    """y = x[index]; the gradient is scattered back, summing over repeated integer indices."""

    view = True

    @staticmethod
    def forward(ctx, x, index):
        basic = is_basic_index(index)
        if not basic:  # index arrays are copied: the caller may refill them before backward
            items = tuple(np.array(i) if isinstance(i, np.ndarray | list) else i for i in _as_tuple(index))
            index = items if isinstance(index, tuple) else items[0]
        ctx.args = (x.shape, index, basic)
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        shape, index, basic = ctx.args
        dx = np.zeros(shape, dtype=grad.dtype)
        if basic:
            dx[index] = grad
        else:
            np.add.at(dx, index, grad)
        return (dx,)


def _pieces(x: np.ndarray, sizes: Sequence[int], axis: int) -> tuple[np.ndarray, ...]:
    """Views of consecutive pieces of x along `axis`, of the given sizes."""
    lead = (slice(None),) * axis
    pieces, start = [], 0
    for n in sizes:
        pieces.append(x[lead + (slice(start, start + n),)])
        start += n
    return tuple(pieces)


def _slices(x: np.ndarray, axis: int) -> tuple[np.ndarray, ...]:
    """The views x[..., i, ...] along `axis`."""
    lead = (slice(None),) * axis
    return tuple(x[lead + (i,)] for i in range(x.shape[axis]))


def _zeros_where_missing(grads: tuple[np.ndarray | None, ...], shapes: Sequence[tuple[int, ...]]) -> list:
    """The gradients of a multi-output op's outputs, zeros for those no gradient reached."""
    dtype = next(g.dtype for g in grads if g is not None)
    return [
        g if g is not None else np.zeros(shape, dtype=dtype) for g, shape in zip(grads, shapes, strict=True)
    ]


class Split(Function):
    """Views of consecutive pieces along an axis; backward is one concatenation."""

    rearranges = True
    multi_output = True

    view = True

    @staticmethod
    def forward(ctx, x, sizes, axis):
        ctx.args = (x.shape, sizes, axis)
        return _pieces(x, sizes, axis)

    @staticmethod
    def backward(ctx, *grads):
        shape, sizes, axis = ctx.args
        if any(g is None for g in grads):
            grads = _zeros_where_missing(grads, [shape[:axis] + (n,) + shape[axis + 1 :] for n in sizes])
        return (np.concatenate(grads, axis=axis),)


class Unbind(Function):
    """The slices x[i] along an axis, as views (a sequence's time steps); backward is one stack."""

    multi_output = True

    view = True

    @staticmethod
    def forward(ctx, x, axis):
        ctx.args = (x.shape, axis)
        return _slices(x, axis)

    @staticmethod
    def backward(ctx, *grads):
        shape, axis = ctx.args
        if any(g is None for g in grads):
            grads = _zeros_where_missing(grads, [shape[:axis] + shape[axis + 1 :]] * len(grads))
        return (np.stack(grads, axis=axis),)


class Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.args = ([a.shape[axis] for a in arrays], axis)
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        sizes, axis = ctx.args
        return _pieces(grad, sizes, axis)


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return _slices(grad, ctx.axis)


class Pad(Function):
    """Constant padding with numpy's pad_width ((before, after) per axis)."""

    @staticmethod
    def forward(ctx, x, pad_width, value):
        ctx.window = tuple(
            slice(before, before + n) for (before, _), n in zip(pad_width, x.shape, strict=True)
        )
        return np.pad(x, pad_width or 0, mode="constant", constant_values=value)  # a 0-d x: () pads nothing

    @staticmethod
    def backward(ctx, grad):
        return (grad[ctx.window],)
