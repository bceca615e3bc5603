"""`tinygrad-rnn check`: build a small network, compare manual BPTT with the autograd, print the report.

    tinygrad-rnn check --cell lstm --layers 2 --bidirectional --lengths 5,3,2 --fd
    tinygrad-rnn check --cell all --dtype float32
    tinygrad-rnn check --lm --cell gru --tbptt 2 --clip 1.0
    tinygrad-rnn check --cell path/to/file.py:PeepholeLSTM --layers 2 --bidirectional

A cell file's class runs in nn.Recurrent and is compared with the hand-written pair the file defines
(`ClassName_step_forward` and `ClassName_step_backward`, else `step_forward` and `step_backward`;
see tinygrad_rnn.manual.cell); without a pair, `--fd` checks its autograd against finite
differences alone.

Weights come from `--seed` (the module's rng), inputs and the initial state from a generator seeded
alike.  Exit code 0 when every gradient agrees, 1 when any disagrees, 2 for arguments that do not
describe a network.
"""

import argparse
import sys
from typing import Any

import numpy as np

from .. import nn
from ..comparison import Report, compare
from ..comparison.pairs import manual_pair_for
from ..lm.cells import SPEC, is_cell_file, load_cell
from ..nn.recurrent import LAYERS, make_layer
from .arguments import positive_float, positive_int
from .threads import add_threads_option, blas_threads

CELLS: dict[str, tuple[type, dict[str, Any]]] = {
    "rnn": (nn.RNN, {"nonlinearity": "tanh"}),
    "rnn-relu": (nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, {}),
    "gru": (nn.GRU, {}),
    "gru-reset-before": (nn.GRU, {"reset_after": False}),
}
LM_CELLS = tuple(LAYERS)  # the language model's cells


def add_check_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the `check` subcommand on an argparse subparsers object; it runs `run_check`."""
    p = subparsers.add_parser(
        "check",
        help="manual BPTT against the autograd: a table of gradient errors, exit 0 when they agree",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "--cell",
        default="lstm",
        help=f"{', '.join(CELLS)}, all, or {SPEC} (its pair: ClassName_step_forward/_step_backward or "
        "step_forward/step_backward in the file); rnn is tanh (default: lstm)",
    )
    p.add_argument("--layers", type=positive_int, default=1)
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--batch-first", action="store_true")
    p.add_argument("--steps", type=positive_int, default=5, help="T")
    p.add_argument("--batch", type=positive_int, default=3, help="N")
    p.add_argument("--input-size", type=positive_int, default=3, help="D (the embedding size with --lm)")
    p.add_argument("--hidden-size", type=positive_int, default=4, help="H")
    p.add_argument("--lengths", help='one length per sequence, e.g. "5,3,2", or "random"')
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--fd", action="store_true", help="also central finite differences (small networks)")
    p.add_argument("--lm", action="store_true", help="the language model: Embedding → cell → Linear → CE")
    p.add_argument("--vocab", type=positive_int, default=6, help="V, with --lm")
    p.add_argument(
        "--tbptt", type=positive_int, metavar="K", help="truncated BPTT in K-step chunks (implies --lm)"
    )
    p.add_argument(
        "--clip", type=positive_float, metavar="MAX_NORM", help="clip gradients by global norm first"
    )
    p.add_argument(
        "--rtol", type=positive_float, help="relative tolerance (default 1e-10 float64, 1e-4 float32)"
    )
    add_threads_option(p)
    p.set_defaults(run=run_check)
    return p


def _lengths(text: str | None, steps: int, batch: int, rng: np.random.Generator) -> np.ndarray | None:
    """--lengths as an array: "5,3,2", or "random" (each uniform in 1..T), or None."""
    if text is None:
        return None
    if text == "random":
        return rng.integers(1, steps + 1, size=batch)
    try:
        return np.array([int(part) for part in text.split(",")])
    except ValueError:
        raise ValueError(f'--lengths: expected integers like "5,3,2" or "random", got {text!r}') from None


def _shared_options(
    args: argparse.Namespace, cell: str, rng: np.random.Generator, rows: int
) -> dict[str, Any]:
    """compare's keywords common to both paths: a random initial state ~ N(0, 0.5²), lengths, options."""
    shape = rows, args.batch, args.hidden_size
    hx = tuple(0.5 * rng.standard_normal(shape) for _ in range(2 if cell == "lstm" else 1))
    return {
        "hx": None if is_cell_file(cell) else hx if cell == "lstm" else hx[0],
        "lengths": _lengths(args.lengths, args.steps, args.batch, rng),
        "max_norm": args.clip,
        "finite_differences": args.fd,
        "seed": args.seed,
        "rtol": args.rtol,
    }


def _check_lm(args: argparse.Namespace, cell: str) -> Report:
    """The language model on random tokens and targets (T, N)."""
    rng = np.random.default_rng(args.seed)
    model = nn.LanguageModel(
        args.vocab, args.input_size, args.hidden_size, cell, args.layers, dtype=args.dtype, rng=args.seed
    )
    tokens = rng.integers(0, args.vocab, size=(args.steps, args.batch))
    targets = rng.integers(0, args.vocab, size=(args.steps, args.batch))
    options = _shared_options(args, cell, rng, args.layers)
    return compare(model, tokens, targets=targets, tbptt=args.tbptt, **options)


def _check_recurrent(args: argparse.Namespace, cell: str) -> Report:
    """A recurrent stack on x ~ N(0, 1) in its layout."""
    rng = np.random.default_rng(args.seed)
    if is_cell_file(cell):
        return _check_cell_file(args, cell, rng)
    kind, cell_options = CELLS[cell]
    module = kind(
        args.input_size,
        args.hidden_size,
        args.layers,
        batch_first=args.batch_first,
        bidirectional=args.bidirectional,
        dtype=args.dtype,
        rng=args.seed,
        **cell_options,
    )
    shape = (args.batch, args.steps) if args.batch_first else (args.steps, args.batch)
    x = rng.standard_normal((*shape, args.input_size))
    return compare(module, x, **_shared_options(args, cell, rng, module.num_layers * module.num_directions))


def _check_cell_file(args: argparse.Namespace, spec: str, rng: np.random.Generator) -> Report:
    """nn.Recurrent of a file's cell class against the file's manual pair (or finite differences)."""
    cls = load_cell(spec)
    pair = manual_pair_for(cls)
    if pair is None and not args.fd:
        raise ValueError(
            f"{spec.rpartition(':')[0]} defines no manual pair for {cls.__name__} "
            f"({cls.__name__}_step_forward and _step_backward, or step_forward and step_backward); "
            "add one, or pass --fd"
        )
    if args.batch_first:
        raise ValueError("--cell with a file: the layer is time-major (no --batch-first)")
    options = {"bidirectional": args.bidirectional, "dtype": args.dtype, "rng": args.seed}
    module = make_layer(cls, args.input_size, args.hidden_size, args.layers, **options)
    x = rng.standard_normal((args.steps, args.batch, args.input_size))
    return compare(
        module, x, manual=pair, **_shared_options(args, spec, rng, module.num_layers * module.num_directions)
    )


def _cells(args: argparse.Namespace) -> list[str]:
    """The cells to check; raises ValueError for combinations the language model does not have."""
    lm = args.lm or args.tbptt is not None
    if args.cell not in (*CELLS, "all") and not is_cell_file(args.cell):
        raise ValueError(f"--cell: expected one of {', '.join(CELLS)}, all or {SPEC}, got {args.cell!r}")
    if lm and is_cell_file(args.cell):
        raise ValueError("--cell with a file: compares a recurrent layer of it (no --lm, --tbptt)")
    if not lm:
        return list(CELLS) if args.cell == "all" else [args.cell]
    if args.bidirectional or args.batch_first:
        raise ValueError(
            "--lm: the language model is unidirectional and time-major (no --bidirectional, --batch-first)"
        )
    if args.cell != "all" and args.cell not in LM_CELLS:
        raise ValueError(f"--lm: --cell must be one of {', '.join(LM_CELLS)} or all, got {args.cell}")
    return list(LM_CELLS) if args.cell == "all" else [args.cell]


def run_check(args: argparse.Namespace) -> int:
    """Print one report per cell and a summary; 0 when all agree, 1 when any disagrees, 2 on bad arguments."""
    with blas_threads(args.threads, args.batch, args.hidden_size, 4 * args.hidden_size):
        return _run_check(args)


def _run_check(args: argparse.Namespace) -> int:
    try:
        cells = _cells(args)
        check = _check_lm if args.lm or args.tbptt is not None else _check_recurrent
        reports = [check(args, cell) for cell in cells]
    except (ValueError, TypeError) as error:
        print(f"tinygrad-rnn check: error: {error}", file=sys.stderr)
        return 2
    for report in reports:
        print(report, end="\n\n")
    agree = sum(report.ok for report in reports)
    print(
        f"check: {agree} of {len(reports)} agree" + ("" if agree == len(reports) else " — see NOT OK above")
    )
    return 0 if agree == len(reports) else 1
