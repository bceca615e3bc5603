"""What every command shares on its command line: a parser whose mistakes are one line on stderr with
exit code 2, and argument types that refuse values no command can use (a zero count, an infinite rate,
a picture in a folder that does not exist) before any work starts."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np

from ..lm.data import InputError


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported as one line (`tinygrad-rnn graph: error: ...`) and exit code 2.

    Subcommand parsers are made of the same class (argparse's default), so this holds for each of them.
    `commands` maps each subcommand's name to its parser (set where they are added).
    """

    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(text: str, kind: type, what: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def positive_int(text: str) -> int:
    """An int ≥ 1 (sizes, steps, counts)."""
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def count(text: str) -> int:
    """An int ≥ 0."""
    value = _number(text, int, "an integer ≥ 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0 (rates, norms, temperatures)."""
    value = _number(text, float, "a positive number")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A float in [0, 1) (dropout)."""
    value = _number(text, float, "a number in [0, 1)")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def output_file(formats: Sequence[str], aliases: dict[str, str] | None = None) -> Callable[[str], Path]:
    """A type for a file to write: its suffix one of `formats` (or an alias of one), its folder an
    existing, writable directory."""
    known = {*formats, *(aliases or {})}

    def parse(text: str) -> Path:
        path = Path(text)
        suffix = path.suffix.lstrip(".").lower()
        if suffix not in known:
            raise argparse.ArgumentTypeError(
                f"expected a file ending in .{', .'.join(formats)}, got {text!r}"
            )
        writable_folder(path)
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} is a directory, expected a file to write")
        return path

    return parse


def writable_folder(path: Path) -> None:
    """Refuse `path` when its folder is missing, is a file, or cannot be written to."""
    folder = path.parent
    if not folder.exists():
        raise argparse.ArgumentTypeError(f"the folder {str(folder)!r} of {str(path)!r} does not exist")
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{str(folder)!r} (the folder of {str(path)!r}) is a file")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"the folder {str(folder)!r} of {str(path)!r} is not writable")


def add_shape_options(
    p: argparse.ArgumentParser, *, seq_len: int, batch_size: int, input_size: int, hidden_size: int
) -> None:
    """The network's shape, under PyTorch's names (the older --steps, --batch, --layers accepted)."""
    p.add_argument(
        "--num-layers", "--layers", type=positive_int, default=1, metavar="L", help="L (default 1)"
    )
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--batch-first", action="store_true", help="x is (N, T, D)")
    p.add_argument(
        "--seq-len", "--steps", type=positive_int, default=seq_len, metavar="T", help=f"T (default {seq_len})"
    )
    p.add_argument(
        "--batch-size",
        "--batch",
        type=positive_int,
        default=batch_size,
        metavar="N",
        help=f"N (default {batch_size})",
    )
    p.add_argument(
        "--input-size", type=positive_int, default=input_size, metavar="D", help=f"D (default {input_size})"
    )
    p.add_argument(
        "--hidden-size",
        "--hidden",
        type=positive_int,
        default=hidden_size,
        metavar="H",
        help=f"H (default {hidden_size})",
    )


def parse_lengths(text: str | None, steps: int, batch: int, rng: np.random.Generator) -> np.ndarray | None:
    """--lengths as an array of N lengths in 1..T: "5,3,2", or "random" (each uniform in 1..T), or None."""
    if text is None:
        return None
    if text == "random":
        return rng.integers(1, steps + 1, size=batch)
    try:
        lengths = np.array([int(part) for part in text.split(",")])
    except ValueError:
        raise InputError(f'--lengths: expected integers like "5,3,2" or "random", got {text!r}') from None
    if len(lengths) != batch or not ((lengths >= 1) & (lengths <= steps)).all():
        raise InputError(
            f"--lengths: expected {batch} lengths (one per sequence) in 1..{steps}, got {text!r}"
        )
    return lengths
