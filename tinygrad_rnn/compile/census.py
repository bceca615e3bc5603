"""How the steps of a graph ran: replayed one by one, compiled one by one, or compiled as sequences."""

from __future__ import annotations

from collections.abc import Iterable

from ..replay import ReplayedStep
from ..tensor import Tensor, graph_nodes
from .sequence import CompiledSequence
from .step import CompiledStep


def step_census(roots: Iterable[Tensor]) -> dict[str, int]:
    """{'replayed': steps run as ReplayedStep nodes, 'compiled': steps run by generated code (one
    CompiledStep node each, or inside a CompiledSequence), 'sequences': CompiledSequence nodes}."""
    ctxs = {id(n._ctx): n._ctx for n in graph_nodes(list(roots)) if n._ctx is not None}.values()
    census = {"replayed": 0, "compiled": 0, "sequences": 0}
    for ctx in ctxs:
        if isinstance(ctx, CompiledSequence):
            census["compiled"] += ctx.steps
            census["sequences"] += 1
        elif isinstance(ctx, CompiledStep):
            census["compiled"] += 1
        elif type(ctx) is ReplayedStep:
            census["replayed"] += 1
    return census
