"""Files that are written whole or not at all, and content hashes. Standard library only.

Every result file of the project (model dirs, manifests, reports, exports) is written to a temporary
name beside its target and renamed over it, so a killed run leaves the old file or the new one, never half.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    The temporary name keeps the suffix (``.x.tmp.npz``) for writers that look at it (numpy, onnx), and is hidden
    so that readers of a whole folder (pyarrow, globs) pass over a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path: str | Path, record, indent: int | None = 1, **dumps) -> Path:
    return atomic_write_text(path, json.dumps(record, indent=indent, **dumps) + "\n")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
