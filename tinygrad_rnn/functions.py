"""Module-level ops that take several tensors, as in torch: cat, stack, addmm, addcmul, lerp, where."""

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import ops
from .tensor import Tensor, _constant, tensors_of


def _common_float(op: str, tensors: list[Tensor]) -> None:
    first = tensors[0].dtype
    if any(t.dtype != first for t in tensors):
        dtypes = sorted({str(t.dtype) for t in tensors})
        raise TypeError(f"{op}: all tensors need one dtype, got {dtypes}")


def cat(tensors: Sequence[Tensor], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Join tensors along an existing axis; their other sizes must agree."""
    items = tensors_of(tensors)
    if not items:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    _common_float("cat", items)
    axis = items[0]._one_axis("cat", axis if dim is None else dim)
    reference = items[0].shape[:axis] + items[0].shape[axis + 1 :]
    for i, t in enumerate(items):
        if t.ndim != items[0].ndim or t.shape[:axis] + t.shape[axis + 1 :] != reference:
            raise ValueError(
                f"cat: tensor {i} has shape {t.shape}, expected {items[0].shape} except along axis {axis}"
            )
    return ops.Cat.apply(*items, axis=axis)


def stack(tensors: Sequence[Tensor], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    items = tensors_of(tensors)
    if not items:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    _common_float("stack", items)
    for i, t in enumerate(items):
        if t.shape != items[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape}, expected {items[0].shape} (all equal)")
    axis = axis if dim is None else dim
    if not -items[0].ndim - 1 <= axis <= items[0].ndim:
        raise ValueError(f"stack: axis {axis} is out of range for tensors of shape {items[0].shape}")
    return ops.Stack.apply(*items, axis=axis % (items[0].ndim + 1))


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether numpy broadcasts `shape` to exactly `target` (sizes aligned from the end)."""
    trailing = zip(reversed(shape), reversed(target), strict=False)
    return len(shape) <= len(target) and all(n in (1, m) for n, m in trailing)


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor) -> Tensor:
    """input + mat1 @ mat2 (as torch.addmm), input broadcast to the product's shape: `linear` with
    mat2 as Wᵀ."""
    _common_float("addmm", tensors_of([input, mat1, mat2]))
    product = (mat1.shape[0], mat2.shape[1]) if mat1.ndim == 2 and mat2.ndim == 2 else None
    if product is None or mat1.shape[1] != mat2.shape[0]:
        raise ValueError(f"addmm: cannot multiply {mat1.shape} by {mat2.shape} (2-D, inner sizes equal)")
    if not _broadcasts_to(input.shape, product):
        raise ValueError(f"addmm: input of shape {input.shape} does not broadcast to the product's {product}")
    # the same op as linear, with mat2 as Wᵀ (mat2 itself is the C-ordered Wᵀ the forward multiplies by)
    return ops.Linear.apply(mat1, mat2.T, input, weight_t=mat2._data)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None, *, weight_t: Any = None) -> Tensor:
    """input Wᵀ + bias in one op (torch.nn.functional.linear). input: (..., D), weight: (G, D), bias
    broadcast to (..., G). `weight_t` (optional) is a C-ordered ndarray copy of Wᵀ to reuse across calls."""
    items = tensors_of([input, weight] if bias is None else [input, weight, bias])
    _common_float("linear", items)
    if weight.ndim != 2 or input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: expected input (..., {weight.shape[-1]}) for weight {weight.shape} (out, in), "
            f"got input {input.shape}"
        )
    out_shape = input.shape[:-1] + (weight.shape[0],)
    if bias is not None and not _broadcasts_to(bias.shape, out_shape):
        raise ValueError(f"linear: bias of shape {bias.shape} does not broadcast to the output {out_shape}")
    return ops.Linear.apply(*items, weight_t=weight_t)


def _same_dtype(op: str, first: Tensor, others: tuple[Any, ...]) -> list[Tensor]:
    """All operands in one dtype, promoted as the arithmetic operators do (a float Tensor among them
    sets it)."""
    values = (first, *others)
    reference = next((t for t in values if isinstance(t, Tensor) and t.dtype.kind == "f"), first)
    return [reference._operands(t, op)[1] for t in values]


def addcmul(input: Tensor, tensor1: Any, tensor2: Any) -> Tensor:
    """input + tensor1 ⊙ tensor2 in one op (as torch.addcmul), broadcast as numpy."""
    items = _same_dtype("addcmul", input, (tensor1, tensor2))
    np.broadcast_shapes(*(t.shape for t in items))  # raises a ValueError naming the shapes
    return ops.Addcmul.apply(*items)


def lerp(input: Tensor, end: Any, weight: Any) -> Tensor:
    """input + weight ⊙ (end − input) in one op (as torch.lerp), broadcast as numpy."""
    items = _same_dtype("lerp", input, (end, weight))
    np.broadcast_shapes(*(t.shape for t in items))
    return ops.Lerp.apply(*items)


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """a where condition holds, else b (broadcast); the gradient flows to the branch taken."""
    cond = condition if isinstance(condition, Tensor) else _constant(np.asarray(condition), None)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: the condition must be boolean, got dtype {cond.dtype}")
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError("where: at least one of a and b must be a Tensor")
    first = a if isinstance(a, Tensor) else b
    return ops.Where.apply(*_same_dtype("where", first, (a, b))[1:], cond)
