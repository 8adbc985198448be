"""Embedding shards: one shard in one process (``embed_shard``), or many shards over N worker processes.

Each worker opens its own backend (its own ONNX session, or torch model) once and embeds whole shards, writing
their Parquet files and records itself: vectors never cross a process boundary, only progress counts do. With
``threads`` per worker chosen so that workers x threads fits the cores, N workers on N cores scale with N where
one session with N threads does not (a 5 s clip is too small a graph to keep many threads busy).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from usad.backends import BackendSpec
from usad.dataset.inputs import Item, item_key, open_source
from usad.dataset.parquet import ShardWriter, schema
from usad.dataset.run import Options, parquet_path, write_status
from usad.embed import Backend, Windowing, iter_sources
from usad.files import atomic_path

Progress = Callable[[int, float], None]  # (files finished, their audio seconds)


@dataclass(frozen=True)
class Job:
    """Everything a worker needs besides its shards; picklable."""

    spec: BackendSpec
    model: dict  # usad.backends.identity of the model, recorded in every Parquet file
    options: Options
    out: str
    npy_dir: str | None = None  # also write one .npy per clip, mirroring the input tree below ``npy_root``
    npy_root: str = "."


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_worker(workers: int, threads: int | None = None) -> int:
    """Intra-op threads of each worker: ``threads`` when given, else the cores shared out evenly."""
    return threads if threads else max(1, available_cores() // workers)


def npy_path(npy_dir: str | Path, npy_root: str | Path, item: Item) -> Path:
    """Where an item's .npy goes: its path below ``npy_root`` (a shard's member below the shard's name) under
    ``npy_dir``, with .npy added: ``root/a/b.wav`` -> ``npy_dir/a/b.wav.npy``."""
    path, member = item
    relative = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(npy_root)))
    return Path(npy_dir) / f"{relative / member if member else relative}.npy"


def embed_shard(backend: Backend, job: Job, index: int, items: Sequence[Item],
                progress: Progress | None = None) -> dict:
    """Embed one shard's items into its Parquet file, then write its record. Returns the record."""
    options, started = job.options, time.perf_counter()
    target = schema(job.model["dim"], options.pool, {"model": job.model, "options": asdict(options)})
    by_key = {item_key(item): item for item in items}
    errors: dict[str, str] = {}
    ok, seconds = 0, 0.0
    windowing = Windowing(options.chunk_seconds, options.context_seconds)
    with ShardWriter(parquet_path(job.out, index), target, options.layers, job.model["frame_rate"]) as writer:
        for clip in iter_sources(backend, map(open_source, items), options.layers, options.pool,  # type: ignore[arg-type]
                                 options.batch_seconds, windowing):
            if clip.error is not None:
                errors[clip.key] = clip.error
            else:
                writer.add(clip)
                ok, seconds = ok + 1, seconds + clip.seconds
                if job.npy_dir:
                    _write_npy(npy_path(job.npy_dir, job.npy_root, by_key[clip.key]), clip.embedding)
            if progress:
                progress(1, clip.seconds)
    record = {"items": len(items), "ok": ok, "rows": writer.rows, "seconds": seconds, "errors": errors,
              "elapsed_s": round(time.perf_counter() - started, 3), "pid": os.getpid()}
    write_status(job.out, index, record)
    return record


def _write_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        np.save(tmp, array)


# One backend per worker process, opened by the pool's initializer.
_worker: dict = {}


def _init_worker(job: Job, queue) -> None:
    _worker.update(job=job, queue=queue, backend=job.spec.open())


def _run_in_worker(index: int, items: Sequence[Item]) -> dict:
    queue = _worker["queue"]
    return embed_shard(_worker["backend"], _worker["job"], index, items, lambda n, s: queue.put((n, s)))


def run_shards(job: Job, shards: Iterable[tuple[int, Sequence[Item]]], workers: int = 1,
               progress: Progress | None = None, on_record: Callable[[int, dict], None] | None = None,
               backend: Backend | None = None) -> None:
    """Embed ``(index, items)`` shards on ``workers`` processes (1: in this one, on ``backend`` when given,
    else one opened from the job). At most two shards per
    worker are queued at a time, so the parent's memory does not grow with the dataset. A worker that dies
    stops the run with ``concurrent.futures.process.BrokenProcessPool``; the shards already done are kept."""
    progress = progress or (lambda n, s: None)
    on_record = on_record or (lambda i, r: None)
    if workers == 1:
        backend = backend or job.spec.open()
        for index, items in shards:
            on_record(index, embed_shard(backend, job, index, items, progress))
        return
    context = multiprocessing.get_context("spawn")  # no fork: ONNX Runtime and torch thread pools do not survive it
    queue = context.Queue()
    pending = iter(shards)
    running: dict[Future, int] = {}

    def drain() -> None:
        while not queue.empty():
            progress(*queue.get())

    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(job, queue)) as pool:
        try:
            while True:
                while len(running) < 2 * workers and (shard := next(pending, None)) is not None:
                    running[pool.submit(_run_in_worker, *shard)] = shard[0]
                if not running:
                    break
                done, _ = wait(running, timeout=0.25, return_when=FIRST_COMPLETED)
                drain()
                for future in done:
                    on_record(running.pop(future), future.result())
        except BaseException:
            for future in running:
                future.cancel()
            raise
        finally:
            drain()
