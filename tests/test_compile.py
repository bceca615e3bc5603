"""Compiled steps (tinygrad_rnn/compile): what is kept across forward passes and what drops it, the
fallback to replay for an op the compiler does not handle, and the generated code's shape.

Every change that could make a kept program stale is made between two forward passes; the compiled
layer must then give what the same layer gives op by op (compile=False), and the test says whether
the kept program was dropped (recorded again) or reused. The generated-cells tests (test_replay.py,
test_pure_steps.py) and the fuzzer's `scan` check the compiled values and gradients themselves.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.compile import CompiledReplayer, StepCache, step_census
from tinygrad_rnn.compile.codegen import generate
from tinygrad_rnn.tensor import graph_nodes

D, H, T, N = 3, 4, 7, 2


def compiled_steps(root: tg.Tensor) -> int:
    return step_census([root])["compiled"]


def run(layer: Any, x: np.ndarray, compile: Any = True) -> tuple[list[np.ndarray], tg.Tensor]:
    """Output, final state and every gradient of (out · G).sum() (G fixed), and the output."""
    layer.compile = compile
    layer.zero_grad()
    xt = tg.Tensor(x, requires_grad=True)
    out, h_n = layer(xt)
    parts = h_n if isinstance(h_n, tuple) else (h_n,)
    g = np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype)
    ((out * tg.Tensor(g)).sum() + sum((p * 0.5).sum() for p in parts)).backward()
    grads = [xt.grad.data] + [p.grad.data for p in layer.parameters() if p.grad is not None]
    return [out.data, *[p.data for p in parts], *grads], out


def agrees_with_op_by_op(layer: Any, x: np.ndarray) -> int:
    """The compiled steps of a forward pass after a change, once checked against op by op."""
    ours, out = run(layer, x)
    count = compiled_steps(out)
    eager, _ = run(layer, x, False)
    for a, b in zip(ours, eager, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    return count


class Scaled(nn.Module):
    """h' = tanh(scale · (x W_xᵀ + h W_hᵀ)); `scale` is Python state the step reads."""

    pure = True

    def __init__(self, input_size: int, hidden_size: int, rng: Any = None) -> None:
        super().__init__()
        self.linear_x, self.linear_h = (
            nn.Linear(input_size, hidden_size, rng=rng),
            nn.Linear(hidden_size, hidden_size, rng=rng),
        )
        self.scale = 1.0
        self.hidden_size = hidden_size

    def forward(self, x_t: tg.Tensor, h: Any = None) -> tg.Tensor:
        if h is None:
            h = tg.zeros(x_t.shape[0], self.hidden_size, dtype=x_t.dtype)
        return ((self.linear_x(x_t) + self.linear_h(h)) * self.scale).tanh()


def lstm() -> nn.LSTM:
    return nn.LSTM(D, H, dtype=np.float64, rng=0)


def scaled() -> nn.Recurrent:
    return nn.Recurrent(Scaled, D, H, rng=0).double()


def replace_weight(layer: Any) -> None:
    owner, name = (
        (layer, "weight_hh_l0") if isinstance(layer, nn.LSTM) else (layer.cell_l0.linear_h, "weight")
    )
    setattr(owner, name, nn.Parameter(getattr(owner, name).data * 1.5))


def replace_data(layer: Any) -> None:
    p = next(iter(layer.parameters()))
    p.data = p.data * 1.5  # a new array in the same Parameter


def optimizer_step(layer: Any) -> None:
    for p in layer.parameters():
        p.grad = tg.Tensor(np.ones(p.shape, p.dtype))
    tg.optim.SGD(layer.parameters(), lr=0.1).step()  # in place: the kept program stays


def set_scale(layer: Any) -> None:
    layer.cell_l0.scale = 0.5


# (layer, change, whether the kept program survives it)
CHANGES = {
    "nothing": (lstm, lambda layer: None, True),
    "optimizer_step": (lstm, optimizer_step, True),
    "parameter_replaced": (lstm, replace_weight, False),
    "data_replaced": (lstm, replace_data, False),
    "float32": (lstm, lambda layer: layer.float(), False),
    "requires_grad_off": (lstm, lambda layer: layer.weight_hh_l0.requires_grad_(False), False),
    "eval": (lstm, lambda layer: layer.eval(), False),
    "cell_nothing": (scaled, lambda layer: None, True),
    "cell_optimizer_step": (scaled, optimizer_step, True),
    "cell_parameter_replaced": (scaled, replace_weight, False),
    "cell_python_state": (scaled, set_scale, False),
    "cell_double_after_float": (scaled, lambda layer: layer.float().double(), False),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_kept_program_is_reused_until_something_it_holds_changes(change):
    make, act, survives = CHANGES[change]
    layer = make()
    x = np.random.default_rng(0).standard_normal((T, N, D))
    # step 0 (from a state without grad) records once; steps 1 and 2 record, then the rest is compiled
    assert agrees_with_op_by_op(layer, x) == T - 3
    # kept: compiled from step 1 on; step 0 records again, the same program as in the last pass
    assert agrees_with_op_by_op(layer, x) == T - 1
    assert agrees_with_op_by_op(layer, x) == T  # and from then on step 0 too
    act(layer)
    assert agrees_with_op_by_op(layer, x.astype(layer.dtype)) == (T if survives else T - 3)


def test_a_kept_program_serves_no_grad_and_another_batch_size_under_their_own_signatures():
    layer, rng = lstm(), np.random.default_rng(2)
    x = rng.standard_normal((T, N, D))
    run(layer, x)
    with tg.no_grad():
        ours, _ = layer(tg.Tensor(x))
        layer.compile = False
        eager, _ = layer(tg.Tensor(x))
    np.testing.assert_allclose(ours.data, eager.data, rtol=1e-12)
    assert agrees_with_op_by_op(layer, rng.standard_normal((T, N + 1, D))) == T - 3
    assert len(layer._step_caches["lstm.l0"].programs) == 3  # grad, no_grad, batch N + 1


class Clipped(Scaled):
    """A cell with an op the compiler does not handle (clip)."""

    def forward(self, x_t: tg.Tensor, h: Any = None) -> tg.Tensor:
        return super().forward(x_t, h).clip(-0.5, 0.5)


def test_an_op_the_compiler_does_not_handle_is_replayed_with_one_warning_naming_it():
    layer = nn.Recurrent(Clipped, D, H, rng=0).double()
    x = np.random.default_rng(0).standard_normal((T, N, D))
    with pytest.warns(RuntimeWarning, match="the op Clip is not compiled") as record:
        ours, out = run(layer, x)
        run(layer, x)
    assert sum("Clip" in str(w.message) for w in record) == 1
    assert compiled_steps(out) == 0
    assert step_census([out])["replayed"] == T - 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        eager, _ = run(layer, x, False)
    for a, b in zip(ours, eager, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_the_generated_code_is_straight_line():
    layer = lstm()
    run(layer, np.random.default_rng(0).standard_normal((T, N, D)))
    program, code = next(iter(layer._step_caches["lstm.l0"].programs.values()))
    assert code.source == generate(program).source
    assert " for " not in code.source and "while" not in code.source
    assert ".forward(" not in code.source and ".backward(" not in code.source
    assert code.transposed == (len(program.signature[2]),)  # weight_hh: transposed once per pass
    assert code.source.count("np.exp(") == 2  # i, f, o: one sigmoid on the gates (forward, forward_into)


def sequence_of(step: Any) -> tuple[tg.Tensor, list[tg.Tensor]]:
    """Eight steps of `step(x_t, h)`: three through a compiled Replayer (recorded: the last two make it
    trusted), the other five as one compiled sequence; x and every state."""
    x = tg.Tensor(np.random.default_rng(4).uniform(0.5, 1.5, (8, 2, H)), requires_grad=True)
    replayer, h, states = CompiledReplayer(step, StepCache()), tg.Tensor(np.ones((2, H))), []
    xs = x.unbind(0)
    for x_t in xs[:3]:
        h = replayer(x_t, h)
        states.append(h)
    states += replayer.rest(list(xs[3:]), h, [f"t{t}" for t in range(3, 8)])
    assert step_census([states[-1]]) == {"replayed": 0, "compiled": 5, "sequences": 1}
    return x, states


def test_a_compiled_sequence_agrees_with_its_steps_and_sees_in_place_changes_of_what_it_reads():
    step = lambda x_t, h: (x_t * h * 0.5).tanh()  # noqa: E731  (x_t and h are read by backward)
    x, states = sequence_of(step)
    (states[-1] * states[5]).sum().backward()
    compiled = x.grad.data.copy()
    x_eager, h = tg.Tensor(x.data, requires_grad=True), tg.Tensor(np.ones((2, H)))
    eager = []
    for x_t in x_eager.unbind(0):
        h = step(x_t, h)
        eager.append(h)
    (eager[-1] * eager[5]).sum().backward()
    np.testing.assert_allclose(compiled, x_eager.grad.data, rtol=1e-12)
    for a, b in zip(states, eager, strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12)
    for change in ("x", "state", "output"):
        x, states = sequence_of(step)
        target = {"x": x, "state": states[4], "output": states[6]}[change]
        target.detach()[...] = 0.5  # the next step multiplies by it; tanh's backward reads its output
        with pytest.raises(RuntimeError, match="changed in place"):
            states[-1].sum().backward()


def test_a_compiled_sequence_frees_its_arrays_unless_retained_and_keeps_retained_gradients():
    x, states = sequence_of(lambda x_t, h: (x_t * h * 0.5).tanh())
    states[5].retain_grad()
    states[-1].sum().backward(retain_graph=True)
    once = x.grad.data.copy()
    retained = states[5].grad.data.copy()
    states[-1].sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * once, rtol=1e-12)
    np.testing.assert_allclose(states[5].grad.data, 2 * retained, rtol=1e-12)
    with pytest.raises(RuntimeError, match="second time"):
        states[-1].sum().backward()
    x_eager, h = tg.Tensor(x.data, requires_grad=True), tg.Tensor(np.ones((2, H)))
    eager = []
    for x_t in x_eager.unbind(0):
        h = (x_t * h * 0.5).tanh()
        eager.append(h)
    eager[5].retain_grad()
    eager[-1].sum().backward()
    np.testing.assert_allclose(retained, eager[5].grad.data, rtol=1e-12)


def test_a_hoisted_cell_draws_and_keeps_gradients_as_the_eager_one():
    """The peephole cell's x W_ihᵀ is hoisted; pictures and retained gradients see every step."""
    from tinygrad_rnn import viz
    from tinygrad_rnn.nn.examples import PeepholeLSTMCell

    layer = nn.Recurrent(PeepholeLSTMCell, D, H, rng=0).double()
    x = np.random.default_rng(0).standard_normal((T, N, D))
    seen = []
    for compile in (False, True, True):  # the second compiled pass compiles from step 1 on
        layer.compile = compile
        layer.zero_grad()
        out, _ = layer(tg.Tensor(x, requires_grad=True))
        loss = (out * out).sum()
        viz.retain_grads(loss)
        loss.backward()
        nodes = [(n.name, n.scope, n.op, n.shape, None if n.grad is None else n.grad.data)
                 for n in graph_nodes([out]) if n.scope is not None]  # fmt: skip
        seen.append(
            (viz.draw(loss, show_grads=True, max_steps=None).source, sorted(nodes, key=lambda e: repr(e[:4])))
        )
    # its first step starts from (zeros,) * 2, one tensor passed twice: never replayed, nor compiled
    assert step_census([out])["compiled"] == T - 1
    for picture, nodes in seen[1:]:
        assert picture == seen[0][0]
        for a, b in zip(seen[0][1], nodes, strict=True):
            assert a[:4] == b[:4] and (a[4] is None) == (b[4] is None)
            if a[4] is not None:
                np.testing.assert_allclose(b[4], a[4], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("limit", [0, 4096], ids=["inline", "at_once"])
def test_a_sequence_agrees_with_op_by_op_with_its_local_derivatives_inline_or_at_once(monkeypatch, limit):
    from tinygrad_rnn.compile import sequence

    monkeypatch.setattr(sequence, "LOCAL_LIMIT", limit)  # 0: every array counts as large
    for make in (lstm, scaled):
        layer = make()
        x = np.random.default_rng(3).standard_normal((T, N, D))
        for expected in (T - 3, T - 1, T):
            assert agrees_with_op_by_op(layer, x) == expected
