"""`render`: a Tensor's graph or a Digraph to an svg, png, pdf or dot file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import graphviz

from ..tensor import Tensor
from .backends import FORMATS, RENDER_TIMEOUT, RenderError, find_renderer, missing, run
from .drawing import draw
from .webpage import page


def render(
    root_or_digraph: Tensor | graphviz.Digraph,
    path: str | os.PathLike[str],
    format: str | None = None,  # noqa: A002 (the name graphviz and torch use)
    *,
    timeout: float | None = RENDER_TIMEOUT,
    **options: Any,
) -> Path:
    """Write the picture of a Tensor's graph, drawn by `draw(root, **options)` (detail, show_grads,
    max_steps, params, ...), or of a Digraph, to `path`.

    The format is `format` or the file's suffix: svg and png (the system Graphviz or graphviz-pure),
    pdf (the system Graphviz only), dot (the source, always works), or html: a Tensor's page
    (`page(root, params=..., title=...)`, every step explorable; draw's other options, which shape a
    static picture, do not apply to it). Returns the path written.
    Raises RenderError, after writing the DOT source next to `path`, when no installed program can
    draw the format, and when drawing takes longer than `timeout` seconds (None: no limit); the
    renderer process is killed then, and on any interruption.
    """
    path = Path(path)
    fmt = (format if format is not None else path.suffix.lstrip(".")).lower()
    fmt = "dot" if fmt == "gv" else fmt
    if fmt == "html" and isinstance(root_or_digraph, Tensor):
        page_options = {"params", "title"}
        return page(
            root_or_digraph, timeout=timeout, **{k: v for k, v in options.items() if k in page_options}
        ).save(path)
    if fmt == "html":
        raise TypeError("render: an html page is made from a Tensor (the loss), not a Digraph")
    if isinstance(root_or_digraph, Tensor):
        graph = draw(root_or_digraph, **options)
    elif isinstance(root_or_digraph, graphviz.Digraph):
        if options:
            raise TypeError(f"render: draw options ({', '.join(options)}) apply to a Tensor, not a Digraph")
        graph = root_or_digraph
    else:
        raise TypeError(
            f"render: expected a Tensor or a graphviz.Digraph, got {type(root_or_digraph).__name__}"
        )
    if fmt not in FORMATS:
        raise ValueError(
            f"render: format must be one of {', '.join(FORMATS)} (or a path ending so), got {fmt!r}"
        )
    if fmt == "dot":
        path.write_text(graph.source, encoding="utf-8")
        return path
    program = find_renderer(fmt)
    if program is None:
        source = path.with_suffix(".dot")
        source.write_text(graph.source, encoding="utf-8")
        raise RenderError(missing(fmt, source))
    path.write_bytes(run(program, graph.source, fmt, timeout))
    return path
