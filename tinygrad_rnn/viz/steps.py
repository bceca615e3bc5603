"""Time steps from scopes: the recurrent layers run step t of layer k under ``<cell>.l<k>[r].t<t>``.

`<cell>` is any identifier (``lstm``, ``PeepholeLSTMCell``, or a user's own loop's ``mycell``); the
pictures label the step with it. A scope may carry the user's own prefix (``encoder.lstm.l0.t3``) or
suffix (``lstm.l0.t3.attn``); the last ``<cell>.l<k>[r].t<t>`` in it decides the step. Any other
scope is drawn as a plain cluster named after it.
"""

from __future__ import annotations

from typing import NamedTuple

from ..nn.scopes import is_layer_scope, parse_step_scope

CELL_TITLES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


class Chain(NamedTuple):
    """One layer in one direction of one recurrent module: the steps it runs form a chain in time."""

    prefix: str
    cell: str
    layer: int
    reverse: bool

    @property
    def title(self) -> str:
        """'lstm l0', 'encoder.gru l1 reverse'."""
        where = f"{self.prefix}.{self.cell}" if self.prefix else self.cell
        return f"{where} l{self.layer}{' reverse' if self.reverse else ''}"

    def cell_title(self, t: int) -> str:
        """The label of step t drawn as one cell: 'LSTM l0 t3', 'GRU l1r t0', 'PeepholeLSTMCell l0 t3'."""
        return f"{CELL_TITLES.get(self.cell, self.cell)} l{self.layer}{'r' if self.reverse else ''} t{t}"


class Step(NamedTuple):
    chain: Chain
    t: int


def parse_scope(scope: str | None) -> Step | None:
    """The step a scope names, or None when it names none (no scope, or the user's own)."""
    found = parse_step_scope(scope)
    if found is None:
        return None
    return Step(Chain(found.prefix, found.cell, found.layer, found.reverse), found.t)


def plain_cluster(scope: str | None) -> str | None:
    """The label of the plain cluster an op's scope puts it in: the scope itself when it names no
    step and is no layer's own (``lstm.l0``, the input projection, stands outside the steps), so
    that a scope the pictures cannot read is still drawn, never silently dropped."""
    if not scope or is_layer_scope(scope) or parse_step_scope(scope) is not None:
        return None
    return scope


def elided(steps: set[int], max_steps: int | None) -> set[int]:
    """The steps of one chain that one elision node stands for: all but the first ceil(k/2) and the
    last floor(k/2) of the k = `max_steps` kept (none when the chain is short enough)."""
    if max_steps is None or len(steps) <= max_steps:
        return set()
    ordered = sorted(steps)
    head = (max_steps + 1) // 2
    return set(ordered[head : len(ordered) - (max_steps - head)])
