"""What backward reads is said once, by forward's `ctx.save_for_backward(...)`, and that is checked.

The engine derives each call's `saved_inputs` / `saves_output` from the very arrays forward saved
(Function.apply). Two things could still go wrong, and each row of the op table is tried for both:
an op keeps an input or its output where the derivation does not look (on ctx, or as a view), and
an in-place change of an input or of the output, made before backward, changes the gradient
without backward refusing.
"""

from typing import Any

import numpy as np
import pytest
from op_table import ROWS, Row

import tinygrad_rnn as tg
from tinygrad_rnn.context import current_tape
from tinygrad_rnn.replay import Tape


def _leaves(row: Row) -> list[tg.Tensor]:
    rng = np.random.default_rng(0)
    return [tg.Tensor(make(rng), requires_grad=True, dtype=np.float64) for make in row.inputs]


def _root(out: Any) -> tg.Tensor:
    """One tensor of every output, through ops that save nothing (so only the row's ops can refuse)."""
    return tg.cat([o.reshape(-1) for o in out]) if isinstance(out, tuple) else out


def _arrays(value: Any) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, tuple | list):
        return [a for v in value for a in _arrays(v)]
    return []


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_every_op_keeps_its_inputs_and_output_only_through_save_for_backward(row: Row) -> None:
    tape = Tape()
    token = current_tape.set(tape)
    try:
        row.tiny(*_leaves(row))
    finally:
        current_tape.reset(token)
    for function, inputs, _, result, ctx in tape.calls:
        if ctx is None:
            continue
        own = [t.data for t in inputs] + [t.data for t in (result if function.multi_output else (result,))]
        saved = _arrays(ctx.saved)
        elsewhere = _arrays(
            [v for k, v in vars(ctx).items() if k not in ("saved", "saved_inputs", "saves_output")]
        )
        for kept in saved:
            shared = [a for a in own if np.shares_memory(kept, a)]
            assert all(a is kept for a in shared), (
                f"{function.__name__} saved a view of an input or its output"
            )
        for kept in elsewhere:
            assert not any(np.shares_memory(kept, a) for a in own), (
                f"{function.__name__} keeps an input or its output on ctx, outside save_for_backward"
            )


GRADIENT_ROWS = [r for r in ROWS if r.kind != "comparison"]


@pytest.mark.parametrize("row", GRADIENT_ROWS, ids=[r.name for r in GRADIENT_ROWS])
def test_an_in_place_change_before_backward_is_refused_or_does_not_matter(row: Row) -> None:
    leaves = _leaves(row)
    out = row.tiny(*leaves)
    root = _root(out)
    seed = np.random.default_rng(1).standard_normal(root.shape).astype(root.dtype)
    root.backward(seed, retain_graph=True)
    expected = [np.array(t.grad.data) for t in leaves]
    for what in [*range(len(leaves)), "output"]:
        leaves = _leaves(row)
        out = row.tiny(*leaves)
        target = (out[0] if isinstance(out, tuple) else out) if what == "output" else leaves[what]
        changed = target.detach()
        changed[...] = changed.data * 1.5 + 0.25
        try:
            _root(out).backward(seed)
        except RuntimeError as error:
            assert "changed in place" in str(error), error
            continue
        for i, t in enumerate(leaves):
            got = np.zeros(t.shape) if t.grad is None else t.grad.data
            np.testing.assert_allclose(
                got, expected[i], rtol=1e-12, atol=1e-14,
                err_msg=f"{row.name}: {what} changed in place moved input {i}'s gradient without a refusal",
            )  # fmt: skip


def test_saved_values_are_derived_per_call() -> None:
    class SecondOnly(tg.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(b, np.sign(a))  # b itself; a only through an array of its own
            return a * b

        @staticmethod
        def backward(ctx, grad):
            b, sign = ctx.saved
            return grad * b, grad * sign

    a, b = (tg.Tensor(np.array([1.0, -2.0]), requires_grad=True) for _ in range(2))
    y = SecondOnly.apply(a, b)
    assert (y._ctx.saved_inputs, y._ctx.saves_output) == ((1,), False)
    a.detach()[0] = 5.0
    y.backward(np.ones(2), retain_graph=True)  # a is not read
    b.detach()[0] = 5.0
    with pytest.raises(RuntimeError, match=r"input 1 of SecondOnly was changed in place"):
        y.backward(np.ones(2))


def test_a_0d_output_saved_as_a_numpy_scalar_is_still_the_output() -> None:
    x = tg.Tensor(np.array(0.5), requires_grad=True)
    y = x.tanh()  # np.tanh of a 0-d array gives a numpy scalar, saved and returned
    assert y._ctx.saves_output
    y.detach()[...] = 0.0
    with pytest.raises(RuntimeError, match="the output .* of Tanh was changed in place"):
        y.backward()


@pytest.mark.parametrize("declared", ["saved_inputs = ()", "saves_output = True"])
def test_declaring_what_is_saved_is_refused(declared: str) -> None:
    with pytest.raises(TypeError, match="derived from forward's ctx.save_for_backward"):
        exec(f"class Declared(tg.Function):\n    {declared}\n", {"tg": tg})
