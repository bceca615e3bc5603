"""compare for any cell: nn.Recurrent of a custom cell against its hand-written numpy pair.

The cells are those of cells_for_tests.py (a peephole LSTM and an IndRNN, whose recurrent weight is
a vector); their pairs are written here in numpy, as a user would, following the manual protocol
step_forward(x_t, state, params) -> (new_state, cache), step_backward(dstate, cache) -> (dx_t,
dstate_prev, dparams).  Each pair is checked against finite differences on its own, then compare
must agree with a correct pair and catch a wrong one, naming the parameter and the step.
"""

import numpy as np
import pytest
from cells_for_tests import IndRNNCell, PeepholeLSTMCell, indrnn_step_backward, indrnn_step_forward

from tinygrad_rnn import manual, nn
from tinygrad_rnn.comparison import compare
from tinygrad_rnn.numeric import numerical_gradient

T, N, D, H = 5, 3, 3, 4
LENGTHS = [5, 2, 4]


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def peephole_step_forward(x, state, p):
    """i, f see c_prev and o sees c through the peepholes; gates i|f|g|o in the rows of the weights."""
    h_prev, c_prev = state
    a = x @ p["weight_ih"].T + h_prev @ p["weight_hh"].T + p["bias"]
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
    i, f, g = sigmoid(a_i + p["peep_i"] * c_prev), sigmoid(a_f + p["peep_f"] * c_prev), np.tanh(a_g)
    c = f * c_prev + i * g
    o = sigmoid(a_o + p["peep_o"] * c)
    tanh_c = np.tanh(c)
    return (o * tanh_c, c), (x, h_prev, c_prev, i, f, g, o, c, tanh_c, p)


def peephole_step_backward(dstate, cache):
    dh, dc = dstate
    x, h_prev, c_prev, i, f, g, o, c, tanh_c, p = cache
    da_o = dh * tanh_c * o * (1 - o)
    dc = dc + dh * o * (1 - tanh_c**2) + da_o * p["peep_o"]
    da_i, da_f, da_g = dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g**2)
    dc_prev = dc * f + da_i * p["peep_i"] + da_f * p["peep_f"]
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)
    dparams = {
        "weight_ih": da.T @ x,
        "weight_hh": da.T @ h_prev,
        "bias": da.sum(axis=0),
        "peep_i": (da_i * c_prev).sum(axis=0),
        "peep_f": (da_f * c_prev).sum(axis=0),
        "peep_o": (da_o * c).sum(axis=0),
    }
    return da @ p["weight_ih"], (da @ p["weight_hh"], dc_prev), dparams


PAIRS = {
    "peephole": (PeepholeLSTMCell, peephole_step_forward, peephole_step_backward, 2),
    "indrnn": (IndRNNCell, indrnn_step_forward, indrnn_step_backward, 1),
}


def layer_and_inputs(kind, num_layers=1, bidirectional=False, batch_first=False, steps=T, seed=0):
    cell = PAIRS[kind][0]
    layer = nn.Recurrent(
        cell, D, H, num_layers, bidirectional, batch_first, dtype=np.float64, rng=np.random.default_rng(seed)
    )
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((N, steps, D) if batch_first else (steps, N, D))
    rows = (num_layers * (2 if bidirectional else 1), N, H)
    states = tuple(0.5 * rng.standard_normal(rows) for _ in range(PAIRS[kind][3]))
    return layer, x, states if len(states) > 1 else states[0]


def pair(kind):
    return PAIRS[kind][1], PAIRS[kind][2]


# --- the pairs on their own, against finite differences ------------------------------------------


@pytest.mark.parametrize("kind", list(PAIRS))
def test_manual_pairs_match_finite_differences_through_the_stack(kind):
    """The pair run by manual's stack (2 layers, both directions, lengths) has the gradients of its own
    forward: the machinery sums dθ_t over steps, layers and directions correctly for any shapes."""
    layer, x, hx = layer_and_inputs(kind, num_layers=2, bidirectional=True)
    params = {name: p.data.copy() for name, p in layer.named_parameters()}
    options = dict(num_layers=2, bidirectional=True, lengths=LENGTHS)
    rng = np.random.default_rng(5)
    output, h_n, cache = manual.recurrent_forward(pair(kind), x, params, hx=hx, **options)
    finals = h_n if isinstance(h_n, tuple) else (h_n,)
    weights = [rng.standard_normal(output.shape), *(rng.standard_normal(s.shape) for s in finals)]

    def loss():
        out, state, _ = manual.recurrent_forward(pair(kind), x, params, hx=hx, **options)
        parts = (out, *(state if isinstance(state, tuple) else (state,)))
        return sum(float(np.sum(a * w)) for a, w in zip(parts, weights, strict=True))

    dh_n = tuple(weights[1:]) if isinstance(h_n, tuple) else weights[1]
    dx, dhx, grads = manual.recurrent_backward(weights[0], dh_n, cache)
    assert set(grads) == set(params)
    for key, value in params.items():
        np.testing.assert_allclose(
            grads[key], numerical_gradient(loss, value), rtol=1e-6, atol=1e-8, err_msg=key
        )
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)
    states, dstates = (hx, dhx) if isinstance(hx, tuple) else ((hx,), (dhx,))
    for state, dstate in zip(states, dstates, strict=True):
        np.testing.assert_allclose(dstate, numerical_gradient(loss, state), rtol=1e-6, atol=1e-8)


# --- compare with a correct pair, and with wrong ones ---------------------------------------------


def assert_agrees(report, rtol=1e-10):
    assert report.ok, str(report)
    assert report.divergence is None
    for row in report.rows:
        assert row.error.rel <= rtol, row
        assert row.steps_sum is None or row.steps_sum <= rtol, row
    for step in report.steps:
        assert step.error <= rtol and step.step_error <= rtol, step


@pytest.mark.parametrize("kind", list(PAIRS))
@pytest.mark.parametrize(
    "num_layers, bidirectional, batch_first, lengths",
    [(1, False, False, None), (2, True, False, LENGTHS), (2, False, True, LENGTHS)],
    ids=["plain", "bi_lengths", "batch_first"],
)
def test_compare_agrees_with_a_correct_pair(kind, num_layers, bidirectional, batch_first, lengths):
    layer, x, hx = layer_and_inputs(kind, num_layers, bidirectional, batch_first)
    report = compare(layer, x, hx=hx, lengths=lengths, manual=pair(kind))
    assert_agrees(report)
    streams = {s.stream for s in report.steps}
    assert len(streams) == num_layers * (2 if bidirectional else 1) and len(report.steps) == T * len(streams)
    names = {r.name for r in report.rows if r.kind == "parameter"}
    assert names == {name for name, _ in layer.named_parameters()}
    assert (
        "cell_l0.weight_hh" in names
        and report.row("cell_l0.weight_hh").shape == layer.cell_l0.weight_hh.shape
    )
    labels = [label for label, _ in report.steps[0].dweights]
    assert "bias" not in labels and "W_ih" in labels and ("peep_i" in labels) == (kind == "peephole")


def test_compare_without_hx_and_with_finite_differences():
    layer, x, _ = layer_and_inputs("peephole", steps=3)
    report = compare(layer, x, manual=pair("peephole"), finite_differences=True)
    assert_agrees(report)
    assert all(r.fd_autograd <= 1e-6 and r.fd_manual <= 1e-6 for r in report.rows if r.kind != "forward")
    assert {r.name for r in report.rows} >= {"h0", "c0", "h_n", "c_n", "x"}


def test_compare_catches_a_wrong_parameter_gradient_naming_the_parameter_and_step():
    layer, x, hx = layer_and_inputs("peephole", num_layers=2)

    def backward(dstate, cache):
        dx, dstate_prev, dparams = peephole_step_backward(dstate, cache)
        return dx, dstate_prev, {**dparams, "peep_i": 1.5 * dparams["peep_i"]}

    report = compare(layer, x, hx=hx, manual=(peephole_step_forward, backward))
    assert not report.ok
    assert set(report.failures) == {
        "cell_l0.peep_i",
        "cell_l1.peep_i",
        "step_backward of l0",
        "step_backward of l1",
    }
    assert all(s.dh_ok for s in report.steps)
    # BPTT visits the top layer's last step first
    assert report.divergence[:3] == ("cell_l1.peep_i", "l1", T - 1)
    assert report.divergence.rel == pytest.approx(1 / 3)
    text = str(report)
    assert "first divergence: cell_l1.peep_i of l1 at t=4" in text and "<- first divergence" in text


def test_compare_catches_a_wrong_state_gradient_at_the_step_where_it_starts():
    """dc_prev without the peephole terms: each step re-run alone names dc_prev at the first step BPTT
    visits (t = T−1), while along the states the error reaches h only through step T−2's gates, so
    dL/dh_t is right at the last two steps and first wrong at t = T−3."""
    layer, x, hx = layer_and_inputs("peephole")

    def backward(dstate, cache):
        dx, (dh_prev, _), dparams = peephole_step_backward(dstate, cache)
        dh, dc = dstate
        _, h_prev, c_prev, i, f, g, o, c, tanh_c, p = cache
        dc_total = dc + dh * o * (1 - tanh_c**2) + dh * tanh_c * o * (1 - o) * p["peep_o"]
        return dx, (dh_prev, dc_total * f), dparams

    report = compare(layer, x, hx=hx, manual=(peephole_step_forward, backward))
    assert not report.ok and "c0" in report.failures and "dL/dh_t of l0" in report.failures
    assert report.divergence[:3] == ("dc_prev", "l0", T - 1)
    assert [s.t for s in report.steps if not s.dh_ok] == list(range(T - 2))
    assert {"dL/dh_t of l0", "step_backward of l0"} <= set(report.failures)
    assert all(s.step_param == "dc_prev" for s in report.steps if s.t > 0)


def test_compare_catches_a_wrong_forward_and_a_broken_protocol():
    layer, x, hx = layer_and_inputs("indrnn")

    def forward(x_t, h_prev, p):
        return indrnn_step_forward(x_t + 0.1, h_prev, p)

    report = compare(layer, x, hx=hx, manual=(forward, indrnn_step_backward))
    assert (report.divergence.quantity, report.divergence.step) == ("output", 0)

    def backward(dh, cache):
        dx, dh_prev, dparams = indrnn_step_backward(dh, cache)
        return dx, dh_prev, {key: g for key, g in dparams.items() if key != "bias"}

    with pytest.raises(ValueError, match=r"step_backward at t=0: expected dparams with keys \['bias', "):
        compare(layer, x, hx=hx, manual=(indrnn_step_forward, backward))

    def widening(x_t, h_prev, p):
        h, cache = indrnn_step_forward(x_t, h_prev, p)
        return np.concatenate([h, h], axis=1), cache

    with pytest.raises(
        ValueError, match=r"step_forward at t=0 returned a state of shapes \[\(3, 8\)\], expected"
    ):
        compare(layer, x, hx=hx, manual=(widening, indrnn_step_backward))


def test_custom_layer_autograd_against_finite_differences_alone():
    layer, x, hx = layer_and_inputs("peephole", num_layers=2, bidirectional=True, steps=3)
    report = compare(layer, x, hx=hx, lengths=[3, 1, 2], finite_differences=True)
    assert report.ok, str(report)
    assert report.steps == () and report.tolerance == 1e-6
    assert {r.name for r in report.rows} == {name for name, _ in layer.named_parameters()} | {"x", "h0", "c0"}
    assert all(r.error.rel <= 1e-6 for r in report.rows)
    assert "finite differences agree with the autograd" in report.verdict()


def test_a_custom_layer_without_a_pair_or_finite_differences_is_refused():
    layer, x, _ = layer_and_inputs("indrnn")
    with pytest.raises(ValueError, match=r"IndRNNCell\) has no built-in manual BPTT; pass manual="):
        compare(layer, x)
    with pytest.raises(TypeError, match=r"expected manual=\(step_forward, step_backward\)"):
        compare(layer, x, manual=indrnn_step_forward)
    with pytest.raises(ValueError, match="parameters, which must be float64"):
        compare(
            nn.Recurrent(IndRNNCell, D, H, dtype=np.float32, rng=0),
            x.astype(np.float32),
            finite_differences=True,
        )


# --- the built-in cells through the generic machinery ----------------------------------------------


@pytest.mark.parametrize(
    "cell, options, step_pair",
    [
        (nn.LSTMCell, {}, (manual.lstm_step_forward, manual.lstm_step_backward)),
        (nn.GRUCell, {}, (manual.gru_step_forward, manual.gru_step_backward)),
        (nn.RNNCell, {"nonlinearity": "relu"}, None),
    ],
    ids=["lstm", "gru", "rnn_relu"],
)
def test_recurrent_of_a_builtin_cell_compares_with_its_builtin_pair(cell, options, step_pair):
    """nn.Recurrent(nn.LSTMCell) gets manual's lstm by default; the public step pair run step by step
    through the generic machinery gives the same report."""
    layer = nn.Recurrent(cell, D, H, 2, True, dtype=np.float64, rng=0, **options)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, N, D))
    hx = (
        tuple(rng.standard_normal((4, N, H)) for _ in range(2))
        if cell is nn.LSTMCell
        else rng.standard_normal((4, N, H))
    )
    default = compare(layer, x, hx=hx, lengths=LENGTHS)
    assert_agrees(default)
    if step_pair is not None:
        by_pair = compare(layer, x, hx=hx, lengths=LENGTHS, manual=step_pair)
        assert_agrees(by_pair)
        for a, b in zip(default.rows, by_pair.rows, strict=True):
            assert a.name == b.name and a.error.abs == pytest.approx(b.error.abs, abs=1e-14)


# --- tinygrad-rnn check --cell path/to/file.py:ClassName ----------------------------------------------

PAIR_FILE = """
import cells_for_tests
from cells_for_tests import indrnn_step_backward, indrnn_step_forward
from test_compare_custom import peephole_step_backward as PeepholeLSTMCell_step_backward
from test_compare_custom import peephole_step_forward as PeepholeLSTMCell_step_forward

step_forward, step_backward = indrnn_step_forward, indrnn_step_backward


class PeepholeLSTMCell(cells_for_tests.PeepholeLSTMCell):
    pass


class IndRNNCell(cells_for_tests.IndRNNCell):
    pass
"""


def test_check_finds_the_manual_pair_of_a_cell_file_by_name(tmp_path, capsys):
    from tinygrad_rnn.cli import main

    cells = tmp_path / "cells.py"
    cells.write_text(PAIR_FILE)
    spec = f"{cells}:PeepholeLSTMCell"
    assert main(["check", "--cell", spec, "--layers", "2", "--bidirectional", "--lengths", "5,2,4"]) == 0
    out = capsys.readouterr().out
    assert "compare: Recurrent(PeepholeLSTMCell, 3, 4, num_layers=2, bidirectional=True)" in out
    assert "cell_l1_reverse.peep_o" in out and "OK: manual BPTT equals the autograd" in out
    assert main(["check", "--cell", f"{cells}:IndRNNCell", "--fd"]) == 0  # the file's step_forward/_backward
    out = capsys.readouterr().out
    assert "cell_l0.weight_hh" in out and "fd:manual" in out and "check: 1 of 1 agree" in out


def test_check_with_a_cell_file_without_a_pair(tmp_path, capsys):
    from tinygrad_rnn.cli import main

    cells = tmp_path / "cells.py"
    cells.write_text("import cells_for_tests\n\n\nclass IndRNNCell(cells_for_tests.IndRNNCell):\n    pass\n")
    assert main(["check", "--cell", f"{cells}:IndRNNCell"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "defines no manual pair for IndRNNCell" in err and "pass --fd" in err
    assert main(["check", "--cell", f"{cells}:IndRNNCell", "--fd"]) == 0
    assert "finite differences agree with the autograd" in capsys.readouterr().out
    half = tmp_path / "half.py"
    half.write_text(cells.read_text() + "\n\ndef IndRNNCell_step_forward(x, h, p):\n    pass\n")
    assert main(["check", "--cell", f"{half}:IndRNNCell"]) == 2
    assert "IndRNNCell_step_backward is missing" in capsys.readouterr().err
    for spec, message in (
        (f"{tmp_path / 'nowhere.py'}:IndRNNCell", "not found"),
        (f"{cells}:GRU", "has no GRU"),
        ("transformer", "--cell: expected one of"),
    ):
        assert main(["check", "--cell", spec]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


# --- a language model around a custom cell ----------------------------------------------------------


@pytest.mark.parametrize("kind", list(PAIRS))
def test_language_model_of_a_custom_cell_compares_with_its_pair(kind):
    """Embedding → nn.Recurrent(cell) → Linear → summed cross-entropy: the pair through manual's language
    model (full and truncated BPTT) agrees, finite differences too, and a wrong pair is named."""
    model = nn.LanguageModel(6, 3, H, cell=PAIRS[kind][0], num_layers=2, dtype=np.float64, rng=0)
    rng = np.random.default_rng(0)
    tokens, targets = rng.integers(0, 6, (T, N)), rng.integers(0, 6, (T, N))
    report = compare(
        model, tokens, targets=targets, lengths=LENGTHS, manual=pair(kind), finite_differences=True
    )
    assert_agrees(report)
    assert {"rnn.cell_l1.weight_hh", "embedding.weight", "decoder.weight"} <= {r.name for r in report.rows}
    assert compare(model, tokens, targets=targets, tbptt=2, manual=pair(kind)).ok

    def wrong(dstate, cache):
        dx, dstate_prev, dparams = pair(kind)[1](dstate, cache)
        return dx, dstate_prev, {**dparams, "bias": 2 * dparams["bias"]}

    wrong_report = compare(model, tokens, targets=targets, manual=(pair(kind)[0], wrong))
    assert wrong_report.divergence[:3] == ("rnn.cell_l1.bias", "l1", T - 1)
