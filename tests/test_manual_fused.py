"""The whole-sequence kernels (manual/fused.py) against the step path they replace: same outputs,
final states, gradients and per-step records, in float64 to 1e-12, over layers, directions, biases,
a given final-state gradient, and the GRU's reset_after=False (which keeps the step path)."""

import numpy as np
import pytest

from tinygrad_rnn import manual
from tinygrad_rnn.manual.gru import gru_cell
from tinygrad_rnn.manual.lstm import LSTM_CELL
from tinygrad_rnn.manual.rnn import rnn_cell

T, N, D, H = 5, 3, 4, 6
CELLS = {
    "lstm": (LSTM_CELL, 4, 2),
    "gru": (gru_cell(True), 3, 1),
    "rnn_tanh": (rnn_cell("tanh"), 1, 1),
    "rnn_relu": (rnn_cell("relu"), 1, 1),
}


def stack_params(gates, layers, directions, bias, rng):
    params = {}
    for layer in range(layers):
        for direction in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            width = D if layer == 0 else H * directions
            params["weight_ih" + suffix] = rng.standard_normal((gates * H, width)) * 0.5
            params["weight_hh" + suffix] = rng.standard_normal((gates * H, H)) * 0.5
            if bias:
                params["bias_ih" + suffix] = rng.standard_normal(gates * H)
                params["bias_hh" + suffix] = rng.standard_normal(gates * H)
    return params


def assert_same(fused, steps, what):
    if isinstance(fused, dict):
        assert fused.keys() == steps.keys(), what
        for key in fused:
            assert_same(fused[key], steps[key], f"{what}.{key}")
    elif isinstance(fused, tuple):
        assert len(fused) == len(steps), what
        for k, (a, b) in enumerate(zip(fused, steps, strict=True)):
            assert_same(a, b, f"{what}[{k}]")
    else:
        assert np.shape(fused) == np.shape(steps), what
        np.testing.assert_allclose(fused, steps, rtol=1e-12, atol=1e-12, err_msg=what)


def run(cell, x, params, layers, bidirectional, hx, doutput, dh_n):
    output, h_n, cache = manual.recurrent_forward(
        cell, x, params, num_layers=layers, bidirectional=bidirectional, hx=hx
    )
    dx, dhx, grads, records = manual.recurrent_backward(doutput, dh_n, cache, return_steps=True)
    return (output, h_n, dx, dhx, grads), records, cache


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True)])
def test_kernel_equals_the_steps(name, bias, layers, bidirectional):
    cell, gates, arrays = CELLS[name]
    rng = np.random.default_rng(0)
    directions = 2 if bidirectional else 1
    params = stack_params(gates, layers, directions, bias, rng)
    x = rng.standard_normal((T, N, D))
    hx = tuple(rng.standard_normal((layers * directions, N, H)) for _ in range(arrays))
    dh_n = tuple(rng.standard_normal((layers * directions, N, H)) for _ in range(arrays))
    hx, dh_n = (hx, dh_n) if arrays == 2 else (hx[0], dh_n[0])
    doutput = rng.standard_normal((T, N, directions * H))
    fused, fused_records, cache = run(cell, x, params, layers, bidirectional, hx, doutput, dh_n)
    assert cache.layers[0][0].fused is not None  # the kernel ran
    plain, plain_records, cache = run(
        cell._replace(fused=None), x, params, layers, bidirectional, hx, doutput, dh_n
    )
    assert cache.layers[0][0].fused is None
    assert_same(fused, plain, name)
    assert fused_records.keys() == plain_records.keys()
    for stream, record in fused_records.items():
        assert_same(tuple(record), tuple(plain_records[stream]), f"records {stream}")


def test_lengths_and_the_other_gru_take_the_step_path():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, N, D))
    lstm = stack_params(4, 1, 1, True, rng)
    _, _, cache = manual.recurrent_forward("lstm", x, lstm, lengths=[5, 2, 3])
    assert cache.layers[0][0].fused is None
    gru = stack_params(3, 1, 1, True, rng)
    _, _, cache = manual.recurrent_forward("gru", x, gru, reset_after=False)
    assert cache.layers[0][0].fused is None
    _, _, cache = manual.recurrent_forward("gru", x, gru)
    assert cache.layers[0][0].fused is not None


def test_float32_input_runs_the_kernel_in_float32():
    rng = np.random.default_rng(2)
    params = {k: v.astype(np.float32) for k, v in stack_params(4, 1, 1, True, rng).items()}
    x = rng.standard_normal((T, N, D)).astype(np.float32)
    output, (h_n, c_n), cache = manual.recurrent_forward("lstm", x, params)
    dx, _, grads = manual.recurrent_backward(np.ones_like(output), None, cache)
    assert output.dtype == h_n.dtype == c_n.dtype == dx.dtype == grads["weight_hh_l0"].dtype == np.float32
    reference, _, _ = manual.recurrent_forward(LSTM_CELL._replace(fused=None), x, params)
    np.testing.assert_allclose(output, reference, rtol=1e-5, atol=1e-6)


def test_changing_the_output_in_place_leaves_the_backward_alone():
    rng = np.random.default_rng(3)
    params = stack_params(4, 1, 1, True, rng)
    x, doutput = rng.standard_normal((T, N, D)), rng.standard_normal((T, N, H))
    output, (h_n, c_n), cache = manual.recurrent_forward("lstm", x, params)
    expected = manual.recurrent_backward(doutput, None, cache)[2]
    output, (h_n, c_n), cache = manual.recurrent_forward("lstm", x, params)
    output *= 0
    h_n *= 0
    c_n *= 0
    assert_same(manual.recurrent_backward(doutput, None, cache)[2], expected, "grads")
