"""The scopes recurrent layers record their ops under: ``<cell>.l<k>[r]`` and ``<cell>.l<k>[r].t<t>``.

`<cell>` is any identifier: ``rnn``, ``lstm`` and ``gru`` for the built-in layers, the cell's class
name (or the layer's `name=`) for `nn.Recurrent`, or whatever a user's own loop writes under
`tg.scope("mycell.l0.t3")`. Step t of layer k runs under ``lstm.l0.t3`` (``lstm.l0r.t3`` in the
reverse direction); the layer's ops outside its steps (the input projection) under ``lstm.l0``.
Written by the layers, read by the pictures (one cluster per step) and the comparison report (the
hidden state of each step); nothing else parses them. A user's own scopes may wrap a step scope
(``encoder.lstm.l0.t3``) or nest inside it (``lstm.l0.t3.attn``); the last match names the step.
"""

import re
from enum import IntEnum
from typing import NamedTuple

CELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CELL = r"(?:^|\.)([A-Za-z_][A-Za-z0-9_]*)\.l(\d+)(r?)"
STEP_SCOPE = re.compile(_CELL + r"\.t(\d+)(?=\.|$)")  # cell, layer, r, t
LAYER_SCOPE = re.compile(_CELL + r"$")  # cell, layer, r


class TimeDirection(IntEnum):
    """The way a layer reads time. Its value is its index among a layer's directions (h_n's row
    layer·dirs + d, as torch; the `direction` integers of `manual`); it names its parameters, its
    scopes and its rows in reports."""

    FORWARD = 0
    REVERSE = 1

    def stream(self, layer: int) -> str:
        """'l0' or 'l0_reverse': the layer-direction in reports and per-step records."""
        return f"l{layer}_reverse" if self else f"l{layer}"

    def suffix(self, layer: int) -> str:
        """'_l0' or '_l0_reverse': torch's parameter names (weight_ih_l0_reverse, cell_l0_reverse)."""
        return "_" + self.stream(layer)

    @property
    def letter(self) -> str:
        """'' or 'r': the layer-direction in scopes (lstm.l0r.t3)."""
        return "r" if self else ""

    def order(self, steps: int) -> range:
        """The steps in the order this direction visits them."""
        return range(steps - 1, -1, -1) if self else range(steps)


DIRECTIONS = tuple(TimeDirection)


class StepScope(NamedTuple):
    """A step scope taken apart: the user's prefix ('' or 'encoder.'), cell, layer, direction, step."""

    prefix: str
    cell: str
    layer: int
    reverse: bool
    t: int

    @property
    def direction(self) -> TimeDirection:
        return TimeDirection(self.reverse)


def parse_step_scope(scope: str | None) -> StepScope | None:
    """The step a scope names (its last ``<cell>.l<k>[r].t<t>``), or None when it names none."""
    matches = list(STEP_SCOPE.finditer(scope)) if scope else []
    if not matches:
        return None
    last = matches[-1]
    cell, layer, reverse, t = last.groups()
    return StepScope(scope[: last.start()], cell, int(layer), reverse == "r", int(t))


def is_layer_scope(scope: str | None) -> bool:
    """Whether a scope is a layer's own, outside its steps (``lstm.l0``, ``encoder.PeepholeLSTM.l1r``)."""
    return bool(scope) and LAYER_SCOPE.search(scope) is not None


def check_cell_name(name: object) -> str:
    """A cell's name in scopes: an identifier (``lstm``, ``PeepholeLSTM``, ``my_cell2``)."""
    if not isinstance(name, str) or CELL_NAME.fullmatch(name) is None:
        raise ValueError(f"the name of a cell in step scopes must be an identifier, got {name!r}")
    return name


def layer_scope(cell: str, layer: int, direction: TimeDirection) -> str:
    """'lstm.l0' or 'lstm.l0r': the ops of a layer-direction outside its steps (the input projection)."""
    return f"{cell}.l{layer}{direction.letter}"


def step_scope(layer_label: str, t: int) -> str:
    """'lstm.l0.t3': the ops of step t of the layer-direction `layer_label`."""
    return f"{layer_label}.t{t}"
