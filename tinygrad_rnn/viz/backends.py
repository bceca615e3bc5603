"""The programs that turn DOT into pictures: the system Graphviz `dot`, or else `graphviz-pure`
(a self-contained build of dot that pip installs, for svg and png)."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

FORMATS = ("svg", "png", "pdf", "dot", "html")  # html: the page (webpage.py), laid out as svg
PURE_FORMATS = ("svg", "png")
RENDER_TIMEOUT = 60.0  # seconds; a few hundred steps at op detail would take minutes and gigabytes


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


def run(program: str, source: str, fmt: str, timeout: float | None = RENDER_TIMEOUT) -> bytes:
    """The picture `program` draws from DOT `source` in format `fmt`, within `timeout` seconds.

    The process never outlives this call: it is killed and waited for on a timeout, a
    KeyboardInterrupt or any other exception.
    """
    process = subprocess.Popen(
        [program, f"-T{fmt}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = process.communicate(source.encode("utf-8"), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RenderError(
            f"render: {Path(program).name} -T{fmt} did not finish within {timeout:g} s and was stopped; "
            "draw fewer steps (max_steps, --max-steps), the cells (detail='cells'), or allow more time "
            "(timeout=, --timeout)"
        ) from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        error = err.decode("utf-8", "replace").strip()
        raise RenderError(f"render: {program} -T{fmt} failed with exit code {process.returncode}: {error}")
    return out


def missing(fmt: str, source: Path | None) -> str:
    """The error for no renderer: both ways to install one, and where the DOT source was written."""
    if fmt in PURE_FORMATS:
        found = "neither the system Graphviz `dot` nor `graphviz-pure` is installed"
        fixes = "`pip install graphviz-pure` (a dependency of tinygrad_rnn), or the system Graphviz"
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
