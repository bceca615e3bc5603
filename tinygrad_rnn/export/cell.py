"""A cell's recorded steps as a PyTorch `nn.Module`: its parameters under their own names, one line
per recorded op, and above each group of lines the line of the cell's source that made them.

A cell is recorded twice (recording.py): the first step (`state=None`, the cell makes its own
state) and a later step (the state it returned). The weights a step reads are matched to the cell's
`named_parameters()` by identity; other tensors it reads are constants: a scalar is written as a
literal, an array as a buffer that is not saved (`persistent=False`), so the file's `state_dict()`
holds the parameters only, under our names.

The batch. A step is recorded at a batch size `n` chosen to differ from every other size, so that
what depends on it is seen: a reshape's size equal to `n` is written `n = x.shape[0]`, a constant
whose first axis is `n` becomes `torch.full` (all its values equal) or its one row expanded (all
rows equal). A constant that depends on the batch otherwise is refused, unless `batch_size` was given:
then the file is made for that batch size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..nn.module import Module
from ..replay import Program
from ..tensor import Tensor
from . import torch_ops
from .recording import ExportError, Recording, record_step

INDENT = " " * 8


@dataclass
class _Body:
    """What a generated method collects: its lines, and the buffers and batch size it used."""

    owner: str
    n: int
    dtype: np.dtype
    fixed_batch: bool
    buffers: dict[str, np.ndarray]
    lines: list[str] = field(default_factory=list)
    uses_n: bool = False
    count: int = 0  # the variables t0, t1, ... made so far

    def variable(self) -> str:
        self.count += 1
        return f"t{self.count - 1}"

    def constant(self, array: np.ndarray, hint: str) -> str:
        """An array constant as text: a buffer, or made from the batch size (see the module docstring)."""
        if array.ndim and array.shape[0] == self.n and not self.fixed_batch:
            shape = ", ".join(["n", *(str(d) for d in array.shape[1:])])
            flat = array.reshape(self.n, -1)
            if array.size and np.all(flat == flat.flat[0]):
                value, dtype = torch_ops.literal(flat.flat[0]), torch_ops.dtype_text(array.dtype)
                made = f"torch.full(({shape}), {value}, dtype={dtype}, device=x.device)"
                if value == "0.0" and array.dtype == self.dtype:
                    made = f"x.new_zeros(({shape}))"
            elif flat.size and np.all(flat == flat[:1]):
                made = f"{self._buffer(array[:1], hint)}.expand({shape})"
            else:
                raise ExportError(
                    f"{self.owner}: a constant {hint} of shape {array.shape} depends on the batch size "
                    f"(its first axis is the batch, {self.n}, and its rows differ); export with "
                    "batch_size= to make the file for one batch size"
                )
            self.uses_n = True
            name = self.variable()
            self.lines.append(f"{INDENT}{name} = {made}  # a constant of the batch's size")
            return name
        return self._buffer(array, hint)

    def _buffer(self, array: np.ndarray, hint: str) -> str:
        for name, known in self.buffers.items():
            if known.dtype == array.dtype and known.shape == array.shape and np.array_equal(known, array):
                return f"self.{name}"
        name = f"{hint}{sum(k.startswith(hint) for k in self.buffers)}"
        self.buffers[name] = np.array(array)
        return f"self.{name}"

    def batch_shape(self, shape: tuple[int, ...], source: tuple[int, ...]) -> str:
        """A reshape's target: the batch written `n`, or -1 for a size that holds the batch folded in."""
        sizes = [str(d) for d in shape]
        if self.fixed_batch:
            pass
        elif self.n in shape:
            sizes[shape.index(self.n)] = "n"
            self.uses_n = True
        elif any(d and d % self.n == 0 for d in source):  # the batch is folded into a size: let torch find it
            at = next((k for k, d in enumerate(shape) if d and d % self.n == 0), None)
            if at is not None:
                sizes[at] = "-1"
        return "(" + ", ".join(sizes) + ("," if len(sizes) == 1 else "") + ")"


def _parameter_names(cell: Module) -> dict[int, str]:
    return {id(p): name for name, p in cell.named_parameters()}


def _write(recording: Recording, body: _Body, params: dict[int, str], names: list[str]) -> list[str]:
    """The lines of one recorded step, reading its inputs from the variables `names`; the returned
    texts name the step's outputs."""
    program: Program = recording.program
    text: list[str | None] = [None] * len(program.slots)
    scalar = [False] * len(program.slots)
    text[: len(names)] = names
    for k, t in enumerate(program.captured):
        slot = len(names) + k
        if id(t) in params:
            text[slot] = f"self.{params[id(t)]}"
        elif t.requires_grad:
            raise ExportError(
                f"{body.owner}: the step reads a tensor of shape {t.shape} that needs a gradient but is "
                "not one of the cell's parameters; make it a Parameter of the cell"
            )
        elif t.ndim == 0:
            text[slot], scalar[slot] = torch_ops.literal(t.data[()]), True
        else:
            text[slot] = body.constant(t.data, "const")
    source = None
    for op, line in zip(program.ops, recording.lines, strict=True):
        if line and line != source:
            body.lines.append(f"{INDENT}# {line}")
        source = line
        call = torch_ops.Call(
            operands=[text[s] for s in op.inputs],  # type: ignore[misc]
            scalars=[scalar[s] for s in op.inputs],
            options=op.options,
            shapes=[program.slots[s].shape for s in op.inputs],
            out_shape=program.slots[op.outputs[0]].shape,
            out_dtype=program.slots[op.outputs[0]].dtype,
            constant=body.constant,
            batch_shape=body.batch_shape,
        )
        try:
            right = torch_ops.expression(op.function, call)
        except ExportError as error:
            raise ExportError(f"{body.owner}: {error}" + (f" (at {line})" if line else "")) from None
        targets = []
        for s in op.outputs:
            text[s] = body.variable()
            targets.append(text[s])
        body.lines.append(f"{INDENT}{_unpacked(targets, op.function.multi_output)} = {right}")
    outs = [text[s] for s in program.outputs]
    return outs if program.structure else outs[:1]


def _state_names(state: Any) -> list[str]:
    if isinstance(state, tuple):
        return [f"s{k}" for k in range(len(state))]
    return ["h"]


def _unpacked(names: list[str], structure: bool) -> str:
    """'a' for one tensor, 'a, b' (or 'a,') for a tuple of them."""
    return ", ".join(names) + ("," if len(names) == 1 else "") if structure else names[0]


def cell_source(cell: Module, class_name: str, input_size: int, batch: int, fixed_batch: bool) -> str:
    """The source of a torch `nn.Module` class named `class_name` computing `cell`'s step, recorded on
    an input (batch, input_size) of the cell's dtype."""
    owner = type(cell).__name__
    params = _parameter_names(cell)
    if not params:
        raise ExportError(f"{owner}: the cell has no parameters")
    dtype = next(iter(cell.parameters())).dtype
    rng = np.random.default_rng(0)

    def drawn(shape: tuple[int, ...], dtype: np.dtype) -> Tensor:
        return Tensor(rng.uniform(-0.9, 0.9, shape).astype(dtype), requires_grad=True)

    xs = [drawn((batch, input_size), dtype) for _ in range(2)]
    first = record_step(cell, owner, [(x, None) for x in xs])
    made = first.program
    states = [[drawn(made.slots[s].shape, made.slots[s].dtype) for s in made.outputs] for _ in range(2)]
    state = tuple(states[0]) if made.structure else states[0][0]
    later = record_step(
        cell, owner, [(x, tuple(s) if made.structure else s[0]) for x, s in zip(xs, states, strict=True)]
    )

    body = _Body(owner, batch, dtype, fixed_batch, {})
    body.lines.append(f"{INDENT}if state is None:  # the first step: the cell makes its state")
    first_body = _Body(owner, batch, dtype, fixed_batch, body.buffers)
    outs = _write(first, first_body, params, ["x"])
    body.lines += [INDENT + "    " + line[len(INDENT) :] for line in first_body.lines]
    body.lines.append(f"{INDENT}    return {_unpacked(outs, made.structure)}")
    names = _state_names(state)
    body.lines.append(f"{INDENT}{_unpacked(names, isinstance(state, tuple))} = state")
    outs = _write(later, body, params, ["x", *names])
    body.lines.append(f"{INDENT}return {_unpacked(outs, later.program.structure)}")
    uses_n = body.uses_n or first_body.uses_n

    lines = [
        f"class {class_name}(nn.Module):",
        f'    """{owner}, one step: forward(x (N, {input_size}), state=None) -> the new state."""',
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
    ]
    holders = set()
    for name, p in cell.named_parameters(remove_duplicate=False):
        parts = name.split(".")
        for k in range(1, len(parts)):  # a parameter of a submodule: a plain Module holds it
            holder = ".".join(parts[:k])
            if holder not in holders:
                holders.add(holder)
                lines.append(f"        self.{holder} = nn.Module()")
        if params[id(p)] != name:  # tied: the same Parameter under a second name, as torch lists it
            lines.append(f"        self.{name} = self.{params[id(p)]}")
        else:
            zeros = f"torch.zeros({tuple(p.shape)}, dtype={torch_ops.dtype_text(p.dtype)})"
            lines.append(f"        self.{name} = nn.Parameter({zeros})")
    for name, array in body.buffers.items():
        values = repr(array.tolist())
        for word in ("inf", "nan"):
            values = values.replace(word, f'float("{word}")')
        tensor = f"torch.tensor({values}, dtype={torch_ops.dtype_text(array.dtype)})"
        lines.append(f'        self.register_buffer("{name}", {tensor}, persistent=False)')
    lines += ["", "    def forward(self, x, state=None):"]
    if uses_n:
        lines.append(f"{INDENT}n = x.shape[0]  # the batch")
    return "\n".join(lines + body.lines) + "\n"
