"""One step of a cell, recorded: the only place the export reads the engine's recording (replay.py).

`record_step(cell, owner, examples)` runs `cell(x, state)` on a tape and returns the `Program` the
replay engine would build from it (the op classes, their options, which slot each op reads and
writes, the tensors taken from outside), with the line of the cell's source that made each op. It
records on two inputs of different values and refuses a step whose programs differ: a constant
computed from values (a comparison's mask outside the tape) would be frozen into the file.
"""

from __future__ import annotations

import inspect
import linecache
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import replay
from ..context import current_tape
from ..tensor import Tensor

State = Tensor | tuple[Tensor, ...]

# an op's source line is the first frame outside this package (the library's layers included), or in
# the file that defines the cell (nn.examples' cells live in the package)
_PACKAGE = Path(__file__).resolve().parents[1]


class ExportError(ValueError):
    """A module or step the export cannot write as PyTorch (named with the reason)."""


@dataclass
class Recording:
    """A recorded step: the program, and per op the cell's source line that made it ('' if none)."""

    program: replay.Program
    lines: list[str]


class _CallsWithSource(list):
    """The tape's list of op calls, noting the caller's source line at each call."""

    def __init__(self, cell_file: Path) -> None:
        super().__init__()
        self.cell_file = cell_file
        self.lines: list[str] = []

    def append(self, call: Any) -> None:
        super().append(call)
        self.lines.append(self._caller_line())

    def _caller_line(self) -> str:
        frame = sys._getframe(2)
        while frame is not None:
            path = Path(frame.f_code.co_filename).resolve()
            if path == self.cell_file or not path.is_relative_to(_PACKAGE):
                text = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
                return f"{path.name}:{frame.f_lineno}  {text}"
            frame = frame.f_back
        return ""


def record_step(cell: Any, owner: str, examples: Sequence[tuple[Tensor, State | None]]) -> Recording:
    """`cell(x, state)` run on a tape for each (x, state) of `examples` (inputs of one shape, other
    values), as replay records a step; the first recording. ExportError (naming `owner`) when the step
    cannot be recorded (it reads values in Python, returns an input or a view, ...) or records other
    ops or constants for other values (a mask computed from values outside the recorded ops)."""
    recordings = [_record(cell, owner, x, state) for x, state in examples]
    first = recordings[0]
    if not all(first.program.same_as(r.program) for r in recordings[1:]):
        raise ExportError(
            f"{owner}: the step records other ops or constants for other input values (a value read, or "
            "a mask or index computed from values outside the recorded ops): it is not one program"
        )
    return first


def _record(cell: Any, owner: str, x: Tensor, state: State | None) -> Recording:
    inputs = [x] + ([] if state is None else list(state) if isinstance(state, tuple) else [state])
    tape = replay.Tape()
    tape.calls = _CallsWithSource(_defining_file(cell))
    token = current_tape.set(tape)
    try:
        result = cell(x, state)
    finally:
        current_tape.reset(token)
    if tape.refused is not None:
        raise ExportError(f"{owner}: the step cannot be recorded as a program: {tape.refused}")
    program = replay._program(tape, inputs, result, None)
    if program is None:
        raise ExportError(
            f"{owner}: the step cannot be recorded as a program (it must return new Tensors, a state "
            "made by its ops, not one of its inputs or a view of one)"
        )
    return Recording(program, tape.calls.lines)


def _defining_file(cell: Any) -> Path:
    try:
        return Path(inspect.getfile(type(cell))).resolve()
    except (TypeError, OSError):  # a class made without a file: only frames outside the package count
        return _PACKAGE
