"""A dataset run's folder: what was asked, what is done, what failed; the basis of resume.

```
OUT/
  part-00000.parquet ...   embeddings of shard 0, 1, ... (``usad.dataset.parquet``): the items
                           [i * shard_size, (i + 1) * shard_size) of the expanded input list
  _run.json                model (file, sha256), options, inputs (count, sha256), shard size
  _status/part-00000.json  per-shard record, written after its Parquet file: per-item errors, counts, seconds
  _errors.tsv              every failed item and why, rebuilt from the records at the end of each run
```

Names starting with ``_`` are passed over by Parquet readers of the folder (``pandas.read_parquet(OUT)``).
A shard is done when its record exists; a rerun with the same model, options and inputs does only the others,
so a shard whose write was interrupted is redone whole. Shard ``i`` belongs to rank ``i % world``: ranks of
a Slurm array or torchrun job split the work with no coordination and write disjoint files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from usad.dataset.inputs import Item, item_key
from usad.errors import UsadError
from usad.files import atomic_write_json, atomic_write_text

FORMAT = "usad-embeddings/1"
RUN_FILE = "_run.json"
STATUS_DIR = "_status"
ERRORS_FILE = "_errors.tsv"


class RunError(UsadError):
    """An output folder that cannot take this run; the message says why and what to do."""


@dataclass(frozen=True)
class Options:
    """What changes the vectors of a run, beside the model and the inputs."""

    layers: tuple[int, ...]  # hidden-state numbers written
    pool: str
    batch_seconds: float
    chunk_seconds: float
    context_seconds: float
    shard_size: int


def inputs_digest(items: Sequence[Item]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(item_key(item).encode() + b"\n")
    return digest.hexdigest()


def shard_name(index: int) -> str:
    return f"part-{index:05d}"


def parquet_path(out: str | Path, index: int) -> Path:
    return Path(out) / f"{shard_name(index)}.parquet"


def status_path(out: str | Path, index: int) -> Path:
    return Path(out) / STATUS_DIR / f"{shard_name(index)}.json"


def write_status(out: str | Path, index: int, record: dict) -> None:
    """Mark shard ``index`` done (after its Parquet file is in place)."""
    atomic_write_json(status_path(out, index), {"shard": index, **record})


def shard_items(items: Sequence[Item], shard_size: int, index: int) -> list[Item]:
    return list(items[index * shard_size:(index + 1) * shard_size])


def shard_count(items: Sequence[Item], shard_size: int) -> int:
    return -(-len(items) // shard_size)


def rank_shards(count: int, rank: int = 0, world: int = 1) -> list[int]:
    """The shards rank ``rank`` of ``world`` embeds: every ``world``-th from ``rank``."""
    if not 0 <= rank < world:
        raise ValueError(f"rank must be in 0..{world - 1}, got {rank}")
    return list(range(rank, count, world))


def rank_from_env(environ=os.environ) -> tuple[int, int]:
    """(rank, world) of this process under Slurm arrays (``SLURM_ARRAY_TASK_ID`` / ``_COUNT``) or torchrun
    (``RANK`` / ``WORLD_SIZE``); (0, 1) otherwise."""
    if "SLURM_ARRAY_TASK_ID" in environ and "SLURM_ARRAY_TASK_COUNT" in environ:
        first = int(environ.get("SLURM_ARRAY_TASK_MIN", 0))
        return int(environ["SLURM_ARRAY_TASK_ID"]) - first, int(environ["SLURM_ARRAY_TASK_COUNT"])
    return int(environ.get("RANK", 0)), int(environ.get("WORLD_SIZE", 1))


class RunFolder:
    """The output folder of one run, opened for a given model, options and inputs."""

    def __init__(self, out: str | Path, model: dict, options: Options, items: Sequence[Item]):
        self.out = Path(out)
        self.options = options
        self.items = items
        self.count = shard_count(items, options.shard_size)
        self.manifest = {"format": FORMAT, "model": model, "options": asdict(options),
                         "inputs": {"items": len(items), "sha256": inputs_digest(items), "shards": self.count}}

    def open(self) -> bool:
        """Create the folder or check that it holds this same run; True when it already held it (a resume, or
        another rank of this run got there first: ranks may start at once, so creating is idempotent)."""
        run_file = self.out / RUN_FILE
        if not run_file.is_file():
            foreign = [p.name for p in self.out.iterdir() if not p.name.startswith(("part-", "_", "."))] \
                if self.out.is_dir() else []
            if foreign:
                raise RunError(f"{self.out} exists and is not a run folder of usad embed (it holds {foreign[0]}); "
                               "pick another --out")
            (self.out / STATUS_DIR).mkdir(parents=True, exist_ok=True)
            tmp = self.out / f".{RUN_FILE}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(self.manifest, indent=1))
            try:  # a hard link is atomic and exclusive: one rank writes the manifest whole, the others check it
                os.link(tmp, run_file)
                return False
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        try:
            earlier = json.loads(run_file.read_text())
        except (OSError, ValueError) as err:
            raise RunError(f"{run_file}: unreadable ({err}); remove {self.out} or pick another --out") from err
        differs = [key for key in ("model", "options", "inputs")
                   if _identity(earlier.get(key), key) != _identity(self.manifest[key], key)]
        if differs:
            raise RunError(f"{self.out} holds another run (its {', '.join(differs)} differ); pass --overwrite "
                           "to replace it or pick another --out")
        return True

    def clear(self) -> None:
        """Remove an earlier run's files (only those: anything else in the folder stays)."""
        for part in self.out.glob("part-*.parquet"):
            part.unlink()
        shutil.rmtree(self.out / STATUS_DIR, ignore_errors=True)
        for name in (RUN_FILE, ERRORS_FILE):
            (self.out / name).unlink(missing_ok=True)

    def todo(self, shards: Sequence[int]) -> list[int]:
        return [i for i in shards if not status_path(self.out, i).is_file()]

    def records(self) -> Iterator[dict]:
        for index in range(self.count):
            if status_path(self.out, index).is_file():
                try:
                    yield json.loads(status_path(self.out, index).read_text())
                except (OSError, ValueError):
                    continue  # a record is written atomically: unreadable means tampered with; the shard reruns

    def summarize(self) -> dict:
        """Counts over the done shards, and ``_errors.tsv`` rewritten from their records."""
        summary = {"shards_done": 0, "shards": self.count, "items": len(self.items), "ok": 0, "seconds": 0.0,
                   "errors": {}}
        for record in self.records():
            summary["shards_done"] += 1
            summary["ok"] += record["ok"]
            summary["seconds"] += record["seconds"]
            summary["errors"].update(record["errors"])
        lines = "".join(f"{key}\t{message}\n" for key, message in summary["errors"].items())
        atomic_write_text(self.out / ERRORS_FILE, "path\terror\n" + lines)
        return summary


def _identity(section: dict | None, key: str) -> object:
    """The part of a manifest section that must match for a resume (the model's path may move, its hash not)."""
    section = json.loads(json.dumps(section))  # as stored: tuples become lists
    if key == "model" and isinstance(section, dict):
        return {k: v for k, v in section.items() if k != "path"}
    return section
