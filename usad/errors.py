"""The errors a user can act on, and the exit codes of the ``usad`` command. Standard library only.

Every error class of the package derives from ``UsadError``: bad input (audio, model dirs, arguments, output paths),
a missing file or optional extra, a step that refuses (the INT8 guard, the corpus leak check). The command prints its
message as one line and exits with ``EXIT_BAD_INPUT``; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib.util

EXIT_OK = 0
EXIT_SOME_FAILED = 1  # the command finished; some inputs failed and are listed
EXIT_BAD_INPUT = 2  # nothing done: bad input, a missing extra, or a step refused (message says which)
EXIT_INTERRUPTED = 75  # sysexits EX_TEMPFAIL: training stopped by SIGTERM after a checkpoint; --resume continues

# Optional extras -> the modules that stand for them (pyproject's [project.optional-dependencies]).
EXTRAS = {
    "train": ("torch", "safetensors", "yaml"),
    "export": ("torch", "onnx", "onnxscript"),
    "bench": ("torch", "sklearn", "matplotlib", "threadpoolctl", "mir_eval"),
    "data": ("webdataset", "music21"),
    "hf": ("transformers",),
    "ray": ("ray",),
}


class UsadError(Exception):
    """An error the user can act on; its message names the file, argument or extra."""


class InputError(UsadError, ValueError):
    """An argument or option value the command cannot use."""


class MissingExtra(UsadError, ImportError):
    """An optional dependency group that a command needs is not installed."""


def require(extra: str, what: str) -> None:
    """Raise ``MissingExtra`` naming the pip command when a module of ``extra`` is not importable."""
    missing = [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtra(f"{what} needs the [{extra}] extra ({', '.join(missing)} not installed): "
                           f"pip install 'usad-edge[{extra}]'")
