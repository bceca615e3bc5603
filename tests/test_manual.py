"""manual vs finite differences, plus its errors, dtypes and bookkeeping.

Every gradient check is float64 and goes through one helper, `assert_matches_fd`: the analytic
gradients of a loss Σ out ⊙ G (random G) against central differences of that loss.
"""

import warnings
from functools import partial

import numpy as np
import pytest
from cells_for_tests import indrnn_step_backward, indrnn_step_forward

from tinygrad_rnn import manual
from tinygrad_rnn.numeric import numerical_gradient

RTOL, ATOL = 1e-6, 1e-8
T, N, D, H = 4, 3, 3, 2
LENGTHS = [4, 2, 3]
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3, "gru_before": 3}
STACK_ARGS = {
    "rnn_tanh": {"mode": "rnn"},
    "rnn_relu": {"mode": "rnn", "nonlinearity": "relu"},
    "lstm": {"mode": "lstm"},
    "gru": {"mode": "gru"},
    "gru_before": {"mode": "gru", "reset_after": False},
}


def assert_matches_fd(arrays, loss, grads, rtol=RTOL, atol=ATOL):
    """grads[name] (analytic, at the current values) equals d loss() / d arrays[name] numerically."""
    assert set(grads) == set(arrays)
    for name, array in arrays.items():
        np.testing.assert_allclose(
            grads[name], numerical_gradient(loss, array), rtol=rtol, atol=atol, err_msg=name
        )


def weighted_sum(arrays, weights):
    """Σ_i Σ arrays[i] ⊙ weights[i]: a loss whose upstream gradients are the random weights."""
    return sum(float(np.sum(a * w)) for a, w in zip(arrays, weights, strict=True))


def cell_params(rng, kind, input_width=D, bias=True, suffix=""):
    rows = GATES[kind] * H
    params = {
        "weight_ih" + suffix: rng.standard_normal((rows, input_width)) * 0.6,
        "weight_hh" + suffix: rng.standard_normal((rows, H)) * 0.6,
    }
    if bias:
        params["bias_ih" + suffix] = rng.standard_normal(rows) * 0.3
        params["bias_hh" + suffix] = rng.standard_normal(rows) * 0.3
    return params


def stack_params(rng, kind, num_layers, bidirectional, input_width=D):
    params = {}
    for layer in range(num_layers):
        for direction in range(2 if bidirectional else 1):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            width = input_width if layer == 0 else H * (2 if bidirectional else 1)
            params.update(cell_params(rng, kind, width, suffix=suffix))
    return params


# One adapter per cell so the step and sequence tests are one table: states are always tuples.
def step_functions(kind):
    if kind == "lstm":
        return (
            lambda x, state, p: manual.lstm_step_forward(x, state, p),
            lambda dstate, cache: manual.lstm_step_backward(dstate, cache),
        )
    if kind.startswith("rnn"):
        forward, backward = manual.rnn_step_forward, manual.rnn_step_backward
        options = {"nonlinearity": kind.split("_")[1]}
    else:
        forward, backward = manual.gru_step_forward, manual.gru_step_backward
        options = {"reset_after": kind == "gru"}

    def step_forward(x, state, p):
        h, cache = forward(x, state[0], p, **options)
        return (h,), cache

    def step_backward(dstate, cache):
        dx, dh_prev, dparams = backward(dstate[0], cache)
        return dx, (dh_prev,), dparams

    return step_forward, step_backward


def sequence_functions(kind):
    if kind == "lstm":
        return (
            lambda x, state, p, **kw: manual.lstm_forward(x, state, p, **kw),
            lambda dout, dstate, cache, **kw: manual.lstm_backward(dout, dstate, cache, **kw),
        )
    if kind.startswith("rnn"):
        forward, backward = manual.rnn_forward, manual.rnn_backward
        options = {"nonlinearity": kind.split("_")[1]}
    else:
        forward, backward = manual.gru_forward, manual.gru_backward
        options = {"reset_after": kind == "gru"}

    def sequence_forward(x, state, p, **kw):
        output, h_n, cache = forward(x, state[0], p, **kw, **options)
        return output, (h_n,), cache

    def sequence_backward(doutput, dstate, cache, **kw):
        dx, dh0, dparams, *steps = backward(doutput, dstate[0], cache, **kw)
        return (dx, (dh0,), dparams, *steps)

    return sequence_forward, sequence_backward


def n_states(kind):
    return 2 if kind == "lstm" else 1


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("kind", list(GATES))
def test_step_matches_fd(kind, bias):
    rng = np.random.default_rng(0)
    forward, backward = step_functions(kind)
    params = cell_params(rng, kind, bias=bias)
    x = rng.standard_normal((N, D))
    state = tuple(rng.standard_normal((N, H)) for _ in range(n_states(kind)))
    weights = [rng.standard_normal((N, H)) for _ in state]
    new_state, cache = forward(x, state, params)
    dx, dstate, dparams = backward(tuple(weights), cache)
    arrays = {"x": x, **{f"state{i}": s for i, s in enumerate(state)}, **params}
    grads = {"x": dx, **{f"state{i}": d for i, d in enumerate(dstate)}, **dparams}
    assert_matches_fd(arrays, lambda: weighted_sum(forward(x, state, params)[0], weights), grads)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("kind", list(GATES))
def test_sequence_matches_fd(kind, lengths, reverse):
    rng = np.random.default_rng(0)
    forward, backward = sequence_functions(kind)
    params = cell_params(rng, kind)
    x = rng.standard_normal((T, N, D))
    state0 = tuple(rng.standard_normal((N, H)) for _ in range(n_states(kind)))
    weights = [rng.standard_normal((T, N, H))] + [rng.standard_normal((N, H)) for _ in state0]

    def outputs():
        output, state_n, _ = forward(x, state0, params, lengths=lengths, reverse=reverse)
        return (output, *state_n)

    _, _, cache = forward(x, state0, params, lengths=lengths, reverse=reverse)
    dx, dstate0, dparams = backward(weights[0], tuple(weights[1:]), cache)
    arrays = {"x": x, **{f"state{i}": s for i, s in enumerate(state0)}, **params}
    grads = {"x": dx, **{f"state{i}": d for i, d in enumerate(dstate0)}, **dparams}
    assert_matches_fd(arrays, lambda: weighted_sum(outputs(), weights), grads)


@pytest.mark.parametrize("kind", list(GATES))
def test_per_step_records_match_fd_of_an_unrolled_loop(kind):
    """BPTTSteps.dh[t] = dL/dh_t and dparams[key][t] = dL/d(step t's own copy of the weight)."""
    rng = np.random.default_rng(0)
    step_forward, _ = step_functions(kind)
    forward, backward = sequence_functions(kind)
    params = cell_params(rng, kind)
    x = rng.standard_normal((T, N, D))
    state0 = tuple(rng.standard_normal((N, H)) for _ in range(n_states(kind)))
    weights = [rng.standard_normal((T, N, H))] + [rng.standard_normal((N, H)) for _ in state0]
    copies = [{key: value.copy() for key, value in params.items()} for _ in range(T)]
    nudges = [np.zeros((N, H)) for _ in range(T)]

    def unrolled_loss():
        state, outputs = state0, []
        for t in range(T):
            state, _ = step_forward(x[t], state, copies[t])
            state = (state[0] + nudges[t], *state[1:])
            outputs.append(state[0])
        return weighted_sum([np.stack(outputs), *state], weights)

    _, _, cache = forward(x, state0, params)
    *_, steps = backward(weights[0], tuple(weights[1:]), cache, return_steps=True)
    for t in range(T):
        arrays = {"h": nudges[t], **copies[t]}
        grads = {"h": steps.dh[t], **{key: g[t] for key, g in steps.dparams.items()}}
        assert_matches_fd(arrays, unrolled_loss, grads)


@pytest.mark.parametrize("lengths", [None, [3, 1]], ids=["full", "lengths"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru", "gru_before"])
def test_stack_matches_fd(kind, num_layers, bidirectional, batch_first, lengths):
    rng = np.random.default_rng(0)
    steps, batch, width = 3, 2, 2
    params = stack_params(rng, kind, num_layers, bidirectional, width)
    x = rng.standard_normal((batch, steps, width) if batch_first else (steps, batch, width))
    shape = (num_layers * (2 if bidirectional else 1), batch, H)
    states = tuple(rng.standard_normal(shape) for _ in range(n_states(kind)))
    hx = states if kind == "lstm" else states[0]
    options = dict(
        STACK_ARGS[kind],
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        lengths=lengths,
    )

    def outputs():
        output, h_n, _ = manual.recurrent_forward(x=x, params=params, hx=hx, **options)
        return (output, *(h_n if kind == "lstm" else (h_n,)))

    weights = [rng.standard_normal(a.shape) for a in outputs()]
    _, _, cache = manual.recurrent_forward(x=x, params=params, hx=hx, **options)
    dh_n = tuple(weights[1:]) if kind == "lstm" else weights[1]
    dx, dhx, dparams, records = manual.recurrent_backward(weights[0], dh_n, cache, return_steps=True)
    arrays = {"x": x, **{f"state{i}": s for i, s in enumerate(states)}, **params}
    dstates = dhx if kind == "lstm" else (dhx,)
    grads = {"x": dx, **{f"state{i}": d for i, d in enumerate(dstates)}, **dparams}
    assert_matches_fd(arrays, lambda: weighted_sum(outputs(), weights), grads)
    summed = {key: g.sum(axis=0) for record in records.values() for key, g in record.dparams.items()}
    assert set(summed) == set(dparams)
    for key, g in dparams.items():
        np.testing.assert_allclose(summed[key], g, rtol=1e-12, atol=1e-12, err_msg=key)


def test_affine_matches_fd():
    rng = np.random.default_rng(0)
    x, params = (
        rng.standard_normal((T, N, D)),
        {"weight": rng.standard_normal((5, D)), "bias": rng.standard_normal(5)},
    )
    weights = [rng.standard_normal((T, N, 5))]
    y, cache = manual.affine_forward(x, params)
    dx, dparams = manual.affine_backward(weights[0], cache)
    loss = lambda: weighted_sum([manual.affine_forward(x, params)[0]], weights)  # noqa: E731
    assert_matches_fd({"x": x, **params}, loss, {"x": dx, **dparams})


def test_embedding_matches_fd_and_accumulates_repeated_ids():
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((5, D))
    ids = np.array([[0, 1, 1], [4, 1, 0]])
    weights = [rng.standard_normal((2, 3, D))]
    _, cache = manual.embedding_forward(ids, weight)
    dweight = manual.embedding_backward(weights[0], cache)
    loss = lambda: weighted_sum([manual.embedding_forward(ids, weight)[0]], weights)  # noqa: E731
    assert_matches_fd({"weight": weight}, loss, {"weight": dweight})
    np.testing.assert_allclose(
        dweight[1], weights[0][0, 1] + weights[0][0, 2] + weights[0][1, 1], rtol=1e-12, atol=0
    )
    np.testing.assert_allclose(dweight[[2, 3]], 0, rtol=0, atol=0)


@pytest.mark.parametrize(
    "mask, ignore_index", [(None, None), ([[True, False, True], [True, True, False]], None), (None, 2)]
)
def test_softmax_cross_entropy_matches_fd(mask, ignore_index):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 3, 5)) * 3
    targets = np.array([[0, 2, 4], [2, 1, 3]])
    loss, dlogits = manual.softmax_cross_entropy(logits, targets, mask=mask, ignore_index=ignore_index)
    assert_matches_fd(
        {"logits": logits},
        lambda: manual.softmax_cross_entropy(logits, targets, mask=mask, ignore_index=ignore_index)[0],
        {"logits": dlogits},
    )
    valid = np.ones(targets.shape, bool) if mask is None else np.array(mask)
    if ignore_index is not None:
        valid &= targets != ignore_index
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0][valid].sum()
    np.testing.assert_allclose(loss, expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(dlogits[~valid], 0, rtol=0, atol=0)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dlogits = manual.softmax_cross_entropy(logits, np.array([1]))
    np.testing.assert_allclose(loss, 2e4, rtol=1e-12, atol=0)
    np.testing.assert_allclose(dlogits, [[1.0, -1.0, 0.0]], rtol=0, atol=1e-12)


def lm_params(rng, kind, vocab=5, embed=2, num_layers=1, bidirectional=False):
    dirs = 2 if bidirectional else 1
    params = {"embedding.weight": rng.standard_normal((vocab, embed))}
    params.update(
        {"rnn." + k: v for k, v in stack_params(rng, kind, num_layers, bidirectional, embed).items()}
    )
    params["decoder.weight"] = rng.standard_normal((vocab, dirs * H))
    params["decoder.bias"] = rng.standard_normal(vocab)
    return params


@pytest.mark.parametrize(
    "kind, num_layers, bidirectional, lengths",
    [
        ("rnn_tanh", 1, False, None),
        ("rnn_tanh", 2, True, LENGTHS),
        ("lstm", 1, False, LENGTHS),
        ("gru", 2, False, None),
        ("gru_before", 1, True, LENGTHS),
    ],
)
def test_lm_matches_fd(kind, num_layers, bidirectional, lengths):
    rng = np.random.default_rng(0)
    params = lm_params(rng, kind, num_layers=num_layers, bidirectional=bidirectional)
    tokens, targets = rng.integers(0, 5, (T, N)), rng.integers(0, 5, (T, N))
    options = dict(STACK_ARGS[kind], num_layers=num_layers, bidirectional=bidirectional, lengths=lengths)
    _, _, cache = manual.lm_forward(tokens, targets, params, **options)
    grads = manual.lm_backward(cache)
    assert_matches_fd(params, lambda: manual.lm_forward(tokens, targets, params, **options)[0], grads)


def chunk_lengths(lengths, start, k):
    return None if lengths is None else list(np.clip(np.array(lengths) - start, 0, k))


@pytest.mark.parametrize("kind, lengths", [("rnn_tanh", None), ("lstm", [4, 3, 4]), ("gru", None)])
def test_truncated_bptt_matches_fd_with_detached_states(kind, lengths):
    """The truncated gradient is the derivative with every chunk's incoming state held fixed."""
    rng = np.random.default_rng(0)
    params = lm_params(rng, kind)
    tokens, targets = rng.integers(0, 5, (T, N)), rng.integers(0, 5, (T, N))
    k, options = 2, STACK_ARGS[kind]
    boundary_states, state = [], None
    for start in range(0, T, k):
        boundary_states.append(state)
        chunk = slice(start, start + k)
        _, state, _ = manual.lm_forward(
            tokens[chunk],
            targets[chunk],
            params,
            hx=state,
            lengths=chunk_lengths(lengths, start, k),
            **options,
        )

    def detached_loss():
        return sum(
            manual.lm_forward(
                tokens[start : start + k],
                targets[start : start + k],
                params,
                hx=boundary_states[i],
                lengths=chunk_lengths(lengths, start, k),
                **options,
            )[0]
            for i, start in enumerate(range(0, T, k))
        )

    loss, grads, h_n = manual.lm_truncated_bptt(tokens, targets, params, k, lengths=lengths, **options)
    assert_matches_fd(params, detached_loss, grads)
    full_loss, full_h_n, _ = manual.lm_forward(tokens, targets, params, lengths=lengths, **options)
    np.testing.assert_allclose(loss, full_loss, rtol=1e-12, atol=0)
    for mine, full in zip(
        h_n if kind == "lstm" else (h_n,), full_h_n if kind == "lstm" else (full_h_n,), strict=True
    ):
        np.testing.assert_allclose(mine, full, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_truncated_bptt_is_full_bptt_when_k_covers_the_sequence(kind):
    rng = np.random.default_rng(0)
    params = lm_params(rng, kind, num_layers=2, bidirectional=True)
    tokens, targets = rng.integers(0, 5, (T, N)), rng.integers(0, 5, (T, N))
    options = dict(STACK_ARGS[kind], num_layers=2, bidirectional=True, lengths=[1, 4, 2])
    loss, grads, _ = manual.lm_truncated_bptt(tokens, targets, params, T, **options)
    full_loss, _, cache = manual.lm_forward(tokens, targets, params, **options)
    full_grads = manual.lm_backward(cache)
    np.testing.assert_allclose(loss, full_loss, rtol=1e-12, atol=0)
    assert set(grads) == set(params)
    for key, g in full_grads.items():
        np.testing.assert_allclose(grads[key], g, rtol=1e-12, atol=1e-14, err_msg=key)


def test_truncated_bptt_carries_the_state_past_sequences_that_ended():
    """A chunk after a sequence's end (length 0 inside the chunk) leaves its state untouched."""
    rng = np.random.default_rng(0)
    params = lm_params(rng, "gru")
    tokens, targets = rng.integers(0, 5, (T, N)), rng.integers(0, 5, (T, N))
    loss, grads, h_n = manual.lm_truncated_bptt(tokens, targets, params, 1, mode="gru", lengths=LENGTHS)
    full_loss, full_h_n, _ = manual.lm_forward(tokens, targets, params, mode="gru", lengths=LENGTHS)
    np.testing.assert_allclose(loss, full_loss, rtol=1e-12, atol=0)
    np.testing.assert_allclose(h_n, full_h_n, rtol=1e-12, atol=1e-14)


def test_lm_per_step_records_sum_to_the_gradients():
    rng = np.random.default_rng(0)
    params = lm_params(rng, "lstm", num_layers=2)
    tokens, targets = rng.integers(0, 5, (T, N)), rng.integers(0, 5, (T, N))
    _, _, cache = manual.lm_forward(tokens, targets, params, mode="lstm", num_layers=2, lengths=LENGTHS)
    grads, steps = manual.lm_backward(cache, return_steps=True)
    assert list(steps) == ["l0", "l1"]
    for record in steps.values():
        assert record.dh.shape == (T, N, H)
        np.testing.assert_allclose(record.dh[3, 1], 0, rtol=0, atol=0)
        for key, g in record.dparams.items():
            np.testing.assert_allclose(g.sum(axis=0), grads[key], rtol=1e-12, atol=1e-14, err_msg=key)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_lengths_act_like_separate_shorter_sequences(kind, bidirectional):
    """Sequence n with length L_n gives what the first L_n steps alone give; its later outputs are 0."""
    rng = np.random.default_rng(0)
    params = stack_params(rng, kind, 2, bidirectional)
    x = rng.standard_normal((T, N, D))
    options = dict(STACK_ARGS[kind], num_layers=2, bidirectional=bidirectional)
    output, h_n, _ = manual.recurrent_forward(x=x, params=params, lengths=LENGTHS, **options)
    h_n = h_n[0] if kind == "lstm" else h_n
    for n, length in enumerate(LENGTHS):
        alone, alone_h_n, _ = manual.recurrent_forward(x=x[:length, n : n + 1], params=params, **options)
        alone_h_n = alone_h_n[0] if kind == "lstm" else alone_h_n
        np.testing.assert_allclose(output[:length, n], alone[:, 0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(output[length:, n], 0, rtol=0, atol=0)
        np.testing.assert_allclose(h_n[:, n], alone_h_n[:, 0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_unbatched_input_is_a_batch_of_one(kind):
    rng = np.random.default_rng(0)
    params = stack_params(rng, kind, 2, True)
    x = rng.standard_normal((T, D))
    options = dict(STACK_ARGS[kind], num_layers=2, bidirectional=True)
    output, _, cache = manual.recurrent_forward(x=x, params=params, **options)
    batched, _, batched_cache = manual.recurrent_forward(x=x[:, None], params=params, **options)
    np.testing.assert_allclose(output, batched[:, 0], rtol=1e-12, atol=0)
    doutput = rng.standard_normal(output.shape)
    dx, dhx, grads = manual.recurrent_backward(doutput, None, cache)
    dx_batched, _, grads_batched = manual.recurrent_backward(doutput[:, None], None, batched_cache)
    np.testing.assert_allclose(dx, dx_batched[:, 0], rtol=1e-12, atol=0)
    assert (dhx[0] if kind == "lstm" else dhx).shape == (4, H)
    for key, g in grads.items():
        np.testing.assert_allclose(g, grads_batched[key], rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_float32_stays_float32(kind):
    rng = np.random.default_rng(0)
    f32 = np.float32
    params = {k: v.astype(f32) for k, v in stack_params(rng, kind, 2, True).items()}
    x = rng.standard_normal((T, N, D)).astype(f32)
    options = dict(STACK_ARGS[kind], num_layers=2, bidirectional=True, lengths=LENGTHS)
    output, h_n, cache = manual.recurrent_forward(x=x, params=params, **options)
    dx, dhx, grads = manual.recurrent_backward(np.ones_like(output), None, cache)
    states = (*h_n, *dhx) if kind == "lstm" else (h_n, dhx)
    assert {a.dtype for a in (output, dx, *states, *grads.values())} == {np.dtype(f32)}

    step_forward, step_backward = step_functions(kind)
    cell = {k[: -len("_l0")]: v for k, v in params.items() if k.endswith("_l0")}
    state = tuple(np.zeros((N, H), f32) for _ in range(n_states(kind)))
    new_state, cache = step_forward(x[0], state, cell)
    dx, dstate, dparams = step_backward(new_state, cache)
    assert {a.dtype for a in (*new_state, dx, *dstate, *dparams.values())} == {np.dtype(f32)}

    lm = {k: v.astype(f32) for k, v in lm_params(rng, kind).items()}
    tokens = rng.integers(0, 5, (T, N))
    _, lm_h_n, lm_cache = manual.lm_forward(tokens, tokens, lm, **STACK_ARGS[kind])
    lm_grads = manual.lm_backward(lm_cache)
    clipped, _ = manual.clip_grad_norm(lm_grads, 0.1)
    lm_states = lm_h_n if kind == "lstm" else (lm_h_n,)
    assert {a.dtype for a in (*lm_states, *lm_grads.values(), *clipped.values())} == {np.dtype(f32)}


def test_sigmoid_is_stable_and_exact():
    x = np.array([-1e4, -30.0, -1.0, 0.0, 1.0, 30.0, 1e4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = manual.sigmoid(x)
        y32 = manual.sigmoid(x.astype(np.float32))
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-np.clip(x, -700, 700))), rtol=1e-15, atol=1e-300)
    assert y32.dtype == np.float32


def test_clip_grad_norm_scales_copies_and_leaves_the_input_alone():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    clipped, total = manual.clip_grad_norm(grads, 1.0)
    np.testing.assert_allclose(total, 5.0, rtol=1e-15, atol=0)
    np.testing.assert_allclose(clipped["a"], [3.0 / (5 + 1e-6), 0.0], rtol=1e-15, atol=0)
    np.testing.assert_allclose(grads["a"], [3.0, 0.0], rtol=0, atol=0)
    unclipped, _ = manual.clip_grad_norm(grads, 10.0)
    assert unclipped["b"] is not grads["b"]
    np.testing.assert_allclose(unclipped["b"], grads["b"], rtol=0, atol=0)


class FakeParameter:
    def __init__(self, data):
        self.data = data


class FakeModule:
    """A duck-typed module: named_parameters() and PyTorch's attributes, no Tensor anywhere."""

    def __init__(self, params, **attributes):
        self._params = params
        self.__dict__.update(attributes)

    def named_parameters(self):
        return [(name, FakeParameter(value)) for name, value in self._params.items()]


def test_from_module_reads_a_duck_typed_recurrent_module_and_language_model():
    rng = np.random.default_rng(0)
    params = stack_params(rng, "gru", 1, True)
    attributes = dict(mode="GRU", num_layers=1, bidirectional=True, batch_first=True, reset_after=False)
    rnn = FakeModule(params, **attributes)
    copied, config = manual.from_module(rnn)
    assert config == dict(mode="gru", num_layers=1, bidirectional=True, batch_first=True, reset_after=False)
    assert copied.keys() == params.keys()
    assert all(copied[k] is not params[k] and np.array_equal(copied[k], params[k]) for k in params)
    x = rng.standard_normal((N, T, D))
    output, _, _ = manual.recurrent_forward(x=x, params=copied, **config)
    assert output.shape == (N, T, 2 * H)

    lm = lm_params(rng, "rnn_relu")
    model = FakeModule(
        lm,
        embedding=None,
        decoder=None,
        rnn=FakeModule({}, mode="RNN_RELU", num_layers=1, bidirectional=False, batch_first=False),
    )
    lm_copy, lm_config = manual.from_module(model)
    assert lm_config == dict(
        mode="rnn", nonlinearity="relu", num_layers=1, bidirectional=False, batch_first=False
    )
    tokens = rng.integers(0, 5, (T, N))
    loss, _, _ = manual.lm_forward(tokens, tokens, lm_copy, **lm_config)
    assert np.isfinite(loss)


# Errors: raised at the boundary, naming what was expected and what was given.
def test_bad_lengths_are_rejected():
    rng = np.random.default_rng(0)
    params, x, h0 = cell_params(rng, "rnn_tanh"), rng.standard_normal((T, N, D)), np.zeros((N, H))
    with pytest.raises(ValueError, match=r"expected every length in \[1, T=4\], got \[0, 2, 3\]"):
        manual.rnn_forward(x, h0, params, lengths=[0, 2, 3])
    with pytest.raises(ValueError, match=r"expected every length in \[1, T=4\], got \[5, 2, 3\]"):
        manual.recurrent_forward("rnn", x, {k + "_l0": v for k, v in params.items()}, lengths=[5, 2, 3])
    with pytest.raises(ValueError, match=r"expected 3 lengths \(one per sequence\), got shape \(2,\)"):
        manual.lstm_forward(x, (h0, h0), cell_params(rng, "lstm"), lengths=[1, 2])
    with pytest.raises(ValueError, match="expected integers"):
        manual.gru_forward(x, h0, cell_params(rng, "gru"), lengths=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"expected every length in \[1, T=4\]"):
        manual.lm_forward(
            np.zeros((T, N), int), np.zeros((T, N), int), lm_params(rng, "gru"), mode="gru", lengths=[1, 2, 7]
        )


def test_wrong_input_width_is_rejected():
    rng = np.random.default_rng(0)
    params = cell_params(rng, "lstm", input_width=D)
    with pytest.raises(
        ValueError, match=r"weight_ih expected shape \(8, 5\) for inputs of width 5, got \(8, 3\)"
    ):
        manual.lstm_forward(rng.standard_normal((T, N, 5)), (np.zeros((N, H)),) * 2, params)
    stack = stack_params(rng, "gru", 2, False)
    with pytest.raises(ValueError, match=r"weight_ih_l0 expected shape \(6, 4\) for inputs of width 4"):
        manual.recurrent_forward("gru", rng.standard_normal((T, N, 4)), stack, num_layers=2)
    with pytest.raises(ValueError, match=r"h_prev expected shape \(3, 2\), got \(3, 4\)"):
        manual.rnn_step_forward(rng.standard_normal((N, D)), np.zeros((N, 4)), cell_params(rng, "rnn_tanh"))
    with pytest.raises(
        ValueError, match=r"h0 expected shape \(L·dirs, N, H\) = \(2, 3, 2\), got \(1, 3, 2\)"
    ):
        manual.recurrent_forward(
            "gru", rng.standard_normal((T, N, D)), stack, num_layers=2, hx=np.zeros((1, N, H))
        )


def test_missing_or_unexpected_parameters_are_rejected():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, N, D))
    params = cell_params(rng, "rnn_tanh")
    del params["bias_hh"]
    with pytest.raises(KeyError, match="missing parameter 'bias_hh'"):
        manual.rnn_forward(x, np.zeros((N, H)), params)
    stack = stack_params(rng, "lstm", 2, True)
    del stack["weight_hh_l1_reverse"]
    with pytest.raises(KeyError, match="missing parameter 'weight_hh_l1_reverse'"):
        manual.recurrent_forward("lstm", x, stack, num_layers=2, bidirectional=True)
    with pytest.raises(ValueError, match=r"unexpected parameter keys \[.*'weight_hh_l1_reverse'"):
        manual.recurrent_forward("lstm", x, stack_params(rng, "lstm", 2, True), num_layers=2)
    with pytest.raises(KeyError, match="missing parameter 'embedding.weight'"):
        manual.lm_forward(np.zeros((T, N), int), np.zeros((T, N), int), {}, mode="rnn")
    with pytest.raises(ValueError, match="expected mode in"):
        manual.recurrent_forward("transformer", x, stack)
    with pytest.raises(ValueError, match="expected nonlinearity in"):
        manual.rnn_forward(x, np.zeros((N, H)), cell_params(rng, "rnn_tanh"), nonlinearity="sigmoid")


def test_wrong_upstream_gradient_shapes_are_rejected():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, T, D))
    output, _, cache = manual.recurrent_forward(
        "lstm", x, stack_params(rng, "lstm", 1, True), bidirectional=True, batch_first=True
    )
    with pytest.raises(
        ValueError, match=r"expected doutput of shape \(3, 4, 4\) \(like output\), got \(4, 3, 4\)"
    ):
        manual.recurrent_backward(np.zeros((T, N, 2 * H)), None, cache)
    with pytest.raises(
        ValueError, match=r"dc_n expected shape \(L·dirs, N, H\) = \(2, 3, 2\), got \(1, 3, 2\)"
    ):
        manual.recurrent_backward(np.zeros(output.shape), (None, np.zeros((1, N, H))), cache)
    _, _, sequence_cache = manual.rnn_forward(
        x.swapaxes(0, 1), np.zeros((N, H)), cell_params(rng, "rnn_tanh")
    )
    with pytest.raises(
        ValueError, match=r"expected doutput of shape \(T, N, H\) = \(4, 3, 2\), got \(4, 3, 3\)"
    ):
        manual.rnn_backward(np.zeros((T, N, 3)), None, sequence_cache)


# --- the cell protocol: any (step_forward, step_backward) pair through the same machinery ----------

PUBLIC_PAIRS = {
    "rnn_tanh": (manual.rnn_step_forward, manual.rnn_step_backward),
    "rnn_relu": (partial(manual.rnn_step_forward, nonlinearity="relu"), manual.rnn_step_backward),
    "lstm": (manual.lstm_step_forward, manual.lstm_step_backward),
    "gru": (manual.gru_step_forward, manual.gru_step_backward),
    "gru_before": (partial(manual.gru_step_forward, reset_after=False), manual.gru_step_backward),
}


def as_cell_layout(params):
    """weight_ih_l1_reverse → cell_l1_reverse.weight_ih: nn.Recurrent's names for the same arrays."""
    renamed = {}
    for key, value in params.items():
        reverse = key.endswith("_reverse")
        name, _, layer = key.removesuffix("_reverse").rpartition("_l")
        renamed[f"cell_l{layer}{'_reverse' if reverse else ''}.{name}"] = value
    return renamed


@pytest.mark.parametrize("cell_layout", [False, True], ids=["torch_names", "cell_names"])
@pytest.mark.parametrize("kind", list(GATES))
def test_builtin_pairs_through_the_generic_machinery_equal_the_builtins(kind, cell_layout):
    """The public step pairs, run step by step as any user's pair, give the built-in stack's outputs,
    gradients and per-step records (2 layers, both directions, lengths, batch_first)."""
    rng = np.random.default_rng(0)
    params = stack_params(rng, kind, 2, True)
    x = rng.standard_normal((N, T, D))
    states = tuple(rng.standard_normal((4, N, H)) for _ in range(n_states(kind)))
    hx = states if kind == "lstm" else states[0]
    options = dict(num_layers=2, bidirectional=True, batch_first=True, lengths=LENGTHS, hx=hx)
    output, h_n, cache = manual.recurrent_forward(x=x, params=params, **options, **STACK_ARGS[kind])
    pair_params = as_cell_layout(params) if cell_layout else params
    pair_output, pair_h_n, pair_cache = manual.recurrent_forward(
        PUBLIC_PAIRS[kind], x, pair_params, **options
    )
    np.testing.assert_allclose(pair_output, output, rtol=1e-14, atol=1e-15)
    for a, b in zip(
        pair_h_n if kind == "lstm" else (pair_h_n,), h_n if kind == "lstm" else (h_n,), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)
    doutput = rng.standard_normal(output.shape)
    dx, dhx, grads, records = manual.recurrent_backward(doutput, None, cache, return_steps=True)
    pair_dx, pair_dhx, pair_grads, pair_records = manual.recurrent_backward(
        doutput, None, pair_cache, return_steps=True
    )
    np.testing.assert_allclose(pair_dx, dx, rtol=1e-12, atol=1e-14)
    assert set(pair_grads) == set(pair_params)
    rename = as_cell_layout if cell_layout else dict
    for key, g in rename(grads).items():
        np.testing.assert_allclose(pair_grads[key], g, rtol=1e-12, atol=1e-14, err_msg=key)
    assert set(pair_records) == set(records) == {"l0", "l0_reverse", "l1", "l1_reverse"}
    for stream, record in records.items():
        np.testing.assert_allclose(pair_records[stream].dh, record.dh, rtol=1e-12, atol=1e-14)
        for key, g in rename(record.dparams).items():
            np.testing.assert_allclose(pair_records[stream].dparams[key], g, rtol=1e-12, atol=1e-14)


def test_a_pair_with_a_vector_recurrent_weight_matches_finite_differences():
    """IndRNN, h = relu(x W_ihᵀ + b + u ⊙ h_prev) with u of shape (H,): no assumption about shapes."""
    step_forward, step_backward = indrnn_step_forward, indrnn_step_backward
    rng = np.random.default_rng(0)
    params = {
        f"cell_l{k}{r}.{name}": rng.standard_normal(shape)
        for k in range(2)
        for r in ("", "_reverse")
        for name, shape in (("weight_ih", (H, D if k == 0 else 2 * H)), ("bias", (H,)), ("weight_hh", (H,)))
    }
    x, h0 = rng.standard_normal((T, N, D)), rng.standard_normal((4, N, H))
    options = dict(num_layers=2, bidirectional=True, lengths=LENGTHS, hx=h0)
    output, h_n, cache = manual.recurrent_forward((step_forward, step_backward), x, params, **options)
    weights = [rng.standard_normal(output.shape), rng.standard_normal(h_n.shape)]

    def loss():
        out, last, _ = manual.recurrent_forward((step_forward, step_backward), x, params, **options)
        return weighted_sum([out, last], weights)

    dx, dh0, grads, records = manual.recurrent_backward(weights[0], weights[1], cache, return_steps=True)
    assert_matches_fd({"x": x, "h0": h0, **params}, loss, {"x": dx, "h0": dh0, **grads})
    assert records["l1_reverse"].dparams["cell_l1_reverse.weight_hh"].shape == (T, H)


def test_a_pair_needs_hx_and_must_keep_the_protocol():
    rng = np.random.default_rng(0)
    params = {"cell_l0.weight": rng.standard_normal((H, D))}

    def step_forward(x, h_prev, p):
        return np.tanh(x @ p["weight"].T) + h_prev, None

    def step_backward(dh, cache):
        return np.zeros((N, D)), dh, {"weight": np.zeros((H, D))}

    x = rng.standard_normal((T, N, D))
    with pytest.raises(ValueError, match="a \\(step_forward, step_backward\\) pair needs hx"):
        manual.recurrent_forward((step_forward, step_backward), x, params)
    with pytest.raises(KeyError, match="missing parameter 'cell_l0_reverse.weight'"):
        manual.recurrent_forward(
            (step_forward, step_backward), x, params, hx=np.zeros((2, N, H)), bidirectional=True
        )
    with pytest.raises(ValueError, match=r"unexpected parameter keys \['cell_l1.weight'\]"):
        manual.recurrent_forward(
            (step_forward, step_backward),
            x,
            {**params, "cell_l1.weight": params["cell_l0.weight"]},
            hx=np.zeros((1, N, H)),
        )

    def tuple_forward(x, h_prev, p):
        h, cache = step_forward(x, h_prev, p)
        return (h, h), cache

    with pytest.raises(ValueError, match=r"cell: step_forward returned a tuple, expected one array like hx"):
        manual.recurrent_forward((tuple_forward, step_backward), x, params, hx=np.zeros((1, N, H)))
    output, _, cache = manual.recurrent_forward(
        (step_forward, step_backward), x, params, hx=np.zeros((1, N, H))
    )

    def wrong_dx(dh, cache):
        return np.zeros((N, D + 1)), dh, {"weight": np.zeros((H, D))}

    _, _, cache = manual.recurrent_forward((step_forward, wrong_dx), x, params, hx=np.zeros((1, N, H)))
    with pytest.raises(
        ValueError, match=r"step_backward at t=0: expected dx_t of shape \(3, 3\), got \(3, 4\)"
    ):
        manual.recurrent_backward(np.zeros(output.shape), None, cache)
