"""The command line as a new user and a researcher with cells in files meet it (issue 20, items 2-10).

One table: each case writes its files, runs `tinygrad-rnn ...` in-process in a fresh folder, and
checks the exit code, pieces of stdout and stderr, and the form of stderr: nothing, one line (a
mistake), or a traceback trimmed to the user's files (an error in the user's code: every `File`
line is the user's, the offending line of code is shown, the exception last).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tinygrad_rnn import viz
from tinygrad_rnn.cli import check as check_command
from tinygrad_rnn.cli import graph as graph_command
from tinygrad_rnn.cli import main
from tinygrad_rnn.lm.data import read_text, shipped_text_path

# The README's IndRNN pair, in a file that imports the cell class (item 2)
INDRNN_PAIR = """
import numpy as np
from tinygrad_rnn.nn.examples import IndRNNCell


def step_forward(x, h_prev, p):
    h = np.maximum(x @ p["weight_ih"].T + p["bias"] + p["weight_hh"] * h_prev, 0)
    return h, (x, h_prev, h, p)


def step_backward(dh, cache):
    x, h_prev, h, p = cache
    da = dh * (h > 0)
    dparams = {"weight_ih": da.T @ x, "bias": da.sum(0), "weight_hh": (da * h_prev).sum(0)}
    return da @ p["weight_ih"], da * p["weight_hh"], dparams
"""

# a slip in step_backward: the input's gradient multiplied by the wrong matrix (item 3)
BAD_BACKWARD = INDRNN_PAIR.replace('return da @ p["weight_ih"],', 'return da @ p["weight_ih"].T,')

# the IndRNN pair applied to the peephole LSTM, whose state is (h, c) (item 3)
WRONG_PAIR = INDRNN_PAIR.replace("IndRNNCell", "PeepholeLSTMCell")

# a cell as notebook 06 writes one: float64 numpy weights, no dtype= (item 10), and its state (h, m)
# named by the cell
OWN_CELL = '''
import numpy as np
import tinygrad_rnn as tg
from tinygrad_rnn import nn


class MemoryCell(nn.Module):
    """h = tanh(x W_ihᵀ + h W_hhᵀ + m), m' = 0.5 m + 0.5 h: a hidden state and a slow memory."""

    state_names = ("h", "m")

    def __init__(self, input_size, hidden_size, rng=None):
        super().__init__()
        rng = np.random.default_rng(rng)
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(rng.uniform(-0.5, 0.5, (hidden_size, input_size)))
        self.weight_hh = nn.Parameter(rng.uniform(-0.5, 0.5, (hidden_size, hidden_size)))

    def forward(self, x, state=None):
        if state is None:
            state = (tg.zeros(x.shape[0], self.hidden_size, dtype=x.dtype),) * 2
        h, m = state
        h = (x @ self.weight_ih.T + h @ self.weight_hh.T + m).tanh()
        return h, 0.5 * m + 0.5 * h
'''

BROKEN_FORWARD = OWN_CELL.replace("+ m).tanh()", "+ m.T).tanh()")  # (N, H) + (H, N): a slip
BROKEN_IMPORT = OWN_CELL.replace("import numpy as np\n", "import numpy as np\nscale = undefined_name\n")


@dataclass
class Case:
    argv: list[str]
    code: int
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    form: str = "none"  # stderr: "none", "line" (one line) or "trimmed" (a traceback of the user's files)
    files: dict[str, str] = field(default_factory=dict)
    setup: list[list[str]] = field(default_factory=list)  # commands run first (exit 0 expected)
    patch: Callable[[pytest.MonkeyPatch], None] | None = None
    absent: list[str] = field(default_factory=list)  # text that must be in neither stream
    written: list[str] = field(default_factory=list)  # files the command must leave (others: none new)


def interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


def no_system_graphviz(monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "dot" else real(name, *a, **k))


TINY = ["--text", "text.txt", "--embedding-dim", "8", "--hidden-size", "16", "--seq-len", "8"]
TINY += ["--batch-size", "4", "--eval-every", "5", "-q"]
SMALL_CHECK = ["--seq-len", "3", "--batch-size", "2", "--input-size", "2", "--hidden-size", "3"]

CASES: dict[str, Case] = {
    # 2. the pair is looked up in the file named, though the class is imported there
    "2 pair beside an imported class": Case(
        ["check", "--cell", "pair.py:IndRNNCell", "--num-layers", "2", "--bidirectional"],
        0,
        out=["check: 1 of 1 agree"],
        files={"pair.py": INDRNN_PAIR},
    ),
    # 3. an exception in the user's code: its traceback, trimmed to the user's files
    "3 bug in step_backward": Case(
        ["check", "--cell", "pair.py:IndRNNCell", *SMALL_CHECK],
        1,
        err=['pair.py", line 15, in step_backward', 'return da @ p["weight_ih"].T', "ValueError: matmul"],
        form="trimmed",
        files={"pair.py": BAD_BACKWARD},
    ),
    "3 a cell applied to the wrong pair": Case(
        ["check", "--cell", "pair.py:PeepholeLSTMCell", *SMALL_CHECK],
        1,
        err=['pair.py", line 7, in step_forward', "h = np.maximum("],
        form="trimmed",
        files={"pair.py": WRONG_PAIR},
    ),
    "3 bug in a cell's forward, in train": Case(
        ["train", "--cell", "cell.py:MemoryCell", "--steps", "2", *TINY],
        1,
        err=['cell.py", line 23, in forward', "+ m.T).tanh()"],
        form="trimmed",
        files={"cell.py": BROKEN_FORWARD},
    ),
    "3 a cell file that fails to import, in graph": Case(
        ["graph", "--cell", "cell.py:MemoryCell", "-o", "g.dot"],
        1,
        err=['cell.py", line 3, in <module>', "NameError: name 'undefined_name' is not defined"],
        form="trimmed",
        files={"cell.py": BROKEN_IMPORT},
    ),
    "3 a mistake stays one line": Case(
        ["check", "--cell", "pair.py:Nope"],
        2,
        err=["pair.py has no Nope"],
        form="line",
        files={"pair.py": ""},
    ),
    # 4. Ctrl-C: one line, exit 130, nothing half-written
    "4 Ctrl-C while rendering": Case(
        ["graph", "-o", "g.svg"],
        130,
        err=["tinygrad-rnn graph: interrupted"],
        form="line",
        patch=lambda m: m.setattr(viz, "render", interrupt),
    ),
    "4 Ctrl-C while drawing": Case(
        ["graph", "-o", "g.svg"],
        130,
        err=["tinygrad-rnn graph: interrupted"],
        form="line",
        patch=lambda m: m.setattr(viz, "draw", interrupt),
    ),
    "4 Ctrl-C in check": Case(
        ["check"],
        130,
        err=["tinygrad-rnn check: interrupted"],
        form="line",
        patch=lambda m: m.setattr(check_command, "compare", interrupt),
    ),
    # 5. one name per concept (PyTorch's), the other accepted; a wrong one names the command
    "5 train takes --hidden-size": Case(
        ["train", "--steps", "1", "--hidden-size", "8", *TINY[:2]], 0, out=["1 steps in"]
    ),
    "5 graph takes --hidden and --layers": Case(
        ["graph", "--hidden", "3", "--layers", "2", "--steps", "2", "-o", "g.dot"], 0, written=["g.dot"]
    ),
    "5 a misspelt option": Case(
        ["graph", "--hiden-size", "3"],
        2,
        err=[
            "tinygrad-rnn graph: error: unrecognized arguments: --hiden-size 3; did you mean --hidden-size?"
        ],
        form="line",
    ),
    # 6. --steps on resume counts from the start; a target already reached is refused
    "6 resume to a step already reached": Case(
        ["train", "--resume", "--checkpoint", "run.npz", "--steps", "3"],
        2,
        err=["run.npz is at step 5, already at or past steps=3", "give --steps > 5"],
        form="line",
        setup=[["train", "--steps", "5", "--checkpoint", "run.npz", *TINY]],
    ),
    # 7. messages
    "7 --version": Case(["--version"], 0, out=["tinygrad-rnn 0.1.0"]),
    "7 no command lists them": Case(
        [], 2, err=["expected a command: demo, check, graph, train, sample, bench"], form="line"
    ),
    "7 bench --configs huge": Case(
        ["bench", "--configs", "huge"],
        2,
        err=["unknown 'huge'; expected some of char,mid,big,long"],
        form="line",
    ),
    "7 sample from a safetensors file": Case(
        ["sample", "--checkpoint", "model.safetensors"],
        2,
        err=["model.safetensors is not a readable checkpoint", "read it with tg.load"],
        form="line",
        files={"model.safetensors": "{}"},
        absent=["allow_pickle"],
    ),
    "7 pdf without the system Graphviz": Case(
        ["graph", "-o", "x.pdf"],
        2,
        err=["-o x.pdf: pdf needs the system Graphviz", ".svg, .png and .dot need nothing more"],
        form="line",
        patch=no_system_graphviz,
        absent=["graphviz-pure"],
    ),
    "7 train names a file's cell by its class": Case(
        ["train", "--cell", "cell.py:MemoryCell", "--steps", "1", *TINY[:2], "--hidden-size", "8"],
        0,
        out=[],
        files={"cell.py": OWN_CELL},
        absent=["CELL.PY"],
    ),
    "7 bench --help shows its defaults": Case(
        ["bench", "--help"],
        0,
        out=[
            "default char,mid; --full: char,mid,big,long",
            "(default 3; --full: 5)",
            "(default 2; --full: 3)",
        ],
        patch=lambda m: m.setenv("COLUMNS", "250"),  # one option per line
    ),
    # 8. bench says where it is
    "8 bench progress": Case(
        ["bench", "--configs", "char", "--cells", "rnn", "--runs", "1", "--rounds", "1", "--no-torch"],
        0,
        out=["rnn  char"],
        err=["bench: [1/2] rnn char (0 s so far)", "bench: [2/2] your own cell char"],
    ),
    # 10. cells in files, as researchers write them
    "10 train a float64 cell without dtype=": Case(
        ["train", "--cell", "cell.py:MemoryCell", "--steps", "2", *TINY[:2], "--hidden-size", "8"],
        0,
        out=["2 steps in"],
        files={"cell.py": OWN_CELL},
        written=["cell.py"],
    ),
    "10 --dtype that the cell cannot make": Case(
        ["train", "--cell", "cell.py:MemoryCell", "--dtype", "float32", "--steps", "1", *TINY[:2]],
        2,
        err=[
            "MemoryCell (cell.py) takes no dtype= and makes its parameters in float64, but --dtype is float32"
        ],
        form="line",
        files={"cell.py": OWN_CELL},
    ),
    "10 sample from another folder": Case(
        ["sample", "--checkpoint", "../run.npz", "--length", "5"],
        0,
        files={"cell.py": OWN_CELL},
        setup=[["train", "--cell", "cell.py:MemoryCell", "--steps", "2", "--checkpoint", "run.npz", *TINY]],
    ),
    "10 check a file's cell batch-first from a random state": Case(
        ["check", "--cell", "pair.py:IndRNNCell", "--batch-first", "--lengths", "3,1", *SMALL_CHECK],
        0,
        out=["IndRNNCell", "batch_first=True", "check: 1 of 1 agree"],
        files={"pair.py": INDRNN_PAIR},
    ),
    "10 check from zeros": Case(
        ["check", "--cell", "pair.py:IndRNNCell", "--hx", "zeros", *SMALL_CHECK],
        0,
        out=["check: 1 of 1 agree"],
        files={"pair.py": INDRNN_PAIR},
    ),
    "10 compare names the cell's own state": Case(
        ["check", "--cell", "cell.py:MemoryCell", "--fd", *SMALL_CHECK],
        0,
        out=["Σ m_n ⊙ G_m", "\nm0 ", "check: 1 of 1 agree"],
        files={"cell.py": OWN_CELL},
        absent=["c_n", "G_c"],
    ),
    "10 graph batch-first with lengths": Case(
        ["graph", "--batch-first", "--lengths", "4,2", "-o", "g.dot"],
        0,
        out=["wrote g.dot"],
        written=["g.dot"],
    ),
    "10 graph lengths that do not fit": Case(
        ["graph", "--lengths", "4,9"],
        2,
        err=["--lengths: expected 2 lengths (one per sequence) in 1..4"],
        form="line",
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_the_command_line_does_what_its_reader_expects(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    case = CASES[name]
    (tmp_path / "text.txt").write_text(read_text(shipped_text_path())[:3000], encoding="utf-8")
    for file, text in case.files.items():
        (tmp_path / file).write_text(text)
    monkeypatch.chdir(tmp_path)
    for argv in case.setup:
        assert main(argv) == 0, capsys.readouterr()
    if name == "10 sample from another folder":
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path / "elsewhere")
    capsys.readouterr()
    before = {p.name for p in Path.cwd().iterdir()}
    if case.patch:
        case.patch(monkeypatch)
    code = main(case.argv)
    out, err = capsys.readouterr()
    assert code == case.code, (out, err)
    for piece in case.out:
        assert piece in out, out
    for piece in case.err:
        assert piece in err, err
    for piece in case.absent:
        assert piece not in out + err, out + err
    if case.form == "line":
        assert err.count("\n") == 1 and err.startswith("tinygrad-rnn"), err
    if case.form == "trimmed":
        files = re.findall(r'File "([^"]+)"', err)
        assert files and all(Path(f).name in case.files for f in files), err
        assert "Traceback" not in err and err.startswith("tinygrad-rnn"), err
    if case.form in ("line", "none"):
        assert "Traceback" not in err and 'File "' not in err, err
    made = {p.name for p in Path.cwd().iterdir()} - before
    assert made <= set(case.written) | {"__pycache__"}, made  # nothing else, nothing half-written
    for file in case.written:
        assert (Path.cwd() / file).exists()


def test_graph_renders_beside_the_target_then_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The picture is written under a temporary name and renamed: an existing file is replaced whole."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.dot").write_text("old")
    seen: list[Path] = []
    real = viz.render

    def spy(picture: object, path: Path, **options: object) -> Path:
        seen.append(Path(path))
        assert (tmp_path / "g.dot").read_text() == "old"
        return real(picture, path, **options)

    monkeypatch.setattr(graph_command.viz, "render", spy)
    assert main(["graph", "-o", "g.dot"]) == 0
    assert seen[0].name != "g.dot" and seen[0].resolve().parent == tmp_path.resolve()
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dot"]


def test_ctrl_c_during_a_long_graph_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    """A real SIGINT to `tinygrad-rnn graph` drawing 300 steps: exit 130, one line, no file."""
    import signal
    import subprocess
    import sys
    import time

    argv = [sys.executable, "-m", "tinygrad_rnn", "graph", "--seq-len", "300", "--all-steps", "-o", "big.svg"]
    process = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)  # past the imports (about 1 s), well before the render ends (over 100 s)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, (out, err)
    assert err == "tinygrad-rnn graph: interrupted; nothing was half-written\n", err
    assert list(tmp_path.iterdir()) == []
