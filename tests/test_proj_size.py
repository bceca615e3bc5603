"""LSTM with projections (proj_size): torch's parameters and shapes, outputs and gradients, errors."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import compare, manual, nn
from tinygrad_rnn.numeric import numerical_gradient

T, N, D, H, P = 4, 3, 2, 5, 3
LENGTHS = np.array([4, 2, 3])
GRID = list(itertools.product([1, 2], [False, True], [False, True], [False, True]))
GRID_IDS = [
    f"L{L}-{'bi' if b else 'uni'}-{'bf' if bf else 'tm'}-{'len' if ln else 'full'}" for L, b, bf, ln in GRID
]


def make_lstm(layers, bidirectional, batch_first=False, hidden=H, proj=P, bias=True):
    return nn.LSTM(
        D, hidden, layers, bias, batch_first, 0.0, bidirectional, proj, dtype=np.float64, rng=0
    )  # torch's positional order, proj_size last


def inputs(layers, bidirectional, batch_first, hidden=H, proj=P):
    rng = np.random.default_rng(1)
    rows = layers * (2 if bidirectional else 1)
    x = rng.standard_normal((N, T, D) if batch_first else (T, N, D))
    return x, rng.standard_normal((rows, N, proj)) * 0.5, rng.standard_normal((rows, N, hidden)) * 0.5


def weighted_sum(tensors, seed=2):
    """Random G_k of each tensor's shape, for the loss Σ_k Σ t_k ⊙ G_k."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(t.shape) for t in tensors]


def test_parameters_and_shapes_are_torch_s():
    model = make_lstm(2, True)
    shapes = {name: p.shape for name, p in model.named_parameters()}
    assert list(shapes)[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0"]
    assert shapes["weight_hh_l0"] == (4 * H, P) and shapes["weight_hr_l0_reverse"] == (P, H)
    assert shapes["weight_ih_l1"] == (4 * H, 2 * P)  # the next layer reads both directions' projected h
    x, h0, c0 = inputs(2, True, False)
    output, (h_n, c_n) = model(x, (h0, c0))
    assert output.shape == (T, N, 2 * P) and h_n.shape == (4, N, P) and c_n.shape == (4, N, H)
    assert repr(model) == f"LSTM({D}, {H}, proj_size={P}, num_layers=2, bidirectional=True)"
    no_bias = make_lstm(1, False, bias=False)
    assert [n for n, _ in no_bias.named_parameters()] == ["weight_ih_l0", "weight_hh_l0", "weight_hr_l0"]
    out, (h, c) = make_lstm(1, False)(x[:, 0])  # unbatched
    assert out.shape == (T, P) and h.shape == (1, P) and c.shape == (1, H)


@pytest.mark.parametrize(("layers", "bidirectional", "batch_first", "with_lengths"), GRID, ids=GRID_IDS)
def test_outputs_and_gradients_equal_torch(layers, bidirectional, batch_first, with_lengths):
    torch = pytest.importorskip("torch")
    model = make_lstm(layers, bidirectional, batch_first)
    reference = torch.nn.LSTM(
        D, H, layers, batch_first=batch_first, bidirectional=bidirectional, proj_size=P, dtype=torch.float64
    )
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    x, h0, c0 = inputs(layers, bidirectional, batch_first)
    ours = [tg.Tensor(a, requires_grad=True) for a in (x, h0, c0)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, h0, c0)]
    output, (h_n, c_n) = model(ours[0], (ours[1], ours[2]), lengths=LENGTHS if with_lengths else None)
    feed = theirs[0]
    if with_lengths:
        feed = torch.nn.utils.rnn.pack_padded_sequence(feed, LENGTHS, batch_first, enforce_sorted=False)
    their_output, (their_h, their_c) = reference(feed, (theirs[1], theirs[2]))
    if with_lengths:
        their_output, _ = torch.nn.utils.rnn.pad_packed_sequence(their_output, batch_first, total_length=T)
    Gs = weighted_sum([output, h_n, c_n])
    loss = sum((t * tg.Tensor(g)).sum() for t, g in zip([output, h_n, c_n], Gs, strict=True))
    loss.backward()
    their_loss = sum(
        (t * torch.from_numpy(g)).sum() for t, g in zip([their_output, their_h, their_c], Gs, strict=True)
    )
    their_loss.backward()

    close = {"rtol": 1e-10, "atol": 1e-12}
    for mine, their in [(output, their_output), (h_n, their_h), (c_n, their_c)]:
        np.testing.assert_allclose(mine.data, their.detach().numpy(), **close)
    for mine, their in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(mine.grad.data, their.grad.numpy(), **close)
    their_params = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.data, their_params[name].grad.numpy(), **close, err_msg=name)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradients_match_finite_differences(bidirectional):
    model = make_lstm(2, bidirectional, hidden=3, proj=2)
    x, h0, c0 = inputs(2, bidirectional, False, hidden=3, proj=2)
    leaves = [tg.Tensor(a, requires_grad=True) for a in (x, h0, c0)]

    def fn(x, h0, c0, *params):
        output, (h_n, c_n) = model(x, (h0, c0), lengths=LENGTHS)
        return tg.cat([output.reshape(-1), h_n.reshape(-1), c_n.reshape(-1)])

    assert tg.gradcheck(fn, leaves + list(model.parameters()), atol=1e-7, rtol=1e-6)


def test_bad_proj_size_and_states_are_refused_as_torch_does():
    with pytest.raises(ValueError, match=r"proj_size has to be smaller than hidden_size \(5\), got 5"):
        nn.LSTM(D, H, proj_size=H)
    with pytest.raises(ValueError, match="proj_size must be at least 0, got -1"):
        nn.LSTM(D, H, proj_size=-1)
    for bad in (2.0, True, "2"):
        with pytest.raises(TypeError, match="proj_size should be of type int"):
            nn.LSTM(D, H, proj_size=bad)
    model = make_lstm(1, False)
    x, h0, c0 = inputs(1, False, False)
    with pytest.raises(RuntimeError, match=r"expected h_0 of shape \(1, 3, 3\), got \(1, 3, 5\)"):
        model(x, (c0, c0))
    with pytest.raises(RuntimeError, match=r"expected c_0 of shape \(1, 3, 5\), got \(1, 3, 3\)"):
        model(x, (h0, h0))


@settings(max_examples=25, deadline=None)
@given(
    hidden=st.integers(2, 5),
    data=st.data(),
    layers=st.integers(1, 3),
    bidirectional=st.booleans(),
    bias=st.booleans(),
    lengths=st.lists(st.integers(1, 4), min_size=1, max_size=3),
)
def test_generated_projections_equal_torch(hidden, data, layers, bidirectional, bias, lengths):
    torch = pytest.importorskip("torch")
    proj = data.draw(st.integers(1, hidden - 1), label="proj_size")
    model = nn.LSTM(D, hidden, layers, bias, False, 0.0, bidirectional, proj, dtype=np.float64, rng=0)
    reference = torch.nn.LSTM(
        D, hidden, layers, bias, bidirectional=bidirectional, proj_size=proj, dtype=torch.float64
    )
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    x = np.random.default_rng(len(lengths)).standard_normal((max(lengths), len(lengths), D))
    ours_x, their_x = tg.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    output, (h_n, c_n) = model(ours_x, lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(their_x, lengths, enforce_sorted=False)
    their_packed, (their_h, their_c) = reference(packed)
    their_output, _ = torch.nn.utils.rnn.pad_packed_sequence(their_packed)
    Gs = weighted_sum([output, h_n, c_n])
    sum((t * tg.Tensor(g)).sum() for t, g in zip([output, h_n, c_n], Gs, strict=True)).backward()
    sum(
        (t * torch.from_numpy(g)).sum() for t, g in zip([their_output, their_h, their_c], Gs, strict=True)
    ).backward()
    close = {"rtol": 1e-10, "atol": 1e-12}
    for mine, their in [(output, their_output), (h_n, their_h), (c_n, their_c)]:
        np.testing.assert_allclose(mine.data, their.detach().numpy(), **close)
    np.testing.assert_allclose(ours_x.grad.data, their_x.grad.numpy(), **close)
    their_params = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.data, their_params[name].grad.numpy(), **close, err_msg=name)


# --- the manual package: hand-written BPTT through the projection ------------------------------------


def manual_run(model, x, h0, c0, lengths, batch_first):
    params, config = manual.from_module(model)
    output, (h_n, c_n), cache = manual.recurrent_forward(
        x=x, params=params, hx=(h0, c0), lengths=lengths, **config
    )
    return params, output, h_n, c_n, cache


@pytest.mark.parametrize(("layers", "bidirectional", "batch_first", "with_lengths"), GRID, ids=GRID_IDS)
def test_manual_bptt_equals_the_autograd(layers, bidirectional, batch_first, with_lengths):
    model = make_lstm(layers, bidirectional, batch_first)
    x, h0, c0 = inputs(layers, bidirectional, batch_first)
    lengths = LENGTHS if with_lengths else None
    params, output, h_n, c_n, cache = manual_run(model, x, h0, c0, lengths, batch_first)
    leaves = [tg.Tensor(a, requires_grad=True) for a in (x, h0, c0)]
    ours, (ours_h, ours_c) = model(leaves[0], (leaves[1], leaves[2]), lengths=lengths)
    close = {"rtol": 1e-10, "atol": 1e-12}
    for manual_value, autograd in [(output, ours), (h_n, ours_h), (c_n, ours_c)]:
        np.testing.assert_allclose(manual_value, autograd.data, **close)
    Gs = weighted_sum([ours, ours_h, ours_c])
    sum((t * tg.Tensor(g)).sum() for t, g in zip([ours, ours_h, ours_c], Gs, strict=True)).backward()
    dx, (dh0, dc0), dparams = manual.recurrent_backward(Gs[0], (Gs[1], Gs[2]), cache)
    assert list(dparams) == list(params)
    for manual_grad, leaf in zip([dx, dh0, dc0], leaves, strict=True):
        np.testing.assert_allclose(manual_grad, leaf.grad.data, **close)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(dparams[name], p.grad.data, **close, err_msg=name)


def test_manual_bptt_equals_finite_differences():
    model = make_lstm(2, True, hidden=3, proj=2)
    x, h0, c0 = inputs(2, True, False, hidden=3, proj=2)
    params, output, h_n, c_n, cache = manual_run(model, x, h0, c0, LENGTHS, False)
    Gs = weighted_sum([output, h_n, c_n])
    _, _, dparams = manual.recurrent_backward(Gs[0], (Gs[1], Gs[2]), cache)

    def loss():
        out, (h, c), _ = manual.recurrent_forward(
            "lstm", x, params, num_layers=2, bidirectional=True, hx=(h0, c0), lengths=LENGTHS
        )
        return sum(float((a * g).sum()) for a, g in zip([out, h, c], Gs, strict=True))

    for name in ("weight_hr_l0", "weight_hr_l1_reverse", "weight_hh_l1", "weight_ih_l1_reverse"):
        np.testing.assert_allclose(
            dparams[name], numerical_gradient(loss, params[name]), rtol=1e-6, atol=1e-8
        )


def test_manual_step_pair_and_its_errors():
    rng = np.random.default_rng(3)
    params = {"weight_ih": rng.standard_normal((4 * H, D)), "weight_hh": rng.standard_normal((4 * H, P))}
    params["weight_hr"] = rng.standard_normal((P, H))
    x, h, c = rng.standard_normal((N, D)), rng.standard_normal((N, P)), rng.standard_normal((N, H))
    (h_new, c_new), step = manual.lstm_step_forward(x, (h, c), params)
    gates = x @ params["weight_ih"].T + h @ params["weight_hh"].T
    i, f, g, o = np.split(gates, 4, axis=1)
    sig = manual.sigmoid
    expected_c = sig(f) * c + sig(i) * np.tanh(g)
    np.testing.assert_allclose(c_new, expected_c, rtol=1e-12)
    np.testing.assert_allclose(h_new, (sig(o) * np.tanh(expected_c)) @ params["weight_hr"].T, rtol=1e-12)
    dh, dc = rng.standard_normal((N, P)), rng.standard_normal((N, H))
    _, _, dparams = manual.lstm_step_backward((dh, dc), step)

    def loss():
        (h2, c2), _ = manual.lstm_step_forward(x, (h, c), params)
        return float((h2 * dh).sum() + (c2 * dc).sum())

    for name in params:
        np.testing.assert_allclose(
            dparams[name], numerical_gradient(loss, params[name]), rtol=1e-6, atol=1e-8
        )
    with pytest.raises(ValueError, match=r"h_prev expected shape \(3, 3\), got \(3, 5\)"):
        manual.lstm_step_forward(x, (c, c), params)
    bad = dict(params, weight_hr=rng.standard_normal((H, H)))
    with pytest.raises(ValueError, match=r"weight_hr must have shape \(P, H\) with 0 < P < H, got \(5, 5\)"):
        manual.lstm_step_forward(x, (h, c), bad)
    bad = dict(params, weight_hh=rng.standard_normal((4 * H, H)))
    with pytest.raises(ValueError, match=r"weight_hh expected shape \(4·H, P\) = \(20, 3\)"):
        manual.lstm_step_forward(x, (h, c), bad)
    with pytest.raises(ValueError, match="unexpected parameters"):
        manual.gru_step_forward(x, h, {"weight_hr": params["weight_hr"]})


# --- compare: the report on a projected LSTM ---------------------------------------------------------------


@pytest.mark.parametrize(("layers", "bidirectional"), [(1, False), (2, True)])
def test_compare_checks_a_projected_lstm_three_ways(layers, bidirectional):
    model = make_lstm(layers, bidirectional, hidden=4, proj=2)
    x, h0, c0 = inputs(layers, bidirectional, False, hidden=4, proj=2)
    report = compare(model, x, hx=(h0, c0), lengths=LENGTHS, finite_differences=True)
    assert report.ok, report.failures
    rows = {row.name: row for row in report.rows}
    assert rows["h0"].shape == (h0.shape) and rows["c0"].shape == c0.shape
    assert rows["weight_hr_l0"].shape == (2, 4) and rows["weight_hr_l0"].fd_manual is not None
    assert len(report.steps) == T * layers * (2 if bidirectional else 1)
    with pytest.raises(ValueError, match=r"expected h0 of shape \(L·dirs, N, H\) = \(.*, 3, 2\), got"):
        compare(model, x, hx=(c0, c0))
