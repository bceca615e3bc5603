"""Compiled steps, and the programs kept across forward passes.

`CompiledReplayer` is a `replay.Replayer` whose trusted programs run as generated code (step.py):
the recording, the trust (two consecutive equal recordings) and the guards are the Replayer's,
unchanged. A program with an op the compiler does not handle is replayed, and `unsupported(reason)`
says so (the layer warns once).

`StepCache` keeps one layer-direction's trusted programs from one forward pass to the next, so a
training loop records a layer once, not once per forward pass. What a kept program assumes, and
what drops it:

- the captured tensors are the same objects with the same arrays: a kept program holds only tensors
  that belong to the layer's modules (their parameters and tensor attributes) or constants the step
  made itself (they differ between the two recordings that made the program trusted); a program
  capturing anything else (a view of a weight made per forward pass) is kept for that pass only;
- the modules' Python state is as it was (`purity.python_state` without versions: attributes,
  `training`, parameters by identity, array, dtype, shape and requires_grad; an optimizer's in-place
  updates keep it): replacing a parameter, `model.double()`, `requires_grad_`, `train()`/`eval()` or
  any attribute the step could read drops every kept program of the direction;
- the arguments' signature (structure, grad mode, shapes, dtypes, requires_grad) is the key.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from ..replay import Program, PythonState, Replayer, Step, _first_difference, _flatten, signature_of
from ..tensor import Tensor
from .codegen import Code, Unsupported, generate, structure_key
from .hoist import Split, split
from .sequence import run_sequence
from .step import Bound


class StepCache:
    """One layer-direction's trusted programs by signature, and generated code by program structure."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None
        self.owned: set[int] = set()
        self.programs: dict[Any, tuple[Program, Code]] = {}
        self.candidates: dict[Any, Program] = {}  # the last pass's recording per signature
        self.splits: weakref.WeakKeyDictionary[Program, dict[int, Any]] = weakref.WeakKeyDictionary()
        self.codes: dict[Any, Code | Unsupported] = {}

    def check(self, state: dict[str, Any], owned: Iterable[Tensor]) -> None:
        """Drop the kept programs if the modules' `state` changed since they were kept; `owned`: the
        tensors a kept program may capture (the modules' parameters)."""
        if self.state is None or not _equal(self.state, state):
            self.programs.clear()
            self.candidates.clear()
            self.state = state
            self.owned = {id(t) for t in owned}

    def split(self, program: Program, kx: int, n: int, steps: int) -> tuple[Split, Code, Code] | None:
        """The program's hoisted and looped parts for sequences of `steps` steps, and their code."""
        by_steps = self.splits.setdefault(program, {})
        if steps not in by_steps:
            cut = split(program, kx, n, steps)
            codes = None if cut is None else (self.code(cut.pre), self.code(cut.step))
            usable = codes is not None and not any(isinstance(c, Unsupported) for c in codes)
            by_steps[steps] = (cut, *codes) if usable else None  # type: ignore[misc]
        return by_steps[steps]

    def code(self, program: Program) -> Code | Unsupported:
        key = structure_key(program)
        if key not in self.codes:
            self.codes[key] = generate(program)
        return self.codes[key]


class CompiledReplayer(Replayer):
    """`Replayer` whose trusted programs run compiled, kept in `cache` across forward passes."""

    def __init__(
        self,
        step: Step,
        cache: StepCache,
        python_state: PythonState | None = None,
        refused: Callable[[str], None] | None = None,
        unsupported: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(step, python_state, refused)
        self.cache, self.unsupported = cache, unsupported
        self.bound = {signature: Bound(*kept) for signature, kept in cache.programs.items()}

    def __call__(self, *args: Any) -> Any:
        flattened = _flatten(args)
        if flattened is not None:
            bound = self.bound.get(signature_of(*flattened))
            if bound is not None:
                return bound(flattened[0])
        trusted, candidate = self.program, self.candidate
        result = super().__call__(*args)
        if self.program is not None and self.program is not trusted:
            self._compile(self.program, candidate)
        elif self.candidate is not None and self.candidate is not candidate:
            self._once_per_pass(self.candidate)
        return result

    def _once_per_pass(self, recorded: Program) -> None:
        """A signature met once per forward pass (the first step, from a state without grad) is trusted
        when two passes in a row record the same program for it."""
        before = self.cache.candidates.get(recorded.signature)
        self.cache.candidates[recorded.signature] = recorded
        if before is not None and before.same_as(recorded):
            self._compile(recorded, before)

    def rest(self, inputs: list[Any], state: Any, scopes: list[str | None]) -> list[Any] | None:
        """The states after each of the steps with `inputs`, from `state`, as one compiled node
        (sequence.py), when the first of them runs compiled and the state it makes has the signature it
        takes; else None (the caller steps on)."""
        if not self.bound:
            return None
        flattened = _flatten((inputs[0], state))
        bound = self.bound.get(signature_of(*flattened)) if flattened is not None else None
        if bound is None:
            return None
        program, slots = bound.program, bound.program.slots
        state_parts = list(state) if isinstance(state, tuple) else [state]
        n = len(state_parts)
        kx = len(flattened[0]) - n
        if (
            program.structure != isinstance(state, tuple)
            or len(program.outputs) != n
            or any(slots[program.outputs[j]][:3] != slots[kx + j][:3] for j in range(n))
        ):
            return None
        xs = [list(x) if isinstance(x, tuple) else [x] for x in inputs]
        expected = [(s.shape, s.dtype, s.requires_grad) for s in slots[:kx]]
        for x in xs:
            if [(t._data.shape, t._data.dtype, t.node.requires_grad) for t in x] != expected:
                return None
        split = self.cache.split(program, kx, n, len(xs))
        states = run_sequence(
            program, bound.code, bound.prepare(), bound.transposed, xs, state_parts, scopes, split
        )
        return [tuple(parts) if program.structure else parts[0] for parts in states]

    def _compile(self, program: Program, other: Program | None) -> None:
        """Compile a newly trusted program; keep it across passes if it captures only what may be kept."""
        code = self.cache.code(program)
        if isinstance(code, Unsupported):
            if self.unsupported is not None:
                self.unsupported(code.reason)
            return
        self.eager = False  # a short step gains too: one node instead of one per op
        self.bound[program.signature] = Bound(program, code)
        if other is not None and all(
            id(a) in self.cache.owned or a is not b
            for a, b in zip(program.captured, other.captured, strict=True)
        ):
            self.cache.programs[program.signature] = (program, code)


def _equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two snapshots alike: `==` when it can tell (plain values), else entry by entry (arrays)."""
    try:
        return bool(a == b)
    except (ValueError, TypeError):
        return _first_difference(a, b) is None


BOOKKEEPING = frozenset({"_step_caches", "_compile_said"})  # what `compiled` keeps on a layer


def compiled(
    layer: Any,
    label: str,
    step: Step,
    state: dict[str, Any],
    owned: Iterable[Tensor],
    python_state: PythonState | None = None,
    refused: Callable[[str], None] | None = None,
) -> CompiledReplayer:
    """The compiled step of one layer-direction (`label`) for this forward pass, with the programs
    kept for it (dropped unless `state` is as it was; a snapshot that leaves out BOOKKEEPING)."""
    caches = layer.__dict__.setdefault("_step_caches", {})
    cache = caches.setdefault(label, StepCache())
    cache.check(state, owned)
    said = layer.__dict__.setdefault("_compile_said", set())

    def unsupported(reason: str) -> None:
        if reason not in said:
            said.add(reason)
            warnings.warn(
                f"{type(layer).__name__}: {reason}; its steps are replayed (replay.py), not compiled",
                RuntimeWarning,
                stacklevel=5,
            )

    return CompiledReplayer(step, cache, python_state, refused, unsupported)
