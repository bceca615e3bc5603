"""Graph semantics of the Tensor: construction, accumulation, retain_graph, no_grad, detach, errors."""

import weakref

import numpy as np
import pytest

import tinygrad_rnn as tg


def test_construction_dtypes_follow_torch() -> None:
    assert tg.Tensor([1.0, 2.0]).dtype == np.float32
    assert tg.Tensor(3.5).dtype == np.float32
    assert tg.Tensor([1, 2]).dtype == np.int64
    assert tg.Tensor([True, False]).dtype == np.bool_
    assert tg.Tensor(np.zeros(3)).dtype == np.float64  # an ndarray keeps its dtype
    assert tg.Tensor([1.0], dtype=np.float64).dtype == np.float64
    assert tg.Tensor([1.0], dtype="double").dtype == np.float64


def test_constructor_copies_its_data() -> None:
    array = np.zeros(3)
    t = tg.Tensor(array)
    array[0] = 5.0
    assert t.data[0] == 0.0


def test_attributes_and_conversions() -> None:
    t = tg.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, name="w")
    assert t.shape == (2, 2) and t.ndim == 2 and t.is_leaf and t.requires_grad and t.name == "w"
    assert isinstance(t.numpy(), np.ndarray)
    assert tg.Tensor([7.0]).item() == pytest.approx(7.0, abs=0)
    y = t * 2
    assert not y.is_leaf and y.op == "Mul" and y.parents[0] is t.node
    assert "op=Mul" in repr(y) and "name='w'" in repr(t)
    with pytest.raises(ValueError, match="one element"):
        t.item()


def test_factories() -> None:
    assert tg.zeros(2, 3).shape == (2, 3) and tg.zeros(2, 3).dtype == np.float32
    assert tg.ones((2,), dtype=np.float64).dtype == np.float64
    assert tg.randn(4, 5, rng=0).shape == (4, 5)
    np.testing.assert_array_equal(tg.randn(3, rng=1).data, tg.randn(3, rng=1).data)
    r = tg.rand(100, rng=2).data
    assert r.min() >= 0 and r.max() < 1
    assert tg.arange(5).dtype == np.int64 and tg.arange(0, 1, 0.25).shape == (4,)
    np.testing.assert_array_equal(tg.eye(3).data, np.eye(3, dtype=np.float32))
    w = tg.zeros_like(tg.ones(2, 2, dtype=np.float64), requires_grad=True)
    assert w.dtype == np.float64 and w.requires_grad


def test_gradients_accumulate_across_backward_calls() -> None:
    x = tg.Tensor([1.0, 2.0, 3.0], requires_grad=True, dtype=np.float64)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * x.data + 3, rtol=1e-12, atol=0)
    x.zero_grad()
    assert x.grad is None
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad.data, [2, 2, 2], rtol=0, atol=0)


def test_a_reused_input_gets_the_sum_of_its_paths() -> None:
    x = tg.Tensor([0.5, -1.0], requires_grad=True, dtype=np.float64)
    y = x.tanh()
    z = (y * y + y * 3 + x).sum()
    z.backward()
    t = np.tanh(x.data)
    np.testing.assert_allclose(x.grad.data, (2 * t + 3) * (1 - t * t) + 1, rtol=1e-12, atol=0)


def test_grads_of_two_leaves_fed_by_one_add_do_not_alias() -> None:
    a = tg.Tensor([1.0, 2.0], requires_grad=True)
    b = tg.Tensor([3.0, 4.0], requires_grad=True)
    (a + b).backward(np.array([1.0, 1.0], dtype=np.float32))
    a.grad.data *= 10
    np.testing.assert_array_equal(b.grad.data, [1.0, 1.0])


def test_seed_array_is_not_aliased_into_grad() -> None:
    a = tg.Tensor([1.0, 2.0], requires_grad=True)
    seed = np.ones(2, dtype=np.float32)
    a.backward(seed)
    seed[0] = 100.0
    np.testing.assert_array_equal(a.grad.data, [1.0, 1.0])


def test_only_leaves_keep_grad_unless_retained() -> None:
    x = tg.Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    hidden = x * 3
    kept = x * 5
    kept.retain_grad()
    (hidden.sum() + (kept * kept).sum()).backward()
    assert hidden.grad is None
    np.testing.assert_allclose(kept.grad.data, 2 * kept.data, rtol=1e-12, atol=0)
    np.testing.assert_allclose(x.grad.data, 3 + 50 * x.data, rtol=1e-12, atol=0)


def test_the_graph_keeps_only_what_backward_needs() -> None:
    x = tg.Tensor([0.5, -1.0, 2.0], requires_grad=True, dtype=np.float64)
    y = x * 3  # Mul saves x and the constant, not its output
    z = y.tanh()  # Tanh saves its output, not its input
    values_of_y = weakref.ref(y.data)
    del y
    assert values_of_y() is None  # no one holds y any more: its values are gone, its node stays
    assert z.parents[0].op == "Mul" and z.parents[0].shape == (3,)
    z.sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * (1 - np.tanh(3 * x.data) ** 2), rtol=1e-12, atol=0)


def test_second_backward_through_a_freed_graph_is_refused() -> None:
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward() -> None:
    x = tg.Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 4 * x.data, rtol=1e-12, atol=0)


def test_no_grad_builds_no_graph_and_restores() -> None:
    x = tg.Tensor([1.0], requires_grad=True)
    with tg.no_grad():
        y = x * 2
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y.parents == ()
    with pytest.raises(ValueError, match="does not require grad"):
        y.backward()


def test_detach_cuts_the_graph() -> None:
    x = tg.Tensor([2.0], requires_grad=True, dtype=np.float64)
    h = x * x
    carried = h.detach()
    assert carried.detached and not carried.requires_grad
    loss = (carried * x).sum()
    loss.backward()
    np.testing.assert_allclose(x.grad.data, h.data, rtol=0, atol=0)  # no path through h


def test_scope_labels_tensors_and_nests() -> None:
    x = tg.Tensor([1.0], requires_grad=True)
    with tg.scope("lstm"), tg.scope("l0.t3"):
        y = x * 2
    z = y + 1
    assert y.scope == "lstm.l0.t3" and z.scope is None and x.scope is None


def test_long_chain_backpropagates_without_recursion() -> None:
    rng = np.random.default_rng(0)
    w = tg.Tensor(rng.standard_normal((4, 4)) * 0.3, requires_grad=True, dtype=np.float64)
    h = tg.zeros(1, 4, dtype=np.float64)
    for _ in range(20_000):
        h = (h @ w + 0.1).tanh()
    h.sum().backward()
    assert w.grad is not None and np.isfinite(w.grad.data).all()
    assert np.abs(w.grad.data).sum() > 0


def test_float32_graph_stays_float32() -> None:
    rng = np.random.default_rng(0)
    w = tg.Tensor(rng.standard_normal((3, 3)).astype(np.float32), requires_grad=True)
    h = tg.ones(2, 3)
    for _ in range(3):
        h = (h @ w).sigmoid() * 0.5 + h.tanh() / 2 - 1
    loss = h.log_softmax(-1).mean()
    assert loss.dtype == np.float32
    loss.backward()
    assert w.grad.dtype == np.float32


def test_cast_sends_the_gradient_back_in_the_input_dtype() -> None:
    x = tg.Tensor([1.5, -2.0], requires_grad=True, dtype=np.float64)
    y = (x.float() * 3).sum()
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0], rtol=0, atol=0)


def test_stable_log_softmax_and_sigmoid_for_huge_logits() -> None:
    logits = tg.Tensor([[1e4, 0.0, -1e4]], requires_grad=True, dtype=np.float64)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = logits.log_softmax(-1)
        out.sum().backward()
        s = tg.Tensor([-1e4, 0.0, 1e4]).sigmoid()
    np.testing.assert_allclose(out.data, [[0.0, -1e4, -2e4]], rtol=1e-12, atol=0)
    np.testing.assert_allclose(s.data, [0.0, 0.5, 1.0], rtol=0, atol=1e-30)
    assert np.isfinite(logits.grad.data).all()


def test_reflected_operators_with_numpy_scalars_keep_dtype() -> None:
    t = tg.Tensor([1.0, 2.0])
    for result in (2 * t, 1 - t, np.float64(2) * t, t / np.float64(3), 1 / t, np.float32(1) + t):
        assert isinstance(result, tg.Tensor) and result.dtype == np.float32


# --- errors ---------------------------------------------------------------------------------------


def test_matmul_shape_error_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"matmul: cannot multiply \(3, 4\) by \(5, 2\)"):
        tg.zeros(3, 4) @ tg.zeros(5, 2)


def test_broadcast_error_names_the_op_and_shapes() -> None:
    with pytest.raises(ValueError, match=r"add: .*input shapes: \(3, 4\), \(5,\)"):
        tg.zeros(3, 4) + tg.zeros(5)


def test_integer_tensor_cannot_require_grad() -> None:
    with pytest.raises(TypeError, match="only floating-point tensors can require grad, got dtype int64"):
        tg.Tensor([1, 2], requires_grad=True)


def test_mixed_float_dtypes_are_refused() -> None:
    with pytest.raises(TypeError, match="mul: dtype mismatch, float32 and float64"):
        tg.zeros(2) * tg.zeros(2, dtype=np.float64)


def test_backward_errors() -> None:
    with pytest.raises(ValueError, match="does not require grad"):
        tg.zeros(2).sum().backward()
    y = tg.Tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(ValueError, match=r"shape \(2,\) is not a scalar; pass grad="):
        y.backward()
    with pytest.raises(ValueError, match=r"grad has shape \(3,\), expected \(2,\)"):
        y.backward(np.ones(3, dtype=np.float32))


def test_item_assignment_in_a_graph_points_to_stack() -> None:
    h = tg.zeros(3, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match="stack"):
        h[0] = tg.ones(2)
    plain = tg.zeros(3)
    plain[1] = 4.0  # outside a graph it is allowed, as in torch
    assert plain.data[1] == 4.0


def test_shape_op_errors() -> None:
    t = tg.zeros(2, 3)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape \(2, 3\) into \(4, 2\)"):
        t.reshape(4, 2)
    with pytest.raises(ValueError, match="permute"):
        t.permute(0, 0)
    with pytest.raises(ValueError, match=r"sum: axis 2 is out of range for a tensor of shape \(2, 3\)"):
        t.sum(2)
    with pytest.raises(ValueError, match=r"split: sections \[1, 1\] do not add up to 3"):
        t.split([1, 1], 1)
    with pytest.raises(ValueError, match=r"cat: tensor 1 has shape \(2, 2\)"):
        tg.cat([t, tg.zeros(2, 2)], 0)
    with pytest.raises(ValueError, match=r"stack: tensor 1 has shape"):
        tg.stack([t, tg.zeros(3, 2)])
    with pytest.raises(TypeError, match="item 1 is list"):
        tg.stack([t, [1, 2]])
    with pytest.raises(TypeError, match="where: the condition must be boolean"):
        tg.where(np.array([1, 0]), tg.zeros(2), tg.ones(2))
    with pytest.raises(IndexError, match="getitem"):
        t[5]
    with pytest.raises(TypeError, match="pow: the exponent"):
        t ** "2"


def test_changing_saved_values_before_backward_is_refused() -> None:
    w = tg.Tensor([1.0, 2.0], requires_grad=True, name="w")
    loss = (w * w.tanh()).sum()
    opt = tg.optim.SGD([w], lr=0.1)
    w.grad = tg.Tensor([1.0, 1.0])
    opt.step()  # changes w in place before the backward of a graph that saved it
    assert w.version == 1
    with pytest.raises(RuntimeError, match=r"input 0 \('w'\) of Mul was changed in place"):
        loss.backward()


def test_item_assignment_of_a_saved_constant_is_caught() -> None:
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    scale = tg.Tensor([3.0, 4.0])
    y = (x * scale).sum()
    scale[0] = 10.0
    with pytest.raises(RuntimeError, match="input 1 of Mul was changed in place"):
        y.backward()
