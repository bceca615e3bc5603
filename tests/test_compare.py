"""compare: manual BPTT against the autograd (and finite differences), the report, the helper, the CLI.

Sizes stay small (T ≤ 5, N ≤ 3, D, H ≤ 4) so the whole matrix runs in seconds.  Manual against
finite differences is tested in test_manual.py; here finite differences are the report's third
column, so the two paths cannot vouch for each other when wrong alike.
"""

import argparse
import importlib

import numpy as np
import pytest

from tinygrad_rnn import manual, nn
from tinygrad_rnn.cli.check import add_check_parser
from tinygrad_rnn.comparison import Report, compare
from tinygrad_rnn.testing import assert_grads_match

# the module, not the function of the same name that the package may export
manual_rnn = importlib.import_module("tinygrad_rnn.manual.rnn")

RTOL = 1e-10
T, N, D, H = 5, 3, 3, 2
LENGTHS = [5, 2, 4]
CELLS = {
    "rnn_tanh": lambda **kw: nn.RNN(D, H, nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: nn.RNN(D, H, nonlinearity="relu", **kw),
    "lstm": lambda **kw: nn.LSTM(D, H, **kw),
    "gru": lambda **kw: nn.GRU(D, H, **kw),
    "gru_reset_before": lambda **kw: nn.GRU(D, H, reset_after=False, **kw),
}


def make(cell, num_layers=1, bidirectional=False, batch_first=False, dtype="float64", seed=0):
    return CELLS[cell](
        num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, dtype=dtype, rng=seed
    )


def inputs(module, seed=1, steps=T):
    """x in the module's layout and a random initial state (h0, or (h0, c0) for LSTM)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, steps, D) if module.batch_first else (steps, N, D))
    rows = (module.num_layers * module.num_directions, N, H)
    states = tuple(0.5 * rng.standard_normal(rows) for _ in range(2 if module.mode == "LSTM" else 1))
    return x, states if module.mode == "LSTM" else states[0]


def assert_all_agree(report: Report, rtol: float = RTOL) -> None:
    """Every row, gate block, per-step norm and Σ_t dW_t check within rtol; the verdict says ok."""
    assert report.ok, str(report)
    for row in report.rows:
        assert row.error.rel <= rtol, row
        assert all(e.rel <= rtol for _, e in row.blocks), row
        assert row.steps_sum is None or row.steps_sum <= rtol, row
    for step in report.steps:
        assert step.error <= rtol, step
        assert step.dh_manual == pytest.approx(step.dh_autograd, rel=rtol, abs=1e-14)
    assert report.divergence is None


def lm(cell, num_layers=2, dtype="float64", vocab=5):
    return nn.LanguageModel(vocab, D, H, cell, num_layers, dtype=dtype, rng=0)


def lm_data(vocab=5, steps=T, seed=2):
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocab, (steps, N)), rng.integers(0, vocab, (steps, N))


# --- manual equals autograd ----------------------------------------------------------------------


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("cell", list(CELLS))
def test_manual_equals_autograd(cell, num_layers, bidirectional, batch_first, lengths):
    module = make(cell, num_layers, bidirectional, batch_first)
    x, hx = inputs(module)
    report = compare(module, x, hx=hx, lengths=lengths)
    assert_all_agree(report)
    names = [name for name, _ in module.named_parameters()]
    grads = [r.name for r in report.rows if r.kind == "parameter"]
    state = ["h0", "c0"] if cell == "lstm" else ["h0"]
    assert grads == names
    assert [r.name for r in report.rows if r.kind == "input"] == ["x", *state]
    streams = {s.stream for s in report.steps}
    assert len(streams) == num_layers * (2 if bidirectional else 1)
    assert len(report.steps) == len(streams) * T


def test_padded_steps_have_zero_gradient():
    module = make("lstm", 2, True)
    x, hx = inputs(module)
    report = compare(module, x, hx=hx, lengths=[2, 2, 2])
    late = [s for s in report.steps if s.t >= 2]
    assert late and all(s.dh_autograd == s.dh_manual == 0 for s in late)
    assert all(norm == 0 for s in late for _, norm in s.dweights)


def test_unbatched_input():
    module = make("gru", 2, True)
    x = np.random.default_rng(3).standard_normal((T, D))
    assert_all_agree(compare(module, x))


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_language_model(cell, lengths):
    model = lm(cell)
    tokens, targets = lm_data()
    report = compare(model, tokens, targets=targets, lengths=lengths)
    assert_all_agree(report)
    assert report.row("loss").kind == "forward"
    assert report.row("embedding.weight").steps_sum is None
    assert report.row("rnn.weight_hh_l1").steps_sum <= RTOL


@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("lengths", [None, [5, 1, 3]], ids=["full", "lengths"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_truncated_bptt(cell, lengths, k):
    model = lm(cell)
    tokens, targets = lm_data()
    rng = np.random.default_rng(4)
    rows = (2, N, H)
    hx = (
        (rng.standard_normal(rows), rng.standard_normal(rows))
        if cell == "lstm"
        else rng.standard_normal(rows)
    )
    report = compare(model, tokens, targets=targets, hx=hx, lengths=lengths, tbptt=k)
    assert_all_agree(report)
    assert report.steps == ()
    assert "truncated BPTT k=" in report.title


@pytest.mark.parametrize("max_norm", [1e-3, 1e3], ids=["clipped", "unclipped"])
def test_clipping_by_global_norm(max_norm):
    module = make("lstm", 2, True)
    x, hx = inputs(module)
    report = compare(module, x, hx=hx, max_norm=max_norm)
    assert_all_agree(report)
    norm = report.row("total grad norm")
    assert norm.kind == "clip" and norm.error.scale > 1e-3
    largest = max(r.error.scale for r in report.rows if r.kind == "parameter")
    assert (largest <= max_norm) if max_norm < 1 else (largest > 1e-3)


def test_clipping_language_model_with_truncation():
    tokens, targets = lm_data()
    assert_all_agree(compare(lm("gru"), tokens, targets=targets, tbptt=2, max_norm=0.1))


def test_per_step_contributions_sum_to_the_gradient():
    module = make("gru_reset_before", 2, True)
    x, hx = inputs(module)
    report = compare(module, x, hx=hx, lengths=LENGTHS)
    sums = {r.name: r.steps_sum for r in report.rows if r.kind == "parameter"}
    assert set(sums) == {name for name, _ in module.named_parameters()}
    assert all(value is not None and value <= 1e-12 for value in sums.values()), sums
    assert "ΣdW_t vs dW" in str(report)


def test_gate_blocks():
    lstm = compare(make("lstm"), inputs(make("lstm"))[0])
    gru = compare(make("gru"), inputs(make("gru"))[0])
    rnn = compare(make("rnn_tanh"), inputs(make("rnn_tanh"))[0])
    assert [label for label, _ in lstm.row("weight_ih_l0").blocks] == ["i", "f", "g", "o"]
    assert [label for label, _ in gru.row("bias_hh_l0").blocks] == ["r", "z", "n"]
    assert rnn.row("weight_hh_l0").blocks == ()
    assert lstm.row("x").blocks == ()


# --- finite differences --------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru_reset_before"])
def test_finite_differences_agree_with_both_paths(cell):
    module = make(cell, 2, True)
    x, hx = inputs(module, steps=3)
    report = compare(module, x[:3], hx=hx, lengths=[3, 1, 2], finite_differences=True)
    assert report.ok, str(report)
    gradients = [r for r in report.rows if r.kind in ("parameter", "input")]
    assert all(r.fd_autograd <= 1e-6 and r.fd_manual <= 1e-6 for r in gradients)
    assert "fd:autograd" in str(report)


def test_finite_differences_language_model():
    tokens, targets = lm_data(steps=3)
    report = compare(lm("lstm", 1), tokens, targets=targets, finite_differences=True, max_norm=0.5)
    assert report.ok, str(report)
    assert all(r.fd_manual <= 1e-6 for r in report.rows if r.kind == "parameter")


def test_finite_differences_skipped_when_large():
    module = make("lstm", 2)
    report = compare(module, inputs(module)[0], finite_differences=True, fd_max_elements=10)
    assert report.ok
    assert all(r.fd_autograd is None for r in report.rows)
    assert any("fd_max_elements=10" in note for note in report.notes)
    assert "note: finite differences skipped" in str(report)


# --- the comparison catches real errors ----------------------------------------------------------


def steps_only(monkeypatch):
    """Sequences run the RNN's step pair, not its whole-sequence kernel (manual/rnn_fused.py), so a
    broken step is what the sequence computes too."""
    monkeypatch.setattr(manual_rnn, "rnn_kernel", lambda nonlinearity: None)


def drop_tanh_derivative(dstate, step):
    """The RNN step's backward without the (1 − h²) factor: δ = dL/dh instead of dL/dh ⊙ (1 − h²)."""
    (dh,) = dstate
    return dh, (dh @ step.weight_hh,), dh


def test_catches_a_dropped_tanh_derivative(monkeypatch):
    monkeypatch.setattr(manual_rnn, "_backward", drop_tanh_derivative)
    steps_only(monkeypatch)
    module = make("rnn_tanh")
    x, hx = inputs(module)
    report = compare(module, x, hx=hx)
    assert not report.ok
    assert {"weight_hh_l0", "weight_ih_l0", "bias_ih_l0", "x", "h0"} <= set(report.failures)
    assert "dL/dh_t of l0" in report.failures
    # dL/dh_{T−1} is the output path alone; the missing factor first shows one step earlier
    assert (report.divergence.quantity, report.divergence.stream, report.divergence.step) == (
        "dL/dh_t",
        "l0",
        T - 2,
    )
    text = str(report)
    assert "NOT OK" in text and "weight_hh_l0" in text and "first divergence: dL/dh_t of l0 at t=3" in text
    assert "<- first divergence" in text


def test_catches_a_wrong_weight_gradient():
    """A pair given to compare runs on a built-in layer's own weights: the RNN's public pair with
    dW_hh doubled is caught in exactly the two weights, every step agreeing."""

    def doubled(dh, cache):
        dx, dh_prev, dparams = manual.rnn_step_backward(dh, cache)
        return dx, dh_prev, {**dparams, "weight_hh": 2 * dparams["weight_hh"]}

    module = make("rnn_tanh", 2)
    x, hx = inputs(module)
    report = compare(module, x, hx=hx, manual=(manual.rnn_step_forward, doubled))
    assert not report.ok
    assert set(report.failures) == {"weight_hh_l0", "weight_hh_l1"}
    assert report.row("weight_hh_l0").error.rel == pytest.approx(0.5)
    assert all(s.ok for s in report.steps)
    assert report.divergence.quantity == "weight_hh_l0" and report.divergence.step is None


def test_catches_a_wrong_forward(monkeypatch):
    original = manual_rnn._forward

    def shifted(gx, state, params, nonlinearity):
        return original(gx + 0.1, state, params, nonlinearity)

    monkeypatch.setattr(manual_rnn, "_forward", shifted)
    steps_only(monkeypatch)
    report = compare(make("rnn_tanh"), inputs(make("rnn_tanh"))[0])
    assert not report.ok
    assert (report.divergence.quantity, report.divergence.step) == ("output", 0)


def test_finite_differences_flag_a_reference_both_paths_disagree_with(monkeypatch):
    """A reference that disagrees with both paths is flagged in the fd column, naming the parameter."""
    module = make("rnn_tanh")
    x, hx = inputs(module, steps=3)
    compare_module = importlib.import_module("tinygrad_rnn.comparison.run")
    original = compare_module.finite_difference_grads

    def off(problem):
        grads, dinputs = original(problem)
        return {**grads, "bias_hh_l0": grads["bias_hh_l0"] + 1.0}, dinputs

    monkeypatch.setattr(compare_module, "finite_difference_grads", off)
    report = compare(module, x[:3], hx=hx, finite_differences=True)
    assert report.failures == ("bias_hh_l0",)
    assert report.row("bias_hh_l0").error.rel <= RTOL
    assert report.divergence.quantity == "bias_hh_l0 (autograd vs finite differences)"


# --- float32, options, errors --------------------------------------------------------------------


def test_float32_agrees_with_a_looser_tolerance():
    module = make("lstm", 2, True, dtype="float32")
    x, hx = inputs(module)
    report = compare(module, x, hx=hx, lengths=LENGTHS)
    assert report.ok, str(report)
    assert report.tolerance == 1e-4 and report.dtype == np.float32
    assert 1e-10 < report.worst <= 1e-4
    assert not compare(module, x, hx=hx, lengths=LENGTHS, rtol=1e-12).ok


def test_module_gradients_are_left_alone():
    module = make("gru")
    for p in module.parameters():
        p.grad = None
    first = next(module.parameters())
    marker = nn.Parameter(np.ones(first.shape))
    first.grad = marker
    compare(module, inputs(module)[0])
    assert first.grad is marker
    assert all(p.grad is None for p in list(module.parameters())[1:])


def test_seed_changes_the_upstream_gradient_only():
    module = make("rnn_tanh")
    x = inputs(module)[0]
    a, b = compare(module, x, seed=0), compare(module, x, seed=1)
    assert a.row("output").error.scale == b.row("output").error.scale
    assert a.row("weight_hh_l0").error.scale != b.row("weight_hh_l0").error.scale


def test_errors_at_the_boundary():
    tokens, targets = lm_data()
    module = make("lstm")
    x = inputs(module)[0]
    with pytest.raises(ValueError, match="needs targets"):
        compare(lm("lstm"), tokens)
    with pytest.raises(ValueError, match="tbptt needs a language model"):
        compare(module, x, tbptt=2)
    with pytest.raises(ValueError, match="targets are for a language model"):
        compare(module, x, targets=targets)
    with pytest.raises(ValueError, match="dropout"):
        compare(nn.LSTM(D, H, 2, dropout=0.5, dtype="float64", rng=0), x)
    with pytest.raises(TypeError, match="expected an nn.RNN"):
        compare(nn.Linear(D, H), x)
    with pytest.raises(ValueError, match=r"h0 of shape"):
        compare(module, x, hx=(np.zeros((2, N, H)), np.zeros((1, N, H))))
    with pytest.raises(ValueError, match="max_norm"):
        compare(module, x, max_norm=0)


def test_eval_mode_allows_dropout_modules():
    module = nn.GRU(D, H, 2, dropout=0.5, dtype="float64", rng=0).eval()
    assert_all_agree(compare(module, inputs(make("gru", 2))[0]))


def test_report_table_is_aligned():
    module = make("lstm", 2, True)
    x, hx = inputs(module)
    text = str(compare(module, x, hx=hx, lengths=LENGTHS))
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("quantity"))
    column = lines[header].index("status")
    table = lines[header + 2 : lines.index("", header)]
    assert len(table) == len(module.state_dict()) * 5 + 3 + 3  # 4 gate blocks each; forward; inputs
    assert all(line[column:] == "ok" for line in table)
    assert all(len(line) == len(table[0]) for line in table)
    assert text.splitlines()[-1].startswith("OK: manual BPTT equals the autograd")
    assert "‖dL/dh_t‖ autograd" in text and "l1_reverse" in text


# --- the pytest helper ---------------------------------------------------------------------------


def test_assert_grads_match_passes_on_a_correct_module():
    module = make("lstm", 2, True, batch_first=True)
    x, hx = inputs(module)
    report = assert_grads_match(module, x, hx=hx, lengths=LENGTHS)
    assert isinstance(report, Report) and report.ok
    tokens, targets = lm_data()
    assert assert_grads_match(lm("gru"), tokens, targets=targets, tbptt=2).ok


def test_assert_grads_match_raises_on_a_broken_one(monkeypatch):
    monkeypatch.setattr(manual_rnn, "_backward", drop_tanh_derivative)
    steps_only(monkeypatch)
    module = make("rnn_tanh")
    with pytest.raises(AssertionError, match=r"(?s)gradients disagree.*weight_hh_l0.*NOT OK"):
        assert_grads_match(module, inputs(module)[0])


# --- the CLI -------------------------------------------------------------------------------------


def run_cli(argv):
    parser = argparse.ArgumentParser(prog="tinygrad-rnn")
    add_check_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


@pytest.mark.parametrize(
    "argv",
    [
        ["check"],
        ["check", "--cell", "all", "--layers", "2", "--bidirectional", "--batch-first", "--lengths", "5,3,2"],
        ["check", "--cell", "rnn-relu", "--steps", "4", "--lengths", "random", "--fd"],
        ["check", "--cell", "all", "--lm", "--lengths", "5,1,3", "--clip", "0.5"],
        ["check", "--cell", "gru", "--tbptt", "2", "--layers", "2"],
        [
            "check",
            "--cell",
            "gru-reset-before",
            "--dtype",
            "float32",
            "--input-size",
            "4",
            "--hidden-size",
            "4",
        ],
    ],
)
def test_cli_check_prints_the_table_and_exits_0(argv, capsys):
    assert run_cli(argv) == 0
    out = capsys.readouterr().out
    assert "quantity" in out and "rel err" in out and "OK: manual BPTT equals the autograd" in out
    assert out.rstrip().splitlines()[-1].startswith("check: ") and " agree" in out


def test_cli_check_all_runs_every_cell(capsys):
    assert run_cli(["check", "--cell", "all"]) == 0
    out = capsys.readouterr().out
    assert out.count("OK: manual BPTT") == 5
    assert "nonlinearity='relu'" in out and "reset_after=False" in out
    assert "check: 5 of 5 agree" in out


def test_cli_check_exits_1_when_gradients_disagree(monkeypatch, capsys):
    monkeypatch.setattr(manual_rnn, "_backward", drop_tanh_derivative)
    steps_only(monkeypatch)
    assert run_cli(["check", "--cell", "rnn"]) == 1
    out = capsys.readouterr().out
    assert "NOT OK" in out and "first divergence" in out and "check: 0 of 1 agree" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["check", "--lm", "--bidirectional"], "unidirectional"),
        (["check", "--lm", "--cell", "rnn-relu"], "--cell must be one of"),
        (["check", "--lengths", "5,x"], "--lengths"),
        (["check", "--lengths", "5,3"], "lengths"),
    ],
)
def test_cli_check_exits_2_on_bad_arguments(argv, message, capsys):
    assert run_cli(argv) == 2
    assert message in capsys.readouterr().err
