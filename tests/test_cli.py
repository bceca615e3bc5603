"""The `tinygrad-rnn` command as users run it: `python -m tinygrad_rnn ...` in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import threadpoolctl

from tinygrad_rnn.cli import main
from tinygrad_rnn.cli import train as train_command
from tinygrad_rnn.cli.threads import blas_threads, threads_for


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
    assert "peephole lstm     OK: finite differences agree with the autograd" in result.stdout
    assert (tmp_path / "demo.dot").read_text().startswith("digraph")


def test_bench_prints_the_table_of_ratios(tmp_path: Path) -> None:
    result = run(
        "bench",
        "--configs",
        "char",
        "--cells",
        "rnn",
        "--runs",
        "1",
        "--rounds",
        "1",
        "--no-torch",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[1:3]
    assert "auto/opbyop" in header and "first call" in header and row.split()[:2] == ["rnn", "char"]
    assert row.split()[2] == "-" and float(row.split()[3]) > 0  # no yardstick; manual ms
    assert float(row.split()[10]) > 0 and float(row.split()[11]) > 0  # autograd / replay, / op by op
    assert run("bench", "--cells", "nope", cwd=tmp_path).returncode == 2


def test_bench_times_a_yardstick_file_in_the_same_run(tmp_path: Path) -> None:
    (tmp_path / "ref.py").write_text(
        "import time\n"
        "def step(*arrays):\n    time.sleep(0.001)\n"
        "CELLS = {'rnn': step, 'lstm': step, 'gru': step}\n"
    )
    options = ["--configs", "char", "--cells", "lstm", "--runs", "1", "--rounds", "1", "--no-torch"]
    result = run("bench", *options, "--yardstick", "ref.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = result.stdout.splitlines()[2].split()
    assert float(row[2]) >= 1.0  # the yardstick's millisecond of sleep
    assert float(row[8]) > 0 and float(row[9]) > 0  # manual / yardstick, autograd / yardstick
    (tmp_path / "bad.py").write_text("CELLS = {}\n")
    bad = run("bench", "--yardstick", "bad.py", cwd=tmp_path)
    assert bad.returncode == 2 and "has no CELLS dict with rnn, lstm, gru" in bad.stderr


def blas_threads_now() -> set[int]:
    return {pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"}


def test_commands_choose_blas_threads_by_the_size_of_their_products() -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert threads_for(32, 128, 512) == 1  # train's default LSTM step: small
    assert threads_for(64, 512, 2048) == cores  # bench's big config
    before = blas_threads_now()
    with blas_threads(None, 32, 128, 512) as used:
        assert used == 1 and blas_threads_now() == {1}
    with blas_threads(2, 32, 128, 512) as used:
        assert used == 2 and blas_threads_now() == {2}
    assert blas_threads_now() == before  # given back after the command


def test_train_runs_on_the_threads_it_chose(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[set[int]] = []
    monkeypatch.setattr(train_command, "_train", lambda args: seen.append(blas_threads_now()) or 0)
    assert main(["train", "--steps", "1"]) == 0 and seen[-1] == {1}
    assert main(["train", "--steps", "1", "--threads", "2"]) == 0 and seen[-1] == {2}
