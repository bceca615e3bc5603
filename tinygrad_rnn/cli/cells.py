"""`--cell` for the commands: a built-in (rnn, lstm, gru) or your own cell class, path/to/file.py:ClassName.

The form is checked when the command line is read (a mistake is one line, exit code 2); the file is
imported when the model is built (`lm.cells.resolve_cell`), where a missing file or class is one line
too.
"""

from __future__ import annotations

import argparse

from ..lm.cells import SPEC, is_cell_file
from ..nn.recurrent import LAYERS

BUILT_INS = ", ".join(sorted(LAYERS))


def cell_argument(text: str) -> str:
    """A built-in's name or a 'path/to/file.py:ClassName', kept as text."""
    if text in LAYERS or is_cell_file(text):
        return text
    raise argparse.ArgumentTypeError(f"expected one of {BUILT_INS} or {SPEC}, got {text!r}")


def add_cell_option(parser: argparse.ArgumentParser, default: str | None, shown_default: str) -> None:
    """--cell CELL; `default` None leaves the choice to what the command resumes (a checkpoint's)."""
    shown = f" (default {shown_default})"
    parser.add_argument(
        "--cell",
        type=cell_argument,
        default=default,
        metavar="CELL",
        help=f"the recurrent cell: {BUILT_INS}, or your own as {SPEC}{shown}",
    )
