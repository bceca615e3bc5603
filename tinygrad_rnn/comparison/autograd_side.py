"""The autograd path: the nn module's forward, the Tensor's backward, nn.utils' clipping.

Per-step gradients dL/dh_t are read from the graph itself: the recurrent layers record each step's
ops under a scope 'rnn.l0.t3' / 'lstm.l1r.t0' / 'PeepholeLSTMCell.l0.t2' (r marks the reverse
direction, nn/scopes.py) and name the step's hidden state 'h'.  Before backward those tensors are
found by an iterative walk from the outputs and asked to `retain_grad()`; after it their `.grad` is
dL/dh_t — the total gradient reaching h_t, through the output and through every later step.

Truncated BPTT runs the model on k-step chunks, each from the previous chunk's final state
detached (`h = h.detach()`), calling backward once per chunk so the parameters' `.grad` sum the
chunks' gradients.  The module's own `.grad` are restored when the comparison is done.

`recurrent_loss` and `lm_loss` evaluate the same losses without a graph, for finite differences of
the autograd's own function when there is no manual path to compare with.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..context import no_grad
from ..functions import where
from ..nn import functional as F
from ..nn.scopes import parse_step_scope
from ..nn.utils import clip_grad_norm_
from ..tensor import Node, Tensor, graph_nodes
from .problem import Problem, Run

IGNORE = -100


@contextmanager
def fresh_grads(module: Any) -> Iterator[None]:
    """Run with every parameter's `.grad` cleared; put the caller's gradients back afterwards."""
    saved = [(p, p.grad) for p in module.parameters()]
    for p, _ in saved:
        p.grad = None
    try:
        yield
    finally:
        for p, grad in saved:
            p.grad = grad


def step_states(roots: Sequence[Tensor]) -> dict[str, dict[int, Node]]:
    """{'l0': {t: h_t}, 'l0_reverse': {...}, ...}: each step's hidden state (the node named 'h' under a
    step scope), found among the nodes of the graph."""
    found: dict[str, dict[int, Node]] = {}
    for node in graph_nodes(roots):
        step = parse_step_scope(node.scope) if node.name == "h" else None
        if step is not None:
            found.setdefault(step.direction.stream(step.layer), {})[step.t] = node
    return found


def _retain(states: dict[str, dict[int, Node]], steps: int) -> None:
    for stream, by_step in states.items():
        if sorted(by_step) != list(range(steps)):
            raise RuntimeError(
                f"compare: found the hidden states of steps {sorted(by_step)} of {stream}, expected "
                f"0..{steps - 1} (looked for tensors named 'h' under step scopes such as 'lstm.l0.t3')"
            )
        for h in by_step.values():
            h.retain_grad()


def _stacked_grads(states: dict[str, dict[int, Node]]) -> dict[str, np.ndarray]:
    """dL/dh_t stacked over t per stream; a step no gradient reached counts as zero."""
    return {
        stream: np.stack(
            [np.zeros(h.shape, h.dtype) if h.grad is None else h.grad.data for _, h in sorted(by.items())]
        )
        for stream, by in states.items()
    }


def _as_tuple(state: Any) -> tuple[Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def _summed_cross_entropy(logits: Tensor, targets: np.ndarray, valid: np.ndarray | None) -> Tensor:
    """Σ_valid −log softmax(o_t)[y_t]: positions where `valid` is false are ignored."""
    labels = targets if valid is None else np.where(valid, targets, IGNORE)
    flat = logits.reshape(-1, logits.shape[-1])
    return F.cross_entropy(flat, labels.reshape(-1), ignore_index=IGNORE, reduction="sum")


def _valid(lengths: np.ndarray | None, steps: int) -> np.ndarray | None:
    """(T, N) bool: t < L_n."""
    return None if lengths is None else np.arange(steps)[:, None] < lengths[None, :]


def _finals(problem: Problem, finals: Sequence[Tensor]) -> dict[str, np.ndarray]:
    """{'h_n': ..., 'c_n': ...}: the final state's values by name."""
    return {f"{n}_n": f.data for n, f in zip(problem.state_names, finals, strict=True)}


def _recurrent_loss(problem: Problem, output: Tensor, finals: tuple[Tensor, ...]) -> Tensor:
    """L = Σ output ⊙ G + Σ h_n ⊙ G_h (+ Σ c_n ⊙ G_c, ...)."""
    loss = (output * Tensor(problem.upstream["output"])).sum()
    for name, final in zip(problem.state_names, finals, strict=True):
        loss = loss + (final * Tensor(problem.upstream[f"{name}_n"])).sum()
    return loss


def recurrent_loss(problem: Problem) -> float:
    """The loss by the module's forward without a graph (finite differences of the autograd's function)."""
    with no_grad():
        output, state_n = problem.module(
            problem.x, problem.as_hx([Tensor(s) for s in problem.state0]), problem.lengths
        )
        return float(_recurrent_loss(problem, output, _as_tuple(state_n)).item())


def _recurrent(
    problem: Problem,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(forward, dL/d inputs, dL/dh_t per step) of L = Σ output ⊙ G + Σ h_n ⊙ G_h (+ Σ c_n ⊙ G_c)."""
    module, names = problem.module, problem.state_names
    x = Tensor(problem.x, requires_grad=True)
    state0 = [Tensor(s, requires_grad=True) for s in problem.state0]
    output, state_n = module(x, problem.as_hx(state0), lengths=problem.lengths)
    finals = _as_tuple(state_n)
    states = step_states([output, *finals])
    _retain(states, problem.x.shape[1 if problem.layer.batch_first and problem.x.ndim == 3 else 0])
    _recurrent_loss(problem, output, finals).backward()
    forward = {"output": output.data, **_finals(problem, finals)}
    inputs = {"x": x.grad.data, **{f"{n}0": s.grad.data for n, s in zip(names, state0, strict=True)}}
    return forward, inputs, _stacked_grads(states)


def lm_loss(problem: Problem) -> float:
    """The summed cross-entropy by the module's forward without a graph."""
    with no_grad():
        logits, _ = problem.module(
            problem.tokens, problem.as_hx([Tensor(s) for s in problem.state0]), problem.lengths
        )
        valid = _valid(problem.lengths, len(problem.tokens))
        return float(_summed_cross_entropy(logits, problem.targets, valid).item())


def _language_model(problem: Problem) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(forward, dL/dh_t per step) of L = Σ_valid −log softmax(o_t)[y_t] in one backward."""
    tokens, steps = problem.tokens, problem.tokens.shape[0]
    logits, state_n = problem.module(
        tokens, problem.as_hx([Tensor(s) for s in problem.state0]), problem.lengths
    )
    finals = _as_tuple(state_n)
    states = step_states([logits, *finals])
    _retain(states, steps)
    loss = _summed_cross_entropy(logits, problem.targets, _valid(problem.lengths, steps))
    loss.backward()
    return {"loss": loss.data, **_finals(problem, finals)}, _stacked_grads(states)


def _truncated(problem: Problem) -> dict[str, np.ndarray]:
    """k-step chunks; a sequence whose length ends before a chunk keeps its state through it.

    The layers need every length ≥ 1, so such a sequence runs one step whose new state is
    discarded by `where` and whose position is left out of the loss — the manual path's semantics.
    """
    tokens, targets, lengths, k = problem.tokens, problem.targets, problem.lengths, problem.tbptt
    state = tuple(Tensor(s) for s in problem.state0)
    total = 0.0
    for start in range(0, len(tokens), k):
        stop = min(start + k, len(tokens))
        chunk_lengths = None if lengths is None else np.clip(lengths - start, 0, stop - start)
        run_lengths = None if chunk_lengths is None else np.maximum(chunk_lengths, 1)
        logits, new_state = problem.module(tokens[start:stop], problem.as_hx(state), run_lengths)
        new_state = _as_tuple(new_state)
        if chunk_lengths is not None and np.any(chunk_lengths == 0):
            running = (chunk_lengths > 0)[None, :, None]
            new_state = tuple(where(running, new, old) for new, old in zip(new_state, state, strict=True))
        loss = _summed_cross_entropy(logits, targets[start:stop], _valid(chunk_lengths, stop - start))
        loss.backward()
        total += float(loss.item())
        state = tuple(s.detach() for s in new_state)
    return {"loss": np.array(total), **_finals(problem, state)}


def _parameter_grads(module: Any) -> dict[str, np.ndarray]:
    """Copies of the parameters' `.grad` by name (zeros for a parameter no gradient reached)."""
    return {
        name: np.zeros_like(p.data) if p.grad is None else p.grad.data.copy()
        for name, p in module.named_parameters()
    }


def run_autograd(problem: Problem) -> Run:
    """Forward and backward through the module with the Tensor's autograd; see `Run`."""
    module = problem.module
    inputs: dict[str, np.ndarray] = {}
    step_dh: dict[str, np.ndarray] = {}
    with fresh_grads(module):
        if not problem.is_lm:
            forward, inputs, step_dh = _recurrent(problem)
        elif problem.tbptt is None:
            forward, step_dh = _language_model(problem)
        else:
            forward = _truncated(problem)
        params = _parameter_grads(module)
        clipped, total_norm = None, None
        if problem.max_norm is not None:
            total_norm = clip_grad_norm_(module.parameters(), problem.max_norm)
            clipped = _parameter_grads(module)
    return Run(forward, params, inputs, step_dh, {}, clipped, total_norm)
