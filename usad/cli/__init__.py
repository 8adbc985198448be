"""The ``usad`` command. Each module here parses one command group's arguments and calls the
library function that does the work; everything the CLI does, Python does with the same call."""

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False,
                  help="USAD-Edge: distill, compress, export and bench universal audio encoders.")

# Each command module registers itself on ``app`` when imported.
from usad.cli import bench, bench_speed, compress, convert, data, distill, embed, export, teachers  # noqa: E402,F401
