"""Export-time forms of modules: a module type's ``forward`` swapped for the duration of one export, so the
exported graph takes a form the target runs best while the model (and model.py) stay as they are."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from torch import nn


@contextlib.contextmanager
def swapped_forward(model: nn.Module, module_type: type[nn.Module], forward: Callable):
    """While active, every ``module_type`` inside ``model`` runs ``forward(self, ...)`` instead of its own."""
    modules = [m for m in model.modules() if isinstance(m, module_type)]
    for module in modules:
        module.forward = forward.__get__(module)
    try:
        yield
    finally:
        for module in modules:
            del module.forward
