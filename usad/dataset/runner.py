"""A dataset run from start to summary: expand the inputs, open or resume the output folder, embed this rank's
shards that are not done, and count what was written and what failed.

    run = DatasetRun(BackendSpec("my-model"), ["data/", "more/*.flac"], "embeddings/", pool="mean")
    summary = run.run(workers=2)            # rerun after a kill: only the shards not done
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from usad.backends import BackendSpec, identity
from usad.dataset.inputs import AUDIO_EXTENSIONS, expand_inputs
from usad.dataset.pool import Job, Progress, run_shards, threads_per_worker
from usad.dataset.run import Options, RunFolder, rank_shards, shard_items
from usad.embed import Pool, Windowing, check_pool, select_layers

DEFAULT_SHARD_SIZE = 1000


class DatasetRun:
    """Opens the model once (to check the layers and hash it) and the output folder; ``run`` does the work.

    ``threads`` is per worker; None shares the cores out among ``workers``."""

    def __init__(self, spec: BackendSpec, inputs: Sequence[str], out: str | Path,
                 layers: Sequence[int] | None = None, pool: Pool = "mean", batch_seconds: float = 60.0,
                 windowing: Windowing = Windowing(), shard_size: int = DEFAULT_SHARD_SIZE, workers: int = 1,
                 rank: int = 0, world: int = 1, overwrite: bool = False, npy_dir: str | Path | None = None,
                 extensions: Sequence[str] = AUDIO_EXTENSIONS):
        if shard_size < 1 or workers < 1:
            raise ValueError(f"shard size and workers must be at least 1, got {shard_size} and {workers}")
        self.workers = workers
        self.spec = BackendSpec(spec.model, spec.device, threads_per_worker(workers, spec.threads), spec.prefer)
        self.items = expand_inputs(inputs, extensions)
        if not self.items:
            raise ValueError("no audio to embed: the inputs expand to nothing")
        self.backend = self.spec.open()
        numbers = tuple(self.backend.layers[i] for i in select_layers(self.backend, layers))
        self.options = Options(numbers, check_pool(pool), batch_seconds, windowing.chunk_seconds,
                               windowing.context_seconds, shard_size)
        self.model = identity(self.backend)
        self.folder = RunFolder(out, self.model, self.options, self.items)
        if overwrite:
            self.folder.clear()
        self.resumed = self.folder.open()
        self.shards = rank_shards(self.folder.count, rank, world)
        self.todo = self.folder.todo(self.shards)
        self.files_todo = sum(len(shard_items(self.items, shard_size, i)) for i in self.todo)
        root = os.path.commonpath([os.path.abspath(p) for p, _ in self.items])
        self.job = Job(self.spec, self.model, self.options, str(out), str(npy_dir) if npy_dir else None,
                       root if os.path.isdir(root) else os.path.dirname(root))

    def run(self, progress: Progress | None = None) -> dict:
        """Embed the shards to do; the summary counts every done shard of the folder (all ranks)."""
        shards = ((i, shard_items(self.items, self.options.shard_size, i)) for i in self.todo)
        backend = self.backend if self.workers == 1 else None
        if backend is None:
            del self.backend  # each worker opens its own; this one's memory is not needed meanwhile
        run_shards(self.job, shards, self.workers, progress, backend=backend)
        return {**self.folder.summarize(), "resumed": self.resumed, "skipped_shards": len(self.shards) - len(self.todo)}
