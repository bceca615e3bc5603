"""The result of a comparison: one row per compared quantity, one per time step, and a verdict.

`str(report)` is an aligned table:

    quantity rows   forward values (output / loss, h_n, c_n), every parameter gradient (with a
                    sub-row per gate block i|f|g|o or r|z|n of the stacked weights), dL/dx and
                    dL/d(initial state); max |autograd|, the absolute and relative error of manual
                    against autograd, the relative errors against finite differences when run, and
                    for the recurrent weights the check Σ_t dW_t = dW of manual's per-step parts
    step rows       per layer-direction and time step: ‖dL/dh_t‖ (Frobenius norm over N × H) by
                    both paths — vanishing and exploding gradients show here — and the norms of
                    manual's per-step contributions to the cell's weights (dW_ih,t, dW_hh,t, or
                    d<name>_t for every parameter of a custom cell but its biases)
    verdict         OK when every error is within the tolerance; otherwise the quantities that
                    disagree and the first divergence (see `Divergence`)
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .measures import Agreement


def within(value: float | None, tolerance: float | None) -> bool:
    """True when there is nothing to check or the value is within it (NaN never is)."""
    return value is None or tolerance is None or bool(value <= tolerance)


@dataclass(frozen=True)
class Row:
    """One compared quantity.

    kind: 'forward', 'parameter', 'input' (x, h0, c0) or 'clip' (the total norm before clipping).
    error: manual against autograd.  blocks: per gate block (label, errors), relative to the whole
    parameter's scale.  fd_autograd / fd_manual: relative error of each path against finite
    differences.  steps_sum: relative error of Σ_t dW_t (manual's per-step parts) against manual's dW.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    error: Agreement
    tolerance: float
    blocks: tuple[tuple[str, Agreement], ...] = ()
    fd_autograd: float | None = None
    fd_manual: float | None = None
    fd_tolerance: float | None = None
    steps_sum: float | None = None

    @property
    def ok(self) -> bool:
        return (
            within(self.error.rel, self.tolerance)
            and within(self.fd_autograd, self.fd_tolerance)
            and within(self.fd_manual, self.fd_tolerance)
            and within(self.steps_sum, self.tolerance)
        )


@dataclass(frozen=True)
class StepRow:
    """One time step t of one layer-direction ('l0', 'l1_reverse', ...).

    dh_autograd, dh_manual: ‖dL/dh_t‖ by each path.  error: max |Δ dL/dh_t| relative to the largest
    |dL/dh| of this layer-direction over all steps (so round-off in a vanished gradient is not
    magnified).  dweights: (label, ‖dθ_t‖) of manual's contributions of step t to the cell's weights,
    e.g. ('W_ih', ‖dW_ih,t‖), ('W_hh', ‖dW_hh,t‖), ('peep_i', ‖dpeep_i,t‖).  step_param, step_error:
    for nn.Recurrent, the output of manual's step_backward (a parameter's share dθ_t, or 'dh_prev',
    'dc_prev', ...) that differs most from the autograd of the cell re-run on this step alone
    (single_steps.py), and that relative error.
    """

    stream: str
    t: int
    dh_autograd: float
    dh_manual: float
    error: float
    tolerance: float
    dweights: tuple[tuple[str, float], ...]
    step_param: str | None = None
    step_error: float | None = None

    @property
    def dh_ok(self) -> bool:
        return within(self.error, self.tolerance)

    @property
    def ok(self) -> bool:
        return self.dh_ok and within(self.step_error, self.tolerance)


class Divergence(NamedTuple):
    """Where the two paths first part.

    A forward quantity first ('output' with the first time step t whose values differ); else the
    first step, in the order BPTT visits them (top layer first; t = T−1 down to 0 forward, 0 up to
    T−1 reverse), where dL/dh_t differs (quantity 'dL/dh_t') or the step's backward alone does
    (quantity: the output that differs most, a parameter such as 'cell_l0.peep_i' or a state
    gradient such as 'dc_prev') — the step where a wrong backward formula first shows; else the
    first gradient in the rows' order, with step None.
    """

    quantity: str
    stream: str | None
    step: int | None
    rel: float

    def __str__(self) -> str:
        where = f" of {self.stream}" if self.stream else ""
        at = f" at t={self.step}" if self.step is not None else ""
        return f"{self.quantity}{where}{at} (rel err {self.rel:.2e})"


def _sci(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}e}"


def _status(ok: bool) -> str:
    return "ok" if ok else "DIFF"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned lines: the first and last columns left-aligned, the others right-aligned, two spaces apart."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        middle = [c.rjust(w) for c, w in zip(cells[1:-1], widths[1:-1], strict=True)]
        return "  ".join([cells[0].ljust(widths[0]), *middle, cells[-1]]).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


@dataclass(frozen=True)
class Report:
    """What `compare` found; `ok` is the verdict and `str(report)` the table.  `reference` names what
    the autograd was checked against, as the verdict says it ('manual BPTT equals', 'finite
    differences agree with')."""

    title: str
    loss: str
    dtype: np.dtype
    tolerance: float
    rows: tuple[Row, ...]
    steps: tuple[StepRow, ...]
    divergence: Divergence | None
    notes: tuple[str, ...] = ()
    reference: str = "manual BPTT equals"

    @property
    def ok(self) -> bool:
        """True when every quantity and every step agrees within the tolerances."""
        return all(r.ok for r in self.rows) and all(s.ok for s in self.steps)

    @property
    def failures(self) -> tuple[str, ...]:
        """Names of the quantities that disagree, then 'dL/dh_t of <layer>' and 'step_backward of
        <layer>' for the layer-directions with disagreeing steps."""
        streams = dict.fromkeys(
            f"dL/dh_t of {s.stream}" if not s.dh_ok else f"step_backward of {s.stream}"
            for s in self.steps
            if not s.ok
        )
        return tuple(r.name for r in self.rows if not r.ok) + tuple(streams)

    def row(self, name: str) -> Row:
        """The row of one quantity, e.g. report.row('weight_hh_l0') or report.row('x')."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"Report: no quantity {name!r}; quantities are {[r.name for r in self.rows]}")

    @property
    def worst(self) -> float:
        """The largest relative error between the two paths over every row and step."""
        errors = [r.error.rel for r in self.rows] + [s.error for s in self.steps]
        return max(errors, default=0.0)

    def _quantity_lines(self) -> list[str]:
        headers = ["quantity", "shape", "max|autograd|", "abs err", "rel err"]
        with_fd = any(r.fd_autograd is not None for r in self.rows)
        with_sums = any(r.steps_sum is not None for r in self.rows)
        headers += ["fd:autograd", "fd:manual"] if with_fd else []
        headers += ["ΣdW_t vs dW"] if with_sums else []
        headers.append("status")
        cells = []
        for r in self.rows:
            label = f"{r.name} (forward)" if r.kind == "forward" else r.name
            line = [label, str(r.shape), _sci(r.error.scale, 4), _sci(r.error.abs), _sci(r.error.rel)]
            line += [_sci(r.fd_autograd), _sci(r.fd_manual)] if with_fd else []
            line += [_sci(r.steps_sum)] if with_sums else []
            cells.append([*line, _status(r.ok)])
            for label, e in r.blocks:
                block = [f"  {label}", "", _sci(e.scale, 4), _sci(e.abs), _sci(e.rel)]
                block += ["", ""] if with_fd else []
                block += [""] if with_sums else []
                cells.append([*block, _status(within(e.rel, r.tolerance))])
        return format_table(headers, cells)

    def _step_lines(self) -> list[str]:
        headers = ["layer", "t", "‖dL/dh_t‖ autograd", "‖dL/dh_t‖ manual", "rel err"]
        headers += [f"‖d{label},t‖" for label, _ in self.steps[0].dweights]
        single = any(s.step_error is not None for s in self.steps)
        headers += ["one step (worst)"] if single else []
        cells = []
        for s in self.steps:
            first = self.divergence is not None and (self.divergence.stream, self.divergence.step) == (
                s.stream,
                s.t,
            )
            status = _status(s.ok) + ("  <- first divergence" if first else "")
            cells.append(
                [s.stream, str(s.t), _sci(s.dh_autograd, 4), _sci(s.dh_manual, 4), _sci(s.error)]
                + [_sci(norm, 4) for _, norm in s.dweights]
                + ([f"{_sci(s.step_error)} ({(s.step_param or '').rsplit('.', 1)[-1]})"] if single else [])
                + [status]
            )
        return format_table([*headers, "status"], cells)

    def verdict(self) -> str:
        """One line: OK with the worst error, or NOT OK with what disagrees and where it starts."""
        if self.ok:
            steps = f" and {len(self.steps)} steps" if self.steps else ""
            return (
                f"OK: {self.reference} the autograd on {len(self.rows)} quantities{steps} "
                f"(worst rel err {self.worst:.2e} ≤ {self.tolerance:.0e}, {self.dtype})"
            )
        text = f"NOT OK: {len(self.failures)} quantities disagree: {', '.join(self.failures)}"
        return text + (f"; first divergence: {self.divergence}" if self.divergence else "")

    def __str__(self) -> str:
        lines = [
            self.title,
            f"loss: {self.loss}",
            f"tolerance: rel err ≤ {self.tolerance:.0e} ({self.dtype})",
        ]
        fd = next((r.fd_tolerance for r in self.rows if r.fd_tolerance is not None), None)
        if fd is not None:
            lines[-1] += f"; against finite differences ≤ {fd:.0e}"
        lines += [f"note: {n}" for n in self.notes]
        lines += ["", *self._quantity_lines()]
        if self.steps:
            lines += ["", "per step (dW_t: manual's contribution of step t; Σ_t dW_t = dW is checked above)"]
            if any(s.step_error is not None for s in self.steps):
                lines.append(
                    "one step: manual's step_backward against the autograd of the cell re-run on step t "
                    "alone, the worst of its dθ_t and d(state)_prev"
                )
            lines += self._step_lines()
        return "\n".join([*lines, "", self.verdict()])
