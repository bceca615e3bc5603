"""Each primitive op (ops.py) as a PyTorch expression: one line of the exported file per recorded op.

`expression(call)` gives the right-hand side for one op call; `call.operands` are the texts of its
inputs (a variable, or a scalar's literal), `call.options` its recorded options, `call.shapes` its
inputs' shapes. An op without an entry here raises ExportError naming it. The torch functions have
the same forward and the same derivative conventions as ours (maximum's tie split in half, relu's
and abs' zero derivative at 0, clamp passing the gradient at its bounds, amax sharing it among ties).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import ops
from .recording import ExportError


@dataclass
class Call:
    """One recorded op call, as text: operands, options, input shapes, and how to write the rest."""

    operands: list[str]
    scalars: list[bool]  # which operands are scalar literals rather than tensors
    options: dict[str, Any]
    shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...] = ()
    out_dtype: Any = np.float64
    constant: Callable[[np.ndarray, str], str] = field(default=lambda array, hint: "")  # -> self.<buffer>
    batch_shape: Callable[[tuple[int, ...], tuple[int, ...]], str] = field(default=lambda shape, source: "")

    def tensor(self, i: int) -> str:
        """Operand i as a tensor: a scalar literal becomes one in the dtype and device of a tensor operand."""
        if not self.scalars[i]:
            return self.operands[i]
        like = next((o for o, s in zip(self.operands, self.scalars, strict=True) if not s), None)
        if like is None:  # every operand a constant
            return f"torch.tensor({self.operands[i]}, dtype={dtype_text(self.out_dtype)})"
        return f"{like}.new_tensor({self.operands[i]})"


def dtype_text(dtype: Any) -> str:
    return f"torch.{np.dtype(dtype).name}"


def literal(value: Any) -> str:
    """A Python literal of a number (inf and nan spelled so that they parse)."""
    if isinstance(value, bool | np.bool_):
        return repr(bool(value))
    if isinstance(value, int | np.integer):
        return repr(int(value))
    number = float(value)
    if np.isfinite(number):
        return repr(number)
    return 'float("nan")' if np.isnan(number) else f'{"-" if number < 0 else ""}float("inf")'


def _axis(axis: Any, ndim: int) -> str:
    """torch's dim= for numpy's axis=: None reduces every axis."""
    if axis is None:
        return repr(tuple(range(ndim)))
    return repr(tuple(int(a) for a in axis)) if isinstance(axis, tuple | list) else str(int(axis))


def _reduce(name: str) -> Callable[[Call], str]:
    def render(c: Call) -> str:
        keep = bool(c.options["keepdims"])
        return f"{c.operands[0]}.{name}(dim={_axis(c.options['axis'], len(c.shapes[0]))}, keepdim={keep})"

    return render


def _infix(symbol: str) -> Callable[[Call], str]:
    return lambda c: f"{c.operands[0]} {symbol} {c.operands[1]}"


def _method(name: str) -> Callable[[Call], str]:
    return lambda c: f"{c.operands[0]}.{name}()"


def _index_item(item: Any, c: Call) -> str:
    if item is None:
        return "None"
    if item is Ellipsis:
        return "..."
    if isinstance(item, slice):
        if item.step is not None and item.step < 0:
            raise ExportError("getitem: a slice with a negative step has no PyTorch counterpart (use flip)")
        parts = ["" if v is None else str(int(v)) for v in (item.start, item.stop, item.step)]
        return ":".join(parts[:2]) + (f":{parts[2]}" if parts[2] else "")
    if isinstance(item, int | np.integer) and not isinstance(item, bool | np.bool_):
        return str(int(item))
    return c.constant(np.asarray(item), "index")


def _getitem(c: Call) -> str:
    index = c.options["index"]
    items = index if isinstance(index, tuple) else (index,)
    text = ", ".join(_index_item(i, c) for i in items) if items else "()"
    return f"{c.operands[0]}[{text}]"


def _permute(c: Call) -> str:
    axes = tuple(int(a) for a in c.options["axes"])
    if axes == (1, 0):
        return f"{c.operands[0]}.T"
    return f"{c.operands[0]}.permute{axes}"


def _linear(c: Call) -> str:
    x, weight = c.operands[0], c.operands[1]
    if len(c.operands) == 2:
        return f"F.linear({x}, {weight})"
    bias_shape = c.shapes[2]
    if len(bias_shape) == 1 and bias_shape[0] == c.shapes[1][0]:
        return f"F.linear({x}, {weight}, {c.tensor(2)})"
    return f"F.linear({x}, {weight}) + {c.operands[2]}"  # a bias of the output's shape: a term added


def _where(c: Call) -> str:
    return f"torch.where({c.operands[2]}, {c.operands[0]}, {c.operands[1]})"


COMPARISONS = {np.less: "<", np.less_equal: "<=", np.greater: ">", np.greater_equal: ">=", np.equal: "==",
               np.not_equal: "!="}  # fmt: skip


def _compare(c: Call) -> str:
    return f"{c.operands[0]} {COMPARISONS[c.options['ufunc']]} {c.operands[1]}"


def _argmax(c: Call) -> str:
    axis = c.options["axis"]
    return f"{c.operands[0]}.argmax()" if axis is None else f"{c.operands[0]}.argmax(dim={axis})"


def _clip(c: Call) -> str:
    low, high = c.options["low"], c.options["high"]
    bounds = [f"min={literal(low)}"] * (low is not None) + [f"max={literal(high)}"] * (high is not None)
    return f"{c.operands[0]}.clamp({', '.join(bounds)})"


def _pad(c: Call) -> str:
    widths = [int(w) for before_after in reversed(c.options["pad_width"]) for w in before_after]
    return f"F.pad({c.operands[0]}, {widths}, value={literal(c.options['value'])})"


def _many(name: str) -> Callable[[Call], str]:
    def render(c: Call) -> str:
        tensors = ", ".join(c.tensor(i) for i in range(len(c.operands)))
        return f"torch.{name}([{tensors}], dim={c.options['axis']})"

    return render


def _softmax(name: str) -> Callable[[Call], str]:
    return lambda c: f"torch.{name}({c.operands[0]}, dim={_axis(c.options['axis'], len(c.shapes[0]))})"


def _split(c: Call) -> str:
    sizes = [int(s) for s in c.options["sizes"]]
    return f"torch.split({c.operands[0]}, {sizes}, dim={c.options['axis']})"


# op class name in ops.py -> how it is written in torch
RENDER: dict[str, Callable[[Call], str]] = {
    "Add": _infix("+"),
    "Sub": _infix("-"),
    "Mul": _infix("*"),
    "Div": _infix("/"),
    "Neg": lambda c: f"-{c.operands[0]}",
    "Pow": lambda c: f"{c.operands[0]} ** {literal(c.options['exponent'])}",
    "PowTensor": lambda c: f"torch.pow({c.tensor(0)}, {c.tensor(1)})",
    "Exp": _method("exp"),
    "Log": _method("log"),
    "Reciprocal": _method("reciprocal"),
    "Sqrt": _method("sqrt"),
    "Tanh": _method("tanh"),
    "Sigmoid": _method("sigmoid"),
    "Relu": _method("relu"),
    "Abs": _method("abs"),
    "Clip": _clip,
    "Maximum": lambda c: f"torch.maximum({c.tensor(0)}, {c.tensor(1)})",
    "Minimum": lambda c: f"torch.minimum({c.tensor(0)}, {c.tensor(1)})",
    "Addcmul": lambda c: f"torch.addcmul({c.tensor(0)}, {c.tensor(1)}, {c.tensor(2)})",
    "Lerp": lambda c: f"torch.lerp({c.tensor(0)}, {c.tensor(1)}, {c.operands[2]})",
    "Where": _where,
    "Cast": lambda c: f"{c.operands[0]}.to({dtype_text(c.options['dtype'])})",
    "Sum": _reduce("sum"),
    "Mean": _reduce("mean"),
    "Max": _reduce("amax"),
    "Softmax": _softmax("softmax"),
    "LogSoftmax": _softmax("log_softmax"),
    "MatMul": _infix("@"),
    "Linear": _linear,
    "Reshape": lambda c: f"{c.operands[0]}.reshape({c.batch_shape(c.out_shape, c.shapes[0])})",
    "Contiguous": _method("contiguous"),
    "Permute": _permute,
    "GetItem": _getitem,
    "Split": _split,
    "Unbind": lambda c: f"torch.unbind({c.operands[0]}, dim={c.options['axis']})",
    "Cat": _many("cat"),
    "Stack": _many("stack"),
    "Pad": _pad,
    "Softplus": lambda c: f"F.softplus({c.operands[0]})",
    "LogSumExp": _reduce("logsumexp"),
    "Compare": _compare,
    "ArgMax": _argmax,
}


def expression(function: type, call: Call) -> str:
    """The torch expression of one call of `function` (an op class of ops.py)."""
    render = RENDER.get(function.__name__)
    if render is None or getattr(ops, function.__name__, None) is not function:
        raise ExportError(f"the op {function.__name__} has no PyTorch counterpart in the export")
    return render(call)
