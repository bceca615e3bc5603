"""`page`: the unrolled graph as one self-contained HTML page (SVG and a little plain JavaScript, no
network), to open from disk or show inline in Jupyter.

The page has an overview (every layer and direction as a strip of T steps coloured by the state's
‖grad‖, and a chart of those norms over t on a log scale) and the detail of one chosen step (its ops
with their shapes and ‖grad‖, the weights it reads with their total gradient). Each distinct step
program (programs.py) is laid out once by graphviz; the page recolours that one layout with the
numbers of whichever step is chosen, so T = 10,000 costs one layout, not 10,000.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import graphviz
import numpy as np

from ..tensor import Tensor
from .backends import RENDER_TIMEOUT, RenderError, find_renderer, missing, run
from .drawing import FONT
from .graph import OP, PARAM, Node, build, parameter_names
from .programs import Programs, StepProgram, group_steps
from .shares import step_shares
from .steps import Step
from .style import FILL, PALETTE, describe, grad_norm, log_span, node_label, text
from .values import KeptValues, Summary


class Page:
    """A finished page: `html` is the whole document; in Jupyter it shows inline (in an iframe, so
    that its script and styles stay its own); `save(path)` writes it."""

    def __init__(self, document: str, title: str) -> None:
        self.html, self.title = document, title

    def _repr_html_(self) -> str:
        return (
            f'<iframe title="{html.escape(self.title)}" srcdoc="{html.escape(self.html)}" '
            'style="width: 100%; height: 900px; border: 1px solid #ddd"></iframe>'
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.write_text(self.html, encoding="utf-8")
        return path


def page(
    root: Tensor,
    *,
    params: Any = None,
    values: KeptValues | None = None,
    title: str | None = None,
    timeout: float | None = RENDER_TIMEOUT,
) -> Page:
    """The page of the graph that computed `root` (typically the loss), after `root.backward()`.

    Call `retain_grads(root)` before backward so the states and ops keep their gradients: the
    overview colours step t of each layer-direction by ‖dL/dh_t‖ (or another state part: c, ...),
    and the chosen step shows every op's shape, dtype and ‖grad‖. `params` names the weights (a
    Module, a mapping or `named_parameters()` pairs). The graph keeps no values (only what backward
    needs): run the forward pass under `keep_values()` and pass what it returns as `values` to see
    each node's min, mean and max (values.py). `retain_grads` also has every op call that reads a
    weight keep what it sends it, so the page shows each step's share dθ_t of a weight's gradient
    (shares.py). Raises RenderError when no renderer is installed or the layout takes longer than
    `timeout` seconds.
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"page: expected a Tensor (typically the loss), got {type(root).__name__}")
    nodes, _ = build(root, parameter_names(params))
    found = group_steps(nodes, values)
    if not found.chains:
        raise ValueError(
            "page: the graph has no recurrent steps (ops under a '<cell>.l<k>.t<t>' scope, as nn.RNN, "
            "LSTM, GRU and Recurrent record them); draw it with viz.draw instead"
        )
    title = title if title is not None else _default_title(found)
    svgs = _layouts(found.programs, timeout)
    weights = {id(t): _weight_name(node) for node in nodes if node.kind == PARAM for t in node.tensors}
    data = _data(found, nodes, svgs, step_shares(root, weights), values is not None)
    return Page(_document(title, data), title)


def _weight_name(node: Node) -> str:
    return node.name or describe(node.tensors, True, False)


def _default_title(found: Programs) -> str:
    lengths = sorted({len(steps) for steps in found.chains.values()})
    span = "/".join(str(n) for n in lengths)
    return f"Unrolled graph: {len(found.chains)} layer-direction(s), T = {span}"


def _program_dot(program: StepProgram) -> str:
    """The DOT of one step: its ops (node ids p<k>-<i>) and the inputs it reads from outside."""
    k = program.index
    graph = graphviz.Digraph(
        f"p{k}",
        graph_attr={"rankdir": "TB", "fontname": FONT, "nodesep": "0.2", "ranksep": "0.3"},
        node_attr={"shape": "box", "style": "filled,rounded", "fillcolor": FILL[OP], "fontname": FONT},
        edge_attr={"arrowsize": "0.6"},
    )
    graph.attr("node", fontsize="11")
    local = {node.index: i for i, node in enumerate(program.nodes)}
    for i, node in enumerate(program.nodes):
        label = node_label(node, True, False, None)
        graph.node(f"n{i}", label=graphviz.nohtml(label), id=f"p{k}-{i}", tooltip=" ")
    external = {}
    for j, (role, source, _) in enumerate(program.external):
        external[source.index] = j
        fill = FILL[source.kind] if source.kind != OP else "#f0f0f0"
        graph.node(
            f"e{j}",
            label=graphviz.nohtml(text(role)),
            id=f"p{k}-{len(program.nodes) + j}",
            style="filled,dashed" if source.kind == OP else "filled",
            fillcolor=fill,
            tooltip=" ",
        )
    for i, node in enumerate(program.nodes):
        for s in dict.fromkeys(node.sources):
            src = f"n{local[s]}" if s in local else f"e{external[s]}"
            graph.edge(src, f"n{i}")
    return graph.source


def _layouts(programs: list[StepProgram], timeout: float | None) -> list[str]:
    """Each program's SVG, laid out in one run of the renderer, stripped of what the page replaces
    (the XML prologue, the native <title> tooltips)."""
    program = find_renderer("svg")
    if program is None:
        raise RenderError(missing("svg", None))
    out = run(program, "\n".join(_program_dot(p) for p in programs), "svg", timeout).decode("utf-8")
    svgs = [chunk[chunk.index("<svg") :] for chunk in out.split("<?xml")[1:]]
    if len(svgs) != len(programs):
        raise RenderError(f"page: expected {len(programs)} step layouts from the renderer, got {len(svgs)}")
    return [re.sub(r"<title>.*?</title>|<!--.*?-->", "", svg, flags=re.S) for svg in svgs]


def _norm(g: Any) -> float | None:
    return None if g is None else float(np.sqrt(np.vdot(g, g).real))


def _number(x: float | None) -> float | str | None:
    """A norm as JSON: 4 significant digits, None for no gradient, 'inf' or 'nan' (JSON has neither)."""
    if x is None or math.isfinite(x):
        return None if x is None else float(f"{x:.4g}")
    return str(x)


def _summary(s: Summary | None) -> list[float | str | None] | None:
    return None if s is None else [_number(x) for x in s]


def _data(
    found: Programs, nodes: list[Node], svgs: list[str], shares: dict[Step, dict[str, Any]], kept: bool
) -> dict[str, Any]:
    """What the page's script reads: chains with per-step numbers (‖grad‖, value summaries, each
    weight's share), programs with their layouts and node descriptions, the scales, and the weights."""
    names = [_weight_name(node) for node in nodes if node.kind == PARAM]
    chains = []
    for chain, steps in found.chains.items():
        ts = list(steps)
        chains.append(
            {
                "title": chain.title,
                "cell": chain.cell_title(0).rsplit(" t", 1)[0],
                "t": ts,
                "program": [steps[t].program for t in ts],
                "norms": [[_number(x) for x in steps[t].norms] for t in ts],
                "values": [[_summary(v) for v in steps[t].values] for t in ts] if kept else None,
                "shares": {
                    name: [_number(_norm(shares.get(Step(chain, t), {}).get(name))) for t in ts]
                    for name in names
                    if any(name in shares.get(Step(chain, t), {}) for t in ts)
                },
                "parts": {
                    name: [_number(steps[t].parts.get(name)) for t in ts]
                    for name in found.part_names
                    if any(name in steps[t].parts for t in ts)
                },
                "cuts": [t for t in ts if steps[t].cut],
            }
        )
    scales = {}
    for name in found.part_names:
        values = [x for c in chains for x in c["parts"].get(name, []) if isinstance(x, float)]
        scales[name] = log_span(values)
    programs = []
    for program, svg in zip(found.programs, svgs, strict=True):
        described = [
            {
                "label": node.name or node.op,
                "op": node.op,
                "shape": describe(node.tensors, True, False),
                "dtype": str(node.tensors[0].dtype),
                "kind": "op",
            }
            for node in program.nodes
        ]
        described += [
            {
                "label": role,
                "op": source.op or "",
                "shape": describe(read, True, False),
                "dtype": str(read[0].dtype),
                "kind": source.kind,
            }
            for role, source, read in program.external
        ]
        programs.append({"svg": svg, "nodes": described})
    weights = [
        {
            "name": _weight_name(node),
            "shape": describe(node.tensors, True, False),
            "dtype": str(node.tensors[0].dtype),
            "grad": _number(grad_norm(node.tensors)),
        }
        for node in nodes
        if node.kind == PARAM
    ]
    return {
        "chains": chains,
        "parts": found.part_names,
        "scales": scales,
        "programs": programs,
        "weights": weights,
        "palette": list(PALETTE),
    }


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _document(title: str, data: dict[str, Any]) -> str:
    # JSON inside <script>: '</' would end the element, so it is written as '<\/'
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_asset('page.css')}</style></head>\n<body>"
        f"<h1>{html.escape(title)}</h1>{_asset('page.html')}"
        f"<script id='tg-data' type='application/json'>{payload}</script>"
        f"<script>{_asset('page.js')}</script></body></html>\n"
    )
