"""Losses, softmax, dropout, embedding: gradients = finite differences (float64), values and gradients =
PyTorch's where installed, stable at logits of ±1e4, clear errors. One list drives the first two checks:
the op table's `functional` rows (op_table.py) and the variants here.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from op_table import of_kind

import tinygrad_rnn as tg
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn.nn.functional import REDUCTIONS


def normal(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.standard_normal(shape)


def positive(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def away_from_zero(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    """|x| ≥ 0.2, so the kinks of max(±x, 0) and |x| at 0 are never within eps."""
    return lambda rng: rng.uniform(0.2, 3.0, shape) * rng.choice([-1.0, 1.0], shape)


T_N = np.array([1, 0, 4, 2])  # for (4, 5) logits
T_N_IGNORED = np.array([1, -100, 4, -100])
T_SCALAR = np.array(3)  # for (5,) logits
T_NT = np.array([[0, 4, 2], [1, 1, 3]])  # for (2, 5, 3) logits
T_NT_TWOS = np.array([[0, 2, 2], [1, 2, 3]])  # used with ignore_index=2, itself a class
T_NHW = np.array([[[0, 2], [1, 1]], [[2, 0], [1, 2]]])  # for (2, 3, 2, 2) logits
PROBS = np.array([[0.0, 1.0, 0.3], [0.9, 0.5, 1.0]])  # BCE targets for (2, 3) logits
IDS = np.array([[1, 3, 3, 0], [5, 1, 3, 2]])  # repeated ids, for a (6, 3) weight


class Case(NamedTuple):
    name: str
    fn: Callable  # ours, on Tensors
    inputs: list  # one generator per differentiable input
    torch_fn: Callable | None  # the same through torch.nn.functional (None: no torch counterpart)
    derivative: bool = True  # False where the gradient is by design not the derivative (padding rows)


def tt(array: np.ndarray):
    """A torch tensor of `array` (torch imported only when a torch test runs)."""
    return __import__("torch").from_numpy(np.array(array))


def tf():
    return __import__("torch").nn.functional


CASES = [Case(row.name, row.tiny, row.inputs, row.torch_call) for row in of_kind("functional", "random")] + [
    Case("softmax", lambda x: F.softmax(x, dim=1), [normal(2, 4, 3)], lambda x: tf().softmax(x, dim=1)),
    Case("log_softmax", lambda x: F.log_softmax(x), [normal(3, 5)], lambda x: tf().log_softmax(x, dim=-1)),
    Case(
        "ce_mean", lambda x: F.cross_entropy(x, T_N), [normal(4, 5)], lambda x: tf().cross_entropy(x, tt(T_N))
    ),
    Case(
        "ce_sum",
        lambda x: F.cross_entropy(x, T_N, reduction="sum"),
        [normal(4, 5)],
        lambda x: tf().cross_entropy(x, tt(T_N), reduction="sum"),
    ),
    Case(
        "ce_none",
        lambda x: F.cross_entropy(x, T_N, reduction="none"),
        [normal(4, 5)],
        lambda x: tf().cross_entropy(x, tt(T_N), reduction="none"),
    ),
    Case(
        "ce_ignored_mean",
        lambda x: F.cross_entropy(x, T_N_IGNORED),
        [normal(4, 5)],
        lambda x: tf().cross_entropy(x, tt(T_N_IGNORED)),
    ),
    Case(
        "ce_int_tensor_target",
        lambda x: F.cross_entropy(x, tg.Tensor(T_N_IGNORED)),
        [normal(4, 5)],
        lambda x: tf().cross_entropy(x, tt(T_N_IGNORED)),
    ),
    Case(
        "ce_scalar_target",
        lambda x: F.cross_entropy(x, T_SCALAR),
        [normal(5)],
        lambda x: tf().cross_entropy(x, tt(T_SCALAR)),
    ),
    Case(
        "ce_NCT_mean",
        lambda x: F.cross_entropy(x, T_NT),
        [normal(2, 5, 3)],
        lambda x: tf().cross_entropy(x, tt(T_NT)),
    ),
    Case(
        "ce_NCT_ignore_class_none",
        lambda x: F.cross_entropy(x, T_NT_TWOS, ignore_index=2, reduction="none"),
        [normal(2, 5, 3)],
        lambda x: tf().cross_entropy(x, tt(T_NT_TWOS), ignore_index=2, reduction="none"),
    ),
    Case(
        "ce_NCT_ignore_class_mean",
        lambda x: F.cross_entropy(x, T_NT_TWOS, ignore_index=2),
        [normal(2, 5, 3)],
        lambda x: tf().cross_entropy(x, tt(T_NT_TWOS), ignore_index=2),
    ),
    Case(
        "ce_NCHW",
        lambda x: F.cross_entropy(x, T_NHW, reduction="sum"),
        [normal(2, 3, 2, 2)],
        lambda x: tf().cross_entropy(x, tt(T_NHW), reduction="sum"),
    ),
    Case(
        "ce_smoothing_ignored_mean",
        lambda x: F.cross_entropy(x, T_N_IGNORED, label_smoothing=0.1),
        [normal(4, 5)],
        lambda x: tf().cross_entropy(x, tt(T_N_IGNORED), label_smoothing=0.1),
    ),
    Case(
        "ce_smoothing_NCT_sum",
        lambda x: F.cross_entropy(x, T_NT, reduction="sum", label_smoothing=0.25),
        [normal(2, 5, 3)],
        lambda x: tf().cross_entropy(x, tt(T_NT), reduction="sum", label_smoothing=0.25),
    ),
    Case(
        "ce_smoothing_NCT_ignored_none",
        lambda x: F.cross_entropy(x, T_NT_TWOS, ignore_index=2, reduction="none", label_smoothing=0.3),
        [normal(2, 5, 3)],
        lambda x: tf().cross_entropy(x, tt(T_NT_TWOS), ignore_index=2, reduction="none", label_smoothing=0.3),
    ),
    Case(
        "ce_smoothing_NCT_ignored_mean",
        lambda x: F.cross_entropy(x, T_NT_TWOS, ignore_index=2, label_smoothing=0.3),
        [normal(2, 5, 3)],
        lambda x: tf().cross_entropy(x, tt(T_NT_TWOS), ignore_index=2, label_smoothing=0.3),
    ),
    Case(
        "ce_smoothing_scalar_target",
        lambda x: F.cross_entropy(x, T_SCALAR, label_smoothing=0.2),
        [normal(5)],
        lambda x: tf().cross_entropy(x, tt(T_SCALAR), label_smoothing=0.2),
    ),
    Case(
        "ce_full_smoothing",
        lambda x: F.cross_entropy(x, T_N, label_smoothing=1.0),
        [normal(4, 5)],
        lambda x: tf().cross_entropy(x, tt(T_N), label_smoothing=1.0),
    ),
    Case(
        "nll_of_log_softmax",
        lambda x: F.nll_loss(x.log_softmax(1), T_N_IGNORED),
        [normal(4, 5)],
        lambda x: tf().nll_loss(x.log_softmax(1), tt(T_N_IGNORED)),
    ),
    Case(
        "nll_raw_NCT_none",
        lambda x: F.nll_loss(x, T_NT_TWOS, ignore_index=2, reduction="none"),
        [normal(2, 5, 3)],
        lambda x: tf().nll_loss(x, tt(T_NT_TWOS), ignore_index=2, reduction="none"),
    ),
    Case(
        "nll_sum",
        lambda x: F.nll_loss(x, T_N, reduction="sum"),
        [normal(4, 5)],
        lambda x: tf().nll_loss(x, tt(T_N), reduction="sum"),
    ),
    Case(
        "mse_mean",
        lambda x, y: F.mse_loss(x, y),
        [normal(3, 4), normal(3, 4)],
        lambda x, y: tf().mse_loss(x, y),
    ),
    Case(
        "mse_sum",
        lambda x: F.mse_loss(x, PROBS, reduction="sum"),
        [normal(2, 3)],
        lambda x: tf().mse_loss(x, tt(PROBS), reduction="sum"),
    ),
    Case(
        "mse_none",
        lambda x, y: F.mse_loss(x, y, reduction="none"),
        [normal(2, 5), normal(2, 5)],
        lambda x, y: tf().mse_loss(x, y, reduction="none"),
    ),
    Case(
        "bce_mean",
        lambda x: F.binary_cross_entropy_with_logits(x, PROBS),
        [away_from_zero(2, 3)],
        lambda x: tf().binary_cross_entropy_with_logits(x, tt(PROBS)),
    ),
    Case(
        "bce_sum",
        lambda x: F.binary_cross_entropy_with_logits(x, PROBS, reduction="sum"),
        [away_from_zero(2, 3)],
        lambda x: tf().binary_cross_entropy_with_logits(x, tt(PROBS), reduction="sum"),
    ),
    Case(
        "bce_none",
        lambda x: F.binary_cross_entropy_with_logits(x, PROBS, reduction="none"),
        [away_from_zero(2, 3)],
        lambda x: tf().binary_cross_entropy_with_logits(x, tt(PROBS), reduction="none"),
    ),
    Case(
        "bce_pos_weight",
        lambda x, p: F.binary_cross_entropy_with_logits(x, PROBS, pos_weight=p),
        [away_from_zero(2, 3), positive(3)],
        # torch does not differentiate pos_weight; its documented formula does
        lambda x, p: -(p * tt(PROBS) * tf().logsigmoid(x) + (1 - tt(PROBS)) * tf().logsigmoid(-x)).mean(),
    ),
    Case(
        "bce_pos_weight_array_none",
        lambda x: F.binary_cross_entropy_with_logits(x, PROBS, "none", np.array([0.5, 2.0, 3.0])),
        [away_from_zero(2, 3)],
        lambda x: tf().binary_cross_entropy_with_logits(
            x, tt(PROBS), reduction="none", pos_weight=tt(np.array([0.5, 2.0, 3.0]))
        ),
    ),
    Case(
        "embedding_padding_idx",
        lambda w: F.embedding(tg.Tensor(IDS), w, padding_idx=3),
        [normal(6, 3)],
        lambda w: tf().embedding(tt(IDS), w, padding_idx=3),
        derivative=False,
    ),
    Case(
        "embedding_negative_padding_idx",
        lambda w: F.embedding(IDS, w, padding_idx=-1),
        [normal(6, 3)],
        lambda w: tf().embedding(tt(IDS), w, padding_idx=-1),
        derivative=False,
    ),
    Case(
        "embedding_scalar_id",
        lambda w: F.embedding(np.array(4), w),
        [normal(6, 3)],
        lambda w: tf().embedding(tt(np.array(4)), w),
    ),
]


def make_tensors(case: Case) -> list[tg.Tensor]:
    rng = np.random.default_rng(0)
    return [tg.Tensor(make(rng), requires_grad=True, dtype=np.float64) for make in case.inputs]


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.derivative], ids=[c.name for c in CASES if c.derivative]
)
def test_gradient_matches_finite_differences(case: Case) -> None:
    assert tg.gradcheck(case.fn, make_tensors(case), atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("case", [c for c in CASES if c.torch_fn], ids=[c.name for c in CASES if c.torch_fn])
def test_value_and_gradient_match_torch(case: Case) -> None:
    torch = pytest.importorskip("torch")
    ours = make_tensors(case)
    theirs = [torch.tensor(t.data, requires_grad=True) for t in ours]
    out, expected = case.fn(*ours), case.torch_fn(*theirs)
    projection = np.random.default_rng(1).standard_normal(out.shape)
    (out * tg.Tensor(projection)).sum().backward()
    (expected * torch.from_numpy(projection)).sum().backward()
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"input {k}")


@settings(max_examples=25, deadline=None)
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4),
    reduction=st.sampled_from(REDUCTIONS),
    smoothing=st.sampled_from([0.0, 0.1, 0.5]),
    seed=st.integers(0, 2**16),
)
def test_cross_entropy_matches_torch_on_generated_shapes(
    shape: tuple[int, ...], reduction: str, smoothing: float, seed: int
) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    classes = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    target = rng.integers(0, classes, target_shape)
    target = np.where(rng.random(target_shape) < 0.3, -100, target)
    x = tg.Tensor(rng.standard_normal(shape), requires_grad=True)
    loss = F.cross_entropy(x, target, reduction=reduction, label_smoothing=smoothing)
    t = torch.tensor(x.data, requires_grad=True)
    expected = tf().cross_entropy(t, tt(target), reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_allclose(loss.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12, equal_nan=True)
    projection = rng.standard_normal(loss.shape)
    (loss * tg.Tensor(projection)).sum().backward()
    (expected * torch.from_numpy(projection)).sum().backward()
    np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-12)


HUGE = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [3.0, -1e4, -1e4]])
HUGE_PROBS = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 1.0], [0.2, 1.0, 0.0]])

STABILITY = {
    "cross_entropy": (
        lambda x: F.cross_entropy(x, np.array([1, 1, 2]), reduction="none", label_smoothing=0.1),
        lambda x: tf().cross_entropy(x, tt(np.array([1, 1, 2])), reduction="none", label_smoothing=0.1),
    ),
    "bce_with_logits": (
        lambda x: F.binary_cross_entropy_with_logits(x, HUGE_PROBS, "none", np.array([2.0, 0.5, 1.0])),
        lambda x: tf().binary_cross_entropy_with_logits(
            x, tt(HUGE_PROBS), reduction="none", pos_weight=tt(np.array([2.0, 0.5, 1.0]))
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(STABILITY))
def test_no_overflow_at_huge_logits(name: str) -> None:
    fn, torch_fn = STABILITY[name]
    x = tg.Tensor(HUGE, requires_grad=True)
    projection = np.random.default_rng(2).standard_normal(
        HUGE.shape[:1] if name == "cross_entropy" else HUGE.shape
    )
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = fn(x)
        (loss * tg.Tensor(projection)).sum().backward()
    assert np.isfinite(loss.data).all() and np.isfinite(x.grad.data).all()
    torch = pytest.importorskip("torch")
    t = torch.tensor(HUGE, requires_grad=True)
    expected = torch_fn(t)
    (expected * torch.from_numpy(projection)).sum().backward()
    np.testing.assert_allclose(loss.data, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_bce_gradient_at_zero_logit_is_sigmoid_minus_target() -> None:
    x = tg.Tensor(np.zeros(3), requires_grad=True)
    F.binary_cross_entropy_with_logits(x, np.array([0.0, 0.25, 1.0]), reduction="sum").backward()
    np.testing.assert_allclose(x.grad.data, [0.5, 0.25, -0.5], rtol=1e-15, atol=1e-15)


def test_all_targets_ignored_gives_nan_mean_and_zero_gradient_as_torch() -> None:
    x = tg.Tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    loss = F.cross_entropy(x, np.full(3, -100), label_smoothing=0.1)
    loss.backward()
    assert np.isnan(loss.item())
    np.testing.assert_allclose(x.grad.data, np.zeros((3, 4)), rtol=0, atol=0)


LOSSES_32 = {
    "cross_entropy": lambda x: F.cross_entropy(x, T_N_IGNORED, label_smoothing=0.1),
    "nll_loss": lambda x: F.nll_loss(x, T_N),
    "mse_loss": lambda x: F.mse_loss(x, np.ones((4, 5))),
    "bce_with_logits": lambda x: F.binary_cross_entropy_with_logits(
        x, np.ones((4, 5)) * 0.3, pos_weight=[2.0]
    ),
    "dropout": lambda x: F.dropout(x, 0.5, rng=0).sum(),
    "embedding": lambda w: F.embedding(np.array([0, 3, 3]), w, padding_idx=0).sum(),
}


@pytest.mark.parametrize("name", sorted(LOSSES_32))
def test_float32_stays_float32(name: str) -> None:
    x = tg.Tensor(np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32), requires_grad=True)
    loss = LOSSES_32[name](x)
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32


def test_embedding_accumulates_repeated_ids_and_skips_padding() -> None:
    w = tg.Tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    out = F.embedding(np.array([[2, 2], [1, 0]]), w, padding_idx=1)
    np.testing.assert_allclose(out.data[1, 0], [3.0, 4.0, 5.0], rtol=0, atol=0)  # padding row still read
    out.sum().backward()
    np.testing.assert_allclose(w.grad.data[:, 0], [1.0, 0.0, 2.0, 0.0], rtol=0, atol=0)


def test_dropout_mask_scale_and_reproducibility() -> None:
    x = tg.Tensor(np.random.default_rng(0).uniform(1.0, 2.0, (100, 100)))
    y = F.dropout(x, 0.3, rng=np.random.default_rng(5))
    kept = y.data != 0
    assert abs(1.0 - kept.mean() - 0.3) < 0.02
    np.testing.assert_allclose(y.data[kept], x.data[kept] / 0.7, rtol=1e-15, atol=0)
    again = F.dropout(x, 0.3, rng=np.random.default_rng(5))
    np.testing.assert_allclose(again.data, y.data, rtol=0, atol=0)
    generator = np.random.default_rng(5)
    first, second = F.dropout(x, 0.3, rng=generator), F.dropout(x, 0.3, rng=generator)
    assert (first.data != second.data).any()


def test_dropout_is_identity_when_not_training_or_p_zero() -> None:
    x = tg.Tensor(np.ones((2, 3)), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_dropout_with_p_one_zeroes_everything_as_torch() -> None:
    x = tg.Tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    y = F.dropout(x, 1.0, rng=0)
    y.sum().backward()
    np.testing.assert_array_equal(y.data, 0.0)
    np.testing.assert_array_equal(x.grad.data, 0.0)


L2 = tg.Tensor(np.zeros((4, 5)))
ERRORS = [
    (
        "ce_target_shape",
        lambda: F.cross_entropy(L2, np.array([1, 2, 3])),
        ValueError,
        r"target has shape \(3,\), expected \(4,\)",
    ),
    (
        "ce_NCT_target_shape",
        lambda: F.cross_entropy(tg.Tensor(np.zeros((2, 5, 3))), T_N),
        ValueError,
        r"expected \(2, 3\)",
    ),
    (
        "ce_float_target",
        lambda: F.cross_entropy(L2, np.array([1.0, 0.0, 2.0, 3.0])),
        TypeError,
        "integer indices, got dtype float64",
    ),
    ("ce_bool_target", lambda: F.cross_entropy(L2, np.ones(4, dtype=bool)), TypeError, "integer indices"),
    (
        "ce_class_too_big",
        lambda: F.cross_entropy(L2, np.array([1, 0, 5, 3])),
        ValueError,
        "class index 5 is out of range for 5 classes",
    ),
    ("ce_negative_class", lambda: F.cross_entropy(L2, np.array([1, -1, 0, 3])), ValueError, "class index -1"),
    (
        "ce_reduction",
        lambda: F.cross_entropy(L2, T_N, reduction="avg"),
        ValueError,
        "reduction must be one of",
    ),
    (
        "ce_smoothing",
        lambda: F.cross_entropy(L2, T_N, label_smoothing=1.5),
        ValueError,
        "label_smoothing must be in",
    ),
    ("ce_array_logits", lambda: F.cross_entropy(np.zeros((4, 5)), T_N), TypeError, "input must be a Tensor"),
    (
        "ce_int_logits",
        lambda: F.cross_entropy(tg.Tensor(np.zeros((4, 5), dtype=np.int64)), T_N),
        TypeError,
        "floating point",
    ),
    ("ce_scalar_logits", lambda: F.cross_entropy(tg.Tensor(1.0), np.array(0)), ValueError, "class axis"),
    ("nll_class_too_big", lambda: F.nll_loss(L2, np.array([9, 0, 0, 0])), ValueError, "class index 9"),
    ("nll_reduction", lambda: F.nll_loss(L2, T_N, reduction="max"), ValueError, "reduction"),
    (
        "mse_shape",
        lambda: F.mse_loss(L2, np.zeros((5, 4))),
        ValueError,
        r"target has shape \(5, 4\), expected \(4, 5\)",
    ),
    (
        "mse_int_target",
        lambda: F.mse_loss(L2, tg.Tensor(np.zeros((4, 5), dtype=np.int64))),
        TypeError,
        "floating point",
    ),
    (
        "bce_shape",
        lambda: F.binary_cross_entropy_with_logits(L2, np.zeros(5)),
        ValueError,
        "expected \\(4, 5\\)",
    ),
    (
        "bce_pos_weight_shape",
        lambda: F.binary_cross_entropy_with_logits(L2, np.zeros((4, 5)), pos_weight=np.ones(4)),
        ValueError,
        "pos_weight",
    ),
    ("dropout_p_above_one", lambda: F.dropout(L2, 1.5), ValueError, r"p must be a probability in \[0, 1\]"),
    ("dropout_p_negative", lambda: F.dropout(L2, -0.1), ValueError, "p must be"),
    (
        "embedding_float_ids",
        lambda: F.embedding(np.array([0.0, 1.0]), L2),
        TypeError,
        "ids must hold integer",
    ),
    (
        "embedding_id_range",
        lambda: F.embedding(np.array([0, 4]), L2),
        ValueError,
        "id 4 is out of range for a vocabulary of 4",
    ),
    (
        "embedding_weight_1d",
        lambda: F.embedding(np.array([0]), tg.Tensor(np.zeros(4))),
        ValueError,
        r"\(V, H\)",
    ),
    (
        "embedding_padding_range",
        lambda: F.embedding(np.array([0]), L2, padding_idx=4),
        ValueError,
        "padding_idx 4",
    ),
]


@pytest.mark.parametrize("call, error, message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_bad_input_raises_a_clear_error(call: Callable, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_linear_is_torchs_functional_linear() -> None:
    rng = np.random.default_rng(5)
    x = tg.Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    w = tg.Tensor(rng.standard_normal((5, 4)), requires_grad=True)
    b = tg.Tensor(rng.standard_normal(5), requires_grad=True)
    assert tg.gradcheck(lambda x, w, b: F.linear(x, w, b), [x, w, b])
    np.testing.assert_allclose(F.linear(x, w, b).data, x.data @ w.data.T + b.data, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"linear: expected input \(\.\.\., 4\) for weight \(5, 4\)"):
        F.linear(tg.Tensor(np.zeros((2, 3))), w)
