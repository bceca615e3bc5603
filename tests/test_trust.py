"""Regression tests for issue #10 ("Trust"): no silently wrong gradient in ordinary situations.

Each section is one finding: 0-d values reused, arrays kept by reference, views and detach sharing
the version counter, elementwise == and !=, the engine's check of returned gradients, type
promotion, edge cases, Optimizer.load_state_dict, tied weights; then pow with a Tensor exponent and
max's gradient at ties (issue #12); then every unary, softmax and reduction row of the op table on 0-d
and empty inputs. Gradients are compared with torch (float64, 1e-10) where torch
answers, and with central finite differences.
"""

from collections.abc import Callable

import numpy as np
import pytest
from op_table import DOMAINS, of_kind

import tinygrad_rnn as tg
from tinygrad_rnn.numeric import numerical_gradient
from tinygrad_rnn.tensor import Function


def _leaf(array: np.ndarray) -> tg.Tensor:
    return tg.Tensor(np.array(array, dtype=np.float64), requires_grad=True)


def _torch_grads(program: Callable, arrays: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    torch = pytest.importorskip("torch")
    leaves = [torch.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = program(*leaves)
    out.backward()
    return out.detach().numpy(), [t.grad.numpy() for t in leaves]


def _grads(program: Callable, arrays: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    leaves = [_leaf(a) for a in arrays]
    out = program(*leaves)
    out.backward()
    return out.numpy(), [t.grad.numpy() for t in leaves]


def _finite_differences(program: Callable, arrays: list[np.ndarray]) -> list[np.ndarray]:
    values = [np.array(a, dtype=np.float64) for a in arrays]

    def f() -> float:
        return float(program(*[tg.Tensor(v) for v in values]).item())

    return [numerical_gradient(f, v) for v in values]


# --- 1. a 0-d value used several times ----------------------------------------------------------------

REUSED_SCALARS = {
    "l*l + l + l": (lambda x: (lambda s: s * s + s + s)(x.sum()), [np.array([1.0, 2.0])]),
    "x + x + x (0-d)": (lambda x: x + x + x, [np.array(0.7)]),
    "loss + 0.5 loss": (lambda x: (lambda s: s + 0.5 * s)((x * x).sum()), [np.array([0.3, -1.2, 2.0])]),
    "l*l*l on 0-d": (lambda x: x * x * x, [np.array(1.3)]),
    "mean reused four times": (
        lambda x: (lambda m: m * m + m * 3.0 - m + m.exp())(x.mean()),
        [np.arange(3.0)],
    ),
    "0-d max reused": (lambda x: (lambda m: m + m + m.tanh())(x.max()), [np.array([0.2, 1.5, -0.3])]),
}


@pytest.mark.parametrize("name", list(REUSED_SCALARS))
def test_reused_0d_values_keep_their_gradient(name: str) -> None:
    program, arrays = REUSED_SCALARS[name]
    value, grads = _grads(program, arrays)
    torch_value, torch_grads = _torch_grads(program, arrays)
    np.testing.assert_allclose(value, torch_value, rtol=1e-12)
    for g, expected in zip(grads, torch_grads, strict=True):
        np.testing.assert_allclose(g, expected, rtol=1e-10, atol=1e-12)
    for g, expected in zip(grads, _finite_differences(program, arrays), strict=True):
        np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-8)


def test_every_value_and_gradient_is_an_ndarray() -> None:
    x = tg.Tensor(1.5, requires_grad=True, dtype=np.float64)
    s = tg.Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64).sum()
    assert type(s.data) is np.ndarray and s.data.shape == ()
    y = (x * x).exp() + s
    assert type(y.data) is np.ndarray
    y.backward()
    assert type(x.grad.data) is np.ndarray and x.grad.shape == ()
    before = x.grad.data
    (x * 2.0 + x).backward()  # accumulates into the same 0-d buffer
    assert x.grad.data is before and x.grad.item() == pytest.approx(2 * 1.5 * np.exp(1.5**2) + 3.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: tg.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1),
        lambda p: tg.optim.Adam([p], lr=0.1, amsgrad=True),
        lambda p: tg.optim.AdamW([p], lr=0.1),
        lambda p: tg.optim.Adagrad([p], lr=0.1),
        lambda p: tg.optim.RMSprop([p], lr=0.1, momentum=0.5, centered=True),
    ],
)
def test_optimizers_clipping_and_zero_grad_keep_0d_parameters_arrays(make: Callable) -> None:
    p = tg.nn.Parameter(np.array(2.0))
    opt = make(p)
    for _ in range(3):
        opt.zero_grad(set_to_none=False)
        (p * p * p).backward()
        tg.nn.utils.clip_grad_norm_([p], 1.0)
        tg.nn.utils.clip_grad_value_([p], 0.5)
        opt.step()
    assert type(p.data) is np.ndarray and p.data.shape == ()
    assert type(p.grad.data) is np.ndarray and abs(p.grad.item()) <= 0.5
    for buffer in opt.state[id(p)].values():
        assert isinstance(buffer, int) or type(buffer) is np.ndarray
    held = p.grad.data
    opt.zero_grad(set_to_none=False)
    assert p.grad.data is held and p.grad.item() == 0.0


def test_0d_gradient_clipped_in_place() -> None:
    p = tg.nn.Parameter(np.array(3.0))
    (p * 4.0).backward()
    assert tg.nn.utils.clip_grad_norm_(p, 1.0) == pytest.approx(4.0)
    assert p.grad.item() == pytest.approx(1.0, rel=1e-5)


# --- 2. arrays the caller owns are not kept by reference --------------------------------------------


def _refill_before_backward(make_loss: Callable[[tg.Tensor, list], tg.Tensor], buffers: list) -> np.ndarray:
    """The gradient of the loss with the buffers refilled between forward and backward."""
    x = _leaf(np.arange(12.0).reshape(4, 3) / 10)
    loss = make_loss(x, buffers)
    for b in buffers:
        if isinstance(b, list):
            b.reverse()
        elif isinstance(b, tg.Tensor):
            b.data[...] = b.data[::-1].copy()
        else:
            b[...] = b[::-1].copy()
    loss.backward()
    return x.grad.numpy()


def _fresh_grad(make_loss: Callable, buffers: list) -> np.ndarray:
    x = _leaf(np.arange(12.0).reshape(4, 3) / 10)
    make_loss(x, buffers).backward()
    return x.grad.numpy()


BUFFERS = {
    "index array": (lambda x, b: (x[b[0]] * x[b[0]]).sum(), lambda: [np.array([0, 0, 1])]),
    "index list": (lambda x, b: (x[b[0]] * x[b[0]]).sum(), lambda: [[0, 0, 1]]),
    "index tuple of arrays": (
        lambda x, b: (x[b[0], b[1]] ** 2).sum(),
        lambda: [np.array([0, 1, 3]), np.array([2, 2, 0])],
    ),
    "boolean mask": (lambda x, b: (x[b[0]] ** 3).sum(), lambda: [np.array([True, True, False, False])]),
    "mask Tensor": (lambda x, b: (x[b[0]] ** 3).sum(), lambda: [tg.Tensor([True, True, False, False])]),
    "where condition": (
        lambda x, b: (tg.where(b[0], x * x, x) * 2.0).sum(),
        lambda: [np.array([[True, False, False]] * 2 + [[False, True, True]] * 2)],
    ),
    "multiplied mask": (lambda x, b: (x * b[0]).sum(), lambda: [np.array([[1.0], [2.0], [3.0], [4.0]])]),
    "embedding ids": (
        lambda x, b: (tg.nn.functional.embedding(b[0], x) ** 2).sum(),
        lambda: [np.array([[0, 1], [1, 1]])],
    ),
    "cross_entropy target": (
        lambda x, b: tg.nn.functional.cross_entropy(x, b[0]),
        lambda: [np.array([0, 2, 1, 1])],
    ),
}


@pytest.mark.parametrize("name", list(BUFFERS))
def test_arrays_refilled_before_backward_do_not_move_the_gradient(name: str) -> None:
    make_loss, buffers = BUFFERS[name]
    np.testing.assert_array_equal(
        _refill_before_backward(make_loss, buffers()), _fresh_grad(make_loss, buffers())
    )


# --- 3. views and detach share their base's version counter ------------------------------------------


def test_detached_copy_changed_before_backward_raises_naming_op_and_input() -> None:
    w = _leaf(np.array([1.0, 2.0]))
    h = _leaf(np.array([0.5, -0.5]))
    h.name = "h"
    loss = (h * w).sum()
    hd = h.detach()
    hd[0] = 0.0
    with pytest.raises(RuntimeError, match=r"input 0 \('h'\) of Mul was changed in place"):
        loss.backward()


def test_detached_output_of_tanh_changed_before_backward_raises() -> None:
    x = _leaf(np.array([0.5, -0.5]))
    h = x.tanh()
    h.detach()[1] = 0.0
    with pytest.raises(RuntimeError, match="the output .* of Tanh was changed in place"):
        h.backward(np.ones(2))


@pytest.mark.parametrize(
    "view",
    [
        lambda c: c[0:2],
        lambda c: c[1],
        lambda c: c.reshape(6),
        lambda c: c.T,
        lambda c: c.split(1)[0],
        lambda c: c.unbind(0)[1],
        lambda c: c.detach()[0:1],
        lambda c: c.contiguous(),
        lambda c: c[..., None],
    ],
)
def test_changing_a_view_of_a_saved_constant_raises(view: Callable) -> None:
    w = _leaf(np.ones((3, 2)))
    constant = tg.Tensor(np.arange(6.0).reshape(3, 2), name="constant")
    loss = (w * constant).sum()
    v = view(constant)
    v[...] = 100.0
    assert constant.version == 1 and v.version == 1
    with pytest.raises(RuntimeError, match=r"input 1 \('constant'\) of Mul was changed"):
        loss.backward()


def test_a_copy_is_not_a_view() -> None:
    w = _leaf(np.ones((3, 2)))
    constant = tg.Tensor(np.arange(6.0).reshape(3, 2))
    loss = (w * constant).sum()
    for copy in (constant[[0, 1]], constant.T.reshape(6), constant * 1.0):
        copy[...] = 100.0
    assert constant.version == 0
    loss.backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.arange(6.0).reshape(3, 2))


def test_view_changes_are_seen_as_in_torch() -> None:
    torch = pytest.importorskip("torch")
    x = torch.arange(6.0, dtype=torch.float64).reshape(2, 3)
    w = torch.ones(2, 3, dtype=torch.float64, requires_grad=True)
    loss = (w * x).sum()
    x.detach()[0, 0] = 5.0
    with pytest.raises(RuntimeError):
        loss.backward()


# --- 4. == and != are elementwise ----------------------------------------------------------------------


def test_equality_is_elementwise_as_torch() -> None:
    torch = pytest.importorskip("torch")
    values = np.array([0.0, 1.0, 0.0, 2.0])
    t, other = tg.Tensor(values), tg.Tensor([0.0, 1.0, 1.0, 1.0])
    tt, tother = torch.tensor(values), torch.tensor([0.0, 1.0, 1.0, 1.0])
    for mine, theirs in [
        (t == 0, tt == 0),
        (t != 0, tt != 0),
        (t == other, tt == tother),
        (t != other, tt != tother),
        (0.0 == t, 0.0 == tt),
    ]:
        assert mine.dtype == np.bool_
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    np.testing.assert_array_equal(t[t == 0].numpy(), np.zeros(2))
    np.testing.assert_array_equal(tg.where(t == 0, t, 5.0).numpy(), [0.0, 5.0, 0.0, 5.0])


def test_tensors_hash_by_identity() -> None:
    a, b = tg.Tensor([1.0, 2.0]), tg.Tensor([1.0, 2.0])
    table = {a: "a", b: "b"}
    assert table[a] == "a" and table[b] == "b" and len({a, b, a}) == 2
    model = tg.nn.Sequential(tg.nn.Linear(2, 2, rng=0), tg.nn.Linear(2, 2, rng=1))
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    assert len(opt.param_groups[0]["params"]) == 4


# --- 5. the engine checks the gradients a backward returns -------------------------------------------


class WrongShape(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return (grad[:2],)


class WrongDtype(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return (grad.astype(np.float32),)


class TooMany(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


@pytest.mark.parametrize(
    ("op", "message"),
    [
        (WrongShape, r"WrongShape.backward returned a gradient of shape \(2,\) .* for input 0 \('x'\), "
         r"expected the input's shape \(4,\)"),
        (WrongDtype, r"WrongDtype.backward returned .* dtype float32 for input 0 .* dtype float64"),
        (TooMany, r"TooMany.backward returned 2 gradients for 1 inputs"),
    ],
)  # fmt: skip
def test_a_backward_returning_a_wrong_gradient_is_refused(op: type, message: str) -> None:
    x = _leaf(np.arange(4.0))
    x.name = "x"
    loss = (op.apply(x) * 3.0).sum()
    with pytest.raises(RuntimeError, match=message):
        loss.backward()
    assert x.grad is None


# --- 6. type promotion as torch ----------------------------------------------------------------------

PROMOTIONS = {
    "int tensor * float32 leaf": (lambda i, f: i * f, lambda i, f: i * f),
    "float32 leaf * int tensor": (lambda i, f: f * i, lambda i, f: f * i),
    "int tensor + float32 leaf": (lambda i, f: i + f, lambda i, f: i + f),
    "int tensor / float32 leaf": (lambda i, f: i / f, lambda i, f: i / f),
    "float32 leaf * bool tensor": (lambda i, f: f * (i > 1), lambda i, f: f * (i > 1)),
    "maximum(int, float32)": (lambda i, f: i.maximum(f), lambda i, f: torch_module().maximum(i, f)),
    "float32 leaf * 2.5": (lambda i, f: f * 2.5, lambda i, f: f * 2.5),
    "float32 leaf * np.float64(2.5)": (lambda i, f: f * np.float64(2.5), lambda i, f: f * 2.5),
    "int tensor * 2.5": (lambda i, f: (i * 2.5) * f, lambda i, f: (i * 2.5) * f),
    "int tensor / 2": (lambda i, f: (i / 2) * f, lambda i, f: (i / 2) * f),
    "2 ** int tensor": (lambda i, f: (2.0**i) * f, lambda i, f: (2.0**i) * f),
}


def torch_module():  # noqa: ANN201
    return pytest.importorskip("torch")


@pytest.mark.parametrize("name", list(PROMOTIONS))
def test_type_promotion_follows_torch(name: str) -> None:
    torch = torch_module()
    mine, theirs = PROMOTIONS[name]
    ints, floats = np.array([1, 2, 3]), np.array([0.5, -1.5, 2.0], dtype=np.float32)
    f = tg.Tensor(floats, requires_grad=True)
    out = mine(tg.Tensor(ints), f)
    tf = torch.tensor(floats, requires_grad=True)
    expected = theirs(torch.tensor(ints), tf)
    assert str(out.dtype) == str(expected.dtype).removeprefix("torch.")
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-6)
    out.sum().backward()
    expected.sum().backward()
    assert f.grad.dtype == np.float32
    np.testing.assert_allclose(f.grad.numpy(), tf.grad.numpy(), rtol=1e-6)


def test_python_floats_given_to_a_float32_module_are_float32() -> None:
    for dtype in (np.float32, np.float64):
        layer = tg.nn.Linear(2, 3, rng=0).to(dtype)
        out = layer([[1.0, 2.0]])
        assert out.dtype == dtype
        np.testing.assert_allclose(out.numpy(), layer(tg.Tensor([[1.0, 2.0]], dtype=dtype)).numpy())
    with pytest.raises(TypeError, match="one dtype"):
        tg.nn.Linear(2, 3, rng=0)(np.array([[1.0, 2.0]]))  # a float64 array is a float64 input


@pytest.mark.parametrize(
    "make, data",
    [
        (lambda: tg.nn.RNN(2, 3, rng=0), [[[1.0, 2.0]], [[0.5, -1.0]]]),
        (lambda: tg.nn.LSTM(2, 3, rng=0), [[1.0, 2.0], [0.5, -1.0]]),
        (lambda: tg.nn.GRUCell(2, 3, rng=0), [[1.0, 2.0]]),
    ],
)
def test_python_floats_given_to_a_float32_recurrent_module_are_float32(make, data) -> None:
    for dtype in (np.float32, np.float64):
        module = make().to(dtype)
        out = module(data)
        out = out[0] if isinstance(out, tuple) else out
        expected = module(tg.Tensor(data, dtype=dtype))
        expected = expected[0] if isinstance(expected, tuple) else expected
        assert out.dtype == dtype
        np.testing.assert_allclose(out.numpy(), expected.numpy())
    with pytest.raises(TypeError, match="dtype float64"):
        make()(np.array(data))  # a float64 array is a float64 input


# --- 7. edge cases where torch answers ----------------------------------------------------------------

EDGE_CASES = {
    "d(x**0)/dx at 0": (lambda x: (x**0).sum(), [np.array([0.0, 2.0])]),
    "maximum on 0-d": (lambda a, b: a.maximum(b) * 3.0, [np.array(1.0), np.array(-2.0)]),
    "minimum on 0-d tie": (lambda a, b: a.minimum(b) * 3.0, [np.array(1.0), np.array(1.0)]),
    "loss.maximum(0.)": (lambda x: (x * x).sum().maximum(0.0), [np.array([0.5, -1.0])]),
    "bce with logits, one logit": (
        lambda x: tg.nn.functional.binary_cross_entropy_with_logits(x, np.array(1.0)),
        [np.array(0.3)],
    ),
    "addcmul broadcasting the product": (
        lambda c, a, b: (tg.addcmul(c, a, b) * np.arange(6.0).reshape(2, 3)).sum(),
        [np.ones((2, 3)), np.array([1.0, 2.0, 3.0]), np.array(2.0)],
    ),
    "addcmul broadcasting all three": (
        lambda c, a, b: (tg.addcmul(c, a, b) * np.arange(6.0).reshape(2, 3)).sum(),
        [np.array([1.0, 2.0, 3.0]), np.array([[1.0], [2.0]]), np.array(2.0)],
    ),
}

TORCH_EDGE = {
    "d(x**0)/dx at 0": lambda x: (x**0).sum(),
    "maximum on 0-d": lambda a, b: torch_module().maximum(a, b) * 3.0,
    "minimum on 0-d tie": lambda a, b: torch_module().minimum(a, b) * 3.0,
    "loss.maximum(0.)": lambda x: torch_module().clamp_min((x * x).sum(), 0.0),
    "bce with logits, one logit": lambda x: torch_module().nn.functional.binary_cross_entropy_with_logits(
        x, torch_module().tensor(1.0, dtype=torch_module().float64)
    ),
    "addcmul broadcasting the product": lambda c, a, b: (
        torch_module().addcmul(c, a, b)
        * torch_module().arange(6.0, dtype=torch_module().float64).reshape(2, 3)
    ).sum(),
    "addcmul broadcasting all three": lambda c, a, b: (
        torch_module().addcmul(c, a, b)
        * torch_module().arange(6.0, dtype=torch_module().float64).reshape(2, 3)
    ).sum(),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_cases_agree_with_torch(name: str) -> None:
    program, arrays = EDGE_CASES[name]
    value, grads = _grads(program, arrays)
    torch_value, torch_grads = _torch_grads(TORCH_EDGE[name], arrays)
    np.testing.assert_allclose(value, torch_value, rtol=1e-12)
    for g, expected in zip(grads, torch_grads, strict=True):
        np.testing.assert_allclose(g, expected, rtol=1e-10, atol=1e-12)


def test_empty_dimensions_give_empty_results() -> None:
    torch = torch_module()
    x = _leaf(np.zeros((0, 3)))
    tx = torch.zeros(0, 3, dtype=torch.float64, requires_grad=True)
    for mine, theirs in [
        (x.max(axis=1), torch.amax(tx, 1)),
        (x.softmax(0), tx.softmax(0)),
        (x.softmax(1), tx.softmax(1)),
        (x.log_softmax(0), tx.log_softmax(0)),
    ]:
        assert mine.shape == tuple(theirs.shape)
        mine.sum().backward()
        assert x.grad.shape == (0, 3)
    pieces, torch_pieces = x.split(2, 0), tx.split(2, 0)
    assert [p.shape for p in pieces] == [tuple(p.shape) for p in torch_pieces] == [(0, 3)]
    tg.stack(list(pieces)).sum().backward()


def test_unsqueeze_accepts_numpy_integers() -> None:
    t = tg.zeros(2, 3)
    assert t.unsqueeze(np.int64(0)).shape == (1, 2, 3)
    assert t.unsqueeze(np.int32(-1)).shape == (2, 3, 1)
    with pytest.raises(ValueError, match="unsqueeze"):
        t.unsqueeze(True)


# --- 8. Optimizer.load_state_dict validates all or nothing ------------------------------------------


def _stepped_adam() -> tuple[tg.optim.Adam, tg.nn.Parameter]:
    p = tg.nn.Parameter(np.array([1.0, -2.0]))
    opt = tg.optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()
    return opt, p


def _without(entries: dict, key: str) -> dict:
    return {k: v for k, v in entries.items() if k != key}


BAD_STATES = {
    "missing buffer": (lambda s: _without(s, "exp_avg_sq"), r"parameter 0 misses state \['exp_avg_sq'\]"),
    "unknown buffer": (lambda s: {**s, "momentum": np.zeros(2)}, r"unknown state \['momentum'\]"),
    "string buffer": (lambda s: {**s, "exp_avg": "zeros"}, "exp_avg.*expected numbers"),
    "string step": (lambda s: {**s, "step": "1"}, "'step' of parameter 0: expected numbers"),
    "fractional step": (lambda s: {**s, "step": 1.5}, "'step' of parameter 0: expected a count"),
    "wrong shape": (
        lambda s: {**s, "exp_avg": np.zeros(3)},
        r"exp_avg.*shape \(3,\), the parameter has \(2,\)",
    ),
    "bool dtype": (lambda s: {**s, "exp_avg": np.array([True, False])}, "expected numbers, got dtype bool"),
}


@pytest.mark.parametrize("name", list(BAD_STATES))
def test_optimizer_load_state_dict_refuses_bad_state_before_changing_anything(name: str) -> None:
    change, message = BAD_STATES[name]
    opt, p = _stepped_adam()
    saved = opt.state_dict()
    saved["state"][0] = change(saved["state"][0])
    saved["param_groups"][0]["lr"] = 0.5
    before = opt.state_dict()
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(saved)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for key, value in before["state"][0].items():
        np.testing.assert_array_equal(after["state"][0][key], value)


def test_optimizer_load_state_dict_reports_every_problem_at_once() -> None:
    opt, _ = _stepped_adam()
    saved = opt.state_dict()
    saved["state"][0] = {"step": 1, "exp_avg": np.zeros(3), "exp_avg_sq": "x"}
    with pytest.raises(ValueError, match=r"exp_avg' of parameter 0 has shape.*; state 'exp_avg_sq'"):
        opt.load_state_dict(saved)


def test_optimizer_load_state_dict_copies_torch_tensors_into_numpy() -> None:
    torch = torch_module()
    opt, p = _stepped_adam()
    saved = opt.state_dict()
    buffers = {k: torch.tensor(v) for k, v in saved["state"][0].items()}
    saved["state"][0] = buffers
    opt.load_state_dict(saved)
    state = opt.state[id(p)]
    assert isinstance(state["step"], int) and state["step"] == 1
    assert all(type(state[k]) is np.ndarray for k in ("exp_avg", "exp_avg_sq"))
    held = buffers["exp_avg"].clone()
    (p * p).sum().backward()
    opt.step()
    assert torch.equal(buffers["exp_avg"], held)  # the step wrote into our copy, not the caller's tensor


def test_sgd_without_momentum_accepts_torch_none_buffers() -> None:
    p = tg.nn.Parameter(np.ones(2))
    opt = tg.optim.SGD([p], lr=0.1)
    opt.load_state_dict(
        {"state": {0: {"momentum_buffer": None}}, "param_groups": [{"lr": 0.2, "params": [0]}]}
    )
    assert opt.param_groups[0]["lr"] == 0.2
    with pytest.raises(ValueError, match=r"misses state \['momentum_buffer'\]"):
        tg.optim.SGD([p], lr=0.1, momentum=0.9).load_state_dict(
            {"state": {0: {}}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0]}]}
        )


# --- 9. tied weights --------------------------------------------------------------------------------


class Tied(tg.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = tg.nn.Linear(3, 3, rng=0)
        self.decoder = tg.nn.Linear(3, 3, rng=1)
        self.decoder.weight = self.encoder.weight


def test_state_dict_lists_a_shared_parameter_under_every_name_as_torch() -> None:
    torch = torch_module()
    model = Tied()
    reference = torch.nn.Module()
    reference.encoder, reference.decoder = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    reference.decoder.weight = reference.encoder.weight
    assert list(model.state_dict()) == list(reference.state_dict())
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in reference.named_parameters()]
    assert len(list(model.parameters())) == 3
    model.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
    np.testing.assert_array_equal(model.decoder.weight.numpy(), reference.encoder.weight.detach().numpy())
    assert model.decoder.weight is model.encoder.weight


def test_load_state_dict_with_tied_keys() -> None:
    model = Tied()
    state = model.state_dict()
    state["encoder.weight"] = state["encoder.weight"] + 1.0
    state["decoder.weight"] = state["encoder.weight"].copy()
    model.load_state_dict(state)
    np.testing.assert_array_equal(model.encoder.weight.numpy(), state["encoder.weight"])
    model.load_state_dict(_without(state, "decoder.weight"))  # one name of a shared parameter suffices
    before = model.encoder.weight.numpy().copy()
    state["decoder.weight"] = state["decoder.weight"] + 1.0
    with pytest.raises(ValueError, match="encoder.weight and decoder.weight name one shared parameter"):
        model.load_state_dict(state)
    np.testing.assert_array_equal(model.encoder.weight.numpy(), before)


# --- issue 12: pow with a Tensor exponent, max's gradient at ties ----------------------------------

POW_CASES = {
    "same shapes": [np.array([0.5, 1.5, 2.0]), np.array([2.0, -0.5, 1.3])],
    "exponent broadcast": [np.array([[0.5, 1.5], [2.0, 3.0]]), np.array([1.5, -2.0])],
    "base broadcast": [np.array([1.2, 0.7]), np.array([[0.5, 1.5], [2.0, 3.0]])],
    "0-d exponent": [np.array([0.3, 2.5]), np.array(1.7)],
}


@pytest.mark.parametrize("name", list(POW_CASES))
def test_pow_with_a_tensor_exponent(name: str) -> None:
    arrays = POW_CASES[name]
    rng = np.random.default_rng(0)
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    weights = rng.standard_normal(shape)
    torch = torch_module()

    def program(a: tg.Tensor, b: tg.Tensor) -> tg.Tensor:
        return ((a**b) * weights).sum()

    def torch_program(a, b):  # noqa: ANN001, ANN202
        return (torch.pow(a, b) * torch.tensor(weights)).sum()

    value, grads = _grads(program, arrays)
    torch_value, torch_grads = _torch_grads(torch_program, arrays)
    np.testing.assert_allclose(value, torch_value, rtol=1e-12)
    for g, expected, numeric in zip(grads, torch_grads, _finite_differences(program, arrays), strict=True):
        np.testing.assert_allclose(g, expected, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)


def test_pow_at_zero_base_and_zero_exponent_as_torch() -> None:
    arrays = [np.array([0.0, 0.0, 2.0, 0.0]), np.array([0.0, 2.0, 0.0, 1.0])]
    _, grads = _grads(lambda a, b: (a**b).sum(), arrays)
    _, torch_grads = _torch_grads(lambda a, b: (a**b).sum(), arrays)
    for g, expected in zip(grads, torch_grads, strict=True):
        np.testing.assert_array_equal(g, expected)


def test_scalar_and_array_exponents_and_rpow() -> None:
    x = _leaf(np.array([1.0, 2.0]))
    np.testing.assert_allclose((x ** np.array([2.0, 3.0])).numpy(), [1.0, 8.0])
    y = 2.0**x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.log(2.0) * np.array([2.0, 4.0]), rtol=1e-12)


MAX_TIES = {
    "all": (lambda x: x.max(), [np.array([[1.0, 3.0, 3.0], [3.0, 0.0, 2.0]])]),
    "axis 1": (lambda x: x.max(axis=1), [np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])]),
    "axis 0 keepdims": (lambda x: x.max(axis=0, keepdims=True), [np.array([[1.0, 3.0], [1.0, 0.0]])]),
    "axes (0, 2)": (lambda x: x.max(axis=(0, 2)), [np.ones((2, 2, 2))]),
    "min axis 1": (lambda x: x.min(axis=1), [np.array([[1.0, 1.0, 3.0], [0.0, 2.0, 2.0]])]),
}
TORCH_MAX = {
    "all": lambda x: x.amax(),
    "axis 1": lambda x: x.amax(1),
    "axis 0 keepdims": lambda x: x.amax(0, keepdim=True),
    "axes (0, 2)": lambda x: x.amax((0, 2)),
    "min axis 1": lambda x: x.amin(1),
}


@pytest.mark.parametrize("name", list(MAX_TIES))
def test_max_splits_the_gradient_among_ties_as_torch_amax(name: str) -> None:
    reduce, arrays = MAX_TIES[name]
    weights = np.random.default_rng(0).standard_normal(reduce(tg.Tensor(arrays[0])).shape)
    _, grads = _grads(lambda x: (reduce(x) * weights).sum(), arrays)
    torch = torch_module()
    _, torch_grads = _torch_grads(lambda x: (TORCH_MAX[name](x) * torch.tensor(weights)).sum(), arrays)
    np.testing.assert_allclose(grads[0], torch_grads[0], rtol=1e-12, atol=1e-15)


# --- 8. every op of the table on 0-d and empty inputs, as torch ------------------------------------------


def _reduced_over_dim_1(reduce: Callable) -> Callable:
    return lambda x: reduce(x, 1, False)


def _on_0d_and_empty() -> list:
    rng = np.random.default_rng(0)
    cases = [
        pytest.param(row.tiny, row.torch_call, DOMAINS[row.domain](*shape)(rng), id=f"{row.name}{shape}")
        for row in of_kind("unary", "softmax")
        for shape in ((), (0, 3))
    ]
    return cases + [
        pytest.param(
            _reduced_over_dim_1(row.tiny),
            _reduced_over_dim_1(row.torch_call),
            np.zeros((0, 3)),
            id=f"{row.name}(0, 3)",
        )
        for row in of_kind("reduction")
    ]


@pytest.mark.filterwarnings("ignore:var\\(\\)")  # torch warns of no degrees of freedom in an empty result
@pytest.mark.parametrize(("tiny", "theirs", "x"), _on_0d_and_empty())
def test_table_ops_on_0d_and_empty_inputs_agree_with_torch(
    tiny: Callable, theirs: Callable, x: np.ndarray
) -> None:
    torch = torch_module()
    ours, t = _leaf(x), torch.tensor(x, requires_grad=True)
    out, expected = tiny(ours), theirs(t)
    assert out.shape == tuple(expected.shape) and isinstance(out.data, np.ndarray)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12)
    out.backward(np.ones(out.shape))
    expected.backward(torch.ones_like(expected))
    np.testing.assert_allclose(ours.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-12)
