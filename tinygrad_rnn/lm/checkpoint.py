"""Training checkpoints: everything needed to continue a run exactly, in one `.npz` without pickle.

The file holds plain arrays only: `model/<parameter name>`, `optimizer/<position>/<buffer>`,
`hidden/<k>` (the state carried between batches), `history/<curve>` and `vocab` (int32 code
points), plus `meta`, a JSON string (numpy unicode array) with the format, step, data position,
config, random generator states and the optimizer's numbers and options. It is read with
`np.load(..., allow_pickle=False)`, and written atomically: a temporary file in the same directory,
flushed and fsync'ed, then `os.replace`d over the target, so a crash leaves the old file intact.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..nn import Module
from ..optim.optimizer import Optimizer
from ..serialization import write_atomically
from .data import InputError, Vocabulary

FORMAT = "tinygrad_rnn.checkpoint/1"


class CheckpointError(InputError):
    """A checkpoint that is missing, unreadable, or does not fit the model or run it is loaded into."""


@dataclass
class Checkpoint:
    """A snapshot of a training run after `step` updates.

    model: parameter name -> array; optimizer: `Optimizer.state_dict()`; position: the next row of
    the training tracks (`data.Batches.position`); hidden: the carried state as arrays ([h] or
    [h, c] for an LSTM, [] when none) and hidden_tuple: whether the model's state is a tuple (a
    custom cell's state may be a tuple of one); rng: name -> `Generator.bit_generator.state`; history:
    name -> 1-D array (loss curves).
    """

    model: dict[str, np.ndarray]
    optimizer: dict[str, Any]
    vocab: Vocabulary
    step: int
    config: dict[str, Any]
    position: int = 0
    hidden: list[np.ndarray] = field(default_factory=list)
    hidden_tuple: bool = False
    rng: dict[str, Any] = field(default_factory=dict)
    history: dict[str, np.ndarray] = field(default_factory=dict)


def save(path: str | Path, checkpoint: Checkpoint) -> None:
    """Write `checkpoint` to `path` (created with its parent directories) atomically."""
    path = Path(path)
    arrays = _to_arrays(checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda f: np.savez(f, **arrays))


def check_writable(path: str | Path) -> None:
    """Refuse, before any work, a path `save` could not write: a directory, a path under a file, or one
    in a folder where no file can be created (tried with a temporary file, which is removed)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"the checkpoint path {path} is a directory; give a file name such as run.npz")
    folder = path.parent
    while not folder.exists():  # save() creates the missing folders in the nearest one that exists
        folder = folder.parent
    if not folder.is_dir():
        raise CheckpointError(f"cannot write the checkpoint {path}: {folder} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise CheckpointError(f"cannot write the checkpoint {path} in {folder}: {error.strerror}") from None


def load(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by `save`; CheckpointError if it is missing or not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):  # np.load would try pickle and talk of allow_pickle
        hint = (
            " (a .safetensors file holds weights only: read it with tg.load)"
            if path.suffix == ".safetensors"
            else ""
        )
        raise CheckpointError(
            f"{path} is not a readable checkpoint: not a .npz (zip) file as `tinygrad-rnn train` writes{hint}"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise CheckpointError(f"{path} is not a readable .npz checkpoint ({error})") from None
    if "meta" not in arrays or arrays["meta"].dtype.kind != "U":
        raise CheckpointError(f"{path} is not a tinygrad_rnn checkpoint (it has no 'meta' entry)")
    try:
        return _from_arrays(arrays)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"{path} is not a valid {FORMAT} checkpoint: {error}") from None


def restore(
    checkpoint: Checkpoint, model: Module, optimizer: Optimizer | None = None, source: str = "checkpoint"
) -> None:
    """Load the parameters into `model` and the state into `optimizer`, all or nothing.

    A checkpoint of another model shape, or whose weights hold nan or inf (a diverged run), raises
    CheckpointError naming the keys and shapes that differ; on any error the model and the optimizer
    are left as they were.
    """
    for name, array in checkpoint.model.items():
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise CheckpointError(
                f"{source}: {name} holds {non_finite(array)} (the run diverged): use an earlier checkpoint, "
                "or train again with a lower --lr or --clip"
            )
    before = model.state_dict()
    try:
        model.load_state_dict(checkpoint.model)
    except ValueError as error:
        detail = str(error).split(": ", 1)[-1]
        raise CheckpointError(f"{source} was saved from a model of another shape: {detail}") from None
    if optimizer is None:
        return
    try:
        optimizer.load_state_dict(checkpoint.optimizer)
    except ValueError as error:
        model.load_state_dict(before)
        raise CheckpointError(f"{source} does not fit the optimizer: {error}") from None


def non_finite(array: np.ndarray) -> str:
    """What a float array that is not all finite holds: 'nan' if any, else 'inf'."""
    return "nan" if np.isnan(array).any() else "inf"


def _to_arrays(checkpoint: Checkpoint) -> dict[str, np.ndarray]:
    arrays = {f"model/{name}": np.asarray(value) for name, value in checkpoint.model.items()}
    numbers: dict[str, dict[str, Any]] = {}
    for position, entries in checkpoint.optimizer["state"].items():
        for key, value in entries.items():
            if isinstance(value, np.ndarray):
                arrays[f"optimizer/{position}/{key}"] = value
            else:
                numbers.setdefault(str(position), {})[key] = value
    arrays.update({f"hidden/{k}": np.asarray(h) for k, h in enumerate(checkpoint.hidden)})
    arrays.update({f"history/{name}": np.asarray(curve) for name, curve in checkpoint.history.items()})
    arrays["vocab"] = checkpoint.vocab.to_array()
    meta = {
        "format": FORMAT,
        "step": int(checkpoint.step),
        "position": int(checkpoint.position),
        "hidden_tuple": bool(checkpoint.hidden_tuple),
        "config": checkpoint.config,
        "rng": checkpoint.rng,
        "optimizer": {"numbers": numbers, "param_groups": checkpoint.optimizer["param_groups"]},
    }
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def _from_arrays(arrays: dict[str, np.ndarray]) -> Checkpoint:
    meta = json.loads(str(arrays["meta"][()]))
    if not isinstance(meta, dict):
        raise ValueError(f"its metadata is a JSON {type(meta).__name__}, expected an object")
    if meta.get("format") != FORMAT:
        raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
    for key, kind in (("config", dict), ("rng", dict), ("optimizer", dict)):
        if not isinstance(meta.get(key), kind):
            raise ValueError(f"its metadata's {key!r} is {type(meta.get(key)).__name__}, expected an object")
    state: dict[int, dict[str, Any]] = {
        int(position): dict(numbers) for position, numbers in meta["optimizer"]["numbers"].items()
    }
    model, hidden, history = {}, {}, {}
    for name, array in arrays.items():
        kind, _, rest = name.partition("/")
        if kind == "model":
            model[rest] = array
        elif kind == "optimizer":
            position, _, key = rest.partition("/")
            state.setdefault(int(position), {})[key] = array
        elif kind == "hidden":
            hidden[int(rest)] = array
        elif kind == "history":
            history[rest] = array
    return Checkpoint(
        model=model,
        optimizer={"state": state, "param_groups": meta["optimizer"]["param_groups"]},
        vocab=Vocabulary.from_array(arrays["vocab"]),
        step=int(meta["step"]),
        config=meta["config"],
        position=int(meta["position"]),
        hidden=[hidden[k] for k in sorted(hidden)],
        hidden_tuple=bool(meta.get("hidden_tuple", len(hidden) > 1)),
        rng=meta["rng"],
        history=history,
    )
