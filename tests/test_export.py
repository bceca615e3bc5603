"""export.torch: a model built here, written as a PyTorch file, computes the same thing in torch.

Each case exports a layer or a language model to a file in tmp_path, imports it, loads the weights
written beside it (safetensors) and runs both in float64: outputs, final states and every gradient
(the input's and each parameter's, under the same name) agree to 1e-10. Generated cells (the replay
tests' generator), the cells of nn.examples and notebook 06, and the built-in layers, over 1-2 layers,
both directions, lengths, batch_first and hx. Then what the export refuses, and the command.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import export, nn
from tinygrad_rnn.cli.main import main
from tinygrad_rnn.nn.examples import IndRNNCell, PeepholeLSTMCell

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from test_replay import GeneratedCell, programs  # noqa: E402  (needs torch, as this file)

RTOL, ATOL = 1e-10, 1e-12
ROOT = Path(__file__).resolve().parents[1]


def imported(path: Path) -> Any:
    """The generated file, imported as a module of its own."""
    spec = importlib.util.spec_from_file_location(f"exported_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exported(model: nn.Module, tmp_path: Path, **options: Any) -> Any:
    """Model() of the exported file with the exported weights, loaded strictly (the same names)."""
    path = tmp_path / "model_torch.py"
    weights = export.torch(model, path, **options)
    theirs = imported(path).Model()
    theirs.load_state_dict(safetensors_torch.load_file(str(weights)))
    return theirs.train(model.training)


def grad_of(p: Any) -> np.ndarray:
    if p.grad is None:
        return np.zeros(p.shape)
    return p.grad.data.copy() if isinstance(p, tg.Tensor) else p.grad.numpy().copy()


def parts_of(state: Any) -> tuple:
    return state if isinstance(state, tuple) else (state,)


def run_ours(model: nn.Module, x: np.ndarray, g: np.ndarray, **call: Any) -> dict[str, np.ndarray]:
    """Outputs, final state parts and the gradients of Σ out ⊙ G + Σ h_n ⊙ ½ (our side)."""
    model.zero_grad()
    xt = tg.Tensor(x, requires_grad=x.dtype.kind == "f")
    hx = call.pop("hx", None)
    hx = tuple(tg.Tensor(h, requires_grad=True) for h in hx) if isinstance(hx, tuple) else hx
    out, state = model(xt, hx, **call)
    parts = parts_of(state)
    loss = (out * tg.Tensor(g)).sum() + sum((part * 0.5).sum() for part in parts)
    loss.backward()
    found = {"output": out.data, **{f"h_n[{k}]": p.data for k, p in enumerate(parts)}}
    if x.dtype.kind == "f":
        found["d input"] = grad_of(xt)
    found |= {f"d {name}": grad_of(p) for name, p in model.named_parameters()}
    return found


def run_theirs(model: Any, x: np.ndarray, g: np.ndarray, **call: Any) -> dict[str, np.ndarray]:
    model.zero_grad()
    xt = torch.tensor(x, requires_grad=x.dtype.kind == "f")
    hx = call.pop("hx", None)
    if hx is not None:
        hx = tuple(torch.tensor(h) for h in hx) if isinstance(hx, tuple) else torch.tensor(hx)
    out, state = model(xt, hx, **call)
    parts = parts_of(state)
    loss = (out * torch.from_numpy(g)).sum() + sum((part * 0.5).sum() for part in parts)
    loss.backward()
    found = {"output": out.detach().numpy(), **{f"h_n[{k}]": p.detach().numpy() for k, p in enumerate(parts)}}
    if x.dtype.kind == "f":
        found["d input"] = grad_of(xt)
    found |= {f"d {name}": grad_of(p) for name, p in model.named_parameters()}
    return found


def assert_same(model: nn.Module, tmp_path: Path, x: np.ndarray, out_width: int, **options: Any) -> None:
    """The exported model's outputs, states and gradients equal ours (float64, 1e-10)."""
    call = {k: v for k, v in options.items() if k in ("hx", "lengths")}
    theirs = exported(model, tmp_path, **{k: v for k, v in options.items() if k not in call})
    batch_first = getattr(model, "batch_first", False)
    g = np.random.default_rng(1).standard_normal(
        x.shape[:2] + (out_width,) if not batch_first else x.shape[:2] + (out_width,)
    )
    ours, reference = run_ours(model, x, g, **dict(call)), run_theirs(theirs, x, g, **dict(call))
    assert ours.keys() == reference.keys()
    for name in ours:
        np.testing.assert_allclose(reference[name], ours[name], rtol=RTOL, atol=ATOL, err_msg=name)


def layer_input(steps: int, batch: int, width: int, batch_first: bool = False) -> np.ndarray:
    shape = (batch, steps, width) if batch_first else (steps, batch, width)
    return np.random.default_rng(0).standard_normal(shape)


def some_lengths(steps: int, batch: int) -> np.ndarray:
    return np.array([steps - k % steps for k in range(batch)])


# --- generated cells -------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    program=programs,
    two_parts=st.booleans(),
    num_layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    with_lengths=st.booleans(),
    steps=st.integers(1, 4),
    batch=st.integers(1, 3),
)
def test_generated_cells_exported_compute_what_they_compute_here(
    tmp_path_factory, program, two_parts, num_layers, bidirectional, with_lengths, steps, batch
):
    layer = nn.Recurrent(
        GeneratedCell, 3, 4, num_layers, bidirectional, program=program, two_parts=two_parts, rng=0
    )
    # the generator's `mask` op is a constant of the batch's shape: such a file is made for one batch
    fixed = {"batch_size": batch} if any(op == "mask" for op, _ in program) else {}
    lengths = {"lengths": some_lengths(steps, batch)} if with_lengths else {}
    x = layer_input(steps, batch, 3)
    assert_same(layer, tmp_path_factory.mktemp("cell"), x, 4 * (1 + bidirectional), **fixed, **lengths)


# --- the cells of nn.examples and notebook 06, and the built-ins ------------------------------------------


def notebook_cell() -> type:
    """Notebook 06's PeepholeLSTM class, taken from the notebook's code."""
    notebook = json.loads((ROOT / "notebooks" / "06_custom_cell.ipynb").read_text(encoding="utf-8"))
    code = next(
        "".join(c["source"]) for c in notebook["cells"] if "class PeepholeLSTM(" in "".join(c["source"])
    )
    namespace = {"np": np, "tg": tg, "nn": nn}
    exec(code[code.index("class PeepholeLSTM(") :], namespace)  # noqa: S102  (this project's own notebook)
    return namespace["PeepholeLSTM"]


CELLS = {
    "peephole": lambda D, H, **o: nn.Recurrent(PeepholeLSTMCell, D, H, dtype="float64", rng=0, **o),
    "indrnn": lambda D, H, **o: nn.Recurrent(IndRNNCell, D, H, dtype="float64", rng=0, **o),
    "notebook06": lambda D, H, **o: nn.Recurrent(notebook_cell(), D, H, rng=0, **o),
}
BUILT_IN = {
    "rnn_tanh": lambda D, H, **o: nn.RNN(D, H, dtype="float64", rng=0, **o),
    "rnn_relu": lambda D, H, **o: nn.RNN(D, H, nonlinearity="relu", dtype="float64", rng=0, **o),
    "lstm": lambda D, H, **o: nn.LSTM(D, H, dtype="float64", rng=0, **o),
    "lstm_proj": lambda D, H, **o: nn.LSTM(D, H, proj_size=2, dtype="float64", rng=0, **o),
    "gru": lambda D, H, **o: nn.GRU(D, H, dtype="float64", rng=0, **o),
}
OPTIONS = [
    ({}, False),
    ({"num_layers": 2, "bidirectional": True}, True),
    ({"num_layers": 2, "batch_first": True}, True),
    ({"num_layers": 2, "bidirectional": True, "dropout": 0.5}, False),  # dropout: eval mode below
]


@pytest.mark.parametrize("options, with_lengths", OPTIONS)
@pytest.mark.parametrize("kind", sorted(CELLS) + sorted(BUILT_IN))
def test_cells_and_built_in_layers_exported_compute_the_same(tmp_path, kind, options, with_lengths):
    layer = {**CELLS, **BUILT_IN}[kind](3, 5, **options)
    layer.eval()
    steps, batch = 4, 3
    x = layer_input(steps, batch, 3, layer.batch_first)
    width = (getattr(layer, "proj_size", 0) or 5) * layer.num_directions
    extra = {"lengths": some_lengths(steps, batch)} if with_lengths else {}
    assert_same(layer, tmp_path, x, width, **extra)


class NormalisedCell(nn.Module):
    """A cell with a submodule (nn.Linear) and the ops the generator does not draw: layer norm (var,
    sqrt, pow), clip, pad and a slice, stack and unbind, amax, log_softmax, exp and log, reciprocal,
    minimum, a tensor power, float64 -> float32 -> float64."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        draw = np.random.default_rng(0)
        self.hidden_size = hidden_size
        self.project = nn.Linear(input_size + hidden_size, hidden_size, dtype="float64", rng=draw)
        self.gain = nn.Parameter(draw.uniform(0.5, 1.5, (hidden_size,)))

    def forward(self, x: tg.Tensor, h: Any = None) -> tg.Tensor:
        if h is None:
            h = tg.zeros(x.shape[0], self.hidden_size, dtype=x.dtype)
        a = self.project(tg.cat([x, h], axis=1))
        a = (a - a.mean(axis=1, keepdims=True)) / (a.var(axis=1, keepdims=True) + 1e-5).sqrt() * self.gain
        b = a.clip(-2.0, 1.5).pad(((0, 0), (1, 1)))[:, 1:-1] ** 2
        pair = tg.stack([a, b.reciprocal().minimum(a.abs() + 1.0)], axis=0)
        first, second = pair.unbind(0)
        peak = first.max(axis=1, keepdims=True)
        mixed = (first - peak).log_softmax(dim=1).exp() + (second + 1.0).log() + (b + 1.0) ** first.sigmoid()
        return mixed.float().double().tanh()


class Model(nn.Module):
    """A cell named as the file's class, with a weight tied under two names: h' = tanh(x Wᵀ + h Wᵀ)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(np.random.default_rng(0).uniform(-1, 1, (hidden_size, input_size)))
        self.tied = self.weight

    def forward(self, x: tg.Tensor, h: Any = None) -> tg.Tensor:
        a = x @ self.weight.T
        return (a if h is None else a + h @ self.tied.T).tanh()


def test_a_cell_named_model_with_a_tied_weight_exports(tmp_path):
    assert_same(nn.Recurrent(Model, 4, 4, bidirectional=True), tmp_path, layer_input(3, 2, 4), 8)
    assert "class ModelCell(nn.Module):" in (tmp_path / "model_torch.py").read_text()


def test_a_cell_with_a_submodule_and_the_rarer_ops_exports(tmp_path):
    layer = nn.Recurrent(NormalisedCell, 3, 4, num_layers=2, bidirectional=True)
    assert_same(layer, tmp_path, layer_input(4, 3, 3), 8, lengths=np.array([4, 2, 3]))
    assert "self.project = nn.Module()" in (tmp_path / "model_torch.py").read_text()


@pytest.mark.parametrize("kind", ["peephole", "indrnn", "lstm"])
def test_an_initial_state_and_an_unbatched_input_go_through_the_export(tmp_path, kind):
    layer = {**CELLS, **BUILT_IN}[kind](3, 4, num_layers=2)
    rng = np.random.default_rng(2)
    parts = 2 if kind != "indrnn" else 1
    hx = tuple(rng.standard_normal((2, 3, 4)) for _ in range(parts))
    assert_same(layer, tmp_path, layer_input(3, 3, 3), 4, hx=hx if parts == 2 else hx[0])
    theirs = exported(layer, tmp_path)
    x = layer_input(3, 1, 3)[:, 0]
    out, _ = layer(x)
    np.testing.assert_allclose(
        theirs(torch.from_numpy(x))[0].detach().numpy(), out.data, rtol=RTOL, atol=ATOL
    )


def test_a_file_made_at_one_batch_size_runs_at_others(tmp_path):
    layer = CELLS["peephole"](3, 4, num_layers=2, bidirectional=True)
    theirs = exported(layer, tmp_path)  # recorded at a batch of 7
    for batch in (1, 2, 11):
        x = layer_input(3, batch, 3)
        out, (h, c) = layer(x)
        mine = theirs(torch.from_numpy(x))
        np.testing.assert_allclose(mine[0].detach().numpy(), out.data, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(mine[1][1].detach().numpy(), c.data, rtol=RTOL, atol=ATOL)


def test_a_packed_sequence_goes_through_the_exported_loop(tmp_path):
    layer = CELLS["peephole"](3, 4, bidirectional=True)
    theirs = exported(layer, tmp_path)
    x, lengths = layer_input(4, 3, 3), np.array([2, 4, 3])
    out, (h, _) = layer(x, lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(x), torch.tensor(lengths), enforce_sorted=False
    )
    mine, (their_h, _) = theirs(packed)
    padded, _ = torch.nn.utils.rnn.pad_packed_sequence(mine)
    np.testing.assert_allclose(padded.detach().numpy(), out.data, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(their_h.detach().numpy(), h.data, rtol=RTOL, atol=ATOL)


# --- the language model -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", [PeepholeLSTMCell, "lstm", "gru"])
def test_a_language_model_exported_computes_its_logits_state_and_gradients(tmp_path, cell):
    model = nn.LanguageModel(7, 5, 6, cell, num_layers=2, dtype="float64", rng=0)
    tokens = np.random.default_rng(0).integers(0, 7, (4, 3))
    assert_same(model, tmp_path, tokens, 7, lengths=np.array([4, 2, 3]))


def test_the_exported_file_names_the_cells_source_lines_and_one_op_a_line(tmp_path):
    source = export.torch_source(CELLS["peephole"](3, 4))
    assert "# examples.py:" in source and "c = f * c + i * g.tanh()" in source
    assert "t17 = t16.sigmoid()" in source or ".sigmoid()" in source
    assert "import torch" in source and "class Model(Recurrent):" in source


# --- what the export refuses ------------------------------------------------------------------------------


class Doubled(tg.Function):
    """y = 2x, an op this library does not have: a user's own Function."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad):
        return (2 * grad,)


class CellWithOwnOp(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(np.ones((hidden_size, input_size)))

    def forward(self, x: tg.Tensor, h: Any = None) -> tg.Tensor:
        return Doubled.apply(x @ self.weight.T).tanh()


class CellWithBatchMask(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(np.ones((hidden_size, input_size)))

    def forward(self, x: tg.Tensor, h: Any = None) -> tg.Tensor:
        mask = np.arange(x.shape[0] * self.weight.shape[0]).reshape(x.shape[0], -1) % 3 == 0
        return tg.where(mask, (x @ self.weight.T).tanh(), 0.0)


class CellReadingValues(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(np.ones((hidden_size, input_size)))

    def forward(self, x: tg.Tensor, h: Any = None) -> tg.Tensor:
        y = (x @ self.weight.T).tanh()
        return y if y.sum().item() > 0 else -y


@pytest.mark.parametrize(
    "layer, message",
    [
        (
            lambda: nn.Recurrent(CellWithOwnOp, 3, 4),
            "CellWithOwnOp: the op Doubled has no PyTorch counterpart",
        ),
        (lambda: nn.Recurrent(CellWithBatchMask, 3, 4), "depends on the batch size"),
        (lambda: nn.Recurrent(CellReadingValues, 3, 4), "cannot be recorded as a program"),
        (lambda: nn.GRU(3, 4, reset_after=False), "GRU(reset_after=False)"),
        (lambda: nn.Linear(3, 4), "expected an nn.LanguageModel, nn.Recurrent"),
    ],
)
def test_what_has_no_torch_counterpart_is_named_and_nothing_is_written(tmp_path, layer, message):
    with pytest.raises((ValueError, TypeError)) as caught:
        export.torch(layer(), tmp_path / "m.py")
    assert message in str(caught.value)
    assert not list(tmp_path.iterdir())


class LeakyCell(nn.Module):
    """h' = where(a > 0, a, a / 10), a = x Wᵀ + h Uᵀ: a mask computed from values."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        draw = np.random.default_rng(0)
        self.weight_ih = nn.Parameter(draw.uniform(-1, 1, (hidden_size, input_size)))
        self.weight_hh = nn.Parameter(draw.uniform(-1, 1, (hidden_size, hidden_size)))

    def forward(self, x: tg.Tensor, h: Any = None) -> tg.Tensor:
        a = x @ self.weight_ih.T if h is None else x @ self.weight_ih.T + h @ self.weight_hh.T
        return tg.where(a > 0, a, a * 0.1)


def test_a_mask_computed_from_values_is_exported_as_an_op_never_frozen(tmp_path):
    layer = nn.Recurrent(LeakyCell, 3, 4, bidirectional=True)
    assert "> 0" in export.torch_source(layer)  # the comparison is a recorded op
    assert_same(layer, tmp_path, layer_input(4, 3, 3), 8, lengths=np.array([4, 2, 3]))


class CellWithRowConstants(nn.Module):
    """Constants of the batch's shape that do not depend on it: one mask row repeated, a filled array."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(np.random.default_rng(0).uniform(-1, 1, (hidden_size, input_size)))

    def forward(self, x: tg.Tensor, h: Any = None) -> tg.Tensor:
        n, size = x.shape[0], self.weight.shape[0]
        rows = np.tile(np.arange(size) % 2 == 0, (n, 1))
        a = (x @ self.weight.T + tg.Tensor(np.full((n, size), 0.5))).tanh()
        return tg.where(rows, a, a * 0.5) if h is None else tg.where(rows, a, h)


def test_constants_of_the_batchs_shape_are_made_for_any_batch(tmp_path):
    layer = nn.Recurrent(CellWithRowConstants, 3, 4, num_layers=2)
    assert_same(layer, tmp_path, layer_input(3, 2, 3), 4)  # recorded at a batch of 7, run at 2
    source = (tmp_path / "model_torch.py").read_text()
    assert "torch.full((n, 4), 0.5" in source and ".expand(n, 4)" in source


def test_a_cell_with_a_batch_shaped_mask_exports_for_its_batch_size(tmp_path):
    layer = nn.Recurrent(CellWithBatchMask, 3, 4)
    assert_same(layer, tmp_path, layer_input(3, 2, 3), 4, batch_size=2)


def test_the_library_does_not_import_torch_to_export():
    code = (
        "import sys, tinygrad_rnn.export as e; from tinygrad_rnn import nn; "
        "from tinygrad_rnn.nn.examples import PeepholeLSTMCell; "
        "e.torch_source(nn.Recurrent(PeepholeLSTMCell, 3, 4)); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --- the command ------------------------------------------------------------------------------------------


def test_the_export_command_writes_the_model_and_its_weights_from_a_checkpoint(tmp_path, capsys):
    from tinygrad_rnn import lm

    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question\n" * 20, encoding="utf-8")
    checkpoint = tmp_path / "run.npz"
    config = lm.TrainConfig(
        cell=f"{ROOT / 'tests' / 'cells_for_tests.py'}:PeepholeLSTMCell", text=str(text), embedding=4,
        hidden=5, seq_len=6, batch=2, steps=2, eval_every=2, sample_every=100, checkpoint=str(checkpoint),
    )  # fmt: skip
    lm.train(config, verbose=False)
    target = tmp_path / "model_torch.py"
    assert main(["export", "--checkpoint", str(checkpoint), "-o", str(target)]) == 0
    assert "model_torch.safetensors" in capsys.readouterr().out
    model, _, _ = lm.load_model(checkpoint)
    theirs = imported(target).Model()
    theirs.load_state_dict(safetensors_torch.load_file(str(target.with_suffix(".safetensors"))))
    tokens = np.random.default_rng(0).integers(0, model.embedding.num_embeddings, (5, 2))
    logits, (h, c) = model(tokens)
    their_logits, (their_h, their_c) = theirs(torch.from_numpy(tokens))
    assert their_logits.shape == logits.shape == (5, 2, model.embedding.num_embeddings)
    np.testing.assert_allclose(their_logits.detach().numpy(), logits.data, rtol=1e-5, atol=1e-6)  # float32
    np.testing.assert_allclose(their_c.detach().numpy(), c.data, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "--checkpoint", "missing.npz", "-o", "m.py"], "no checkpoint at missing.npz"),
        (["export", "--checkpoint", "run.npz", "-o", "m.txt"], "expected a file ending in .py"),
        (["export", "-o", "m.py"], "--checkpoint"),
    ],
)
def test_export_command_mistakes_are_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


class LearnedStartCell(nn.Module):
    """h' = tanh(x Wᵀ + h Uᵀ), starting from a learned h0 (not zeros) when the state is None."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        draw = np.random.default_rng(4)
        self.weight_ih = nn.Parameter(draw.uniform(-1, 1, (hidden_size, input_size)))
        self.weight_hh = nn.Parameter(draw.uniform(-1, 1, (hidden_size, hidden_size)))
        self.h0 = nn.Parameter(draw.uniform(-1, 1, (hidden_size,)))

    def forward(self, x: tg.Tensor, h: Any = None) -> tg.Tensor:
        if h is None:
            h = self.h0 * tg.ones(x.shape[0], self.h0.shape[0], dtype=np.float64)
        return (x @ self.weight_ih.T + h @ self.weight_hh.T).tanh()


def test_shorter_sequences_start_from_the_cells_own_state_in_the_reverse_direction_too(tmp_path):
    layer = nn.Recurrent(LearnedStartCell, 3, 4, num_layers=2, bidirectional=True)
    assert_same(layer, tmp_path, layer_input(5, 3, 3), 8, lengths=np.array([5, 2, 3]))


def test_every_op_class_has_a_torch_line():
    """A new op (one class, one method, one row of tests/op_table.py) must also say how torch writes it."""
    from tinygrad_rnn import ops
    from tinygrad_rnn.export.torch_ops import RENDER

    classes = {c.__name__ for c in vars(ops).values() if isinstance(c, type) and issubclass(c, tg.Function)}
    assert sorted(classes - {"Function"} - RENDER.keys()) == []
