"""The `tinygrad-rnn` command: demo, check (manual BPTT vs autograd), graph (the unrolled graph),
train and sample (the character-level language model), bench (a training step, timed),
export (a trained model as a PyTorch file).
One module per command; this one only dispatches."""

import argparse
import difflib
from collections.abc import Sequence

from .. import __version__
from ..allocator import keep_freed_memory
from .arguments import Parser
from .bench import add_bench_parser
from .check import add_check_parser
from .demo import add_demo_parser
from .export import add_export_parser
from .failures import fail, interrupted, raised_in_user_code
from .graph import add_graph_parser
from .train import add_train_parsers


def build_parser() -> Parser:
    parser = Parser(
        prog="tinygrad-rnn",
        description="Recurrent networks from scratch: manual BPTT checked against the autograd, "
        "pictures of the unrolled graph, a character-level language model.",
        epilog="tinygrad-rnn COMMAND --help: a command's options and their defaults",
    )
    parser.add_argument("--version", action="version", version=f"tinygrad-rnn {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_demo_parser(commands)
    add_check_parser(commands)
    add_graph_parser(commands)
    add_train_parsers(commands)
    add_bench_parser(commands)
    add_export_parser(commands)
    parser.commands = commands.choices
    return parser


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments; a missing command or an unknown option is one line naming the command and what
    it takes (SystemExit 2)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    commands = parser.commands
    if args.command is None:
        parser.error(f"expected a command: {', '.join(commands)} (then --help for its options)")
    if unknown:
        command = commands[args.command]
        # each option string -> the name the help leads with (--hidden -> --hidden-size)
        names = {
            s: next((o for o in a.option_strings if o.startswith("--")), s)
            for a in command._actions
            for s in a.option_strings
        }
        close = difflib.get_close_matches(unknown[0].partition("=")[0], list(names), n=1, cutoff=0.6)
        hint = f"; did you mean {names[close[0]]}?" if close else f"; see tinygrad-rnn {args.command} --help"
        command.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code: 0 done, 1 a failed check or an error in the user's code (its
    traceback trimmed to the user's files), 2 a mistake in what was asked (one line on stderr), 130
    interrupted."""
    try:
        args = parse(argv)
    except SystemExit as stop:  # a mistake (2) or --help/--version (0): the parser has printed it
        return stop.code if isinstance(stop.code, int) else 0
    keep_freed_memory()  # a command is a training (or timing) loop: no pages faulted in every step
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return interrupted(args.command)
    except Exception as error:  # the user's code failed inside a command: show where; else a bug
        if raised_in_user_code(error) is None:
            raise
        return fail(args.command, error)
