"""Finished corpus jobs on disk, so that a killed or interrupted build resumes where it stopped.

Each job's result (its Opus clips and their metadata, or its error) is one small tar file named by
a hash of the job and its bitrate, written atomically by the worker that made it. A rebuild with
the same request reads them back instead of decoding, synthesising and encoding again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

from usad.data.shards import add_member
from usad.data.worker import Job, Result, run_job

RESULT = "result.json"


def job_key(job: Job, kbps: dict[str, float] | None) -> str:
    spec = json.dumps([job.source, job.domain, job.kind, list(job.spec), list(job.tokens),
                       (kbps or {}).get(job.domain)], default=str)
    return hashlib.sha256(spec.encode()).hexdigest()


def _read(path: Path) -> Result:
    with tarfile.open(path) as tar:
        head = json.loads(tar.extractfile(RESULT).read())
        clips = [(tar.extractfile(f"{n:04d}.opus").read(), clip["seconds"], clip["extra"])
                 for n, clip in enumerate(head["clips"])]
    return Result(clips, head["error"])


def _write(path: Path, result: Result) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = {"error": result.error, "clips": [{"seconds": s, "extra": e} for _, s, e in result.clips]}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        add_member(tar, RESULT, json.dumps(head).encode())
        for n, (opus, _, _) in enumerate(result.clips):
            add_member(tar, f"{n:04d}.opus", opus)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def run_cached(job: Job, kbps: dict[str, float] | None, cache: Path) -> Result:
    """``run_job`` through the cache folder ``cache``: a finished job is read back, not redone."""
    key = job_key(job, kbps)
    path = cache / key[:2] / f"{key}.tar"
    if path.is_file():
        try:
            return _read(path)
        except (tarfile.TarError, KeyError, json.JSONDecodeError, OSError):
            pass  # a damaged entry is made again
    result = run_job(job, kbps)
    _write(path, result)
    return result
