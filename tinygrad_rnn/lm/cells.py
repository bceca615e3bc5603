"""The recurrent cell a model is built with, from text: a built-in's name or a class in a Python file.

`resolve_cell("lstm")` is "lstm"; `resolve_cell("path/to/file.py:ClassName")` imports the file and
returns its class, which must be an nn.Module subclass following the cell protocol (nn.Recurrent).
Used by `tinygrad-rnn train` and `graph` (`--cell`) and by training configs and checkpoints, which
keep the text. A missing file, a missing class, a file that fails to import or a class that is not
a Module is an InputError with a one-line message.
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
    except Exception as error:  # noqa: BLE001 (any error in the user's file is reported in one line)
        del sys.modules[module_name]
        raise InputError(
            f"{what} file {path_text} failed to import: {type(error).__name__}: {error}"
        ) from None
    return module


def load_cell(spec: str) -> type[Module]:
    """The class `ClassName` defined in the Python file of 'path/to/file.py:ClassName'."""
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
    return cls
