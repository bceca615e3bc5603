"""`draw`: a Tensor's graph as a graphviz Digraph, one cluster per layer and time step."""

from __future__ import annotations

from collections import Counter
from typing import Any

import graphviz

from ..tensor import Tensor
from .backends import RenderError, find_renderer, missing, run
from .graph import DETACHED, OP, PARAM, Node, build, parameter_names
from .steps import Chain, Step, elided
from .style import (
    CELL_FILL,
    DARK,
    FILL,
    GradScales,
    describe,
    grad_norm,
    node_label,
    quantity,
    text,
    tooltip,
)
from .textbook import textbook

DETAILS = ("ops", "cells", "textbook")
RANKDIRS = ("LR", "RL", "TB", "BT")
SCALES = ("quantity", "global")
READABLE_STEPS = 16  # more steps per layer than this are elided unless max_steps says otherwise
# at op detail, the default keeps fewer steps of a big cell: about this many op nodes in the steps
# drawn (a LayerNorm LSTM's 4 steps render in about 3 s with graphviz-pure; its 16 took minutes)
OP_BUDGET = 200
FONT = "DejaVu Sans"  # metrics graphviz-pure knows, and the font found where it draws text
Edges = dict[tuple[str, str], dict[str, str]]


class Picture(graphviz.Digraph):
    """The Digraph `draw` returns; in Jupyter it displays through `find_renderer` (dot or graphviz-pure).

    `elided` says which steps were drawn as one elision node ('' when none), as the picture's title does.
    """

    elided: str = ""

    def _repr_image_svg_xml(self) -> str:
        program = find_renderer("svg")
        if program is None:
            raise RenderError(missing("svg", None))
        return run(program, self.source, "svg").decode("utf-8")


def draw(
    root: Tensor,
    *,
    detail: str = "ops",
    show_shapes: bool = True,
    show_grads: bool = False,
    max_steps: int | str | None = "auto",
    params: Any = None,
    rankdir: str = "LR",
    show_dtype: bool = False,
    grad_scale: str = "quantity",
) -> Picture:
    """The graph that computed `root` (typically the loss), as a Digraph (node names n0, n1, ...).

    - Ops are rounded boxes (op, output shape, dtype with `show_dtype`), parameters yellow boxes
      drawn once with one edge into each time step that uses them, inputs blue boxes. Names come
      from `params` (a Module, a mapping or `named_parameters()` pairs), else from `Tensor.name`.
    - Ops run under a step scope (``lstm.l0.t3``, any cell's name in place of lstm) sit in one cluster
      per step inside one cluster per layer and direction; ops under any other scope of your own sit
      in a dashed cluster named after it; the rest stand outside. `detail='cells'` draws each step of
      each layer and direction as one node ('LSTM l0 t3', 'PeepholeLSTMCell l0 t3'); `'textbook'`
      draws one layer as the textbook's unrolled figure (x_t, U x_t, h_t, V h_t, the loss as one
      node; time left to right, data bottom to top, so `rankdir` does not apply): textbook.py.
    - `max_steps=k` keeps the first ceil(k/2) and last floor(k/2) steps of each layer and direction
      and draws the rest as one elision node, as the picture's title says; `max_steps=None` draws
      every step (a few hundred steps take minutes to lay out). The default 'auto' is
      READABLE_STEPS = 16, fewer at op detail when the steps hold more than OP_BUDGET = 200 ops in
      all (at least 2), so a big cell's picture renders in seconds.
    - `show_grads` (after backward) colours nodes by log10 ‖grad‖ with a legend; call
      `retain_grads(root)` before backward so intermediate tensors keep theirs. Grey: no grad kept.
      `grad_scale='quantity'` spans one scale per quantity (the cells of one layer, one op of the
      step across its steps, the parameters, ...), so ‖dL/dh_t‖ shrinking over t shows as colours;
      `'global'` spans one scale over every node drawn.
    - Unnamed leaves are labelled by their shape; names are drawn verbatim (DOT/HTML escaped); SVG
      output shows the shape, dtype and ‖grad‖ of each node on hover.
    - A tensor cut from the graph by `detach()` (truncated BPTT) sits in a dashed cluster.
    """
    _check(root, detail, max_steps, rankdir, grad_scale)
    nodes, root_index = build(root, parameter_names(params))
    max_steps = _kept_steps(nodes, detail, max_steps)
    graph = Picture(
        "tinygrad_rnn",
        graph_attr={"rankdir": rankdir, "compound": "true", "fontname": FONT, "fontsize": "12"},
        node_attr={
            "shape": "box",
            "style": "filled,rounded",
            "fillcolor": FILL[OP],
            "fontname": FONT,
            "fontsize": "10",
        },
        edge_attr={"arrowsize": "0.6"},
    )
    if detail == "textbook":
        textbook(graph, nodes, root_index, show_grads, max_steps)
        return graph
    layout = _Layout(nodes, root_index, detail == "cells", max_steps)
    painter = _Painter(layout, show_shapes, show_dtype, show_grads, grad_scale)
    for chain in layout.chains:
        graph.subgraph(painter.layer(chain))
    cut = [node for node in nodes if node.kind == DETACHED]
    if cut:
        cluster = graphviz.Digraph("cluster_cut")
        cluster.attr(label="cut by detach()", style="dashed", color="#b2182b", fontcolor="#b2182b")
        for node in cut:
            painter.node(cluster, node)
        graph.subgraph(cluster)
    groups: dict[str, list[Node]] = {}  # ops under a scope that names no step: one plain cluster each
    for node in nodes:
        if node.step is None and node.kind != DETACHED and node.group is not None:
            groups.setdefault(node.group, []).append(node)
        elif node.step is None and node.kind != DETACHED:
            painter.node(graph, node)
    for k, (group, members) in enumerate(groups.items()):
        cluster = graphviz.Digraph(f"cluster_scope{k}")
        cluster.attr(label=graphviz.nohtml(text(group)), style="rounded,dashed", color="#969696")
        for node in members:
            painter.node(cluster, node)
        graph.subgraph(cluster)
    for (src, dst), attrs in layout.edges.items():
        graph.edge(src, dst, **attrs)
    if show_grads:
        with graph.subgraph(name="legend_rank") as bottom:  # last in time order (below, in TB), not beside
            bottom.attr(rank="sink")
            bottom.node("legend", label=painter.scales.legend(), shape="plaintext", style="")
        graph.edge(layout.units[layout.root], "legend", style="invis")
    graph.elided = layout.elided_text(max_steps)
    if graph.elided:
        graph.attr(label=text(graph.elided + "; max_steps=None draws every step"), labelloc="t")
    return graph


class _Layout:
    """Which drawn unit each node falls in (itself, its cell, or its chain's elision node), and the
    edges between units."""

    def __init__(self, nodes: list[Node], root: int, cells: bool, max_steps: int | None) -> None:
        self.nodes, self.root, self.cells = nodes, root, cells
        self.chains: dict[Chain, set[int]] = {}
        for node in nodes:
            if node.step is not None:
                self.chains.setdefault(node.step.chain, set()).add(node.step.t)
        self.chain_ids = {chain: k for k, chain in enumerate(self.chains)}
        self.hidden = {chain: elided(steps, max_steps) for chain, steps in self.chains.items()}
        self.units = [self._unit(node) for node in nodes]
        self.by_step: dict[Step, list[Node]] = {}
        if not cells:
            for node in nodes:
                if self.kept(node.step):
                    self.by_step.setdefault(node.step, []).append(node)
        self.edges, self.outputs = self._edges()

    def elided_text(self, max_steps: int | None) -> str:
        """'200 steps per layer: t8 to t191 drawn as one node (max_steps=16)', or '' when none was elided."""
        gaps = [(len(self.chains[c]), gap) for c, gap in self.hidden.items() if gap]
        if not gaps:
            return ""
        total, gap = max(gaps, key=lambda pair: pair[0])
        return (
            f"{total} steps per layer: t{min(gap)} to t{max(gap)} drawn as one node (max_steps={max_steps})"
        )

    def kept(self, step: Step | None) -> bool:
        return step is not None and step.t not in self.hidden[step.chain]

    def cell(self, step: Step) -> str:
        return f"c{self.chain_ids[step.chain]}t{step.t}"

    def cluster(self, step: Step) -> str:
        return f"cluster_step{self.chain_ids[step.chain]}_t{step.t}"

    def _unit(self, node: Node) -> str:
        if node.step is None or (not self.cells and self.kept(node.step)):
            return f"n{node.index}"
        return self.cell(node.step) if self.kept(node.step) else f"elision{self.chain_ids[node.step.chain]}"

    def _edges(self) -> tuple[Edges, dict[str, dict[int, None]]]:
        """Edges between units, deduplicated, a parameter's uses inside one step merged into one edge
        (into the step's cluster); and, per cell, the nodes whose values leave it."""
        nodes, units = self.nodes, self.units
        edges: Edges = {}
        outputs: dict[str, dict[int, None]] = {}
        uses: dict[tuple[int, Step], dict[str, None]] = {}
        for node in nodes:
            dst = units[node.index]
            for s in node.sources:
                src = units[s]
                if src == dst:
                    continue
                if self.cells and self.kept(nodes[s].step):
                    outputs.setdefault(src, {})[s] = None
                if not self.cells and nodes[s].kind == PARAM and self.kept(node.step):
                    uses.setdefault((s, node.step), {})[dst] = None
                else:
                    edges.setdefault((src, dst), {})
        for (s, step), targets in uses.items():
            lhead = {"lhead": self.cluster(step)} if len(targets) > 1 else {}
            edges[(units[s], next(iter(targets)))] = lhead
        if self.cells and self.kept(nodes[self.root].step):
            outputs.setdefault(units[self.root], {})[self.root] = None
        return (self._bundled(edges) if self.cells else edges), outputs

    def _bundled(self, edges: Edges) -> Edges:
        """The cells' edges with one edge into a layer's box for a tensor that several of its cells
        read (a weight, the input projection), and one out of it for a value several cells feed (the
        stacked outputs): no tangle of an edge per step."""
        chain_of = {
            self.units[node.index]: node.step.chain
            for node in self.nodes
            if node.step is not None and self.units[node.index] != f"n{node.index}"
        }
        into: dict[tuple[str, Chain], list[str]] = {}
        out_of: dict[tuple[Chain, str], list[str]] = {}
        for src, dst in edges:
            if src not in chain_of and dst in chain_of:
                into.setdefault((src, chain_of[dst]), []).append(dst)
            elif src in chain_of and dst not in chain_of:
                out_of.setdefault((chain_of[src], dst), []).append(src)
        bundled = dict(edges)
        for (src, chain), targets in into.items():
            if len(targets) > 1:
                for dst in targets:
                    del bundled[(src, dst)]
                bundled[(src, targets[0])] = {"lhead": f"cluster_layer{self.chain_ids[chain]}"}
        for (chain, dst), sources in out_of.items():
            if len(sources) > 1:
                for src in sources:
                    del bundled[(src, dst)]
                bundled[(sources[-1], dst)] = {"ltail": f"cluster_layer{self.chain_ids[chain]}"}
        return bundled


class _Painter:
    """Labels and colours of the units a `_Layout` places."""

    def __init__(
        self, layout: _Layout, show_shapes: bool, show_dtype: bool, show_grads: bool, grad_scale: str
    ) -> None:
        self.layout, self.show_shapes, self.show_dtype, self.show_grads = (
            layout,
            show_shapes,
            show_dtype,
            show_grads,
        )
        self.norms: dict[str, float | None] = {}
        self.quantities: dict[str, str] = {}
        for node in layout.nodes:
            if layout.units[node.index] == f"n{node.index}":
                self.norms[f"n{node.index}"] = grad_norm(node.tensors)
                self.quantities[f"n{node.index}"] = quantity(node)
        if layout.cells:
            for chain, steps in layout.chains.items():
                for t in steps:
                    cell = layout.cell(Step(chain, t))
                    leaving = [layout.nodes[k] for k in layout.outputs.get(cell, {})]
                    # coloured by what the step outputs, h (the layer names it), else its first value
                    h = next((n for n in leaving if n.name == "h"), leaving[0] if leaving else None)
                    self.norms[cell] = grad_norm(h.tensors) if h is not None else None
                    self.quantities[cell] = f"{chain.title} cells (|dL/d{_part(h) if h else 'h'}|)"
        self.scales = GradScales(self.norms, self.quantities if grad_scale == "quantity" else None)

    def layer(self, chain: Chain) -> graphviz.Digraph:
        """The cluster of one layer in one direction: its steps (clusters or cells) and elision node."""
        layout = self.layout
        k = layout.chain_ids[chain]
        cluster = graphviz.Digraph(f"cluster_layer{k}")
        cluster.attr(label=graphviz.nohtml(text(chain.title)), style="rounded", color="#969696")
        gap = layout.hidden[chain]
        before = sorted(t for t in layout.chains[chain] - gap if not gap or t < min(gap))
        after = sorted(t for t in layout.chains[chain] - gap if gap and t > min(gap))
        for t in before + ([None] if gap else []) + after:
            if t is None:
                self.elision(cluster, k, gap)
                continue
            step = Step(chain, t)
            if layout.cells:
                self.cell(cluster, step)
                continue
            inner = graphviz.Digraph(layout.cluster(step))
            inner.attr(label=f"t{t}", style="rounded,filled", fillcolor="#f7f7f7", color="#bdbdbd")
            for node in layout.by_step[step]:
                self.node(inner, node)
            cluster.subgraph(inner)
        return cluster

    def node(self, into: graphviz.Digraph, node: Node) -> None:
        name = self.layout.units[node.index]
        norm = self.norms.get(name)
        attrs = {
            "label": graphviz.nohtml(
                node_label(node, self.show_shapes, self.show_dtype, norm if self.show_grads else None)
            ),
            "tooltip": graphviz.nohtml(tooltip(node.name or node.op or node.kind, node.tensors, norm)),
        }
        fill = self.scales.colour(name, norm) if self.show_grads else FILL[node.kind]
        if self.show_grads or fill != FILL[OP]:
            attrs["fillcolor"] = fill
        if fill in DARK:
            attrs["fontcolor"] = "white"
        if node.kind != OP:
            attrs["style"] = "filled,dashed" if node.kind == DETACHED else "filled"
        if node.index == self.layout.root:
            attrs["penwidth"] = "2"
        into.node(name, **attrs)

    def cell(self, into: graphviz.Digraph, step: Step) -> None:
        """One step of one layer as one node: its title, the values that leave it, their ‖grad‖."""
        name = self.layout.cell(step)
        leaving = [self.layout.nodes[k] for k in self.layout.outputs.get(name, {})]
        lines = [text(step.chain.cell_title(step.t))]
        if self.show_shapes or self.show_dtype:
            for n in leaving:
                lines.append(
                    f"{text(n.name or n.op)} {describe(n.tensors, self.show_shapes, self.show_dtype)}"
                )
        norm = self.norms.get(name)
        attrs = {"fillcolor": CELL_FILL}
        grads = [
            f"|dL/d{_part(n)}| = {grad_norm(n.tensors):.2e}" for n in leaving if n.tensors[0].grad is not None
        ]
        if self.show_grads:
            attrs["fillcolor"] = self.scales.colour(name, norm)
            lines += grads
            if attrs["fillcolor"] in DARK:
                attrs["fontcolor"] = "white"
        tip = [tooltip(n.name or n.op, n.tensors, None) for n in leaving]
        attrs["tooltip"] = graphviz.nohtml("\\n".join([lines[0], *tip, *grads]))
        into.node(name, label=graphviz.nohtml("\\n".join(lines)), **attrs)

    @staticmethod
    def elision(into: graphviz.Digraph, chain: int, steps: set[int]) -> None:
        label = f"… {len(steps)} steps …\\nt{min(steps)} to t{max(steps)}"
        into.node(f"elision{chain}", label=label, style="dashed,rounded", fillcolor="none")


def _part(node: Node) -> str:
    """What a value leaving a cell is called in its |dL/d·| line: its name, else its op."""
    return text(node.name or node.op)


def _kept_steps(nodes: list[Node], detail: str, max_steps: int | str | None) -> int | None:
    """`max_steps`, with 'auto' made READABLE_STEPS, or at op detail as many steps (at least 2) as
    fit OP_BUDGET ops given the largest step."""
    if max_steps != "auto":
        return max_steps  # type: ignore[return-value]
    if detail != "ops":
        return READABLE_STEPS
    per_step = Counter(node.step for node in nodes if node.step is not None)
    return max(2, min(READABLE_STEPS, OP_BUDGET // max(per_step.values(), default=1)))


def _check(root: Any, detail: Any, max_steps: Any, rankdir: Any, grad_scale: Any) -> None:
    if not isinstance(root, Tensor):
        raise TypeError(f"draw: expected a Tensor (typically the loss), got {type(root).__name__}")
    if detail not in DETAILS:
        raise ValueError(f"draw: detail must be 'ops', 'cells' or 'textbook', got {detail!r}")
    if (
        max_steps is not None
        and max_steps != "auto"
        and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1)
    ):
        raise ValueError(f"draw: max_steps must be a positive int, 'auto' or None, got {max_steps!r}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"draw: rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    if grad_scale not in SCALES:
        raise ValueError(f"draw: grad_scale must be 'quantity' or 'global', got {grad_scale!r}")
