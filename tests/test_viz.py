"""viz: the DOT that `draw` writes, parsed (clusters, weight edges, labels, colours), and real renders."""

import html
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given as generated
from hypothesis import settings
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import viz
from tinygrad_rnn.viz.style import NO_GRAD, PALETTE, ZERO, GradScale

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
N, D, H = 2, 3, 4


def recurrent(
    cell: str, steps: int, layers: int = 1, bidirectional: bool = False, transpose_in_loop: bool = True
) -> tuple[tg.Tensor, dict[str, tg.Tensor]]:
    """A loss through a hand-made RNN/LSTM/GRU laid out as nn's layers will be: the input projection of
    all steps before the loop, each step under the scope ``<cell>.l<k>[r].t<t>``, named h, c and gates."""
    rng = np.random.default_rng(0)
    out = tg.Tensor(rng.standard_normal((steps, N, D)), name="x")
    params: dict[str, tg.Tensor] = {}
    for k in range(layers):
        outputs = []
        for reverse in (False, True) if bidirectional else (False,):
            suffix = f"_l{k}{'_reverse' if reverse else ''}"
            shapes = {"weight_ih": (GATES[cell] * H, out.shape[-1]), "weight_hh": (GATES[cell] * H, H)}
            shapes |= {"bias_ih": (GATES[cell] * H,), "bias_hh": (GATES[cell] * H,)}
            p = {
                n: tg.Tensor(0.5 * rng.standard_normal(s), requires_grad=True, name=n + suffix)
                for n, s in shapes.items()
            }
            params |= {t.name: t for t in p.values()}
            projected = out @ p["weight_ih"].T + p["bias_ih"]
            w_hh_t = p["weight_hh"].T
            h = c = tg.zeros(N, H, dtype=np.float64)
            hs: list[tg.Tensor] = [h] * steps
            for t in reversed(range(steps)) if reverse else range(steps):
                with tg.scope(f"{cell}.l{k}{'r' if reverse else ''}.t{t}"):
                    hh = h @ (p["weight_hh"].T if transpose_in_loop else w_hh_t) + p["bias_hh"]
                    h, c = STEP[cell](projected[t], hh, h, c)
                hs[t] = h
            outputs.append(tg.stack(hs))
        out = outputs[0] if len(outputs) == 1 else tg.cat(outputs, axis=2)
    return (out * tg.Tensor(rng.standard_normal(out.shape))).sum(), params


def named(t: tg.Tensor, name: str) -> tg.Tensor:
    t.name = name
    return t


def rnn_step(xp: tg.Tensor, hh: tg.Tensor, h: tg.Tensor, c: tg.Tensor) -> tuple[tg.Tensor, tg.Tensor]:
    return named((xp + hh).tanh(), "h"), c


def lstm_step(xp: tg.Tensor, hh: tg.Tensor, h: tg.Tensor, c: tg.Tensor) -> tuple[tg.Tensor, tg.Tensor]:
    i, f, g, o = (xp + hh).chunk(4, 1)
    i, f, g, o = (
        named(a.sigmoid() if n != "g" else a.tanh(), n) for a, n in zip((i, f, g, o), "ifgo", strict=True)
    )
    c = named(f * c + i * g, "c")
    return named(o * c.tanh(), "h"), c


def gru_step(xp: tg.Tensor, hh: tg.Tensor, h: tg.Tensor, c: tg.Tensor) -> tuple[tg.Tensor, tg.Tensor]:
    (xr, xz, xn), (hr, hz, hn) = xp.chunk(3, 1), hh.chunk(3, 1)
    r, z = named((xr + hr).sigmoid(), "r"), named((xz + hz).sigmoid(), "z")
    n = named((xn + r * hn).tanh(), "n")
    return named((1 - z) * n + z * h, "h"), c


STEP = {"rnn": rnn_step, "lstm": lstm_step, "gru": gru_step}


class Dot(NamedTuple):
    nodes: dict[str, dict[str, str]]
    edges: list[tuple[str, str, dict[str, str]]]
    clusters: dict[str, dict[str, str]]
    inside: dict[str, str | None]  # node -> the innermost cluster holding it


ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|<.*>|[^\s\]]+)')


def attrs(text: str) -> dict[str, str]:
    return {k: v[1:-1] if v.startswith('"') else v for k, v in ATTR.findall(text)}


def parse(graph: object) -> Dot:
    """Nodes, edges and clusters (with their attributes) of the DOT source `draw` writes."""
    return parse_source(graph.source)


def parse_source(source: str) -> Dot:
    dot = Dot({}, [], {}, {})
    open_clusters: list[str] = []
    for line in source.splitlines()[1:]:
        line = line.strip()
        if m := re.fullmatch(r"subgraph (cluster\w+) \{", line):
            open_clusters.append(m[1])
            dot.clusters[m[1]] = {}
        elif line == "}":
            open_clusters.pop() if open_clusters else None
        elif m := re.fullmatch(r"(\w+) -> (\w+)(?: \[(.*)\])?", line):
            dot.edges.append((m[1], m[2], attrs(m[3] or "")))
        elif m := re.fullmatch(r"(\w+) \[(.*)\]", line):
            if m[1] not in ("graph", "node", "edge"):
                dot.nodes[m[1]] = attrs(m[2])
                dot.inside[m[1]] = open_clusters[-1] if open_clusters else None
        elif open_clusters:
            dot.clusters[open_clusters[-1]].update(attrs(line))
    return dot


def node_id(dot: Dot, label_start: str) -> str:
    (found,) = [n for n, a in dot.nodes.items() if a.get("label", "").split("\\n")[0] == label_start]
    return found


def out_degree(dot: Dot, node: str) -> int:
    return sum(1 for a, _, _ in dot.edges if a == node)


def step_clusters(dot: Dot) -> list[str]:
    return [c for c in dot.clusters if c.startswith("cluster_step")]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("transpose_in_loop", [True, False])
def test_one_cluster_per_step_and_one_weight_edge_per_step(cell: str, transpose_in_loop: bool) -> None:
    loss, _ = recurrent(cell, steps=5, transpose_in_loop=transpose_in_loop)
    dot = parse(viz.draw(loss))
    assert len(step_clusters(dot)) == 5
    assert sorted(dot.clusters[c]["label"] for c in step_clusters(dot)) == [f"t{t}" for t in range(5)]
    assert [dot.clusters[c]["label"] for c in dot.clusters if c.startswith("cluster_layer")] == [f"{cell} l0"]
    assert out_degree(dot, node_id(dot, "weight_hh_l0")) == 5
    assert out_degree(dot, node_id(dot, "bias_hh_l0")) == 5
    assert out_degree(dot, node_id(dot, "weight_ih_l0")) == 1  # the projection of all steps at once
    cells = parse(viz.draw(loss, detail="cells"))  # one edge into the layer's box, not one per cell
    (edge,) = [e for e in cells.edges if e[0] == node_id(cells, "weight_hh_l0")]
    assert edge[2]["lhead"] == "cluster_layer0"
    stacked = [e for e in cells.edges if e[1] == node_id(cells, "Stack")]
    assert len(stacked) == 1 and stacked[0][2]["ltail"] == "cluster_layer0"


@pytest.mark.parametrize("layer", [tg.nn.RNN, tg.nn.LSTM, tg.nn.GRU])
def test_nn_layers_draw_one_cluster_and_one_recurrent_weight_edge_per_step(layer) -> None:
    model = layer(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=0)
    output, _ = model(tg.Tensor(np.random.default_rng(0).standard_normal((4, 2, 3))))
    loss = (output * output).sum()
    dot = parse(viz.draw(loss, params=model))
    assert len(step_clusters(dot)) == 4 * 2 * 2
    for name in ("weight_hh_l0", "weight_hh_l1_reverse"):
        assert out_degree(dot, node_id(dot, name)) == 4, name
    assert out_degree(dot, node_id(dot, "weight_ih_l1")) == 1  # one projection for all steps
    cells = parse(viz.draw(loss, detail="cells", params=model))
    prefix = {"RNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}[layer.__name__]
    assert sum(a["label"].startswith(prefix + " l") for a in cells.nodes.values()) == 4 * 2 * 2


def test_layers_and_directions_each_get_clusters_and_cells() -> None:
    loss, params = recurrent("lstm", steps=3, layers=2, bidirectional=True)
    dot = parse(viz.draw(loss))
    assert len(step_clusters(dot)) == 3 * 2 * 2
    layers = sorted(dot.clusters[c]["label"] for c in dot.clusters if c.startswith("cluster_layer"))
    assert layers == ["lstm l0", "lstm l0 reverse", "lstm l1", "lstm l1 reverse"]
    for name in params:
        expected = 1 if "weight_ih" in name or "bias_ih" in name else 3
        assert out_degree(dot, node_id(dot, name)) == expected, name
    cells = parse(viz.draw(loss, detail="cells"))
    titles = [a["label"].split("\\n")[0] for a in cells.nodes.values() if a["label"].startswith("LSTM")]
    assert len(titles) == 12 and "LSTM l1r t2" in titles and "LSTM l0 t0" in titles
    assert not step_clusters(cells)


def test_labels_carry_names_shapes_and_dtype() -> None:
    loss, _ = recurrent("lstm", steps=2)
    labels = [a["label"] for a in parse(viz.draw(loss)).nodes.values()]
    assert sum(1 for label in labels if label.startswith("MatMul\\n(2, 16)")) == 2  # h @ W_hh^T per step
    assert "Split\\n4 × (2, 4)" in labels  # the chunk's pieces are one node
    assert sum(1 for label in labels if label.startswith("h = Mul\\n(2, 4)")) == 2
    assert {"i = Sigmoid\\n(2, 4)", "f = Sigmoid\\n(2, 4)", "c = Add\\n(2, 4)"} <= set(labels)
    assert "weight_hh_l0\\n(16, 4)" in labels and "x\\n(2, 2, 3)" in labels
    plain = [a["label"] for a in parse(viz.draw(loss, show_shapes=False)).nodes.values()]
    assert not any("(2, 4)" in label for label in plain if not label.startswith("(")) and "h = Mul" in plain
    typed = [a["label"] for a in parse(viz.draw(loss, show_dtype=True)).nodes.values()]
    assert "c = Add\\n(2, 4) float64" in typed
    cells = [a["label"] for a in parse(viz.draw(loss, detail="cells")).nodes.values()]
    assert "LSTM l0 t0\\nh (2, 4)\\nc (2, 4)" in cells


def test_scalar_constants_fold_into_their_op() -> None:
    loss, _ = recurrent("gru", steps=1)
    dot = parse(viz.draw(loss))
    assert "Sub(1, ·)\\n(2, 4)" in [a["label"] for a in dot.nodes.values()]
    assert not any(a["label"].startswith("input\\n()") for a in dot.nodes.values())


def test_max_steps_keeps_first_and_last_steps_and_one_elision_node() -> None:
    loss, _ = recurrent("lstm", steps=10)
    dot = parse(viz.draw(loss, max_steps=4))
    assert sorted(dot.clusters[c]["label"] for c in step_clusters(dot)) == ["t0", "t1", "t8", "t9"]
    (elision,) = [n for n in dot.nodes if n.startswith("elision")]
    assert "6 steps" in dot.nodes[elision]["label"] and "t2 to t7" in dot.nodes[elision]["label"]
    assert out_degree(dot, node_id(dot, "weight_hh_l0")) == 4 + 1
    cells = parse(viz.draw(loss, detail="cells", max_steps=3))
    titles = sorted(a["label"].split("\\n")[0] for a in cells.nodes.values() if a["label"].startswith("LSTM"))
    assert titles == ["LSTM l0 t0", "LSTM l0 t1", "LSTM l0 t9"]
    assert len([n for n in cells.nodes if n.startswith("elision")]) == 1
    assert len(parse(viz.draw(loss, max_steps=10)).clusters) == 1 + 10  # nothing to elide


def test_show_grads_colours_by_log_norm_with_zero_and_missing_grads_apart() -> None:
    small = tg.Tensor(np.ones(4), requires_grad=True, name="small")
    large = tg.Tensor(np.ones(4), requires_grad=True, name="large")
    dead = tg.Tensor(np.ones(4), requires_grad=True, name="dead")
    mid = named(small * 1e-4 + large * 1e2, "mid")
    loss = (mid * tg.Tensor(np.ones(4), name="g")).sum() + (dead * 0.0).sum()
    viz.retain_grads(loss)
    loss.backward()
    dot = parse(viz.draw(loss, show_grads=True, grad_scale="global"))
    fill = {a["label"].split("\\n")[0]: a.get("fillcolor") for a in dot.nodes.values()}
    assert fill["small"] == PALETTE[0] and fill["large"] == PALETTE[-1]
    assert fill["dead"] == ZERO and "|grad| = 0" in dot.nodes[node_id(dot, "dead")]["label"]
    assert fill["g"] == NO_GRAD  # an input keeps no grad
    assert fill["mid = Add"] not in (PALETTE[0], PALETTE[-1], ZERO, NO_GRAD)
    assert "|grad| = 2.00e+00" in dot.nodes[node_id(dot, "mid = Add")]["label"]
    assert "|grad|, one log scale</b>" in dot.nodes["legend"]["label"]
    assert "for all nodes (a scale spans at least a factor of 10)" in dot.nodes["legend"]["label"]
    assert "legend" not in parse(viz.draw(loss)).nodes


def test_show_grads_on_a_recurrent_graph() -> None:
    loss, _ = recurrent("lstm", steps=3)
    viz.retain_grads(loss)
    loss.backward()
    dot = parse(viz.draw(loss, show_grads=True))
    first_forget = next(a for a in dot.nodes.values() if a["label"].startswith("f = Sigmoid"))
    assert first_forget.get("fillcolor") == ZERO  # f multiplies c0 = 0 at t0: no gradient reaches it
    cells = parse(viz.draw(loss, detail="cells", show_grads=True))
    colours = {
        a["label"].split("\\n")[0]: a["fillcolor"] for a in cells.nodes.values() if "LSTM" in a["label"]
    }
    assert len(colours) == 3 and all(c in PALETTE for c in colours.values())


def test_detached_state_is_drawn_inside_a_dashed_boundary() -> None:
    rng = np.random.default_rng(0)
    w = tg.Tensor(rng.standard_normal((H, H)), requires_grad=True, name="weight_hh_l0")
    h = tg.zeros(N, H, dtype=np.float64)
    for t in range(4):
        if t == 2:
            h = h.detach()  # truncated BPTT: the second chunk starts from a cut state
        with tg.scope(f"rnn.l0.t{t}"):
            h = named((h @ w.T).tanh(), "h")
    dot = parse(viz.draw(h.sum()))
    assert dot.clusters["cluster_cut"]["style"] == "dashed"
    cut = node_id(dot, "h (detached)")
    assert "dashed" in dot.nodes[cut]["style"] and "graph cut" in dot.nodes[cut]["label"]
    assert sorted(dot.clusters[c]["label"] for c in step_clusters(dot)) == ["t2", "t3"]
    assert out_degree(dot, node_id(dot, "weight_hh_l0")) == 2


def test_mlp_draws_without_clusters_and_params_name_the_weights() -> None:
    rng = np.random.default_rng(0)
    w1, b1 = (
        tg.Tensor(rng.standard_normal((8, 3)), requires_grad=True),
        tg.zeros(8, dtype=np.float64, requires_grad=True),
    )
    w2, b2 = (
        tg.Tensor(rng.standard_normal((2, 8)), requires_grad=True),
        tg.zeros(2, dtype=np.float64, requires_grad=True),
    )
    x = tg.Tensor(rng.standard_normal((5, 3)), name="x")
    loss = (((x @ w1.T + b1).relu() @ w2.T + b2) * tg.Tensor(rng.standard_normal((5, 2)))).sum()
    names = {"0.weight": w1, "0.bias": b1, "2.weight": w2, "2.bias": b2}
    for given in (names, list(names.items())):
        dot = parse(viz.draw(loss, params=given, rankdir="TB"))
        assert not dot.clusters
        assert {n: out_degree(dot, node_id(dot, n)) for n in names} == dict.fromkeys(names, 1)
        assert "Relu\\n(5, 8)" in [a["label"] for a in dot.nodes.values()]
    assert "rankdir=TB" in viz.draw(loss, rankdir="TB").source
    unnamed = parse(viz.draw(loss))
    assert sum(1 for a in unnamed.nodes.values() if a["label"].startswith("parameter")) == 4


def test_a_weight_used_twice_in_a_step_has_one_edge_into_that_step() -> None:
    w = tg.Tensor(np.eye(H), requires_grad=True, name="weight_hh_l0")
    h = tg.ones(N, H, dtype=np.float64)
    for t in range(3):
        with tg.scope(f"rnn.l0.t{t}"):
            h = (h @ w.T + (h * 2) @ w).tanh()
    dot = parse(viz.draw(h.sum()))
    edges = [e for e in dot.edges if e[0] == node_id(dot, "weight_hh_l0")]
    assert len(edges) == 3 and all(e[2]["lhead"].startswith("cluster_step") for e in edges)


def test_user_prefixes_and_ops_taken_before_the_loop_join_their_step() -> None:
    x = tg.Tensor(np.ones((3, N, H)), requires_grad=True, name="x")
    h = tg.zeros(N, H, dtype=np.float64)
    with tg.scope("encoder"):
        for t in range(3):
            piece = x[t]  # sliced outside the step scope, used only by step t
            with tg.scope(f"gru.l0.t{t}"):
                h = named((piece + h).tanh(), "h")
    dot = parse(viz.draw(h.sum()))
    assert [a["label"] for c, a in dot.clusters.items() if c.startswith("cluster_layer")] == [
        "encoder.gru l0"
    ]
    getitems = [n for n, a in dot.nodes.items() if a["label"].startswith("GetItem")]
    assert sorted(dot.inside[n] for n in getitems) == [f"cluster_step0_t{t}" for t in range(3)]
    assert dot.inside[node_id(dot, "x")] is None


def test_a_ten_thousand_step_chain_draws_without_recursion() -> None:
    w = tg.Tensor(np.full((1, 1), 0.5), requires_grad=True, name="w")
    h = tg.ones(1, 1, dtype=np.float64)
    for t in range(10_000):
        with tg.scope(f"rnn.l0.t{t}"):
            h = (h @ w).tanh()
    viz.retain_grads(h)
    h.sum().backward()
    dot = parse(viz.draw(h.sum(), detail="cells", max_steps=6, show_grads=True))
    assert sum(1 for a in dot.nodes.values() if a["label"].startswith("RNN")) == 6
    assert len(step_clusters(parse(viz.draw(h.sum(), max_steps=None)))) == 10_000


def test_bad_arguments_are_named() -> None:
    loss, _ = recurrent("rnn", steps=1)
    with pytest.raises(TypeError, match="expected a Tensor"):
        viz.draw(loss.data)
    with pytest.raises(ValueError, match="detail must be 'ops', 'cells' or 'textbook'"):
        viz.draw(loss, detail="layers")
    with pytest.raises(ValueError, match="max_steps must be a positive int"):
        viz.draw(loss, max_steps=0)
    with pytest.raises(ValueError, match="rankdir"):
        viz.draw(loss, rankdir="up")
    with pytest.raises(TypeError, match="params must be"):
        viz.draw(loss, params=[loss])
    with pytest.raises(TypeError, match="expected a Tensor"):
        viz.retain_grads(None)


# --- rendering ------------------------------------------------------------------------------------

SVG_START, PNG_START = b"<?xml", b"\x89PNG\r\n\x1a\n"


def check_pictures(graph: object, folder: Path) -> None:
    svg = viz.render(graph, folder / "graph.svg")
    png = viz.render(graph, folder / "graph.png")
    text = svg.read_text(encoding="utf-8")
    assert svg.read_bytes().startswith(SVG_START) and "<svg" in text
    assert png.read_bytes().startswith(PNG_START)
    for node in parse(graph).nodes:
        assert f"<title>{node}</title>" in text
    assert "weight_hh_l0" in text and "t2" in text


def hide(monkeypatch: pytest.MonkeyPatch, *programs: str) -> None:
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, **kw: None if name in programs else which(name, **kw))


def test_render_with_the_system_dot(tmp_path: Path) -> None:
    if shutil.which("dot") is None:
        pytest.skip("the system Graphviz `dot` is not on the PATH (apt-get install graphviz)")
    loss, _ = recurrent("lstm", steps=3)
    assert viz.find_renderer("svg") == shutil.which("dot")
    check_pictures(viz.draw(loss), tmp_path)
    assert viz.render(viz.draw(loss), tmp_path / "graph.pdf").read_bytes().startswith(b"%PDF")


def test_render_falls_back_to_graphviz_pure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "dot")
    assert "graphviz-pure" in (viz.find_renderer("svg") or "")
    loss, _ = recurrent("gru", steps=3)
    viz.retain_grads(loss)
    loss.backward()
    check_pictures(viz.draw(loss, show_grads=True), tmp_path)
    assert viz.render(loss, tmp_path / "direct.svg").read_bytes().startswith(SVG_START)
    assert "<svg" in viz.draw(loss, detail="cells")._repr_mimebundle_()["image/svg+xml"]  # Jupyter
    with pytest.raises(viz.RenderError, match="pdf needs the system Graphviz"):
        viz.render(loss, tmp_path / "graph.pdf")


def test_render_without_any_renderer_says_how_to_install_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide(monkeypatch, "dot", "graphviz-pure")
    loss, _ = recurrent("rnn", steps=2)
    with pytest.raises(viz.RenderError) as error:
        viz.render(loss, tmp_path / "graph.svg")
    message = str(error.value)
    assert "pip install graphviz-pure" in message and "apt-get install graphviz" in message
    assert str(tmp_path / "graph.dot") in message
    assert (tmp_path / "graph.dot").read_text(encoding="utf-8").startswith("digraph")
    assert viz.render(loss, tmp_path / "source.gv").read_text(encoding="utf-8") == viz.draw(loss).source
    with pytest.raises(ValueError, match="format must be one of svg, png, pdf, dot"):
        viz.render(loss, tmp_path / "graph.jpg")
    with pytest.raises(TypeError, match="a Tensor or a graphviz.Digraph"):
        viz.render("loss", tmp_path / "graph.svg")


# --- long sequences, labels, escaping, tooltips, scales -----------------------------------------------


def test_long_sequences_are_elided_by_default_and_say_so() -> None:
    loss, _ = recurrent("rnn", steps=40)
    picture = viz.draw(loss)
    dot = parse(picture)
    kept = viz.READABLE_STEPS
    assert len(step_clusters(dot)) == kept
    assert (
        picture.elided
        == f"40 steps per layer: t{kept // 2} to t{39 - kept // 2} drawn as one node (max_steps={kept})"
    )
    assert picture.elided in picture.source and "max_steps=None draws every step" in picture.source
    everything = viz.draw(loss, max_steps=None)
    assert len(step_clusters(parse(everything))) == 40 and everything.elided == ""
    assert viz.draw(recurrent("rnn", steps=kept)[0]).elided == ""


def test_a_200_step_lstm_renders_within_seconds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if viz.find_renderer("svg") is None:
        pytest.skip("no renderer: neither the system Graphviz nor graphviz-pure")
    from tinygrad_rnn.cli import main

    monkeypatch.chdir(tmp_path)
    for detail in ("ops", "cells"):
        start = time.perf_counter()
        assert main(["graph", "--steps", "200", "--detail", detail, "--grads", "-o", f"{detail}.svg"]) == 0
        assert time.perf_counter() - start < 30, detail  # an unelided render took minutes and 7 GB
        assert "200 steps per layer" in (tmp_path / f"{detail}.svg").read_text(encoding="utf-8")


def test_a_render_that_runs_too_long_is_stopped_and_its_process_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loss, _ = recurrent("rnn", steps=2)
    started: list[subprocess.Popen] = []
    popen = subprocess.Popen

    def slow_renderer(args, **kwargs):  # a renderer that never finishes
        started.append(popen([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs))
        return started[-1]

    monkeypatch.setattr(shutil, "which", lambda name, **kw: "/usr/bin/dot")
    monkeypatch.setattr(subprocess, "Popen", slow_renderer)
    start = time.perf_counter()
    with pytest.raises(
        viz.RenderError, match=r"did not finish within 0.5 s and was stopped; draw fewer steps"
    ):
        viz.render(loss, tmp_path / "g.svg", timeout=0.5)
    assert time.perf_counter() - start < 10
    assert started[0].poll() is not None  # killed, not left running
    assert not (tmp_path / "g.svg").exists()


def test_render_takes_draws_options(tmp_path: Path) -> None:
    loss, params = recurrent("lstm", steps=3)
    viz.retain_grads(loss)
    loss.backward()
    options = {"detail": "cells", "show_grads": True, "params": params, "max_steps": 2}
    written = viz.render(loss, tmp_path / "g.dot", **options)
    assert written.read_text(encoding="utf-8") == viz.draw(loss, **options).source
    with pytest.raises(TypeError, match="apply to a Tensor, not a Digraph"):
        viz.render(viz.draw(loss), tmp_path / "g.dot", detail="cells")
    with pytest.raises(ValueError, match="detail must be"):
        viz.render(loss, tmp_path / "g.dot", detail="layers")


def test_the_graph_command_labels_every_input() -> None:
    from tinygrad_rnn.cli import main

    for cell, inputs in (("lstm", {"x", "h0", "c0", "G"}), ("gru", {"x", "h0", "G"})):
        with tempfile.TemporaryDirectory() as folder:
            assert main(["graph", "--cell", cell, "--steps", "2", "-o", f"{folder}/g.dot"]) == 0
            dot = parse_source(Path(folder, "g.dot").read_text(encoding="utf-8"))
        leaves = {a["label"].split("\\n")[0] for a in dot.nodes.values() if a.get("fillcolor") == "#deebf7"}
        assert leaves == inputs


def test_unnamed_leaves_are_labelled_by_their_shape() -> None:
    x = tg.Tensor(np.ones((2, 3)))
    w = tg.Tensor(np.ones((4, 3)), requires_grad=True)
    labels = {a["label"] for a in parse(viz.draw((x @ w.T).sum())).nodes.values()}
    assert {"(2, 3)", "parameter (4, 3)"} <= labels
    assert not any(label.startswith(("input", "parameter\\n")) for label in labels)


@pytest.mark.parametrize("name", ["<b>x</b>", "a & b", 'say "hi"', "back\\slash", "<x>", "it's"])
def test_names_are_drawn_verbatim(tmp_path: Path, name: str) -> None:
    w = tg.Tensor(np.ones((2, 2)), requires_grad=True, name=name)
    with tg.scope(f"{name}.rnn.l0.t0"):
        h = named((w * 2.0).tanh(), name)
    picture = viz.draw(h.sum(), detail="ops")
    if viz.find_renderer("svg") is None:
        pytest.skip("no renderer: neither the system Graphviz nor graphviz-pure")
    svg = viz.render(picture, tmp_path / "g.svg").read_text(encoding="utf-8")
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    assert name in texts and f"{name} = Tanh" in texts
    assert f"{name}.rnn l0" in texts  # the layer's cluster title, with the user's prefix


def test_svg_tooltips_carry_shape_dtype_and_grad_norm(tmp_path: Path) -> None:
    if viz.find_renderer("svg") is None:
        pytest.skip("no renderer: neither the system Graphviz nor graphviz-pure")
    loss, params = recurrent("lstm", steps=2)
    viz.retain_grads(loss)
    loss.backward()
    for detail in ("ops", "cells"):
        svg = viz.render(loss, tmp_path / f"{detail}.svg", detail=detail, params=params)
        titles = [html.unescape(t) for t in re.findall(r'xlink:title="([^"]*)"', svg.read_text("utf-8"))]
        norm = np.linalg.norm(params["weight_hh_l0"].grad.data)
        assert f"weight_hh_l0: (16, 4) float64, |grad| = {norm:.2e}" in titles
        assert "x: (2, 2, 3) float64" in titles
    assert any(t.startswith("LSTM l0 t1\nh: (2, 4) float64") for t in titles)


def test_per_quantity_scale_colours_each_quantity_across_its_steps() -> None:
    loss, _ = recurrent("rnn", steps=6)
    viz.retain_grads(loss)
    loss.backward()
    dot = parse(viz.draw(loss, detail="cells", show_grads=True))
    cells = {a["label"].split("\\n")[0]: a for a in dot.nodes.values() if a["label"].startswith("RNN")}
    norms = {k: float(re.search(r"\|dL/dh\| = (\S+)", a["label"]).group(1)) for k, a in cells.items()}
    scale = GradScale(norms.values())
    assert {k: a["fillcolor"] for k, a in cells.items()} == {k: scale.colour(n) for k, n in norms.items()}
    legend = dot.nodes["legend"]["label"]
    assert "log scale per quantity" in legend and "rnn l0 cells (|dL/dh|): " in legend
    whole = parse(viz.draw(loss, detail="cells", show_grads=True, grad_scale="global"))
    assert "for all nodes" in whole.nodes["legend"]["label"]
    with pytest.raises(ValueError, match="grad_scale must be 'quantity' or 'global'"):
        viz.draw(loss, grad_scale="local")


@settings(max_examples=60, deadline=None)
@generated(
    st.floats(-6, 6),
    st.lists(st.floats(0, 1), min_size=2, max_size=20),
    st.floats(0.01, 4),
)
def test_a_colour_scale_spreads_as_far_as_the_ratio_max_min(
    centre: float, shares: list, decades: float
) -> None:
    """The colours span the palette only when the norms span at least a factor of 10: a ±10 % wobble
    stays in the light middle, a factor of 10**decades reaches both ends once decades ≥ 1."""
    shares = [0.0, 1.0, *shares]
    norms = [10 ** (centre + decades * s) for s in shares]
    scale = GradScale(norms)
    bins = [scale.bin(n) for n in norms]
    if decades >= 1:
        assert min(bins) == 0 and max(bins) == len(PALETTE) - 1
    else:  # widened about the middle: bins within the share of the palette the ratio covers
        spread = math.ceil(decades * len(PALETTE)) + 1
        assert max(bins) - min(bins) <= spread
        assert min(bins) >= (len(PALETTE) - spread) // 2 - 1 and max(bins) <= (len(PALETTE) + spread) // 2
    wobble = GradScale([0.93, 1.13, 1.0])
    assert {wobble.colour(n) for n in (0.93, 1.0, 1.13)} <= {PALETTE[4], PALETTE[5]}


def test_an_interrupted_render_leaves_no_renderer_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loss, _ = recurrent("rnn", steps=2)
    started: list[subprocess.Popen] = []

    class Interrupted(subprocess.Popen):
        def communicate(self, *args, **kwargs):  # Ctrl-C while the renderer works
            raise KeyboardInterrupt

    def renderer(args, **kwargs):
        started.append(Interrupted([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs))
        return started[-1]

    monkeypatch.setattr(shutil, "which", lambda name, **kw: "/usr/bin/dot")
    monkeypatch.setattr(subprocess, "Popen", renderer)
    with pytest.raises(KeyboardInterrupt):
        viz.render(loss, tmp_path / "g.svg")
    assert started[0].poll() is not None  # killed and reaped, not left running


def test_a_weights_slices_are_the_weight_and_a_cells_state_parts_are_named() -> None:
    """weight_hh[:H].T in every step is weight_hh (one edge per step, no slice node per step), and
    an unnamed second state part reads as state[1], in every step and the last one too."""
    rng = np.random.default_rng(0)
    w = tg.Tensor(rng.standard_normal((2 * H, H)), requires_grad=True, name="weight_hh")
    h = c = tg.Tensor(np.zeros((N, H)))
    for t in range(3):
        with tg.scope(f"mycell.l0.t{t}"):
            c = c * 0.5 + (h @ w[:H].T).tanh()
            h = named((h @ w[H:].T + c).tanh(), "h")
    dot = parse(viz.draw(h.sum(), params={"weight_hh": w}))
    assert not [a for a in dot.nodes.values() if a["label"].startswith("GetItem")]
    assert out_degree(dot, node_id(dot, "weight_hh")) == 3
    labels = [a["label"].split("\\n")[0] for a in dot.nodes.values()]
    assert labels.count("state[1] = Add") == 3 and not any("state[2]" in label for label in labels)


class LayerNormLSTMCell(tg.nn.Module):
    """A big cell (about 50 ops a step): an LSTM whose gate pre-activations and cell state are
    layer-normalised, as in Ba et al. 2016."""

    def __init__(self, input_size: int, hidden_size: int, *, dtype=None, rng=None) -> None:
        super().__init__()
        rng, G = np.random.default_rng(rng), 4 * hidden_size
        self.hidden_size = hidden_size
        self.weight_ih = tg.nn.Parameter(rng.uniform(-0.5, 0.5, (G, input_size)))
        self.weight_hh = tg.nn.Parameter(rng.uniform(-0.5, 0.5, (G, hidden_size)))
        self.gain_ih, self.gain_hh = tg.nn.Parameter(np.ones(G)), tg.nn.Parameter(np.ones(G))
        self.gain_c = tg.nn.Parameter(np.ones(hidden_size))

    def forward(self, x: tg.Tensor, state=None):
        h, c = state if state is not None else (tg.zeros(x.shape[0], self.hidden_size, dtype=x.dtype),) * 2
        gates = norm(x @ self.weight_ih.T, self.gain_ih) + norm(h @ self.weight_hh.T, self.gain_hh)
        i, f, g, o = gates.chunk(4, 1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return o.sigmoid() * norm(c, self.gain_c).tanh(), c


def norm(v: tg.Tensor, gain: tg.Tensor) -> tg.Tensor:
    centred = v - v.mean(axis=1, keepdims=True)
    return centred / ((centred * centred).mean(axis=1, keepdims=True) + 1e-5).sqrt() * gain


def test_a_big_cells_op_picture_at_a_hundred_steps_renders_in_seconds(tmp_path: Path) -> None:
    if viz.find_renderer("svg") is None:
        pytest.skip("no renderer: neither the system Graphviz nor graphviz-pure")
    model = tg.nn.Recurrent(LayerNormLSTMCell, D, H, dtype=np.float64, rng=0)
    rng = np.random.default_rng(0)
    output, _ = model(tg.Tensor(rng.standard_normal((100, N, D)), name="x"))
    loss = (output * tg.Tensor(rng.standard_normal(output.shape))).sum()
    picture = viz.draw(loss, params=model)  # the defaults: a few of its ~50-op steps, not 16
    kept = len(step_clusters(parse(picture)))
    assert 2 <= kept < viz.READABLE_STEPS and f"(max_steps={kept})" in picture.elided
    start = time.perf_counter()
    viz.render(picture, tmp_path / "ln.svg")
    assert time.perf_counter() - start < 30  # about 4 s with graphviz-pure; 16 steps took over 60 s
    assert len(step_clusters(parse(viz.draw(loss, detail="cells")))) == 0  # cells: the 16 defaults
    assert parse(viz.draw(loss, detail="cells")).nodes.keys() >= {f"c0t{t}" for t in range(8)}


def test_the_readme_pictures_fit_its_width(tmp_path: Path) -> None:
    """The README's pictures (`--rankdir TB`) are at most 750 pt (1,000 px) wide, legend included."""
    from tinygrad_rnn.cli import main

    if viz.find_renderer("svg") is None:
        pytest.skip("no renderer: neither the system Graphviz nor graphviz-pure")
    for cell in ("rnn", "lstm", "gru"):
        for options in ([], ["--detail", "cells", "--grads"]):
            out = tmp_path / f"{cell}.svg"
            assert (
                main(["graph", "--cell", cell, "--steps", "3", "--rankdir", "TB", *options, "-o", str(out)])
                == 0
            )
            width = float(re.search(r'<svg width="([\d.]+)pt"', out.read_text("utf-8")).group(1))
            assert width <= 750, (cell, options, width)


def test_the_textbook_figure_of_one_layer() -> None:
    """x_t, U x_t, h_t, V h_t per step, the weights named once, the loss as one node; W along time."""
    rng = np.random.default_rng(0)
    lm = tg.nn.LanguageModel(5, 3, 4, cell="rnn", dtype=np.float64, rng=1)
    logits, _ = lm(tg.Tensor(rng.integers(0, 5, (4, 1))))
    loss = tg.nn.functional.cross_entropy(
        logits.reshape(4, 5), tg.Tensor(rng.integers(0, 5, 4)), reduction="sum"
    )
    loss.name = "loss"
    viz.retain_grads(loss)
    loss.backward()
    picture = viz.draw(loss, detail="textbook", params=lm, show_grads=True)
    dot = parse(picture)
    labels = {n: a["label"].split("\\n")[0] for n, a in dot.nodes.items()}
    subscripts = "₀₁₂₃"
    for t in range(4):
        assert labels[f"h{t}"] == f"h{subscripts[t]}" and labels[f"u{t}"] == f"U x{subscripts[t]}"
        assert labels[f"v{t}"] == f"V h{subscripts[t]}" and (f"v{t}", "loss") in {
            (a, b) for a, b, _ in dot.edges
        }
    assert [(a, b) for a, b, e in dot.edges if e.get("label") == "W"] == [
        ("h0", "h1"),
        ("h1", "h2"),
        ("h2", "h3"),
    ]
    assert labels["loss"] == "loss = Σ_t L_t"
    assert "W: rnn.weight_hh_l0; V: decoder.weight, decoder.bias" in picture.source
    assert not any(label.startswith(("rnn.weight", "decoder.")) for label in labels.values())  # no tangle
    norms = {t: float(np.linalg.norm(n.grad.data)) for t, n in enumerate(step_hs(loss))}
    for t, norm in norms.items():
        assert f"|dL/dh| = {norm:.2e}" in dot.nodes[f"h{t}"]["label"]
    lstm = tg.nn.LSTM(3, 4, dtype=np.float64, rng=0)
    out, _ = lstm(tg.Tensor(rng.standard_normal((3, 2, 3)), name="x"))
    cells = parse(viz.draw(out.sum(), detail="textbook"))
    assert [cells.nodes[f"h{t}"]["label"] for t in range(3)] == ["h₀\\nc₀", "h₁\\nc₁", "h₂\\nc₂"]
    assert [cells.nodes[f"x{t}"]["label"] for t in range(3)] == ["x₀", "x₁", "x₂"]
    deep = tg.nn.RNN(3, 4, num_layers=2, dtype=np.float64, rng=0)
    with pytest.raises(ValueError, match="textbook' draws one layer in one direction"):
        viz.draw(deep(tg.Tensor(np.ones((3, 2, 3))))[0].sum(), detail="textbook")


def step_hs(loss: tg.Tensor) -> list:
    """The nodes named h, in time order (the steps of a one-layer graph), read off the graph."""
    from tinygrad_rnn.nn.scopes import parse_step_scope
    from tinygrad_rnn.viz.walk import topological

    found = {parse_step_scope(n.scope).t: n for n in topological(loss.node) if n.name == "h" and n.scope}
    return [found[t] for t in sorted(found)]
