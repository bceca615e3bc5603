"""Every op: autograd gradient = central finite differences (float64), and = PyTorch where installed.

The op table (op_table.py) gives every op's canonical case; CASES adds the variants (broadcasting,
1-D and batched products, options). One list drives all three checks.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from op_table import BY_NAME, MASK, ROWS, Row, distinct, into_domain, normal, of_kind, positive

import tinygrad_rnn as tg
from tinygrad_rnn.numeric import numerical_gradient


class Case(NamedTuple):
    name: str
    fn: Callable  # tinygrad_rnn version, taking Tensors
    inputs: list  # one generator per input
    torch_fn: Callable | None = None  # torch version (None: the same lambda works on torch tensors)


def _one_tensor(fn: Callable, cat: Callable) -> Callable:
    """fn, its outputs joined into one tensor when it gives several (split, chunk, unbind)."""

    def joined(*tensors):
        out = fn(*tensors)
        return cat([o.reshape(-1) for o in out]) if isinstance(out, tuple) else out

    return joined


def _case(row: Row) -> Case:
    return Case(
        row.name,
        _one_tensor(row.tiny, tg.cat),
        row.inputs,
        _one_tensor(row.torch_call, lambda ts: __import__("torch").cat(ts)),
    )


INDEX = np.array([0, 2, 2, 1, 0])

CASES = [_case(row) for row in ROWS if row.kind not in ("cast", "functional", "random", "comparison")] + [
    Case("add_broadcast_bias", lambda a, b: a + b, [normal(3, 4), normal(4)]),
    Case("add_broadcast_ones", lambda a, b: a + b, [normal(2, 1, 4), normal(3, 1)]),
    Case("add_scalar", lambda a: 2.5 + a, [normal(3)]),
    Case("sub_broadcast", lambda a, b: a - b, [normal(3, 1), normal(2, 3, 4)]),
    Case("rsub_scalar", lambda a: 1 - a, [normal(3, 2)]),
    Case("mul_broadcast", lambda a, b: a * b, [normal(2, 3, 4), normal(3, 1)]),
    Case("rmul_scalar", lambda a: 3 * a, [normal(4)]),
    Case("div_by_positive", lambda a, b: a / b, [normal(3, 4), positive(3, 4)]),
    Case("div_broadcast", lambda a, b: a / b, [normal(3, 4), positive(4)]),
    Case("rdiv_scalar", lambda a: 2 / a, [positive(3)]),
    Case("pow_int", lambda a: a**3, [normal(3, 4)]),
    Case("pow_half", lambda a: a**0.5, [positive(3, 4)]),
    Case("pow_negative", lambda a: a**-2, [positive(5)]),
    Case("clip_min_only", lambda a: a.clip(min=0.3), [distinct(4, 5)], lambda a: a.clamp(min=0.3)),
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
        "addmm_bias",
        lambda c, a, b: tg.addmm(c, a, b),
        [normal(5), normal(3, 4), normal(4, 5)],
        lambda c, a, b: __import__("torch").addmm(c, a, b),
    ),
    Case(
        "addcmul_method_broadcast",
        lambda c, a, b: c.addcmul(a, b),
        [normal(4), normal(3, 1), normal(3, 4)],
        lambda c, a, b: c.addcmul(a, b),
    ),
    Case(
        "lerp_broadcast",
        lambda s, e, w: s.lerp(e, w),
        [normal(3, 4), normal(4), normal(3, 1)],
        lambda s, e, w: s.lerp(e, w),
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
    Case("T", lambda a: a.T, [normal(3, 4)]),
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
    Case("chunk_pieces_multiplied", lambda a: a.chunk(4, 1)[0] * a.chunk(4, 1)[3], [normal(3, 8)]),
    Case(
        "unbind_scaled",
        lambda a: tg.stack([p * (i + 1) for i, p in enumerate(a.unbind(1))], 0),
        [normal(2, 3, 4)],
        lambda a: __import__("torch").stack([p * (i + 1) for i, p in enumerate(a.unbind(1))], 0),
    ),
    Case("unbind_some_unused", lambda a: a.unbind(0)[2] * a.unbind(0)[0], [normal(3, 4)]),
    Case("log_softmax_axis1", lambda a: a.log_softmax(1), [normal(2, 4, 3)], lambda a: a.log_softmax(1)),
    Case("softmax_axis0", lambda a: a.softmax(0), [normal(3, 5)], lambda a: a.softmax(0)),
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


GENERATED = {row.name: (row.tiny, row.domain) for row in of_kind("unary", "elementwise", "softmax")}
GENERATED["square"] = (lambda t: t * t, "normal")

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(sorted(GENERATED)),
    x=hnp.arrays(np.float64, shapes, elements=st.floats(-3, 3)),
)
def test_elementwise_gradients_on_generated_shapes(name: str, x: np.ndarray) -> None:
    fn, domain = GENERATED[name]
    t = tg.Tensor(into_domain(domain, x), requires_grad=True)
    assert tg.gradcheck(fn, [t], atol=1e-6, rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    x=hnp.arrays(np.float64, shapes, elements=st.floats(-3, 3), unique=True),
    reduction=st.sampled_from([row.name for row in of_kind("reduction")]),
    data=st.data(),
)
def test_reduction_gradients_on_generated_shapes(x: np.ndarray, reduction: str, data) -> None:
    axis = data.draw(st.one_of(st.none(), st.integers(0, x.ndim - 1)))
    keepdims = data.draw(st.booleans())
    count = x.size if axis is None else x.shape[axis]
    if reduction == "var" and count < 2:
        return
    row = BY_NAME[reduction]
    t = tg.Tensor(into_domain(row.domain, x), requires_grad=True)
    assert tg.gradcheck(lambda a: row.tiny(a, axis, keepdims), [t], atol=1e-6, rtol=1e-5)


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
