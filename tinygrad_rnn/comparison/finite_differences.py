"""The third opinion: central finite differences of the loss, in float64.

    dL/dθ_i ≈ (L(θ + ε e_i) − L(θ − ε e_i)) / 2ε,   ε = 1e−6,   two forward passes per element

for every element of every parameter (and of x, h0, c0, ... for a recurrent layer).  The loss is the
one every path differentiates.  With a manual cell the forward it runs is the manual one, on float64
copies whatever the module's dtype (that forward is itself compared with the autograd's in the
report); without one it is the module's own forward, without a graph, on its float64 parameters
perturbed in place and restored — the check of a custom layer's autograd alone.
"""

from collections.abc import Callable
from functools import partial

import numpy as np

from .. import manual
from ..numeric import numerical_gradient
from . import autograd_side, manual_side
from .problem import Problem


def element_count(problem: Problem) -> int:
    """How many numbers finite differences would perturb (each costs two forward passes)."""
    count = sum(p.data.size for p in problem.module.parameters())
    if not problem.is_lm:
        count += problem.x.size + sum(s.size for s in problem.state0)
    return count


def _in_float64(problem: Problem) -> Problem:
    return problem._replace(
        x=None if problem.x is None else problem.x.astype(np.float64),
        state0=tuple(s.astype(np.float64) for s in problem.state0),
        upstream={key: g.astype(np.float64) for key, g in problem.upstream.items()},
    )


def finite_difference_grads(problem: Problem) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(parameter gradients, input gradients) by central differences in float64.

    Without a manual cell the module's parameters must be float64 (they are perturbed in place).
    With `problem.max_norm` the parameter gradients are clipped by their global norm, as on the
    other paths.
    """
    problem = _in_float64(problem)
    losses: tuple[Callable[[], float], Callable[[], float]]
    if problem.manual is not None:
        params = {
            key: value.astype(np.float64) for key, value in manual_side.module_params(problem.module).items()
        }
        losses = (
            partial(manual_side.lm_loss, problem, params),
            partial(manual_side.recurrent_loss, problem, params),
        )
    else:
        params = {name: p.data for name, p in problem.module.named_parameters()}
        losses = partial(autograd_side.lm_loss, problem), partial(autograd_side.recurrent_loss, problem)
    loss = losses[0] if problem.is_lm else losses[1]
    inputs = (
        {}
        if problem.is_lm
        else {
            "x": problem.x,
            **dict(zip((f"{n}0" for n in problem.state_names), problem.state0, strict=True)),
        }
    )
    grads = {key: numerical_gradient(loss, array) for key, array in params.items()}
    dinputs = {key: numerical_gradient(loss, array) for key, array in inputs.items()}
    if problem.max_norm is not None:
        grads, _ = manual.clip_grad_norm(grads, problem.max_norm)
    return grads, dinputs
