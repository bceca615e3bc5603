"""The `train` and `sample` subcommands of `tinygrad-rnn`.

Bad input (a missing, empty or non-UTF-8 text, a missing checkpoint or one of another shape, a
prime text outside the vocabulary, a temperature ≤ 0, ...) is one line on stderr and exit code 2.
Nothing is lost: an existing checkpoint is continued (--resume) or replaced (--force), never silently
overwritten, and a checkpoint path that cannot be written is refused before training starts.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from ..lm import checkpoint as ckpt
from ..lm.data import InputError
from ..lm.training import DTYPES, TrainConfig, load_model, sample, train
from .arguments import count, fraction, positive_float, positive_int
from .cells import add_cell_option
from .failures import fail, interrupted
from .threads import add_threads_option, blas_threads

DEFAULTS = TrainConfig()

# CLI option names (PyTorch's first, the older ones accepted) -> (TrainConfig field, type, metavar,
# help); each defaults to the config's value (or, with --resume, to the checkpoint's), so only the
# options given on the command line change a run.
TRAIN_OPTIONS: dict[tuple[str, ...], tuple[str, Any, str, str]] = {
    ("--text",): ("text", str, "FILE", "a UTF-8 text file (default: the shipped Hamlet)"),
    ("--embedding-dim", "--embedding"): ("embedding", positive_int, "E", "embedding size E"),
    ("--hidden-size", "--hidden"): ("hidden", positive_int, "H", "hidden size H"),
    ("--num-layers", "--layers"): ("layers", positive_int, "L", "number of stacked recurrent layers L"),
    ("--dropout",): ("dropout", fraction, "P", "dropout between recurrent layers"),
    ("--seq-len",): ("seq_len", positive_int, "T", "time steps T per batch (the BPTT truncation length)"),
    ("--batch-size", "--batch"): ("batch", positive_int, "N", "parallel tracks N per batch"),
    ("--steps",): (
        "steps",
        count,
        "S",
        "train until S updates in all: with --resume those in the checkpoint count, so S must exceed "
        "its step (default 2500, with --resume the checkpoint's)",
    ),
    ("--lr",): ("lr", positive_float, "LR", "Adam's learning rate"),
    ("--clip",): ("clip", positive_float, "C", "maximum joint gradient norm"),
    ("--eval-every",): ("eval_every", positive_int, "K", "validation loss (and checkpoint) every K steps"),
    ("--sample-every",): ("sample_every", positive_int, "K", "print a generated sample every K steps"),
    ("--seed",): ("seed", int, "SEED", "seed of the initial weights, dropout and samples"),
}


def add_train_parsers(commands: argparse._SubParsersAction) -> None:
    """Register `train` and `sample` on the `tinygrad-rnn` subcommand parser."""
    p = commands.add_parser("train", help="train a character-level language model on a text")
    add_cell_option(p, None, DEFAULTS.cell)
    for options, (name, kind, metavar, text) in TRAIN_OPTIONS.items():
        default = getattr(DEFAULTS, name)
        suffix = f" (default {default})" if default is not None and "default" not in text else ""
        p.add_argument(*options, dest=name, type=kind, metavar=metavar, help=text + suffix)
    p.add_argument(
        "--dtype",
        choices=DTYPES,
        help="the model's float type (default float32, or a cell file's own when its class takes no dtype=)",
    )
    p.add_argument("--checkpoint", metavar="PATH", help="write a checkpoint (.npz) here as training goes")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint")
    existing.add_argument("--force", action="store_true", help="start afresh over an existing --checkpoint")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the final summary")
    add_threads_option(p)
    p.set_defaults(run=run_train)
    p = commands.add_parser("sample", help="generate text from a trained checkpoint")
    p.add_argument("--checkpoint", metavar="PATH", required=True, help="a checkpoint written by `train`")
    p.add_argument(
        "--length", type=count, default=500, metavar="N", help="characters to generate (default 500)"
    )
    p.add_argument(
        "--temperature",
        type=positive_float,
        default=0.8,
        metavar="τ",
        help="τ in softmax(logits / τ) (default 0.8)",
    )
    p.add_argument(
        "--prime",
        default="",
        metavar="TEXT",
        help="text to start from (its characters must be in the vocabulary)",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the draws (default 0)")
    add_threads_option(p)
    p.set_defaults(run=run_sample)


def run_train(args: argparse.Namespace) -> int:
    """Train as the options say; one line on stderr and exit code 2 for input it cannot use."""
    if args.checkpoint and not (args.resume or args.force) and Path(args.checkpoint).is_file():
        return fail(
            "train",
            InputError(f"{args.checkpoint} exists: continue it with --resume, or replace it with --force"),
        )
    batch = args.batch or DEFAULTS.batch
    hidden = args.hidden or DEFAULTS.hidden
    with blas_threads(args.threads, batch, hidden, 4 * hidden):
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    given = {name: getattr(args, name) for name, *_ in TRAIN_OPTIONS.values()}
    given["cell"], given["dtype"] = args.cell, args.dtype
    given = {name: value for name, value in given.items() if value is not None}
    try:
        base = DEFAULTS
        if args.resume:
            if not args.checkpoint:
                raise InputError("--resume needs --checkpoint PATH")
            base = TrainConfig.from_dict(ckpt.load(args.checkpoint).config)
        config = dataclasses.replace(base, checkpoint=args.checkpoint, **given)
        result = train(config, resume=args.resume, verbose=not args.quiet)
    except InputError as error:
        return fail("train", error)
    except KeyboardInterrupt:
        return interrupted("train", "the last checkpoint written is intact")
    print(
        f"{result.steps_run} steps in {result.elapsed:.1f} s ({result.steps_per_second:.1f} steps/s); "
        f"validation {result.valid_bpc:.3f} bits/char, unigram baseline {result.unigram_bpc:.3f} bits/char"
    )
    if config.checkpoint and result.steps_run:
        print(f"checkpoint: {config.checkpoint} (step {len(result.losses)})")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    with blas_threads(args.threads, 1, 1, 1):  # one character at a time: (1, H) products
        return _sample(args)


def _sample(args: argparse.Namespace) -> int:
    try:
        model, vocab, _ = load_model(args.checkpoint)
        text = sample(
            model, vocab, args.length, temperature=args.temperature, prime=args.prime, rng=args.seed
        )
    except InputError as error:
        return fail("sample", error)
    print(text)
    return 0
