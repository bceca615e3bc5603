"""How a command ends when something goes wrong, told apart by whose code raised.

- A mistake in what the user asked for (an option, a file, a checkpoint): one line on stderr, exit 2.
- An exception raised in the user's own code (a cell file, its manual pair): the traceback trimmed to
  the frames of the user's files, as Python would print them, and the exception; exit 1.
- Ctrl-C: one line, exit 130 (the commands write their files atomically, so nothing is half-written).
- Anything else is a bug of this library, and its whole traceback is shown.

A user's file is any file outside this package, the standard library and the installed packages;
an exception counts as raised in user code when its traceback, or that of the exception it was
raised from, passes through one (or it is a SyntaxError in one).
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
import traceback
from pathlib import Path

PACKAGE = str(Path(__file__).resolve().parents[1])
INSTALLED = {
    os.path.realpath(path)
    for path in (
        *(sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")),
        *site.getsitepackages(),
        site.getusersitepackages(),
    )
    if path
}


def is_user_file(filename: str) -> bool:
    """Whether `filename` (a code object's) is the user's: not this package's, Python's or a package's."""
    if filename.startswith("<"):  # <frozen ...>, <string>
        return False
    path = os.path.realpath(filename)
    return not any(path == root or path.startswith(root + os.sep) for root in (PACKAGE, *INSTALLED))


def raised_in_user_code(error: BaseException) -> BaseException | None:
    """The exception, of `error` and those it was raised from or during, that the user's code raised."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _user_frames(current) or (
            isinstance(current, SyntaxError) and current.filename and is_user_file(current.filename)
        ):
            return current
        current = current.__cause__ or current.__context__
    return None


def _user_frames(error: BaseException) -> traceback.StackSummary:
    frames = traceback.extract_tb(error.__traceback__)
    return traceback.StackSummary.from_list([f for f in frames if is_user_file(f.filename)])


def fail(command: str, error: BaseException) -> int:
    """Report a caught error: trimmed to the user's frames (exit 1) if their code raised it, else one
    line (exit 2)."""
    culprit = raised_in_user_code(error)
    if culprit is None:
        print(f"tinygrad-rnn {command}: error: {error}", file=sys.stderr)
        return 2
    lines = [f"tinygrad-rnn {command}: error in your code (traceback trimmed to your files):\n"]
    lines += _user_frames(culprit).format()
    lines += traceback.format_exception_only(type(culprit), culprit)
    if str(culprit) not in str(error):  # what the command was doing when it happened
        lines.append(f"(while: {error})\n")
    print("".join(lines), end="", file=sys.stderr)
    return 1


def interrupted(command: str, what: str = "nothing was half-written") -> int:
    """Ctrl-C: one line, exit code 130 (128 + SIGINT, as the shell reports it)."""
    print(f"tinygrad-rnn {command}: interrupted; {what}", file=sys.stderr)
    return 130
