"""viz.page: one self-contained HTML page whose numbers are the engine's, laid out once per distinct
step program; and the page in a real browser (Debian's chromium driven by Playwright, nothing
downloaded), which also writes a screenshot of each README example page to build/screenshots/."""

import json
import math
import re
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import nn, viz
from tinygrad_rnn.nn.scopes import parse_step_scope
from tinygrad_rnn.viz import webpage as page_module
from tinygrad_rnn.viz.style import PALETTE, GradScale
from tinygrad_rnn.viz.walk import topological

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "build" / "screenshots"
PEEPHOLE = f"{ROOT / 'tests' / 'cells_for_tests.py'}:PeepholeLSTMCell"  # a user's cell file
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
N, D, H = 2, 3, 4

if viz.find_renderer("svg") is None:
    pytest.skip("no renderer: neither the system Graphviz nor graphviz-pure", allow_module_level=True)


def trained_loss(cell: str, steps: int, layers: int = 1, bidirectional: bool = False, seed: int = 0):
    """A layer's loss after backward with every intermediate's gradient kept, and the layer."""
    rng = np.random.default_rng(seed)
    model = LAYERS[cell](D, H, num_layers=layers, bidirectional=bidirectional, dtype=np.float64, rng=seed)
    x = tg.Tensor(rng.standard_normal((steps, N, D)), requires_grad=True, name="x")
    output, _ = model(x)
    loss = (output * tg.Tensor(rng.standard_normal(output.shape), name="G")).sum()
    viz.retain_grads(loss)
    loss.backward()
    return loss, model


def engine_norms(loss: tg.Tensor, name: str = "h") -> dict[str, dict[int, float]]:
    """{chain title: {t: ‖grad‖ of the tensor named `name` in step t}}, read off the graph directly."""
    found: dict[str, dict[int, float]] = {}
    for node in topological(loss.node):
        step = parse_step_scope(node.scope)
        if node.name == name and step is not None and node.grad is not None:
            title = f"{step.cell} l{step.layer}{' reverse' if step.reverse else ''}"
            found.setdefault(title, {})[step.t] = float(np.linalg.norm(node.grad.data))
    return found


def page_data(page: viz.Page) -> dict:
    match = re.search(r"<script id='tg-data' type='application/json'>(.*?)</script>", page.html, re.S)
    return json.loads(match.group(1).replace("<\\/", "</"))


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(sorted(LAYERS)), st.integers(1, 6), st.integers(1, 2), st.booleans(), st.integers(0, 99)
)
def test_the_page_carries_the_engines_norms_for_every_step(cell, steps, layers, bidirectional, seed) -> None:
    loss, model = trained_loss(cell, steps, layers, bidirectional, seed)
    data = page_data(viz.page(loss, params=model))
    expected = engine_norms(loss)
    assert [c["title"] for c in data["chains"]] == list(expected)
    for chain in data["chains"]:
        assert chain["t"] == list(range(steps))
        want = [expected[chain["title"]][t] for t in chain["t"]]
        np.testing.assert_allclose(chain["parts"]["h"], want, rtol=1e-3)
        assert len(set(chain["program"])) <= 2  # the first step (fed by zeros) and the rest
    if cell == "lstm" and steps == 1:  # a lone step passes nothing on: only h is known as its state
        assert data["parts"] == ["h"]
    elif cell == "lstm":
        cells = engine_norms(loss, "c")
        for chain in data["chains"]:  # c wherever it has a gradient (a lone step's c feeds nothing)
            want = cells.get(chain["title"], {})
            shown = chain["parts"].get("c", [None] * steps)
            assert [shown[t] for t in sorted(want)] == pytest.approx(
                [want[t] for t in sorted(want)], rel=1e-3
            )
            assert all(shown[t] is None for t in chain["t"] if t not in want)
    weights = {w["name"]: w["grad"] for w in data["weights"]}
    for name, p in model.named_parameters():
        assert math.isclose(weights[name], float(np.linalg.norm(p.grad.data)), rel_tol=1e-3)


def test_the_layout_is_made_once_per_distinct_step_program(monkeypatch: pytest.MonkeyPatch) -> None:
    loss, model = trained_loss("lstm", 40, layers=2, bidirectional=True)
    calls = []
    real = page_module.run

    def counting(program, source, fmt, timeout):
        calls.append(source.count("digraph"))
        return real(program, source, fmt, timeout)

    monkeypatch.setattr(page_module, "run", counting)
    data = page_data(viz.page(loss, params=model))
    assert calls == [len(data["programs"])]  # one renderer run, one graph per program
    assert len(data["programs"]) <= 2 * 4 < 4 * 40


def test_the_page_is_one_file_that_reads_nothing_from_the_network(tmp_path: Path) -> None:
    loss, model = trained_loss("gru", 5)
    path = viz.render(loss, tmp_path / "g.html", params=model)
    document = path.read_text(encoding="utf-8")
    assert document.startswith("<!DOCTYPE html>") and "<script>" in document
    assert not re.search(r"<link|<img|\bsrc=|@import|url\(", document)
    assert set(re.findall(r"https?://[\w./-]+", document)) <= {
        "http://www.w3.org/2000/svg",  # SVG's namespace names, not fetched
        "http://www.w3.org/1999/xlink",
    }
    shown = viz.page(loss, params=model)._repr_html_()
    assert shown.startswith("<iframe") and "srcdoc=" in shown


def test_jupyter_shows_the_page_as_html() -> None:
    formatters = pytest.importorskip("IPython.core.formatters")
    loss, model = trained_loss("rnn", 3)
    data, _ = formatters.DisplayFormatter().format(viz.page(loss, params=model))
    assert data["text/html"].startswith("<iframe") and "tg-data" in data["text/html"]


def test_the_graph_command_writes_a_page_for_a_users_cell(tmp_path: Path) -> None:
    from tinygrad_rnn.cli import main

    out = tmp_path / "p.html"
    assert main(["graph", "--cell", PEEPHOLE, "--steps", "30", "--bidirectional", "-o", str(out)]) == 0
    data = json.loads(
        re.search(r"type='application/json'>(.*?)</script>", out.read_text("utf-8"), re.S).group(1)
    )
    assert data["parts"] == ["h", "state[1]"]  # the cell's own m is a state, not 'Add'
    assert [len(c["t"]) for c in data["chains"]] == [30, 30]


def test_a_ten_thousand_step_page_is_made_in_seconds() -> None:
    loss, model = trained_loss("rnn", 10_000)
    start = time.perf_counter()
    data = page_data(viz.page(loss, params=model))
    assert time.perf_counter() - start < 30  # about 2 s measured; one layout, not 10,000
    assert len(data["chains"][0]["t"]) == 10_000 and len(data["programs"]) == 2


def test_bad_arguments_are_named() -> None:
    with pytest.raises(TypeError, match="page: expected a Tensor"):
        viz.page(np.ones(3))
    w = tg.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="no recurrent steps"):
        viz.page((w * 2).sum())
    with pytest.raises(TypeError, match="html page is made from a Tensor"):
        viz.render(viz.draw((w * 2).sum()), "g.html")


# --- in a real browser ---


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium); nothing is downloaded")
    with playwright.sync_playwright() as p:
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        args += ["--disable-component-update", "--no-first-run"]
        launched = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield launched
        launched.close()


def open_page(browser, path: Path):
    """The page loaded in a new tab, with the errors it logged (console errors, uncaught exceptions)."""
    tab = browser.new_page(viewport={"width": 1100, "height": 1000})
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.route(re.compile(r"^(?!file:).*"), lambda route: (errors.append(route.request.url), route.abort()))
    tab.goto(path.as_uri())
    return tab, errors


def test_the_page_in_a_browser(browser, tmp_path: Path) -> None:
    loss, model = trained_loss("lstm", 12, layers=2, bidirectional=True)
    path = viz.render(loss, tmp_path / "g.html", params=model)
    tab, errors = open_page(browser, path)
    norms = engine_norms(loss)
    titles = list(norms)
    scale = GradScale([n for chain in norms.values() for n in chain.values()])
    for k, title in enumerate(titles):  # T cells per layer-direction, coloured by ‖dL/dh_t‖
        cells = f"#tg-strip-{k} rect[data-t]"
        fills = tab.eval_on_selector_all(cells, "rs => rs.map(r => r.getAttribute('fill'))")
        assert fills == [scale.colour(norms[title][t]) for t in range(12)], title
    assert len(set(fills)) > 1 and set(fills) <= set(PALETTE)

    strip = tab.locator("#tg-strip-2").bounding_box()  # click step 7 of the third layer-direction
    tab.mouse.click(strip["x"] + strip["width"] * 7.5 / 12, strip["y"] + strip["height"] / 2)
    tab.keyboard.press("ArrowRight")  # then step 8 by key
    assert tab.inner_text("#tg-where").startswith(f"t = 8 of 0…11 · {titles[2]}")
    rows = tab.eval_on_selector_all(
        "#tg-step-table tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))"
    )
    shown = {row[0]: float(row[4]) for row in rows if row[4] != "no grad kept"}
    assert math.isclose(shown["h"], norms[titles[2]][8], rel_tol=1e-3)
    assert math.isclose(shown["c"], engine_norms(loss, "c")[titles[2]][8], rel_tol=1e-3)

    c_node = tab.locator("#tg-step-svg g.node", has_text="c = Addcmul")
    c_node.hover()
    tip = tab.inner_text("#tg-tip")
    assert tab.is_visible("#tg-tip") and tip.startswith("c = Addcmul\n(2, 4) float64")
    assert f"‖grad‖ = {shown['c']:.3e}".replace("e-0", "e-").replace("e+0", "e+") in tip
    tab.fill("#tg-slider", "3")  # the slider chooses a step too
    assert tab.inner_text("#tg-where").startswith("t = 3 ")
    assert errors == []


def test_the_page_shows_inline_as_in_a_notebook(browser, tmp_path: Path) -> None:
    """What Jupyter shows (`_repr_html_`: the page in an iframe) works inside another page, offline."""
    loss, model = trained_loss("gru", 7, layers=2)
    notebook = tmp_path / "notebook.html"
    cell = viz.page(loss, params=model)._repr_html_()
    notebook.write_text(f"<!DOCTYPE html><html><body><p>a cell</p>{cell}</body></html>", encoding="utf-8")
    tab, errors = open_page(browser, notebook)
    frame = tab.frame_locator("iframe")
    assert frame.locator("#tg-strip-1 rect[data-t]").count() == 7
    frame.locator("#tg-next").click()
    assert frame.locator("#tg-where").inner_text().startswith("t = 1 of 0…6 · gru l0")
    assert errors == []


def test_names_are_shown_verbatim_in_the_browser(browser, tmp_path: Path) -> None:
    name = "<i>enc</i> & co"
    w = tg.Tensor(np.full((H, H), 0.5), requires_grad=True, name=name)
    h = tg.Tensor(np.ones((N, H)))
    for t in range(3):
        with tg.scope(f"{name}.rnn.l0.t{t}"):
            h = (h @ w.T).tanh()
            h.name = name
    viz.retain_grads(h.sum())
    h.sum().backward()
    tab, errors = open_page(browser, viz.page(h.sum()).save(tmp_path / "names.html"))
    assert tab.inner_text(".chain .name") == f"{name}.rnn l0" and tab.locator(".chain i").count() == 0
    tab.keyboard.press("ArrowRight")
    first = tab.eval_on_selector_all("#tg-step-table tbody tr", "rs => rs.map(r => r.cells[0].textContent)")
    assert {name, f"{name} (t−1)"} <= set(first)
    assert name in tab.inner_text("#tg-legend") and errors == []


def graph_command(*args: str):
    def write(path: Path) -> None:
        from tinygrad_rnn.cli import main

        assert main(["graph", *args, "-o", str(path)]) == 0

    return write


def vanishing(path: Path) -> None:
    """The README's python example: a loss at the last step only, so ‖dL/dh_t‖ vanishes going back."""
    rng = np.random.default_rng(0)
    model = nn.RNN(3, 16, num_layers=2, bidirectional=True, dtype="float64", rng=0)
    x = tg.Tensor(rng.standard_normal((300, 2, 3)), name="x")
    output, _ = model(x)
    loss = (output[-1] * tg.Tensor(rng.standard_normal(output.shape[1:]), name="G")).sum()
    viz.retain_grads(loss)
    loss.backward()
    viz.render(loss, path, params=model)


README_PAGES = {  # the README's examples
    "page_lstm": graph_command("--cell", "lstm", "--steps", "1000", "--layers", "2", "--bidirectional"),
    "page_peephole": graph_command("--cell", PEEPHOLE, "--steps", "1000", "--layers", "2", "--bidirectional"),
    "page_vanishing": vanishing,
}


@pytest.mark.parametrize("name", sorted(README_PAGES))
def test_readme_example_pages_load_and_are_photographed(browser, name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.html"
    start = time.perf_counter()
    README_PAGES[name](path)
    assert time.perf_counter() - start < 60  # seconds (5 to 10 s measured on a busy machine)
    tab, errors = open_page(browser, path)
    tab.keyboard.press("End")
    tab.locator("#tg-step-svg g.node").nth(2).hover()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    assert errors == [] and (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000


def cut_page() -> viz.Page:
    """A loop that detaches h after step 2 (truncated BPTT), so step 3 reads the cut, and a loss whose
    gradient overflows to inf."""
    rng = np.random.default_rng(0)
    w = tg.Tensor(rng.standard_normal((H, H)), requires_grad=True, name="w")
    h, outputs = tg.Tensor(np.zeros((N, H))), []
    for t in range(6):
        with tg.scope(f"rnn.l0.t{t}"):
            h = (h @ w.T + 1.0).tanh()
            h.name = "h"
        outputs.append(h)
        if t == 2:
            h = h.detach()
    loss = tg.stack(outputs).sum() * tg.Tensor(np.array(np.inf), name="huge")
    viz.retain_grads(loss)
    loss.backward()
    return viz.page(loss)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_a_detach_cut_and_an_exploding_step_are_marked() -> None:
    """The cut is marked at the step that reads it; inf is carried as 'inf' (JSON has no inf), not as
    'no grad kept'."""
    (chain,) = page_data(cut_page())["chains"]
    assert chain["cuts"] == [3] and chain["t"] == list(range(6))
    assert set(chain["parts"]["h"]) <= {"inf", "nan"}


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_the_cut_and_an_exploding_step_in_the_browser(browser, tmp_path: Path) -> None:
    tab, errors = open_page(browser, cut_page().save(tmp_path / "c.html"))
    assert tab.eval_on_selector_all("#tg-strip-0 rect.cut", "rs => rs.map(r => r.getAttribute('x'))") == ["3"]
    fills = tab.eval_on_selector_all("#tg-strip-0 rect[data-t]", "rs => rs.map(r => r.getAttribute('fill'))")
    assert fills == [PALETTE[-1]] * 6  # inf (or nan): the hottest colour, as the static pictures
    tab.keyboard.press("End")
    assert "reads a state cut by detach()" not in tab.inner_text("#tg-step-title")
    tab.fill("#tg-slider", "3")
    assert tab.inner_text("#tg-step-title").endswith("reads a state cut by detach()") and errors == []


# --- values and each step's share of a weight's gradient ------------------------------------------


def rnn_cell_run(steps: int, compile: object, keep: bool):
    """nn.Recurrent(nn.RNNCell) over `steps` (float64), loss Σ out ⊙ G, backward with retain_grads;
    the loss, the layer, the input, G and what keep_values noted."""
    rng = np.random.default_rng(5)
    layer = nn.Recurrent(nn.RNNCell, D, H, compile=compile, dtype=np.float64, rng=5)
    x = tg.Tensor(rng.standard_normal((steps, N, D)), name="x")
    g = rng.standard_normal((steps, N, H))
    with viz.keep_values() if keep else nullcontext() as values:
        output, _ = layer(x)
        loss = (output * tg.Tensor(g, name="G")).sum()
    viz.retain_grads(loss)
    loss.backward()
    return loss, layer, x.data, g, output.data, values


def bptt_shares(x: np.ndarray, g: np.ndarray, h: np.ndarray, w_hh: np.ndarray) -> list[np.ndarray]:
    """dW_hh,t = δ_tᵀ h_{t−1}, δ_t = (G_t + δ_{t+1} W_hh) ⊙ (1 − h_t²): the seed notes' BPTT in numpy."""
    steps = len(h)
    delta, shares = np.zeros_like(h[0]), [None] * steps
    for t in reversed(range(steps)):
        delta = (g[t] + delta @ w_hh) * (1 - h[t] ** 2)
        previous = h[t - 1] if t else np.zeros_like(h[0])
        shares[t] = delta.T @ previous
    return shares


@pytest.mark.parametrize("compile, keep", [(None, True), ("replay", False), (False, False)])
def test_each_steps_share_of_a_weight_is_what_bptt_gives_and_they_sum_to_its_gradient(compile, keep) -> None:
    """Op by op (under keep_values) and replayed, each step's dW_hh,t on the page equals the hand BPTT."""
    loss, layer, x, g, h, _ = rnn_cell_run(7, compile, keep)
    w_hh = layer.cell_l0.weight_hh
    expected = bptt_shares(x, g, h, w_hh.data)
    shares = viz.shares.step_shares(loss, {id(w_hh.node): "w"})
    by_t = {step.t: own["w"] for step, own in shares.items()}
    assert sorted(by_t) == list(range(7))
    for t in range(7):
        np.testing.assert_allclose(by_t[t], expected[t], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sum(by_t.values()), w_hh.grad.data, rtol=1e-10, atol=1e-12)
    data = page_data(viz.page(loss, params=layer))
    on_page = data["chains"][0]["shares"]["cell_l0.weight_hh"]
    assert on_page == pytest.approx([float(np.linalg.norm(expected[t])) for t in range(7)], rel=1e-3)


def test_a_compiled_sequence_gives_its_steps_no_share() -> None:
    """One node for many steps cannot say which step sent what: those steps get none, not a wrong one."""
    loss, layer, *_ = rnn_cell_run(9, True, False)
    shares = viz.shares.step_shares(loss, {id(layer.cell_l0.weight_hh.node): "w"})
    assert len(shares) < 9  # the steps after the first compiled one ran as one sequence node


def test_values_kept_during_the_forward_pass_are_the_tensors_values() -> None:
    loss, layer, _, _, h, values = rnn_cell_run(5, None, True)
    data = page_data(viz.page(loss, params=layer, values=values))
    chain = data["chains"][0]
    nodes = data["programs"][chain["program"][3]]["nodes"]
    j = next(k for k, n in enumerate(nodes) if n["label"] == "h")
    low, mean, high = chain["values"][3][j]
    assert (low, mean, high) == pytest.approx((h[3].min(), h[3].mean(), h[3].max()), rel=1e-3)
    assert page_data(viz.page(loss, params=layer))["chains"][0]["values"] is None  # none kept: none shown


def test_values_and_shares_in_the_browser(browser, tmp_path: Path) -> None:
    loss, layer, x, g, h, values = rnn_cell_run(6, None, True)
    path = viz.page(loss, params=layer, values=values).save(tmp_path / "v.html")
    tab, errors = open_page(browser, path)
    tab.fill("#tg-slider", "4")
    weights = tab.eval_on_selector_all(
        "#tg-weights tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))"
    )
    share = {row[0]: row[4] for row in weights}["cell_l0.weight_hh"]
    expected = bptt_shares(x, g, h, layer.cell_l0.weight_hh.data)[4]
    assert math.isclose(float(share), float(np.linalg.norm(expected)), rel_tol=1e-3)
    tab.locator("#tg-step-svg g.node", has_text="h = Tanh").hover()
    tip = tab.inner_text("#tg-tip")
    assert "values min / mean / max = " in tip and f"{h[4].max():.4g}"[:5] in tip
    assert errors == []
