"""The Tensor, the graph Node, and the Function every op derives from.

A Tensor is its values (`data`) and its `node`. The node of a Tensor made by an op remembers the
Function instance (`ctx`) that made it; the ctx remembers the nodes of its inputs (`parents`) and
whatever its backward needs (`saved`). The reverse-mode sweep, and the node protocol it runs on,
are in engine.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from . import engine
from .context import current_scope, current_tape, grad_enabled, not_replayable, outside_data
from .engine import UNCHANGED, OpNode, _creation_order, _versions, saved_by

FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
DEFAULT_FLOAT = np.dtype(np.float32)


class Function(OpNode):
    """An op, as its author writes it: `forward(ctx, *arrays, **options)` and `backward(ctx, *grads)`.

    `forward` receives the inputs' ndarrays and returns an ndarray (or a tuple of them when the
    class sets `multi_output`); a numpy scalar (what numpy gives for ops on 0-d arrays) is turned
    into a 0-d ndarray here. `backward` receives one gradient per output and returns a tuple with
    one gradient (or None) per input, each of the input's exact shape and dtype (the engine checks);
    `ctx.needs_input_grad[i]` says which are wanted.

    What backward reads is said once, by `ctx.save_for_backward(...)`: an input or the output
    handed to it as the very array forward received or returned is what backward reads, so only its
    in-place changes (through a view or a detached copy) make backward raise, as torch checks only
    saved tensors (`saved_inputs` and `saves_output` are derived from that call, per call). Anything
    else saved (a mask, a sign) is the op's own. Keep no input or output array elsewhere on ctx.

    Optional: `view` — the op may return a view of its first input (reshape, permute, basic indexing,
    split, ...); the output then shares the input's version counter, so that changing either in place
    is seen by the ops that saved the other (as torch's views). `rearranges` — the output is its one
    input's values in another layout or dtype (reshape, permute, cast, the blocks of a split): a
    picture draws such an op of a parameter as the parameter. `reads_input(i)` — backward reads a
    saved input only for some gradients (a product). `takes_products` — backward accepts a
    DeferredProduct. Everything else on ctx is the engine's node protocol (engine.OpNode).
    """

    differentiable = True  # False: the outputs carry no gradient (comparisons, argmax), none is recorded
    view = False
    rearranges = False
    saved: tuple[Any, ...] | None = ()  # what forward handed to save_for_backward (None once freed)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = [name for name in ("saved_inputs", "saves_output") if name in cls.__dict__]
        if declared:
            raise TypeError(
                f"{cls.__name__}: {' and '.join(declared)} is derived from forward's "
                "ctx.save_for_backward(...) call; remove the declaration"
            )

    def save_for_backward(self, *arrays: Any) -> None:
        self.saved = arrays

    def release(self) -> None:
        self.saved = None
        self.freed = True

    @classmethod
    def apply(cls, *inputs: Tensor, **options: Any) -> Any:
        ctx = cls.__new__(cls)
        arrays = [t._data for t in inputs]
        try:
            out = cls.forward(ctx, *arrays, **options)
        except (ValueError, IndexError, TypeError) as error:
            shapes = ", ".join(str(t.shape) for t in inputs)
            raise type(error)(f"{cls.__name__.lower()}: {error} (input shapes: {shapes})") from error
        if ctx.saved:  # before out becomes an ndarray: a saved numpy scalar is the one returned
            ctx.saved_inputs, ctx.saves_output = saved_by(ctx.saved, arrays, out, cls.multi_output)
        if cls.multi_output:
            out = [o if type(o) is np.ndarray else np.asarray(o) for o in out]
            ctx.n_outputs = len(out)
        elif type(out) is not np.ndarray:
            out = np.asarray(out)
        version = (
            _shared_version(inputs[0], out[0] if cls.multi_output and out else out) if cls.view else None
        )
        record = False
        if cls.differentiable and grad_enabled.get():
            nodes = tuple([t.node for t in inputs])
            needs = tuple([n.requires_grad for n in nodes])
            record = True in needs
        if record:
            ctx.parents = nodes
            ctx.needs_input_grad = needs
            ctx.sequence = next(_creation_order)
            ctx.versions = _versions(nodes, ctx.saved_inputs)
        else:
            ctx = None
        scope = current_scope.get()
        make = Tensor._make
        if cls.multi_output:
            result: Any = tuple([make(o, record, ctx, i, scope, version) for i, o in enumerate(out)])
        else:
            result = make(out, record, ctx, 0, scope, version)
        tape = current_tape.get()
        if tape is not None:
            tape.calls.append((cls, inputs, options, result, ctx))
        return result

    @staticmethod
    def forward(ctx: Function, *arrays: np.ndarray, **options: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Function, *grads: np.ndarray) -> tuple[np.ndarray | None, ...]:
        raise NotImplementedError


def _shared_version(source: Tensor, out: Any) -> list[int] | None:
    """The version counter of `source` when `out` is a view of its values (numpy gives every view
    the array owning the memory as its `base`), else None: a copy gets a counter of its own."""
    if type(out) is not np.ndarray or out.base is None:
        return None
    data = source._data
    return source.node.own_counter() if out.base is (data if data.base is None else data.base) else None


def _as_dtype(dtype: Any) -> np.dtype | None:
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype in ("float", "double", "long"):
        dtype = {"float": np.float32, "double": np.float64, "long": np.int64}[dtype]
    try:
        return np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"Tensor: unknown dtype {dtype!r}") from error


def _to_array(data: Any, dtype: np.dtype | None) -> np.ndarray:
    """Copy `data` into a fresh ndarray: floats default to float32, float ndarrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        outside_data("a Tensor was made from an array inside the step")
    if dtype is not None:
        return np.array(data, dtype=dtype)
    array = np.array(data)
    if array.dtype.kind == "f" and not isinstance(data, np.ndarray | np.floating):
        return array.astype(DEFAULT_FLOAT)
    if array.dtype.kind in "iu" and array.dtype != np.int64 and not isinstance(data, np.ndarray):
        return array.astype(np.int64)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"Tensor: expected numbers (float, int or bool), got dtype {array.dtype}")
    return array


class Node:
    """What the graph keeps of a tensor: the op and output it came from, its shape, dtype, labels and
    gradient — not its values. An intermediate the user no longer holds is freed at once unless an
    op saved it for backward (as in PyTorch), so the graph costs only what backward needs.

    Pictures and reports read the graph through nodes (`Tensor.parents` gives them); they answer the
    same questions a Tensor does: parents, op, output_index, shape, dtype, grad, name, scope.
    """

    __slots__ = (
        "_ctx", "_index", "shape", "dtype", "requires_grad", "grad", "name", "scope", "detached", "value",
        "counter", "__weakref__",
    )  # fmt: skip

    def __init__(
        self,
        ctx: OpNode | None,
        index: int,
        data: np.ndarray,
        requires_grad: bool,
        scope: str | None,
        counter: list[int] | None = None,
    ) -> None:
        self._ctx = ctx
        self._index = index
        self.shape = data.shape
        self.dtype = data.dtype
        self.requires_grad = requires_grad
        self.grad: Tensor | None = None
        self.name: str | None = None
        self.scope = scope
        self.detached = False
        # [version], bumped by in-place changes of the values (Tensor.data_changed); one list shared
        # by a tensor, its views and its detached copies, which share its memory. Most tensors are
        # never changed in place: they share the immutable UNCHANGED until they need a list of their own.
        self.counter = UNCHANGED if counter is None else counter
        # a leaf's one number (a constant like the 1 in 1 - z) stays readable for pictures
        self.value = data if ctx is None and data.size == 1 else None

    def describe(self, data: np.ndarray) -> None:
        """The tensor's values were replaced (`Tensor.data = ...`): shape, dtype and value follow them."""
        self.shape, self.dtype = data.shape, data.dtype
        self.value = data if self._ctx is None and data.size == 1 else None

    @property
    def parents(self) -> tuple[Node, ...]:
        """The nodes of the tensors this one was computed from (empty for a leaf)."""
        return self._ctx.origin(self._index)[0].parents if self._ctx is not None else ()

    @property
    def op(self) -> str | None:
        """Name of the op that made this tensor ('Tanh', 'MatMul', ...), None for a leaf."""
        return type(self._ctx.origin(self._index)[0]).__name__ if self._ctx is not None else None

    @property
    def output_index(self) -> int:
        """Which output of its op this tensor is (non-zero only for split/chunk/unbind)."""
        return self._ctx.origin(self._index)[1] if self._ctx is not None else 0

    @property
    def rearranges(self) -> bool:
        """Whether the op that made this tensor only rearranges its input's values (Function.rearranges)."""
        return self._ctx is not None and getattr(self._ctx.origin(self._index)[0], "rearranges", False)

    @property
    def selects(self) -> bool:
        """Whether the op that made this tensor may return part of its input as a view (Function.view:
        a slice, a split piece), so a picture can draw a parameter's slice as the parameter."""
        return self._ctx is not None and getattr(self._ctx.origin(self._index)[0], "view", False)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def version(self) -> int:
        return self.counter[0]

    def own_counter(self) -> list[int]:
        """This node's own version counter (made at the first need: a change, a view, a saved output)."""
        if self.counter is UNCHANGED:
            self.counter = [0]
            if self._ctx is not None:
                self._ctx.watch_output(self._index, self.counter)
        return self.counter

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def item(self) -> float | int | bool:
        if self.value is None:
            raise ValueError("item: the graph keeps the value of one-element leaves (constants) only")
        return self.value.item()

    def accumulate_grad(self, g: np.ndarray, owned: bool) -> None:
        """grad += g (the engine's last step); a gradient that may be held elsewhere too (not
        `owned`), or a read-only view, is copied first."""
        if self.grad is None:
            self.grad = Tensor._make(g if owned else np.array(g), False, None, 0, None)
        else:
            self.grad._data += g  # accumulate in place, as torch: no new buffer for every backward

    def keep_sent_grads(self) -> None:
        """Have the next backward keep the gradient the op that made this tensor sends each of its
        inputs (`sent_grads`, one per `parents`): what one op call adds to a weight's gradient."""
        if self._ctx is not None:
            self._ctx.keeps_sent_grads = True

    @property
    def sent_grads(self) -> tuple[Any, ...] | None:
        """After a backward that kept them (`keep_sent_grads`): the gradient the op that made this
        tensor sent each of its inputs, aligned with the op call's parents; None otherwise."""
        return self._ctx.sent_grads if self._ctx is not None else None

    @property
    def op_parents(self) -> tuple[Node, ...]:
        """The nodes of the inputs of the op call that made this tensor, as backward sees them (a
        replayed step's inputs, not the ops inside it): what `sent_grads` is aligned with."""
        return self._ctx.parents if self._ctx is not None else ()

    def retain_grad(self) -> None:
        """Keep `.grad` on this intermediate after backward (leaves keep it anyway)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        not_replayable("retain_grad() asked for an inner gradient")
        ctx = self._ctx
        if ctx is None:
            return
        if ctx.retained is None:
            ctx.retained = []
        if all(n is not self for n in ctx.retained):
            ctx.retained.append(self)

    def __repr__(self) -> str:
        label = self.op or "leaf"
        named = f", name={self.name!r}" if self.name is not None else ""
        return f"Node({label}, shape={self.shape}, dtype={self.dtype}{named})"


class Tensor:
    """An n-dimensional array that records the ops applied to it, for reverse-mode differentiation.

    `Tensor(data, requires_grad=False, dtype=None, name=None)`: data is a scalar, a (nested) list or
    an ndarray (copied). Python floats become float32 as in PyTorch; a float ndarray keeps its dtype;
    a float32 graph stays float32 in forward and backward. A Tensor is its values (`data`) and its
    place in the graph (`node`).
    """

    __slots__ = ("_data", "node")
    __array_ufunc__ = None  # make numpy defer to the reflected operators: np.float32(2) * t -> t.__rmul__

    def __init__(
        self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None
    ) -> None:
        array = _to_array(data, _as_dtype(dtype))
        if requires_grad and array.dtype not in FLOAT_DTYPES:
            raise TypeError(f"Tensor: only floating-point tensors can require grad, got dtype {array.dtype}")
        self._data = array
        self.node = Node(None, 0, array, bool(requires_grad), None)
        self.node.name = name

    @classmethod
    def _make(
        cls,
        data: np.ndarray,
        requires_grad: bool,
        ctx: OpNode | None,
        index: int,
        scope: str | None,
        counter: list[int] | None = None,
    ) -> Tensor:
        t = object.__new__(cls)
        t._data = data
        t.node = Node(ctx, index, data, requires_grad, scope, counter)
        return t

    # --- what the graph looks like (read by viz and reports) -------------------------------------

    @property
    def grad(self) -> Tensor | None:
        return self.node.grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(f"grad: expected a Tensor or None, got {type(value).__name__}")
        self.node.grad = value

    @property
    def requires_grad(self) -> bool:
        return self.node.requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    @property
    def name(self) -> str | None:
        """An optional label that pictures and reports show."""
        return self.node.name

    @name.setter
    def name(self, value: str | None) -> None:
        self.node.name = value

    @property
    def scope(self) -> str | None:
        """The scope the tensor was made in (e.g. 'lstm.l0.t3'), None outside any."""
        return self.node.scope

    @property
    def detached(self) -> bool:
        """True for the result of detach() on a graph tensor: where truncated BPTT cut the graph."""
        return self.node.detached

    @property
    def _ctx(self) -> OpNode | None:
        return self.node._ctx

    @property
    def parents(self) -> tuple[Node, ...]:
        """The graph nodes of the tensors this one was computed from (empty for a leaf)."""
        return self.node.parents

    @property
    def op(self) -> str | None:
        """Name of the op that made this tensor ('Tanh', 'MatMul', ...), None for a leaf."""
        return self.node.op

    @property
    def output_index(self) -> int:
        """Which output of its op this tensor is (non-zero only for split/chunk/unbind)."""
        return self.node.output_index

    @property
    def is_leaf(self) -> bool:
        return self.node._ctx is None

    @property
    def data(self) -> np.ndarray:
        """The values. Read inside a step being recorded for replay, they keep that step op by op:
        Python may take another path at another step (replay.py)."""
        if current_tape.get() is not None:
            not_replayable(".data read the values")
        return self._data

    @data.setter
    def data(self, value: np.ndarray) -> None:
        """New values, possibly of another shape or dtype (`Module.to`): the node describes them too."""
        array = value if isinstance(value, np.ndarray) else np.asarray(value)
        self._data = array
        self.node.describe(array)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    def numel(self) -> int:
        return self._data.size

    def dim(self) -> int:
        return self._data.ndim

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        body = np.array2string(self._data, precision=4, separator=", ", prefix="Tensor(")
        extras = [f"dtype={self.dtype}"]
        if self._ctx is not None:
            extras.append(f"op={self.op}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name is not None:
            extras.append(f"name={self.name!r}")
        if self.scope is not None:
            extras.append(f"scope={self.scope!r}")
        return f"Tensor({body}, {', '.join(extras)})"

    # --- conversion ------------------------------------------------------------------------------

    def numpy(self) -> np.ndarray:
        not_replayable("numpy() read the values")
        return self._data

    def item(self) -> float | int | bool:
        if self._data.size != 1:
            raise ValueError(
                f"item: only a tensor with one element converts to a number, got shape {self.shape}"
            )
        not_replayable("item() read a value")
        return self._data.item()

    def tolist(self) -> Any:
        not_replayable("tolist() read the values")
        return self._data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        not_replayable("bool() read a value")
        return bool(self._data)

    def detach(self) -> Tensor:
        """The same values (the same memory and version counter, as torch), cut from the graph: no
        gradient flows back through the result."""
        not_replayable("detach() cut the graph")
        t = Tensor._make(self._data, False, None, 0, self.scope, self.node.own_counter())
        t.node.name = self.name
        t.node.detached = self._ctx is not None or self.requires_grad
        return t

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if not self.is_leaf:
            raise RuntimeError("requires_grad_: only a leaf's flag can be changed; use detach() first")
        if requires_grad and self.dtype not in FLOAT_DTYPES:
            raise TypeError(f"requires_grad_: only floating-point tensors can require grad, got {self.dtype}")
        self.node.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        """Keep `.grad` on this non-leaf tensor after backward (leaves keep it anyway)."""
        self.node.retain_grad()

    def zero_grad(self) -> None:
        self.node.grad = None

    @property
    def version(self) -> int:
        """How many times the values were changed in place (as torch's `_version`), counted together
        with the tensors whose memory this one shares (its base, views, detached copies)."""
        return self.node.counter[0]

    def data_changed(self) -> None:
        """Declare that `data` was changed in place (optimizers, load_state_dict and item assignment do
        it): a pending backward that saved these values then raises instead of using the new ones."""
        not_replayable("values were changed in place")
        self.node.own_counter()[0] += 1

    def __setitem__(self, index: Any, value: Any) -> None:
        if self.requires_grad:
            raise RuntimeError(
                "item assignment on a tensor that requires grad would corrupt the recorded graph; "
                "collect the per-step results in a list and combine them with tinygrad_rnn.stack(...) "
                "or tinygrad_rnn.cat(...)"
            )
        self._data[_raw_index(index)] = value._data if isinstance(value, Tensor) else value
        self.data_changed()

    # --- arithmetic ------------------------------------------------------------------------------

    def _operands(self, other: Any, op: str) -> tuple[Tensor, Tensor]:
        """This tensor and `other` (a Tensor, ndarray or scalar) in one dtype, torch's promotion: a float
        wins over an integer or bool (a Python float with an integer tensor gives float32), a scalar
        or an array never changes a float tensor's dtype; mixing float32 and float64 Tensors is an
        error (no silent up-casting)."""
        if isinstance(other, Tensor):
            mine, theirs = self._data.dtype, other._data.dtype
            if theirs is mine:  # the common case, first and cheap
                return self, other
            if mine.kind == "f" and theirs.kind == "f" and mine != theirs:
                raise TypeError(
                    f"{op}: dtype mismatch, {mine} and {theirs}; convert one explicitly "
                    "(.float() or .double())"
                )
            if mine.kind == "f" and theirs.kind != "f":  # a recorded cast: replay sees the values change
                return self, ops.Cast.apply(other, dtype=mine)
            if theirs.kind == "f" and mine.kind != "f":
                return ops.Cast.apply(self, dtype=theirs), other
            return self, other
        if not isinstance(other, np.ndarray | float | int | bool | np.number | np.bool_):
            raise TypeError(f"{op}: unsupported operand of type {type(other).__name__}")
        mine = self._data.dtype
        if mine.kind == "f":
            return self, _constant(other, mine)
        value = np.asarray(other)
        if value.dtype.kind == "f":
            dtype = value.dtype if isinstance(other, np.ndarray) else DEFAULT_FLOAT
            return ops.Cast.apply(self, dtype=dtype), _constant(other, dtype)
        if value.dtype.kind in "iu" and mine.kind in "iu" and not isinstance(other, np.ndarray):
            return self, _constant(other, mine)  # a Python int keeps the tensor's integer type
        return self, _constant(other, None)

    def __add__(self, other: Any) -> Tensor:
        return ops.Add.apply(*self._operands(other, "add"))

    def __radd__(self, other: Any) -> Tensor:
        a, b = self._operands(other, "add")
        return ops.Add.apply(b, a)

    def __sub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(*self._operands(other, "sub"))

    def __rsub__(self, other: Any) -> Tensor:
        a, b = self._operands(other, "sub")
        return ops.Sub.apply(b, a)

    def __mul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(*self._operands(other, "mul"))

    def __rmul__(self, other: Any) -> Tensor:
        a, b = self._operands(other, "mul")
        return ops.Mul.apply(b, a)

    def __truediv__(self, other: Any) -> Tensor:
        a, b = self._operands(other, "div")
        if a.dtype.kind != "f":  # true division of integers gives floats (torch's default float)
            a, b = a.to(DEFAULT_FLOAT), b.to(DEFAULT_FLOAT)
        return ops.Div.apply(a, b)

    def __rtruediv__(self, other: Any) -> Tensor:
        """c / self for a number or array c: c · (1 / self), as torch computes it, so backward reads
        only 1 / self (a change to self in place after the forward pass does not matter)."""
        a, b = self._operands(other, "div")
        if a.dtype.kind != "f":
            a, b = a.to(DEFAULT_FLOAT), b.to(DEFAULT_FLOAT)
        return ops.Mul.apply(ops.Reciprocal.apply(a), b)

    def reciprocal(self) -> Tensor:
        return ops.Reciprocal.apply(self if self.dtype.kind == "f" else self.to(DEFAULT_FLOAT))

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __pow__(self, exponent: Any) -> Tensor:
        """self ** exponent: a scalar exponent (a constant, the fast path) or a Tensor or array that
        broadcasts against self (both receive a gradient, as torch.pow)."""
        if isinstance(exponent, Tensor | np.ndarray):
            return ops.PowTensor.apply(*self._operands(exponent, "pow"))
        if isinstance(exponent, bool | np.bool_) or not isinstance(exponent, int | float | np.number):
            raise TypeError(
                f"pow: the exponent must be a number, a Tensor or an array, got {type(exponent).__name__}"
            )
        if self.dtype.kind != "f" and not isinstance(exponent, int | np.integer):
            return self.to(DEFAULT_FLOAT) ** exponent
        return ops.Pow.apply(
            self, exponent=int(exponent) if isinstance(exponent, int | np.integer) else float(exponent)
        )

    def __rpow__(self, base: Any) -> Tensor:
        a, b = self._operands(base, "pow")
        return ops.PowTensor.apply(b, a)

    def __matmul__(self, other: Any) -> Tensor:
        return self.matmul(other)

    def __rmatmul__(self, other: Any) -> Tensor:
        a, b = self._operands(other, "matmul")
        return ops.MatMul.apply(b, a)

    def matmul(self, other: Any) -> Tensor:
        return ops.MatMul.apply(*self._operands(other, "matmul"))

    def addcmul(self, tensor1: Any, tensor2: Any) -> Tensor:
        """self + tensor1 ⊙ tensor2 in one op (torch.addcmul)."""
        return functions.addcmul(self, tensor1, tensor2)

    def lerp(self, end: Any, weight: Any) -> Tensor:
        """self + weight ⊙ (end − self) in one op (torch.lerp)."""
        return functions.lerp(self, end, weight)

    def add(self, other: Any) -> Tensor:
        return self + other

    def sub(self, other: Any) -> Tensor:
        return self - other

    def mul(self, other: Any) -> Tensor:
        return self * other

    def div(self, other: Any) -> Tensor:
        return self / other

    def neg(self) -> Tensor:
        return ops.Neg.apply(self)

    def pow(self, exponent: Any) -> Tensor:
        return self**exponent

    # comparisons give boolean masks (for where) through a recorded op without a gradient, so a
    # replayed step computes its masks afresh; == and != too, as torch, so a Tensor hashes by
    # identity (a dict key or set member is the object, not its values)
    __hash__ = object.__hash__

    def _compare(self, other: Any, ufunc: np.ufunc) -> Tensor:
        return ops.Compare.apply(
            self, other if isinstance(other, Tensor) else _constant(other, None), ufunc=ufunc
        )

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.equal)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.not_equal)

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(other, np.less)

    def __le__(self, other: Any) -> Tensor:
        return self._compare(other, np.less_equal)

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater)

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater_equal)

    # --- elementwise functions -------------------------------------------------------------------

    def exp(self) -> Tensor:
        return ops.Exp.apply(self)

    def log(self) -> Tensor:
        return ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        return ops.Sqrt.apply(self)

    def tanh(self) -> Tensor:
        return ops.Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        return ops.Sigmoid.apply(self)

    def relu(self) -> Tensor:
        return ops.Relu.apply(self)

    def abs(self) -> Tensor:
        return ops.Abs.apply(self)

    def softplus(self) -> Tensor:
        """log(1 + eˣ), a smooth relu (torch.nn.functional.softplus)."""
        return ops.Softplus.apply(self)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        if min is None and max is None:
            raise ValueError("clip: give at least one of min and max")
        return ops.Clip.apply(self, low=min, high=max)

    clamp = clip

    def maximum(self, other: Any) -> Tensor:
        return ops.Maximum.apply(*self._operands(other, "maximum"))

    def minimum(self, other: Any) -> Tensor:
        return ops.Minimum.apply(*self._operands(other, "minimum"))

    def to(self, dtype: Any) -> Tensor:
        """This tensor in another dtype (differentiable; the gradient is cast back)."""
        target = _as_dtype(dtype)
        if target == self.dtype:
            return self
        if self.requires_grad and target not in FLOAT_DTYPES:
            raise TypeError(f"to: a tensor that requires grad can only become a float dtype, not {target}")
        return ops.Cast.apply(self, dtype=target)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    # --- reductions (axis/keepdims as numpy; dim/keepdim as torch) -------------------------------

    def sum(
        self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None
    ) -> Tensor:
        axis, keepdims = self._reduction_axes("sum", axis, keepdims, dim, keepdim)
        return ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(
        self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None
    ) -> Tensor:
        axis, keepdims = self._reduction_axes("mean", axis, keepdims, dim, keepdim)
        return ops.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(
        self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None
    ) -> Tensor:
        """The largest values (like numpy's max / torch.amax); the gradient of a slice is split evenly
        among its tied maxima, as torch.amax (min, too)."""
        axis, keepdims = self._reduction_axes("max", axis, keepdims, dim, keepdim)
        return ops.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(
        self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None
    ) -> Tensor:
        return -((-self).max(axis, keepdims, dim=dim, keepdim=keepdim))

    def logsumexp(
        self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: bool | None = None
    ) -> Tensor:
        """log Σ exp(x) over the axes, without overflow (torch.logsumexp)."""
        axis, keepdims = self._reduction_axes("logsumexp", axis, keepdims, dim, keepdim)
        return ops.LogSumExp.apply(self, axis=axis, keepdims=keepdims)

    def var(
        self,
        axis: Any = None,
        keepdims: bool = False,
        *,
        correction: int = 1,
        dim: Any = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Σ (x − mean)² / (n − correction); correction=1 is the unbiased estimate (torch's default)."""
        axis, keepdims = self._reduction_axes("var", axis, keepdims, dim, keepdim)
        centered = self - self.mean(axis, keepdims=True)
        count = ops.reduced_count(self.shape, axis) - correction
        if count <= 0:
            raise ValueError(
                f"var: {count + correction} values with correction={correction} leave no degrees of freedom"
            )
        return (centered * centered).sum(axis, keepdims) / count

    def argmax(self, axis: int | None = None) -> Tensor:
        return ops.ArgMax.apply(self, axis=axis)

    def _reduction_axes(
        self, op: str, axis: Any, keepdims: bool, dim: Any, keepdim: bool | None
    ) -> tuple[Any, bool]:
        if dim is not None:
            axis = dim
        if keepdim is not None:
            keepdims = keepdim
        if isinstance(axis, list):
            axis = tuple(axis)
        ndim = self.ndim or 1  # a 0-d tensor takes dim 0 or -1, as in torch
        for a in (axis,) if isinstance(axis, int | np.integer) else axis or ():
            if not -ndim <= a < ndim:
                raise ValueError(f"{op}: axis {a} is out of range for a tensor of shape {self.shape}")
        return (None if self.ndim == 0 else axis), bool(keepdims)

    def softmax(self, axis: int = -1, *, dim: int | None = None) -> Tensor:
        return ops.Softmax.apply(self, axis=self._one_axis("softmax", axis if dim is None else dim))

    def log_softmax(self, axis: int = -1, *, dim: int | None = None) -> Tensor:
        return ops.LogSoftmax.apply(self, axis=self._one_axis("log_softmax", axis if dim is None else dim))

    def _one_axis(self, op: str, axis: int) -> int:
        ndim = self._data.ndim or 1
        if type(axis) is int and 0 <= axis < ndim:  # the common case, checked cheaply
            return axis
        if not isinstance(axis, int | np.integer) or not -ndim <= axis < ndim:
            raise ValueError(f"{op}: axis {axis!r} is out of range for a tensor of shape {self.shape}")
        return int(axis) % ndim

    # --- shape and indexing ----------------------------------------------------------------------

    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        try:
            target = _reshaped(self.shape, tuple(int(n) for n in shape))
        except (ValueError, TypeError) as error:
            raise ValueError(f"reshape: cannot reshape {self.shape} into {shape}: {error}") from error
        return ops.Reshape.apply(self, shape=target)

    view = reshape

    def flatten(self) -> Tensor:
        return self.reshape(-1)

    def permute(self, *axes: Any) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], tuple | list):
            axes = tuple(axes[0])
        if len(axes) != self.ndim or sorted(a % self.ndim for a in axes) != list(range(self.ndim)):
            raise ValueError(f"permute: {axes} is not a permutation of the {self.ndim} axes of {self.shape}")
        return ops.Permute.apply(self, axes=tuple(a % self.ndim for a in axes))

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        """Swap two axes (torch's transpose(dim0, dim1)); with no arguments, the last two."""
        if self.ndim < 2:
            raise ValueError(f"transpose: needs at least 2 dimensions, got shape {self.shape}")
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self.permute(axes)

    @property
    def T(self) -> Tensor:  # noqa: N802
        return self.permute(tuple(reversed(range(self.ndim)))) if self.ndim > 1 else self

    def squeeze(self, axis: int | None = None, *, dim: int | None = None) -> Tensor:
        axis = axis if dim is None else dim
        if axis is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        axis = self._one_axis("squeeze", axis)
        if self.shape[axis] != 1:
            return self
        return self.reshape(self.shape[:axis] + self.shape[axis + 1 :])

    def unsqueeze(self, axis: int | None = None, *, dim: int | None = None) -> Tensor:
        axis = axis if dim is None else dim
        if (
            not isinstance(axis, int | np.integer)
            or isinstance(axis, bool | np.bool_)
            or not -self.ndim - 1 <= axis <= self.ndim
        ):
            raise ValueError(f"unsqueeze: axis {axis!r} is out of range for a tensor of shape {self.shape}")
        axis = int(axis) % (self.ndim + 1)
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def __getitem__(self, index: Any) -> Tensor:
        index = _raw_index(index)
        if type(index) is tuple and _mixes_integers_and_arrays(index):
            # torch selects with the integers first, then applies the arrays (numpy would treat the
            # integers as arrays too and may move the indexed axes to the front)
            selected = ops.GetItem.apply(self, index=_integers_only(index))
            return ops.GetItem.apply(selected, index=tuple(i for i in index if not _is_integer(i)))
        return ops.GetItem.apply(self, index=index)

    def split(
        self, split_size_or_sections: int | list[int], axis: int = 0, *, dim: int | None = None
    ) -> tuple[Tensor, ...]:
        """Pieces of `split_size` along `axis` (the last may be smaller), or of the listed sizes."""
        axis = self._one_axis("split", axis if dim is None else dim)
        length = self._data.shape[axis]
        if isinstance(split_size_or_sections, int | np.integer):
            step = int(split_size_or_sections)
            if step <= 0:
                raise ValueError(f"split: split_size must be positive, got {step}")
            # an empty axis gives one empty piece, as torch
            sizes = tuple([min(step, length - start) for start in range(0, length, step)]) or (0,)
        else:
            sizes = tuple([int(n) for n in split_size_or_sections])
            if sum(sizes) != length:
                raise ValueError(
                    f"split: sections {list(sizes)} do not add up to {length} (axis {axis} of {self.shape})"
                )
        return ops.Split.apply(self, sizes=sizes, axis=axis)

    def chunk(self, chunks: int, axis: int = 0, *, dim: int | None = None) -> tuple[Tensor, ...]:
        """`chunks` pieces of ceil(n / chunks) along `axis` (as torch.chunk)."""
        if chunks <= 0:
            raise ValueError(f"chunk: chunks must be positive, got {chunks}")
        axis = self._one_axis("chunk", axis if dim is None else dim)
        length = self._data.shape[axis]
        return self.split(-(-length // chunks) if length else [0] * chunks, axis)  # empty: `chunks` pieces

    def unbind(self, axis: int = 0, *, dim: int | None = None) -> tuple[Tensor, ...]:
        """The slices along `axis` (as torch.unbind): a sequence's time steps, with one stack as backward."""
        return ops.Unbind.apply(self, axis=self._one_axis("unbind", axis if dim is None else dim))

    def contiguous(self) -> Tensor:
        """This tensor as a C-ordered array (a copy only when it is not one): fast for matmul."""
        return self if self._data.flags.c_contiguous else ops.Contiguous.apply(self)

    def pad(self, pad_width: Any, value: float = 0.0) -> Tensor:
        """Constant padding, numpy style: ((before, after), ...) per axis, or one pair for all axes."""
        widths = np.asarray(pad_width, dtype=np.int64)
        widths = np.broadcast_to(widths.reshape(0, 2) if widths.size == 0 else widths, (self.ndim, 2))
        if (widths < 0).any():
            raise ValueError(f"pad: widths must be non-negative, got {pad_width}")
        return ops.Pad.apply(self, pad_width=tuple(map(tuple, widths.tolist())), value=value)

    # --- backward --------------------------------------------------------------------------------

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (seed `grad`, or 1 for a scalar)."""
        engine.backward(self.node, _seed(self, grad), retain_graph)


def _constant(value: Any, dtype: np.dtype | None) -> Tensor:
    """A constant operand: an ndarray is copied (an op may keep it for backward, and the caller may
    refill it), a scalar becomes a 0-d array. An array brought into a step being recorded keeps that
    step op by op: its values come from outside the recorded ops, a number is compared by value."""
    if isinstance(value, np.ndarray):
        outside_data("an array made outside the recorded ops was used")
        return Tensor._make(np.array(value, dtype=dtype), False, None, 0, None)
    return Tensor._make(np.asarray(value, dtype=dtype), False, None, 0, None)


def _reshaped(shape: tuple[int, ...], target: tuple[int, ...]) -> tuple[int, ...]:
    """`target` with its -1 (at most one) resolved, or ValueError if the sizes disagree."""
    size = int(np.prod(shape, dtype=np.int64))
    known = int(np.prod([n for n in target if n != -1], dtype=np.int64))
    if target.count(-1) > 1 or any(n < -1 for n in target):
        raise ValueError("at most one -1 and no other negative sizes")
    if -1 in target:
        if known == 0 or size % known:
            raise ValueError(f"{size} elements do not fill the known sizes ({known})")
        return tuple(size // known if n == -1 else n for n in target)
    if known != size:
        raise ValueError(f"{size} elements, {known} asked for")
    return target


def _raw_index(index: Any) -> Any:
    """Turn Tensors inside an index into ndarrays (reading their values: `.data`)."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _is_integer(item: Any) -> bool:
    return isinstance(item, int | np.integer) and not isinstance(item, bool | np.bool_)


def _is_array_index(item: Any) -> bool:
    return isinstance(item, list) or (isinstance(item, np.ndarray) and item.ndim > 0)


def _mixes_integers_and_arrays(index: tuple) -> bool:
    return any(_is_integer(i) for i in index) and any(_is_array_index(i) for i in index)


def _integers_only(index: tuple) -> tuple:
    """The index with its integers kept, every other axis taken whole (None dropped, Ellipsis kept)."""
    kept: list[Any] = []
    for item in index:
        if item is None:
            continue
        if _is_integer(item) or item is Ellipsis:
            kept.append(item)
        else:
            mask_axes = np.ndim(item) if np.asarray(item).dtype == np.bool_ else 1
            kept.extend([slice(None)] * mask_axes)
    return tuple(kept)


def _seed(root: Tensor, grad: Any) -> np.ndarray:
    if not root.requires_grad:
        raise ValueError(
            "backward: this tensor does not require grad (no input had requires_grad=True, "
            "it was computed under no_grad(), or it was detached)"
        )
    if grad is None:
        if root._data.size != 1:
            raise ValueError(
                f"backward: a tensor of shape {root.shape} is not a scalar; pass grad= of that shape "
                "(the gradient of the final loss with respect to it)"
            )
        return np.ones(root.shape, dtype=root.dtype)
    seed = grad._data if isinstance(grad, Tensor) else np.asarray(grad)
    if seed.shape != root.shape:
        raise ValueError(f"backward: grad has shape {seed.shape}, expected {root.shape} (the tensor's shape)")
    if seed.dtype != root.dtype:
        raise TypeError(f"backward: grad has dtype {seed.dtype}, expected {root.dtype} (the tensor's dtype)")
    return seed


def graph_nodes(roots: Iterable[Tensor]) -> list[Node]:
    """Every node reachable from the roots' nodes through `parents`, each once (no recursion)."""
    pending = [t.node for t in roots]
    seen = {id(n) for n in pending}
    found = []
    while pending:
        node = pending.pop()
        found.append(node)
        for parent in node.parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                pending.append(parent)
    return found


def tensors_of(values: Iterable[Any]) -> list[Tensor]:
    """Check that every item is a Tensor (for ops taking a list, like cat and stack)."""
    items = list(values)
    for i, item in enumerate(items):
        if not isinstance(item, Tensor):
            raise TypeError(f"expected a sequence of Tensors, item {i} is {type(item).__name__}")
    return items


# ops.py builds on Function above; the Tensor's methods look `ops` up when they are called.
from . import functions, ops  # noqa: E402
