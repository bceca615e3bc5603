"""Pictures of the unrolled computation graph: `draw` builds a graphviz Digraph, `render` writes it;
`page` makes one self-contained HTML page to explore every step (`render(loss, "g.html")` writes it),
with the values noted under `keep_values()` and each step's share of a weight's gradient.

The only part of tinygrad_rnn that imports graphviz. It reads the graph through the Tensor's public
surface (parents, op, output_index, shape, dtype, grad, scope, name, detached).
"""

from .backends import RENDER_TIMEOUT, RenderError, find_renderer
from .drawing import READABLE_STEPS, Picture, draw
from .rendering import render
from .values import KeptValues, keep_values
from .walk import retain_grads
from .webpage import Page, page

__all__ = [
    "READABLE_STEPS",
    "RENDER_TIMEOUT",
    "Page",
    "Picture",
    "RenderError",
    "draw",
    "KeptValues",
    "find_renderer",
    "keep_values",
    "page",
    "render",
    "retain_grads",
]
