"""`tinygrad-rnn export`: a trained language model as a PyTorch file, its weights beside it.

`--checkpoint run.npz -o model_torch.py` writes model_torch.py (it defines `Model()`, whose
`forward(tokens, hx=None)` returns `(logits, state)` as `LanguageModel`'s) and model_torch.safetensors
(named as `Model().state_dict()`). A missing or invalid checkpoint, or a cell the export cannot write,
is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from .. import export
from ..lm.data import InputError
from ..lm.training import load_model
from .arguments import output_file


def add_export_parser(commands: argparse._SubParsersAction) -> None:
    """Register `export` on the `tinygrad-rnn` subcommand parser."""
    p = commands.add_parser("export", help="write a trained language model as a PyTorch file")
    p.add_argument("--checkpoint", metavar="PATH", required=True, help="a checkpoint written by `train`")
    p.add_argument(
        "-o", "--output", type=output_file(["py"]), required=True, metavar="FILE.py", help="the file to write"
    )
    p.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    try:
        model, _, _ = load_model(args.checkpoint)
        weights = export.torch(model, args.output)
    except (InputError, export.ExportError) as error:
        print(f"tinygrad-rnn export: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.output} (Model(): {type(model.rnn).__name__} of {model.rnn.cell_name}) and {weights}")
    return 0
