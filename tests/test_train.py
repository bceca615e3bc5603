"""Training, checkpoints (round trip, atomic writes, exact resume), sampling and the train/sample commands."""

import os
from pathlib import Path

import numpy as np
import pytest

from tinygrad_rnn import optim
from tinygrad_rnn.cli import main
from tinygrad_rnn.lm import checkpoint as ckpt
from tinygrad_rnn.lm import training as train_module
from tinygrad_rnn.lm.data import InputError, Vocabulary, read_text, shipped_text_path
from tinygrad_rnn.lm.training import TrainConfig, evaluate, load_model, sample, train
from tinygrad_rnn.nn import LanguageModel

TINY = {"embedding": 8, "hidden": 16, "seq_len": 8, "batch": 4, "eval_every": 5, "sample_every": 7}


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    """The first 6,000 characters of the shipped Hamlet."""
    path = tmp_path_factory.mktemp("text") / "hamlet_start.txt"
    path.write_text(read_text(shipped_text_path())[:6000], encoding="utf-8")
    return str(path)


def config(text_file, **changes):
    return TrainConfig(text=text_file, **{**TINY, "sample_length": 10, **changes})


def same_parameters(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


# --- checkpoints --------------------------------------------------------------------------------


def test_checkpoint_round_trip_holds_everything_as_plain_arrays(tmp_path, text_file):
    path = tmp_path / "run.npz"
    result = train(config(text_file, steps=6, checkpoint=str(path)), verbose=False)
    with np.load(path, allow_pickle=False) as npz:
        kinds = {npz[name].dtype.kind for name in npz.files}
    assert kinds <= {"f", "i", "U"}
    saved = ckpt.load(path)
    assert saved.step == 6 and saved.vocab == result.vocab
    assert saved.config["hidden"] == 16 and saved.config["text"] == text_file
    assert len(saved.hidden) == 2 and saved.hidden[0].shape == (1, 4, 16)  # LSTM (h, c): (L, N, H)
    np.testing.assert_array_equal(saved.history["train_loss"], result.losses)
    model = LanguageModel(len(saved.vocab), 8, 16, rng=1)
    optimizer = optim.Adam(model.parameters())
    ckpt.restore(saved, model, optimizer)
    assert same_parameters(model, result.model)
    state = optimizer.state_dict()["state"]
    assert state[0]["step"] == 6 and state[0]["exp_avg"].shape == model.embedding.weight.shape
    assert optimizer.param_groups[0]["lr"] == pytest.approx(3e-3, rel=0, abs=0)


def test_a_failed_write_leaves_the_old_checkpoint_intact(tmp_path, text_file, monkeypatch):
    path = tmp_path / "run.npz"
    train(config(text_file, steps=5, checkpoint=str(path)), verbose=False)
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        train(config(text_file, steps=10, checkpoint=str(path)), resume=True, verbose=False)
    assert path.read_bytes() == before
    assert ckpt.load(path).step == 5
    assert os.listdir(tmp_path) == ["run.npz"]  # no temporary file left behind


def test_a_checkpoint_of_another_shape_names_the_differences_and_changes_nothing(tmp_path, text_file):
    path = tmp_path / "run.npz"
    train(config(text_file, steps=5, checkpoint=str(path)), verbose=False)
    saved = ckpt.load(path)
    model = LanguageModel(len(saved.vocab), 8, 12, rng=0)
    before = model.state_dict()
    with pytest.raises(
        ckpt.CheckpointError, match=r"another shape.*rnn.weight_hh_l0: expected shape \(48, 12\)"
    ):
        ckpt.restore(saved, model)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    # a model that fits but an optimizer that does not: the model is rolled back
    model = LanguageModel(len(saved.vocab), 8, 16, rng=0)
    before = model.state_dict()
    optimizer = optim.Adam([*model.parameters()][:3])
    with pytest.raises(ckpt.CheckpointError, match="does not fit the optimizer"):
        ckpt.restore(saved, model, optimizer)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())


def test_loading_a_missing_or_foreign_file_is_a_clear_error(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint at"):
        ckpt.load(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ckpt.CheckpointError, match="not a readable"):
        ckpt.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ckpt.CheckpointError, match="not a tinygrad_rnn checkpoint"):
        ckpt.load(tmp_path / "other.npz")


# --- training -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cell, layers, dropout", [("lstm", 2, 0.3), ("gru", 1, 0.0)])
def test_resume_gives_exactly_the_numbers_of_an_uninterrupted_run(tmp_path, text_file, cell, layers, dropout):
    # 40 steps cross an epoch of the 4 tracks (5,400 training chars / 4 / 8 ≈ 168 rows ≈ 21 batches)
    changes = {"cell": cell, "layers": layers, "dropout": dropout, "steps": 40}
    whole = train(config(text_file, checkpoint=str(tmp_path / "a.npz"), **changes), verbose=False)
    train(config(text_file, checkpoint=str(tmp_path / "b.npz"), **{**changes, "steps": 20}), verbose=False)
    resumed = train(
        config(text_file, checkpoint=str(tmp_path / "b.npz"), **changes), resume=True, verbose=False
    )
    assert resumed.steps_run == 20 and len(resumed.losses) == 40
    np.testing.assert_array_equal(resumed.losses, whole.losses)
    np.testing.assert_array_equal(resumed.valid_steps, whole.valid_steps)
    np.testing.assert_array_equal(resumed.valid_losses, whole.valid_losses)
    assert same_parameters(resumed.model, whole.model)
    assert resumed.samples == [s for s in whole.samples if s[0] > 20]


def test_resume_with_other_settings_or_without_a_checkpoint_is_refused(tmp_path, text_file):
    path = str(tmp_path / "run.npz")
    train(config(text_file, steps=5, checkpoint=path), verbose=False)
    with pytest.raises(ckpt.CheckpointError, match=r"hidden=16 \(given 32\)"):
        train(config(text_file, steps=10, checkpoint=path, hidden=32), resume=True, verbose=False)
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint at"):
        train(config(text_file, steps=10, checkpoint=path + ".gone"), resume=True, verbose=False)


def test_invalid_options_are_named():
    with pytest.raises(InputError, match=r"hidden=0, batch=-1.*lr=0"):
        TrainConfig(hidden=0, batch=-1, lr=0)


def test_short_training_beats_the_unigram_baseline_clearly(text_file):
    cfg = config(text_file, embedding=16, hidden=64, seq_len=16, batch=8, steps=200, lr=1e-2, eval_every=200)
    result = train(cfg, verbose=False)
    assert result.losses[0] == pytest.approx(np.log(65), rel=0.05, abs=0)  # uniform over V at the start
    assert result.valid_bpc < result.unigram_bpc - 0.8, (result.valid_bpc, result.unigram_bpc)


def test_without_tqdm_progress_is_printed_as_plain_lines(text_file, monkeypatch, capsys):
    monkeypatch.setattr(train_module, "tqdm", None)
    train(config(text_file, steps=10, sample_every=10), verbose=True)
    out = capsys.readouterr().out
    assert "step 10/10  loss" in out and "bpc" in out and "--- sample at step 10" in out


# --- sampling -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(text_file):
    return train(config(text_file, steps=30, eval_every=30, sample_every=30), verbose=False)


def test_sample_starts_with_the_prime_and_is_reproducible(trained):
    text = sample(trained.model, trained.vocab, 40, temperature=0.7, prime="Ham", rng=3)
    assert text.startswith("Ham") and len(text) == 43
    assert text == sample(trained.model, trained.vocab, 40, temperature=0.7, prime="Ham", rng=3)
    assert trained.model.training  # the mode is given back


def test_a_small_temperature_samples_the_most_likely_character(trained):
    model, vocab = trained.model, trained.vocab
    greedy = [*vocab.encode("The")]
    model.eval()
    for _ in range(15):
        logits, _ = model(np.array(greedy)[:, None])
        greedy.append(int(logits.data[-1, 0].argmax()))
    model.train()
    assert sample(model, vocab, 15, temperature=1e-4, prime="The", rng=0) == vocab.decode(greedy)


def test_sample_rejects_bad_temperature_and_unknown_prime(trained):
    with pytest.raises(InputError, match="temperature must be > 0"):
        sample(trained.model, trained.vocab, 5, temperature=0.0)
    with pytest.raises(InputError, match="outside the vocabulary: '@#'"):
        sample(trained.model, trained.vocab, 5, prime="a@b#")


def test_evaluate_does_not_depend_on_chunking(trained, text_file):
    ids = Vocabulary.from_text(read_text(text_file)).encode(read_text(text_file)[-700:])
    whole = evaluate(trained.model, ids, n_tracks=4, chunk=1000)
    chunked = evaluate(trained.model, ids, n_tracks=4, chunk=7)
    assert chunked == pytest.approx(whole, rel=1e-5, abs=0)


# --- the commands ---------------------------------------------------------------------------------


def tiny_args(text_file, path):
    return ["--text", text_file, "--embedding", "8", "--hidden", "16", "--seq-len", "8", "--batch", "4"] + [
        "--eval-every",
        "5",
        "--checkpoint",
        str(path),
        "-q",
    ]


def test_train_resume_and_sample_commands(tmp_path, text_file, capsys):
    path = tmp_path / "run.npz"
    assert main(["train", "--steps", "5", *tiny_args(text_file, path)]) == 0
    out = capsys.readouterr().out
    assert "5 steps in" in out and "unigram baseline" in out and f"checkpoint: {path}" in out
    assert main(["train", "--resume", "--checkpoint", str(path), "--steps", "8", "-q"]) == 0
    assert "3 steps in" in capsys.readouterr().out
    assert ckpt.load(path).step == 8
    assert main(["sample", "--checkpoint", str(path), "--length", "20", "--prime", "Ham", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Ham") and len(text) == 3 + 20 + 1
    model, vocab, _ = load_model(path)
    assert text[:-1] == sample(model, vocab, 20, temperature=0.8, prime="Ham", rng=1)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "is empty"), (b"\xc3\x28 invalid", "is not UTF-8 text: byte 0xc3 at offset 0")],
)
def test_train_command_rejects_bad_text_in_one_line(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    assert main(["train", "--text", str(bad), "--steps", "1", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinygrad-rnn train: error:") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_commands_reject_bad_checkpoints_and_sampling_options(tmp_path, text_file, capsys):
    path = tmp_path / "run.npz"
    assert main(["train", "--steps", "5", *tiny_args(text_file, path)]) == 0
    capsys.readouterr()
    cases = [
        (
            ["train", "--resume", "--checkpoint", str(path), "--hidden", "32", "--steps", "9"],
            "hidden=16 (given 32)",
        ),
        (["train", "--resume", "--steps", "9"], "--resume needs --checkpoint"),
        (["sample", "--checkpoint", str(tmp_path / "gone.npz")], "no checkpoint at"),
        (["sample", "--checkpoint", str(path), "--prime", "Ham~"], "outside the vocabulary: '~'"),
        (
            ["sample", "--checkpoint", str(path), "--temperature", "0"],
            "expected a finite number > 0, got '0'",
        ),
        (["sample", "--checkpoint", str(path), "--temperature", "-1"], "expected a finite number > 0"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)


# --- nothing lost ---------------------------------------------------------------------------------


def test_an_existing_checkpoint_is_continued_or_replaced_never_silently_overwritten(
    tmp_path, text_file, capsys
):
    path = tmp_path / "run.npz"
    assert main(["train", "--steps", "5", *tiny_args(text_file, path)]) == 0
    before = path.read_bytes()
    capsys.readouterr()
    assert main(["train", "--steps", "3", *tiny_args(text_file, path)]) == 2
    err = capsys.readouterr().err
    assert f"{path} exists: continue it with --resume, or replace it with --force" in err
    assert err.count("\n") == 1 and path.read_bytes() == before
    assert main(["train", "--steps", "3", "--force", *tiny_args(text_file, path)]) == 0
    assert ckpt.load(path).step == 3


def test_steps_zero_prints_no_checkpoint_it_did_not_write(tmp_path, text_file, capsys):
    path = tmp_path / "run.npz"
    assert main(["train", "--steps", "0", *tiny_args(text_file, path)]) == 0
    assert "checkpoint:" not in capsys.readouterr().out and not path.exists()


def test_a_checkpoint_path_that_cannot_be_written_is_refused_before_training(tmp_path, text_file):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder.npz").mkdir()
    cases = [
        (tmp_path / "folder.npz", "is a directory"),
        (tmp_path / "file" / "run.npz", "is a file, not a folder"),
        (tmp_path / "file" / "deeper" / "run.npz", "is a file, not a folder"),
    ]
    if Path("/proc/self").is_dir():  # a folder where even root cannot create a file
        cases.append((Path("/proc/run.npz"), "cannot write the checkpoint /proc/run.npz in /proc"))
    for path, message in cases:
        with pytest.raises(ckpt.CheckpointError, match=message):
            train(config(text_file, steps=1000, checkpoint=str(path)), verbose=False)


@pytest.mark.parametrize(
    "meta, message",
    [
        ("[1, 2]", "its metadata is a JSON list, expected an object"),
        ('"text"', "its metadata is a JSON str"),
        (
            '{"format": "tinygrad_rnn.checkpoint/1", "config": [], "rng": {}, "optimizer": {}}',
            "'config' is list",
        ),
        (
            '{"format": "tinygrad_rnn.checkpoint/1", "config": {}, "rng": {}, "optimizer": {"numbers": []}}',
            "",
        ),
    ],
)
def test_metadata_of_the_wrong_shape_is_one_line(tmp_path, text_file, capsys, meta, message):
    path = tmp_path / "run.npz"
    train(config(text_file, steps=2, checkpoint=str(path)), verbose=False)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["meta"] = np.array(meta)
    np.savez(path, **arrays)
    with pytest.raises(ckpt.CheckpointError, match=f"not a valid .* checkpoint: .*{message}"):
        ckpt.load(path)
    for argv in (["sample", "--checkpoint", str(path)], ["train", "--resume", "--checkpoint", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is not a valid" in err and "Traceback" not in err


ONE_TUPLE_CELL = '''
import numpy as np
import tinygrad_rnn as tg
from tinygrad_rnn import nn


class TupleElman(nn.Module):
    """h = tanh(x W_ihᵀ + h W_hhᵀ), its state a tuple of one Tensor."""

    def __init__(self, input_size, hidden_size, dtype=None, rng=None):
        super().__init__()
        rng = np.random.default_rng(rng)
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(rng.uniform(-0.3, 0.3, (hidden_size, input_size)).astype(np.float32))
        self.weight_hh = nn.Parameter(rng.uniform(-0.3, 0.3, (hidden_size, hidden_size)).astype(np.float32))

    def forward(self, x, state=None):
        (h,) = state if state is not None else (tg.zeros(x.shape[0], self.hidden_size),)
        return ((x @ self.weight_ih.T + h @ self.weight_hh.T).tanh(),)
'''


def test_resume_keeps_a_custom_cells_state_a_tuple_of_one(tmp_path, text_file):
    cell_file = tmp_path / "tuple_cell.py"
    cell_file.write_text(ONE_TUPLE_CELL)
    changes = {"cell": f"{cell_file}:TupleElman", "steps": 12}
    whole = train(config(text_file, checkpoint=str(tmp_path / "a.npz"), **changes), verbose=False)
    train(config(text_file, checkpoint=str(tmp_path / "b.npz"), **{**changes, "steps": 6}), verbose=False)
    resumed = train(
        config(text_file, checkpoint=str(tmp_path / "b.npz"), **changes), resume=True, verbose=False
    )
    np.testing.assert_array_equal(resumed.losses, whole.losses)


def test_a_cell_file_whose_parameters_ignore_the_dtype_is_one_line(tmp_path, text_file, capsys):
    cell_file = tmp_path / "float64_cell.py"
    cell_file.write_text(ONE_TUPLE_CELL.replace(".astype(np.float32)", ""))
    code = main(["train", "--text", str(text_file), "--cell", f"{cell_file}:TupleElman", "--steps", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "cell_l0.weight_ih is float64 but the model is float32" in err


# --- checkpoints whose arrays are well-formed but do not fit ----------------------------------------


def damage(path: Path, change) -> None:
    """Rewrite the checkpoint at `path` with `change(arrays, meta)` applied (meta: the parsed JSON)."""
    import json

    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = json.loads(str(arrays["meta"][()]))
    change(arrays, meta)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def _set(arrays, name, value):
    arrays[name] = value


def _nan_weight(arrays, name):
    arrays[name] = arrays[name].copy()
    arrays[name].flat[3] = np.nan


DAMAGES = {  # name -> (change, a piece of the one line, whether sample reads it too)
    "hidden of another shape": (
        lambda a, m: _set(a, "hidden/0", np.zeros((1, 4, 7), np.float32)),
        "its carried state hidden/0 is float32 (1, 4, 7), expected float32 (1, 4, 16)",
        False,
    ),
    "tuple flag lost": (
        lambda a, m: m.update(hidden_tuple=False),
        "its carried state is 2 arrays but not marked a tuple",
        False,
    ),
    "nan in the carried state": (
        lambda a, m: _nan_weight(a, "hidden/1"),
        "its carried state hidden/1 holds nan",
        False,
    ),
    "surrogate code point in the vocabulary": (
        lambda a, m: _set(a, "vocab", np.concatenate([a["vocab"][:-1], [0xD800]]).astype(np.int32)),
        "code point 0xd800",
        True,
    ),
    "nan weights of a diverged run": (
        lambda a, m: _nan_weight(a, "model/rnn.weight_hh_l0"),
        "rnn.weight_hh_l0 holds nan",
        True,
    ),
}


@pytest.mark.parametrize("name", DAMAGES)
def test_a_checkpoint_that_does_not_fit_is_one_line_for_resume_and_sample(tmp_path, text_file, capsys, name):
    change, message, sample_reads_it = DAMAGES[name]
    path = tmp_path / "run.npz"
    assert main(["train", "--steps", "5", *tiny_args(text_file, path)]) == 0
    damage(path, change)
    before = path.read_bytes()
    capsys.readouterr()
    commands = [["train", "--resume", "--checkpoint", str(path), "--steps", "9", "-q"]]
    commands += [["sample", "--checkpoint", str(path), "--length", "5"]] if sample_reads_it else []
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"tinygrad-rnn {argv[0]}: error:") and err.count("\n") == 1, err
        assert message in err and "Traceback" not in err, err
    assert path.read_bytes() == before


@pytest.mark.parametrize("temperature", [1e-310, 5e-324, 1e-30])
def test_a_tiny_temperature_is_argmax_computed_stably(trained, temperature):
    greedy = sample(trained.model, trained.vocab, 15, temperature=1e-4, prime="The", rng=0)
    assert sample(trained.model, trained.vocab, 15, temperature=temperature, prime="The", rng=0) == greedy


def test_sample_command_with_a_tiny_temperature(tmp_path, text_file, capsys):
    path = tmp_path / "run.npz"
    assert main(["train", "--steps", "5", *tiny_args(text_file, path)]) == 0
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(path), "--length", "10", "--temperature", "1e-310"]) == 0
    assert len(capsys.readouterr().out) == 11
