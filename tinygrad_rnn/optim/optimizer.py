"""The base every optimizer derives from: parameter groups, the step loop, state save and restore.

A subclass names its defaults, validates its options (`check_options`) and implements one update,
`update(param, grad, state, group)`, on raw arrays in place. The base does what all of them share:
skipping parameters without a gradient, `maximize` (ascend: use −g) and weight decay, either L2
(g ← g + λ·θ) or decoupled (θ ← θ·(1 − lr·λ), AdamW), before the update sees the gradient.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from numbers import Real
from typing import Any

import numpy as np

from ..errors import DTypeError
from ..tensor import Tensor


def check_range(optimizer: str, name: str, value: Any, low: float, high: float = math.inf) -> None:
    """ValueError unless low ≤ value < high (value a real number)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not low <= value < high:
        upper = "" if high == math.inf else f" and < {high}"
        raise ValueError(f"{optimizer}: {name} must be a number >= {low}{upper}, got {value!r}")


class Optimizer:
    """`Optimizer(params, defaults)`: params is an iterable of Tensors (a single Tensor counts as one),
    or of dicts with 'params' and per-group options overriding `defaults` (as torch's param_groups).

    `state` maps id(param) to that parameter's dict of arrays and numbers, created at its first step.
    """

    decoupled_weight_decay = False

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.check_options(self.defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}
        items = [params] if isinstance(params, Tensor) else list(params)
        if not items:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = items if isinstance(items[0], dict) else [{"params": items}]
        for group in groups:
            self.add_param_group(group)

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise ValueError for an option out of its range (each optimizer checks its own)."""
        check_range(type(self).__name__, "lr", options["lr"], 0.0)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group: its 'params' (a Tensor or an iterable of them) and options; missing ones default."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' entry, got {group!r}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameter {i} of a group is {type(p).__name__}, expected a Tensor")
            if p.dtype.kind != "f":
                raise TypeError(f"{name}: parameter {i} has dtype {p.dtype}, expected floating point")
            if id(p) in seen:
                raise ValueError(f"{name}: parameter {i} appears twice (in this group or in an earlier one)")
            seen.add(id(p))
        new = {k: _copy_value(v) for k, v in {**self.defaults, **group}.items() if k != "params"}
        self.check_options(new)
        new["params"] = params
        self.param_groups.append(new)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (set `.grad` to None, as torch's default), or with
        set_to_none=False fill it with zeros in place, so that the next backward reuses the buffer."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.data.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; if given, `closure()` is called first and its
        result (the loss) returned."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for i, p in enumerate(group["params"]):
                if p.grad is not None and p.grad.shape != p.shape:
                    raise ValueError(
                        f"{type(self).__name__}.step: parameter {i} of its group has shape {p.shape}, "
                        f"its grad {p.grad.shape}; nothing was updated"
                    )
                self._check_state_dtype(i, p)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = -p.grad.data if group.get("maximize", False) else p.grad.data
                decay = group.get("weight_decay", 0.0)
                if decay and self.decoupled_weight_decay:
                    p.data *= 1.0 - group["lr"] * decay
                elif decay:
                    grad = grad + decay * p.data
                self.update(p.data, grad, self.state.setdefault(id(p), {}), group)
                p.data_changed()
        return loss

    def _check_state_dtype(self, i: int, p: Tensor) -> None:
        """Refuse a buffer whose dtype is no longer the parameter's (a model converted after the
        optimizer took a step): mixing them would silently compute in the wrong precision."""
        for key, value in self.state.get(id(p), {}).items():
            if isinstance(value, np.ndarray) and value.dtype != p.dtype:
                raise DTypeError(
                    f"{type(self).__name__}.step: its state {key!r} of parameter {i} of its group is "
                    f"{value.dtype} but the parameter is {p.dtype} (was the model converted after the "
                    "optimizer was made?); make the optimizer again, or load its state_dict, which "
                    "converts the state to the parameters' dtype; nothing was updated"
                )

    def update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        """Change `param` in place from `grad` (never written to) and this parameter's `state`."""
        raise NotImplementedError

    # --- save and restore ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """A snapshot: {'state': {position: {name: array copy or number}}, 'param_groups': [options
        with 'params' as positions]}. Parameters are numbered in group order, as torch does."""
        groups, state, position = [], {}, 0
        for group in self.param_groups:
            positions = list(range(position, position + len(group["params"])))
            for i, p in zip(positions, group["params"], strict=True):
                if self.state.get(id(p)):
                    state[i] = {k: _copy_value(v) for k, v in self.state[id(p)].items()}
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": positions})
            position += len(positions)
        return {"state": state, "param_groups": groups}

    def state_keys(self, group: dict[str, Any]) -> set[str]:
        """The entries a parameter's state holds once it has been stepped with `group`'s options
        ('step' a count, every other entry an array of the parameter's shape)."""
        return set()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a `state_dict()` (copied in): options per group and per-parameter state, matched by
        position. Everything is checked first (the groups, each parameter's buffers: none missing or
        unknown, numbers of the parameter's shape) and every problem reported in one error; nothing
        changes unless all is well. Arrays (also torch tensors) are copied into numpy, in the
        parameter's dtype."""
        name = type(self).__name__
        if (
            not isinstance(state_dict, dict)
            or not isinstance(state_dict.get("state"), dict)
            or not isinstance(state_dict.get("param_groups"), list)
        ):
            raise ValueError(
                f"{name}.load_state_dict: expected a dict with 'state' (a dict) and 'param_groups' (a list)"
            )
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: {len(saved_groups)} parameter groups saved, "
                f"this optimizer has {len(self.param_groups)}"
            )
        problems: list[str] = []
        params: list[tuple[Tensor, dict[str, Any]]] = []
        new_groups = []
        for k, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if not isinstance(saved, dict) or not isinstance(saved.get("params"), list):
                problems.append(f"group {k} is not a dict with a 'params' list")
                continue
            if len(saved["params"]) != len(group["params"]):
                problems.append(
                    f"group {k} has {len(saved['params'])} parameters saved, this optimizer's has "
                    f"{len(group['params'])}"
                )
                continue
            options = {
                **self.defaults,
                **{key: _copy_value(v) for key, v in saved.items() if key != "params"},
            }
            try:
                self.check_options(options)
            except (ValueError, TypeError) as error:
                problems.append(f"group {k}: {error}")
                continue
            new_groups.append({**options, "params": group["params"]})
            params.extend((p, options) for p in group["params"])
        new_state = {}
        if not problems:
            for i, entries in saved_state.items():
                if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < len(params):
                    problems.append(f"state for parameter {i!r}, there are {len(params)}")
                elif not isinstance(entries, dict):
                    problems.append(f"state of parameter {i} is not a dict")
                else:
                    p, options = params[i]
                    new_state[id(p)] = self._checked_state(i, p, entries, options, problems)
        if problems:
            raise ValueError(f"{name}.load_state_dict: " + "; ".join(problems))
        self.param_groups = new_groups
        self.state = new_state

    def _checked_state(
        self, i: int, p: Tensor, entries: dict[str, Any], options: dict[str, Any], problems: list[str]
    ) -> dict[str, Any]:
        """Parameter i's saved state copied into numpy, its problems appended to `problems`."""
        given = {key: value for key, value in entries.items() if value is not None}  # torch: unused = None
        expected = self.state_keys(options)
        missing, unknown = sorted(expected - given.keys()), sorted(given.keys() - expected)
        if missing:
            problems.append(f"parameter {i} misses state {missing}")
        if unknown:
            problems.append(f"parameter {i} has unknown state {unknown} (expected {sorted(expected)})")
        state: dict[str, Any] = {}
        for key, value in given.items():
            try:
                array = np.asarray(value.data if isinstance(value, Tensor) else value)
            except (TypeError, ValueError, RuntimeError) as error:
                problems.append(f"state {key!r} of parameter {i} is not an array ({error})")
                continue
            if array.dtype.kind not in "fiu":
                problems.append(f"state {key!r} of parameter {i}: expected numbers, got dtype {array.dtype}")
            elif key == "step":
                if array.size != 1 or array.item() < 0 or array.item() != int(array.item()):
                    problems.append(f"state 'step' of parameter {i}: expected a count, got {value!r}")
                else:
                    state[key] = int(array.item())
            elif array.shape != p.shape:
                problems.append(
                    f"state {key!r} of parameter {i} has shape {array.shape}, the parameter has {p.shape}"
                )
            else:
                state[key] = array.astype(p.dtype)  # always a copy: the caller keeps its own
        return state


def buffer(state: dict[str, Any], key: str, like: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """state[key], first created as an array of `like`'s shape and dtype filled with `fill`."""
    if key not in state:
        state[key] = np.full_like(like, fill)
    return state[key]


def count_step(state: dict[str, Any]) -> int:
    """Advance and return this parameter's step counter (1 at its first update)."""
    state["step"] = state.get("step", 0) + 1
    return state["step"]


def _copy_value(value: Any) -> Any:
    """Arrays copied, numpy scalars turned into Python numbers (so float32 updates stay float32)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, np.generic):
        return value.item()
    return value
