"""viz for any cell: a custom cell's steps clustered and rolled up under its name, a user's own loop
under step scopes, and scopes the pictures cannot read drawn as plain clusters (never dropped)."""

import numpy as np
import pytest
from cells_for_tests import IndRNNCell, PeepholeLSTMCell
from test_viz import node_id, out_degree, parse, step_clusters

import tinygrad_rnn as tg
from tinygrad_rnn import nn, viz

pytest.importorskip("graphviz")
T, N, D, H = 3, 2, 3, 4


def layer_loss(model, steps: int = T) -> tg.Tensor:
    rng = np.random.default_rng(0)
    output, _ = model(tg.Tensor(rng.standard_normal((steps, N, D))))
    return (output * tg.Tensor(rng.standard_normal(output.shape))).sum()


def cluster_labels(dot, kind: str) -> list[str]:
    return [a["label"] for c, a in dot.clusters.items() if c.startswith(kind)]


def test_a_custom_cell_gets_one_cluster_per_step_named_after_it():
    model = nn.Recurrent(PeepholeLSTMCell, D, H, bidirectional=True, dtype=np.float64, rng=0)
    loss = layer_loss(model)
    dot = parse(viz.draw(loss, params=model))
    assert cluster_labels(dot, "cluster_layer") == ["PeepholeLSTMCell l0", "PeepholeLSTMCell l0 reverse"]
    assert len(step_clusters(dot)) == 2 * T
    assert sorted(dot.clusters[c]["label"] for c in step_clusters(dot)) == sorted(
        [f"t{t}" for t in range(T)] * 2
    )
    for name in ("cell_l0.weight_hh", "cell_l0.peep_f", "cell_l0_reverse.weight_ih"):
        assert out_degree(dot, node_id(dot, name)) == T, name  # one edge into each step that uses it
    cells = parse(viz.draw(loss, detail="cells", params=model))
    titles = sorted(
        a["label"].split("\\n")[0] for a in cells.nodes.values() if a["label"].startswith("Peephole")
    )
    assert titles == sorted(
        [f"PeepholeLSTMCell l0 t{t}" for t in range(T)] + [f"PeepholeLSTMCell l0r t{t}" for t in range(T)]
    )


def test_the_layers_name_labels_the_picture():
    model = nn.Recurrent(IndRNNCell, D, H, num_layers=2, name="indrnn", dtype=np.float64, rng=0)
    dot = parse(viz.draw(layer_loss(model), detail="cells"))
    assert cluster_labels(dot, "cluster_layer") == ["indrnn l0", "indrnn l1"]
    assert {a["label"].split("\\n")[0] for a in dot.nodes.values() if a["label"].startswith("indrnn")} == {
        f"indrnn l{k} t{t}" for k in range(2) for t in range(T)
    }


def test_a_users_own_loop_under_step_scopes_clusters_too():
    rng = np.random.default_rng(1)
    u = tg.Tensor(rng.uniform(0, 1, H), requires_grad=True, name="u")
    w = tg.Tensor(rng.standard_normal((H, D)), requires_grad=True, name="w")
    h = None
    with tg.scope("encoder"):
        for t in range(4):
            with tg.scope(f"mycell.l0.t{t}"):
                pre = tg.Tensor(rng.standard_normal((N, D))) @ w.T
                h = (pre if h is None else pre + u * h).relu()
    dot = parse(viz.draw(h.sum()))
    assert cluster_labels(dot, "cluster_layer") == ["encoder.mycell l0"]
    assert len(step_clusters(dot)) == 4
    assert out_degree(dot, node_id(dot, "w")) == 4 and out_degree(dot, node_id(dot, "u")) == 3
    cells = parse(viz.draw(h.sum(), detail="cells"))
    titles = {a["label"].split("\\n")[0] for a in cells.nodes.values() if a["label"].startswith("mycell")}
    assert titles == {f"mycell l0 t{t}" for t in range(4)}


def test_a_scope_the_pictures_cannot_read_is_drawn_as_a_plain_cluster():
    model = nn.Recurrent(IndRNNCell, D, H, dtype=np.float64, rng=0)
    rng = np.random.default_rng(2)
    output, h_n = model(tg.Tensor(rng.standard_normal((T, N, D))))
    with tg.scope("attention"):
        scores = (output * h_n).sum(axis=2).softmax(axis=0)
    with tg.scope("head-2.v1"):
        loss = (scores * scores).sum()
    dot = parse(viz.draw(loss))
    plain = {a["label"]: c for c, a in dot.clusters.items() if c.startswith("cluster_scope")}
    assert set(plain) == {"attention", "head-2.v1"}
    inside = {}
    for node, cluster in dot.inside.items():
        inside.setdefault(cluster, []).append(dot.nodes[node]["label"].split("\\n")[0])
    assert sorted(inside[plain["attention"]]) == ["Mul", "Softmax", "Sum"]
    assert sorted(inside[plain["head-2.v1"]]) == ["Mul", "Sum"]
    assert len(step_clusters(dot)) == T  # the cell's steps are still steps


def test_the_layers_own_scope_is_not_a_plain_cluster():
    dot = parse(viz.draw(layer_loss(nn.LSTM(D, H, dtype=np.float64, rng=0))))
    assert not [c for c in dot.clusters if c.startswith("cluster_scope")]
