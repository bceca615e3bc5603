"""The `tinygrad-rnn` command as users run it: `python -m tinygrad_rnn ...` in a subprocess."""

import subprocess
import sys
from pathlib import Path


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tinygrad_rnn", *args], capture_output=True, text=True, cwd=cwd
    )


def test_check_exits_zero_and_prints_the_table(tmp_path: Path) -> None:
    result = run("check", "--cell", "gru", "--layers", "2", "--lengths", "5,3,2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "weight_hh_l1" in result.stdout and "‖dL/dh_t‖" in result.stdout
    assert "check: 1 of 1 agree" in result.stdout


def test_check_rejects_bad_arguments_with_exit_two(tmp_path: Path) -> None:
    result = run("check", "--lm", "--bidirectional", cwd=tmp_path)
    assert result.returncode == 2 and "error" in result.stderr and "Traceback" not in result.stderr


def test_graph_writes_the_picture(tmp_path: Path) -> None:
    result = run("graph", "--cell", "rnn", "--steps", "3", "-o", "g.dot", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    source = (tmp_path / "g.dot").read_text()
    assert source.startswith("digraph") and source.count("cluster_") >= 3


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = run("demo", "-o", "demo.dot", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("OK: manual BPTT equals the autograd") == 6
    assert (tmp_path / "demo.dot").read_text().startswith("digraph")


def test_bench_prints_the_table_of_ratios(tmp_path: Path) -> None:
    result = run("bench", "--configs", "char", "--cells", "rnn", "--runs", "1", "--no-torch", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[1:3]
    assert "auto/manual" in header and row.split()[:2] == ["rnn", "char"]
    assert float(row.split()[5]) > 0  # the autograd/manual ratio
    assert run("bench", "--cells", "nope", cwd=tmp_path).returncode == 2
