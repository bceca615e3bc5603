"""Each step's share of a weight's gradient: what the op calls of step t sent the weight in the last
backward, dθ_t, whose sum over the steps (and the ops outside them) is the weight's gradient.

The engine keeps what an op call sends its inputs only when asked (`Node.keep_sent_grads`, which
`retain_grads` asks of every call reading a weight). A replayed step is one call, so its share comes
whole; a compiled sequence is one call for many steps, so its steps get no share; and a weight read
outside the steps (the built-in layers' input projection, x W_ihᵀ for all steps at once) has a share
only outside them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor, graph_nodes
from .steps import Step, parse_scope


def step_shares(root: Tensor, weights: dict[int, str]) -> dict[Step, dict[str, np.ndarray]]:
    """{step: {weight name: dθ_t}} from the gradients the last backward kept; `weights` maps the id
    of a weight's graph node to its name. A call whose outputs lie in several steps is left out, and
    so are the steps it covers."""
    calls: dict[int, tuple[tuple[Any, ...], tuple[Any, ...], set[Step | None]]] = {}
    for node in graph_nodes([root]):
        sent = node.sent_grads
        if sent is not None:
            calls.setdefault(id(sent), (sent, node.op_parents, set()))[2].add(parse_scope(node.scope))
    shares: dict[Step, dict[str, np.ndarray]] = {}
    covered_by_many: set[Step | None] = set()
    for sent, parents, steps in calls.values():
        if len(steps) > 1:
            covered_by_many |= steps - {None}
            continue
        (step,) = steps
        if step is None:  # a call outside the steps (the input projection)
            continue
        own = shares.setdefault(step, {})
        for parent, g in zip(parents, sent, strict=True):
            name = weights.get(id(parent))
            if name is not None and g is not None:
                own[name] = own[name] + g if name in own else g
    for step in covered_by_many:
        shares.pop(step, None)  # type: ignore[arg-type]
    return {step: own for step, own in shares.items() if own}
