"""What gets drawn: the reachable tensors sorted into ops, parameters, inputs and cuts, with steps.

Three simplifications keep pictures readable. The outputs of one multi-output op (the pieces of a
`chunk`) share one node. Scalar constants (the 1 in ``1 - z``) are not nodes but appear in their
op's label. A parameter's view (``weight.T``, a reshape, a cast, and with `params` a slice) is the
parameter itself, so each use of a weight is an edge straight from its node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..tensor import Tensor
from .steps import Step, parse_scope, plain_cluster
from .walk import topological

OP, PARAM, INPUT, DETACHED = "op", "param", "input", "detached"
_CONSTANT = -1


@dataclass(slots=True)
class Node:
    """One drawn op or leaf with its output tensors (several for split and chunk). `sources` index
    the drawn nodes it was computed from (in argument order); `constants` holds, per argument, the
    folded scalar's text or None (empty when nothing was folded)."""

    index: int
    tensors: list[Tensor]
    kind: str
    name: str | None
    sources: list[int]
    constants: tuple[str | None, ...]
    step: Step | None
    group: str | None = None  # the scope of an op in no step that names none: a plain cluster

    @property
    def op(self) -> str:
        return self.tensors[0].op or ""


def parameter_names(params: Any) -> dict[int, str]:
    """`params` (a Module, a mapping or (name, Tensor) pairs) as {id(graph node of the tensor): name}."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        params = params.named_parameters()
    items: Iterable[Any] = params.items() if isinstance(params, Mapping) else params
    names = {}
    for item in items:
        pair = isinstance(item, tuple) and len(item) == 2
        if not (pair and isinstance(item[0], str) and isinstance(item[1], Tensor)):
            raise TypeError(
                "draw: params must be a Module, a mapping or (name, Tensor) pairs such as "
                f"model.named_parameters(), got an item {item!r:.80}"
            )
        names[id(item[1].node)] = item[0]
    return names


def build(root: Tensor, names: dict[int, str]) -> tuple[list[Node], int]:
    """The nodes to draw in topological order, and the index of `root` among them."""
    root = root.node  # the graph is made of nodes: Tensor.parents gives the nodes of the inputs
    order = topological(root)
    position = {id(t): k for k, t in enumerate(order)}
    drawn_as: list[int] = []  # per tensor in `order`: its node index, or _CONSTANT
    constant_text: dict[int, str] = {}
    nodes: list[Node] = []
    scopes: dict[str | None, tuple[Step | None, str | None]] = {}
    # outputs of one op call share its `parents` tuple; holding the tuple keeps its id unique
    calls: dict[int, tuple[tuple[Tensor, ...], int]] = {}
    for k, t in enumerate(order):
        if not t.is_leaf:
            call = calls.get(id(t.parents))
            if call is not None and call[0] is t.parents and nodes[call[1]].op == t.op:
                nodes[call[1]].tensors.append(t)
                drawn_as.append(call[1])
                continue
        parents = [position[id(p)] for p in t.parents]
        if t.is_leaf and t is not root and _is_constant(t):
            drawn_as.append(_CONSTANT)
            constant_text[k] = f"{t.item():g}"
            continue
        # an op that rearranges a parameter (Function.rearranges) is drawn as it; so is a slice of a
        # parameter named by `params` (weight_hh[:H] is weight_hh, not a node in every step); without
        # `params` an input that requires grad counts as a parameter, and its x[t] stays apart
        viewing = t.rearranges or (t.selects and bool(names))
        if viewing and len(parents) == 1 and drawn_as[parents[0]] != _CONSTANT:
            source = nodes[drawn_as[parents[0]]]
            if source.kind == PARAM:
                drawn_as.append(source.index)
                continue
        sources = [drawn_as[p] for p in parents if drawn_as[p] != _CONSTANT]
        constants = tuple(constant_text.get(p) for p in parents) if len(sources) < len(parents) else ()
        if t.scope not in scopes:
            scopes[t.scope] = (parse_scope(t.scope), plain_cluster(t.scope))
        step, group = scopes[t.scope] if not t.is_leaf else (None, None)
        name = names.get(id(t), t.name)
        nodes.append(Node(len(nodes), [t], _kind(t, names), name, sources, constants, step, group))
        drawn_as.append(nodes[-1].index)
        if not t.is_leaf:
            calls[id(t.parents)] = (t.parents, nodes[-1].index)
    _adopt(nodes)
    _name_states(nodes)
    return nodes, drawn_as[position[id(root)]]


def state_parts(nodes: list[Node]) -> set[int]:
    """The step ops whose value another step of the same chain reads: the state a step passes on."""
    parts = set()
    for node in nodes:
        for s in node.sources:
            source = nodes[s]
            if (
                source.kind == OP
                and source.step is not None
                and node.step is not None
                and node.step != source.step
                and node.step.chain == source.step.chain
            ):
                parts.add(s)
    return parts


def _name_states(nodes: list[Node]) -> None:
    """Name the unnamed state parts ``state[k]`` (the layer names h; an LSTM-like cell's own ``m``
    then reads as a state, not 'Add'). A part is the i-th of its step's unnamed ops that a step of
    its chain with as many unnamed ops passes on, so the last step's, which no step reads, is named."""
    unnamed: dict[Step, list[Node]] = {}
    for node in nodes:
        if node.kind == OP and node.step is not None and node.name is None:
            unnamed.setdefault(node.step, []).append(node)
    passed = state_parts(nodes)
    positions: dict[tuple[Any, int], set[int]] = {}
    for step, members in unnamed.items():
        found = {i for i, n in enumerate(members) if n.index in passed}
        positions.setdefault((step.chain, len(members)), set()).update(found)
    for step, members in unnamed.items():
        for k, i in enumerate(sorted(positions[(step.chain, len(members))])):
            members[i].name = f"state[{k + 1}]"


def _is_constant(t: Tensor) -> bool:
    return t.ndim == 0 and not t.requires_grad and not t.detached and t.name is None


def _kind(t: Tensor, names: dict[int, str]) -> str:
    """A leaf is a parameter if it is among the `params` given (without them: if it requires grad), so
    an input that requires grad to show dL/dx (x, h0) is still drawn as an input."""
    if not t.is_leaf:
        return OP
    if t.detached:
        return DETACHED
    if names:
        return PARAM if id(t) in names else INPUT
    return PARAM if t.requires_grad else INPUT


_UNSEEN, _MIXED = object(), object()


def _adopt(nodes: list[Node]) -> None:
    """Give an op outside any step the step of its consumers when they all lie in one step (a
    per-step slice of the input projection taken before the loop belongs to that step)."""
    consumers_step: list[Any] = [_UNSEEN] * len(nodes)
    for node in reversed(nodes):
        if node.kind == OP and node.step is None and isinstance(consumers_step[node.index], Step):
            node.step = consumers_step[node.index]
        for s in node.sources:
            seen = consumers_step[s]
            if seen is _UNSEEN:
                consumers_step[s] = node.step
            elif seen != node.step:
                consumers_step[s] = _MIXED
