"""RNN / LSTM / GRU layers and cells: finite differences, PyTorch equality, lengths, errors."""

import itertools

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.errors import ShapeError

KINDS = {
    "rnn_tanh": lambda **kw: nn.RNN(nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: nn.RNN(nonlinearity="relu", **kw),
    "lstm": lambda **kw: nn.LSTM(**kw),
    "gru": lambda **kw: nn.GRU(**kw),
    "gru_reset_before": lambda **kw: nn.GRU(reset_after=False, **kw),
}
TORCH_KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]  # torch has no reset_after=False GRU
GRID = list(itertools.product([1, 2], [False, True], [False, True], [False, True], [False, True]))
GRID_IDS = [
    f"L{L}-{'bi' if b else 'uni'}-{'bf' if bf else 'tm'}-{'len' if ln else 'full'}-{'hx' if hx else 'nohx'}"
    for L, b, bf, ln, hx in GRID
]

T, N, D, H = 4, 3, 2, 3
LENGTHS = np.array([4, 2, 3])


def make_model(kind: str, layers: int, bidirectional: bool, batch_first: bool, hidden: int = H):
    return KINDS[kind](
        input_size=D,
        hidden_size=hidden,
        num_layers=layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        dtype=np.float64,
        rng=0,
    )


def make_inputs(
    kind: str, layers: int, bidirectional: bool, batch_first: bool, with_hx: bool, hidden: int = H
):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, T, D) if batch_first else (T, N, D))
    rows = layers * (2 if bidirectional else 1)
    hx = None
    if with_hx:
        hx = [rng.standard_normal((rows, N, hidden)) * 0.5]
        if kind == "lstm":
            hx.append(rng.standard_normal((rows, N, hidden)) * 0.5)
    return x, hx


def pack_state(kind: str, tensors):
    if not tensors:
        return None
    return tuple(tensors) if kind == "lstm" else tensors[0]


def loss_of(output, h_n, kind: str, seed: int = 2):
    """Σ out ⊙ G + Σ h_n ⊙ G' (+ c_n) with random G, so every output path carries a distinct weight."""
    rng = np.random.default_rng(seed)
    finals = h_n if kind == "lstm" else (h_n,)
    total = (output * tg.Tensor(rng.standard_normal(output.shape))).sum()
    for f in finals:
        total = total + (f * tg.Tensor(rng.standard_normal(f.shape))).sum()
    return total


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(
    ("layers", "bidirectional", "batch_first", "with_lengths", "with_hx"), GRID, ids=GRID_IDS
)
def test_layer_gradients_match_finite_differences(
    kind, layers, bidirectional, batch_first, with_lengths, with_hx
):
    model = make_model(kind, layers, bidirectional, batch_first, hidden=2)
    x, hx = make_inputs(kind, layers, bidirectional, batch_first, with_hx, hidden=2)
    inputs = [tg.Tensor(x, requires_grad=True, name="x")] + [
        tg.Tensor(h, requires_grad=True) for h in hx or []
    ]
    params = list(model.parameters())
    lengths = LENGTHS if with_lengths else None

    def fn(x, *rest):
        output, h_n = model(x, pack_state(kind, list(rest[: len(inputs) - 1])), lengths=lengths)
        return loss_of(output, h_n, kind)

    assert tg.gradcheck(fn, inputs + params, atol=1e-7, rtol=1e-6)


def torch_model(kind: str, model, torch):
    cls = {"rnn_tanh": torch.nn.RNN, "rnn_relu": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[
        kind
    ]
    extra = {"nonlinearity": kind[4:]} if kind.startswith("rnn") else {}
    reference = cls(
        model.input_size,
        model.hidden_size,
        num_layers=model.num_layers,
        bidirectional=model.bidirectional,
        batch_first=model.batch_first,
        dtype=torch.float64,
        **extra,
    )
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    return reference


@pytest.mark.parametrize("kind", TORCH_KINDS)
@pytest.mark.parametrize(
    ("layers", "bidirectional", "batch_first", "with_lengths", "with_hx"), GRID, ids=GRID_IDS
)
def test_layer_matches_torch(kind, layers, bidirectional, batch_first, with_lengths, with_hx):
    torch = pytest.importorskip("torch")
    model = make_model(kind, layers, bidirectional, batch_first)
    reference = torch_model(kind, model, torch)
    assert [k for k, _ in model.named_parameters()] == [k for k, _ in reference.named_parameters()]
    x, hx = make_inputs(kind, layers, bidirectional, batch_first, with_hx)

    ours_x = tg.Tensor(x, requires_grad=True)
    ours_hx = [tg.Tensor(h, requires_grad=True) for h in hx or []]
    output, h_n = model(ours_x, pack_state(kind, ours_hx), lengths=LENGTHS if with_lengths else None)
    loss_of(output, h_n, kind).backward()

    theirs_x = torch.tensor(x, requires_grad=True)
    theirs_hx = [torch.tensor(h, requires_grad=True) for h in hx or []]
    feed = theirs_x
    if with_lengths:
        feed = torch.nn.utils.rnn.pack_padded_sequence(
            theirs_x, torch.from_numpy(LENGTHS), batch_first=batch_first, enforce_sorted=False
        )
    ref_out, ref_h = reference(feed, pack_state(kind, theirs_hx))
    if with_lengths:
        ref_out, _ = torch.nn.utils.rnn.pad_packed_sequence(ref_out, batch_first=batch_first, total_length=T)
    ref_finals = ref_h if kind == "lstm" else (ref_h,)
    rng = np.random.default_rng(2)
    ref_loss = (ref_out * torch.from_numpy(rng.standard_normal(output.shape))).sum()
    for f in ref_finals:
        ref_loss = ref_loss + (f * torch.from_numpy(rng.standard_normal(tuple(f.shape)))).sum()
    ref_loss.backward()

    close = {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(output.data, ref_out.detach().numpy(), **close)
    for ours, theirs in zip(h_n if kind == "lstm" else (h_n,), ref_finals, strict=True):
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), **close)
    np.testing.assert_allclose(ours_x.grad.data, theirs_x.grad.numpy(), **close)
    for ours, theirs in zip(ours_hx, theirs_hx, strict=True):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), **close)
    ref_params = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.data, ref_params[name].grad.numpy(), **close, err_msg=name)


CELLS = {
    "rnn_tanh": lambda: nn.RNNCell(D, H, dtype=np.float64, rng=0),
    "rnn_relu": lambda: nn.RNNCell(D, H, nonlinearity="relu", dtype=np.float64, rng=0),
    "lstm": lambda: nn.LSTMCell(D, H, dtype=np.float64, rng=0),
    "gru": lambda: nn.GRUCell(D, H, dtype=np.float64, rng=0),
    "gru_reset_before": lambda: nn.GRUCell(D, H, reset_after=False, dtype=np.float64, rng=0),
}


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("batched", [True, False])
def test_cell_gradients_match_finite_differences(kind, batched):
    cell = CELLS[kind]()
    rng = np.random.default_rng(3)
    shape = (N,) if batched else ()
    x = tg.Tensor(rng.standard_normal(shape + (D,)), requires_grad=True)
    states = [
        tg.Tensor(rng.standard_normal(shape + (H,)), requires_grad=True)
        for _ in range(2 if kind == "lstm" else 1)
    ]

    def fn(x, *rest):
        out = cell(x, pack_state(kind, list(rest[: len(states)])))
        outs = out if kind == "lstm" else (out,)
        return tg.stack(list(outs)) * 1.0

    assert tg.gradcheck(fn, [x, *states, *cell.parameters()], atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("kind", TORCH_KINDS)
def test_cell_matches_torch(kind):
    torch = pytest.importorskip("torch")
    cell = CELLS[kind]()
    cls = {
        "rnn_tanh": torch.nn.RNNCell,
        "rnn_relu": torch.nn.RNNCell,
        "lstm": torch.nn.LSTMCell,
        "gru": torch.nn.GRUCell,
    }
    extra = {"nonlinearity": kind[4:]} if kind.startswith("rnn") else {}
    reference = cls[kind](D, H, dtype=torch.float64, **extra)
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in cell.state_dict().items()})
    rng = np.random.default_rng(4)
    x = rng.standard_normal((N, D))
    states = [rng.standard_normal((N, H)) for _ in range(2 if kind == "lstm" else 1)]
    ours = cell(tg.Tensor(x), pack_state(kind, [tg.Tensor(s) for s in states]))
    theirs = reference(torch.from_numpy(x), pack_state(kind, [torch.from_numpy(s) for s in states]))
    for a, b in zip(
        ours if kind == "lstm" else (ours,), theirs if kind == "lstm" else (theirs,), strict=True
    ):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-12, atol=1e-14)


# --- semantics ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_padded_steps_are_zero_and_h_n_is_the_last_valid_state(kind):
    model = make_model(kind, 1, True, False)
    x, _ = make_inputs(kind, 1, True, False, False)
    output, h_n = model(tg.Tensor(x), lengths=LENGTHS)
    h_n = h_n[0] if kind == "lstm" else h_n
    for n, length in enumerate(LENGTHS):
        alone, alone_h = model(tg.Tensor(x[:length, n : n + 1]))
        alone_h = alone_h[0] if kind == "lstm" else alone_h
        np.testing.assert_allclose(output.data[:length, n], alone.data[:, 0], rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(output.data[length:, n], 0.0)
        np.testing.assert_allclose(h_n.data[:, n], alone_h.data[:, 0], rtol=1e-12, atol=1e-14)


def test_padding_does_not_leak_into_gradients():
    model = make_model("lstm", 2, True, False)
    x, _ = make_inputs("lstm", 2, True, False, False)
    x_t = tg.Tensor(x, requires_grad=True)
    output, (h_n, _) = model(x_t, lengths=LENGTHS)
    (output.sum() + h_n.sum()).backward()
    for n, length in enumerate(LENGTHS):
        np.testing.assert_array_equal(x_t.grad.data[length:, n], 0.0)
        assert np.abs(x_t.grad.data[:length, n]).min() > 0


@pytest.mark.parametrize("kind", list(KINDS))
def test_unbatched_input_equals_a_batch_of_one(kind):
    model = make_model(kind, 2, True, False)
    x, _ = make_inputs(kind, 2, True, False, False)
    out_batched, h_batched = model(tg.Tensor(x[:, :1]))
    out, h = model(tg.Tensor(x[:, 0]))
    assert out.shape == (T, 2 * H)
    np.testing.assert_allclose(out.data, out_batched.data[:, 0], rtol=1e-12, atol=1e-14)
    first = (h[0], h_batched[0]) if kind == "lstm" else (h, h_batched)
    assert first[0].shape == (4, H)
    np.testing.assert_allclose(first[0].data, first[1].data[:, 0], rtol=1e-12, atol=1e-14)


def test_steps_are_recorded_under_scopes_and_named():
    model = nn.LSTM(2, 3, bidirectional=True, dtype=np.float64, rng=0)
    output, _ = model(tg.Tensor(np.ones((3, 1, 2))))
    seen, stack = {}, [output]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen[id(t)] = t
        stack.extend(t.parents)
    scopes = {t.scope for t in seen.values() if t.scope}
    assert {f"lstm.l0.t{t}" for t in range(3)} | {f"lstm.l0r.t{t}" for t in range(3)} <= scopes
    names = {t.name for t in seen.values() if t.scope == "lstm.l0.t1"}
    assert {"i", "f", "g", "o", "c", "h"} <= names
    assert {t.name for t in seen.values() if t.is_leaf and t.requires_grad} == {
        "weight_ih_l0",
        "weight_hh_l0",
        "bias_ih_l0",
        "bias_hh_l0",
        "weight_ih_l0_reverse",
        "weight_hh_l0_reverse",
        "bias_ih_l0_reverse",
        "bias_hh_l0_reverse",
    }


def test_parameter_shapes_names_and_init_follow_torch():
    model = nn.GRU(5, 4, num_layers=2, bidirectional=True, rng=0)
    shapes = {k: p.shape for k, p in model.named_parameters()}
    assert shapes["weight_ih_l0"] == (12, 5) and shapes["weight_ih_l1"] == (12, 8)
    assert shapes["weight_hh_l1_reverse"] == (12, 4) and shapes["bias_hh_l0"] == (12,)
    assert len(shapes) == 16 and model.dtype == np.float32
    values = np.concatenate([p.data.ravel() for p in model.parameters()])
    assert np.abs(values).max() <= 0.5 and np.abs(values).max() > 0.45  # U(-1/√H, 1/√H)
    assert "GRU(5, 4, num_layers=2, bidirectional=True)" == repr(model)


def test_float32_model_runs_in_float32():
    model = nn.LSTM(3, 4, num_layers=2, rng=0)
    x = tg.Tensor(np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32))
    output, (h_n, c_n) = model(x)
    assert output.dtype == h_n.dtype == c_n.dtype == np.float32
    output.sum().backward()
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


# --- bad input ------------------------------------------------------------------------------------------


def test_bad_inputs_are_named():
    model = nn.LSTM(3, 4, num_layers=2, dtype=np.float64, rng=0)
    x = tg.Tensor(np.zeros((5, 2, 3)))
    with pytest.raises(
        ValueError, match=r"LSTM: expected input of width 3 \(input_size\).*got shape \(5, 2, 7\)"
    ):
        model(tg.Tensor(np.zeros((5, 2, 7))))
    with pytest.raises(ValueError, match=r"expected a 3-D \(T, N, D\) or an unbatched 2-D \(T, D\) input"):
        model(tg.Tensor(np.zeros((5, 2, 1, 3))))
    with pytest.raises(ValueError, match=r"expected h_0 of shape \(2, 2, 4\), got \(1, 2, 4\)"):
        model(x, (tg.Tensor(np.zeros((1, 2, 4))), tg.Tensor(np.zeros((2, 2, 4)))))
    with pytest.raises(ValueError, match=r"every length must be in 1\.\.5.*\[6, 1\]"):
        model(x, lengths=[6, 1])
    with pytest.raises(ValueError, match=r"every length must be in 1\.\.5.*\[0, 1\]"):
        model(x, lengths=[0, 1])
    with pytest.raises(ValueError, match="expected lengths as 2 integers"):
        model(x, lengths=[1, 2, 3])
    with pytest.raises(TypeError, match="input has dtype float32 but the parameters are float64"):
        model(tg.Tensor(np.zeros((5, 2, 3), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"GRU: expected hx of shape \(1, 2, 4\), got \(2, 4\)"):
        nn.GRU(3, 4, dtype=np.float64)(x, tg.Tensor(np.zeros((2, 4))))
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"RNNCell: expected input of shape \(N, 3\)"):
        nn.RNNCell(3, 4)(tg.zeros(2, 5))


# --- torch's argument checks, errors and edge cases ---------------------------------------------------------

LAYER_CLASSES = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}
CELL_CLASSES = {"RNNCell": nn.RNNCell, "LSTMCell": nn.LSTMCell, "GRUCell": nn.GRUCell}
BAD_ARGUMENTS = [  # (arguments, keywords, error); torch raises the same error class for each
    ((3.0, 4), {}, TypeError),
    ((3, 4.0), {}, TypeError),
    ((3, 4, 2.0), {}, TypeError),
    ((3, 4), {"bias": 0}, TypeError),
    ((3, 4), {"batch_first": 1}, TypeError),
    ((3, 0), {}, ValueError),
    ((0, 4), {}, ValueError),
    ((3, 4, 0), {}, ValueError),
    ((3, 4), {"dropout": 1.5}, ValueError),
    ((3, 4), {"dropout": True}, ValueError),
]


@pytest.mark.parametrize("name", list(LAYER_CLASSES))
@pytest.mark.parametrize(("args", "kwargs", "error"), BAD_ARGUMENTS)
def test_constructor_arguments_are_checked_as_torch(name, args, kwargs, error):
    with pytest.raises(error):
        LAYER_CLASSES[name](*args, **kwargs)
    torch = pytest.importorskip("torch")
    with pytest.raises(error):
        getattr(torch.nn, name)(*args, **kwargs)


def test_flags_and_sizes_are_refused_with_their_names():
    with pytest.raises(TypeError, match=r"LSTM: bias should be of type bool, got int 0"):
        nn.LSTM(3, 4, bias=0)
    with pytest.raises(TypeError, match=r"GRU: input_size should be of type int, got float 3.0"):
        nn.GRU(3.0, 4)
    with pytest.raises(TypeError, match=r"RNN: bidirectional should be of type bool, got int 1"):
        nn.RNN(3, 4, bidirectional=1)  # torch lets this one through; a flag is a bool here
    with pytest.raises(TypeError, match=r"LSTMCell: input_size should be of type int, got float 3.0"):
        nn.LSTMCell(3.0, 4)
    with pytest.raises(ValueError, match=r"dropout should be a number in \[0, 1\]"):
        nn.LSTM(3, 4, dropout=-0.1)


def _torch_and_ours(torch, name, build):
    """The same layer or cell in float64 here and in torch, with the same weights."""
    ours = build(getattr(nn, name), {"dtype": np.float64, "rng": 0})
    theirs = build(getattr(torch.nn, name), {"dtype": torch.float64})
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    return ours, theirs


SHAPE_MISMATCHES = {  # torch raises RuntimeError for each; ours is a ShapeError (ValueError and RuntimeError)
    "input width": ("LSTM", lambda cls, kw: cls(3, 4, **kw), lambda z: (z(5, 2, 7),)),
    "hx shape": ("GRU", lambda cls, kw: cls(3, 4, **kw), lambda z: (z(5, 2, 3), z(2, 2, 4))),
    "h_0 batch": ("LSTM", lambda cls, kw: cls(3, 4, **kw), lambda z: (z(5, 2, 3), (z(1, 3, 4), z(1, 2, 4)))),
    "no steps": ("RNN", lambda cls, kw: cls(3, 4, **kw), lambda z: (z(0, 2, 3),)),
    "cell batch": ("RNNCell", lambda cls, kw: cls(3, 4, **kw), lambda z: (z(2, 3), z(3, 4))),
    "cell width": ("GRUCell", lambda cls, kw: cls(3, 4, **kw), lambda z: (z(2, 5),)),
    "lstm cell batch": ("LSTMCell", lambda cls, kw: cls(3, 4, **kw), lambda z: (z(2, 3), (z(3, 4), z(3, 4)))),
}


@pytest.mark.parametrize("case", list(SHAPE_MISMATCHES))
def test_shape_mismatches_raise_what_torch_code_catches(case):
    torch = pytest.importorskip("torch")
    name, build, arguments = SHAPE_MISMATCHES[case]
    ours, theirs = _torch_and_ours(torch, name, build)

    def ours_zeros(*shape):
        return tg.Tensor(np.zeros(shape))

    def torch_zeros(*shape):
        return torch.zeros(shape, dtype=torch.float64)

    with pytest.raises(RuntimeError):
        theirs(*arguments(torch_zeros))
    with pytest.raises(RuntimeError) as caught:
        ours(*arguments(ours_zeros))
    assert isinstance(caught.value, ShapeError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("name", list(LAYER_CLASSES))
@pytest.mark.parametrize("batch_first", [False, True])
def test_an_empty_batch_gives_empty_outputs_of_torchs_shapes(name, batch_first):
    torch = pytest.importorskip("torch")

    def build(cls, kw):
        return cls(3, 4, num_layers=2, bidirectional=True, batch_first=batch_first, **kw)

    ours, theirs = _torch_and_ours(torch, name, build)
    shape = (0, 5, 3) if batch_first else (5, 0, 3)
    x = tg.Tensor(np.zeros(shape), requires_grad=True)
    output, h_n = ours(x)
    ref_out, ref_h = theirs(torch.zeros(shape, dtype=torch.float64))
    assert output.shape == tuple(ref_out.shape)
    parts, ref_parts = (h_n, ref_h) if name == "LSTM" else ((h_n,), (ref_h,))
    assert [p.shape for p in parts] == [tuple(p.shape) for p in ref_parts]
    output.sum().backward()
    assert x.grad.shape == shape
    assert all(p.grad.shape == p.shape and not p.grad.data.any() for p in ours.parameters())


def test_dropout_one_between_layers_drops_everything_as_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = _torch_and_ours(torch, "LSTM", lambda cls, kw: cls(3, 4, num_layers=2, dropout=1.0, **kw))
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    output, (h_n, c_n) = ours(tg.Tensor(x))
    ref_out, (ref_h, ref_c) = theirs(torch.from_numpy(x))
    np.testing.assert_allclose(output.data, ref_out.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n.data, ref_h.detach().numpy(), rtol=1e-12, atol=1e-14)
    other, _ = ours(tg.Tensor(x + 1.0))  # layer 1 sees zeros whatever the input
    np.testing.assert_array_equal(other.data, output.data)


@pytest.mark.parametrize("name", list(CELL_CLASSES))
def test_cells_with_hidden_size_zero_work_as_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = _torch_and_ours(torch, name, lambda cls, kw: cls(3, 0, **kw))
    x = tg.Tensor(np.ones((2, 3)), requires_grad=True)
    out = ours(x)
    ref = theirs(torch.ones((2, 3), dtype=torch.float64))
    parts, ref_parts = (out, ref) if name == "LSTMCell" else ((out,), (ref,))
    assert [p.shape for p in parts] == [tuple(p.shape) for p in ref_parts] == [(2, 0)] * len(parts)
    tg.stack(list(parts)).sum().backward()
    np.testing.assert_array_equal(x.grad.data, 0.0)
