"""What a dataset run embeds: files, directories, globs, manifests and WebDataset shards, as one ordered list.

Every input expands to ``Item``s, ``(path, member)`` pairs: ``member`` is "" for an audio file and the member
name for a clip inside a tar shard. Expansion is deterministic (directories and globs sorted), so every rank of
a multi-machine run and every rerun of a killed one sees the same list, split the same way. ``open_source``
turns an item into a lazy ``usad.embed.Source``. Standard library, numpy and soundfile only (no torch).
"""

from __future__ import annotations

import csv
import glob
import io
import json
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from usad.audio import AudioError, check_waveform, to_mono_16k
from usad.embed import AudioFile, Source
from usad.errors import InputError

Item = tuple[str, str]  # (path, member of a tar shard or "")
AUDIO_EXTENSIONS = ("wav", "flac", "ogg", "opus", "mp3", "aiff", "aif", "au")
MANIFEST_SUFFIXES = (".txt", ".lst", ".csv", ".tsv", ".jsonl")
SHARD_SUFFIXES = (".tar",)
PATH_COLUMN = "path"


def item_key(item: Item) -> str:
    """How an item is named in outputs: its path, or ``shard.tar#member`` for a clip inside a shard."""
    path, member = item
    return f"{path}#{member}" if member else path


def expand_inputs(specs: Sequence[str], extensions: Sequence[str] = AUDIO_EXTENSIONS) -> list[Item]:
    """Files, directories (recursive, by extension), globs, manifests (.txt / .lst: one path per line; .csv /
    .tsv / .jsonl: a ``path`` column) and .tar shards -> items in argument order, each at most once."""
    suffixes = tuple("." + e.lower().lstrip(".") for e in extensions)
    seen: set[Item] = set()
    items: list[Item] = []
    for spec in specs:
        for item in _expand(spec, suffixes):
            if item not in seen:
                seen.add(item)
                items.append(item)
    return items


def _expand(spec: str, suffixes: tuple[str, ...]) -> Iterator[Item]:
    path = Path(spec)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
        if not found:
            raise InputError(f"{spec}: directory holds no audio files ({', '.join(s[1:] for s in suffixes)}); "
                             "--ext picks other extensions")
        for file in found:
            yield str(file), ""
    elif path.is_file():
        yield from _expand_file(path, suffixes)
    elif glob.has_magic(spec):
        matches = sorted(glob.glob(spec, recursive=True))
        if not matches:
            raise InputError(f"{spec}: the pattern matches no file")
        for match in matches:
            yield from _expand(match, suffixes)
    else:
        raise InputError(f"{spec}: no such file, directory or glob match")


def _expand_file(path: Path, suffixes: tuple[str, ...]) -> Iterator[Item]:
    suffix = path.suffix.lower()
    if suffix in SHARD_SUFFIXES:
        yield from ((str(path), member) for member in shard_members(path, suffixes))
    elif suffix in MANIFEST_SUFFIXES:
        for entry in _manifest_paths(path):
            resolved = Path(entry) if Path(entry).is_absolute() else path.parent / entry
            if resolved.suffix.lower() in SHARD_SUFFIXES and resolved.is_file():
                yield from _expand_file(resolved, suffixes)
            else:
                yield str(resolved), ""  # a missing file is named as failed in the run, not fatal here
    else:
        yield str(path), ""


def _manifest_paths(path: Path) -> Iterator[str]:
    """Paths listed in a manifest, relative ones as written (resolved against the manifest's folder)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: unreadable manifest ({err})") from err
    if path.suffix.lower() in (".txt", ".lst"):
        yield from (line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
        return
    if path.suffix.lower() == ".jsonl":
        try:
            rows: list = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: not JSON lines ({err})") from err
    else:
        rows = list(csv.DictReader(io.StringIO(text), delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not row.get(PATH_COLUMN):
            columns = ", ".join(row) if isinstance(row, dict) else type(row).__name__
            raise InputError(f"{path}: row {number} has no {PATH_COLUMN!r} column (has: {columns})")
        yield str(row[PATH_COLUMN])


def shard_members(path: str | Path, suffixes: Sequence[str] = tuple("." + e for e in AUDIO_EXTENSIONS)) -> list[str]:
    """Audio members of a WebDataset-layout tar shard (``{key}.opus`` beside ``{key}.json``), in stored order."""
    try:
        _, members = _open_tar(str(path))
    except AudioError as err:
        raise InputError(str(err)) from err
    return [name for name in members if Path(name).suffix.lower() in tuple(suffixes)]


@lru_cache(maxsize=2)  # a worker reads its shard's members one by one: keep the open tar and its index
def _open_tar(path: str) -> tuple[tarfile.TarFile, dict[str, tarfile.TarInfo]]:
    try:
        tar = tarfile.open(path)
        return tar, {m.name: m for m in tar.getmembers() if m.isfile()}
    except (OSError, tarfile.TarError) as err:
        raise AudioError(f"{path}: not a readable tar shard ({err})") from err


@dataclass(frozen=True)
class ShardMember:
    """A ``Source`` over one audio member of a tar shard, decoded from its bytes with soundfile."""

    path: str
    member: str

    @property
    def key(self) -> str:
        return item_key((self.path, self.member))

    def _bytes(self) -> bytes:
        tar, members = _open_tar(self.path)
        if self.member not in members:
            raise AudioError(f"{self.key}: no such member in the shard")
        return tar.extractfile(members[self.member]).read()

    def duration(self) -> float:
        try:
            info = sf.info(io.BytesIO(self._bytes()))
        except (sf.LibsndfileError, RuntimeError, TypeError) as err:
            raise AudioError(f"{self.key}: unreadable audio ({err})") from err
        return info.frames / info.samplerate

    def load(self) -> np.ndarray:
        try:
            audio, rate = sf.read(io.BytesIO(self._bytes()), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError) as err:
            raise AudioError(f"{self.key}: unreadable audio ({err})") from err
        return check_waveform(to_mono_16k(audio, rate), self.key)

    def blocks(self, seconds: float) -> list[np.ndarray]:
        return [self.load()]  # a shard member is bounded by the shard's size (tens of MB)


def open_source(item: Item) -> Source:
    path, member = item
    return ShardMember(path, member) if member else AudioFile(path)
