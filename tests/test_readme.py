"""Every code block of README.md runs as written.

- python blocks are executed, each in a fresh namespace, in an empty folder (they may write files);
  a block that imports torch is skipped where PyTorch is not installed.
- sh blocks: each `tinygrad-rnn ...` line runs through `main([...])`, in order, in one folder per
  block (so `sample` finds the checkpoint `train` wrote). One substitution keeps the run short:
  `train` gets a small `--steps` (4, or 6 for the line that resumes to step 4,000) instead of the
  2,500 and 4,000 the README's real run uses. A plain block right after an sh block is that
  command's output: each of its lines (except `...`) must appear in the real output, the numbers
  replaced by a pattern (the last digits of float64 round-off differ between BLAS builds). The
  folders the commands write into (docs/) are made in the test's folder.
- Skipped: `make demo` and `make test`, which build the environment these tests run in (and `make
  test` runs this file), and the fuzzer's soak run (pytest itself); `.ci/run` runs both make
  commands from a fresh clone.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from tinygrad_rnn.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]\d+)?")
SHORT_STEPS = {None: "4", "4000": "6"}  # train's --steps as given in the README -> as run here


def blocks() -> list[tuple[int, str, str, str | None]]:
    """(line, language, code, the output block that follows it or None) for each python and sh block."""
    text = README.read_text(encoding="utf-8")
    found = [
        (text[: m.start()].count("\n") + 1, m[1], m[2], m.end(), m.start()) for m in FENCE.finditer(text)
    ]
    result = []
    for k, (line, language, code, end, _) in enumerate(found):
        if language not in ("python", "sh"):
            continue
        follows = found[k + 1] if k + 1 < len(found) else None
        output = follows[2] if follows and not follows[1] and not text[end : follows[4]].strip() else None
        result.append((line, language, code, output))
    return result


BLOCKS = blocks()


def shorter(argv: list[str]) -> list[str]:
    """`train` with a small --steps; every other command as written."""
    if argv[0] != "train":
        return argv
    if "--steps" in argv:
        k = argv.index("--steps") + 1
        return [*argv[:k], SHORT_STEPS[argv[k]], *argv[k + 1 :]]
    return [*argv, "--steps", SHORT_STEPS[None]]


def as_pattern(line: str) -> re.Pattern[str]:
    parts = NUMBER.split(line.rstrip())
    return re.compile(r"[-+\d.e]+".join(re.escape(p) for p in parts))


def test_the_readme_has_the_blocks_this_test_runs() -> None:
    languages = [language for _, language, _, _ in BLOCKS]
    assert languages.count("python") >= 4 and languages.count("sh") >= 4
    commands = [line for _, language, code, _ in BLOCKS if language == "sh" for line in code.splitlines()]
    assert {"check", "graph", "train", "sample"} <= {
        c.split()[1] for c in commands if c.startswith("tinygrad-rnn")
    }


@pytest.mark.parametrize("line, language, code, output", BLOCKS, ids=[f"README.md:{b[0]}" for b in BLOCKS])
def test_the_block_runs_as_written(
    line: int, language: str, code: str, output: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    if language == "python":
        if re.search(r"^\s*(import|from) torch", code, re.M):
            pytest.importorskip("torch")
        exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
        return
    commands = [shlex.split(c, comments=True) for c in code.splitlines()]
    commands = [c for c in commands if c]
    if all(c[0] in ("make", "source") or "pytest" in c for c in commands):
        pytest.skip("builds the environment or runs the tests (make, source, pytest): this run is that")
    printed = io.StringIO()
    (tmp_path / "docs").mkdir()
    for argv in commands:
        assert argv[0] == "tinygrad-rnn", f"README.md:{line}: only tinygrad-rnn commands run here: {argv}"
        with contextlib.redirect_stdout(printed):
            code = main(shorter(argv[1:]))
        assert code == 0, f"README.md:{line}: {shlex.join(argv)} exited {code}"
    if output is not None:
        real = printed.getvalue().splitlines()
        for expected in output.splitlines():
            if expected.strip() in ("", "..."):
                continue
            pattern = as_pattern(expected)
            assert any(pattern.fullmatch(r.rstrip()) for r in real), f"not in the output: {expected!r}"
