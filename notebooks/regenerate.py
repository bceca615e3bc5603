"""Run the notebooks top to bottom and save their outputs:  python notebooks/regenerate.py [NAME ...]

(`make notebooks` runs it on all six.)  `tests/test_notebooks.py` runs them the same way and fails when a
saved output no longer matches what the code produces now, after `normalized` has removed what may
differ from run to run without the code changing:

- timings: "in 1.2 s" and "(65 steps/s)" become "in … s" and "(… steps/s)";
- object addresses: "<Picture at 0x7f…>" becomes "<Picture at 0x…>";
- SVG pictures are compared by what they show, their text (entities decoded) and their colours, not
  by coordinates (the system Graphviz and graphviz-pure lay out the same DOT a little differently);
  so is the page (`viz.page`, an HTML iframe holding the pictures of its steps);
- PNG plots must have the same size and differ in at most 0.1 % of their pixels (antialiasing).

Cells tagged "torch" are compared only where PyTorch is installed.
"""

from __future__ import annotations

import base64
import html
import io
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOKS = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
TIMEOUT = 600  # seconds per cell
PIXELS_DIFFERING = 1e-3  # the fraction of a PNG's pixels that may differ

_TIMING = [
    (re.compile(r"\b(in|took) \d+(?:\.\d+)? s\b"), r"\1 … s"),
    (re.compile(r"\d+(?:\.\d+)? steps/s\b"), "… steps/s"),
    (re.compile(r" at 0x[0-9a-f]+"), " at 0x…"),
]
_SVG_TEXT = re.compile(r"<(text|title)\b[^>]*>(.*?)</\1>", re.S)
_SVG_COLOUR = re.compile(r'(?:fill|stroke)="(#[0-9a-fA-F]{6})"')


def execute(path: Path) -> tuple[nbformat.NotebookNode, float]:
    """The notebook at `path` run top to bottom in a fresh kernel from its folder; the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=TIMEOUT,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(HERE)}},
    )
    client.execute(stderr=subprocess.DEVNULL)  # the kernel's own log lines; the cells' stderr is an output
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # run-time stamps: noise in every diff
    return nb, time.perf_counter() - start


def _text(value: Any) -> str:
    text = "".join(value) if isinstance(value, list) else str(value)
    for pattern, replacement in _TIMING:
        text = pattern.sub(replacement, text)
    return text


def _svg(value: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    svg = "".join(value) if isinstance(value, list) else str(value)
    texts = sorted(" ".join(html.unescape(m.group(2)).split()) for m in _SVG_TEXT.finditer(svg))
    return tuple(texts), tuple(sorted(c.lower() for c in _SVG_COLOUR.findall(svg)))


def _png(value: Any) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode("".join(value)))).convert("RGB"), dtype=np.int16)


def normalized(outputs: list[nbformat.NotebookNode]) -> list[tuple[str, Any]]:
    """A cell's outputs as (kind, value) pairs, in the form in which saved and fresh outputs must agree.

    Consecutive pieces of one stream are joined first: how a kernel splits its prints into outputs
    depends on timing.
    """
    items: list[tuple[str, Any]] = []
    for output in outputs:
        kind = output["output_type"]
        if kind == "stream":
            name, text = f"stream {output['name']}", "".join(output["text"])
            if items and items[-1][0] == name:
                items[-1] = (name, items[-1][1] + text)
            else:
                items.append((name, text))
        elif kind == "error":
            items.append(("error", f"{output['ename']}: {output['evalue']}"))
        else:
            for mime, value in sorted(output.get("data", {}).items()):
                joined = "".join(value) if isinstance(value, list) else str(value)
                if mime == "image/svg+xml" or (mime == "text/html" and "&lt;svg" in joined):
                    # a picture, or the page (an iframe holding pictures): by its texts and colours,
                    # since the layout's coordinates depend on the renderer (dot or graphviz-pure)
                    items.append(("image/svg+xml", _svg(html.unescape(joined))))
                elif mime == "image/png":
                    items.append((mime, _png(value)))
                else:
                    items.append((mime, value))
    return [(kind, _text(value)) if isinstance(value, str | list) else (kind, value) for kind, value in items]


def _differing(a: np.ndarray, b: np.ndarray) -> float:
    """The fraction of pixels whose colour differs by more than antialiasing noise."""
    return float(np.mean(np.abs(a - b).max(axis=-1) > 8))


def _same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "image/png":
        return a[1].shape == b[1].shape and _differing(a[1], b[1]) <= PIXELS_DIFFERING
    return a[1] == b[1]


def _show(saved: tuple[str, Any], now: tuple[str, Any]) -> str:
    kind = saved[0]
    if kind == "image/png" and now[0] == kind:
        (h, w), (h2, w2) = saved[1].shape[:2], now[1].shape[:2]
        if (h, w) != (h2, w2):
            return f"{kind}: {w}×{h} px saved, {w2}×{h2} px now"
        return f"{kind}: {_differing(saved[1], now[1]):.2%} of the pixels differ"
    if kind == "image/svg+xml" and now[0] == kind:
        old, new = Counter(saved[1][0] + saved[1][1]), Counter(now[1][0] + now[1][1])
        gone, came = sorted((old - new).elements()), sorted((new - old).elements())
        return f"{kind}: only saved {gone[:12]}, only now {came[:12]}"
    return f"saved {kind}: {str(saved[1])[:300]!r}\n    now   {now[0]}: {str(now[1])[:300]!r}"


def differences(saved: nbformat.NotebookNode, fresh: nbformat.NotebookNode, skip_tags: set[str]) -> list[str]:
    """Where `saved`'s outputs differ from `fresh`'s (same cells), one line per cell that differs."""
    found = []
    for index, (old, new) in enumerate(zip(saved.cells, fresh.cells, strict=True)):
        if old.cell_type != "code" or skip_tags & set(old.metadata.get("tags", [])):
            continue
        a, b = normalized(old.outputs), normalized(new.outputs)
        if len(a) != len(b):
            found.append(f"cell {index}: {len(a)} saved outputs, {len(b)} now")
            continue
        for x, y in zip(a, b, strict=True):
            if not _same(x, y):
                found.append(f"cell {index}: {_show(x, y)}")
                break
    return found


def main(names: list[str]) -> int:
    paths = [p for p in NOTEBOOKS if not names or any(n in p.name for n in names)]
    if not paths:
        print(
            f"regenerate: no notebook matches {names}; notebooks are {[p.name for p in NOTEBOOKS]}",
            file=sys.stderr,
        )
        return 2
    total = 0.0
    for path in paths:
        nb, seconds = execute(path)
        nbformat.write(nb, path)
        total += seconds
        print(f"{path.name:28} {seconds:5.1f} s")
    print(f"{'all':28} {total:5.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
