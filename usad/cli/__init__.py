"""The ``usad`` command. Each module here parses one command group's arguments and calls the library function
that does the work; everything the CLI does, Python does with the same call.

``main`` is the entry point: an error the user can act on (``usad.errors.UsadError``) prints as one line and exits
with ``EXIT_BAD_INPUT``; typer reports bad arguments itself, also with exit code 2.
"""

import sys

import typer
from rich.console import Console
from rich.markup import escape

from usad.errors import EXIT_BAD_INPUT, UsadError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False,
                  help="USAD-Edge: distill, compress, export and bench universal audio encoders.")

# Each command module registers itself on ``app`` when imported.
from usad.cli import bench, bench_speed, bench_stream, compress, convert, data, distill, embed, export, teachers  # noqa: E402,F401


def main() -> None:
    try:
        app()
    except UsadError as err:
        Console(stderr=True).print(f"[red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)
