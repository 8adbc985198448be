"""Where ``usad embed`` writes: one .npz file (a few files, one process) or a run folder of Parquet shards.

The output is checked before anything is computed (its folder must exist and be writable), and written
atomically: a killed or failed run leaves the older file or folder contents in place, never half a file.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from usad.errors import InputError

FOLDER_SUFFIXES = ("", ".parquet")  # "emb/" or Spark's "emb.parquet/": a folder of Parquet shards


class OutputError(InputError):
    """An output path that cannot be written; the message names it and says what to give instead."""


@dataclass(frozen=True)
class Output:
    path: Path
    kind: Literal["npz", "folder"]
    replaces: bool  # an .npz file that exists, or a folder that holds files

    def describe(self) -> str:
        if self.kind == "npz":
            return f"{self.path} (.npz: one array per input, keyed by path)"
        return f"{self.path}/ (Parquet shards part-*.parquet, run manifest _run.json, failures _errors.tsv)"


def check_output(path: str | Path) -> Output:
    """What ``path`` will be: .npz -> one file; no extension or .parquet -> a folder. Refuses any other
    extension, a missing or read-only parent folder, and a file where a folder is wanted or the reverse."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        kind: Literal["npz", "folder"] = "npz"
        if path.is_dir():
            raise OutputError(f"--out {path}: is a folder; give a file name ending in .npz")
    elif suffix in FOLDER_SUFFIXES:
        kind = "folder"
        if path.exists() and not path.is_dir():
            raise OutputError(f"--out {path}: exists and is not a folder")
    else:
        raise OutputError(f"--out {path}: unknown output type {suffix!r}; give a .npz file, or a folder (no "
                          "extension) for Parquet shards")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise OutputError(f"--out {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"--out {path}: not writable")
    replaces = path.is_file() if kind == "npz" else path.is_dir() and any(path.iterdir())
    return Output(path, kind, replaces)


class NpzWriter:
    """An .npz (numpy's zip of .npy members, as ``np.savez`` writes) filled one array at a time, so memory holds
    one embedding, not all of them. Renamed over the target on a clean exit, only when it holds any array."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.count = 0

    def __enter__(self) -> NpzWriter:
        self._tmp = self.path.with_name(f".{self.path.stem}.tmp.npz")  # hidden, as usad.files.atomic_path names it
        self._zip = zipfile.ZipFile(self._tmp, "w", zipfile.ZIP_STORED, allowZip64=True)
        return self

    def add(self, key: str, array: np.ndarray) -> None:
        with self._zip.open(f"{key}.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
        self.count += 1

    def __exit__(self, kind, error, trace) -> None:
        try:
            self._zip.close()
            if kind is None and self.count:
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)
