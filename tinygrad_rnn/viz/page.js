// The page of tinygrad_rnn.viz.page (webpage.py): reads the JSON in #tg-data, draws the overview strips and the
// chart, and shows the chosen step by recolouring its program's one layout. Plain DOM, no library.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("tg-data").textContent);
  const P = D.palette;
  const NO_GRAD = "#d9d9d9", ZERO = "#ffffff";
  const LINES = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"];
  const MIN_DECADES = 1;
  const $ = (id) => document.getElementById(id);
  const state = { chain: 0, i: 0, part: D.parts[0] };

  // ‖grad‖ -> colour on a log10 span [lo, hi]: the same bins as viz/style.py's GradScale
  function colour(x, span) {
    if (x === null || x === undefined) return NO_GRAD;
    if (typeof x === "string") return P[P.length - 1]; // inf or nan: the hottest, as in style.py
    if (x === 0) return ZERO;
    if (!span) return P[P.length >> 1];
    const share = (Math.log10(x) - span[0]) / (span[1] - span[0]);
    return P[Math.max(0, Math.min(P.length - 1, Math.floor(share * P.length)))];
  }
  // the honest span of some norms: their log10 range, widened about its middle to MIN_DECADES
  function logSpan(values) {
    const logs = values.filter((x) => x > 0 && isFinite(x)).map(Math.log10);
    if (!logs.length) return null;
    let lo = Math.min(...logs), hi = Math.max(...logs);
    if (hi - lo < MIN_DECADES) {
      const mid = (lo + hi) / 2;
      lo = mid - MIN_DECADES / 2;
      hi = mid + MIN_DECADES / 2;
    }
    return [lo, hi];
  }
  const fmt = (x) =>
    x === null || x === undefined ? "no grad kept" : typeof x === "string" ? x : x === 0 ? "0" : x.toExponential(3);
  // a value summary [min, mean, max] as text ('' when the forward ran without viz.keep_values())
  const num = (x) => (typeof x === "string" ? x : Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(2) : +x.toPrecision(4));
  const summary = (v) => (v ? `${num(v[0])} / ${num(v[1])} / ${num(v[2])}` : "");
  const dark = (c) => c === P[0] || c === P[1] || c === P[P.length - 1] || c === P[P.length - 2];

  // overview: one strip of T cells per layer-direction, then the chart
  function drawStrips() {
    const span = D.scales[state.part];
    $("tg-strips").innerHTML = D.chains
      .map((c, k) => {
        const norms = c.parts[state.part] || [];
        const T = c.t.length;
        const cells = c.t
          .map((t, i) => `<rect x="${i}" y="0" width="1.02" height="1" fill="${colour(norms[i], span)}" data-t="${t}"/>`)
          .join("");
        const cuts = c.cuts
          .map((t) => `<rect x="${c.t.indexOf(t)}" y="0" width="${Math.max(T / 400, 0.15)}" height="1" fill="#b2182b" class="cut"/>`)
          .join("");
        return (
          `<div class="chain" data-chain="${k}"><span class="name">${escape(c.title)}</span>` +
          `<svg id="tg-strip-${k}" viewBox="0 0 ${T} 1" preserveAspectRatio="none">${cells}${cuts}` +
          `<rect class="marker" x="0" y="0" width="${Math.max(T / 200, 1)}" height="1" fill="none" stroke="#000" stroke-width="2" vector-effect="non-scaling-stroke" visibility="hidden"/></svg></div>`
        );
      })
      .join("");
    for (const row of document.querySelectorAll(".chain")) {
      const svg = row.querySelector("svg");
      svg.addEventListener("click", (e) => {
        const k = +row.dataset.chain;
        const box = svg.getBoundingClientRect();
        choose(k, Math.floor(((e.clientX - box.left) / box.width) * D.chains[k].t.length));
      });
    }
    const legend = span
      ? `${P.map((c) => `<span class="swatch" style="background:${c}"></span>`).join("")}` +
        `&nbsp;‖dL/d${escape(state.part)}‖ from ${Math.pow(10, span[0]).toExponential(1)} to ${Math.pow(10, span[1]).toExponential(1)}` +
        ` (log scale over all strips, at least a factor of ${Math.pow(10, MIN_DECADES)} wide)`
      : "no gradient kept for this part";
    const keys = D.chains
      .map((c, k) => `<span class="key"><span class="line" style="background:${LINES[k % LINES.length]}"></span>${escape(c.title)}</span>`)
      .join("");
    $("tg-legend").innerHTML = `${legend}<br>${keys}<span class="key"><span class="line" style="background:#b2182b"></span>cut by detach()</span>`;
    drawChart(span);
  }

  function drawChart(span) {
    const W = 1000, H = 200;
    const all = D.chains.flatMap((c) => (c.parts[state.part] || []).filter((x) => x > 0));
    const range = logSpan(all) || [0, 1];
    const y = (x) => H - 6 - ((Math.log10(x) - range[0]) / (range[1] - range[0])) * (H - 12);
    let out = "";
    const every = Math.max(1, Math.ceil((range[1] - range[0]) / 10)); // at most about 10 grid lines
    for (let d = Math.ceil(range[0] / every) * every; d <= Math.floor(range[1]); d += every) {
      out += `<line x1="0" x2="${W}" y1="${y(Math.pow(10, d))}" y2="${y(Math.pow(10, d))}" stroke="#eee" vector-effect="non-scaling-stroke"/>`;
    }
    D.chains.forEach((c, k) => {
      const norms = c.parts[state.part] || [];
      const T = c.t.length;
      const pts = norms
        .map((x, i) => (x > 0 ? `${((i + 0.5) / T) * W},${y(x).toFixed(2)}` : null))
        .filter((p) => p !== null)
        .join(" ");
      out += `<polyline points="${pts}" fill="none" stroke="${LINES[k % LINES.length]}" stroke-width="1.5" vector-effect="non-scaling-stroke"/>`;
    });
    out += `<line id="tg-chart-marker" x1="0" x2="0" y1="0" y2="${H}" stroke="#000" vector-effect="non-scaling-stroke"/>`;
    $("tg-chart").innerHTML = out;
    $("tg-chart-low").textContent = `log scale; grid lines every ${every === 1 ? "power" : every + " powers"} of 10; bottom ${Math.pow(10, range[0]).toExponential(1)}`;
    $("tg-chart-high").textContent = `top ${Math.pow(10, range[1]).toExponential(1)}`;
  }

  // the chosen step: its program's layout, recoloured with this step's numbers
  const spans = {};
  function nodeSpan(k, program, j) {
    const key = `${k}/${program}/${j}`;
    if (!(key in spans)) {
      const c = D.chains[k];
      spans[key] = logSpan(c.norms.filter((_, i) => c.program[i] === program).map((n) => n[j]));
    }
    return spans[key];
  }
  let shownProgram = -1;
  function showStep() {
    const k = state.chain, c = D.chains[k], i = state.i, t = c.t[i];
    const program = c.program[i], norms = c.norms[i], nodes = D.programs[program].nodes;
    if (program !== shownProgram) {
      $("tg-step-svg").innerHTML = D.programs[program].svg;
      shownProgram = program;
      for (const g of $("tg-step-svg").querySelectorAll("g.node")) {
        g.addEventListener("mousemove", (e) => tip(e, g));
        g.addEventListener("mouseleave", () => ($("tg-tip").hidden = true));
      }
    }
    const rows = [];
    nodes.forEach((n, j) => {
      const g = document.getElementById(`p${program}-${j}`);
      const fill = colour(norms[j], nodeSpan(k, program, j));
      if (g) {
        const shape = g.querySelector("path, polygon, ellipse");
        if (shape) shape.setAttribute("fill", fill);
        for (const text of g.querySelectorAll("text")) text.setAttribute("fill", dark(fill) ? "#fff" : "#000");
        g.dataset.grad = fmt(norms[j]);
      }
      rows.push(
        `<tr data-node="${j}"><td>${escape(n.label)}</td><td>${escape(n.op)}</td><td>${escape(n.shape)}</td>` +
          `<td>${n.dtype}</td><td class="num">${fmt(norms[j])}</td>` +
          `<td class="num">${c.values ? summary(c.values[i][j]) || "not kept" : "-"}</td></tr>`
      );
    });
    $("tg-step-table").tBodies[0].innerHTML = rows.join("");
    document.querySelectorAll("#tg-weights tbody tr").forEach((row, w) => {
      const share = (c.shares[D.weights[w].name] || [])[i];
      row.cells[4].textContent = share === undefined ? "none kept" : fmt(share);
    });
    $("tg-share-step").textContent = `t${t}`;
    const cut = c.cuts.includes(t) ? " · reads a state cut by detach()" : "";
    $("tg-step-title").textContent = `${c.cell} t${t} (${c.title}, step program ${program})${cut}`;
    $("tg-where").textContent = `t = ${t} of ${c.t[0]}…${c.t[c.t.length - 1]} · ${c.title}`;
    $("tg-slider").max = c.t.length - 1;
    $("tg-slider").value = i;
    $("tg-chain").value = k;
    document.querySelectorAll(".chain").forEach((row) => {
      const chosen = +row.dataset.chain === k;
      row.classList.toggle("chosen", chosen);
      const marker = row.querySelector(".marker");
      marker.setAttribute("visibility", chosen ? "visible" : "hidden");
      marker.setAttribute("x", i);
    });
    const x = ((i + 0.5) / c.t.length) * 1000;
    const m = $("tg-chart-marker");
    m.setAttribute("x1", x);
    m.setAttribute("x2", x);
  }
  function tip(e, g) {
    const k = state.chain, c = D.chains[k];
    const j = +g.id.split("-")[1], n = D.programs[c.program[state.i]].nodes[j];
    const box = $("tg-tip");
    const values = c.values ? summary(c.values[state.i][j]) : "";
    const share = n.kind === "param" ? (c.shares[n.label] || [])[state.i] : undefined;
    box.textContent = `${n.label}${n.op && n.op !== n.label ? " = " + n.op : ""}\n${n.shape} ${n.dtype}\n‖grad‖ = ${g.dataset.grad} at t${c.t[state.i]}` +
      (n.kind === "param" ? " (total over all steps)" : "") +
      (share !== undefined ? `\nthis step's share ‖dθ_t‖ = ${fmt(share)}` : "") +
      (values ? `\nvalues min / mean / max = ${values}` : "");
    box.hidden = false;
    box.style.left = `${e.clientX + 14}px`;
    box.style.top = `${e.clientY + 14}px`;
  }
  function escape(s) {
    return String(s).replace(/[&<>"]/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[ch]);
  }
  function choose(k, i) {
    state.chain = Math.max(0, Math.min(D.chains.length - 1, k));
    state.i = Math.max(0, Math.min(D.chains[state.chain].t.length - 1, i));
    showStep();
  }

  // controls: chain and part selectors, slider, buttons, keys, clicks on the chart
  $("tg-chain").innerHTML = D.chains.map((c, k) => `<option value="${k}">${escape(c.title)}</option>`).join("");
  $("tg-part").innerHTML = D.parts.map((p) => `<option>${escape(p)}</option>`).join("");
  $("tg-chain").addEventListener("change", (e) => choose(+e.target.value, state.i));
  $("tg-part").addEventListener("change", (e) => {
    state.part = e.target.value;
    drawStrips();
    showStep();
  });
  $("tg-slider").addEventListener("input", (e) => choose(state.chain, +e.target.value));
  $("tg-prev").addEventListener("click", () => choose(state.chain, state.i - 1));
  $("tg-next").addEventListener("click", () => choose(state.chain, state.i + 1));
  $("tg-chart").addEventListener("click", (e) => {
    const box = $("tg-chart").getBoundingClientRect();
    choose(state.chain, Math.floor(((e.clientX - box.left) / box.width) * D.chains[state.chain].t.length));
  });
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "SELECT" || e.target.tagName === "INPUT") return;
    const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
    if (e.key in moves) {
      choose(state.chain + moves[e.key][0], state.i + moves[e.key][1]);
      e.preventDefault();
    } else if (e.key === "Home") choose(state.chain, 0);
    else if (e.key === "End") choose(state.chain, D.chains[state.chain].t.length - 1);
  });
  const steps = D.chains.map((c) => c.t.length);
  $("tg-summary").textContent =
    `${D.chains.length} layer-direction(s), ${Math.max(...steps)} steps, ${D.programs.length} distinct step program(s) laid out once each. ` +
    "Click a strip or the chart, drag the slider, or use ←/→ (steps) and ↑/↓ (layers)." +
    (D.chains.some((c) => c.norms.some((n) => n.some((x) => x !== null)))
      ? ""
      : " No gradient was kept: call viz.retain_grads(loss) before loss.backward().");
  const weights = D.weights.map(
    (w) =>
      `<tr><td>${escape(w.name)}</td><td>${w.shape}</td><td>${w.dtype}</td><td class="num">${fmt(w.grad)}</td>` +
      `<td class="num"></td></tr>`
  );
  document.querySelector("#tg-weights tbody").innerHTML = weights.join("");
  drawStrips();
  showStep();
})();
