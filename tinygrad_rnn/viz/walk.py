"""Iterative walks over a Tensor graph (no recursion, so a 10,000-step chain is fine)."""

from __future__ import annotations

from ..tensor import Tensor, graph_nodes


def topological(root: Tensor) -> list[Tensor]:
    """Every tensor reachable from `root` through `parents`, each listed after all its parents."""
    order: list[Tensor] = []
    seen = {id(root)}
    stack = [(root, iter(root.parents))]
    while stack:
        node, pending = stack[-1]
        for parent in pending:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append((parent, iter(parent.parents)))
                break
        else:
            stack.pop()
            order.append(node)
    return order


def retain_grads(root: Tensor) -> None:
    """Make every non-leaf tensor reachable from `root` keep its `.grad` after the next backward,
    and every op call that reads a weight (a leaf that requires grad) keep what it sends it.

    Call it before `root.backward()` so that `draw(root, show_grads=True)` can colour the
    intermediate nodes (h, c, gates), not only the parameters, and `page` can show each step's share
    of a weight's gradient (shares.py).
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"retain_grads: expected a Tensor, got {type(root).__name__}")
    for node in graph_nodes([root]):
        if not node.is_leaf and node.requires_grad:
            node.retain_grad()
            if any(p.is_leaf and p.requires_grad for p in node.op_parents):
                node.keep_sent_grads()
