"""Where a cell's hand-written BPTT is found, by name, in the file that defines the cell class.

For `tinygrad-rnn check --cell path/to/file.py:ClassName` the file's module is searched for

    ClassName_step_forward, ClassName_step_backward   the pair of that class (a file with several cells)
    step_forward, step_backward                       the file's pair (a file with one cell)

in this order; each is a function of the manual protocol (tinygrad_rnn.manual.cell).
"""

import sys
from collections.abc import Callable
from typing import Any

Pair = tuple[Callable[..., Any], Callable[..., Any]]
HALVES = ("step_forward", "step_backward")


def manual_pair_for(cell: type) -> Pair | None:
    """The pair the module of `cell` defines for it, None when it defines none; half a pair is a
    ValueError naming the missing function."""
    module = sys.modules.get(cell.__module__)
    namespace = vars(module) if module is not None else {}
    where = namespace.get("__file__", cell.__module__)
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
