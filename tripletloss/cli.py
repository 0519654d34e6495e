"""Command-line entry point: `python -m tripletloss <subcommand>` (or the `tripletloss` console script).

Each subcommand lives in its own module under `tripletloss.commands`; that module defines
`register(subparsers)`, which adds its parser and sets `func` (taking the parsed args, returning an exit code).
"""
import argparse
import importlib
import sys

from tripletloss.errors import UserError

#: Subcommand modules under tripletloss.commands, in the order `--help` lists them.
COMMANDS = [
    "align",
    "check",
    "prune",
    "split",
    "import_dlib",
    "evaluate",
    "plot_loss",
    "cluster",
    "embed",
    "classify",
    "compare",
    "export",
]


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser (and, through add_subparsers, its subcommands') whose usage errors are one stderr line
    and exit code 2, like every other input error."""

    def error(self, message):
        """Print `error: PROG: MESSAGE (see PROG --help)` and exit 2."""
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser():
    """Return the top-level argparse parser with every subcommand registered."""
    parser = OneLineParser(prog="tripletloss", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    for name in COMMANDS:
        importlib.import_module(f"tripletloss.commands.{name}").register(sub)
    return parser


def main(argv=None):
    """Parse argv (default sys.argv[1:]), run the chosen subcommand and exit with its return code."""
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code or 0)

