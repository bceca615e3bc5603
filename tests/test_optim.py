"""Optimizers and schedulers: the same trajectories and lr sequences as torch.optim (float64), exact
state_dict round trips, float32 kept, and errors raised before anything changes.

Both sides are driven by the same gradient rule, g = ½(θ − θ*) + noise_k, evaluated on each side's own
parameters, so a wrong update compounds over the 20 steps instead of hiding in one.
"""

from collections.abc import Callable

import numpy as np
import pytest

import tinygrad_rnn as tg
import tinygrad_rnn.optim as optim

SHAPES = [(3, 4), (5,)]
STEPS = 20

CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "eps": 1e-6}),
    ("Adam", {"lr": 0.01, "maximize": True, "weight_decay": 0.05}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "betas": (0.7, 0.9)}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.05, "initial_accumulator_value": 0.1}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.01}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "centered": True, "eps": 1e-6}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "maximize": True}),
]
CONFIG_IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in options.items())}" for name, options in CONFIGS]


def initial_values() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape) for shape in SHAPES]


def gradient(step: int, i: int, value: np.ndarray) -> np.ndarray | None:
    """The gradient of parameter i at `step` (None now and then for parameter 1: it must be skipped)."""
    if i == 1 and step % 4 == 3:
        return None
    rng = np.random.default_rng(100 * step + i)
    target = np.random.default_rng(i).standard_normal(value.shape)
    return 0.5 * (value - target) + rng.standard_normal(value.shape)


def grouped(params: list, options: dict, groups: bool) -> list:
    """The parameters as one list, or as two groups where the second overrides lr."""
    if not groups:
        return params
    return [{"params": [params[0]]}, {"params": [params[1]], "lr": options["lr"] * 0.5}]


def make_ours(name: str, options: dict, groups: bool = False, dtype=np.float64):
    params = [tg.Tensor(v.astype(dtype), requires_grad=True) for v in initial_values()]
    return params, getattr(optim, name)(grouped(params, options, groups), **options)


def run_ours(params: list, opt, steps: range) -> None:
    for step in steps:
        for i, p in enumerate(params):
            g = gradient(step, i, p.data)
            p.grad = None if g is None else tg.Tensor(g.astype(p.dtype))
        opt.step()


@pytest.mark.parametrize("groups", [False, True], ids=["one_group", "two_groups"])
@pytest.mark.parametrize("name, options", CONFIGS, ids=CONFIG_IDS)
def test_trajectory_matches_torch(name: str, options: dict, groups: bool) -> None:
    torch = pytest.importorskip("torch")
    params, opt = make_ours(name, options, groups)
    theirs = [torch.tensor(v, requires_grad=True) for v in initial_values()]
    their_opt = getattr(torch.optim, name)(grouped(theirs, options, groups), **options)
    for step in range(STEPS):
        run_ours(params, opt, range(step, step + 1))
        for i, t in enumerate(theirs):
            g = gradient(step, i, t.detach().numpy())
            t.grad = None if g is None else torch.from_numpy(g)
        their_opt.step()
        for p, t in zip(params, theirs, strict=True):
            np.testing.assert_allclose(
                p.data, t.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=f"step {step}"
            )


@pytest.mark.parametrize("name, options", CONFIGS, ids=CONFIG_IDS)
def test_state_dict_round_trip_resumes_exactly(name: str, options: dict) -> None:
    straight, straight_opt = make_ours(name, options, groups=True)
    run_ours(straight, straight_opt, range(10))

    first, first_opt = make_ours(name, options, groups=True)
    run_ours(first, first_opt, range(5))
    saved = first_opt.state_dict()
    snapshot = {i: {k: np.array(v) for k, v in entries.items()} for i, entries in saved["state"].items()}
    resumed, resumed_opt = make_ours(name, {**options, "lr": 123.0}, groups=True)  # the saved lr wins
    for p, q in zip(resumed, first, strict=True):
        p.data = np.array(q.data)  # the parameters themselves come from the model's checkpoint
    resumed_opt.load_state_dict(saved)
    run_ours(first, first_opt, range(5, 10))
    run_ours(resumed, resumed_opt, range(5, 10))

    for p, q, r in zip(straight, first, resumed, strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=0, atol=0)
        np.testing.assert_allclose(r.data, p.data, rtol=0, atol=0)
    for i, entries in saved["state"].items():  # a snapshot: it did not follow either live optimizer
        for key, value in entries.items():
            np.testing.assert_allclose(value, snapshot[i][key], rtol=0, atol=0, err_msg=key)


@pytest.mark.parametrize("name, options", CONFIGS, ids=CONFIG_IDS)
def test_float32_parameters_and_state_stay_float32(name: str, options: dict) -> None:
    params, opt = make_ours(name, options, dtype=np.float32)
    run_ours(params, opt, range(5))
    reference, reference_opt = make_ours(name, options)
    run_ours(reference, reference_opt, range(5))
    for p, r in zip(params, reference, strict=True):
        assert p.dtype == np.float32
        np.testing.assert_allclose(p.data, r.data, rtol=1e-4, atol=1e-5)
    for state in opt.state.values():
        for key, value in state.items():
            assert not isinstance(value, np.ndarray) or value.dtype == np.float32, key


def test_loading_float64_state_into_float32_parameters_casts_it() -> None:
    params, opt = make_ours("Adam", {"lr": 0.01})
    run_ours(params, opt, range(2))
    params32, opt32 = make_ours("Adam", {"lr": 0.01}, dtype=np.float32)
    opt32.load_state_dict(opt.state_dict())
    assert all(s["exp_avg"].dtype == np.float32 for s in opt32.state.values())
    run_ours(params32, opt32, range(2, 3))
    assert all(p.dtype == np.float32 for p in params32)


def test_state_dict_numbers_parameters_by_position_across_groups() -> None:
    params, opt = make_ours("SGD", {"lr": 0.1, "momentum": 0.9}, groups=True)
    run_ours(params, opt, range(1))
    saved = opt.state_dict()
    assert [g["params"] for g in saved["param_groups"]] == [[0], [1]]
    assert [g["lr"] for g in saved["param_groups"]] == [0.1, 0.05]
    np.testing.assert_allclose(saved["state"][1]["momentum_buffer"], params[1].grad.data, rtol=0, atol=0)


def test_zero_grad_sets_grads_to_none_and_step_skips_them() -> None:
    params, opt = make_ours("SGD", {"lr": 0.1, "momentum": 0.9})
    run_ours(params, opt, range(1))
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    before = [np.array(p.data) for p in params]
    opt.step()
    for p, b in zip(params, before, strict=True):
        np.testing.assert_allclose(p.data, b, rtol=0, atol=0)


def test_step_calls_the_closure_once_and_returns_its_loss() -> None:
    params, opt = make_ours("SGD", {"lr": 0.1})
    calls = []

    def closure() -> float:
        calls.append(1)
        for i, p in enumerate(params):
            p.grad = tg.Tensor(gradient(0, i, p.data))
        return 2.5

    assert opt.step(closure) == 2.5
    assert calls == [1]


def test_gradient_of_the_wrong_shape_raises_before_any_update() -> None:
    params, opt = make_ours("SGD", {"lr": 0.1})
    before = [np.array(p.data) for p in params]
    params[0].grad = tg.Tensor(np.ones((3, 4)))
    params[1].grad = tg.Tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"parameter 1 of its group has shape \(5,\), its grad \(4,\)"):
        opt.step()
    for p, b in zip(params, before, strict=True):
        np.testing.assert_allclose(p.data, b, rtol=0, atol=0)


def test_update_does_not_write_into_the_gradient() -> None:
    for name, options in CONFIGS:
        params, opt = make_ours(name, options)
        run_ours(params, opt, range(2))
        grads = [np.array(p.grad.data) for p in params]
        opt.step()
        for p, g in zip(params, grads, strict=True):
            np.testing.assert_allclose(p.grad.data, g, rtol=0, atol=0, err_msg=name)


BAD_OPTIONS = [
    ("SGD", {"lr": -0.1}, "lr must be a number >= 0.0"),
    ("SGD", {"lr": 0.1, "momentum": -0.5}, "momentum"),
    ("SGD", {"lr": 0.1, "nesterov": True}, "nesterov needs momentum > 0"),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True}, "dampening = 0"),
    ("Adam", {"lr": -1e-3}, "lr must be"),
    ("Adam", {"betas": (1.0, 0.999)}, r"betas\[0\] must be a number >= 0.0 and < 1.0"),
    ("Adam", {"betas": (0.9, -0.1)}, r"betas\[1\]"),
    ("Adam", {"betas": (0.9,)}, "betas must be a pair"),
    ("AdamW", {"eps": -1e-8}, "eps"),
    ("AdamW", {"weight_decay": -0.1}, "weight_decay"),
    ("Adagrad", {"lr_decay": -0.1}, "lr_decay"),
    ("Adagrad", {"lr": "fast"}, "lr must be a number"),
    ("RMSprop", {"alpha": -0.1}, "alpha"),
    ("RMSprop", {"momentum": -0.1}, "momentum"),
]


@pytest.mark.parametrize("name, options, message", BAD_OPTIONS)
def test_bad_options_raise(name: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        getattr(optim, name)([tg.Tensor(np.zeros(3), requires_grad=True)], **options)


def test_bad_group_option_raises() -> None:
    p, q = (tg.Tensor(np.zeros(3), requires_grad=True) for _ in range(2))
    with pytest.raises(ValueError, match="lr must be"):
        optim.SGD([{"params": [p]}, {"params": [q], "lr": -1.0}], lr=0.1)


BAD_PARAMS = [
    ("empty", lambda p: [], ValueError, "empty parameter list"),
    ("not_a_tensor", lambda p: [p, np.zeros(3)], TypeError, "parameter 1 of a group is ndarray"),
    ("integer_tensor", lambda p: [tg.Tensor(np.arange(3))], TypeError, "expected floating point"),
    ("twice", lambda p: [{"params": [p]}, {"params": p}], ValueError, "appears twice"),
    ("group_without_params", lambda p: [{"params": [p]}, {"lr": 0.1}], TypeError, "'params' entry"),
]


@pytest.mark.parametrize("make, error, message", [b[1:] for b in BAD_PARAMS], ids=[b[0] for b in BAD_PARAMS])
def test_bad_params_raise(make: Callable, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        optim.SGD(make(tg.Tensor(np.zeros(3), requires_grad=True)), lr=0.1)


def corrupt(saved: dict, how: str) -> dict:
    state = {i: dict(entries) for i, entries in saved["state"].items()}
    groups = [dict(g) for g in saved["param_groups"]]
    if how == "one_group_missing":
        groups = groups[:1]
    elif how == "extra_param":
        groups[1]["params"] = [1, 2]
    elif how == "wrong_shape":
        state[1]["exp_avg"] = np.zeros(4)
    elif how == "state_for_unknown_param":
        state[7] = dict(state[0])
    elif how == "negative_lr":
        groups[1]["lr"] = -1.0
    elif how == "bad_betas":
        groups[0]["betas"] = (1.5, 0.9)
    elif how == "missing_key":
        return {"state": state}
    return {"state": state, "param_groups": groups}


CORRUPTIONS = [
    ("one_group_missing", "1 parameter groups saved, this optimizer has 2"),
    ("extra_param", "group 1 has 2 parameters saved, this optimizer's has 1"),
    ("wrong_shape", r"'exp_avg' of parameter 1 has shape \(4,\), the parameter has \(5,\)"),
    ("state_for_unknown_param", "state for parameter 7, there are 2"),
    ("negative_lr", "lr must be"),
    ("bad_betas", r"betas\[0\]"),
    ("missing_key", "expected a dict with 'state'"),
]


@pytest.mark.parametrize("how, message", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_bad_state_dict_raises_and_leaves_the_optimizer_unchanged(how: str, message: str) -> None:
    params, opt = make_ours("Adam", {"lr": 0.01, "amsgrad": True}, groups=True)
    run_ours(params, opt, range(3))
    before = opt.state_dict()
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(corrupt(opt.state_dict(), how))
    after = opt.state_dict()
    assert [{k: v for k, v in g.items()} for g in after["param_groups"]] == before["param_groups"]
    assert after["state"].keys() == before["state"].keys()
    for i, entries in before["state"].items():
        for key, value in entries.items():
            np.testing.assert_allclose(after["state"][i][key], value, rtol=0, atol=0, err_msg=key)


# --- learning-rate schedulers ------------------------------------------------------------------------

SCHEDULES = [
    ("StepLR", {"step_size": 7, "gamma": 0.5}),
    ("StepLR", {"step_size": 1, "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 10, "eta_min": 0.01}),
    ("CosineAnnealingLR", {"T_max": 1}),
    ("CosineAnnealingLR", {"T_max": 7}),
]
SCHEDULE_IDS = [f"{name}-{options}" for name, options in SCHEDULES]


def scheduled(module, params: list, name: str, options: dict):
    opt = module.SGD([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.05}], lr=0.1)
    return opt, getattr(module.lr_scheduler, name)(opt, **options)


def lr_sequence(opt, scheduler, steps: int) -> list[list[float]]:
    lrs = [scheduler.get_last_lr()]
    for _ in range(steps):
        opt.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr())
        assert lrs[-1] == [g["lr"] for g in opt.param_groups]
    return lrs


@pytest.mark.parametrize("name, options", SCHEDULES, ids=SCHEDULE_IDS)
def test_schedule_matches_torch(name: str, options: dict) -> None:
    torch = pytest.importorskip("torch")
    ours = lr_sequence(*scheduled(optim, make_ours("SGD", {"lr": 0.1})[0], name, options), 30)
    theirs = lr_sequence(
        *scheduled(torch.optim, [torch.zeros(3, requires_grad=True) for _ in range(2)], name, options), 30
    )
    np.testing.assert_allclose(np.array(ours), np.array(theirs), rtol=1e-13, atol=0)


@pytest.mark.parametrize("name, options", SCHEDULES, ids=SCHEDULE_IDS)
def test_schedule_state_dict_round_trip(name: str, options: dict) -> None:
    params = make_ours("SGD", {"lr": 0.1})[0]
    straight = lr_sequence(*scheduled(optim, params, name, options), 30)
    opt, scheduler = scheduled(optim, params, name, options)
    first = lr_sequence(opt, scheduler, 12)
    saved_opt, saved_scheduler = opt.state_dict(), scheduler.state_dict()
    fresh_opt, fresh_scheduler = scheduled(optim, params, name, options)
    fresh_opt.load_state_dict(saved_opt)
    fresh_scheduler.load_state_dict(saved_scheduler)
    rest = lr_sequence(fresh_opt, fresh_scheduler, 18)
    np.testing.assert_allclose(np.array(first + rest[1:]), np.array(straight), rtol=0, atol=0)


BAD_SCHEDULES = [
    (lambda opt: optim.StepLR(opt, step_size=0), ValueError, "step_size must be a positive integer"),
    (lambda opt: optim.StepLR(opt, step_size=2.5), ValueError, "step_size"),
    (lambda opt: optim.ExponentialLR(opt, gamma=-0.5), ValueError, "gamma"),
    (lambda opt: optim.CosineAnnealingLR(opt, T_max=0), ValueError, "T_max"),
    (lambda opt: optim.CosineAnnealingLR(opt, T_max=5, eta_min=-1.0), ValueError, "eta_min"),
    (lambda opt: optim.ExponentialLR(opt.param_groups, gamma=0.5), TypeError, "expected an Optimizer"),
    (lambda opt: optim.StepLR(opt, 3).load_state_dict({"last_epoch": 2}), ValueError, "expected keys"),
]


@pytest.mark.parametrize("make, error, message", BAD_SCHEDULES)
def test_bad_schedule_raises(make: Callable, error: type, message: str) -> None:
    opt = optim.SGD([tg.Tensor(np.zeros(3), requires_grad=True)], lr=0.1)
    with pytest.raises(error, match=message):
        make(opt)


def test_bad_schedule_state_dict_leaves_it_unchanged() -> None:
    opt, scheduler = scheduled(optim, make_ours("SGD", {"lr": 0.1})[0], "StepLR", {"step_size": 2})
    lr_sequence(opt, scheduler, 3)
    before = scheduler.state_dict()
    with pytest.raises(ValueError, match="base_lrs has 1 entries, the optimizer has 2"):
        scheduler.load_state_dict({**before, "base_lrs": [0.1]})
    assert scheduler.state_dict() == before
