"""The reverse-mode engine and the node protocol it runs on.

The engine sees a recorded call through `OpNode`, the node protocol: which nodes it read
(`parents`), when it was made (`sequence`), what its backward reads and at which versions, how to
run its backward, and a few hooks around it. `Function` (tensor.py) implements the protocol for one
op from what the op's author wrote; `ReplayedStep` (replay.py) implements it for a whole recorded
step. `backward` visits the nodes newest first (a heap keyed by creation order) — no recursion, so
a chain of any length backpropagates — and hands each the gradients of its outputs.
"""

from __future__ import annotations

import itertools
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .tensor import Node

_creation_order = itertools.count()  # orders recorded ops for backward (as torch's sequence_nr)
UNCHANGED = (0,)  # the version counter of every node not yet changed in place, viewed or saved


class OpNode:
    """The node protocol: what `backward` and the pictures ask of a recorded call.

    Set when the call is recorded: `parents` (the input nodes), `needs_input_grad`, `sequence`,
    `versions` (of the inputs in `saved_inputs`, at forward time). Read by the sweep: `saved_inputs`
    and `saves_output` (what backward reads: only their in-place changes refuse), `multi_output` and
    `n_outputs`, `takes_products`, `backward(ctx, *grads)`. Hooks, with the defaults of one op call:
    `reads_input`, `release`, `watch_output`, `store_retained`, `origin`.
    """

    __slots__ = ("parents", "needs_input_grad", "sequence", "versions", "__dict__")
    multi_output = False
    takes_products = False  # backward accepts a DeferredProduct (Permute: a weight's transposed view)
    saved_inputs: tuple[int, ...] = ()  # the inputs whose values backward reads
    saves_output = False  # whether backward reads an output's values
    output_counter = UNCHANGED  # the output's counter, once it has one (Node.own_counter)
    retained: list[Node] | None = None  # outputs asking for their .grad (retain_grad)
    freed = False  # set by a backward without retain_graph
    keeps_sent_grads = False  # set by Node.keep_sent_grads: backward keeps what it sends each input
    sent_grads: tuple[Any, ...] | None = None  # then: one gradient (or None) per parent

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> tuple[Any, ...]:
        """One gradient (or None) per input, each of the input's shape and dtype (the sweep checks)."""
        raise NotImplementedError

    def reads_input(self, i: int) -> bool:
        """Whether backward reads input i's values (asked only once one of `saved_inputs` was
        changed in place): a product reads each operand only for the other's gradient."""
        return True

    def release(self) -> None:
        """Drop what backward needs (after a backward without retain_graph)."""
        self.freed = True

    def watch_output(self, index: int, counter: list[int]) -> None:
        """Output `index` got a version counter of its own: a node that reads its output checks it."""
        if self.saves_output:
            self.output_counter = counter

    def store_retained(self, grads_out: list[Any]) -> None:
        """Give the outputs that asked for it (retain_grad) their complete gradient, `grads_out`."""
        for node in self.retained or ():
            if grads_out[node._index] is not None:
                node.accumulate_grad(grads_out[node._index], owned=False)

    def origin(self, index: int) -> tuple[OpNode, int]:
        """The op call that made output `index` and which of its outputs it is, as pictures show it:
        this call itself, except for a replayed step, whose outputs come from its ops."""
        return self, index


def saved_by(
    saved: tuple[Any, ...], arrays: list[np.ndarray], out: Any, multi: bool
) -> tuple[tuple[int, ...], bool]:
    """Which inputs (positions) and whether the output are among the arrays forward saved: the very
    objects, so that a copy or a derived array (a mask, a sign) is the op's own."""
    ids = [id(a) for a in saved]  # a few: a list is quicker to build and search than a set
    inputs = tuple([i for i, a in enumerate(arrays) if id(a) in ids])
    return inputs, any(id(o) in ids for o in out) if multi else id(out) in ids


def _versions(nodes: tuple[Node, ...], saved_inputs: tuple[int, ...]) -> tuple[int, ...]:
    """The version of each input whose values backward reads."""
    return tuple([nodes[i].counter[0] for i in saved_inputs])


class DeferredProduct:
    """Σ_k a_kᵀ g_k, the gradient of the right operand of matmuls, kept as its terms until it is read.

    A weight used at every time step receives one term per step; reading the sum stacks the terms
    and makes one GEMM, (a_1; …; a_T)ᵀ (g_1; …; g_T), instead of T small products and T additions.
    It lives only inside `backward`: ops never see it, except those that set `takes_products`.
    """

    __slots__ = ("lefts", "rights")

    def __init__(self, left: np.ndarray, right: np.ndarray) -> None:
        self.lefts = [left]
        self.rights = [right]

    @property
    def T(self) -> DeferredProduct:  # noqa: N802
        """(Σ aᵀ g)ᵀ = Σ gᵀ a, still deferred: a weight used as `W.T` at every step gets one GEMM too."""
        swapped = DeferredProduct.__new__(DeferredProduct)
        swapped.lefts, swapped.rights = list(self.rights), list(self.lefts)  # own lists: sums extend them
        return swapped

    def value(self) -> np.ndarray:
        if len(self.lefts) == 1:
            return self.lefts[0].T @ self.rights[0]
        return np.concatenate(self.lefts).T @ np.concatenate(self.rights)


def _value(g: Any) -> Any:
    return g.value() if type(g) is DeferredProduct else g


def _add_grad(sums: dict[Any, Any], owned: set[Any], key: Any, g: Any) -> None:
    """sums[key] += g (the key is there already) without aliasing: an array handed over may be held
    elsewhere too (Add gives the same gradient to both inputs), so the first sum allocates and only
    later ones add in place."""
    current = sums[key]
    if type(current) is DeferredProduct and type(g) is DeferredProduct:
        current.lefts += g.lefts
        current.rights += g.rights
    elif key in owned:
        current += _value(g)  # a 0-d ndarray too is changed in place (a numpy scalar would not be)
    else:
        total = _value(current) + _value(g)
        sums[key] = total if type(total) is np.ndarray else np.asarray(total)
        owned.add(key)


def _checked_grad(ctx: OpNode, i: int, parent: Node, g: Any) -> Any:
    """The gradient a backward returned for input i, if it has the input's shape and dtype (a numpy
    scalar becomes a 0-d ndarray); else an error naming the op and the input."""
    if type(g) is DeferredProduct:
        shape = (g.lefts[0].shape[1], g.rights[0].shape[1])
        dtype = np.result_type(g.lefts[0], g.rights[0])
    else:
        g = np.asarray(g)
        shape, dtype = g.shape, g.dtype
    if shape != parent.shape or dtype != parent.dtype:
        named = f" ({parent.name!r})" if parent.name else ""
        raise RuntimeError(
            f"backward: {type(ctx).__name__}.backward returned a gradient of shape {shape} and dtype "
            f"{dtype} for input {i}{named}, expected the input's shape {parent.shape} and dtype "
            f"{parent.dtype}"
        )
    return g


def _modified_error(ctx: OpNode) -> RuntimeError | None:
    """The error for inputs (or the output) changed in place since the forward pass that backward
    reads, None when every change is to values it does not read."""
    changed = [
        f"input {i}" + (f" ({ctx.parents[i].name!r})" if ctx.parents[i].name else "")
        for i, v in zip(ctx.saved_inputs, ctx.versions, strict=True)
        if ctx.parents[i].version != v and ctx.reads_input(i)
    ]
    if ctx.saves_output and ctx.output_counter[0]:
        changed.append("the output (through a view or a detached copy)")
    if not changed:
        return None
    return RuntimeError(
        f"backward: {', '.join(changed)} of {type(ctx).__name__} "
        f"{'was' if len(changed) == 1 else 'were'} changed in place after the forward "
        "pass (an optimizer step or an assignment before backward?); its gradient would use the new "
        "values. Run the forward again after changing it."
    )


def backward(node: Node, seed: np.ndarray, retain_graph: bool) -> None:
    """Reverse-mode sweep from `node`, whose gradient is `seed` (see `Tensor.backward`).

    Every recorded op has a sequence number from its creation, and its inputs were made before it, so
    visiting ops from the newest down (a heap) meets each op after all of its consumers: the
    gradient of its outputs is complete. No recursion, one pass.
    """
    if node._ctx is None:
        node.accumulate_grad(seed, owned=False)
        return
    sums: dict[Any, np.ndarray] = {}
    owned: set[Any] = set()
    leaves: dict[int, Node] = {}
    root_ctx = node._ctx
    # a gradient is summed per op, or per (op, output) for split-like ops
    sums[(id(root_ctx), node._index) if root_ctx.multi_output else id(root_ctx)] = seed
    heap = [(-root_ctx.sequence, root_ctx)]
    queued = {id(root_ctx)}
    while heap:
        ctx = heappop(heap)[1]
        if ctx.freed:
            raise RuntimeError(
                "backward: trying to go through the graph a second time, but its saved arrays were "
                "freed by the first backward; call backward(retain_graph=True) the first time"
            )
        key = id(ctx)
        if ctx.multi_output:
            grads_out = [_value(sums.pop((key, i), None)) for i in range(ctx.n_outputs)]
        else:
            g = sums.pop(key)
            if type(g) is DeferredProduct and (not ctx.takes_products or ctx.retained is not None):
                g = g.value()
            grads_out = [g]
        if ctx.versions != _versions(ctx.parents, ctx.saved_inputs) or (
            ctx.saves_output and ctx.output_counter[0]
        ):
            error = _modified_error(ctx)
            if error is not None:
                raise error
        if ctx.retained is not None:
            ctx.store_retained(grads_out)
        grads = ctx.backward(ctx, *grads_out)
        if ctx.keeps_sent_grads:  # asked for by pictures: each step's share of a weight's gradient
            ctx.sent_grads = tuple([None if g is None else np.array(_value(g)) for g in grads])
        if not retain_graph:
            ctx.release()
        if len(grads) != len(ctx.parents):
            raise RuntimeError(
                f"backward: {type(ctx).__name__}.backward returned {len(grads)} gradients for "
                f"{len(ctx.parents)} inputs"
            )
        for i, (parent, g) in enumerate(zip(ctx.parents, grads, strict=True)):
            if g is None or not parent.requires_grad:
                continue
            # checked per edge, so cheaply: an equal dtype that is not the same object takes the long way
            if type(g) is not np.ndarray or g.shape != parent.shape or g.dtype is not parent.dtype:
                g = _checked_grad(ctx, i, parent, g)
            parent_ctx = parent._ctx
            if parent_ctx is None:
                key = id(parent)
                leaves[key] = parent
            else:
                if id(parent_ctx) not in queued:
                    queued.add(id(parent_ctx))
                    heappush(heap, (-parent_ctx.sequence, parent_ctx))
                key = (id(parent_ctx), parent._index) if parent_ctx.multi_output else id(parent_ctx)
            if key in sums:  # the first gradient is stored as it is, without a call: this runs per edge
                _add_grad(sums, owned, key, g)
            else:
                sums[key] = g
    for key, leaf in leaves.items():
        g = sums[key]
        leaf.accumulate_grad(_value(g), owned=key in owned or type(g) is DeferredProduct)
