"""The notebooks' exercise checkers: each runs the reader's function against an independent reference
(central finite differences, or `compare`'s autograd and single-step checks) and prints where it is wrong.

Every checker prints one verdict and returns the function the rest of the notebook should use: the
reader's when it is right, else the reference solution from `solutions.py` (so a notebook runs top to
bottom with its exercises still blank). `tests/test_notebooks.py` runs each checker on its solution
(it must pass) and on planted wrong answers (each must be caught, at the right place).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import solutions

from tinygrad_rnn import Tensor, compare, nn

Fn = Callable[..., Any]


class Verdict:
    """What a check found: `ok`, and the message it printed (also kept for the tests)."""

    def __init__(self, ok: bool, message: str) -> None:
        self.ok, self.message = ok, message
        print(("✓ " if ok else "✗ ") + message)


def _not_done(name: str) -> str:
    return (
        f"{name} is not written yet (it raises NotImplementedError): fill it in and run this cell "
        f"again. Until then the rest of the notebook uses the reference solution (notebooks/solutions.py)."
    )


def _crashed(name: str, error: Exception) -> str:
    return f"{name} raised {type(error).__name__}: {error}"


def _outcome(verdict: Verdict, mine: Fn, reference: Fn) -> Fn:
    return mine if verdict.ok else reference


# --- notebook 1: central differences -------------------------------------------------------------------


def _cubic(x: np.ndarray) -> float:
    return float(np.sum(np.sin(x) * x**3))


def _cubic_grad(x: np.ndarray) -> np.ndarray:
    return np.cos(x) * x**3 + 3 * np.sin(x) * x**2


def central_difference_verdict(fn: Fn) -> Verdict:
    """Check fn(f, x, eps) → ∂f/∂x (x's shape) on f(x) = Σ sin(x) x³ against the exact derivative."""
    x = np.random.default_rng(7).uniform(0.5, 2.0, (3, 2))
    before, eps = x.copy(), 1e-5
    try:
        got = fn(_cubic, x, eps)
    except NotImplementedError:
        return Verdict(False, _not_done("central_difference"))
    except Exception as error:  # the reader's code: say what it raised, whatever it is
        return Verdict(False, _crashed("central_difference", error))
    if not np.array_equal(x, before):
        return Verdict(False, "central_difference changed x: put each x[i] back after perturbing it")
    got = np.asarray(got, dtype=float)
    if got.shape != x.shape:
        return Verdict(False, f"central_difference returned shape {got.shape}; expected x's shape {x.shape}")
    exact = _cubic_grad(x)
    err = np.abs(got - exact).max() / np.abs(exact).max()
    if err < 1e-8:
        return Verdict(
            True, f"central_difference matches the exact derivative (rel err {err:.1e}, ε = {eps:g})"
        )
    one_sided = np.array(
        [(_cubic(x + eps * e) - _cubic(x)) / eps for e in np.eye(x.size).reshape(x.size, *x.shape)]
    ).reshape(x.shape)
    if any(np.allclose(got, k * one_sided, rtol=1e-6) for k in (1, 0.5)):
        hint = "it looks one-sided, f(x+ε) − f(x), whose error is O(ε); use (f(x+ε) − f(x−ε)) / 2ε"
    elif np.allclose(got, 2 * exact, rtol=1e-6):
        hint = "it is twice the derivative: divide by 2ε, the distance between x−ε and x+ε"
    elif np.allclose(got, exact / 2, rtol=1e-6):
        hint = "it is half the derivative: divide by 2ε, not 4ε"
    else:
        worst = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(got - exact)), x.shape))
        hint = f"the worst element is {worst}: {got[worst]:.6g} where the derivative is {exact[worst]:.6g}"
    return Verdict(False, f"central_difference is off (rel err {err:.1e}): {hint}")


def check_central_difference(fn: Fn) -> Fn:
    return _outcome(central_difference_verdict(fn), fn, solutions.central_difference)


# --- notebooks 2, 3, 6: a step_backward checked by compare ----------------------------------------------


def _single_step(cell: Any, pair: tuple[Fn, Fn], states: tuple[str, ...], gates: str) -> list[str]:
    """The quantities the pair's backward gets wrong on one step of `cell` (rel err > 1e-8), against the
    autograd of that step; a weight stacked by gate (rows G·H) is judged block by block: 'weight_ih[o]'."""
    rng = np.random.default_rng(11)
    N, H = 3, cell.hidden_size
    x = rng.standard_normal((N, cell.weight_ih.shape[1]))
    state = [rng.standard_normal((N, H)) for _ in states]
    dstate = [rng.standard_normal((N, H)) for _ in states]
    x_t = Tensor(x, requires_grad=True)
    state_t = [Tensor(s, requires_grad=True) for s in state]
    new = cell(x_t, tuple(state_t) if len(states) > 1 else state_t[0])
    new = new if isinstance(new, tuple) else (new,)
    cell.zero_grad()
    sum((n * Tensor(d)).sum() for n, d in zip(new, dstate, strict=True)).backward()
    params = {name: p.numpy().copy() for name, p in cell.named_parameters()}
    one = (lambda v: tuple(v)) if len(states) > 1 else (lambda v: v[0])
    _, cache = pair[0](x, one(state), params)
    dx, dprev, dparams = pair[1](one(dstate), cache)
    dprev = dprev if len(states) > 1 else (dprev,)
    expected = {"dx": (dx, x_t.grad.numpy())}
    expected |= {f"d{s}_prev": (d, t.grad.numpy()) for s, d, t in zip(states, dprev, state_t, strict=True)}
    expected |= {name: (dparams[name], p.grad.numpy()) for name, p in cell.named_parameters()}
    wrong = []
    for name, (got, want) in expected.items():
        got = np.asarray(got)
        if got.shape != want.shape:
            wrong.append(f"{name} (shape {got.shape}, expected {want.shape})")
            continue
        parts = [("", got, want)]
        if gates and want.shape[0] == len(gates) * H:
            parts = [
                (f"[{g}]", got[k * H : (k + 1) * H], want[k * H : (k + 1) * H]) for k, g in enumerate(gates)
            ]
        scale = max(np.abs(want).max(), 1e-12)
        wrong += [name + label for label, a, b in parts if np.abs(a - b).max() / scale > 1e-8]
    return wrong


def _step_verdict(
    name: str,
    layer: Any,
    x: np.ndarray,
    pair: tuple[Fn, Fn],
    states: tuple[str, ...],
    gates: str = "",
    lengths: Any = None,
) -> Verdict:
    """The pair on one step of the layer's first cell (what is wrong), then over the whole layer with
    `compare` (where it first shows, in the order BPTT visits the steps)."""
    try:
        wrong = _single_step(layer.cell_l0, pair, states, gates)
        report = compare(layer, x, lengths=lengths, manual=pair)
    except NotImplementedError:
        return Verdict(False, _not_done(name))
    except Exception as error:  # shapes, keys, typos: say what and where
        return Verdict(False, _crashed(name, error))
    if report.ok and not wrong:
        return Verdict(True, f"{name} agrees with the autograd ({report.verdict().split(' (')[0][4:]})")
    found = f"On one step, wrong: {', '.join(wrong)}" if wrong else "Every single step is right"
    where = report.divergence
    if where is not None:
        at = f"{where.stream} t = {where.step}" if where.step is not None else "the totals"
        found += f"; over the sequence, first wrong at {at}: {where.quantity} (rel err {where.rel:.1e})"
    return Verdict(False, f"{name} is wrong. {found}")


def rnn_step_verdict(step_forward: Fn, step_backward: Fn) -> Verdict:
    """Notebook 2: the tanh RNN cell's step_backward, on nn.Recurrent(nn.RNNCell), 2 layers, 6 steps."""
    layer = nn.Recurrent(nn.RNNCell, 3, 4, num_layers=2, dtype="float64", rng=0)
    x = np.random.default_rng(1).standard_normal((6, 2, 3))
    return _step_verdict("rnn_step_backward", layer, x, (step_forward, step_backward), ("h",))


def check_rnn_step_backward(step_forward: Fn, step_backward: Fn) -> Fn:
    verdict = rnn_step_verdict(step_forward, step_backward)
    return _outcome(verdict, step_backward, solutions.rnn_step_backward)


def lstm_step_verdict(step_forward: Fn, step_backward: Fn) -> Verdict:
    """Notebook 3: the LSTM cell's step_backward, on nn.Recurrent(nn.LSTMCell), 2 layers, 5 steps."""
    layer = nn.Recurrent(nn.LSTMCell, 3, 4, num_layers=2, dtype="float64", rng=0)
    x = np.random.default_rng(1).standard_normal((5, 2, 3))
    return _step_verdict("lstm_step_backward", layer, x, (step_forward, step_backward), ("h", "c"), "ifgo")


def check_lstm_step_backward(step_forward: Fn, step_backward: Fn) -> Fn:
    verdict = lstm_step_verdict(step_forward, step_backward)
    return _outcome(verdict, step_backward, solutions.lstm_step_backward)


def peephole_step_verdict(cell: type, pair: tuple[Fn, Fn], name: str = "step_backward") -> Verdict:
    """Notebook 6: a peephole LSTM's step_backward, on 2 layers × 2 directions with padded lengths."""
    layer = nn.Recurrent(cell, 3, 4, num_layers=2, bidirectional=True, rng=0)
    x = np.random.default_rng(3).standard_normal((5, 3, 3))
    return _step_verdict(name, layer, x, pair, ("h", "c"), "ifgo", lengths=[5, 2, 4])


def check_peephole_step_backward(cell: type, pair: tuple[Fn, Fn], name: str = "step_backward") -> Fn:
    verdict = peephole_step_verdict(cell, pair, name)
    return _outcome(verdict, pair[1], solutions.peephole_step_backward)
