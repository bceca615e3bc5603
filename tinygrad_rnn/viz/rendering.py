"""`render`: a Tensor's graph or a Digraph to an svg, png, pdf or dot file."""

from __future__ import annotations

import os
from pathlib import Path

import graphviz

from ..tensor import Tensor
from .backends import FORMATS, RenderError, find_renderer, missing, run
from .drawing import draw


def render(
    root_or_digraph: Tensor | graphviz.Digraph,
    path: str | os.PathLike[str],
    format: str | None = None,  # noqa: A002 (the name graphviz and torch use)
) -> Path:
    """Write the picture of a Tensor's graph (drawn with `draw`'s defaults) or of a Digraph to `path`.

    The format is `format` or the file's suffix: svg, png, pdf, or dot (the source, always works).
    Returns the path written. Raises RenderError, after writing the DOT source next to `path`, when
    neither the system Graphviz nor graphviz-pure can draw the format.
    """
    if isinstance(root_or_digraph, Tensor):
        graph = draw(root_or_digraph)
    elif isinstance(root_or_digraph, graphviz.Digraph):
        graph = root_or_digraph
    else:
        raise TypeError(
            f"render: expected a Tensor or a graphviz.Digraph, got {type(root_or_digraph).__name__}"
        )
    path = Path(path)
    fmt = (format if format is not None else path.suffix.lstrip(".")).lower()
    fmt = "dot" if fmt == "gv" else fmt
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
    path.write_bytes(run(program, graph.source, fmt))
    return path
