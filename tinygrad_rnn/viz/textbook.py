"""`draw(..., detail='textbook')`: one layer's graph as the textbook draws the unrolled RNN.

Time runs left to right, data bottom to top: per step x_t, then U x_t (the step's share of the input
projection, which the layers compute for all steps before the loop), the cell h_t (its state parts
listed), then V h_t when parameters act on the steps' outputs (a decoder), and the loss as one node
L = Σ_t L_t. Each weight is drawn once with an edge into every step that uses it: U into the U x_t,
W (the weights the steps read themselves) into the cells, V into the V h_t.
"""

from __future__ import annotations

from collections import Counter

import graphviz

from .graph import INPUT, OP, PARAM, Node, state_parts
from .steps import elided
from .style import DARK, FILL, GradScale, grad_norm, text

SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def textbook(
    graph: graphviz.Digraph, nodes: list[Node], root: int, show_grads: bool, max_steps: int | None
) -> None:
    """Fill `graph` with the textbook figure of the one layer-direction in `nodes`."""
    chains = {node.step.chain for node in nodes if node.step is not None and node.kind == OP}
    if len(chains) != 1:
        raise ValueError(
            "draw: detail='textbook' draws one layer in one direction, the textbook's figure; this graph "
            f"has {len(chains)} ({', '.join(sorted(c.title for c in chains))}): use detail='cells'"
        )
    (chain,) = chains
    inside = {n.index for n in nodes if n.step is not None and n.kind == OP}
    before, after = _around(nodes, inside, root)
    steps = sorted({nodes[k].step.t for k in inside}, reverse=chain.reverse)
    hidden = elided(set(steps), max_steps)
    shown = [t for t in steps if t not in hidden]
    per_step = {t: [nodes[k] for k in sorted(inside) if nodes[k].step.t == t] for t in steps}
    parts = {k: nodes[k].name or nodes[k].op for k in state_parts(nodes)}
    graph.attr(rankdir="BT", newrank="true", nodesep="0.35", ranksep="0.45")
    readers = Counter(s for t in steps for s in {s for n in per_step[t] for s in n.sources})
    leaves: dict[str, set[int]] = {
        "U": set(),
        "W": set(),
        "V": set(),
        "x": set(),
        "start": set(),
        "loss": set(),
    }
    for k in before | after | inside:
        for s in nodes[k].sources:
            if nodes[s].kind == OP:
                continue
            if k in inside:  # a leaf every step reads is the input; one the first step reads, a state
                feeds_all = readers[s] == len(steps) > 1
                side = "W" if nodes[s].kind == PARAM else ("x" if feeds_all else "start")
            else:
                param = nodes[s].kind == PARAM
                side = ("U" if param else "x") if k in before else ("V" if param else "loss")
            leaves[side].add(s)
    norms = {t: _h_norm(per_step[t], parts) for t in shown}
    scale = GradScale(norms.values())
    levels: dict[str, list[str]] = {"x": [], "u": [], "h": [], "v": [], "loss": []}
    for s in sorted(leaves["start"]):
        graph.node(
            f"n{s}", label=text(nodes[s].name or "initial state"), style="filled", fillcolor=FILL[INPUT]
        )
        levels["h"].append(f"n{s}")
    previous = list(levels["h"])
    for position, t in enumerate(shown):
        if position and steps.index(t) > steps.index(shown[position - 1]) + 1:
            graph.node("elided", label=f"… {len(hidden)} steps …", style="dashed,rounded", fillcolor="none")
            levels["h"].append("elided")
            graph.edge(previous[-1], "elided", label="W")
            previous = ["elided"]
        sub = str(t).translate(SUBSCRIPTS)
        cell = f"h{t}"
        names = sorted({n.name for n in per_step[t] if n.name in parts.values()}, key=lambda n: n != "h")
        label = "\\n".join(f"{text(n)}{sub}" for n in names or ["h"])
        attrs = {}
        if show_grads and norms[t] is not None:
            label += f"\\n|dL/dh| = {norms[t]:.2e}"
            attrs["fillcolor"] = scale.colour(norms[t])
            attrs["fontcolor"] = "white" if attrs["fillcolor"] in DARK else "black"
        graph.node(cell, label=label, **attrs)
        levels["h"].append(cell)
        for p in previous:
            graph.edge(p, cell, label="W" if p in (f"h{t}" for t in steps) or p == "elided" else "")
        previous = [cell]
        below, into = cell, "U"
        if before:
            graph.node(f"u{t}", label=f"U x{sub}")
            levels["u"].append(f"u{t}")
            graph.edge(f"u{t}", cell)
            below = f"u{t}"
        if leaves["x"]:
            graph.node(f"x{t}", label=f"x{sub}", style="filled", fillcolor=FILL[INPUT])
            levels["x"].append(f"x{t}")
            graph.edge(f"x{t}", below, label=into if below == cell else "")
        top = cell
        if leaves["V"]:
            graph.node(f"v{t}", label=f"V h{sub}")
            levels["v"].append(f"v{t}")
            graph.edge(cell, f"v{t}")
            top = f"v{t}"
        graph.edge(top, "loss", label=f"L{sub}")
    root_name = nodes[root].name or nodes[root].op or "loss"
    graph.node("loss", label=f"{text(root_name)} = Σ_t L_t", penwidth="2")
    levels["loss"].append("loss")
    for s in sorted(leaves["loss"]):
        graph.node(f"n{s}", label=text(nodes[s].name or "target"), style="filled", fillcolor=FILL[INPUT])
        graph.edge(f"n{s}", "loss")
        levels["loss"].append(f"n{s}")
    for name, members in levels.items():
        with graph.subgraph() as level:
            level.attr(rank="same")
            for member in members:
                level.node(member)
            for a, b in zip(members, members[1:], strict=False):  # time runs left to right
                if name != "h":
                    level.edge(a, b, style="invis")
    weights = [
        f"{side}: {', '.join(text(nodes[s].name or 'parameter') for s in sorted(leaves[side]))}"
        for side in ("U", "W", "V")
        if leaves[side]
    ]
    graph.attr(label="weights, shared by every step — " + "; ".join(weights), labelloc="b")


def _around(nodes: list[Node], inside: set[int], root: int) -> tuple[set[int], set[int]]:
    """The ops outside the steps before them (the input projection) and after them (the decoder,
    the loss), found by walking the graph both ways from the steps (no recursion)."""
    consumers: dict[int, list[int]] = {}
    for node in nodes:
        for s in node.sources:
            consumers.setdefault(s, []).append(node.index)
    before: set[int] = set()
    stack = [s for k in inside for s in nodes[k].sources if s not in inside]
    while stack:
        k = stack.pop()
        if k not in before and nodes[k].kind == OP:
            before.add(k)
            stack.extend(nodes[k].sources)
    after: set[int] = set()
    stack = [c for k in inside for c in consumers.get(k, []) if c not in inside]
    while stack:
        k = stack.pop()
        if k not in after and k not in inside:
            after.add(k)
            stack.extend(consumers.get(k, []))
    return before - after, after | ({root} - inside)


def _h_norm(members: list[Node], parts: dict[int, str]) -> float | None:
    """‖dL/dh_t‖: of the step's value named h, else of its first state part."""
    named = [n for n in members if n.name == "h"] or [n for n in members if n.index in parts]
    return grad_norm(named[0].tensors) if named else None
