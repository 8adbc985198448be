"""Reading pickled checkpoints (.pt, .pth, .ckpt) without running code from them.

torch's weights-only unpickler builds tensors and plain containers and refuses every other class.
The official checkpoints also pickle a few harmless containers around their weights: Lightning
saves its hyper-parameters as an ``AttributeDict`` (a dict subclass) next to ``argparse.Namespace``
values, aiSFX keeps numpy scalars in its dataset table. Those, and only those, are let through as
plain stand-ins (a dict, an attribute holder, numpy's own scalar types); a file that needs anything
else is refused with the list of classes it asks for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from usad.teachers.base import TeacherError


class Attributes:
    """Stand-in for ``argparse.Namespace``: takes the pickled attributes, runs nothing."""


_STAND_INS = [
    (dict, "pytorch_lightning.utilities.parsing.AttributeDict"),
    (dict, "lightning_fabric.utilities.data.AttributeDict"),
    (dict, "lightning.fabric.utilities.data.AttributeDict"),
    (Attributes, "argparse.Namespace"),
    (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"),
    (np._core.multiarray.scalar, "numpy._core.multiarray.scalar"),
    np.dtype, np.dtypes.Int64DType, np.dtypes.Float64DType, np.dtypes.Float32DType,
]
_ALLOWED = {entry[1] if isinstance(entry, tuple) else f"{entry.__module__}.{entry.__qualname__}"
            for entry in _STAND_INS}


def read_pickled(path: str | Path) -> object:
    """The object in a torch.save / Lightning checkpoint, read weights-only onto CPU."""
    path = Path(path)
    if not path.is_file():
        raise TeacherError(f"{path}: checkpoint file not found")
    try:
        asked = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except (RuntimeError, OSError, ValueError) as err:
        raise TeacherError(f"{path}: not a torch checkpoint ({err})") from err
    refused = sorted(asked - _ALLOWED)
    if refused:
        raise TeacherError(f"{path}: refusing to unpickle {', '.join(refused[:6])}"
                           f"{' ...' if len(refused) > 6 else ''} (only tensors and plain containers are read)")
    try:
        with torch.serialization.safe_globals(_STAND_INS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the unpickler raises many types for a damaged file
        raise TeacherError(f"{path}: unreadable checkpoint ({type(err).__name__}: {str(err)[:200]})") from err
