"""The recurrent cell a model is built with, from text: a built-in's name or a class in a Python file.

`resolve_cell("lstm")` is "lstm"; `resolve_cell("path/to/file.py:ClassName")` imports the file and
returns its class, which must be an nn.Module subclass following the cell protocol (nn.Recurrent).
Used by `tinygrad-rnn train` and `graph` (`--cell`) and by training configs and checkpoints, which
keep the text with the file's absolute path (`absolute_spec`), so that they work from any folder. A
missing file, a missing class, a file that fails to import or a class that is not a Module is an
InputError with a one-line message; an exception the file raised is its cause (`raise ... from`), so
that the command line can show where in the file it happened.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ..nn.module import Module
from ..nn.recurrent import LAYERS, CellSpec
from .data import InputError

SPEC = "path/to/file.py:ClassName"


def is_cell_file(text: str) -> bool:
    """Whether `text` has the form of 'path/to/file.py:ClassName' (not whether the file exists)."""
    path, sep, name = text.rpartition(":")
    return bool(sep and path and name)


def resolve_cell(text: str) -> CellSpec:
    """'rnn', 'lstm', 'gru' as they are; 'path/to/file.py:ClassName' as the class it names."""
    if text in LAYERS:
        return text
    if not is_cell_file(text):
        raise InputError(f"cell: expected one of {', '.join(sorted(LAYERS))} or {SPEC}, got {text!r}")
    return load_cell(text)


def absolute_spec(text: str) -> str:
    """'path/to/file.py:ClassName' with the file's absolute path; any other text as it is."""
    if text in LAYERS or not is_cell_file(text):
        return text
    path, _, name = text.rpartition(":")
    return f"{Path(path).resolve()}:{name}"


def cell_label(text: str) -> str:
    """How a cell is named in messages: 'LSTM' for 'lstm', 'ClassName (file.py)' for a cell file."""
    if not is_cell_file(text):
        return text.upper()
    path, _, name = text.rpartition(":")
    return f"{name} ({Path(path).name})"


def import_file(path_text: str, what: str) -> ModuleType:
    """The Python file at `path_text`, imported (`what` names it in the one-line errors)."""
    path = Path(path_text)
    if not path.is_file():
        raise InputError(f"{what} file {path_text} not found")
    module_name = f"_tinygrad_rnn_{what}_{abs(hash(str(path.resolve())))}"
    found = importlib.util.spec_from_file_location(module_name, path)
    if found is None or found.loader is None:
        raise InputError(f"{what} file {path_text} is not a Python file")
    module = importlib.util.module_from_spec(found)
    sys.modules[module_name] = module  # so that dataclasses and the like in the file find their module
    try:
        found.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 (any error in the user's file; the cause says where)
        del sys.modules[module_name]
        message = f"{what} file {path_text} failed to import: {type(error).__name__}: {error}"
        raise InputError(message) from error
    return module


def load_cell(spec: str) -> type[Module]:
    """The class `ClassName` defined in the Python file of 'path/to/file.py:ClassName'."""
    return load_cell_file(spec)[0]


def load_cell_file(spec: str) -> tuple[type[Module], ModuleType]:
    """The class `ClassName` of 'path/to/file.py:ClassName' and the file's module (which may have
    imported the class from elsewhere)."""
    if not is_cell_file(spec):
        raise InputError(f"cell: expected {SPEC}, got {spec!r}")
    path_text, _, name = spec.rpartition(":")
    module = import_file(path_text, "cell")
    cls = getattr(module, name, None)
    if cls is None:
        defined = sorted(k for k, v in vars(module).items() if isinstance(v, type) and issubclass(v, Module))
        raise InputError(
            f"cell file {path_text} has no {name}"
            + (f" (its Module classes: {', '.join(defined)})" if defined else " (and no Module class)")
        )
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        what = f"the class {cls.__name__}" if isinstance(cls, type) else f"a {type(cls).__name__}"
        raise InputError(f"{spec} is {what}, not an nn.Module subclass (a cell class)")
    return cls, module
