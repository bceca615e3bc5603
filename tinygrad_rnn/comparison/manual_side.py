"""The manual path: `tinygrad_rnn.manual`'s hand-written forward and BPTT on the module's weights.

The parameters are copied out of the module by `manual.from_module`, under the same names, so every
gradient lines up with the autograd's by key.  The recurrent backward receives exactly the upstream
gradients of the loss Σ output ⊙ G + Σ h_n ⊙ G_h (+ Σ c_n ⊙ G_c): doutput = G, dh_n = G_h, dc_n = G_c.
"""

from typing import Any

import numpy as np

from .. import manual
from ..manual.convert import recurrent_config
from .problem import Problem, Run


def _hx(problem: Problem, state: tuple[np.ndarray, ...]) -> Any:
    """A state tuple in the form manual's functions take: h, or (h, c) for LSTM."""
    return tuple(state) if len(problem.state_names) == 2 else state[0]


def _named_state(problem: Problem, state: Any, suffix: str) -> dict[str, np.ndarray]:
    """h / (h, c) as {'h' + suffix: ..., 'c' + suffix: ...}, e.g. suffix '_n' or '0'."""
    parts = state if isinstance(state, tuple) else (state,)
    return {name + suffix: s for name, s in zip(problem.state_names, parts, strict=True)}


def recurrent_loss(problem: Problem, params: dict[str, np.ndarray]) -> float:
    """L = Σ output ⊙ G + Σ h_n ⊙ G_h (+ Σ c_n ⊙ G_c) by the manual forward, at problem.x and state0."""
    output, state_n, _ = manual.recurrent_forward(
        x=problem.x,
        params=params,
        hx=_hx(problem, problem.state0),
        lengths=problem.lengths,
        **recurrent_config(problem.rnn),
    )
    arrays = {"output": output, **_named_state(problem, state_n, "_n")}
    return sum(float(np.sum(a * problem.upstream[key])) for key, a in arrays.items())


def lm_loss(problem: Problem, params: dict[str, np.ndarray]) -> float:
    """The summed cross-entropy by the manual forward, at problem.state0."""
    loss, _, _ = manual.lm_forward(
        problem.tokens,
        problem.targets,
        params,
        hx=_hx(problem, problem.state0),
        lengths=problem.lengths,
        **recurrent_config(problem.rnn),
    )
    return loss


def run_manual(problem: Problem) -> Run:
    """Forward and BPTT by hand (truncated for `problem.tbptt`), per-step records included; see `Run`."""
    params, config = manual.from_module(problem.module)
    hx = _hx(problem, problem.state0)
    inputs: dict[str, np.ndarray] = {}
    steps: dict[str, manual.BPTTSteps] = {}
    if not problem.is_lm:
        output, state_n, cache = manual.recurrent_forward(
            x=problem.x, params=params, hx=hx, lengths=problem.lengths, **config
        )
        dstate_n = _hx(problem, tuple(problem.upstream[f"{name}_n"] for name in problem.state_names))
        dx, dstate0, grads, steps = manual.recurrent_backward(
            problem.upstream["output"], dstate_n, cache, return_steps=True
        )
        forward = {"output": output, **_named_state(problem, state_n, "_n")}
        inputs = {"x": dx, **_named_state(problem, dstate0, "0")}
    elif problem.tbptt is None:
        loss, state_n, cache = manual.lm_forward(
            problem.tokens, problem.targets, params, hx=hx, lengths=problem.lengths, **config
        )
        grads, steps = manual.lm_backward(cache, return_steps=True)
        forward = {"loss": np.array(loss), **_named_state(problem, state_n, "_n")}
    else:
        loss, grads, state_n = manual.lm_truncated_bptt(
            problem.tokens, problem.targets, params, problem.tbptt, hx=hx, lengths=problem.lengths, **config
        )
        forward = {"loss": np.array(loss), **_named_state(problem, state_n, "_n")}
    clipped, total_norm = None, None
    if problem.max_norm is not None:
        clipped, total_norm = manual.clip_grad_norm(grads, problem.max_norm)
    step_dh = {stream: record.dh for stream, record in steps.items()}
    step_dparams = {stream: record.dparams for stream, record in steps.items()}
    return Run(forward, grads, inputs, step_dh, step_dparams, clipped, total_norm)
