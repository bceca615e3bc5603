"""The programs that turn DOT into pictures: the system Graphviz `dot`, or else `graphviz-pure`
(a self-contained build of dot that pip installs, for svg and png)."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

FORMATS = ("svg", "png", "pdf", "dot")
PURE_FORMATS = ("svg", "png")


class RenderError(RuntimeError):
    """No program could draw the picture, or the one found failed."""


def find_renderer(fmt: str) -> str | None:
    """The program that will draw `fmt`: the system `dot` if on the PATH, else `graphviz-pure` (on
    the PATH or next to this Python) for svg and png, else None."""
    system = shutil.which("dot")
    if system is not None:
        return system
    if fmt not in PURE_FORMATS:
        return None
    return shutil.which("graphviz-pure") or shutil.which("graphviz-pure", path=sysconfig.get_path("scripts"))


def run(program: str, source: str, fmt: str) -> bytes:
    """The picture `program` draws from DOT `source` in format `fmt`."""
    done = subprocess.run(
        [program, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True, check=False
    )
    if done.returncode != 0:
        error = done.stderr.decode("utf-8", "replace").strip()
        raise RenderError(f"render: {program} -T{fmt} failed with exit code {done.returncode}: {error}")
    return done.stdout


def missing(fmt: str, source: Path | None) -> str:
    """The error for no renderer: both ways to install one, and where the DOT source was written."""
    if fmt in PURE_FORMATS:
        found = "neither the system Graphviz `dot` nor `graphviz-pure` is installed"
        fixes = "`pip install graphviz-pure` (or `pip install tinygrad_rnn[viz]`), or the system Graphviz"
    else:
        found = f"{fmt} needs the system Graphviz `dot`, which is not on the PATH (graphviz-pure: svg, png)"
        fixes = "the system Graphviz, or ask for svg or png and `pip install graphviz-pure`"
    where = (
        f" The DOT source was written to {source}; draw it later with `dot -T{fmt} {source} -o out.{fmt}`."
        if source is not None
        else ""
    )
    return (
        f"render: cannot draw {fmt}: {found}. Install {fixes} (`apt-get install graphviz`, "
        f"`brew install graphviz`, `conda install graphviz` or https://graphviz.org/download/).{where}"
    )
