"""Each step's hand-written backward against the autograd of the same cell on that step alone.

For nn.Recurrent the cells are modules, so step t of a layer-direction can be re-run by itself:

    new_state = cell(x_t, state_{t−1});   L_t = Σ_i new_state_i ⊙ dstate_t,i

with x_t, state_{t−1} and dstate_t exactly as manual's forward and BPTT saw and sent them (the
`BPTTSteps` records).  The autograd's dL_t/dθ is then the step's own share dθ_t, which manual's
step_backward returned as well.  A wrong step_backward thus shows at the step and the parameter where
it is wrong, even where the gradients flowing along the states are right.
"""

from typing import Any

import numpy as np

from ..tensor import Tensor
from .autograd_side import fresh_grads
from .measures import agreement
from .problem import Problem


def _cell_of(problem: Problem, stream: str) -> Any:
    """The cell module of one layer-direction ('l0', 'l1_reverse'), or None for the built-in layers."""
    return getattr(problem.layer, f"cell_{stream}", None)


def _step_grads(problem: Problem, cell: Any, record: Any, t: int) -> dict[str, np.ndarray]:
    """dL_t/dθ of one step by the autograd, under the cell's own parameter names."""
    with fresh_grads(cell):
        state = tuple(Tensor(s[t]) for s in record.state_in)
        new_state = cell(Tensor(record.x[t]), problem.as_hx(state))
        parts = new_state if problem.tuple_state else (new_state,)
        loss = sum((part * Tensor(d[t])).sum() for part, d in zip(parts, record.dstate, strict=True))
        loss.backward()
        return {
            name: np.zeros_like(p.data) if p.grad is None else p.grad.data.copy()
            for name, p in cell.named_parameters()
        }


def single_step_errors(problem: Problem, records: dict[str, Any]) -> dict[str, list[tuple[str, float]]]:
    """Per layer-direction and step: (the layer-level name of the worst parameter, its relative error
    between manual's dθ_t and the autograd's); empty when the layer's cells are not modules."""
    prefix = "rnn." if problem.is_lm else ""
    found: dict[str, list[tuple[str, float]]] = {}
    for stream, record in records.items():
        cell = _cell_of(problem, stream)
        if cell is None:
            continue
        errors = []
        for t in range(len(record.dh)):
            auto = _step_grads(problem, cell, record, t)
            rel = {
                name: agreement(g, record.dparams[f"{prefix}cell_{stream}.{name}"][t]).rel
                for name, g in auto.items()
            }
            worst = max(rel, key=rel.__getitem__, default=None)
            errors.append(("", 0.0) if worst is None else (f"{prefix}cell_{stream}.{worst}", rel[worst]))
        found[stream] = errors
    return found
