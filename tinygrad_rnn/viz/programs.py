"""The steps of a drawn graph grouped by structure: one layout per distinct step program, and the
numbers (‖grad‖ of every node, of every state part) per step.

The steps of one layer-direction run the same ops on the same shapes (the engine replays one recorded
program, replay.py); only their numbers differ. Two steps share a `StepProgram` when their ops,
names, shapes, folded constants and wiring agree, and their inputs from outside the step (weights,
the previous step's state, the input projection's slice) play the same roles. The first step (fed by
h0) and a step after a `detach()` cut usually get a program of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .graph import DETACHED, OP, Node, state_parts
from .steps import Chain, Step
from .style import describe, grad_norm
from .values import KeptValues, Summary


@dataclass(slots=True)
class StepProgram:
    """One distinct step structure: the nodes of the first step that had it (for labels), and what it
    reads from outside the step, as (role label, the first step's source node, the tensors read)."""

    index: int
    nodes: list[Node]
    external: list[tuple[str, Node, list[Any]]]


@dataclass(slots=True)
class StepNumbers:
    """One step: its program, ‖grad‖ per program node then per external input (None: no grad kept),
    the same nodes' value summaries (min, mean, max; None: not kept, see values.py), and its state
    parts (what a step of its chain passes on: h, c, ...) as {name: ‖grad‖}."""

    program: int
    norms: list[float | None]
    values: list[Summary | None]
    parts: dict[str, float | None]
    cut: bool  # the step reads a tensor cut by detach()


@dataclass
class Programs:
    """Every chain's steps in time order, with their numbers, and the distinct programs."""

    programs: list[StepProgram] = field(default_factory=list)
    chains: dict[Chain, dict[int, StepNumbers]] = field(default_factory=dict)
    part_names: list[str] = field(default_factory=list)


def group_steps(nodes: list[Node], values: KeptValues | None = None) -> Programs:
    """Sort the step nodes of `nodes` (topological order, as `graph.build` gives) into programs, with
    their numbers (and value summaries where `values` kept them)."""
    by_step: dict[Step, list[Node]] = {}
    for node in nodes:
        if node.step is not None and node.kind == OP:
            by_step.setdefault(node.step, []).append(node)
    part_names: dict[Chain, dict[str, None]] = {}  # per chain: the names of what a step passes on
    for k in sorted(state_parts(nodes)):
        part_names.setdefault(nodes[k].step.chain, {})[nodes[k].name or nodes[k].op] = None
    found = Programs()
    names = dict.fromkeys(n for chain_names in part_names.values() for n in chain_names) or {"h": None}
    found.part_names = sorted(names, key=lambda n: n != "h")  # h first
    keys: dict[Any, int] = {}
    pieces: dict[int, dict[int, Any]] = {}
    chain_order = {chain: k for k, chain in enumerate(dict.fromkeys(step.chain for step in by_step))}
    for step in sorted(by_step, key=lambda s: (chain_order[s.chain], s.t)):
        members = by_step[step]
        key, external = _wiring(step, members, nodes, pieces)
        if key not in keys:
            keys[key] = len(found.programs)
            found.programs.append(StepProgram(keys[key], members, external))
        norms = [grad_norm(n.tensors) for n in members] + [grad_norm(read) for _, _, read in external]
        summaries = [
            values.of(tensors) if values is not None else None
            for tensors in [n.tensors for n in members] + [read for _, _, read in external]
        ]
        names = part_names.get(step.chain, {"h": None})  # one step alone passes nothing on: its h
        parts = {n.name: grad_norm(n.tensors) for n in members if n.name in names}
        cut = any(source.kind == DETACHED for _, source, _ in external)
        found.chains.setdefault(step.chain, {})[step.t] = StepNumbers(keys[key], norms, summaries, parts, cut)
    return found


def _wiring(
    step: Step, members: list[Node], nodes: list[Node], pieces: dict[int, dict[int, Any]]
) -> tuple[Any, list[tuple[str, Node, list[Any]]]]:
    """What makes two steps share a program (their ops, names, shapes, constants, local wiring and
    the roles of their inputs from outside), and those inputs as (role, source node, tensors read)."""
    local = {node.index: i for i, node in enumerate(members)}
    external: dict[int, int] = {}  # source node index -> position among the step's external inputs
    inputs: list[tuple[str, Node, list[Any]]] = []
    wiring = []
    for node in members:
        sources = []
        for s in node.sources:
            if s not in local and s not in external:
                external[s] = len(external)
                inputs.append((_role(nodes[s], step), nodes[s], _read(node, nodes[s], pieces)))
            sources.append(local[s] if s in local else -1 - external[s])
        shapes = tuple(tuple(t.shape) for t in node.tensors)
        wiring.append((node.op, node.name, shapes, node.constants, tuple(sources)))
    return (tuple(wiring), tuple(role for role, _, _ in inputs)), inputs


def _read(consumer: Node, source: Node, pieces: dict[int, dict[int, Any]]) -> list[Any]:
    """The tensors of `source` that `consumer` reads: one piece of an unbind or chunk, else all.
    `pieces` caches each multi-output source's {id(tensor): tensor}."""
    if len(source.tensors) == 1:
        return source.tensors
    if source.index not in pieces:
        pieces[source.index] = {id(t): t for t in source.tensors}
    own = pieces[source.index]
    return [own[id(p)] for t in consumer.tensors for p in t.parents if id(p) in own] or source.tensors


def _role(source: Node, step: Step) -> str:
    """What an input from outside the step is, the same at every step: a weight's or input's name,
    the previous step's state part, an op outside the steps, a cut tensor."""
    if source.kind == OP and source.step is not None and source.step.chain == step.chain:
        offset = source.step.t - step.t  # -1 for the previous step, +1 in a reverse chain
        return f"{source.name or source.op} (t{'+' if offset > 0 else '−'}{abs(offset)})"
    if source.kind == OP and source.step is not None:
        return f"{source.name or source.op} ({source.step.chain.title})"
    if source.kind == OP and len(source.tensors) > 1:
        return f"{source.name or source.op}[t] (outside the steps)"
    if source.kind == OP:
        return f"{source.name or source.op} (outside the steps)"
    label = source.name or describe(source.tensors, True, False)
    return f"{label} (cut by detach())" if source.kind == DETACHED else label
