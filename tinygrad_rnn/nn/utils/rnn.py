"""Packed sequences, as torch.nn.utils.rnn: a batch of different lengths stored without its padding.

A PackedSequence holds the valid steps time-major, longest sequence first: for each t, the rows
of the sequences with length > t, in decreasing order of length. With the lengths sorted
(ℓ_0 ≥ ℓ_1 ≥ …), `batch_sizes[t] = #{b : ℓ_b > t}` and step t of sorted sequence j is row
`Σ_{s<t} batch_sizes[s] + j` of `data` (Σ_t batch_sizes[t] = Σ_b ℓ_b rows in all).
`sorted_indices[j]` is the original batch index of sorted sequence j (None when the batch came
sorted) and `unsorted_indices` its inverse, so results come back in the caller's order.

Packing and unpacking are each one gather (integer indexing), so gradients flow through both.
Where torch would read past the end of the input (a length larger than the padded length), this
raises instead.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ...errors import ShapeError
from ...functions import stack
from ...tensor import Tensor


class PackedSequence(
    namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])
):
    """(data, batch_sizes, sorted_indices, unsorted_indices); made by `pack_padded_sequence` or
    `pack_sequence`. data: (Σ ℓ_b, *) Tensor; the rest int64 arrays (read-only); the indices are
    None for a batch packed already sorted. `unsorted_indices` defaults to sorted_indices' inverse.
    """

    __slots__ = ()

    def __new__(
        cls,
        data: Tensor,
        batch_sizes: Any,
        sorted_indices: Any = None,
        unsorted_indices: Any = None,
    ) -> PackedSequence:
        if not isinstance(data, Tensor) or data.ndim < 1:
            raise TypeError(f"PackedSequence: data must be a Tensor of at least 1 dimension, got {data!r}")
        batch_sizes = _owned_ints("PackedSequence", "batch_sizes", batch_sizes)
        if batch_sizes.size and (
            batch_sizes[0] < 1 or batch_sizes[-1] < 1 or (np.diff(batch_sizes) > 0).any()
        ):
            raise ValueError(
                f"PackedSequence: batch_sizes must be positive and non-increasing, got {batch_sizes}"
            )
        if batch_sizes.sum() != data.shape[0]:
            raise ShapeError(
                f"PackedSequence: batch_sizes sum to {batch_sizes.sum()}, but data has {data.shape[0]} rows"
            )
        batch = int(batch_sizes[0]) if batch_sizes.size else 0
        if sorted_indices is not None:
            sorted_indices = _permutation("sorted_indices", sorted_indices, batch)
        if unsorted_indices is not None:
            unsorted_indices = _permutation("unsorted_indices", unsorted_indices, batch)
        elif sorted_indices is not None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, dtype: Any) -> PackedSequence:
        """The same sequence with data converted (differentiably) to `dtype`."""
        return self._replace(data=self.data.to(dtype))

    def float(self) -> PackedSequence:
        return self.to(np.float32)

    def double(self) -> PackedSequence:
        return self.to(np.float64)

    @property
    def lengths(self) -> np.ndarray:
        """ℓ_b in the caller's batch order: ℓ_j = #{t : batch_sizes[t] > j} for sorted sequence j."""
        batch = int(self.batch_sizes[0]) if self.batch_sizes.size else 0
        by_rank = (self.batch_sizes[None, :] > np.arange(batch)[:, None]).sum(axis=1)
        return by_rank if self.unsorted_indices is None else by_rank[self.unsorted_indices]


def invert_permutation(permutation: np.ndarray | None) -> np.ndarray | None:
    """p⁻¹ with p⁻¹[p[j]] = j (None stays None)."""
    if permutation is None:
        return None
    inverse = np.empty_like(permutation)
    inverse[permutation] = np.arange(permutation.size, dtype=permutation.dtype)
    inverse.setflags(write=False)
    return inverse


def pad_sequence(
    sequences: Iterable[Tensor | np.ndarray],
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> Tensor:
    """Stack sequences of shapes (ℓ_b, *) into (T, N, *) (or (N, T, *) with batch_first), T = max ℓ_b,
    filling the missing steps with `padding_value` after each sequence (or before, padding_side="left").
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right', got {padding_side!r}")
    if not isinstance(sequences, Iterable):
        raise TypeError(f"pad_sequence: expected an iterable of sequences, got {type(sequences).__name__}")
    items = [_as_tensor("pad_sequence", s) for s in sequences]
    if not items:
        raise ShapeError("pad_sequence: expected a non-empty list of sequences, got an empty one")
    for i, s in enumerate(items):
        if s.ndim < 1 or s.shape[1:] != items[0].shape[1:]:
            raise ShapeError(
                f"pad_sequence: sequence {i} has shape {s.shape}, expected "
                f"(length, {_trail(items[0].shape)}) like sequence 0"
            )
    longest = max(s.shape[0] for s in items)
    padded = []
    for s in items:
        missing = longest - s.shape[0]
        steps = (0, missing) if padding_side == "right" else (missing, 0)
        padded.append(s.pad((steps,) + ((0, 0),) * (s.ndim - 1), value=padding_value))
    return stack(padded, axis=0 if batch_first else 1)


def pack_padded_sequence(
    input: Tensor | np.ndarray,
    lengths: Any,
    batch_first: bool = False,
    enforce_sorted: bool = True,
) -> PackedSequence:
    """Pack a padded batch (T, N, *) (or (N, T, *) with batch_first) of sequences of `lengths`.

    With enforce_sorted the lengths must be non-increasing (sorted_indices is then None);
    otherwise the batch is sorted by decreasing length (ties keep their order, as torch's sort).
    Lengths must be ≥ 1 and ≤ T (ShapeError, both ValueError and RuntimeError, otherwise).
    """
    x = _as_tensor("pack_padded_sequence", input)
    if x.ndim < 2:
        raise ShapeError(f"pack_padded_sequence: expected input of shape (T, N, *), got {x.shape}")
    steps, batch = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
    if batch == 0:
        raise ShapeError(
            f"pack_padded_sequence: cannot pack an empty tensor (N = 0 sequences), shape {x.shape}"
        )
    lengths = _lengths("pack_padded_sequence", lengths, batch, steps)
    if enforce_sorted:
        if (np.diff(lengths) > 0).any():
            raise ShapeError(
                "pack_padded_sequence: lengths must be sorted in decreasing order when enforce_sorted=True, "
                f"got {lengths.tolist()}. You can pass `enforce_sorted=False` to have the batch sorted"
            )
        sorted_indices = None
    else:
        sorted_indices = np.argsort(-lengths, kind="stable")
    return _pack(x, lengths, sorted_indices, batch_first)


def pack_sequence(sequences: Sequence[Tensor | np.ndarray], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences of shapes (ℓ_b, *): pad_sequence, then pack_padded_sequence."""
    items = [_as_tensor("pack_sequence", s) for s in sequences]
    lengths = [s.shape[0] if s.ndim else 0 for s in items]
    return pack_padded_sequence(pad_sequence(items), lengths, enforce_sorted=enforce_sorted)


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Tensor, np.ndarray]:
    """Undo packing: (padded (T, N, *) or (N, T, *), lengths (N,) int64), in the caller's batch order.

    T is the longest length, or `total_length` (ValueError if shorter than the longest sequence).
    """
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"pad_packed_sequence: expected a PackedSequence, got {type(sequence).__name__}")
    steps = sequence.batch_sizes.size
    if total_length is not None:
        if isinstance(total_length, bool) or not isinstance(total_length, int | np.integer):
            raise TypeError(f"pad_packed_sequence: total_length must be an int, got {total_length!r}")
        if total_length < steps:
            raise ValueError(
                "pad_packed_sequence: Expected total_length to be at least the length of the longest "
                f"sequence in input ({steps}), got total_length={total_length}"
            )
        steps = int(total_length)
    data = sequence.data
    rows = np.full((steps, _batch(sequence)), data.shape[0])  # a padded step reads the appended row
    time, rank = _valid_steps(sequence.batch_sizes)
    caller = rank if sequence.sorted_indices is None else sequence.sorted_indices[rank]
    rows[time, caller] = np.arange(data.shape[0])
    padded = data.pad(((0, 1),) + ((0, 0),) * (data.ndim - 1), value=padding_value)[
        rows.T if batch_first else rows
    ]
    return padded, sequence.lengths


def pack_like(padded: Tensor, like: PackedSequence, batch_first: bool = False) -> PackedSequence:
    """Pack `padded` (T, N, *) with the lengths and order of `like` (a layer's output, as its input)."""
    return _pack(padded, like.lengths, like.sorted_indices, batch_first)


def unpad_sequence(
    padded_sequences: Tensor | np.ndarray, lengths: Any, batch_first: bool = False
) -> list[Tensor]:
    """The list of sequences (ℓ_b, *) in a padded batch: the inverse of pad_sequence."""
    x = _as_tensor("unpad_sequence", padded_sequences)
    if x.ndim < 2:
        raise ShapeError(f"unpad_sequence: expected a padded batch of shape (T, N, *), got {x.shape}")
    steps, batch = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
    lengths = _lengths("unpad_sequence", lengths, batch, steps, at_least=0)
    return [x[b, :n] if batch_first else x[:n, b] for b, n in enumerate(lengths.tolist())]


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The list of sequences (ℓ_b, *) in a PackedSequence, in the caller's order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


def _pack(
    x: Tensor, lengths: np.ndarray, sorted_indices: np.ndarray | None, batch_first: bool
) -> PackedSequence:
    """Gather step t of sorted sequence j into row Σ_{s<t} batch_sizes[s] + j."""
    batch_sizes = (lengths[None, :] > np.arange(int(lengths.max()))[:, None]).sum(axis=1)
    time, rank = _valid_steps(batch_sizes)
    caller = rank if sorted_indices is None else sorted_indices[rank]
    data = x[(caller, time) if batch_first else (time, caller)]
    return PackedSequence(data, batch_sizes, sorted_indices)


def _valid_steps(batch_sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of data: its time step t and the rank j of its sequence in the sorted batch."""
    time = np.repeat(np.arange(batch_sizes.size), batch_sizes)
    starts = np.cumsum(batch_sizes) - batch_sizes
    return time, np.arange(time.size) - starts[time]


def _batch(sequence: PackedSequence) -> int:
    return int(sequence.batch_sizes[0]) if sequence.batch_sizes.size else 0


def _lengths(op: str, lengths: Any, batch: int, steps: int, at_least: int = 1) -> np.ndarray:
    """lengths as an int64 array of N values in [at_least, T] (ShapeError naming the problem)."""
    values = _ints(op, "lengths", lengths)
    if values.ndim != 1:
        raise ShapeError(f"{op}: expected lengths as a 1-D sequence of ints, got shape {values.shape}")
    if values.size != batch:
        raise ShapeError(f"{op}: expected {batch} lengths (one per sequence in the batch), got {values.size}")
    if values.size and values.min() < at_least:
        raise ShapeError(f"{op}: every length must be at least {at_least}, got lengths {values.tolist()}")
    if values.size and values.max() > steps:
        raise ShapeError(f"{op}: lengths {values.tolist()} exceed the padded length T = {steps}")
    return values


def _ints(op: str, name: str, values: Any) -> np.ndarray:
    """An int64 copy of integer values (whole floats accepted, as torch converts them)."""
    array = np.array(values.data if isinstance(values, Tensor) else values)
    if array.dtype.kind == "f" and np.array_equal(array, np.round(array)):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{op}: {name} must be integers, got {array.tolist()!r} ({array.dtype})")
    return array.astype(np.int64)


def _owned_ints(op: str, name: str, values: Any) -> np.ndarray:
    array = _ints(op, name, values)
    if array.ndim != 1:
        raise ShapeError(f"{op}: {name} must be 1-D, got shape {array.shape}")
    array.setflags(write=False)
    return array


def _permutation(name: str, values: Any, batch: int) -> np.ndarray:
    array = _owned_ints("PackedSequence", name, values)
    if array.size != batch or not np.array_equal(np.sort(array), np.arange(batch)):
        raise ValueError(
            f"PackedSequence: {name} must be a permutation of range({batch}), got {array.tolist()}"
        )
    return array


def _as_tensor(op: str, value: Any) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return Tensor(value)
    raise TypeError(f"{op}: expected a Tensor or ndarray, got {type(value).__name__}")


def _trail(shape: tuple[int, ...]) -> str:
    return ", ".join(map(str, shape[1:])) or "no more axes"
