"""Gradient clipping: the returned norm and the clipped gradients equal torch.nn.utils' (float64)."""

import math

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.nn.utils import clip_grad_norm_, clip_grad_value_

SHAPES = [(3, 4), (5,), (2, 2, 2)]


def with_grads(dtype=np.float64) -> list[tg.Tensor]:
    """Three parameters with gradients and one without (it must be skipped)."""
    rng = np.random.default_rng(0)
    params = []
    for shape in SHAPES:
        p = tg.Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
        p.grad = tg.Tensor(rng.standard_normal(shape).astype(dtype))
        params.append(p)
    return params + [tg.Tensor(np.zeros(2, dtype=dtype), requires_grad=True)]


def torch_twins(params: list[tg.Tensor]) -> list:
    torch = __import__("torch")
    twins = []
    for p in params:
        t = torch.tensor(p.data, requires_grad=True)
        t.grad = None if p.grad is None else torch.tensor(p.grad.data)
        twins.append(t)
    return twins


@pytest.mark.parametrize("max_norm", [0.5, 100.0], ids=["clipped", "untouched"])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_matches_torch(norm_type: float, max_norm: float) -> None:
    torch = pytest.importorskip("torch")
    params = with_grads()
    twins = torch_twins(params)
    before = [np.array(p.grad.data) for p in params[:3]]
    total = clip_grad_norm_(params, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(twins, max_norm, norm_type)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, expected.item(), rtol=1e-12, atol=0)
    for p, t in zip(params[:3], twins, strict=False):
        np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-12, atol=1e-15)
    if max_norm == 100.0:
        for p, b in zip(params, before, strict=False):
            np.testing.assert_allclose(p.grad.data, b, rtol=0, atol=0)
    assert params[3].grad is None


def test_clip_grad_norm_scales_in_place_to_max_norm() -> None:
    params = with_grads()
    grads = [p.grad for p in params[:3]]
    arrays = [p.grad.data for p in params[:3]]
    clip_grad_norm_(params, 1.0)
    assert all(p.grad is g and p.grad.data is a for p, g, a in zip(params, grads, arrays, strict=False))
    joint = math.sqrt(sum(float((p.grad.data**2).sum()) for p in params[:3]))
    np.testing.assert_allclose(joint, 1.0, rtol=1e-5, atol=0)


def test_clip_grad_norm_float32_single_tensor_and_no_grads() -> None:
    params = with_grads(np.float32)
    total = clip_grad_norm_(params[0], 0.1)
    assert params[0].grad.dtype == np.float32
    np.testing.assert_allclose(total, np.linalg.norm(with_grads()[0].grad.data), rtol=1e-6, atol=0)
    assert clip_grad_norm_([params[3]], 1.0) == 0.0


def test_clip_grad_value_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    params = with_grads()
    twins = torch_twins(params)
    clip_grad_value_(params, 0.7)
    torch.nn.utils.clip_grad_value_(twins, 0.7)
    for p, t in zip(params[:3], twins, strict=False):
        np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(max(np.abs(p.grad.data).max() for p in params[:3]), 0.7, rtol=0, atol=0)


ERRORS = [
    (lambda ps: clip_grad_norm_(ps, -1.0), ValueError, "max_norm must be non-negative"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=0), ValueError, "norm_type must be positive or inf"),
    (lambda ps: clip_grad_norm_([ps[0], np.zeros(3)], 1.0), TypeError, "parameter 1 is ndarray"),
    (lambda ps: clip_grad_value_(ps, -0.5), ValueError, "clip_value must be non-negative"),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_bad_arguments_raise_before_touching_grads(call, error: type, message: str) -> None:
    params = with_grads()
    before = [np.array(p.grad.data) for p in params[:3]]
    with pytest.raises(error, match=message):
        call(params)
    for p, b in zip(params, before, strict=False):
        np.testing.assert_allclose(p.grad.data, b, rtol=0, atol=0)
