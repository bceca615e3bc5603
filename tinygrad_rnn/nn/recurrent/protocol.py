"""The cell protocol: what any recurrent cell promises, and the check that it kept the promise.

A cell is an `nn.Module` following PyTorch's cell convention (torch.nn.LSTMCell & co.):

    new_state = cell(x_t, state)        x_t (N, D); state None at the first step, or what it returned

The state is a Tensor (N, H) or a tuple of them (an LSTM's (h, c)); given None, the cell makes its
own initial state (zeros, or a learned one). A cell may instead say it with a method
`initial_state(batch_size) -> state`, which the layer then calls once per forward pass. Either
way each sequence starts from it once (a shorter one in the reverse direction after its
padding). The step's output is the state, or its first element. A cell whose step is a function
of (x_t, state, parameters) alone may say so with `pure = True`, and is then replayed (purity.py).
`nn.LSTMCell` is such a cell, so is a user's peephole LSTM; `nn.Recurrent(cell, ...)` runs any of
them over time, layers and directions (layer.py).
"""

from __future__ import annotations

from typing import Any

from ...errors import ShapeError
from ...tensor import Tensor

State = Tensor | tuple[Tensor, ...]


def output_of(state: State) -> Tensor:
    """h_t: the state itself, or its first element; named 'h' unless the cell named it, so the pictures
    and the comparison report find each step's hidden state as they do the built-ins'."""
    h = state[0] if isinstance(state, tuple) else state
    if h.name is None:
        h.name = "h"
    return h


def describe(value: Any) -> str:
    """'a Tensor (4, 8)', 'a tuple of 2: Tensor (4, 8), Tensor (4, 9)', 'a list'."""
    if isinstance(value, Tensor):
        return f"a Tensor {value.shape}"
    if isinstance(value, tuple) and not value:
        return "an empty tuple"
    if isinstance(value, tuple):
        parts = ", ".join(f"Tensor {v.shape}" if isinstance(v, Tensor) else type(v).__name__ for v in value)
        return f"a tuple of {len(value)}: {parts}"
    return "None" if value is None else f"a {type(value).__name__}"


def check_step_state(
    owner: str, new: Any, previous: Any, batch: int, size: int, layer: int, reverse: bool, t: int
) -> None:
    """Refuse a state that breaks the protocol: not a Tensor or tuple of Tensors, a part not of shape
    (N, H), or a structure other than the state the cell was given."""
    parts = new if isinstance(new, tuple) else (new,)
    wrong_type = not parts or not all(isinstance(p, Tensor) for p in parts)
    wrong_shape = not wrong_type and any(p.shape != (batch, size) for p in parts)
    wrong_structure = previous is not None and (
        isinstance(new, tuple) != isinstance(previous, tuple)
        or (isinstance(new, tuple) and len(new) != len(previous))
    )
    if not (wrong_type or wrong_shape or wrong_structure):
        return
    where = f"layer {layer}{' reverse' if reverse else ''}, step t={t}"
    if wrong_structure and not wrong_type and not wrong_shape:
        raise ShapeError(
            f"{owner}: at {where} the cell returned {describe(new)} but was given {describe(previous)}; "
            "a cell must return its state in the structure it takes"
        )
    error = TypeError if wrong_type else ShapeError
    raise error(
        f"{owner}: at {where} the cell returned {describe(new)}; expected a Tensor (N, H) = "
        f"({batch}, {size}) or a tuple of them"
    )
