"""Every command-line mistake, in every subcommand, is one line on stderr and exit code 2, before any work."""

from pathlib import Path

import pytest

from tinygrad_rnn.cli import main

# (argv, a piece of the one line on stderr); paths are relative to the test's working folder
MISTAKES = [
    (["graph", "--steps", "0"], "argument --seq-len/--steps: expected a positive integer, got '0'"),
    (["graph", "--batch", "0"], "argument --batch-size/--batch: expected a positive integer"),
    (["graph", "--max-steps", "0"], "argument --max-steps: expected a positive integer"),
    (["graph", "--layers", "-1"], "argument --num-layers/--layers: expected a positive integer, got '-1'"),
    (
        ["graph", "--hidden-size", "two"],
        "argument --hidden-size/--hidden: expected a positive integer, got 'two'",
    ),
    (["graph", "-o", "g.jpg"], "expected a file ending in .svg, .png, .pdf, .dot, .html, got 'g.jpg'"),
    (["graph", "-o", "missing/g.svg"], "the folder 'missing' of 'missing/g.svg' does not exist"),
    (["graph", "-o", "file.txt/g.svg"], "'file.txt' (the folder of 'file.txt/g.svg') is a file"),
    (["graph", "-o", "folder.svg"], "'folder.svg' is a directory"),
    (["graph", "--timeout", "0"], "argument --timeout: expected a finite number > 0"),
    (["graph", "--max-steps", "4", "--all-steps"], "not allowed with argument --max-steps"),
    (["graph", "--threads", "0"], "argument --threads: expected a positive integer"),
    (["graph", "--cell", "lstn"], "argument --cell:"),
    (["train", "--lr", "inf"], "argument --lr: expected a finite number > 0, got 'inf'"),
    (["train", "--lr", "nan"], "argument --lr: expected a finite number > 0, got 'nan'"),
    (["train", "--clip", "-1"], "argument --clip: expected a finite number > 0"),
    (["train", "--steps", "-1"], "argument --steps: expected an integer ≥ 0, got '-1'"),
    (["train", "--hidden", "0"], "argument --hidden-size/--hidden: expected a positive integer"),
    (["train", "--dropout", "1"], "argument --dropout: expected a number in [0, 1), got '1'"),
    (["train", "--eval-every", "0"], "argument --eval-every: expected a positive integer"),
    (["train", "--resume", "--force"], "argument --force: not allowed with argument --resume"),
    (["train", "--resume"], "--resume needs --checkpoint PATH"),
    (["train", "--checkpoint", "folder.svg", "--steps", "1"], "is a directory"),
    (["train", "--checkpoint", "file.txt/run.npz", "--steps", "1"], "file.txt is a file, not a folder"),
    (["train", "--text", "missing.txt", "--steps", "1"], "missing.txt"),
    (["sample"], "the following arguments are required: --checkpoint"),
    (["sample", "--checkpoint", "run.npz", "--length", "-5"], "argument --length: expected an integer ≥ 0"),
    (
        ["sample", "--checkpoint", "run.npz", "--temperature", "inf"],
        "expected a finite number > 0, got 'inf'",
    ),
    (["sample", "--checkpoint", "missing.npz"], "no checkpoint at missing.npz"),
    (["check", "--steps", "0"], "argument --seq-len/--steps: expected a positive integer"),
    (["check", "--lengths", "5,x"], '--lengths: expected integers like "5,3,2" or "random"'),
    (["check", "--lm", "--bidirectional"], "the language model is unidirectional"),
    (["check", "--clip", "nan"], "argument --clip: expected a finite number > 0, got 'nan'"),
    (["check", "--tbptt", "0"], "argument --tbptt: expected a positive integer"),
    (["demo", "-o", "demo.jpg"], "expected a file ending in .svg"),
    (["demo", "--threads", "x"], "argument --threads: expected a positive integer, got 'x'"),
    (["bench", "--runs", "0"], "argument --runs: expected a positive integer"),
    (["bench", "--cells", "nope"], "--cells: unknown 'nope'; expected some of rnn,lstm,gru"),
    (["bench", "--configs", "huge"], "--configs: unknown 'huge'; expected some of char,mid,big,long"),
    (["nonsense"], "invalid choice: 'nonsense'"),
    ([], "expected a command: demo, check, graph, train, sample, bench"),
]


@pytest.mark.parametrize("argv, message", MISTAKES, ids=[" ".join(argv) or "(none)" for argv, _ in MISTAKES])
def test_a_mistake_is_one_line_on_stderr_and_exit_code_two(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("a file, not a folder")
    (tmp_path / "folder.svg").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("tinygrad-rnn"), err
    assert message in err and "Traceback" not in err, err
    assert out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
