"""The one recurrence: steps run over time, layers and directions, with lengths, dropout and hx.

`RecurrentBase` owns everything around a step: checking the input and hx at the boundary, the
time-major layout inside ((T, N, ·); `batch_first` and unbatched inputs are reshaped at the edge),
the loop over layers and directions, padded steps (`lengths`), dropout between layers and the
shape of what comes back. A subclass says only how one layer-direction steps (`_direction`):
`Recurrent` (below) calls a cell that follows the protocol (protocol.py) once per step; `RNN`,
`LSTM` and `GRU` (rnn.py) run their optimised steps (steps.py).

Every step's ops are recorded under the scope ``<cell>.l<k>[r].t<t>`` (nn/scopes.py), which the
pictures and the comparison report read. Pure steps (purity.py: the built-in ones, a cell declaring
`pure = True`, or any cell with `compile=True`) run through `replay.Replayer`: once recorded, each
later step of a layer-direction is one replayed node; other steps run op by op.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from ...compile import BOOKKEEPING, compiled
from ...context import current_tape, scope
from ...errors import ShapeError
from ...factories import generator
from ...functions import cat, stack, where
from ...replay import Replayer, Step
from ...tensor import Tensor
from .. import functional as F
from ..module import Module
from ..scopes import DIRECTIONS, TimeDirection, check_cell_name, layer_scope, step_scope
from ..utils.rnn import PackedSequence, pack_like, pad_packed_sequence
from .checks import as_input, check_compile, check_dropout, check_flag, check_size
from .protocol import State, check_step_state, output_of
from .purity import declared_pure, python_state

Mask = np.ndarray | None
# the layer's attributes no step reads (its dropout generator, what it said, what compile keeps)
LAYER_BOOKKEEPING = BOOKKEEPING | {"_rng", "_refusals_said"}
StepCheck = Callable[[State, State | None, int], None]


class Direction(Protocol):
    """How one layer steps in one direction during one forward pass."""

    def inputs(self, x: Tensor) -> Sequence[Any]:
        """What each step t receives, from the layer's input x (T, N, D)."""

    def __call__(self, x_t: Any, state: State | None) -> State:
        """The state after one step."""

    def initial_state(self, batch: int) -> State | None:
        """The state before the first step when hx is not given (None: the step makes it itself)."""


class RecurrentBase(Module):
    """The shared machinery of Recurrent, RNN, LSTM and GRU: forward(input, hx=None, lengths=None).

    `state_names` says how hx is made: ("hx",) one Tensor, ("h_0", "c_0") a pair, None: as the
    cell's own state (a Tensor or a tuple). A subclass provides `_direction(layer, reverse)`.
    """

    state_names: tuple[str, ...] | None = None
    # True: the steps are pure, compiled once recorded ("replay": replayed, not compiled); False: op
    # by op; None: the cell's `pure`
    compile: bool | str | None = None

    @property
    def replay(self) -> bool | None:
        """`compile`'s earlier name."""
        return self.compile

    @replay.setter
    def replay(self, value: bool | None) -> None:
        self.compile = value

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        rng: np.random.Generator | int | None,
        cell_name: str,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.input_size = check_size(owner, "input_size", input_size)
        self.hidden_size = check_size(owner, "hidden_size", hidden_size)
        self.num_layers = check_size(owner, "num_layers", num_layers)
        self.batch_first = check_flag(owner, "batch_first", batch_first)
        self.bidirectional = check_flag(owner, "bidirectional", bidirectional)
        self.dropout = check_dropout(owner, dropout)
        self.cell_name = check_cell_name(cell_name)
        self._rng = generator(rng)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self._state_size(0) * self.num_directions  # h's width

    def _suffixes(self, layer: int) -> list[str]:
        """'_l0' and '_l0_reverse': the names of one layer's directions, as torch's parameters."""
        return [way.suffix(layer) for way in DIRECTIONS[: self.num_directions]]

    # --- what a subclass provides -------------------------------------------------------------------

    def _direction(self, layer: int, way: TimeDirection) -> Direction:
        raise NotImplementedError

    def _zero_state(self, batch: int) -> State | None:
        """The initial state when hx is not given (None: the cell makes its zeros)."""
        return None

    def _state_size(self, part: int) -> int:
        """The last dimension of part `part` of the state."""
        return self.hidden_size

    def _step_check(self, layer: int, way: TimeDirection, batch: int) -> StepCheck | None:
        """A check of each state a step returns (None: the steps are trusted)."""
        return None

    # --- checking what comes in ----------------------------------------------------------------------

    def _check_input(self, input: Any) -> tuple[Tensor, bool]:
        """The input as a time-major (T, N, D) Tensor, and whether it came batched."""
        owner = type(self).__name__
        x = as_input(owner, input, self.dtype)
        if x.ndim not in (2, 3):
            layout = "(N, T, D)" if self.batch_first else "(T, N, D)"
            raise ShapeError(
                f"{owner}: expected a 3-D {layout} or an unbatched 2-D (T, D) input, got shape {x.shape}"
            )
        if x.shape[-1] != self.input_size:
            raise ShapeError(
                f"{owner}: expected input of width {self.input_size} (input_size) in the last dimension, "
                f"got shape {x.shape}"
            )
        batched = x.ndim == 3
        x = (x.transpose(0, 1) if self.batch_first else x) if batched else x.unsqueeze(1)
        if x.shape[0] == 0:
            raise ShapeError(f"{owner}: expected a sequence of at least one step, got shape {x.shape}")
        return x, batched

    def _initial_states(self, hx: Any, batch: int, batched: bool) -> list[State | None]:
        """One initial state per layer and direction, from hx whose parts are (L·dirs, N, H)."""
        rows = self.num_layers * self.num_directions
        if hx is None:
            return [self._zero_state(batch)] * rows
        labels = self._hx_labels(hx)
        values = hx if isinstance(hx, tuple | list) else (hx,)
        parts = [
            self._check_hx_part(v, label, batch, batched, self._state_size(k)).unbind(0)
            for k, (v, label) in enumerate(zip(values, labels, strict=True))
        ]
        if isinstance(hx, tuple | list):
            return [tuple(part[row] for part in parts) for row in range(rows)]
        return list(parts[0])

    def _hx_labels(self, hx: Any) -> tuple[str, ...]:
        """The names of hx's parts, once its structure is checked against `state_names`."""
        owner, names = type(self).__name__, self.state_names
        is_tuple = isinstance(hx, tuple | list)
        if names is None:
            if is_tuple and not hx:
                raise ShapeError(
                    f"{owner}: expected hx as a Tensor or a tuple of Tensors, got an empty tuple"
                )
            return tuple(f"hx[{k}]" for k in range(len(hx))) if is_tuple else ("hx",)
        if len(names) == 1 and is_tuple:
            raise ShapeError(f"{owner}: expected hx as one Tensor, got a {type(hx).__name__}")
        if len(names) > 1 and (not is_tuple or len(hx) != len(names)):
            given = f"a {type(hx).__name__} of {len(hx)}" if is_tuple else f"a {type(hx).__name__}"
            raise ShapeError(f"{owner}: expected hx = ({', '.join(names)}), got {given}")
        return names

    def _check_hx_part(self, value: Any, label: str, batch: int, batched: bool, size: int) -> Tensor:
        owner = type(self).__name__
        rows = self.num_layers * self.num_directions
        expected = (rows, batch, size) if batched else (rows, size)
        state = as_input(owner, value, self.dtype, integers=self.state_names is None)
        if state.shape != expected:
            raise ShapeError(f"{owner}: expected {label} of shape {expected}, got {state.shape}")
        return state if batched else state.unsqueeze(1)

    def _step_masks(self, lengths: Any, steps: int, batch: int, batched: bool) -> list[Mask]:
        """For each step t, an (N, 1) mask of the sequences still running (None when all are).
        The masks are computed here from a copy: refilling the caller's array changes nothing."""
        if lengths is None:
            return [None] * steps
        owner = type(self).__name__
        if not batched:
            raise ShapeError(
                f"{owner}: lengths need a batched input; an unbatched input is one full sequence"
            )
        lengths = np.array(lengths.data if isinstance(lengths, Tensor) else lengths)
        if lengths.shape != (batch,) or (lengths.dtype.kind not in "iu" and lengths.size):
            raise ShapeError(
                f"{owner}: expected lengths as {batch} integers (one per sequence), got {lengths.dtype} of "
                f"shape {lengths.shape}"
            )
        if batch == 0:
            return [None] * steps
        if lengths.min() < 1 or lengths.max() > steps:
            raise ShapeError(
                f"{owner}: every length must be in 1..{steps} (the number of time steps), "
                f"got {lengths.tolist()}"
            )
        shortest = lengths.min()
        return [None if t < shortest else (lengths > t)[:, None] for t in range(steps)]

    # --- the recurrence ------------------------------------------------------------------------------

    def forward(self, input: Any, hx: Any = None, lengths: Any = None) -> tuple[Tensor, Any]:
        """output (T, N, dirs·H) (or (N, T, ·) with batch_first, or (T, dirs·H) unbatched), and h_n in
        the state's structure, each part (L·dirs, N, H): (h_n, c_n) for LSTM. With `lengths`, padded
        steps leave the state alone and output zeros; h_n is each sequence's last valid state.
        A PackedSequence in gives one out (h_n in the caller's batch order, as torch)."""
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx, lengths)
        x, batched = self._check_input(input)
        steps, batch = x.shape[0], x.shape[1]
        masks = self._step_masks(lengths, steps, batch, batched)
        initial = self._initial_states(hx, batch, batched)
        finals: list[State] = []
        for layer in range(self.num_layers):
            outputs = []
            for way in DIRECTIONS[: self.num_directions]:
                out, final = self._run_direction(layer, way, x, initial[len(finals)], masks)
                outputs.append(out)
                finals.append(final)
            x = outputs[0] if len(outputs) == 1 else cat(outputs, axis=2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True, rng=self._rng)
        return self._shape_output(x, finals, batched)

    def _forward_packed(self, packed: PackedSequence, hx: Any, lengths: Any) -> tuple[PackedSequence, Any]:
        """Unpack to a padded batch with lengths, run it, pack the output as the input was packed."""
        if lengths is not None:
            raise TypeError(f"{type(self).__name__}: a PackedSequence carries its lengths; got lengths= too")
        padded, lengths = pad_packed_sequence(packed, self.batch_first)
        output, h_n = self.forward(padded, hx, lengths)
        return pack_like(output, packed, self.batch_first), h_n

    def _run_direction(
        self, layer: int, way: TimeDirection, x: Tensor, state: State | None, masks: list[Mask]
    ) -> tuple[Tensor, State]:
        """One layer in one direction over the whole sequence: outputs (T, N, H) and the final state.

        Without hx the direction's own initial state is used, once per sequence: a sequence that
        starts later than others (the reverse direction of a shorter one) starts from it too."""
        label = layer_scope(self.cell_name, layer, way)
        steps, batch = x.shape[0], x.shape[1]
        direction = self._direction(layer, way)
        check = self._step_check(layer, way, batch)
        with scope(label):
            inputs = direction.inputs(x)
            if state is None:
                state = direction.initial_state(batch)

        # inside a recording (a step of an outer loop being recorded, viz.keep_values) the steps run op
        # by op: the recording sees every op, and an inner fast path would hide them
        step = direction if current_tape.get() is not None else self._fast_path(direction, label)
        # without hx each sequence begins from what the step makes of None; track who has begun
        waiting = np.ones((batch, 1), dtype=bool) if state is None else None
        outputs: list[Tensor | None] = [None] * steps
        order = list(way.order(steps))
        rest = getattr(step, "rest", None)  # a compiled step runs the steps left as one node
        unmasked = _unmasked_from(masks, order)
        for i, t in enumerate(order):
            if rest is not None and i >= unmasked and waiting is None:
                states = rest(
                    [inputs[u] for u in order[i:]], state, [step_scope(label, u) for u in order[i:]]
                )
                if states is not None:  # the compiled steps' states have the signature checked before
                    for u, new_state in zip(order[i:], states, strict=True):
                        outputs[u] = output_of(new_state)
                    state = states[-1]
                    break
            with scope(step_scope(label, t)):
                valid = masks[t]  # (N, 1), None when every sequence runs at t
                begin = None if waiting is None or state is None else _beginning(waiting, valid)
                if begin is not None:  # later starters (the reverse direction of shorter sequences)
                    new_state = _keep_finished(begin, step(inputs[t], None), step(inputs[t], state))
                else:
                    new_state = step(inputs[t], state)
                if check is not None:
                    check(new_state, state, t)
                if valid is None:
                    outputs[t], state = output_of(new_state), new_state
                else:
                    outputs[t] = where(valid, output_of(new_state), 0.0)
                    state = new_state if state is None else _keep_finished(valid, new_state, state)
                if waiting is not None:
                    waiting = None if valid is None else waiting & ~valid
                    waiting = waiting if waiting is not None and waiting.any() else None
        return stack(outputs), state

    def _fast_path(self, direction: Direction, label: str) -> Step:
        """The step, compiled (or replayed, with compile="replay") once recorded where it is pure (the
        built-in steps are), else itself."""
        if self.compile is False:
            return direction
        if self.compile == "replay":
            return Replayer(direction)
        state = python_state([self], versions=False, skip=LAYER_BOOKKEEPING)
        return compiled(self, label, direction, state, self.parameters())

    def _warn_once(self, reason: str) -> None:
        """A declared-pure step refused replay: say why, once per layer and reason."""
        said = self.__dict__.setdefault("_refusals_said", set())
        if reason not in said:
            said.add(reason)
            warnings.warn(
                f"{type(self).__name__}({self.cell_name}): the steps run op by op, not replayed: {reason}. "
                "A step declared pure (compile=True or the cell's `pure = True`) must be a function of "
                "(x_t, state, parameters) alone; compile=False runs it op by op without this warning",
                RuntimeWarning,
                stacklevel=4,
            )

    def _shape_output(self, x: Tensor, finals: list[State], batched: bool) -> tuple[Tensor, Any]:
        first = finals[0]
        if isinstance(first, tuple):
            if any(not isinstance(f, tuple) or len(f) != len(first) for f in finals):
                raise ShapeError(
                    f"{type(self).__name__}: the cells returned final states of different structures"
                )
            h_n: Any = tuple(stack(list(parts)) for parts in zip(*finals, strict=True))
        else:
            if any(isinstance(f, tuple) for f in finals):
                raise ShapeError(
                    f"{type(self).__name__}: the cells returned final states of different structures"
                )
            h_n = stack(finals)
        if not batched:
            x = x.squeeze(1)
            h_n = tuple(h.squeeze(1) for h in h_n) if isinstance(h_n, tuple) else h_n.squeeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        return x, h_n

    def _extra_options(self) -> str:
        """', batch_first=True, dropout=0.5, bidirectional=True' (those not at their defaults)."""
        text = ""
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


def _unmasked_from(masks: list[Mask], order: list[int]) -> int:
    """The first position in `order` from which every step runs all sequences (no mask)."""
    position = len(order)
    while position > 0 and masks[order[position - 1]] is None:
        position -= 1
    return position


def _beginning(waiting: np.ndarray, valid: Mask) -> Mask:
    """The sequences that take their first step now (None when none does)."""
    begin = waiting if valid is None else waiting & valid
    return begin if begin.any() else None


def _keep_finished(mask: np.ndarray, new: State, old: State) -> State:
    """Rows where `mask` holds take the new state, the others keep the old one (each part its dtype)."""
    if isinstance(new, tuple):
        return tuple(where(mask, n, o) for n, o in zip(new, old, strict=True))
    return where(mask, new, old)


class _CellDirection:
    """A cell called once per step on that step's slice of the input."""

    def __init__(self, cell: Module) -> None:
        self.cell = cell

    @staticmethod
    def inputs(x: Tensor) -> Sequence[Tensor]:
        return x.unbind(0)

    def __call__(self, x_t: Tensor, state: State | None) -> State:
        return self.cell(x_t, state)

    def initial_state(self, batch: int) -> State | None:
        """The cell's `initial_state(batch)` if it has one; else None, which it turns into its own."""
        make = getattr(self.cell, "initial_state", None)
        return make(batch) if make is not None else None


class Recurrent(RecurrentBase):
    """Any cell run over time, layers and directions: the generic layer (Keras' RNN(cell), Flax's RNN).

    `cell(layer_input_size, hidden_size, **cell_kwargs)` makes one cell per layer and direction,
    registered as `cell_l{k}` and `cell_l{k}_reverse` (parameters `cell_l0.weight_ih`, ...). A cell
    follows torch's convention (protocol.py): `forward(x_t, state=None) -> new_state`, the state a
    Tensor (N, H) or a tuple of them, None at the first step without hx. forward(x, hx=None,
    lengths=None) returns output (T, N, dirs·H) and h_n in the cell's state structure, each part
    (L·dirs, N, H). Steps are recorded under ``<name>.l<k>[r].t<t>``, name defaulting to the cell's
    class name. An int `rng` in cell_kwargs becomes one Generator shared by all cells (each layer
    draws its own weights) and by dropout between layers.

    A pure cell's steps are replayed (replay.py): once two consecutive steps record the same ops,
    later steps run them as one op each, with the same results. `compile=True` declares the cell's
    steps pure, `compile=False` runs them op by op, and the default takes the class's `pure`
    attribute (purity.py: what a declaration promises, what is checked, what cannot be);
    `replay=` is compile's earlier name.
    """

    def __init__(
        self,
        cell: Callable[..., Module],
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = False,
        dropout: float = 0.0,
        name: str | None = None,
        compile: bool | None = None,  # noqa: A002  (torch.compile's word for the same promise)
        replay: bool | None = None,
        **cell_kwargs: Any,
    ) -> None:
        if isinstance(cell, Module) or not callable(cell):
            raise TypeError(
                "Recurrent: cell must be a cell class (or a function making a cell), called once per "
                f"layer and direction; got {'an instance of ' if isinstance(cell, Module) else ''}"
                f"{type(cell).__name__}"
            )
        if name is not None:
            check_cell_name(name)
        if "rng" in cell_kwargs:
            cell_kwargs["rng"] = generator(cell_kwargs["rng"])
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            batch_first,
            dropout,
            bidirectional,
            cell_kwargs.get("rng"),
            name or "cell",
        )
        self.cell = cell
        self.compile = check_compile("Recurrent", compile, replay)
        for layer in range(self.num_layers):
            for suffix in self._suffixes(layer):
                made = cell(self._layer_input_size(layer), self.hidden_size, **cell_kwargs)
                if not isinstance(made, Module):
                    raise TypeError(
                        f"Recurrent: the cell made a {type(made).__name__}, expected an nn.Module"
                    )
                setattr(self, f"cell{suffix}", made)
        self.cell_name = check_cell_name(name or type(self.cell_at(0)).__name__)

    def cell_at(self, layer: int, way: TimeDirection = TimeDirection.FORWARD) -> Module:
        """The cell of one layer-direction (the module `cell_l{layer}[_reverse]`)."""
        return getattr(self, f"cell{way.suffix(layer)}")

    def _direction(self, layer: int, way: TimeDirection) -> _CellDirection:
        return _CellDirection(self.cell_at(layer, way))

    def _fast_path(self, direction: _CellDirection, label: str) -> Step:  # type: ignore[override]
        """Compiled (or replayed) only when declared pure, and refused (with a warning) where a guard
        sees otherwise."""
        cell = direction.cell
        if not declared_pure(cell, self.compile):
            return direction
        guard = lambda: python_state([cell])  # noqa: E731
        if self.compile == "replay":
            return Replayer(direction, guard, self._warn_once)
        state = python_state([cell], versions=False)
        return compiled(self, label, direction, state, cell.parameters(), guard, self._warn_once)

    def _step_check(self, layer: int, way: TimeDirection, batch: int) -> StepCheck:
        owner = f"Recurrent({self.cell_name})"

        def check(new: State, previous: State | None, t: int) -> None:
            check_step_state(owner, new, previous, batch, self.hidden_size, layer, way, t)

        return check

    def extra_repr(self) -> str:
        text = f"{self.cell_name}, {self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        return text + self._extra_options()
