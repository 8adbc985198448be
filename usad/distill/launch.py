"""Running a distillation from a command line: exit codes and one-line errors.

Exit codes: 0 finished (model dir written), 2 bad input (recipe, corpus, teachers, model dir, nothing
to resume from: one line on stderr, no traceback), 75 interrupted by SIGTERM after writing the
checkpoint and resume pack (``--resume`` continues; a scheduler can tell it from a finished run).
Under torchrun the launcher reports its own code; ``OUT/status.json`` records the state either way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from usad.distill.checkpoint import TrainingInterrupted
from usad.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, UsadError

BAD_INPUT = (UsadError, FileNotFoundError)


def run_training(train: Callable[[], Path | None], bad_input: tuple[type[Exception], ...] = ()) -> int:
    """Call ``train`` and turn its outcome into an exit code, printing one line."""
    try:
        model_dir = train()
    except TrainingInterrupted as stop:
        print(stop, file=sys.stderr)
        return EXIT_INTERRUPTED
    except BAD_INPUT + bad_input as err:
        # A DataLoader worker's error arrives with the worker's traceback in its text: keep its last line.
        print(f"error: {str(err).strip().splitlines()[-1]}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if model_dir is not None:
        print(f"model dir: {model_dir}")
    return 0
