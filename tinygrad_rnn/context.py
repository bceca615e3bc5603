"""The pieces of context every op reads: whether a graph is being recorded, the step scope, and the
tape a replayed loop records a step on (replay.py).

All are contextvars, so they restore on exit and stay correct across threads and generators.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

grad_enabled: ContextVar[bool] = ContextVar("tinygrad_rnn_grad_enabled", default=True)
current_scope: ContextVar[str | None] = ContextVar("tinygrad_rnn_scope", default=None)
# the calls of the step being recorded for replay: (Function class, inputs, options, result, ctx)
current_tape: ContextVar[Any] = ContextVar("tinygrad_rnn_tape", default=None)


def not_replayable(reason: str) -> None:
    """Say that the step being recorded (if any) must not be replayed: its Python read or changed
    values (bool(), item(), detach(), an assignment), so another step could take another path."""
    tape = current_tape.get()
    if tape is not None and tape.refused is None:
        tape.refused = reason


def outside_data(reason: str) -> None:
    """Say that values no recorded op made entered the step being recorded (if any): an array, a
    random draw. Replay refuses such a step (another step may bring other values); the export, which
    records a step twice on different inputs, keeps the ones that stay the same as constants."""
    tape = current_tape.get()
    if tape is not None and tape.outside is None:
        tape.outside = reason


@contextmanager
def no_grad() -> Iterator[None]:
    """Ops inside record no graph: their results have requires_grad=False (as torch.no_grad)."""
    token = grad_enabled.set(False)
    try:
        yield
    finally:
        grad_enabled.reset(token)


@contextmanager
def enable_grad() -> Iterator[None]:
    """Record the graph again inside a `no_grad` block."""
    token = grad_enabled.set(True)
    try:
        yield
    finally:
        grad_enabled.reset(token)


def is_grad_enabled() -> bool:
    return grad_enabled.get()


class scope:  # noqa: N801  (used like a function: `with scope("lstm.l0.t3"):`, as torch's no_grad)
    """Label every tensor made inside with `name` (nested scopes join with '.').

    The recurrent layers record one scope per time step, e.g. ``lstm.l0.t3``; pictures use it to
    draw one cluster per step. The label is a plain string on each node. A class rather than a
    generator: the layers enter one per time step, so entering must be cheap.
    """

    __slots__ = ("name", "_token")

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"scope: expected a non-empty string, got {name!r}")
        self.name = name

    def __enter__(self) -> None:
        outer = current_scope.get()
        self._token = current_scope.set(self.name if outer is None else f"{outer}.{self.name}")

    def __exit__(self, *exc_info: object) -> None:
        current_scope.reset(self._token)
