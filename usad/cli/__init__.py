"""The ``usad`` command. Each module here parses one command group's arguments and calls the
library function that does the work; everything the CLI does, Python does with the same call."""

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False,
                  help="USAD-Edge: distill, compress, export and bench universal audio encoders.")

# Each command module registers itself on ``app`` when imported.
from usad.cli import (  # noqa: E402,F401
                  compress,
                  distill,
                  embed,  # noqa: E402,F401
                  export,  # noqa: E402,F401
                  teachers,
)
from usad.cli import bench, data  # noqa: E402,F401
from usad.cli import bench_speed  # noqa: E402,F401
