"""Helpers for users' own tests (pytest or plain asserts).

from tinygrad_rnn.testing import assert_grads_match

def test_my_lstm():
    model = nn.LSTM(3, 4, num_layers=2, dtype="float64", rng=0)
    assert_grads_match(model, np.random.default_rng(0).standard_normal((5, 2, 3)), lengths=[5, 3])

def test_my_cell():      # your own cell and its hand-written numpy pair (tinygrad_rnn.manual.cell)
    layer = nn.Recurrent(MyCell, 3, 4, bidirectional=True)
    assert_grads_match(layer, x, manual=(step_forward, step_backward))
"""

from typing import Any

from .comparison import Report, compare


def assert_grads_match(module: Any, inputs: Any, **options: Any) -> Report:
    """Compare the autograd's gradients with manual BPTT (see `tinygrad_rnn.comparison.compare`).

    `options` are compare's keywords (hx, lengths, manual, finite_differences, targets, tbptt,
    max_norm, seed, rtol).  Returns the report when every gradient agrees; raises AssertionError whose message
    is the whole report table otherwise, so a failing test shows where the paths diverge.
    """
    report = compare(module, inputs, **options)
    if not report.ok:
        raise AssertionError(f"gradients disagree\n{report}")
    return report
