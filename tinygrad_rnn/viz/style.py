"""How nodes look: label text, tooltips, fill colours, and the colour scales for gradient norms."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping

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
    """A user's string made safe inside a DOT label: backslashes would start escapes (quotes are escaped
    by graphviz's quoting, and labels are passed as `graphviz.nohtml` so that '<b>' is not HTML)."""
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
    """'h = Mul', 'Sub(1, ·)', 'Split', 'weight_hh_l0', '(2, 4)' for an unnamed leaf, then the shape and
    |grad| lines."""
    if node.kind == OP:
        only = node.tensors[0] if len(node.tensors) == 1 else None
        title = node.op + (f"[{only.output_index}]" if only is not None and only.output_index else "")
        if node.constants:
            title += "(" + ", ".join(c if c is not None else "·" for c in node.constants) + ")"
        names = [node.name] if only is not None else [t.name for t in node.tensors]
        if any(n is not None for n in names):
            title = f"{text(', '.join(n for n in names if n is not None))} = {title}"
    elif node.name is not None:
        title = text(node.name)
    else:  # an unnamed leaf: its shape says what it is better than a word would
        title = ("parameter " if node.kind == PARAM else "") + describe(node.tensors, True, show_dtype)
        show_shapes = show_dtype = False
    if node.kind == DETACHED:
        title += " (detached)"
    lines = [title, describe(node.tensors, show_shapes, show_dtype)]
    if node.kind == DETACHED:
        lines.append("graph cut: no gradient flows back")
    if norm is not None:
        lines.append(grad_text(norm))
    return "\\n".join(line for line in lines if line)


def tooltip(title: str, tensors: list[Tensor], norm: float | None) -> str:
    """What SVG shows on hover: 'h = Mul: (2, 4) float64, |grad| = 1.2e-01' (escaped for DOT)."""
    tip = f"{text(title)}: {describe(tensors, True, True)}"
    return tip + (f", {grad_text(norm)}" if norm is not None else "")


def quantity(node: Node) -> str:
    """What a node's ‖grad‖ is compared with on a per-quantity scale: the same op (or name) in the other
    steps of its layer; parameters with parameters, inputs with inputs, the rest together."""
    if node.kind == PARAM:
        return "parameters"
    if node.kind != OP:
        return "inputs"
    if node.step is None:
        return "other ops"
    return f"{node.name or node.op} ({node.step.chain.title})"


def grad_text(norm: float) -> str:
    return f"|grad| = {norm:.2e}" if norm else "|grad| = 0"


def grad_norm(tensors: Iterable[Tensor]) -> float | None:
    """The norm of the tensors' gradients taken together, or None when none has one."""
    squares = [float(np.vdot(t.grad.data, t.grad.data)) for t in tensors if t.grad is not None]
    return math.sqrt(sum(squares)) if squares else None


MIN_DECADES = 1.0  # a colour scale spans at least a factor of 10, so that ±10 % never looks like its ends


def log_span(norms: Iterable[float | None]) -> tuple[float, float] | None:
    """(low, high): log10 of the smallest and largest positive finite norms, widened about their middle
    to at least MIN_DECADES, so the colours' spread reflects the ratio max/min (0.93 to 1.13 stays in
    the two middle colours); None when there is no such norm."""
    logs = [math.log10(n) for n in norms if n is not None and n > 0 and math.isfinite(n)]
    if not logs:
        return None
    low, high = min(logs), max(logs)
    if high - low < MIN_DECADES:
        middle = (low + high) / 2
        low, high = middle - MIN_DECADES / 2, middle + MIN_DECADES / 2
    return low, high


class GradScale:
    """Maps ‖grad‖ to a colour on a log10 scale spanning the non-zero norms drawn (`log_span`)."""

    def __init__(self, norms: Iterable[float | None]) -> None:
        drawn = [n for n in norms if n is not None and n > 0 and math.isfinite(n)]
        self.count = len(drawn)
        self.smallest, self.largest = min(drawn, default=0.0), max(drawn, default=0.0)
        self.low, self.high = log_span(drawn) or (-MIN_DECADES / 2, MIN_DECADES / 2)

    def bin(self, norm: float) -> int:
        if not math.isfinite(norm):
            return len(PALETTE) - 1
        share = (math.log10(norm) - self.low) / (self.high - self.low)
        return max(0, min(len(PALETTE) - 1, int(share * len(PALETTE))))

    def colour(self, norm: float | None) -> str:
        if norm is None:
            return NO_GRAD
        return ZERO if norm == 0 else PALETTE[self.bin(norm)]


class GradScales:
    """One GradScale per quantity (`quantities` maps each drawn unit to its quantity), or one for all
    units when `quantities` is None; and the legend that says which."""

    def __init__(self, norms: Mapping[str, float | None], quantities: Mapping[str, str] | None) -> None:
        self.quantities = quantities
        groups: dict[str, list[float | None]] = {}
        for unit, norm in norms.items():
            groups.setdefault(quantities[unit] if quantities is not None else "", []).append(norm)
        self.scales = {key: GradScale(values) for key, values in groups.items()}

    def colour(self, unit: str, norm: float | None) -> str:
        key = self.quantities.get(unit, "") if self.quantities is not None else ""
        return self.scales[key].colour(norm) if key in self.scales else GradScale([norm]).colour(norm)

    def legend(self) -> str:
        """An HTML-like label. One scale: a row per colour, hottest first, with the smallest ‖grad‖ it
        covers. Per quantity: the colours from smallest to largest in one row, then the range of each
        quantity (inputs and parameters included). Either scale spans at least a factor of
        10**MIN_DECADES (`log_span`), as the legend says."""
        wide = f"a scale spans at least a factor of {10**MIN_DECADES:g}"
        if self.quantities is not None:
            cells = "".join(f'<td bgcolor="{c}" width="14"> </td>' for c in PALETTE)
            rows = [
                _row("|grad|, log scale per quantity", None, 12),
                _row(f"(each across its steps; {wide})", "", 12),
                f"<tr><td>smallest</td>{cells}<td>largest</td></tr>",
                f'<tr><td bgcolor="{ZERO}">0</td><td colspan="11" bgcolor="{NO_GRAD}">no grad kept</td></tr>',
            ]
            for key, scale in sorted(self.scales.items()):
                if scale.count > 1:
                    line = f"{html.escape(key)}: {scale.smallest:.2e} to {scale.largest:.2e}"
                    rows.append(_row(line, "", 12))
                elif scale.count == 1:
                    rows.append(_row(f"{html.escape(key)}: {scale.smallest:.2e}", "", 12))
        else:
            scale = self.scales.get("", GradScale([]))
            rows = [_row("|grad|, one log scale", None), _row(f"for all nodes ({wide})", "")]
            width = (scale.high - scale.low) / len(PALETTE)
            bins = [(c, f"&#8805; {10 ** (scale.low + k * width):.1e}") for k, c in enumerate(PALETTE)]
            for colour, value in [*reversed(bins), (ZERO, "0"), (NO_GRAD, "no grad kept")]:
                rows.append(_row(value, colour))
        return (
            '<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">' + "".join(rows) + "</table>>"
        )


def _row(value: str, colour: str | None, span: int = 2) -> str:
    """A legend row: a bold title (colour None), a line of text (''), or a colour swatch and its text."""
    if colour is None:
        return f'<tr><td colspan="{span}"><b>{value}</b></td></tr>'
    if not colour:
        return f'<tr><td colspan="{span}" align="left">{value}</td></tr>'
    return f'<tr><td bgcolor="{colour}" width="24"> </td><td align="left">{value}</td></tr>'
