"""How nodes look: label text, fill colours, and the colour scale for gradient norms."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..tensor import Tensor
from .graph import DETACHED, INPUT, OP, PARAM, Node

FILL = {OP: "#ffffff", PARAM: "#fff2cc", INPUT: "#deebf7", DETACHED: "#ffffff"}
# cold (small |grad|) to hot (large), ColorBrewer RdYlBu; the darkest ends take white text
PALETTE = (
    "#313695",
    "#4575b4",
    "#74add1",
    "#abd9e9",
    "#e0f3f8",
    "#fee090",
    "#fdae61",
    "#f46d43",
    "#d73027",
    "#a50026",
)
DARK = frozenset({PALETTE[0], PALETTE[1], PALETTE[-2], PALETTE[-1]})
ZERO = "#ffffff"
NO_GRAD = "#d9d9d9"
CELL_FILL = "#e5f5e0"


def text(s: str) -> str:
    """A user's string made safe inside a DOT label (backslashes would start escapes)."""
    return s.replace("\\", "\\\\")


def describe(tensors: list[Tensor], show_shapes: bool, show_dtype: bool) -> str:
    """'(4, 8)', '(4, 8) float32', '4 × (4, 8)' for the pieces of a chunk, or ''."""
    parts = []
    if show_shapes:
        shapes = [str(tuple(t.shape)) for t in tensors]
        same = len(set(shapes)) == 1
        parts.append(f"{len(shapes)} × {shapes[0]}" if same and len(shapes) > 1 else ", ".join(shapes))
    if show_dtype:
        parts.append(str(tensors[0].dtype))
    return " ".join(parts)


def node_label(node: Node, show_shapes: bool, show_dtype: bool, norm: float | None) -> str:
    """'h = Mul', 'Sub(1, ·)', 'Split', 'weight_hh_l0', then the shape and |grad| lines."""
    if node.kind == OP:
        only = node.tensors[0] if len(node.tensors) == 1 else None
        title = node.op + (f"[{only.output_index}]" if only is not None and only.output_index else "")
        if node.constants:
            title += "(" + ", ".join(c if c is not None else "·" for c in node.constants) + ")"
        names = [node.name] if only is not None else [t.name for t in node.tensors]
        if any(n is not None for n in names):
            title = f"{text(', '.join(n for n in names if n is not None))} = {title}"
    else:
        title = text(node.name) if node.name is not None else ("parameter" if node.kind == PARAM else "input")
        if node.kind == DETACHED:
            title += " (detached)"
    lines = [title, describe(node.tensors, show_shapes, show_dtype)]
    if node.kind == DETACHED:
        lines.append("graph cut: no gradient flows back")
    if norm is not None:
        lines.append(grad_text(norm))
    return "\\n".join(line for line in lines if line)


def grad_text(norm: float) -> str:
    return f"|grad| = {norm:.2e}" if norm else "|grad| = 0"


def grad_norm(tensors: Iterable[Tensor]) -> float | None:
    """The norm of the tensors' gradients taken together, or None when none has one."""
    squares = [float(np.vdot(t.grad.data, t.grad.data)) for t in tensors if t.grad is not None]
    return math.sqrt(sum(squares)) if squares else None


class GradScale:
    """Maps ‖grad‖ to a colour on a log10 scale spanning the non-zero norms drawn."""

    def __init__(self, norms: Iterable[float | None]) -> None:
        logs = [math.log10(n) for n in norms if n is not None and n > 0 and math.isfinite(n)]
        self.low = min(logs, default=0.0)
        self.high = max(logs, default=0.0)

    def bin(self, norm: float) -> int:
        if not math.isfinite(norm):
            return len(PALETTE) - 1
        if self.high - self.low < 1e-12:
            return len(PALETTE) // 2
        share = (math.log10(norm) - self.low) / (self.high - self.low)
        return min(len(PALETTE) - 1, int(share * len(PALETTE)))

    def colour(self, norm: float | None) -> str:
        if norm is None:
            return NO_GRAD
        return ZERO if norm == 0 else PALETTE[self.bin(norm)]

    def legend(self) -> str:
        """An HTML-like label: one row per colour, hottest first, with the smallest ‖grad‖ it covers."""
        rows = ['<tr><td colspan="2"><b>|grad|, log scale</b></td></tr>']
        if self.high - self.low < 1e-12:
            bins = [(PALETTE[len(PALETTE) // 2], f"{10**self.low:.1e}")]
        else:
            width = (self.high - self.low) / len(PALETTE)
            bins = [(c, f"&#8805; {10 ** (self.low + k * width):.1e}") for k, c in enumerate(PALETTE)]
        for colour, value in [*reversed(bins), (ZERO, "0"), (NO_GRAD, "no grad kept")]:
            rows.append(f'<tr><td bgcolor="{colour}" width="24"> </td><td align="left">{value}</td></tr>')
        return (
            '<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">' + "".join(rows) + "</table>>"
        )
