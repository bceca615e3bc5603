"""Learning-rate schedules that rewrite each parameter group's 'lr' once per `step()` (torch's names).

Each schedule moves the current lr to the next with torch's recurrence, so the sequence equals
torch's; the docstrings give the closed form it follows. Epoch 0 (at construction) keeps the
groups' lr, which is also stored as 'initial_lr' (the base lr) if the group has none yet.
"""

from __future__ import annotations

import math
from typing import Any

from .optimizer import Optimizer, check_range


class LRScheduler:
    """Base: `step()` advances `last_epoch` and sets every group's lr to `next_lrs()`."""

    hyperparameters: tuple[str, ...] = ()

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self.step()

    def next_lrs(self) -> list[float]:
        """The lr of every group at epoch `last_epoch` (≥ 1), from the groups' current lr."""
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        lrs = (
            [group["lr"] for group in self.optimizer.param_groups]
            if self.last_epoch == 0
            else self.next_lrs()
        )
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = lrs

    def get_last_lr(self) -> list[float]:
        """The lr of every group as set by the latest `step()`."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """The epoch, base and last lrs and the schedule's own settings (the optimizer saves its own)."""
        return {
            "last_epoch": self.last_epoch,
            "base_lrs": list(self.base_lrs),
            "last_lr": list(self._last_lr),
            **{name: getattr(self, name) for name in self.hyperparameters},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a `state_dict()`; checked before anything changes."""
        expected = {"last_epoch", "base_lrs", "last_lr", *self.hyperparameters}
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != expected:
            given = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}.load_state_dict: expected keys {sorted(expected)}, got {given}")
        groups = len(self.optimizer.param_groups)
        for key in ("base_lrs", "last_lr"):
            if len(state_dict[key]) != groups:
                raise ValueError(
                    f"{name}.load_state_dict: {key} has {len(state_dict[key])} entries, "
                    f"the optimizer has {groups} parameter groups"
                )
        self.last_epoch = int(state_dict["last_epoch"])
        self.base_lrs = list(state_dict["base_lrs"])
        self._last_lr = list(state_dict["last_lr"])
        for key in self.hyperparameters:
            setattr(self, key, state_dict[key])


def _check_positive_int(scheduler: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{scheduler}: {name} must be a positive integer, got {value!r}")


class StepLR(LRScheduler):
    """lr_t = base_lr · γ^⌊t / step_size⌋ (multiplied by γ at every multiple of step_size)."""

    hyperparameters = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        _check_positive_int("StepLR", "step_size", step_size)
        check_range("StepLR", "gamma", gamma, 0.0)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer)

    def next_lrs(self) -> list[float]:
        factor = self.gamma if self.last_epoch % self.step_size == 0 else 1.0
        return [group["lr"] * factor for group in self.optimizer.param_groups]


class ExponentialLR(LRScheduler):
    """lr_t = base_lr · γ^t."""

    hyperparameters = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        check_range("ExponentialLR", "gamma", gamma, 0.0)
        self.gamma = gamma
        super().__init__(optimizer)

    def next_lrs(self) -> list[float]:
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]


class CosineAnnealingLR(LRScheduler):
    """lr_t = η_min + (base_lr − η_min)·(1 + cos(π·t / T_max)) / 2, continued as torch's recurrence
    past T_max (it rises back over the next T_max epochs, a period of 2·T_max)."""

    hyperparameters = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803
        _check_positive_int("CosineAnnealingLR", "T_max", T_max)
        check_range("CosineAnnealingLR", "eta_min", eta_min, 0.0)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer)

    def next_lrs(self) -> list[float]:
        t, period, low = self.last_epoch, self.T_max, self.eta_min
        groups = self.optimizer.param_groups
        if (t - 1 - period) % (2 * period) == 0:
            # the ratio below would be 0/0 here (the bottom of the cosine): step up by the closed form
            rise = (1 - math.cos(math.pi / period)) / 2
            return [
                group["lr"] + (base - low) * rise for base, group in zip(self.base_lrs, groups, strict=True)
            ]
        ratio = (1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period))
        return [ratio * (group["lr"] - low) + low for group in groups]
