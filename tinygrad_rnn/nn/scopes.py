"""The scope each recurrent time step records its ops under: ``<cell>.l<k>[r].t<t>``.

Written by the layers (``lstm.l0.t3``; ``lstm.l0r.t3`` for the reverse direction), read by the
pictures (one cluster per step) and the comparison report (the hidden state of each step). A user's
own scopes may wrap it (``encoder.lstm.l0.t3``) or nest inside it; the last match names the step.
"""

import re
from typing import NamedTuple

CELL_NAMES = {"RNN_TANH": "rnn", "RNN_RELU": "rnn", "LSTM": "lstm", "GRU": "gru"}
STEP_SCOPE = re.compile(r"(?:^|\.)(rnn|lstm|gru)\.l(\d+)(r?)\.t(\d+)(?=\.|$)")  # cell, layer, r, t


class StepScope(NamedTuple):
    """A step scope taken apart: the user's prefix ('' or 'encoder.'), cell, layer, direction, step."""

    prefix: str
    cell: str
    layer: int
    reverse: bool
    t: int


def parse_step_scope(scope: str | None) -> StepScope | None:
    """The step a scope names (its last ``<cell>.l<k>[r].t<t>``), or None when it names none."""
    matches = list(STEP_SCOPE.finditer(scope)) if scope else []
    if not matches:
        return None
    last = matches[-1]
    cell, layer, reverse, t = last.groups()
    return StepScope(scope[: last.start()], cell, int(layer), reverse == "r", int(t))


def layer_scope(mode: str, layer: int, reverse: bool) -> str:
    """'lstm.l0' or 'lstm.l0r': the ops of a layer-direction outside its steps (the input projection)."""
    return f"{CELL_NAMES[mode]}.l{layer}{'r' if reverse else ''}"


def step_scope(layer_label: str, t: int) -> str:
    """'lstm.l0.t3': the ops of step t of the layer-direction `layer_label`."""
    return f"{layer_label}.t{t}"
