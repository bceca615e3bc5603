"""The `train` and `sample` subcommands of `tinygrad-rnn`.

Bad input (a missing, empty or non-UTF-8 text, a missing checkpoint or one of another shape, a
prime text outside the vocabulary, a temperature ≤ 0, ...) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from ..lm import checkpoint as ckpt
from ..lm.data import InputError
from ..lm.training import TrainConfig, load_model, sample, train
from ..nn.recurrent import LAYERS

DEFAULTS = TrainConfig()

# CLI option -> (TrainConfig field, type, metavar, help); each defaults to the config's value (or, with
# --resume, to the checkpoint's), so only the options given on the command line change a run.
TRAIN_OPTIONS: dict[str, tuple[str, Any, str, str]] = {
    "--text": ("text", str, "FILE", "a UTF-8 text file (default: the shipped Hamlet)"),
    "--embedding": ("embedding", int, "E", "embedding size E"),
    "--hidden": ("hidden", int, "H", "hidden size H"),
    "--layers": ("layers", int, "L", "number of stacked recurrent layers L"),
    "--dropout": ("dropout", float, "P", "dropout between recurrent layers"),
    "--seq-len": ("seq_len", int, "T", "time steps T per batch (the BPTT truncation length)"),
    "--batch": ("batch", int, "N", "parallel tracks N per batch"),
    "--steps": ("steps", int, "S", "total number of updates (a resumed run counts those already done)"),
    "--lr": ("lr", float, "LR", "Adam's learning rate"),
    "--clip": ("clip", float, "C", "maximum joint gradient norm"),
    "--eval-every": ("eval_every", int, "K", "validation loss (and checkpoint) every K steps"),
    "--sample-every": ("sample_every", int, "K", "print a generated sample every K steps"),
    "--seed": ("seed", int, "SEED", "seed of the initial weights, dropout and samples"),
}


def add_train_parsers(commands: argparse._SubParsersAction) -> None:
    """Register `train` and `sample` on the `tinygrad-rnn` subcommand parser."""
    p = commands.add_parser("train", help="train a character-level language model on a text")
    p.add_argument("--cell", choices=sorted(LAYERS), help=f"recurrent cell (default {DEFAULTS.cell})")
    for option, (name, kind, metavar, text) in TRAIN_OPTIONS.items():
        default = getattr(DEFAULTS, name)
        suffix = f" (default {default})" if default is not None else ""
        p.add_argument(option, dest=name, type=kind, metavar=metavar, help=text + suffix)
    p.add_argument("--checkpoint", metavar="PATH", help="write a checkpoint (.npz) here as training goes")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the final summary")
    p.set_defaults(run=run_train)
    p = commands.add_parser("sample", help="generate text from a trained checkpoint")
    p.add_argument("--checkpoint", metavar="PATH", required=True, help="a checkpoint written by `train`")
    p.add_argument(
        "--length", type=int, default=500, metavar="N", help="characters to generate (default 500)"
    )
    p.add_argument(
        "--temperature", type=float, default=0.8, metavar="τ", help="τ in softmax(logits / τ) (default 0.8)"
    )
    p.add_argument(
        "--prime",
        default="",
        metavar="TEXT",
        help="text to start from (its characters must be in the vocabulary)",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the draws (default 0)")
    p.set_defaults(run=run_sample)


def run_train(args: argparse.Namespace) -> int:
    given = {name: getattr(args, name) for name, *_ in TRAIN_OPTIONS.values()}
    given["cell"] = args.cell
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
        return _fail("train", error)
    except KeyboardInterrupt:
        print("tinygrad-rnn train: interrupted; the last checkpoint written is intact", file=sys.stderr)
        return 130
    print(
        f"{result.steps_run} steps in {result.elapsed:.1f} s ({result.steps_per_second:.1f} steps/s); "
        f"validation {result.valid_bpc:.3f} bits/char, unigram baseline {result.unigram_bpc:.3f} bits/char"
    )
    if config.checkpoint:
        print(f"checkpoint: {config.checkpoint} (step {len(result.losses)})")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    try:
        model, vocab, _ = load_model(args.checkpoint)
        text = sample(
            model, vocab, args.length, temperature=args.temperature, prime=args.prime, rng=args.seed
        )
    except InputError as error:
        return _fail("sample", error)
    print(text)
    return 0


def _fail(command: str, error: Exception) -> int:
    print(f"tinygrad-rnn {command}: error: {error}", file=sys.stderr)
    return 2
