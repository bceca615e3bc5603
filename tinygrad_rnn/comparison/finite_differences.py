"""The third opinion: central finite differences of the manual forward, on float64 copies.

    dL/dθ_i ≈ (L(θ + ε e_i) − L(θ − ε e_i)) / 2ε,   ε = 1e−6,   two forward passes per element

for every element of every parameter (and of x, h0, c0 for a recurrent module).  The loss is the one
both paths differentiate; the forward it runs is the manual one, in float64 whatever the module's
dtype, and that forward is itself compared with the autograd's in the report.
"""

import numpy as np

from .. import manual
from ..numeric import numerical_gradient
from .manual_side import lm_loss, recurrent_loss
from .problem import Problem


def element_count(problem: Problem) -> int:
    """How many numbers finite differences would perturb (each costs two forward passes)."""
    count = sum(p.data.size for p in problem.module.parameters())
    if not problem.is_lm:
        count += problem.x.size + sum(s.size for s in problem.state0)
    return count


def finite_difference_grads(problem: Problem) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(parameter gradients, input gradients) by central differences of the manual forward, float64.

    With `problem.max_norm` the parameter gradients are clipped by their global norm, as on the two
    other paths.
    """
    params = {key: value.astype(np.float64) for key, value in manual.from_module(problem.module)[0].items()}
    problem = problem._replace(
        x=None if problem.x is None else problem.x.astype(np.float64),
        state0=tuple(s.astype(np.float64) for s in problem.state0),
        upstream={key: g.astype(np.float64) for key, g in problem.upstream.items()},
    )
    if problem.is_lm:
        inputs: dict[str, np.ndarray] = {}

        def loss() -> float:
            return lm_loss(problem, params)

    else:
        inputs = {
            "x": problem.x,
            **{f"{n}0": s for n, s in zip(problem.state_names, problem.state0, strict=True)},
        }

        def loss() -> float:
            return recurrent_loss(problem, params)

    grads = {key: numerical_gradient(loss, array) for key, array in params.items()}
    dinputs = {key: numerical_gradient(loss, array) for key, array in inputs.items()}
    if problem.max_norm is not None:
        grads, _ = manual.clip_grad_norm(grads, problem.max_norm)
    return grads, dinputs
