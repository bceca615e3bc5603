"""Where a cell's hand-written BPTT is found, by name: in the file named on the command line, then
in the module that defines the cell class (the same file, unless the file imports the class).

For `tinygrad-rnn check --cell path/to/file.py:ClassName` each of those modules is searched for

    ClassName_step_forward, ClassName_step_backward   the pair of that class (a file with several cells)
    step_forward, step_backward                       the file's pair (a file with one cell)

in this order; each is a function of the manual protocol (tinygrad_rnn.manual.cell).
"""

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

Pair = tuple[Callable[..., Any], Callable[..., Any]]
HALVES = ("step_forward", "step_backward")


def manual_pair_for(cell: type, named: ModuleType | None = None) -> Pair | None:
    """The pair the module `named` (the file given) defines for `cell`, else the pair the module of
    `cell` defines, None when neither does; half a pair is a ValueError naming the missing function."""
    modules = [named, sys.modules.get(cell.__module__)]
    for module in dict.fromkeys(m for m in modules if m is not None):
        pair = _pair_in(vars(module), cell)
        if pair is not None:
            return pair
    return None


def _pair_in(namespace: dict[str, Any], cell: type) -> Pair | None:
    where = namespace.get("__file__", namespace.get("__name__"))
    for names in ([f"{cell.__name__}_{half}" for half in HALVES], list(HALVES)):
        found = [namespace.get(name) for name in names]
        if all(callable(f) for f in found):
            return found[0], found[1]
        if any(callable(f) for f in found):
            missing = next(name for name, f in zip(names, found, strict=True) if not callable(f))
            raise ValueError(
                f"{where} defines half of the manual pair of {cell.__name__}: {missing} is missing"
            )
    return None
