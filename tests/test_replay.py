"""Replayed steps (tinygrad_rnn/replay.py) against the same steps run op by op, and against PyTorch.

Generated cells: hypothesis writes random recurrent cells (elementwise ops, products with weights,
views, index arrays, masks, reductions that broadcast back, softmax, chunk and cat; a state of one or
two tensors), runs each through nn.Recurrent with and without replay and as a plain loop in torch,
and compares outputs, final states and every gradient in float64. Then the built-in layers over their
options, the cells replay must refuse, the engine's checks on a replayed graph, and the pictures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_table import BY_NAME, of_kind

import tinygrad_rnn as tg
from tinygrad_rnn import nn, viz
from tinygrad_rnn.compile import CompiledReplayer, StepCache, step_census
from tinygrad_rnn.nn import functional as F
from tinygrad_rnn.replay import MIN_OPS, Replayer
from tinygrad_rnn.tensor import graph_nodes

torch = pytest.importorskip("torch")

D, H = 3, 4
RTOL, ATOL = 1e-10, 1e-12


# --- generated cells ---------------------------------------------------------------------------------

# each op: (name, arity); operands are earlier values of the step, all (N, H). The op table's unary rows
# defined on every value (not exp, which "exp_tanh" keeps bounded), then the step's own compositions.
TABLE_UNARY = [row.name for row in of_kind("unary") if row.domain != "positive" and row.name != "exp"]
UNARY = TABLE_UNARY + ["half", "exp_tanh", "centre", "softmax", "swap", "flip", "transpose2", "reshape2",
                       "mask", "linear"]  # fmt: skip
BINARY = ["add", "sub", "mul", "ratio", "maximum"]
TERNARY = ["addcmul", "lerp"]
ARITY = {**dict.fromkeys(UNARY, 1), **dict.fromkeys(BINARY, 2), **dict.fromkeys(TERNARY, 3)}


class Lib:
    """The few calls that differ between tinygrad_rnn and torch."""

    def __init__(self, lib: Any, functional: Any, array: Any) -> None:
        self.lib, self.F, self.array = lib, functional, array


TG = Lib(tg, F, lambda a: a)
TORCH = Lib(torch, torch.nn.functional, torch.from_numpy)


def apply(lib: Lib, op: str, args: list[Any], weights: list[Any], k: int, n: int) -> Any:
    a = args[0]
    mask = np.arange(n * H).reshape(n, H) % 3 == 0
    order = np.array([2, 0, 3, 1])
    if op in TABLE_UNARY:
        row = BY_NAME[op]
        return (row.torch_call if lib is TORCH else row.tiny)(a)
    table = {
        "half": lambda: a * 0.5,
        "exp_tanh": lambda: a.tanh().exp(),
        "centre": lambda: a - a.mean(dim=1, keepdim=True),
        "softmax": lambda: a.softmax(dim=1),
        "swap": lambda: lib.lib.cat(list(reversed(a.chunk(2, 1))), dim=1),
        "flip": lambda: a[:, lib.array(order)],
        "transpose2": lambda: a.T.T,
        "reshape2": lambda: a.reshape(-1).reshape(n, H),
        "mask": lambda: lib.lib.where(lib.array(mask), a, a * 0.25),
        "linear": lambda: lib.F.linear(a, weights[k % len(weights)]),
        "add": lambda: a + args[1],
        "sub": lambda: a - args[1],
        "mul": lambda: a * args[1],
        "ratio": lambda: a / (1.5 + args[1] * args[1]),
        "maximum": lambda: a.maximum(args[1]),
        "addcmul": lambda: a.addcmul(args[1], args[2]),
        "lerp": lambda: a.lerp(args[1], args[2].sigmoid()),
    }
    return table[op]()


def cell_step(lib: Lib, program: list[tuple[str, tuple[int, ...]]], two_parts: bool, p: list[Any],
              x_t: Any, state: Any) -> Any:  # fmt: skip
    """One step: values start as x_t W_xᵀ + b, h (and c); the program adds to them; the new state
    is tanh(last value + x_t W_xᵀ + b) (and c' = ½c + ½ tanh of the value before), bounded as a state
    should be, and always reached by the input and the input weights."""
    n = x_t.shape[0]
    h, c = state if two_parts else (state, None)
    values = [lib.F.linear(x_t, p[0], p[1]), h] + ([c] if two_parts else [])
    for k, (op, picks) in enumerate(program):
        args = [values[i % len(values)] for i in picks]
        values.append(apply(lib, op, args, p[2:], k, n))
    h_new = (values[-1] + values[0]).tanh()
    if not two_parts:
        return h_new
    return h_new, c * 0.5 + values[-2].tanh() * 0.5


class GeneratedCell(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, program: Any = (), two_parts: bool = False,
                 rng: Any = None) -> None:  # fmt: skip
        super().__init__()
        self.program, self.two_parts, self.hidden_size = program, two_parts, hidden_size
        draw = np.random.default_rng(rng)
        self.weight_x = nn.Parameter(draw.uniform(-0.5, 0.5, (hidden_size, input_size)))
        self.bias = nn.Parameter(draw.uniform(-0.5, 0.5, (hidden_size,)))
        self.weight_a = nn.Parameter(draw.uniform(-0.5, 0.5, (hidden_size, hidden_size)))
        self.weight_b = nn.Parameter(draw.uniform(-0.5, 0.5, (hidden_size, hidden_size)))

    def forward(self, x_t: tg.Tensor, state: Any = None) -> Any:
        if state is None:
            zeros = tg.zeros(x_t.shape[0], self.hidden_size, dtype=np.float64)
            state = (zeros, zeros) if self.two_parts else zeros
        p = [self.weight_x, self.bias, self.weight_a, self.weight_b]
        return cell_step(TG, self.program, self.two_parts, p, x_t, state)


programs = st.lists(
    st.sampled_from(sorted(ARITY)).flatmap(
        lambda op: st.tuples(st.just(op), st.tuples(*[st.integers(0, 30)] * ARITY[op]))
    ),
    min_size=1,
    max_size=10,
)


def grad_of(p: Any) -> np.ndarray:
    """A parameter's gradient, zeros when none reached it (a weight the program never used)."""
    if p.grad is None:
        return np.zeros(p.shape)
    return p.grad.data.copy() if isinstance(p, tg.Tensor) else p.grad.numpy().copy()


def run_tiny(layer: nn.Recurrent, x: np.ndarray, g: np.ndarray, compile: Any) -> list[np.ndarray]:
    layer.compile = compile
    layer.zero_grad()
    xt = tg.Tensor(x, requires_grad=True)
    out, h_n = layer(xt)
    parts = h_n if isinstance(h_n, tuple) else (h_n,)
    loss = (out * tg.Tensor(g)).sum() + sum((part * 0.5).sum() for part in parts)
    loss.backward()
    return [out.data, *[p.data for p in parts], grad_of(xt), *[grad_of(p) for p in layer.parameters()]]


def run_torch(layer: nn.Recurrent, x: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    cell = layer.cell_l0
    p = [torch.tensor(q.data, requires_grad=True) for q in cell.parameters()]
    xt = torch.tensor(x, requires_grad=True)
    n = x.shape[1]
    zeros = torch.zeros(n, H, dtype=torch.float64)
    state = (zeros, zeros) if cell.two_parts else zeros
    outputs = []
    for t in range(x.shape[0]):
        state = cell_step(TORCH, cell.program, cell.two_parts, p, xt[t], state)
        outputs.append(state[0] if cell.two_parts else state)
    out = torch.stack(outputs)
    parts = state if cell.two_parts else (state,)
    loss = (out * torch.from_numpy(g)).sum() + sum((part * 0.5).sum() for part in parts)
    loss.backward()
    finals = [q.detach().numpy()[None] for q in parts]  # (1, N, H) as h_n
    return [out.detach().numpy(), *finals, grad_of(xt), *[grad_of(q) for q in p]]


def replayed_steps(root: tg.Tensor, kind: str = "replayed") -> int:
    """The replayed (or "compiled") steps in the graph."""
    return step_census([root])[kind]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(program=programs, two_parts=st.booleans(), steps=st.integers(1, 8), batch=st.integers(1, 3))
def test_generated_cells_replay_and_compile_as_they_run_op_by_op_and_as_torch_computes(
    program, two_parts, steps, batch
):
    layer = nn.Recurrent(GeneratedCell, D, H, program=program, two_parts=two_parts, rng=0)
    rng = np.random.default_rng(len(program))
    x, g = rng.standard_normal((steps, batch, D)), rng.standard_normal((steps, batch, H))
    eager, reference = run_tiny(layer, x, g, False), run_torch(layer, x, g)
    # replayed; compiled twice: recorded in the first forward pass, kept for the second
    for compile in ("replay", True, True):
        ours = run_tiny(layer, x, g, compile)
        for a, b, c in zip(eager, ours, reference, strict=True):
            np.testing.assert_allclose(b, a, rtol=RTOL, atol=ATOL)
            np.testing.assert_allclose(b, c, rtol=1e-9, atol=1e-10)
    refused = any(op == "mask" for op, _ in program)  # its mask is an array from outside the step
    for compile, kind in (("replay", "replayed"), (True, "compiled")):
        layer.compile = compile
        out, _ = layer(tg.Tensor(x))
        # steps 0-2 record and the rest replay; one more records when the state needs grad only from step 2
        assert replayed_steps(out, kind) >= (0 if refused else max(0, steps - 4))


# --- the built-in layers ------------------------------------------------------------------------------

LAYERS = {
    "rnn_tanh": lambda **o: nn.RNN(D, H, **o),
    "rnn_relu": lambda **o: nn.RNN(D, H, nonlinearity="relu", **o),
    "lstm": lambda **o: nn.LSTM(D, H, **o),
    "lstm_proj": lambda **o: nn.LSTM(D, H, proj_size=2, **o),
    "gru": lambda **o: nn.GRU(D, H, **o),
    "gru_original": lambda **o: nn.GRU(D, H, reset_after=False, **o),
}
OPTIONS = [
    {},
    {"num_layers": 2, "bidirectional": True},
    {"batch_first": True, "bias": False},
]


def run_layer(
    layer: Any, replay: bool, lengths: Any, hx: bool, retain: bool = False
) -> tuple[list[np.ndarray], Any]:
    layer.replay = replay
    layer.zero_grad()
    rng = np.random.default_rng(3)
    steps, batch = 9, 3
    x = tg.Tensor(
        rng.standard_normal((batch, steps, D) if layer.batch_first else (steps, batch, D)), requires_grad=True
    )
    rows = layer.num_layers * layer.num_directions
    states = [tg.Tensor(rng.standard_normal((rows, batch, layer._state_size(k))), requires_grad=True)
              for k in range(2 if layer.mode == "LSTM" else 1)]  # fmt: skip
    given = (tuple(states) if layer.mode == "LSTM" else states[0]) if hx else None
    out, h_n = layer(x, given, lengths)
    finals = h_n if isinstance(h_n, tuple) else (h_n,)
    loss = (out * tg.Tensor(rng.standard_normal(out.shape))).sum() + sum((f * f).sum() for f in finals)
    if retain:
        viz.retain_grads(loss)
    loss.backward()
    grads = [x.grad.data] + ([s.grad.data for s in states] if hx else [])
    return [out.data, *[f.data for f in finals], *grads, *[p.grad.data for p in layer.parameters()]], out


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "deep_bidirectional", "batch_first_no_bias"])
@pytest.mark.parametrize("lengths", [None, [9, 4, 7]], ids=["full", "lengths"])
def test_builtin_layers_replay_and_compile_as_they_run_op_by_op(kind, options, lengths):
    layer = LAYERS[kind](dtype=np.float64, rng=0, **options)
    eager, _ = run_layer(layer, False, lengths, hx=True)
    directions = layer.num_layers * layer.num_directions
    kept = kind != "gru_original"  # its steps capture views of weight_hh made per forward pass
    # replayed; compiled: recorded, then kept from the first step of the next forward pass on
    for compile, kind_of_step, pass_ in (
        ("replay", "replayed", 0),
        (True, "compiled", 0),
        (True, "compiled", 1),
    ):
        ours, out = run_layer(layer, compile, lengths, hx=True)
        for a, b in zip(eager, ours, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
        # one product and an activation: fewer than MIN_OPS, run op by op, but compiled
        short = kind.startswith("rnn") and compile == "replay"
        steps = 9 if pass_ and kept else 9 - 3
        assert replayed_steps(out, kind_of_step) == (0 if short else directions * steps)


# --- cells replay must refuse ---------------------------------------------------------------------------


class Branching(nn.Module):
    """Takes another path when the state's sum is negative: Python reads a value."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size + hidden_size, hidden_size, dtype=np.float64, rng=0)
        self.hidden_size = hidden_size

    def zeros_if_none(self, x_t: tg.Tensor, h: Any) -> tg.Tensor:
        return tg.Tensor(np.zeros((x_t.shape[0], self.hidden_size))) if h is None else h

    def forward(self, x_t: tg.Tensor, h: Any = None) -> tg.Tensor:
        h = self.zeros_if_none(x_t, h)
        a = self.linear(tg.cat([x_t, h], dim=1))
        return a.tanh() if float(h.sum()) >= 0 else a.sigmoid()


class DropoutInside(Branching):
    """Draws a new dropout mask at every step (from the layer's generator)."""

    def __init__(self, input_size: int, hidden_size: int, rng: Any = None) -> None:
        super().__init__(input_size, hidden_size)
        self.rng = rng

    def forward(self, x_t: tg.Tensor, h: Any = None) -> tg.Tensor:
        h = self.zeros_if_none(x_t, h)
        return F.dropout(self.linear(tg.cat([x_t, h], dim=1)), 0.5, rng=self.rng).tanh()


class Counting(Branching):
    """Decays its input by a factor that changes with a Python counter."""

    def forward(self, x_t: tg.Tensor, h: Any = None) -> tg.Tensor:
        h = self.zeros_if_none(x_t, h)
        self.calls = getattr(self, "calls", 0) + 1
        return (self.linear(tg.cat([x_t, h], dim=1)) * 0.9**self.calls).tanh()


class Detaching(Branching):
    """Stops the gradient through h every step (truncation inside the cell)."""

    def forward(self, x_t: tg.Tensor, h: Any = None) -> tg.Tensor:
        h = self.zeros_if_none(x_t, None if h is None else h.detach())
        return self.linear(tg.cat([x_t, h], dim=1)).tanh()


@pytest.mark.parametrize("cell", [Branching, DropoutInside, Counting, Detaching])
def test_cells_whose_steps_differ_run_op_by_op_with_the_same_results(cell):
    kwargs = {"rng": None} if cell is DropoutInside else {}
    rng = np.random.default_rng(5)
    x, g = rng.standard_normal((8, 2, D)), rng.standard_normal((8, 2, H))
    results = []
    for replay in (False, True):
        if cell is DropoutInside:
            kwargs["rng"] = np.random.default_rng(9)  # the same masks in both runs
        layer = nn.Recurrent(cell, D, H, replay=replay, **kwargs)
        xt = tg.Tensor(x, requires_grad=True)
        out, _ = layer(xt)
        (out * tg.Tensor(g)).sum().backward()
        assert replayed_steps(out) == 0
        results.append([out.data, xt.grad.data, *[p.grad.data for p in layer.parameters()]])
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


def test_replay_false_runs_every_step_op_by_op():
    out, _ = nn.Recurrent(nn.GRUCell, D, H, replay=False, rng=0)(tg.Tensor(np.ones((6, 1, D), np.float32)))
    assert replayed_steps(out) == 0
    with pytest.raises(TypeError, match="replay"):
        nn.Recurrent(nn.GRUCell, D, H, replay="yes")


# --- the engine's checks on a replayed graph -----------------------------------------------------------


def replayed_gru(compile: Any = True) -> tuple[nn.GRU, tg.Tensor]:
    layer = nn.GRU(D, H, dtype=np.float64, rng=0, compile=compile)
    out, _ = layer(tg.Tensor(np.random.default_rng(0).standard_normal((8, 2, D))))
    assert replayed_steps(out) + replayed_steps(out, "compiled") == 5
    return layer, out


REPLAYERS = {"replayed": Replayer, "compiled": lambda step: CompiledReplayer(step, StepCache())}


def replayed_loop(step: Any, make: Any = Replayer) -> tuple[tg.Tensor, list[tg.Tensor]]:
    """Six steps of `step(x_t, h)` through a Replayer (`make(step)`), as a layer runs them: x and the
    states."""
    x = tg.Tensor(np.random.default_rng(4).uniform(0.5, 1.5, (6, 2, H)), requires_grad=True)
    replayer, h, states = make(step), tg.Tensor(np.ones((2, H))), []
    for x_t in x.unbind(0):
        h = replayer(x_t, h)
        states.append(h)
    assert replayed_steps(h) + replayed_steps(h, "compiled") == 3
    return x, states


def test_a_step_of_fewer_than_min_ops_runs_op_by_op():
    replayer, h = Replayer(lambda x_t, h: (x_t + h).tanh()), tg.Tensor(np.ones((2, H)), requires_grad=True)
    for _ in range(6):
        h = replayer(tg.Tensor(np.ones((2, H))), h)
    assert replayed_steps(h) == 0 and replayer.eager and len(replayer.program.ops) == 2 < MIN_OPS


@pytest.mark.parametrize("make", list(REPLAYERS))
def test_changing_a_replayed_steps_saved_output_in_place_makes_backward_raise(make):
    _, states = replayed_loop(lambda x_t, h: ((x_t + h) * 0.5).tanh(), REPLAYERS[make])
    states[4].detach()[0, 0] = 5.0  # the values tanh's backward reads
    with pytest.raises(RuntimeError, match="the output .* of (Replayed|Compiled)Step"):
        states[-1].sum().backward()


@pytest.mark.parametrize("make", list(REPLAYERS))
def test_changing_what_a_replayed_step_reads_makes_backward_raise_and_nothing_else_does(make):
    x, states = replayed_loop(lambda x_t, h: ((x_t + h) * 0.5).tanh(), REPLAYERS[make])
    x.detach()[...] = 0.0  # x_t is added, never read by backward: as in eager, no error
    states[-1].sum().backward()
    x, states = replayed_loop(lambda x_t, h: (x_t * h * 0.5).tanh(), REPLAYERS[make])
    x.detach()[...] = 0.0  # x_t is multiplied: backward reads it
    with pytest.raises(RuntimeError, match="input 0 of (Replayed|Compiled)Step"):
        states[-1].sum().backward()


@pytest.mark.parametrize("compile", [True, "replay"])
def test_an_optimizer_step_before_backward_makes_a_replayed_graph_raise(compile):
    layer, out = replayed_gru(compile)
    layer.weight_hh_l0.grad = tg.Tensor(np.ones(layer.weight_hh_l0.shape))
    tg.optim.SGD([layer.weight_hh_l0], lr=0.1).step()
    with pytest.raises(RuntimeError, match="changed in place"):
        out.sum().backward()


@pytest.mark.parametrize("compile", [True, "replay"])
def test_a_replayed_graph_goes_backward_twice_only_when_retained(compile):
    layer, out = replayed_gru(compile)
    out.sum().backward(retain_graph=True)
    once = layer.weight_hh_l0.grad.data.copy()
    out.sum().backward()
    np.testing.assert_allclose(layer.weight_hh_l0.grad.data, 2 * once, rtol=1e-12)
    with pytest.raises(RuntimeError, match="second time"):
        out.sum().backward()


@pytest.mark.parametrize("compile", [True, "replay"])
def test_a_replayed_forward_under_no_grad_gives_the_same_values(compile):
    layer = nn.LSTM(D, H, dtype=np.float64, rng=0, compile=compile)
    x = tg.Tensor(np.random.default_rng(1).standard_normal((12, 2, D)))
    with tg.no_grad():
        replayed, _ = layer(x)
        layer.replay = False
        eager, _ = layer(x)
    assert not replayed.requires_grad
    np.testing.assert_allclose(replayed.data, eager.data, rtol=1e-13)


@pytest.mark.parametrize("compile", [True, "replay"])
def test_ten_thousand_replayed_steps_backpropagate(compile):
    layer = nn.GRU(1, 2, dtype=np.float64, rng=0, compile=compile)
    x = tg.Tensor(np.random.default_rng(2).standard_normal((10_000, 1, 1)), requires_grad=True)
    out, _ = layer(x)
    out.sum().backward()
    assert replayed_steps(out) + replayed_steps(out, "compiled") == 10_000 - 3
    assert np.isfinite(x.grad.data).all() and np.abs(x.grad.data[0]).sum() > 0


# --- pictures and reports see inside a replayed step ----------------------------------------------------


@pytest.mark.parametrize("kind", ["lstm", "gru", "lstm_proj"])
def test_a_replayed_layer_draws_and_keeps_gradients_as_the_eager_one(kind):
    pictures, gates = [], []
    for replay in (False, "replay", True):
        layer = LAYERS[kind](dtype=np.float64, rng=0)
        _, out = run_layer(layer, replay, None, hx=False, retain=True)
        root = out.sum()
        pictures.append(viz.draw(root, show_grads=True, max_steps=None).source)
        gates.append([(n.name, n.scope, n.op, n.shape, None if n.grad is None else n.grad.data)
                      for n in graph_nodes([out]) if n.scope is not None])  # fmt: skip
    assert pictures[0] == pictures[1] == pictures[2]
    for ours in gates[1:]:
        assert len(gates[0]) == len(ours) > 9 * 3
        for a, b in zip(sorted(gates[0], key=repr_key), sorted(ours, key=repr_key), strict=True):
            assert a[:4] == b[:4]
            assert (a[4] is None) == (b[4] is None)
            if a[4] is not None:
                np.testing.assert_allclose(b[4], a[4], rtol=1e-12, atol=1e-14)


def repr_key(entry: tuple) -> str:
    return repr(entry[:4])


def test_a_state_made_of_views_runs_op_by_op():
    def step(x_t, state):
        h, c = state
        return tg.cat([x_t + h, c * 0.5], dim=1).tanh().chunk(2, 1)  # (h, c): views of one array

    x = tg.Tensor(np.ones((6, 2, H)), requires_grad=True)
    replayer, state = Replayer(step), (tg.Tensor(np.ones((2, H))), tg.Tensor(np.ones((2, H))))
    for x_t in x.unbind(0):
        state = replayer(x_t, state)
    assert replayed_steps(state[0]) == 0 and replayer.program is None
