"""Each step's hand-written backward against the autograd of the same cell on that step alone.

For nn.Recurrent the cells are modules, so step t of a layer-direction can be re-run by itself:

    new_state = cell(x_t, state_{t−1});   L_t = Σ_i new_state_i ⊙ dstate_t,i

with x_t, state_{t−1} and dstate_t exactly as manual's forward and BPTT saw and sent them (the
`BPTTSteps` records).  The autograd's dL_t/dθ is then the step's own share dθ_t and dL_t/dstate_{t−1}
the gradient the step sends back, which manual's step_backward returned as well.  A wrong
step_backward thus shows at the step where it is wrong, named by the parameter or state array it
gets wrong, before its error has travelled along the states to other steps.
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


def _step_grads(
    problem: Problem, cell: Any, record: Any, t: int
) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, ...]]:
    """dL_t/dθ of one step by the autograd under the cell's own parameter names, and dL_t/d(state_{t−1})."""
    with fresh_grads(cell):
        state = tuple(Tensor(s[t], requires_grad=True) for s in record.state_in)
        new_state = cell(Tensor(record.x[t]), problem.as_hx(state))
        parts = new_state if problem.tuple_state else (new_state,)
        loss = sum((part * Tensor(d[t])).sum() for part, d in zip(parts, record.dstate, strict=True))
        loss.backward()
        params = {
            name: np.zeros_like(p.data) if p.grad is None else p.grad.data.copy()
            for name, p in cell.named_parameters()
        }
    return params, tuple(np.zeros(s.shape, s.dtype) if s.grad is None else s.grad.data for s in state)


def single_step_errors(problem: Problem, records: dict[str, Any]) -> dict[str, list[tuple[str, float]]]:
    """Per layer-direction and step: the worst of the step's outputs — a parameter's share dθ_t (by
    its layer-level name) or the gradient on the previous state ('dh_prev', 'dc_prev', ...) — and its
    relative error between manual's step_backward and the autograd; empty when the cells are not
    modules."""
    prefix = "rnn." if problem.is_lm else ""
    found: dict[str, list[tuple[str, float]]] = {}
    for stream, record in records.items():
        cell = _cell_of(problem, stream)
        if cell is None:
            continue
        errors = []
        for t in range(len(record.dh)):
            params, dstate_prev = _step_grads(problem, cell, record, t)
            rel = {
                f"{prefix}cell_{stream}.{name}": agreement(
                    g, record.dparams[f"{prefix}cell_{stream}.{name}"][t]
                ).rel
                for name, g in params.items()
            }
            for name, auto, hand in zip(problem.state_names, dstate_prev, record.dstate_prev, strict=True):
                rel[f"d{name}_prev"] = agreement(auto, hand[t]).rel
            worst = max(rel, key=rel.__getitem__)
            errors.append((worst, rel[worst]))
        found[stream] = errors
    return found
