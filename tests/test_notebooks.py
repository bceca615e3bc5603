"""The notebooks: each runs top to bottom and produces the outputs saved in it (notebooks/regenerate.py
says what is normalized); each exercise's solution passes its checker, and planted mistakes are caught
at the place the checker names."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
sys.path.insert(0, str(NOTEBOOKS))  # the notebooks import exercises and solutions from their folder

import exercises  # noqa: E402
import regenerate  # noqa: E402
import solutions  # noqa: E402


@pytest.mark.parametrize("path", regenerate.NOTEBOOKS, ids=lambda p: p.stem)
def test_saved_outputs_match_a_fresh_run(path: Path) -> None:
    fresh, _ = regenerate.execute(path)
    skip = set() if importlib.util.find_spec("torch") else {"torch"}
    found = regenerate.differences(nbformat.read(path, as_version=4), fresh, skip)
    assert not found, f"{path.name}: saved outputs are stale; run `make notebooks`\n" + "\n".join(found)


def _notebook(*outputs: dict) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("", outputs=list(outputs))])


def _stream(text: str) -> dict:
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def _svg(body: str) -> dict:
    return nbformat.v4.new_output("display_data", data={"image/svg+xml": f'<svg width="9pt">{body}</svg>'})


@pytest.mark.parametrize(
    ("saved", "now", "same"),
    [
        ([_stream("trained in 1.2 s (65 steps/s)\n")], [_stream("trained in 14 s (7 steps/s)\n")], True),
        ([_stream("a\nb\n")], [_stream("a\n"), _stream("b\n")], True),  # a print split by the kernel
        ([_stream("accuracy 99.8%\n")], [_stream("accuracy 99.7%\n")], False),
        (
            [_svg('<text x="1">Tanh</text><path fill="#b2182b"/>')],
            [_svg('<text x="7">Tanh</text><path fill="#B2182B"/>')],
            True,
        ),
        (
            [_svg('<text x="1">Tanh</text><path fill="#b2182b"/>')],
            [_svg('<text x="1">Tanh</text><path fill="#2166ac"/>')],
            False,
        ),
        ([_svg("<title>n0&#45;&gt;n1</title>")], [_svg("<title>n1&#45;&gt;n0</title>")], False),
    ],
)
def test_what_the_output_check_ignores(saved: list, now: list, same: bool) -> None:
    found = regenerate.differences(_notebook(*saved), _notebook(*now), set())
    assert (not found) == same, found


def _cells(name: str, tag: str) -> dict:
    """The namespace left by running a notebook's code cells tagged `tag`, in order."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    namespace: dict = {}
    environ = dict(os.environ)  # a notebook may set OPENBLAS_NUM_THREADS for itself: not for the other tests
    try:
        for cell in nb.cells:
            if cell.cell_type == "code" and tag in cell.metadata.get("tags", []):
                exec(cell.source, namespace)
    finally:
        os.environ.clear()
        os.environ.update(environ)
    return namespace


def _replace(fn, source_old: str, source_new: str):
    """A copy of solutions' function `fn` with one line of its source changed: a planted mistake."""
    import inspect
    import textwrap

    source = textwrap.dedent(inspect.getsource(fn))
    assert source_old in source, source_old
    namespace = {"np": np}
    exec(source.replace(source_old, source_new), namespace)
    return namespace[fn.__name__]


def _not_written(*args):
    raise NotImplementedError


# --- 01: central differences ---------------------------------------------------------------------------


def test_central_difference_exercise() -> None:
    assert exercises.central_difference_verdict(solutions.central_difference).ok
    blank = exercises.central_difference_verdict(_not_written)
    assert not blank.ok and "not written yet" in blank.message


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("x[i] = kept - eps\n", "x[i] = kept\n", "one-sided"),
        ("(2 * eps)", "eps", "twice the derivative"),
        ("        x[i] = kept\n        grad", "        grad", "changed x"),
        ("(up - down)", "(up - down) * 1.001", "worst element"),
    ],
)
def test_central_difference_checker_catches(old: str, new: str, named: str) -> None:
    verdict = exercises.central_difference_verdict(_replace(solutions.central_difference, old, new))
    assert not verdict.ok and named in verdict.message


# --- 02, 03, 06: step_backward checked by compare -------------------------------------------------------


@pytest.fixture(scope="module")
def rnn_forward():
    return _cells("02_bptt_by_hand.ipynb", "exercise")["rnn_step_forward"]


@pytest.fixture(scope="module")
def lstm_forward():
    return _cells("03_lstm_gru.ipynb", "exercise")["lstm_step_forward"]


@pytest.fixture(scope="module")
def peephole():
    ns = _cells("06_custom_cell.ipynb", "exercise")
    return ns["PeepholeLSTM"], ns["step_forward"], ns


def test_rnn_exercise(rnn_forward) -> None:
    assert exercises.rnn_step_verdict(rnn_forward, solutions.rnn_step_backward).ok
    assert "not written yet" in exercises.rnn_step_verdict(rnn_forward, _not_written).message


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('"weight_hh": delta.T @ h_prev', '"weight_hh": delta.T @ h', "weight_hh"),
        ("delta = dh * (1 - h**2)", "delta = dh * (1 - h)", "weight_ih"),
        ('delta @ p["weight_hh"], dparams', 'delta @ p["weight_hh"].T, dparams', "dh_prev"),
        ('"bias_hh": delta.sum(axis=0)', '"bias_hh": dh.sum(axis=0)', "bias_hh"),
    ],
)
def test_rnn_checker_catches(rnn_forward, old: str, new: str, named: str) -> None:
    verdict = exercises.rnn_step_verdict(rnn_forward, _replace(solutions.rnn_step_backward, old, new))
    assert not verdict.ok and named in verdict.message


def test_lstm_exercise(lstm_forward) -> None:
    assert exercises.lstm_step_verdict(lstm_forward, solutions.lstm_step_backward).ok
    assert "not written yet" in exercises.lstm_step_verdict(lstm_forward, _not_written).message


@pytest.mark.parametrize(
    ("old", "new", "named", "absent"),
    [
        (
            "dg = dc * g, dc * c_prev, dc * i",
            "dg = dc * g, dc * c_prev, dc * g",
            "weight_ih[g]",
            "weight_ih[i]",
        ),
        ("dc * f), dparams", "dc), dparams", "dc_prev", "weight_ih"),
        ("dc = dc + dh * o * (1 - tanh_c**2)", "dc = dc + dh * o", "weight_ih[f]", "weight_ih[o]"),
        ("do * o * (1 - o)]", "do * o]", "weight_ih[o]", "weight_ih[g]"),
    ],
)
def test_lstm_checker_catches(lstm_forward, old: str, new: str, named: str, absent: str) -> None:
    verdict = exercises.lstm_step_verdict(lstm_forward, _replace(solutions.lstm_step_backward, old, new))
    one_step = verdict.message.split(";")[0]  # what the single step found wrong, before where it shows
    assert not verdict.ok and named in one_step and absent not in one_step


def test_peephole_exercises(peephole) -> None:
    cell, forward, ns = peephole
    assert exercises.peephole_step_verdict(cell, (forward, solutions.peephole_step_backward)).ok
    assert "not written yet" in exercises.peephole_step_verdict(cell, (forward, _not_written)).message
    slip = exercises.peephole_step_verdict(cell, (forward, ns["step_backward_with_a_slip"]))
    assert not slip.ok and "dc_prev" in slip.message  # what the bug hunt's reader should find


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('"peep_i": (da_i * c_prev)', '"peep_i": (da_i * c)', "peep_i"),
        ('+ da_o * p["peep_o"]', "", "weight_hh[i]"),
        ("dc * f + da_i", "dc + da_i", "dc_prev"),
    ],
)
def test_peephole_checker_catches(peephole, old: str, new: str, named: str) -> None:
    cell, forward, _ = peephole
    wrong = _replace(solutions.peephole_step_backward, old, new)
    verdict = exercises.peephole_step_verdict(cell, (forward, wrong))
    assert not verdict.ok and named in verdict.message
