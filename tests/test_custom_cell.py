"""nn.Recurrent with any cell: built-in cells equal the built-in layers, custom cells (a peephole LSTM
and an IndRNN with a vector recurrent weight) against finite differences and an independent PyTorch
implementation, seeds, scopes, and the errors of a cell that breaks the protocol."""

import itertools
from pathlib import Path

import numpy as np
import pytest
from cells_for_tests import IndRNNCell, PeepholeLSTMCell

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.cli import main
from tinygrad_rnn.errors import ShapeError
from tinygrad_rnn.lm.cells import load_cell
from tinygrad_rnn.lm.data import InputError
from tinygrad_rnn.lm.training import TrainConfig, train

T, N, D, H = 4, 3, 2, 3
LENGTHS = np.array([4, 2, 3])
GRID = list(itertools.product([1, 2], [False, True], [False, True], [False, True], [False, True]))
GRID_IDS = [
    f"L{L}-{'bi' if b else 'uni'}-{'bf' if bf else 'tm'}-{'len' if ln else 'full'}-{'hx' if hx else 'nohx'}"
    for L, b, bf, ln, hx in GRID
]
CLOSE = {"rtol": 1e-10, "atol": 1e-12}


def recurrent_name(builtin_name: str) -> str:
    """'weight_ih_l1_reverse' (nn.LSTM) -> 'cell_l1_reverse.weight_ih' (nn.Recurrent(nn.LSTMCell))."""
    kind, rest = builtin_name.split("_l", 1)
    return f"cell_l{rest}.{kind}"


def as_parts(state):
    return state if isinstance(state, tuple) else (state,)


def loss_of(output, h_n, seed: int = 2):
    """Σ out ⊙ G + Σ_parts h_n ⊙ G' with random G, so every output path carries a distinct weight."""
    rng = np.random.default_rng(seed)
    total = (output * tg.Tensor(rng.standard_normal(output.shape))).sum()
    for part in as_parts(h_n):
        total = total + (part * tg.Tensor(rng.standard_normal(part.shape))).sum()
    return total


def inputs(batch_first: bool, rows: int, parts: int, hidden: int = H, seed: int = 1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D) if batch_first else (T, N, D))
    hx = [rng.standard_normal((rows, N, hidden)) * 0.5 for _ in range(parts)]
    return x, hx


# --- Recurrent(built-in cell) is the built-in layer -------------------------------------------------------

BUILTINS = {  # kind: (layer class, cell class, options both take, number of state parts)
    "rnn_tanh": (nn.RNN, nn.RNNCell, {"nonlinearity": "tanh"}, 1),
    "rnn_relu": (nn.RNN, nn.RNNCell, {"nonlinearity": "relu"}, 1),
    "lstm": (nn.LSTM, nn.LSTMCell, {}, 2),
    "gru": (nn.GRU, nn.GRUCell, {}, 1),
    "gru_reset_before": (nn.GRU, nn.GRUCell, {"reset_after": False}, 1),
}


@pytest.mark.parametrize("kind", list(BUILTINS))
@pytest.mark.parametrize(
    ("layers", "bidirectional", "batch_first", "with_lengths", "with_hx"), GRID, ids=GRID_IDS
)
def test_recurrent_of_a_builtin_cell_equals_the_builtin_layer(
    kind, layers, bidirectional, batch_first, with_lengths, with_hx
):
    layer_cls, cell_cls, options, parts = BUILTINS[kind]
    shape = {"num_layers": layers, "bidirectional": bidirectional, "batch_first": batch_first}
    builtin = layer_cls(D, H, **shape, **options, dtype=np.float64, rng=0)
    generic = nn.Recurrent(cell_cls, D, H, **shape, **options, dtype=np.float64, rng=1)
    generic.load_state_dict({recurrent_name(k): v for k, v in builtin.state_dict().items()})
    assert sorted(k for k, _ in generic.named_parameters()) == sorted(
        recurrent_name(k) for k, _ in builtin.named_parameters()
    )
    x, hx = inputs(batch_first, layers * (2 if bidirectional else 1), parts)
    results = []
    for model in (builtin, generic):
        x_t = tg.Tensor(x, requires_grad=True)
        hx_t = [tg.Tensor(h, requires_grad=True) for h in hx] if with_hx else []
        state = (tuple(hx_t) if parts == 2 else hx_t[0]) if with_hx else None
        output, h_n = model(x_t, state, lengths=LENGTHS if with_lengths else None)
        loss_of(output, h_n).backward()
        grads = {
            recurrent_name(k) if model is builtin else k: p.grad.data for k, p in model.named_parameters()
        }
        results.append(
            (output.data, [p.data for p in as_parts(h_n)], x_t.grad.data, [h.grad.data for h in hx_t], grads)
        )
    (out_a, h_a, dx_a, dhx_a, dp_a), (out_b, h_b, dx_b, dhx_b, dp_b) = results
    np.testing.assert_allclose(out_b, out_a, **CLOSE)
    for a, b in zip(h_a, h_b, strict=True):
        np.testing.assert_allclose(b, a, **CLOSE)
    np.testing.assert_allclose(dx_b, dx_a, **CLOSE)
    for a, b in zip(dhx_a, dhx_b, strict=True):
        np.testing.assert_allclose(b, a, **CLOSE)
    assert dp_a.keys() == dp_b.keys()
    for name in dp_a:
        np.testing.assert_allclose(dp_b[name], dp_a[name], **CLOSE, err_msg=name)


# --- custom cells: finite differences and an independent torch implementation -------------------------------

CUSTOM = {"peephole": (PeepholeLSTMCell, 2), "indrnn": (IndRNNCell, 1)}


def custom_model(kind, layers, bidirectional, batch_first, hidden=H):
    cell, _ = CUSTOM[kind]
    return nn.Recurrent(
        cell,
        D,
        hidden,
        num_layers=layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        dtype=np.float64,
        rng=0,
    )


@pytest.mark.parametrize("kind", list(CUSTOM))
@pytest.mark.parametrize(
    ("layers", "bidirectional", "batch_first", "with_lengths", "with_hx"),
    [(2, True, False, True, True), (2, True, True, False, False), (1, False, False, True, False)],
)
def test_custom_cell_gradients_match_finite_differences(
    kind, layers, bidirectional, batch_first, with_lengths, with_hx
):
    _, parts = CUSTOM[kind]
    model = custom_model(kind, layers, bidirectional, batch_first, hidden=2)
    x, hx = inputs(batch_first, layers * (2 if bidirectional else 1), parts, hidden=2)
    leaves = [tg.Tensor(x, requires_grad=True)] + (
        [tg.Tensor(h, requires_grad=True) for h in hx] if with_hx else []
    )

    def fn(x, *rest):
        states = rest[: len(leaves) - 1]
        state = (tuple(states) if parts == 2 else states[0]) if states else None
        output, h_n = model(x, state, lengths=LENGTHS if with_lengths else None)
        return loss_of(output, h_n)

    assert tg.gradcheck(fn, leaves + list(model.parameters()), atol=1e-7, rtol=1e-6)


def torch_peephole(torch, p, x, state):
    h, c = state
    i, f, g, o = (x @ p["weight_ih"].T + h @ p["weight_hh"].T + p["bias"]).chunk(4, 1)
    i = torch.sigmoid(i + p["peep_i"] * c)
    f = torch.sigmoid(f + p["peep_f"] * c)
    c = f * c + i * torch.tanh(g)
    o = torch.sigmoid(o + p["peep_o"] * c)
    return (o * torch.tanh(c), c)


def torch_indrnn(torch, p, x, state):
    (h,) = state
    return (torch.relu(x @ p["weight_ih"].T + p["bias"] + p["weight_hh"] * h),)


def torch_recurrent(torch, step, params, x, hx, lengths, layers, directions):
    """The layer written independently: each sequence alone over its own length, layer by layer,
    the reverse direction starting from its own last step; outputs padded with zeros to T."""
    steps, batch = x.shape[0], x.shape[1]
    outputs, finals = [], [[None] * batch for _ in range(layers * directions)]
    for n in range(batch):
        length = int(lengths[n]) if lengths is not None else steps
        seq = [x[t, n : n + 1] for t in range(length)]
        for layer in range(layers):
            per_direction = []
            for d in range(directions):
                row = layer * directions + d
                p = {
                    k.split(".", 1)[1]: v
                    for k, v in params.items()
                    if k.startswith(f"cell_l{layer}{'_reverse' if d else ''}.")
                }
                state = tuple(part[row, n : n + 1] for part in hx)
                out = [None] * length
                for t in reversed(range(length)) if d else range(length):
                    state = step(torch, p, seq[t], state)
                    out[t] = state[0]
                per_direction.append(out)
                finals[row][n] = state
            seq = [torch.cat([o[t] for o in per_direction], 1) for t in range(length)]
        padded = torch.cat(seq + [torch.zeros_like(seq[0])] * (steps - length), 0)
        outputs.append(padded)
    output = torch.stack(outputs, 1)
    h_n = [
        torch.stack([torch.cat([finals[row][n][k] for n in range(batch)], 0) for row in range(len(finals))])
        for k in range(len(hx))
    ]
    return output, h_n


@pytest.mark.parametrize("kind", list(CUSTOM))
@pytest.mark.parametrize(
    ("layers", "bidirectional", "with_lengths", "with_hx"),
    list(itertools.product([1, 2], [False, True], [False, True], [False, True])),
)
def test_custom_cell_layer_matches_an_independent_torch_implementation(
    kind, layers, bidirectional, with_lengths, with_hx
):
    torch = pytest.importorskip("torch")
    _, parts = CUSTOM[kind]
    directions = 2 if bidirectional else 1
    model = custom_model(kind, layers, bidirectional, False)
    x, hx = inputs(False, layers * directions, parts)
    lengths = LENGTHS if with_lengths else None

    x_t = tg.Tensor(x, requires_grad=True)
    hx_t = [tg.Tensor(h, requires_grad=True) for h in hx] if with_hx else []
    state = (tuple(hx_t) if parts == 2 else hx_t[0]) if with_hx else None
    output, h_n = model(x_t, state, lengths=lengths)
    loss_of(output, h_n).backward()

    params = {k: torch.tensor(p.data, requires_grad=True) for k, p in model.named_parameters()}
    theirs_x = torch.tensor(x, requires_grad=True)
    theirs_hx = [torch.tensor(h if with_hx else np.zeros_like(h), requires_grad=True) for h in hx]
    step = torch_peephole if kind == "peephole" else torch_indrnn
    ref_out, ref_h = torch_recurrent(torch, step, params, theirs_x, theirs_hx, lengths, layers, directions)
    rng = np.random.default_rng(2)
    ref_loss = (ref_out * torch.from_numpy(rng.standard_normal(output.shape))).sum()
    for part in ref_h:
        ref_loss = ref_loss + (part * torch.from_numpy(rng.standard_normal(tuple(part.shape)))).sum()
    ref_loss.backward()

    np.testing.assert_allclose(output.data, ref_out.detach().numpy(), **CLOSE)
    for ours, theirs in zip(as_parts(h_n), ref_h, strict=True):
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), **CLOSE)
    np.testing.assert_allclose(x_t.grad.data, theirs_x.grad.numpy(), **CLOSE)
    for ours, theirs in zip(hx_t, theirs_hx[: len(hx_t)], strict=True):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), **CLOSE)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.data, params[name].grad.numpy(), **CLOSE, err_msg=name)


# --- the layer around the cell ---------------------------------------------------------------------------


def test_cells_are_registered_per_layer_and_direction_with_torch_style_names():
    model = nn.Recurrent(PeepholeLSTMCell, 3, 4, num_layers=2, bidirectional=True, rng=0)
    names = [k for k, _ in model.named_parameters()]
    assert names[:6] == [
        f"cell_l0.{p}" for p in ("weight_ih", "weight_hh", "bias", "peep_i", "peep_f", "peep_o")
    ]
    assert {k.split(".")[0] for k in names} == {"cell_l0", "cell_l0_reverse", "cell_l1", "cell_l1_reverse"}
    assert model.cell_l1.weight_ih.shape == (16, 8) and model.cell_l0.weight_ih.shape == (16, 3)
    assert repr(model).startswith("Recurrent(PeepholeLSTMCell, 3, 4, num_layers=2, bidirectional=True")


def test_an_int_seed_gives_each_cell_its_own_weights_and_the_same_model_twice():
    a = nn.Recurrent(IndRNNCell, 3, 4, num_layers=2, bidirectional=True, rng=7)
    b = nn.Recurrent(IndRNNCell, 3, 4, num_layers=2, bidirectional=True, rng=7)
    hh = [a.cell_l0.weight_hh.data, a.cell_l0_reverse.weight_hh.data, a.cell_l1.weight_hh.data]
    assert not np.allclose(hh[0], hh[1]) and not np.allclose(hh[0], hh[2])
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_cell_kwargs_reach_every_cell():
    model = nn.Recurrent(
        nn.GRUCell, 3, 4, num_layers=2, bias=False, reset_after=False, dtype=np.float64, rng=0
    )
    assert model.dtype == np.float64
    assert all(not cell.bias and not cell.reset_after for cell in (model.cell_l0, model.cell_l1))


def test_the_cell_gets_none_at_the_first_step_without_hx_and_its_state_after():
    seen = []

    class Spy(IndRNNCell):
        def forward(self, x, h=None):
            seen.append(h)
            return super().forward(x, h)

    model = nn.Recurrent(Spy, D, H, dtype=np.float64, rng=0)
    _, h_n = model(tg.Tensor(np.ones((3, N, D))))
    assert seen[0] is None and all(isinstance(h, tg.Tensor) and h.shape == (N, H) for h in seen[1:])
    assert len(seen) == 3
    hx = np.random.default_rng(0).standard_normal((1, N, H))
    seen.clear()
    model(tg.Tensor(np.ones((3, N, D))), tg.Tensor(hx))
    np.testing.assert_array_equal(seen[0].data, hx[0])


@pytest.mark.parametrize("kind", list(CUSTOM))
def test_unbatched_input_equals_a_batch_of_one(kind):
    _, parts = CUSTOM[kind]
    model = custom_model(kind, 2, True, False)
    x, hx = inputs(False, 4, parts)
    state = tuple(tg.Tensor(h[:, :1]) for h in hx)
    out_b, h_b = model(tg.Tensor(x[:, :1]), state if parts == 2 else state[0])
    state = tuple(tg.Tensor(h[:, 0]) for h in hx)
    out, h = model(tg.Tensor(x[:, 0]), state if parts == 2 else state[0])
    assert out.shape == (T, 2 * H)
    np.testing.assert_allclose(out.data, out_b.data[:, 0], rtol=1e-12, atol=1e-14)
    for a, b in zip(as_parts(h), as_parts(h_b), strict=True):
        assert a.shape == (4, H)
        np.testing.assert_allclose(a.data, b.data[:, 0], rtol=1e-12, atol=1e-14)


def test_padded_steps_output_zeros_and_h_n_is_each_sequences_last_state():
    model = custom_model("peephole", 1, True, False)
    x, _ = inputs(False, 2, 2)
    output, (h_n, c_n) = model(tg.Tensor(x), lengths=LENGTHS)
    for n, length in enumerate(LENGTHS):
        alone, (alone_h, alone_c) = model(tg.Tensor(x[:length, n : n + 1]))
        np.testing.assert_allclose(output.data[:length, n], alone.data[:, 0], rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(output.data[length:, n], 0.0)
        np.testing.assert_allclose(h_n.data[:, n], alone_h.data[:, 0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(c_n.data[:, n], alone_c.data[:, 0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "make",
    [
        lambda: custom_model("peephole", 2, True, False),
        lambda: nn.GRU(D, H, bidirectional=True, dtype=np.float64, rng=0),
    ],
)
def test_refilling_the_lengths_buffer_after_forward_changes_no_gradient(make):
    model = make()
    x, _ = inputs(False, 2, 1)
    grads = []
    for refill in (False, True):
        model.zero_grad()
        lengths = LENGTHS.copy()
        output, _ = model(tg.Tensor(x), lengths=lengths)
        if refill:
            lengths[:] = T
        (output * tg.Tensor(np.random.default_rng(5).standard_normal(output.shape))).sum().backward()
        grads.append({k: p.grad.data.copy() for k, p in model.named_parameters()})
    for name in grads[0]:  # the first pass records the steps, the second runs them compiled: to rounding
        np.testing.assert_allclose(grads[1][name], grads[0][name], rtol=1e-12, atol=1e-15, err_msg=name)


def test_steps_are_recorded_under_the_cells_name():
    def scopes_of(model):
        output, _ = model(tg.Tensor(np.ones((3, 1, D))))
        return {node.scope for node in tg.tensor.graph_nodes([output]) if node.scope}

    assert {"PeepholeLSTMCell.l0.t2", "PeepholeLSTMCell.l0r.t0", "PeepholeLSTMCell.l0r"} <= scopes_of(
        nn.Recurrent(PeepholeLSTMCell, D, H, bidirectional=True, dtype=np.float64, rng=0)
    )
    assert {"indrnn.l1.t0", "indrnn.l0.t2"} <= scopes_of(
        nn.Recurrent(IndRNNCell, D, H, num_layers=2, name="indrnn", dtype=np.float64, rng=0)
    )


# --- a cell that breaks the protocol ---------------------------------------------------------------------


class Misbehaving(PeepholeLSTMCell):
    """A peephole cell that returns `bad(h, c)` instead of (h, c) from its `at`-th call on."""

    at, bad = 0, None

    def forward(self, x, state=None):
        self.calls = getattr(self, "calls", 0) + 1
        h, c = super().forward(x, state)
        return type(self).bad(h, c) if self.calls > type(self).at else (h, c)


def misbehaving(at, bad):
    return type("Misbehaving", (Misbehaving,), {"at": at, "bad": staticmethod(bad)})


@pytest.mark.parametrize(
    ("at", "bad", "error", "message"),
    [
        (
            0,
            lambda h, c: (h, c[:, :2]),
            ShapeError,
            r"layer 0, step t=0 the cell returned a tuple of 2: Tensor \(3, 3\), Tensor \(3, 2\); "
            r"expected a Tensor \(N, H\) = \(3, 3\)",
        ),
        (
            2,
            lambda h, c: h,
            ShapeError,
            r"layer 0, step t=2 the cell returned a Tensor \(3, 3\) but was given a tuple of 2",
        ),
        (
            1,
            lambda h, c: (h.data, c),
            TypeError,
            r"layer 0, step t=1 the cell returned a tuple of 2: ndarray, Tensor \(3, 3\); expected",
        ),
        (0, lambda h, c: None, TypeError, r"layer 0, step t=0 the cell returned None; expected"),
        (0, lambda h, c: (), TypeError, r"layer 0, step t=0 the cell returned an empty tuple; expected"),
    ],
)
def test_a_cell_breaking_the_protocol_gets_one_error_naming_the_step(at, bad, error, message):
    model = nn.Recurrent(misbehaving(at, bad), D, H, dtype=np.float64, rng=0)
    with pytest.raises(error, match=r"^Recurrent\(Misbehaving\): at " + message):
        model(tg.Tensor(np.ones((T, N, D))))


def test_the_reverse_direction_is_named_in_the_error():
    model = nn.Recurrent(
        misbehaving(0, lambda h, c: (h[:1], c)), D, H, bidirectional=True, dtype=np.float64, rng=0
    )
    model.cell_l0.calls = -100  # the forward direction behaves
    with pytest.raises(ShapeError, match=r"at layer 0 reverse, step t=3 the cell returned"):
        model(tg.Tensor(np.ones((T, N, D))))


def test_shape_errors_are_runtime_errors_too():
    model = custom_model("peephole", 2, False, False)
    for call in (
        lambda: model(tg.Tensor(np.ones((T, N, D + 1)))),
        lambda: model(tg.Tensor(np.ones((0, N, D)))),
        lambda: model(
            tg.Tensor(np.ones((T, N, D))), (tg.Tensor(np.ones((2, N + 1, H))), tg.Tensor(np.ones((2, N, H))))
        ),
    ):
        with pytest.raises(RuntimeError):
            call()
        with pytest.raises(ValueError):
            call()


def test_bad_construction_is_refused_with_a_named_error():
    with pytest.raises(TypeError, match="pass|cell must be a cell class.*got an instance of IndRNNCell"):
        nn.Recurrent(IndRNNCell(2, 3), 2, 3)
    with pytest.raises(TypeError, match="cell must be a cell class"):
        nn.Recurrent("lstm", 2, 3)
    with pytest.raises(TypeError, match=r"the cell made a ndarray, expected an nn.Module"):
        nn.Recurrent(lambda d, h: np.zeros((d, h)), 2, 3)
    with pytest.raises(ValueError, match="must be an identifier, got 'my cell'"):
        nn.Recurrent(IndRNNCell, 2, 3, name="my cell")
    with pytest.raises(TypeError, match="hidden_size should be of type int, got float 3.0"):
        nn.Recurrent(IndRNNCell, 2, 3.0)
    with pytest.raises(TypeError, match="bidirectional should be of type bool, got int 1"):
        nn.Recurrent(IndRNNCell, 2, 3, bidirectional=1)
    with pytest.raises(ValueError, match=r"hx as a Tensor or a tuple of Tensors, got an empty tuple"):
        nn.Recurrent(IndRNNCell, 2, 3, dtype=np.float64)(tg.Tensor(np.ones((T, N, 2))), ())


# --- the language model, training and the commands with your own cell --------------------------------------

CELL_FILE = str(Path(__file__).with_name("cells_for_tests.py"))


class PlainIndRNNCell(IndRNNCell):
    """A cell whose constructor takes no dtype or rng (it draws its weights its own way)."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size, dtype=np.float64, rng=123)


def test_language_model_takes_any_cell():
    model = nn.LanguageModel(11, 5, 4, cell=PeepholeLSTMCell, num_layers=2, dtype=np.float64, rng=0)
    again = nn.LanguageModel(11, 5, 4, cell=PeepholeLSTMCell, num_layers=2, dtype=np.float64, rng=0)
    assert "rnn.cell_l1.peep_o" in dict(model.named_parameters()) and model.dtype == np.float64
    for (name, p), (_, q) in zip(model.named_parameters(), again.named_parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)  # the seed reaches the cells
    logits, (h, c) = model(np.arange(12).reshape(4, 3) % 11)
    assert logits.shape == (4, 3, 11) and h.shape == c.shape == (2, 3, 4)
    plain = nn.LanguageModel(11, 5, 4, cell=PlainIndRNNCell, dtype=np.float64, rng=0)
    logits, h = plain(np.zeros((2, 3), dtype=np.int64))
    assert logits.shape == (2, 3, 11) and h.shape == (1, 3, 4)
    with pytest.raises(ValueError, match="cell must be one of"):
        nn.LanguageModel(11, 5, 4, cell="peephole")


class NumpyDtypeCell(PeepholeLSTMCell):
    """Hands `dtype` straight to numpy, as a user's cell may: it must receive a resolved dtype."""

    def __init__(self, input_size, hidden_size, dtype=None, rng=None):
        super().__init__(input_size, hidden_size, dtype=np.zeros(0, dtype).dtype, rng=rng)


class Float64Cell(PeepholeLSTMCell):
    def __init__(self, input_size, hidden_size, dtype=None, rng=None):
        super().__init__(input_size, hidden_size, dtype=np.float64, rng=rng)


def test_language_model_gives_the_cell_its_dtype_and_refuses_a_cell_that_ignores_it():
    model = nn.LanguageModel(11, 5, 4, cell=NumpyDtypeCell, rng=0)
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    with pytest.raises(TypeError, match="cell_l0.weight_ih is float64 but the model is float32"):
        nn.LanguageModel(11, 5, 4, cell=Float64Cell, rng=0)


def test_load_cell_names_what_is_wrong_in_one_line(tmp_path):
    assert load_cell(f"{CELL_FILE}:PeepholeLSTMCell").__name__ == "PeepholeLSTMCell"
    broken = tmp_path / "broken.py"
    broken.write_text("import numpy\nraise RuntimeError('no')\n")
    for spec, message in (
        (f"{tmp_path}/missing.py:Cell", "cell file .*missing.py not found"),
        (f"{CELL_FILE}:Nope", "has no Nope \\(its Module classes: IndRNNCell, PeepholeLSTMCell\\)"),
        (f"{CELL_FILE}:__all__", "is a list, not an nn.Module subclass"),
        (f"{broken}:Cell", "failed to import: RuntimeError: no"),
        ("lstm-ish", "expected path/to/file.py:ClassName"),
    ):
        with pytest.raises(InputError, match=message) as caught:
            load_cell(spec)
        assert "\n" not in str(caught.value)


def test_training_and_resuming_with_a_cell_from_a_file(tmp_path):
    spec = f"{CELL_FILE}:PeepholeLSTMCell"
    options = {"embedding": 8, "hidden": 8, "seq_len": 8, "batch": 4, "eval_every": 3, "sample_every": 99}
    checkpoint = str(tmp_path / "run.npz")
    whole = train(TrainConfig(cell=spec, steps=6, **options), verbose=False)
    train(TrainConfig(cell=spec, steps=3, checkpoint=checkpoint, **options), verbose=False)
    resumed = train(
        TrainConfig(cell=spec, steps=6, checkpoint=checkpoint, **options), resume=True, verbose=False
    )
    assert "rnn.cell_l0.peep_i" in dict(resumed.model.named_parameters())
    np.testing.assert_allclose(resumed.losses, whole.losses, rtol=1e-6)


def test_graph_and_train_commands_take_a_cell_file(tmp_path, capsys):
    spec = f"{CELL_FILE}:PeepholeLSTMCell"
    assert (
        main(["graph", "--cell", spec, "--steps", "3", "--detail", "cells", "-o", str(tmp_path / "g.dot")])
        == 0
    )
    source = (tmp_path / "g.dot").read_text()
    assert all(f"PeepholeLSTMCell l0 t{t}" in source for t in range(3))
    capsys.readouterr()
    assert main(["graph", "--cell", f"{CELL_FILE}:Nope", "-o", str(tmp_path / "g.dot")]) == 2
    assert main(["train", "--cell", f"{tmp_path}/none.py:Cell", "--steps", "1", "-q"]) == 2
    assert main(["train", "--cell", "peephole", "--steps", "1", "-q"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    classes = "IndRNNCell, PeepholeLSTMCell"
    assert (
        lines[0]
        == f"tinygrad-rnn graph: error: cell file {CELL_FILE} has no Nope (its Module classes: {classes})"
    )
    assert lines[1].endswith("none.py not found") and "expected one of gru, lstm, rnn or" in lines[2]


def test_a_weight_used_as_its_transpose_at_every_step_gets_torchs_gradient():
    """A cell's `h @ W.T` at every step: the gradient of W stays one deferred product through the
    transposes (one GEMM), also mixed with a direct use of W and a transposed view keeping its grad."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    w0, xs, g = rng.standard_normal((3, 3)), rng.standard_normal((5, 2, 3)), rng.standard_normal((2, 3))

    def run(wrap, w):
        h = wrap(np.zeros((2, 3)))
        for t in range(5):
            h = (h @ w.T + wrap(xs[t])).tanh()
        view = w.T
        view.retain_grad()
        return ((h @ view) * wrap(g)).sum() + (w * w).sum(), view

    ours_w = tg.Tensor(w0.copy(), requires_grad=True)
    ours_loss, ours_view = run(tg.Tensor, ours_w)
    ours_loss.backward()
    theirs_w = torch.tensor(w0.copy(), requires_grad=True)
    theirs_loss, theirs_view = run(torch.from_numpy, theirs_w)
    theirs_loss.backward()
    np.testing.assert_allclose(ours_w.grad.data, theirs_w.grad.numpy(), **CLOSE)
    np.testing.assert_allclose(ours_view.grad.data, theirs_view.grad.numpy(), **CLOSE)


def test_dropout_between_layers_is_drawn_from_the_layers_seed():
    x = tg.Tensor(np.random.default_rng(0).standard_normal((T, N, D)))

    def output(seed, dropout=0.5, training=True):
        model = nn.Recurrent(IndRNNCell, D, H, num_layers=2, dropout=dropout, dtype=np.float64, rng=seed)
        model.train(training)
        return model(x)[0].data

    np.testing.assert_array_equal(output(3), output(3))
    assert not np.allclose(output(3), output(3, dropout=0.0))
    np.testing.assert_array_equal(output(3, training=False), output(3, dropout=0.0))
    # with every input of layer 1 dropped it sees zeros: its output is relu(b + u ⊙ h) whatever x
    dropped = nn.Recurrent(IndRNNCell, D, H, num_layers=2, dropout=1.0, dtype=np.float64, rng=3)
    np.testing.assert_array_equal(dropped(x)[0].data, dropped(x * 2.0)[0].data)
