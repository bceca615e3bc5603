"""`tinygrad-rnn check`: build a small network, compare manual BPTT with the autograd, print the report.

    tinygrad-rnn check --cell lstm --num-layers 2 --bidirectional --lengths 5,3,2 --fd
    tinygrad-rnn check --cell all --dtype float32
    tinygrad-rnn check --lm --cell gru --tbptt 2 --clip 1.0
    tinygrad-rnn check --cell path/to/file.py:PeepholeLSTM --num-layers 2 --bidirectional

A cell file's class runs in nn.Recurrent and is compared with the hand-written pair defined in the
file named (`ClassName_step_forward` and `ClassName_step_backward`, else `step_forward` and
`step_backward`; see tinygrad_rnn.manual.cell), else beside the class where the file imports it;
without a pair, `--fd` checks its autograd against finite differences alone.

Weights come from `--seed` (the module's rng), inputs and the initial state (random, ~ N(0, 0.5²),
in the cell's own state structure; `--hx zeros` for zeros) from a generator seeded alike.  Exit code
0 when every gradient agrees, 1 when any disagrees or the user's code raised (its traceback trimmed
to the user's files), 2 for arguments that do not describe a network.
"""

import argparse
from typing import Any

import numpy as np

from .. import nn
from ..comparison import Report, compare
from ..comparison.pairs import manual_pair_for
from ..context import no_grad
from ..lm.cells import SPEC, is_cell_file, load_cell_file
from ..lm.data import InputError
from ..nn.recurrent import LAYERS, make_layer
from .arguments import add_shape_options, parse_lengths, positive_float, positive_int
from .failures import fail
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
    add_shape_options(p, seq_len=5, batch_size=3, input_size=3, hidden_size=4)
    p.add_argument("--lengths", help='one length per sequence, e.g. "5,3,2", or "random"')
    p.add_argument(
        "--hx",
        choices=["random", "zeros"],
        default="random",
        help="the initial state: ~ N(0, 0.5²) in the cell's structure, or zeros (default random)",
    )
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


def _shared_options(args: argparse.Namespace, layer: Any, rng: np.random.Generator, x: Any) -> dict[str, Any]:
    """compare's keywords common to both paths: the initial state (`random_state`), lengths, options."""
    return {
        "hx": random_state(layer, x, rng) if args.hx == "random" else None,
        "lengths": parse_lengths(args.lengths, args.seq_len, args.batch_size, rng),
        "max_norm": args.clip,
        "finite_differences": args.fd,
        "seed": args.seed,
        "rtol": args.rtol,
    }


def random_state(module: Any, x: Any, rng: np.random.Generator) -> Any:
    """An initial state ~ N(0, 0.5²) in the structure and shapes of the state `module` returns for
    `x` (a forward pass without a graph, x in the module's float dtype): an array, or a tuple of them
    for a tuple state."""
    dtype = next(iter(module.parameters())).dtype
    with no_grad():
        _, state = module(x.astype(dtype) if x.dtype.kind == "f" else x)
    parts = state if isinstance(state, tuple) else (state,)
    drawn = tuple(0.5 * rng.standard_normal(part.shape) for part in parts)
    return drawn if isinstance(state, tuple) else drawn[0]


def _check_lm(args: argparse.Namespace, cell: str) -> Report:
    """The language model on random tokens and targets (T, N)."""
    rng = np.random.default_rng(args.seed)
    model = nn.LanguageModel(
        args.vocab, args.input_size, args.hidden_size, cell, args.num_layers, dtype=args.dtype, rng=args.seed
    )
    tokens = rng.integers(0, args.vocab, size=(args.seq_len, args.batch_size))
    targets = rng.integers(0, args.vocab, size=(args.seq_len, args.batch_size))
    options = _shared_options(args, model, rng, tokens[:1])
    return compare(model, tokens, targets=targets, tbptt=args.tbptt, **options)


def _check_recurrent(args: argparse.Namespace, cell: str) -> Report:
    """A recurrent stack (a built-in, or nn.Recurrent of a file's cell) on x ~ N(0, 1) in its layout."""
    rng = np.random.default_rng(args.seed)
    pair = None
    if is_cell_file(cell):
        cls, pair = _cell_and_pair(args, cell)
        options = {"bidirectional": args.bidirectional, "dtype": args.dtype, "rng": args.seed}
        module = make_layer(cls, args.input_size, args.hidden_size, args.num_layers, **options)
        module.batch_first = args.batch_first  # a plain flag read by forward, as in torch
    else:
        kind, cell_options = CELLS[cell]
        module = kind(
            args.input_size,
            args.hidden_size,
            args.num_layers,
            batch_first=args.batch_first,
            bidirectional=args.bidirectional,
            dtype=args.dtype,
            rng=args.seed,
            **cell_options,
        )
    shape = (args.batch_size, args.seq_len) if args.batch_first else (args.seq_len, args.batch_size)
    x = rng.standard_normal((*shape, args.input_size))
    return compare(module, x, manual=pair, **_shared_options(args, module, rng, x))


def _cell_and_pair(args: argparse.Namespace, spec: str) -> tuple[type, Any]:
    """A file's cell class and its manual pair (in the file named, else beside the class); no pair
    without --fd is a mistake."""
    cls, named = load_cell_file(spec)
    pair = manual_pair_for(cls, named)
    if pair is None and not args.fd:
        raise InputError(
            f"{spec.rpartition(':')[0]} defines no manual pair for {cls.__name__} "
            f"({cls.__name__}_step_forward and _step_backward, or step_forward and step_backward), nor "
            f"does {cls.__module__}; add one, or pass --fd"
        )
    return cls, pair


def _cells(args: argparse.Namespace) -> list[str]:
    """The cells to check; raises InputError for combinations the language model does not have."""
    lm = args.lm or args.tbptt is not None
    if args.cell not in (*CELLS, "all") and not is_cell_file(args.cell):
        raise InputError(f"--cell: expected one of {', '.join(CELLS)}, all or {SPEC}, got {args.cell!r}")
    if lm and is_cell_file(args.cell):
        raise InputError("--cell with a file: compares a recurrent layer of it (no --lm, --tbptt)")
    if not lm:
        return list(CELLS) if args.cell == "all" else [args.cell]
    if args.bidirectional or args.batch_first:
        raise InputError(
            "--lm: the language model is unidirectional and time-major (no --bidirectional, --batch-first)"
        )
    if args.cell != "all" and args.cell not in LM_CELLS:
        raise InputError(f"--lm: --cell must be one of {', '.join(LM_CELLS)} or all, got {args.cell}")
    return list(LM_CELLS) if args.cell == "all" else [args.cell]


def run_check(args: argparse.Namespace) -> int:
    """Print one report per cell and a summary; 0 when all agree, 1 when any disagrees (or the user's
    code raised), 2 on bad arguments."""
    with blas_threads(args.threads, args.batch_size, args.hidden_size, 4 * args.hidden_size):
        return _run_check(args)


def _run_check(args: argparse.Namespace) -> int:
    try:
        cells = _cells(args)
        check = _check_lm if args.lm or args.tbptt is not None else _check_recurrent
        reports = [check(args, cell) for cell in cells]
    except (ValueError, TypeError) as error:  # compare's and the layers' refusals of these arguments
        return fail("check", error)
    for report in reports:
        print(report, end="\n\n")
    agree = sum(report.ok for report in reports)
    print(
        f"check: {agree} of {len(reports)} agree" + ("" if agree == len(reports) else " — see NOT OK above")
    )
    return 0 if agree == len(reports) else 1
