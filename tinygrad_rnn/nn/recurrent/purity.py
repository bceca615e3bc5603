"""Which steps may be replayed: the pure-step contract, and the snapshot that checks a declaration.

A step is *pure* when its result is a function of (x_t, state, parameters) alone: no value read back
into Python, no randomness drawn inside, no Python state read or changed. Only a pure step may be
recorded once and replayed (replay.py): a replayed step runs the recorded ops, not the cell's Python.

The layers' knob is `compile=`: True declares the steps pure, False runs them op by op, None (the
default) takes the cell class's own declaration, its class attribute `pure` (the built-in cells and
those of `nn.examples` say `pure = True`; a user's cell without it runs op by op).

A declaration is still checked while a step is recorded: a value read (`.data`, `item()`,
`numpy()`, `bool()`, an index made from a Tensor), a tensor made from an array or drawn at random,
`detach()`, an in-place change, `retain_grad()`, or a change of the cell modules' Python state (an
attribute, a list that grew, a generator that advanced: `python_state` below) sends the layer back
to op by op for that forward pass, with a warning naming the reason once per layer. Comparisons
and argmax are recorded ops, so a mask computed in the step is computed afresh when replayed.

What no check sees: state held outside the cell's modules (a global, a closure's list, another
object's counter) read or changed by the step. A cell that does that must not be declared pure.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from ...tensor import Tensor
from ..module import Module

DEPTH = 4  # how deep containers and plain objects held by a cell are looked into


def declared_pure(cell: Any, compile: bool | None) -> bool:
    """Whether a cell's steps may be replayed: the layer's `compile=` if given, else the class's `pure`."""
    return bool(getattr(type(cell), "pure", False)) if compile is None else compile


def python_state(
    cells: list[Module], versions: bool = True, skip: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A snapshot of everything the cells' Python could change during a step, keyed by where it is
    ('PeepholeLSTMCell.counter'): each attribute of each module (but those in `skip`), containers and
    plain objects looked into, arrays copied, generators by their state, tensors by identity and
    version (`versions=False`: by identity, array, dtype, shape and requires_grad, what a compiled
    program holds on to across forward passes while an optimizer changes values in place)."""
    snapshot: dict[str, Any] = {}
    for cell in cells:
        for path, module in cell.named_modules(type(cell).__name__):
            for attribute, value in vars(module).items():
                if attribute not in skip:
                    snapshot[f"{path}.{attribute}"] = _fingerprint(value, DEPTH, versions)
    return snapshot


def _fingerprint(value: Any, depth: int, versions: bool = True) -> Any:
    if value is None or isinstance(value, bool | int | float | complex | str | bytes | np.generic):
        return value
    if isinstance(value, Tensor):
        if not versions:
            return ("tensor", id(value), id(value._data), value.dtype, value.shape, value.requires_grad)
        return ("tensor", id(value), value.version)
    if isinstance(value, Module):
        return ("module", id(value))  # its own attributes have entries of their own
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, np.random.Generator):
        return ("generator", _fingerprint(value.bit_generator.state, depth, versions))
    if isinstance(value, random.Random):
        return ("random", value.getstate())
    if depth == 0:
        return ("object", id(value))
    if isinstance(value, dict):
        return ("dict", tuple((repr(k), _fingerprint(v, depth - 1, versions)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(_fingerprint(v, depth - 1, versions) for v in value))
    if isinstance(value, set | frozenset):
        return ("set", frozenset(id(v) for v in value))
    if hasattr(value, "__dict__") and not callable(value):
        return ("object", id(value), _fingerprint(vars(value), depth - 1, versions))
    return ("object", id(value))
