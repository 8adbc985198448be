"""Embeddings on a Ray cluster through Ray Data: the rows and Parquet layout of ``usad embed --out DIR``.

    import ray
    from usad.integrations.ray import embed_paths

    paths = ray.data.read_csv("manifest.csv")              # any Dataset with a "path" column
    embed_paths(paths, "my-model/", concurrency=16).write_parquet("/shared/embeddings")

Each of the ``concurrency`` actors opens its own torch-free ``usad.runtime.Encoder`` (or torch model) once and
embeds batches of paths with ``usad.embed.iter_sources``, as a local worker does; rows come out in the schema of
``usad.dataset.parquet``, so one reader serves both. A file that fails is left out and logged by its actor.
Ray's own scheduling handles retries; for resume by shard use ``usad embed --out DIR --rank R --world W``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from usad.backends import BackendSpec, identity
from usad.dataset.inputs import open_source
from usad.dataset.parquet import record_batch, schema
from usad.embed import Pool, Windowing, check_pool, iter_sources, select_layers

log = logging.getLogger(__name__)


def _ray():
    try:
        import ray
    except ImportError as err:
        raise ImportError("the Ray path needs Ray Data: pip install 'usad-edge[ray]'") from err
    return ray


class Embedder:
    """``map_batches`` callable class: a batch {"path": array of str} -> a pyarrow Table of embedding rows."""

    def __init__(self, spec: BackendSpec, layers: Sequence[int] | None, pool: Pool, batch_seconds: float,
                 windowing: Windowing):
        self.backend = spec.open()
        self.layers = [self.backend.layers[i] for i in select_layers(self.backend, layers)]
        self.pool, self.batch_seconds, self.windowing = check_pool(pool), batch_seconds, windowing
        model = identity(self.backend)
        self.schema = schema(model["dim"], self.pool, {"model": model})

    def __call__(self, batch: dict):
        import pyarrow as pa

        sources = [open_source((str(path), "")) for path in batch["path"]]
        clips = []
        for clip in iter_sources(self.backend, sources, self.layers, self.pool, self.batch_seconds, self.windowing):
            if clip.error is None:
                clips.append(clip)
            else:
                log.warning("usad embed: %s", clip.error)
        return pa.Table.from_batches([record_batch(clips, self.layers, self.backend.frame_rate, self.schema)])


def embed_paths(dataset, model: str, layers: Sequence[int] | None = None, pool: Pool = "mean",
                concurrency: int = 1, threads: int = 1, batch_size: int = 64, batch_seconds: float = 60.0,
                windowing: Windowing = Windowing(), device: str = "cpu", num_gpus: float = 0):
    """A lazy Ray Dataset of embedding rows (path, duration, layer, embedding[, time]) for ``dataset``'s
    "path" column: ``concurrency`` actors of ``threads`` CPU threads each (``num_gpus`` each with a GPU device)."""
    _ray()
    spec = BackendSpec(str(model), device, threads)
    return dataset.map_batches(Embedder, fn_constructor_args=(spec, layers, pool, batch_seconds, windowing),
                               batch_size=batch_size, concurrency=concurrency, num_cpus=threads,
                               num_gpus=num_gpus, batch_format="numpy")
