"""Train a character-level language model (Embedding → RNN/LSTM/GRU stack → Linear) and sample from it.

One step: the next (T, N) batch of the N parallel tracks (`data.Batches`), logits = model(inputs,
h), L = mean_{t,n} −log softmax(logits_{t,n})[target_{t,n}] (nats/char), backward, clip the joint
gradient norm, an Adam step, then h ← h.detach(): the state goes on into the next batch but the
gradient stops there (truncated BPTT). Bits per character: bpc = L / ln 2.

A run is deterministic given its config (the seed draws the initial weights and drives dropout), and
`resume=True` continues from a checkpoint to the very numbers an uninterrupted run gives.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..context import no_grad
from ..factories import generator
from ..nn import LanguageModel
from ..nn import functional as F
from ..nn.recurrent import make_layer
from ..nn.utils import clip_grad_norm_
from ..optim import Adam
from ..tensor import Tensor
from . import checkpoint as ckpt
from .cells import absolute_spec, cell_label, resolve_cell
from .data import Batches, InputError, Vocabulary, load_corpus, tracks, unigram_entropy

try:
    from tqdm import tqdm
except ImportError:  # the `train` extra is optional: plain progress lines instead
    tqdm = None

LN2 = math.log(2.0)
EVAL_TRACKS = 32

# Options that fix the model or the walk over the data: a resumed run must keep them.
FIXED_ON_RESUME = ("cell", "dtype", "embedding", "hidden", "layers", "dropout", "batch", "valid_fraction")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on.

    Model: cell (a built-in's name, or 'path/to/file.py:ClassName', kept with the file's absolute path),
    dtype ('float32', 'float64', or None: float32, or for a cell class that takes no `dtype=` the
    dtype its parameters are made in), embedding E, hidden H, layers L, dropout (between layers).
    Data: text (None: the
    shipped Hamlet), valid_fraction (the end of the text), seq_len T, batch N. Optimisation: steps
    (counted from 0, so resuming a run of k steps with steps=2k trains k more), Adam's lr, clip (max
    joint gradient norm). Reporting: validation loss every eval_every steps, a sample of
    sample_length characters at temperature every sample_every steps. The checkpoint (when set) is
    written every eval_every steps and at the end. seed draws the initial weights and drives dropout.
    """

    cell: str = "lstm"
    dtype: str | None = None
    text: str | None = None
    embedding: int = 32
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.0
    seq_len: int = 32
    batch: int = 32
    steps: int = 2500
    lr: float = 3e-3
    clip: float = 5.0
    eval_every: int = 250
    sample_every: int = 1000
    sample_length: int = 200
    temperature: float = 0.8
    valid_fraction: float = 0.1
    seed: int = 0
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        positive = ("embedding", "hidden", "layers", "seq_len", "batch", "eval_every", "sample_every")
        bad = [
            f"{name}={getattr(self, name)!r}" for name in positive if not _positive_int(getattr(self, name))
        ]
        if not (isinstance(self.steps, int) and self.steps >= 0):
            bad.append(f"steps={self.steps!r}")
        for name in ("lr", "clip", "temperature"):
            if not getattr(self, name) > 0:
                bad.append(f"{name}={getattr(self, name)!r}")
        if not 0 <= self.dropout < 1:
            bad.append(f"dropout={self.dropout!r}")
        if self.dtype is not None and self.dtype not in DTYPES:
            bad.append(f"dtype={self.dtype!r}")
        if bad:
            raise InputError(
                f"invalid training options (sizes and counts must be positive): {', '.join(bad)}"
            )
        object.__setattr__(self, "cell", absolute_spec(self.cell))  # frozen: set once, here

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from a dict such as a checkpoint's (unknown keys are an error)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InputError(f"unknown training options: {unknown}")
        try:
            return cls(**values)
        except TypeError as error:
            raise InputError(f"invalid training options: {error}") from None


@dataclass
class TrainResult:
    """The trained model and its curves. losses[i] is the training loss (nats/char) of step i + 1,
    over the whole run including the part before a resume; valid_losses[j] is measured after step
    valid_steps[j]. `elapsed` and `steps_run` cover this call only, `samples` too."""

    model: LanguageModel
    vocab: Vocabulary
    config: TrainConfig
    losses: np.ndarray
    valid_steps: np.ndarray
    valid_losses: np.ndarray
    unigram: float
    samples: list[tuple[int, str]] = field(default_factory=list)
    elapsed: float = 0.0
    steps_run: int = 0

    @property
    def valid_bpc(self) -> float:
        """The last validation loss in bits per character (nan if none was measured)."""
        return self.valid_losses[-1] / LN2 if len(self.valid_losses) else math.nan

    @property
    def unigram_bpc(self) -> float:
        return self.unigram / LN2

    @property
    def steps_per_second(self) -> float:
        return self.steps_run / self.elapsed if self.elapsed > 0 else math.nan


def build_model(config: TrainConfig, vocab_size: int, rng: np.random.Generator) -> LanguageModel:
    """The model a config describes, its initial weights drawn from `rng` (which then drives dropout)."""
    cell = resolve_cell(config.cell)  # 'lstm', or the class a 'path/to/file.py:ClassName' names
    sizes = (vocab_size, config.embedding, config.hidden, cell, config.layers, config.dropout)
    own = _own_dtype(cell, config, rng)
    if own and config.dtype and own != config.dtype:
        raise InputError(
            f"cell {cell_label(config.cell)} takes no dtype= and makes its parameters in {own}, "
            f"but --dtype is {config.dtype}: leave --dtype out, or give the cell a dtype= argument"
        )
    try:
        return LanguageModel(*sizes, dtype=config.dtype or own or "float32", rng=rng)
    except (TypeError, ValueError) as error:  # a user's cell that cannot be built as told
        raise InputError(f"cell {cell_label(config.cell)}: {error}") from error


def _own_dtype(cell: Any, config: TrainConfig, rng: np.random.Generator) -> str | None:
    """The one float dtype a cell class that takes no `dtype=` makes its parameters in (one layer
    built with a copy of `rng`, so the model's own draws are unchanged); None for any other cell."""
    try:
        parameters = inspect.signature(cell).parameters.values()
    except (TypeError, ValueError):  # a built-in's name, or no signature to read
        return None
    if any(p.name == "dtype" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    probe = make_layer(cell, config.embedding, config.hidden, rng=copy.deepcopy(rng))
    kinds = {str(p.dtype) for p in probe.parameters() if p.dtype.kind == "f"}
    return kinds.pop() if len(kinds) == 1 else None


def train(config: TrainConfig, *, resume: bool = False, verbose: bool = True) -> TrainResult:
    """Train until `config.steps` updates (continuing `config.checkpoint` if `resume`).

    verbose prints a progress bar (tqdm, else a line every few percent), the validation loss every
    `eval_every` steps and a generated sample every `sample_every` steps.
    """
    if config.checkpoint:
        ckpt.check_writable(config.checkpoint)
    corpus = load_corpus(config.text, config.valid_fraction)
    vocab, vocab_size = corpus.vocab, len(corpus.vocab)
    rng = np.random.default_rng(config.seed)
    model = build_model(config, vocab_size, rng)
    optimizer = Adam(model.parameters(), lr=config.lr)
    step, position, hidden = 0, 0, None
    losses: list[float] = []
    valid_steps: list[int] = []
    valid_losses: list[float] = []
    if resume:
        saved = _load_for_resume(config, vocab)
        ckpt.restore(saved, model, optimizer, source=f"checkpoint {config.checkpoint}")
        for group in optimizer.param_groups:
            group["lr"] = config.lr
        try:
            rng.bit_generator.state = saved.rng["model"]
        except (TypeError, ValueError, KeyError) as error:
            raise ckpt.CheckpointError(
                f"checkpoint {config.checkpoint} has an invalid random state: {error}"
            ) from None
        step, position = saved.step, saved.position
        hidden = _carried_state(saved, model, config)
        losses = saved.history["train_loss"].tolist()
        valid_steps = saved.history["valid_step"].astype(int).tolist()
        valid_losses = saved.history["valid_loss"].tolist()
    batches = Batches(corpus.train, config.batch, config.seq_len, position)
    unigram = unigram_entropy(corpus.train, vocab_size)
    result = TrainResult(model, vocab, config, np.array([]), np.array([]), np.array([]), unigram)
    progress = _Progress(step, config.steps, verbose)
    progress.write(
        f"{cell_label(config.cell)} L={config.layers} H={config.hidden} E={config.embedding} "
        f"{np.dtype(model.embedding.weight.dtype)}, V={vocab_size}, "
        f"{len(corpus.train):,} training and {len(corpus.valid):,} validation characters; "
        f"unigram baseline {unigram / LN2:.3f} bpc"
    )
    start = time.perf_counter()
    first_step = step
    try:
        while step < config.steps:
            inputs, targets, restart = batches.next()
            logits, hidden = model(inputs, None if restart else hidden)
            loss = F.cross_entropy(logits.reshape(-1, vocab_size), targets.reshape(-1))
            optimizer.zero_grad(set_to_none=False)  # reuse the buffers: cheaper than fresh pages
            loss.backward()
            clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            hidden = _detach(hidden)
            step += 1
            losses.append(loss.item())
            progress.update(step, losses)
            if step % config.eval_every == 0 or step == config.steps:
                valid_steps.append(step)
                valid_losses.append(evaluate(model, corpus.valid))
                progress.write(
                    f"step {step}: train {np.mean(losses[-config.eval_every :]) / LN2:.3f} bpc, "
                    f"valid {valid_losses[-1] / LN2:.3f} bpc (unigram {unigram / LN2:.3f})"
                )
            if step % config.sample_every == 0:
                text = sample(
                    model,
                    vocab,
                    config.sample_length,
                    temperature=config.temperature,
                    rng=np.random.default_rng([config.seed, step]),
                )
                result.samples.append((step, text))
                progress.write(f"--- sample at step {step} (τ = {config.temperature}) ---\n{text}\n---")
            if config.checkpoint and (step % config.eval_every == 0 or step == config.steps):
                ckpt.save(
                    config.checkpoint,
                    ckpt.Checkpoint(
                        model=model.state_dict(),
                        optimizer=optimizer.state_dict(),
                        vocab=vocab,
                        step=step,
                        config=dataclasses.asdict(config),
                        position=batches.position,
                        hidden=_state_to_arrays(hidden),
                        hidden_tuple=isinstance(hidden, tuple),
                        rng={"model": rng.bit_generator.state},
                        history={
                            "train_loss": np.array(losses),
                            "valid_step": np.array(valid_steps, dtype=np.int64),
                            "valid_loss": np.array(valid_losses),
                        },
                    ),
                )
    finally:
        progress.close()
    result.elapsed = time.perf_counter() - start
    result.steps_run = step - first_step
    result.losses = np.array(losses)
    result.valid_steps = np.array(valid_steps, dtype=np.int64)
    result.valid_losses = np.array(valid_losses)
    return result


def evaluate(model: LanguageModel, ids: np.ndarray, n_tracks: int = EVAL_TRACKS, chunk: int = 256) -> float:
    """Mean cross-entropy (nats/char) over a whole stream, without dropout and without a graph.

    The stream is read as `n_tracks` parallel tracks (fewer if it is short), each from its start
    with a zero state carried to its end, so the number does not depend on the training batch
    shape; `chunk` only bounds the size of one forward call.
    """
    data = tracks(ids, max(1, min(n_tracks, len(ids) // 2)))
    vocab_size = model.decoder.out_features
    total, count, hidden = 0.0, 0, None
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for begin in range(0, len(data) - 1, chunk):
                end = min(begin + chunk, len(data) - 1)
                logits, hidden = model(data[begin:end], hidden)
                targets = data[begin + 1 : end + 1].reshape(-1)
                total += F.cross_entropy(logits.reshape(-1, vocab_size), targets, reduction="sum").item()
                count += targets.size
    finally:
        model.train(was_training)
    return total / count


def sample(
    model: LanguageModel,
    vocab: Vocabulary,
    length: int = 200,
    *,
    temperature: float = 1.0,
    prime: str = "",
    rng: np.random.Generator | int | None = None,
) -> str:
    """`prime` followed by `length` characters, each drawn from p = softmax(logits / τ) given all before.

    τ < 1 sharpens the distribution (τ → 0 is argmax), τ > 1 flattens it. With no prime the model
    starts as after a line break ('\\n' if the vocabulary has it, else its first character).
    """
    if not temperature > 0:
        raise InputError(f"temperature must be > 0, got {temperature}")
    if length < 0:
        raise InputError(f"length must be >= 0, got {length}")
    missing = vocab.unknown(prime)
    if missing:
        raise InputError(f"the prime text has characters outside the vocabulary: {''.join(missing)!r}")
    rng = generator(rng)
    context = vocab.encode(prime or ("\n" if "\n" in vocab else vocab.chars[0]))
    drawn: list[int] = []
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            logits, state = model(context[:, None])
            while len(drawn) < length:
                z = logits.data[-1, 0].astype(np.float64)
                with np.errstate(over="ignore"):  # (z − max z)/τ: ≤ 0, so a tiny τ gives -inf, never nan
                    p = np.exp((z - z.max()) / temperature)
                drawn.append(int(rng.choice(len(p), p=p / p.sum())))
                if len(drawn) < length:
                    logits, state = model(np.array([[drawn[-1]]]), state)
    finally:
        model.train(was_training)
    return prime + vocab.decode(drawn)


def load_model(path: str | Path) -> tuple[LanguageModel, Vocabulary, ckpt.Checkpoint]:
    """The model and vocabulary saved in a checkpoint (the model built from the saved config)."""
    saved = ckpt.load(path)
    try:
        config = TrainConfig.from_dict(saved.config)
    except InputError as error:
        raise ckpt.CheckpointError(f"checkpoint {path} has an invalid config: {error}") from None
    model = build_model(config, len(saved.vocab), np.random.default_rng(config.seed))
    ckpt.restore(saved, model, source=f"checkpoint {path}")
    return model, saved.vocab, saved


def _load_for_resume(config: TrainConfig, vocab: Vocabulary) -> ckpt.Checkpoint:
    """The checkpoint to continue, checked against this run's config and text before anything changes."""
    if not config.checkpoint:
        raise InputError("resuming needs a checkpoint path (--checkpoint PATH)")
    saved = ckpt.load(config.checkpoint)
    try:
        saved_config = TrainConfig.from_dict(saved.config)
    except InputError as error:
        raise ckpt.CheckpointError(f"checkpoint {config.checkpoint} has an invalid config: {error}") from None
    differ = [
        f"{name}={getattr(saved_config, name)!r} (given {getattr(config, name)!r})"
        for name in FIXED_ON_RESUME
        if getattr(saved_config, name) != getattr(config, name)
    ]
    if differ:
        raise ckpt.CheckpointError(
            f"checkpoint {config.checkpoint} was trained with other settings: {', '.join(differ)}"
        )
    if saved.vocab != vocab:
        raise ckpt.CheckpointError(
            f"checkpoint {config.checkpoint} has another vocabulary ({len(saved.vocab)} characters) than "
            f"the text ({len(vocab)} characters): resume on the text it was trained on"
        )
    missing = [k for k in ("train_loss", "valid_step", "valid_loss") if k not in saved.history]
    if missing or "model" not in saved.rng:
        raise ckpt.CheckpointError(f"checkpoint {config.checkpoint} is not a training checkpoint")
    if saved.step >= config.steps:
        raise InputError(
            f"checkpoint {config.checkpoint} is at step {saved.step}, already at or past "
            f"steps={config.steps} (the total number of updates, those already done included): "
            f"give --steps > {saved.step} to train further"
        )
    return saved


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _detach(state: Any) -> Any:
    """h.detach() (or each of (h, c)): keep the values, cut the graph behind them."""
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def _state_to_arrays(state: Any) -> list[np.ndarray]:
    if state is None:
        return []
    return [s.data.copy() for s in state] if isinstance(state, tuple) else [state.data.copy()]


def _carried_state(saved: ckpt.Checkpoint, model: LanguageModel, config: TrainConfig) -> Any:
    """The checkpoint's carried state as the model takes it, after checking that it fits: the
    structure, dtypes and shapes of the state the model makes for a batch of N tracks (one step
    without a graph, in eval mode so that no dropout draw moves the generator), and finite values."""
    if not saved.hidden:
        return None
    source = f"checkpoint {config.checkpoint}"
    arrays = saved.hidden
    if not saved.hidden_tuple and len(arrays) != 1:
        raise ckpt.CheckpointError(
            f"{source}: its carried state is {len(arrays)} arrays but not marked a tuple"
        )
    model.eval()
    try:
        with no_grad():
            _, made = model(np.zeros((1, config.batch), dtype=np.int64))
    finally:
        model.train()
    expected = made if isinstance(made, tuple) else (made,)
    if saved.hidden_tuple != isinstance(made, tuple) or len(arrays) != len(expected):
        given = f"a tuple of {len(arrays)}" if saved.hidden_tuple else "one array"
        wanted = f"a tuple of {len(expected)}" if isinstance(made, tuple) else "one array"
        raise ckpt.CheckpointError(f"{source}: its carried state is {given}, the model's {wanted}")
    for k, (array, like) in enumerate(zip(arrays, expected, strict=True)):
        if array.dtype != like.dtype or array.shape != like.shape:
            raise ckpt.CheckpointError(
                f"{source}: its carried state hidden/{k} is {array.dtype} {array.shape}, expected "
                f"{like.dtype} {like.shape}"
            )
        if not np.isfinite(array).all():
            raise ckpt.CheckpointError(
                f"{source}: its carried state hidden/{k} holds {ckpt.non_finite(array)} "
                "(the run diverged): use an earlier checkpoint"
            )
    return tuple(Tensor(a) for a in arrays) if saved.hidden_tuple else Tensor(arrays[0])


class _Progress:
    """A tqdm bar with the recent loss and bpc, or plain lines every ~5 % of the steps without tqdm."""

    def __init__(self, initial: int, total: int, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = (
            tqdm(total=total, initial=initial, unit="step", file=sys.stderr) if enabled and tqdm else None
        )
        self.every = max(1, (total - initial) // 20)
        self.start, self.initial, self.total = time.perf_counter(), initial, total

    def update(self, step: int, losses: list[float]) -> None:
        if not self.enabled:
            return
        recent = float(np.mean(losses[-50:]))
        if self.bar is not None:
            self.bar.update(1)
            if step % 10 == 0 or step == self.total:
                self.bar.set_postfix(loss=f"{recent:.3f}", bpc=f"{recent / LN2:.3f}", refresh=False)
        elif (step - self.initial) % self.every == 0 or step == self.total:
            rate = (step - self.initial) / (time.perf_counter() - self.start)
            print(f"step {step}/{self.total}  loss {recent:.3f}  {recent / LN2:.3f} bpc  {rate:.1f} steps/s")

    def write(self, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
