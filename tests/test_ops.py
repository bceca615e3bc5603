"""Every op: autograd gradient = central finite differences (float64), and = PyTorch where installed.

One table drives all three checks; adding an op's test is one line in CASES.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_rnn as tg
from tinygrad_rnn.numeric import numerical_gradient


def normal(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.standard_normal(shape)


def positive(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def away_from_zero(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    """Values with |x| ≥ 0.2, so a kink at 0 (relu, abs) is never within eps."""
    return lambda rng: rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def distinct(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    """A permutation of well-separated values, so max has a unique arg-max and no ties."""
    n = int(np.prod(shape))
    return lambda rng: (rng.permutation(np.arange(n, dtype=np.float64)).reshape(shape) - n / 2) * 0.1 + 0.013


class Case(NamedTuple):
    name: str
    fn: Callable  # tinygrad_rnn version, taking Tensors
    inputs: list  # one generator per input
    torch_fn: Callable | None = None  # torch version (None: the same lambda works on torch tensors)


MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])
INDEX = np.array([0, 2, 2, 1, 0])

CASES = [
    Case("add", lambda a, b: a + b, [normal(3, 4), normal(3, 4)]),
    Case("add_broadcast_bias", lambda a, b: a + b, [normal(3, 4), normal(4)]),
    Case("add_broadcast_ones", lambda a, b: a + b, [normal(2, 1, 4), normal(3, 1)]),
    Case("add_scalar", lambda a: 2.5 + a, [normal(3)]),
    Case("sub_broadcast", lambda a, b: a - b, [normal(3, 1), normal(2, 3, 4)]),
    Case("rsub_scalar", lambda a: 1 - a, [normal(3, 2)]),
    Case("mul_broadcast", lambda a, b: a * b, [normal(2, 3, 4), normal(3, 1)]),
    Case("rmul_scalar", lambda a: 3 * a, [normal(4)]),
    Case("div", lambda a, b: a / b, [normal(3, 4), positive(3, 4)]),
    Case("div_broadcast", lambda a, b: a / b, [normal(3, 4), positive(4)]),
    Case("rdiv_scalar", lambda a: 2 / a, [positive(3)]),
    Case("neg", lambda a: -a, [normal(3, 4)]),
    Case("pow_int", lambda a: a**3, [normal(3, 4)]),
    Case("pow_half", lambda a: a**0.5, [positive(3, 4)]),
    Case("pow_negative", lambda a: a**-2, [positive(5)]),
    Case("exp", lambda a: a.exp(), [normal(3, 4)]),
    Case("log", lambda a: a.log(), [positive(3, 4)]),
    Case("sqrt", lambda a: a.sqrt(), [positive(3, 4)]),
    Case("tanh", lambda a: a.tanh(), [normal(3, 4)]),
    Case("sigmoid", lambda a: a.sigmoid(), [normal(3, 4)]),
    Case("relu", lambda a: a.relu(), [away_from_zero(3, 4)]),
    Case("abs", lambda a: a.abs(), [away_from_zero(3, 4)]),
    Case("clip", lambda a: a.clip(-0.5, 0.7), [distinct(4, 5)], lambda a: a.clamp(-0.5, 0.7)),
    Case("clip_min_only", lambda a: a.clip(min=0.3), [distinct(4, 5)], lambda a: a.clamp(min=0.3)),
    Case("maximum", lambda a, b: a.maximum(b), [normal(3, 4), normal(4)]),
    Case("minimum", lambda a, b: a.minimum(b), [normal(3, 4), normal(3, 1)]),
    Case(
        "where",
        lambda a, b: tg.where(MASK, a, b),
        [normal(3, 4), normal(4)],
        lambda a, b: __import__("torch").where(__import__("torch").from_numpy(MASK), a, b),
    ),
    Case("sum_all", lambda a: a.sum(), [normal(3, 4)]),
    Case("sum_axis", lambda a: a.sum(1), [normal(2, 3, 4)], lambda a: a.sum(dim=1)),
    Case(
        "sum_axes_keepdims",
        lambda a: a.sum((0, 2), keepdims=True),
        [normal(2, 3, 4)],
        lambda a: a.sum(dim=(0, 2), keepdim=True),
    ),
    Case("sum_torch_names", lambda a: a.sum(dim=-1, keepdim=True), [normal(2, 3)]),
    Case("mean_all", lambda a: a.mean(), [normal(3, 4)]),
    Case("mean_axis", lambda a: a.mean(0), [normal(3, 4)], lambda a: a.mean(dim=0)),
    Case("max_all", lambda a: a.max(), [distinct(3, 4)]),
    Case("max_axis", lambda a: a.max(1), [distinct(3, 4, 2)], lambda a: a.amax(dim=1)),
    Case(
        "max_axes_keepdims",
        lambda a: a.max((0, 2), keepdims=True),
        [distinct(3, 4, 2)],
        lambda a: a.amax(dim=(0, 2), keepdim=True),
    ),
    Case("min_axis", lambda a: a.min(0), [distinct(3, 4)], lambda a: a.amin(dim=0)),
    Case("var_all", lambda a: a.var(), [normal(3, 4)]),
    Case("var_axis", lambda a: a.var(1), [normal(3, 4)], lambda a: a.var(dim=1)),
    Case(
        "var_biased", lambda a: a.var(0, correction=0), [normal(3, 4)], lambda a: a.var(dim=0, correction=0)
    ),
    Case("matmul_2d", lambda a, b: a @ b, [normal(3, 4), normal(4, 5)]),
    Case("matmul_1d_1d", lambda a, b: a @ b, [normal(4), normal(4)]),
    Case("matmul_1d_2d", lambda a, b: a @ b, [normal(4), normal(4, 3)]),
    Case("matmul_2d_1d", lambda a, b: a @ b, [normal(3, 4), normal(4)]),
    Case("matmul_batched", lambda a, b: a @ b, [normal(2, 3, 4), normal(2, 4, 5)]),
    Case("matmul_broadcast", lambda a, b: a @ b, [normal(2, 1, 3, 4), normal(5, 4, 2)]),
    Case("matmul_batched_1d", lambda a, b: a @ b, [normal(4), normal(2, 4, 3)]),
    Case("matmul_batched_by_1d", lambda a, b: a @ b, [normal(2, 3, 4), normal(4)]),
    Case(
        "addmm",
        lambda c, a, b: tg.addmm(c, a, b),
        [normal(3, 5), normal(3, 4), normal(4, 5)],
        lambda c, a, b: __import__("torch").addmm(c, a, b),
    ),
    Case(
        "addmm_bias",
        lambda c, a, b: tg.addmm(c, a, b),
        [normal(5), normal(3, 4), normal(4, 5)],
        lambda c, a, b: __import__("torch").addmm(c, a, b),
    ),
    Case(
        "addcmul",
        lambda c, a, b: tg.addcmul(c, a, b),
        [normal(3, 4), normal(3, 4), normal(4)],
        lambda c, a, b: __import__("torch").addcmul(c, a, b),
    ),
    Case(
        "addcmul_method_broadcast",
        lambda c, a, b: c.addcmul(a, b),
        [normal(4), normal(3, 1), normal(3, 4)],
        lambda c, a, b: c.addcmul(a, b),
    ),
    Case(
        "lerp",
        lambda s, e, w: tg.lerp(s, e, w),
        [normal(3, 4), normal(3, 4), normal(3, 4)],
        lambda s, e, w: __import__("torch").lerp(s, e, w),
    ),
    Case(
        "lerp_broadcast",
        lambda s, e, w: s.lerp(e, w),
        [normal(3, 4), normal(4), normal(3, 1)],
        lambda s, e, w: s.lerp(e, w),
    ),
    Case(
        "linear",
        lambda x, w, b: tg.linear(x, w, b),
        [normal(3, 4), normal(5, 4), normal(5)],
        lambda x, w, b: __import__("torch").nn.functional.linear(x, w, b),
    ),
    Case(
        "linear_3d_no_bias",
        lambda x, w: tg.linear(x, w),
        [normal(2, 3, 4), normal(5, 4)],
        lambda x, w: __import__("torch").nn.functional.linear(x, w),
    ),
    Case(
        "linear_row_term",
        lambda x, w, c: tg.linear(x, w, c),
        [normal(3, 4), normal(5, 4), normal(3, 5)],
        lambda x, w, c: __import__("torch").nn.functional.linear(x, w) + c,
    ),
    Case(
        "linear_weight_reused",
        lambda x, w: tg.linear(tg.linear(x, w).tanh(), w),
        [normal(3, 4), normal(4, 4)],
        lambda x, w: __import__("torch").nn.functional.linear(
            __import__("torch").nn.functional.linear(x, w).tanh(), w
        ),
    ),
    Case("matmul_weight_reused", lambda a, w: (a @ w).tanh() @ w, [normal(3, 4), normal(4, 4)]),
    Case("contiguous_of_transpose", lambda a: a.T.contiguous() * 2, [normal(3, 4)]),
    Case("reshape", lambda a: a.reshape(4, -1), [normal(2, 3, 4)]),
    Case("permute", lambda a: a.permute(2, 0, 1), [normal(2, 3, 4)]),
    Case("transpose", lambda a: a.transpose(0, 2), [normal(2, 3, 4)]),
    Case("T", lambda a: a.T, [normal(3, 4)]),
    Case("squeeze", lambda a: a.squeeze(1), [normal(3, 1, 4)]),
    Case("unsqueeze", lambda a: a.unsqueeze(-1), [normal(3, 4)]),
    Case("getitem_slice_step", lambda a: a[1:, ::2], [normal(3, 5)]),
    Case("getitem_negative_step", lambda a: a[::-2, 1], [normal(5, 3)], lambda a: a.flip(0)[::2, 1]),
    Case("getitem_int", lambda a: a[1], [normal(3, 4)]),
    Case(
        "getitem_repeated_ids",
        lambda a: a[INDEX],
        [normal(3, 4)],
        lambda a: a[__import__("torch").from_numpy(INDEX)],
    ),
    Case(
        "getitem_bool_mask",
        lambda a: a[MASK],
        [normal(3, 4)],
        lambda a: a[__import__("torch").from_numpy(MASK)],
    ),
    Case(
        "split_sizes",
        lambda a: tg.cat([p * (i + 1) for i, p in enumerate(a.split([1, 3, 2], 1))], 1),
        [normal(2, 6)],
        lambda a: __import__("torch").cat([p * (i + 1) for i, p in enumerate(a.split([1, 3, 2], 1))], 1),
    ),
    Case("split_one_piece_used", lambda a: a.split(2, 0)[1], [normal(5, 3)]),
    Case("chunk", lambda a: a.chunk(4, 1)[0] * a.chunk(4, 1)[3], [normal(3, 8)]),
    Case(
        "unbind",
        lambda a: tg.stack([p * (i + 1) for i, p in enumerate(a.unbind(1))], 0),
        [normal(2, 3, 4)],
        lambda a: __import__("torch").stack([p * (i + 1) for i, p in enumerate(a.unbind(1))], 0),
    ),
    Case("unbind_some_unused", lambda a: a.unbind(0)[2] * a.unbind(0)[0], [normal(3, 4)]),
    Case(
        "cat",
        lambda a, b: tg.cat([a, b, a], 1),
        [normal(2, 3), normal(2, 1)],
        lambda a, b: __import__("torch").cat([a, b, a], 1),
    ),
    Case(
        "stack",
        lambda a, b: tg.stack([a, b], 1),
        [normal(2, 3), normal(2, 3)],
        lambda a, b: __import__("torch").stack([a, b], 1),
    ),
    Case("softmax", lambda a: a.softmax(-1), [normal(3, 5)], lambda a: a.softmax(-1)),
    Case("softmax_axis0", lambda a: a.softmax(0), [normal(3, 5)], lambda a: a.softmax(0)),
    Case("log_softmax", lambda a: a.log_softmax(1), [normal(2, 4, 3)], lambda a: a.log_softmax(1)),
    Case(
        "pad",
        lambda a: a.pad(((1, 0), (2, 3)), value=0.5),
        [normal(2, 3)],
        lambda a: __import__("torch").nn.functional.pad(a, (2, 3, 1, 0), value=0.5),
    ),
]


def make_inputs(case: Case, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [make(rng) for make in case.inputs]


def autograd_grads(case: Case, arrays: list[np.ndarray], projection: np.ndarray | None):
    tensors = [tg.Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    out = case.fn(*tensors)
    loss = out.sum() if projection is None else (out * tg.Tensor(projection)).sum()
    loss.backward()
    return out.data, [t.grad.data for t in tensors]


def projection_for(case: Case, arrays: list[np.ndarray]) -> np.ndarray:
    with tg.no_grad():
        shape = case.fn(*[tg.Tensor(a) for a in arrays]).shape
    return np.random.default_rng(1).standard_normal(shape)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gradient_matches_finite_differences(case: Case) -> None:
    arrays = make_inputs(case)
    projection = projection_for(case, arrays)
    _, analytic = autograd_grads(case, arrays, projection)
    for k, array in enumerate(arrays):

        def loss() -> float:
            with tg.no_grad():
                return float((case.fn(*[tg.Tensor(a) for a in arrays]).data * projection).sum())

        numeric = numerical_gradient(loss, array)
        np.testing.assert_allclose(analytic[k], numeric, rtol=1e-6, atol=1e-8, err_msg=f"input {k}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_forward_and_gradient_match_torch(case: Case) -> None:
    torch = pytest.importorskip("torch")
    arrays = make_inputs(case)
    projection = projection_for(case, arrays)
    out, grads = autograd_grads(case, arrays, projection)
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    expected = (case.torch_fn or case.fn)(*tensors)
    (expected * torch.from_numpy(projection)).sum().backward()
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    for k, t in enumerate(tensors):
        np.testing.assert_allclose(grads[k], t.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"input {k}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_float32_stays_float32(case: Case) -> None:
    arrays = make_inputs(case)
    tensors = [tg.Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    out = case.fn(*tensors)
    out.backward(np.ones(out.shape, dtype=np.float32))
    assert out.dtype == np.float32
    for t in tensors:
        assert t.grad.dtype == np.float32, case.name


def test_gradcheck_accepts_and_names_the_bad_element() -> None:
    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal((3, 4)), requires_grad=True, dtype=np.float64, name="x")
    assert tg.gradcheck(lambda t: (t * t).tanh(), [x])

    class WrongSquare(tg.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved
            return (grad * a,)  # should be 2a

    with pytest.raises(tg.GradcheckError, match=r"input 0 \('x'\) of shape \(3, 4\): at index"):
        tg.gradcheck(lambda t: WrongSquare.apply(t), [x])


def test_gradcheck_refuses_float32() -> None:
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        tg.gradcheck(lambda t: t * t, [x])


ELEMENTWISE = {
    "tanh": (lambda t: t.tanh(), None),
    "sigmoid": (lambda t: t.sigmoid(), None),
    "exp": (lambda t: t.exp(), None),
    "log": (lambda t: t.log(), "positive"),
    "sqrt": (lambda t: t.sqrt(), "positive"),
    "square": (lambda t: t * t, None),
    "softmax": (lambda t: t.softmax(-1), None),
    "log_softmax": (lambda t: t.log_softmax(-1), None),
}

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(sorted(ELEMENTWISE)),
    x=hnp.arrays(np.float64, shapes, elements=st.floats(-3, 3)),
)
def test_elementwise_gradients_on_generated_shapes(name: str, x: np.ndarray) -> None:
    fn, domain = ELEMENTWISE[name]
    if domain == "positive":
        x = np.abs(x) + 0.5
    t = tg.Tensor(x, requires_grad=True)
    assert tg.gradcheck(fn, [t], atol=1e-6, rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    x=hnp.arrays(np.float64, shapes, elements=st.floats(-3, 3), unique=True),
    reduction=st.sampled_from(["sum", "mean", "max", "var"]),
    data=st.data(),
)
def test_reduction_gradients_on_generated_shapes(x: np.ndarray, reduction: str, data) -> None:
    axis = data.draw(st.one_of(st.none(), st.integers(0, x.ndim - 1)))
    keepdims = data.draw(st.booleans())
    count = x.size if axis is None else x.shape[axis]
    if reduction == "var" and count < 2:
        return
    if reduction == "max":
        x = np.argsort(np.argsort(x.ravel())).reshape(x.shape) * 0.1  # same order, no near-ties under eps
    t = tg.Tensor(x, requires_grad=True)
    assert tg.gradcheck(lambda a: getattr(a, reduction)(axis, keepdims=keepdims), [t], atol=1e-6, rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_broadcast_binary_gradients_on_generated_shapes(data) -> None:
    shape_a, shape_b = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3)
    ).input_shapes
    rng = np.random.default_rng(0)
    a = tg.Tensor(rng.standard_normal(shape_a), requires_grad=True)
    b = tg.Tensor(rng.uniform(0.5, 2, shape_b), requires_grad=True)
    op = data.draw(st.sampled_from(["add", "sub", "mul", "div"]))
    assert tg.gradcheck(lambda p, q: getattr(p, op)(q), [a, b], atol=1e-6, rtol=1e-5)
