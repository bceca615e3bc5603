"""Replay only where a step is pure: generated impure cells, initial states under padding, dtypes.

The fast path (replay.py) is a claim that a replayed step computes what the op-by-op step computes.
These tests try to break that claim: hypothesis writes cells with the impurities researchers' cells
have (a mask from a comparison, a random mask or a coin drawn per step, a Python counter, a branch on
`.data`, a side effect, an integer state part, a non-zero initial state of the cell's own), declared
pure or not, and every one must equal the op-by-op run and a plain torch loop in float64, with the
cell's Python run as often as op by op wherever its Python matters.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.compile import step_census
from tinygrad_rnn.errors import DTypeError

torch = pytest.importorskip("torch")

D, H = 3, 4
RTOL, ATOL = 1e-10, 1e-12
# impurities a step may have; those in PER_STEP need the cell's Python at every step
IMPURITIES = ["threshold", "dropout", "coin", "counter", "data_read", "side_effect", "int_part", "own_start"]
PER_STEP = {"dropout", "coin", "counter", "data_read", "side_effect"}
CALLS: Counter[int] = Counter()  # forward calls per cell, kept outside the cells (no guard sees it)


class ImpureCell(nn.Module):
    """pre = x Wᵀ + h Uᵀ + b, changed by each impurity chosen, h' = tanh(pre) (+ 0.01·count)."""

    def __init__(self, input_size: int, hidden_size: int, *, impurities: tuple[str, ...] = (),
                 period: int = 2, seed: int = 0, rng: Any = None) -> None:  # fmt: skip
        super().__init__()
        draw = np.random.default_rng(rng)
        self.impurities, self.period, self.hidden_size = impurities, period, hidden_size
        self.weight_ih = nn.Parameter(draw.uniform(-0.8, 0.8, (hidden_size, input_size)))
        self.weight_hh = nn.Parameter(draw.uniform(-0.5, 0.5, (hidden_size, hidden_size)))
        self.bias = nn.Parameter(draw.uniform(-0.5, 0.5, (hidden_size,)))
        self.h0 = nn.Parameter(draw.uniform(-0.9, 0.9, (hidden_size,)))
        self.draws = np.random.default_rng(seed)  # per-step masks and coins
        self.t = 0
        self.seen: list[Any] = []

    def forward(self, x: tg.Tensor, state: Any = None) -> Any:
        CALLS[id(self)] += 1
        n = x.shape[0]
        return impure_step(TG, self, self.parameters_list(), x, state, n)

    def parameters_list(self) -> list[Any]:
        return [self.weight_ih, self.weight_hh, self.bias, self.h0]


class Lib:
    def __init__(self, name: str) -> None:
        self.name = name

    def zeros(self, n: int, dtype: str = "float") -> Any:
        if self.name == "tg":
            return tg.zeros(n, H, dtype=np.float64 if dtype == "float" else np.int64)
        return torch.zeros(n, H, dtype=torch.float64 if dtype == "float" else torch.int64)

    def ones(self, n: int) -> Any:
        return tg.ones(n, H, dtype=np.float64) if self.name == "tg" else torch.ones(n, H, dtype=torch.float64)

    def where(self, c: Any, a: Any, b: Any) -> Any:
        return tg.where(c, a, b) if self.name == "tg" else torch.where(c, a, b)

    def mask(self, keep: np.ndarray) -> Any:
        return keep if self.name == "tg" else torch.from_numpy(keep)

    def read(self, h: Any) -> float:
        return float(h.data.sum()) if self.name == "tg" else float(h.detach().sum())


TG, TORCH = Lib("tg"), Lib("torch")


def impure_step(lib: Lib, cell: Any, p: list[Any], x: Any, state: Any, n: int) -> Any:
    """One step of an ImpureCell in either library; `cell` holds the Python state (t, draws, seen)."""
    w_ih, w_hh, b, h0 = p
    int_part = "int_part" in cell.impurities
    if state is None:
        h = h0 * lib.ones(n) if "own_start" in cell.impurities else lib.zeros(n)
        count = lib.zeros(n, "int") if int_part else None
    else:
        h, count = state if int_part else (state, None)
    pre = x @ w_ih.T + h @ w_hh.T + b
    if "threshold" in cell.impurities:
        pre = lib.where(pre > 0.3, pre * 0.5, pre)
    if "dropout" in cell.impurities:
        keep = cell.draws.random((n, H)) >= 0.5
        pre = pre * lib.mask(keep * 2.0)
    if "coin" in cell.impurities:
        pre = pre * (1.0 if cell.draws.random() < 0.5 else 0.5)  # equal coins in a row are common
    if "counter" in cell.impurities:
        cell.t += 1
        if cell.t % cell.period == 0:
            pre = pre * 0.5
    if "data_read" in cell.impurities and lib.read(h) > 0:
        pre = pre + 0.25
    if "side_effect" in cell.impurities:
        cell.seen.append(pre)
    h_new = pre.tanh()
    if not int_part:
        return h_new
    count = count + 1
    return h_new + count.double() * 0.01, count


class TorchMirror:
    """The Python state of one cell, for the torch loop: the same seed, counter and list."""

    def __init__(self, cell: ImpureCell, seed: int) -> None:
        self.impurities, self.period = cell.impurities, cell.period
        self.draws, self.t, self.seen = np.random.default_rng(seed), 0, []


def cell_class(declared: bool) -> type:
    return type("ImpureCell", (ImpureCell,), {"pure": declared})


def run_ours(layer: nn.Recurrent, x: np.ndarray, g: np.ndarray, compile: Any) -> tuple[list[np.ndarray], int]:
    """Outputs, final states and gradients; and how many times the cells' Python ran."""
    layer.compile = compile
    for cell in layer.children():
        cell.draws = np.random.default_rng(cell.seed_)
        cell.t, cell.seen = 0, []
    layer.zero_grad()
    before = sum(CALLS[id(c)] for c in layer.children())
    xt = tg.Tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out, h_n = layer(xt)
    parts = h_n if isinstance(h_n, tuple) else (h_n,)
    loss = (out * tg.Tensor(g)).sum() + (parts[0] * 0.5).sum()
    loss.backward()
    calls = sum(CALLS[id(c)] for c in layer.children()) - before
    grads = [xt.grad.data] + [
        p.grad.data if p.grad is not None else np.zeros(p.shape) for p in layer.parameters()
    ]
    return [out.data, *[q.data.astype(np.float64) for q in parts], *grads], calls


def run_torch(layer: nn.Recurrent, x: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    """A plain torch loop: each direction's cell over its steps, the directions concatenated."""
    xt = torch.tensor(x, requires_grad=True)
    params, outputs, finals = [], [], []
    for reverse in (False, True)[: layer.num_directions]:
        cell = getattr(layer, "cell_l0_reverse" if reverse else "cell_l0")
        p = [torch.tensor(q.data, requires_grad=True) for q in cell.parameters_list()]
        params += p
        mirror, state, out = TorchMirror(cell, cell.seed_), None, [None] * x.shape[0]
        for t in reversed(range(x.shape[0])) if reverse else range(x.shape[0]):
            state = impure_step(TORCH, mirror, p, xt[t], state, x.shape[1])
            out[t] = state[0] if isinstance(state, tuple) else state
        outputs.append(torch.stack(out))
        finals.append(state)
    output = torch.cat(outputs, dim=2)
    parts = (
        tuple(torch.stack(list(q)) for q in zip(*finals, strict=True))
        if isinstance(finals[0], tuple)
        else (torch.stack(finals),)
    )
    loss = (output * torch.from_numpy(g)).sum() + (parts[0] * 0.5).sum()
    loss.backward()
    grads = [xt.grad.numpy()] + [q.grad.numpy() if q.grad is not None else np.zeros(q.shape) for q in params]
    return [output.detach().numpy(), *[q.detach().numpy().astype(np.float64) for q in parts], *grads]


def make_layer(impurities: tuple[str, ...], declared: bool, bidirectional: bool, period: int) -> nn.Recurrent:
    layer = nn.Recurrent(cell_class(declared), D, H, bidirectional=bidirectional, impurities=impurities,
                         period=period, rng=0)  # fmt: skip
    for k, cell in enumerate(layer.children()):
        cell.seed_ = 100 + k
    return layer


def replayed_steps(root: tg.Tensor) -> int:
    census = step_census([root])
    return census["replayed"] + census["compiled"]


IMPURE_CELLS = st.fixed_dictionaries(
    {
        "impurities": st.lists(st.sampled_from(IMPURITIES), min_size=1, max_size=3, unique=True).map(tuple),
        "declared": st.booleans(),
        "bidirectional": st.booleans(),
        "period": st.integers(2, 4),
        "steps": st.integers(3, 8),
        "batch": st.integers(1, 3),
    }
)


def test_generated_impure_cells_equal_op_by_op_and_torch(impure_cells):
    """50 fixed cells in `make test`; `--impure-cells=N` checks N fresh ones (a soak)."""

    @settings(max_examples=impure_cells or 50, deadline=None, derandomize=impure_cells is None)
    @given(case=IMPURE_CELLS)
    def check(case: dict[str, Any]) -> None:
        check_impure_cell(**case)

    check()


def check_impure_cell(impurities, declared, bidirectional, period, steps, batch):
    layer = make_layer(impurities, declared, bidirectional, period)
    rng = np.random.default_rng(steps * 10 + batch)
    x = rng.standard_normal((steps, batch, D))
    g = rng.standard_normal((steps, batch, H * layer.num_directions))
    default, default_calls = run_ours(layer, x, g, None)  # compiled when declared pure
    eager, eager_calls = run_ours(layer, x, g, False)
    replayed, _ = run_ours(layer, x, g, "replay" if declared else False)
    again, _ = run_ours(layer, x, g, None)  # what the first pass compiled and kept
    reference = run_torch(layer, x, g)
    for ours, op_by_op, theirs, *others in zip(default, eager, reference, replayed, again, strict=True):
        np.testing.assert_allclose(ours, op_by_op, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-10)
        for other in others:
            np.testing.assert_allclose(other, op_by_op, rtol=RTOL, atol=ATOL)
    if PER_STEP & set(impurities):  # the cell's Python ran at every step
        assert default_calls == eager_calls == steps * layer.num_directions
    elif declared and steps >= 5:  # pure: replayed, with its masks computed afresh
        layer.compile = None
        out, _ = layer(tg.Tensor(x))
        assert replayed_steps(out) > 0


@pytest.mark.parametrize("impurity", sorted(PER_STEP))
def test_a_declared_pure_cell_that_is_not_warns_once_naming_the_reason(impurity):
    layer = make_layer((impurity,), True, False, 2)
    reasons = {
        "dropout": "array made outside", "coin": "Python state", "counter": "Python state",
        "data_read": ".data read", "side_effect": "Python state",
    }  # fmt: skip
    x = tg.Tensor(np.random.default_rng(0).standard_normal((8, 2, D)))
    with pytest.warns(RuntimeWarning, match="not replayed") as record:
        layer(x)
        layer(x)
    messages = [str(w.message) for w in record if "not replayed" in str(w.message)]
    assert len(messages) == 1 and reasons[impurity] in messages[0] and "ImpureCell" in messages[0]


def test_undeclared_cells_run_op_by_op_and_compile_false_says_nothing():
    x = tg.Tensor(np.random.default_rng(0).standard_normal((8, 2, D)))
    for declared, compile in ((False, None), (True, False)):
        layer = make_layer(("counter",), declared, False, 2)
        layer.compile = compile
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out, _ = layer(x)
        assert replayed_steps(out) == 0


def test_the_builtin_and_example_cells_are_declared_pure_and_the_knob_is_checked():
    from tinygrad_rnn.nn.examples import IndRNNCell, PeepholeLSTMCell

    for cell in (nn.RNNCell, nn.LSTMCell, nn.GRUCell, PeepholeLSTMCell, IndRNNCell):
        assert cell.pure is True
    assert nn.LSTM(D, H, compile=False).compile is False and nn.GRU(D, H).compile is None
    assert nn.Recurrent(nn.GRUCell, D, H, replay=False).compile is False  # the earlier name
    with pytest.raises(TypeError, match="compile should be None"):
        nn.Recurrent(nn.GRUCell, D, H, compile="yes")
    with pytest.raises(ValueError, match="disagree"):
        nn.Recurrent(nn.GRUCell, D, H, compile=True, replay=False)


# --- initial states under padding ---------------------------------------------------------------------


class WithInitialState(ImpureCell):
    """The same cell, but telling the layer its initial state instead of taking None."""

    pure = True

    def initial_state(self, batch_size: int) -> Any:
        h = self.h0 * tg.ones(batch_size, H, dtype=np.float64)
        return (h, tg.zeros(batch_size, H, dtype=np.int64)) if "int_part" in self.impurities else h


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    impurities=st.lists(st.sampled_from(["threshold", "int_part", "own_start"]), max_size=3, unique=True).map(
        tuple
    ),
    method=st.booleans(),
    layers=st.integers(1, 2),
    hx=st.booleans(),
    lengths=st.lists(st.integers(1, 5), min_size=2, max_size=3),
)
def test_each_sequence_starts_from_its_own_initial_state_in_both_directions(impurities, method, layers, hx,
                                                                          lengths):  # fmt: skip
    """Padded, bidirectional, deep: every sequence's outputs and final state are those of the same
    sequence run alone, from hx or the cell's own initial state (non-zero with own_start)."""
    cls = WithInitialState if method else cell_class(True)
    if "own_start" not in impurities and method:
        impurities = (*impurities, "own_start")
    layer = nn.Recurrent(cls, D, H, num_layers=layers, bidirectional=True, impurities=impurities, rng=0)
    steps, batch = max(lengths), len(lengths)
    rng = np.random.default_rng(sum(lengths))
    x = rng.standard_normal((steps, batch, D))
    h0 = rng.standard_normal((2 * layers, batch, H))
    int_part = "int_part" in impurities
    given_hx = ((h0, np.zeros(h0.shape, np.int64)) if int_part else h0) if hx else None
    out, h_n = layer(x, given_hx, lengths=lengths)
    h_n = h_n if isinstance(h_n, tuple) else (h_n,)
    for k, n in enumerate(lengths):
        alone_hx = None
        if hx:
            alone_hx = (
                (h0[:, k : k + 1], np.zeros((2 * layers, 1, H), np.int64)) if int_part else h0[:, k : k + 1]
            )
        alone_out, alone_n = layer(x[:n, k : k + 1], alone_hx)
        alone_n = alone_n if isinstance(alone_n, tuple) else (alone_n,)
        np.testing.assert_allclose(out.data[:n, k], alone_out.data[:, 0], rtol=RTOL, atol=ATOL)
        np.testing.assert_array_equal(out.data[n:, k], 0.0)
        for part, alone in zip(h_n, alone_n, strict=True):
            assert part.dtype == alone.dtype
            np.testing.assert_allclose(part.data[:, k], alone.data[:, 0], rtol=RTOL, atol=ATOL)


def test_an_integer_state_part_keeps_its_dtype_under_lengths():
    layer = nn.Recurrent(cell_class(False), D, H, bidirectional=True, impurities=("int_part",), rng=0)
    out, (h, count) = layer(np.random.default_rng(0).standard_normal((5, 3, D)), lengths=[5, 2, 4])
    assert count.dtype == np.int64 and h.dtype == np.float64
    assert count.data[:, :, 0].tolist() == [[5, 2, 4], [5, 2, 4]]  # steps taken, in both directions


# --- dtype conversions round-trip ------------------------------------------------------------------------


def modules() -> dict[str, Any]:
    from tinygrad_rnn.nn.examples import IndRNNCell, PeepholeLSTMCell

    return {
        "linear": lambda: nn.Linear(D, H, rng=0),
        "rnn": lambda: nn.RNN(D, H, num_layers=2, rng=0),
        "lstm": lambda: nn.LSTM(D, H, bidirectional=True, proj_size=2, rng=0),
        "gru": lambda: nn.GRU(D, H, rng=0),
        "peephole": lambda: nn.Recurrent(PeepholeLSTMCell, D, H, rng=0),
        "indrnn": lambda: nn.Recurrent(IndRNNCell, D, H, bidirectional=True, rng=0),
        "lstm_cell": lambda: nn.LSTMCell(D, H, rng=0),
        "gru_cell": lambda: nn.GRUCell(D, H, rng=0),
        "embedding": lambda: nn.Embedding(6, D, rng=0),
        "lm": lambda: nn.LanguageModel(6, D, H, rng=0),
    }


OPTIMIZERS = {
    "sgd": lambda p: tg.optim.SGD(p, lr=0.1, momentum=0.9),
    "adam": lambda p: tg.optim.Adam(p, lr=0.01),
    "adamw": lambda p: tg.optim.AdamW(p, lr=0.01),
    "adagrad": lambda p: tg.optim.Adagrad(p, lr=0.1),
    "rmsprop": lambda p: tg.optim.RMSprop(p, lr=0.01),
}


def loss_of(kind: str, model: Any, dtype: Any) -> tg.Tensor:
    rng = np.random.default_rng(1)
    if kind in ("embedding", "lm"):
        out = model(np.array([[1, 2], [3, 0], [5, 4]]))
        out = out[0] if isinstance(out, tuple) else out
    else:
        shape = (2, D) if kind in ("linear", "lstm_cell", "gru_cell") else (5, 2, D)
        out = model(tg.Tensor(rng.standard_normal(shape).astype(dtype)))
        out = out[0] if isinstance(out, tuple) else out
    return (out * tg.Tensor(rng.standard_normal(out.shape).astype(dtype))).sum()


@pytest.mark.parametrize("kind", list(modules()))
@pytest.mark.parametrize("convert", ["double", "to", "float_then_double"])
def test_a_converted_module_trains_and_gradchecks_as_one_built_in_that_dtype(kind, convert):
    converted = modules()[kind]()
    if convert == "double":
        converted.double()
    elif convert == "to":
        converted.to(np.float64)
    else:
        converted.float().double()
    built = modules()[kind]()
    built.load_state_dict({k: v.astype(np.float64) for k, v in converted.state_dict().items()})
    built.double()
    for model in (converted, built):
        assert all(p.dtype == np.float64 and p.node.dtype == np.float64 for p in model.parameters())
        loss_of(kind, model, np.float64).backward()
    for (name, a), b in zip(converted.named_parameters(), built.parameters(), strict=True):
        np.testing.assert_array_equal(a.grad.data, b.grad.data, err_msg=name)
    first = next(converted.parameters())
    assert tg.gradcheck(lambda w: loss_of(kind, converted, np.float64), [first])


@pytest.mark.parametrize("kind", list(modules()))
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_converted_module_trains_step_for_step_as_one_built_in_that_dtype(kind, name):
    converted = modules()[kind]().double()
    built = modules()[kind]()
    built.load_state_dict({k: v.astype(np.float64) for k, v in converted.state_dict().items()})
    built.double()
    optimizers = [OPTIMIZERS[name](list(m.parameters())) for m in (converted, built)]
    for _ in range(2):
        for model, opt in zip((converted, built), optimizers, strict=True):
            opt.zero_grad()
            loss_of(kind, model, np.float64).backward()
            opt.step()
    for (key, a), b in zip(converted.state_dict().items(), built.state_dict().values(), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=key)


def test_a_converted_layer_compares_as_one_built_in_float64():
    layer = nn.LSTM(D, H, bidirectional=True, rng=0).double()
    x = np.random.default_rng(0).standard_normal((4, 2, D))
    report = tg.compare(layer, x, lengths=[4, 2], finite_differences=True)
    assert report.ok, report.verdict()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_an_optimizer_refuses_state_left_in_another_dtype_and_changes_nothing(name):
    model = nn.LSTM(D, H, rng=0)
    opt = OPTIMIZERS[name](list(model.parameters()))
    loss_of("lstm", model, np.float32).backward()
    opt.step()
    model.double()
    model.zero_grad()
    loss_of("lstm", model, np.float64).backward()
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(DTypeError, match="float32 but the parameter is float64") as error:
        opt.step()
    assert isinstance(error.value, TypeError | ValueError | RuntimeError)
    for p, b in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.data, b)
    opt.load_state_dict(opt.state_dict())  # converts the state to the parameters' dtype
    opt.step()
    assert all(
        v.dtype == np.float64 for s in opt.state.values() for v in s.values() if isinstance(v, np.ndarray)
    )


def test_a_layer_input_of_another_dtype_is_a_value_error_and_a_type_error():
    with pytest.raises(ValueError, match="input has dtype float64 but the parameters are float32") as error:
        nn.LSTM(D, H)(np.zeros((2, 1, D)))
    assert isinstance(error.value, TypeError)


# --- the guards, one at a time ------------------------------------------------------------------------


def step_cell(body: Any) -> type:
    """A declared-pure cell whose step is `body(self, x, h)`."""

    class Cell(nn.Module):
        pure = True

        def __init__(self, input_size: int, hidden_size: int, rng: Any = None) -> None:
            super().__init__()
            draw = np.random.default_rng(rng)
            self.weight = nn.Parameter(draw.uniform(-0.5, 0.5, (hidden_size, input_size)))

        def forward(self, x: tg.Tensor, h: Any = None) -> tg.Tensor:
            h = tg.zeros(x.shape[0], H, dtype=x.dtype) if h is None else h
            return body(self, x @ self.weight.T, h).tanh()

    return Cell


GATES: list[Any] = []
GUARDED = {
    "comparison": lambda self, a, h: tg.where(h > 0.2, a * 0.5, a + h),
    "argmax": lambda self, a, h: a + (h.argmax(axis=1) == 1).unsqueeze(1).double() * 0.5 + h,
    "index_from_tensor": lambda self, a, h: a + h[:, (h.sum(0) > 0)].sum(1, keepdims=True) + h,
    "numpy_array": lambda self, a, h: a * np.where(h.numpy() > 0, 1.0, 0.5) + h,
    "retain_grad": lambda self, a, h: (GATES.append(a), a.retain_grad(), a + h)[-1],  # kept outside the cell
    "randn": lambda self, a, h: a + tg.randn(*h.shape, dtype=h.dtype, rng=int(h.shape[0])) * 0 + h * 1.0001,
}


@pytest.mark.parametrize("kind", list(GUARDED))
def test_each_guard_keeps_a_value_dependent_step_right(kind):
    cell = step_cell(GUARDED[kind])
    x = tg.Tensor(np.random.default_rng(2).standard_normal((10, 3, D)), requires_grad=True)
    results = []
    for compile in (True, False):
        layer = nn.Recurrent(cell, D, H, compile=compile, rng=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out, h_n = layer(x)
        (out * out).sum().backward()
        results.append([out.data, h_n.data, x.grad.data.copy(), layer.cell_l0.weight.grad.data])
        x.grad = None
        if kind == "retain_grad":  # every step's gate kept its gradient: the step ran at every t
            assert len(GATES) == 10 and all(g.grad is not None for g in GATES)
            GATES.clear()
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
