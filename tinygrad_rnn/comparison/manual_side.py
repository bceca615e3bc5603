"""The manual path: `tinygrad_rnn.manual`'s hand-written forward and BPTT on the module's weights.

The parameters are copied out of the module under its own `named_parameters()` names (weight_ih_l0
for the built-in layers, cell_l0.peep for nn.Recurrent), so every gradient lines up with the
autograd's by key; the cell is the problem's (a built-in one or the user's pair).  The recurrent
backward receives exactly the upstream gradients of the loss Σ output ⊙ G + Σ h_n ⊙ G_h (+ ...):
doutput = G, dh_n = G_h, dc_n = G_c.
"""

from typing import Any

import numpy as np

from .. import manual
from .problem import Problem, Run


def module_params(module: Any) -> dict[str, np.ndarray]:
    """Copies of the module's parameters under its own names."""
    return {name: np.asarray(p.data).copy() for name, p in module.named_parameters()}


def _named_state(problem: Problem, state: Any, suffix: str) -> dict[str, np.ndarray]:
    """A state in the cell's form as {'h' + suffix: ..., 'c' + suffix: ...}, e.g. suffix '_n' or '0'."""
    parts = state if problem.tuple_state else (state,)
    return {name + suffix: s for name, s in zip(problem.state_names, parts, strict=True)}


def _forward(problem: Problem, params: dict[str, np.ndarray]) -> tuple[np.ndarray, Any, Any]:
    return manual.recurrent_forward(
        problem.manual,
        problem.x,
        params,
        hx=problem.as_hx(problem.state0),
        lengths=problem.lengths,
        **problem.options,
    )


def _lm_forward(problem: Problem, params: dict[str, np.ndarray]) -> tuple[float, Any, Any]:
    return manual.lm_forward(
        problem.tokens,
        problem.targets,
        params,
        mode=problem.manual,
        hx=problem.as_hx(problem.state0),
        lengths=problem.lengths,
        **problem.options,
    )


def recurrent_loss(problem: Problem, params: dict[str, np.ndarray]) -> float:
    """L = Σ output ⊙ G + Σ h_n ⊙ G_h (+ ...) by the manual forward, at problem.x and state0."""
    output, state_n, _ = _forward(problem, params)
    arrays = {"output": output, **_named_state(problem, state_n, "_n")}
    return sum(float(np.sum(a * problem.upstream[key])) for key, a in arrays.items())


def lm_loss(problem: Problem, params: dict[str, np.ndarray]) -> float:
    """The summed cross-entropy by the manual forward, at problem.state0."""
    return _lm_forward(problem, params)[0]


def run_manual(problem: Problem) -> Run:
    """Forward and BPTT by hand (truncated for `problem.tbptt`), per-step records included; see `Run`."""
    params = module_params(problem.module)
    inputs: dict[str, np.ndarray] = {}
    steps: dict[str, manual.BPTTSteps] = {}
    if not problem.is_lm:
        output, state_n, cache = _forward(problem, params)
        dstate_n = problem.as_hx(tuple(problem.upstream[f"{name}_n"] for name in problem.state_names))
        dx, dstate0, grads, steps = manual.recurrent_backward(
            problem.upstream["output"], dstate_n, cache, return_steps=True
        )
        forward = {"output": output, **_named_state(problem, state_n, "_n")}
        inputs = {"x": dx, **_named_state(problem, dstate0, "0")}
    elif problem.tbptt is None:
        loss, state_n, cache = _lm_forward(problem, params)
        grads, steps = manual.lm_backward(cache, return_steps=True)
        forward = {"loss": np.array(loss), **_named_state(problem, state_n, "_n")}
    else:
        loss, grads, state_n = manual.lm_truncated_bptt(
            problem.tokens,
            problem.targets,
            params,
            problem.tbptt,
            mode=problem.manual,
            hx=problem.as_hx(problem.state0),
            lengths=problem.lengths,
            **problem.options,
        )
        forward = {"loss": np.array(loss), **_named_state(problem, state_n, "_n")}
    clipped, total_norm = None, None
    if problem.max_norm is not None:
        clipped, total_norm = manual.clip_grad_norm(grads, problem.max_norm)
    step_dh = {stream: record.dh for stream, record in steps.items()}
    step_dparams = {stream: record.dparams for stream, record in steps.items()}
    return Run(forward, grads, inputs, step_dh, step_dparams, clipped, total_norm, steps)
