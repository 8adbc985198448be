"""Embeddings as Parquet: one row per clip and layer, written in row groups as results arrive.

| column | type | holds |
|---|---|---|
| path | string | the clip's key (file path, or ``shard.tar#member``) |
| duration | float64 | seconds of audio |
| layer | int16 | hidden-state number (0 = positional encoder output, depth = last block) |
| embedding | fixed_size_list<float32>[D] (pool mean) or list<fixed_size_list<float32>[D]> (pool none) | |
| time | list<float32>, pool none only | start of each frame, seconds |

The file's metadata ``usad`` holds the model and options (JSON). The local pool, the Ray path and any reader
(pandas, polars, DuckDB, Spark) share this layout. ``read_embeddings`` turns it back into arrays.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from usad.embed import ClipResult, Pool
from usad.files import atomic_path

ROW_GROUP_BYTES = 32 << 20  # buffered vectors before a row group is written: bounds the writer's memory
METADATA_KEY = b"usad"


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ImportError("Parquet output needs pyarrow: pip install pyarrow (or write a .npz with --out x.npz)") \
            from err
    return pa, pq


def schema(dim: int, pool: Pool, metadata: dict | None = None):
    pa, _ = _pyarrow()
    vector = pa.list_(pa.float32(), dim)
    fields = [pa.field("path", pa.string()), pa.field("duration", pa.float64()), pa.field("layer", pa.int16())]
    if pool == "mean":
        fields.append(pa.field("embedding", vector))
    else:
        fields += [pa.field("embedding", pa.list_(vector)), pa.field("time", pa.list_(pa.float32()))]
    return pa.schema(fields, metadata={METADATA_KEY: json.dumps(metadata or {})})


def record_batch(clips: Sequence[ClipResult], layers: Sequence[int], frame_rate: float, target_schema):
    """Rows (clip x layer) of successful clips: embeddings (L, D) pooled or (L, T, D) frames."""
    pa, _ = _pyarrow()
    dim = target_schema.field("embedding").type
    dim = dim.list_size if pa.types.is_fixed_size_list(dim) else dim.value_type.list_size
    rows = [(clip, position) for clip in clips for position in range(len(layers))]
    paths = pa.array([clip.key for clip, _ in rows], pa.string())
    durations = pa.array([clip.seconds for clip, _ in rows], pa.float64())
    numbers = pa.array([layers[position] for _, position in rows], pa.int16())
    if not rows:
        flat = np.zeros(0, np.float32)
    else:
        flat = np.concatenate([clip.embedding[position].reshape(-1) for clip, position in rows]).astype(np.float32)
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim)
    columns = [paths, durations, numbers]
    if pa.types.is_fixed_size_list(target_schema.field("embedding").type):
        columns.append(vectors)
    else:
        frames = [clip.embedding.shape[1] for clip, _ in rows]
        offsets = pa.array(np.concatenate([[0], np.cumsum(frames)]).astype(np.int32))
        columns.append(pa.ListArray.from_arrays(offsets, vectors))
        times = np.concatenate([np.arange(n, dtype=np.float32) / np.float32(frame_rate) for n in frames]) \
            if rows else np.zeros(0, np.float32)
        columns.append(pa.ListArray.from_arrays(offsets, pa.array(times, pa.float32())))
    return pa.RecordBatch.from_arrays(columns, schema=target_schema)


class ShardWriter:
    """Writes one Parquet file whole or not at all: rows go to a hidden temporary file in row groups of about
    ``ROW_GROUP_BYTES``, and ``close`` renames it over the target. Use as a context manager; an exception
    inside removes the temporary file and leaves any older file in place."""

    def __init__(self, path: str | Path, target_schema, layers: Sequence[int], frame_rate: float):
        self.path, self.schema, self.layers, self.frame_rate = Path(path), target_schema, list(layers), frame_rate
        self.pending: list[ClipResult] = []
        self.pending_bytes = 0
        self.rows = 0

    def __enter__(self) -> ShardWriter:
        _, pq = _pyarrow()
        self._atomic = atomic_path(self.path)
        self._writer = pq.ParquetWriter(self._atomic.__enter__(), self.schema, compression="zstd")
        return self

    def add(self, clip: ClipResult) -> None:
        self.pending.append(clip)
        self.pending_bytes += clip.embedding.nbytes
        if self.pending_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            batch = record_batch(self.pending, self.layers, self.frame_rate, self.schema)
            self._writer.write_batch(batch)
            self.rows += batch.num_rows
        self.pending, self.pending_bytes = [], 0

    def __exit__(self, kind, error, trace) -> None:
        try:
            if kind is None:
                self._flush()
        finally:
            self._writer.close()
            self._atomic.__exit__(kind, error, trace)


def read_embeddings(source: str | Path | Sequence[str | Path], layer: int | None = None) -> dict[str, np.ndarray]:
    """{path: (L, D) or (L, T, D)} from a run folder or Parquet files, layers in stored order (``layer``: one
    hidden-state number only). For big runs read the table with pyarrow or pandas directly."""
    pa, pq = _pyarrow()
    table = pq.read_table(source if isinstance(source, (str, Path)) else [str(s) for s in source],
                          columns=["path", "layer", "embedding"])
    if layer is not None:
        import pyarrow.compute as pc

        table = table.filter(pc.equal(table["layer"], layer))
    by_path: dict[str, list[tuple[int, np.ndarray]]] = {}
    for path, number, vector in zip(table["path"].to_pylist(), table["layer"].to_pylist(),
                                    table["embedding"].to_pylist()):
        by_path.setdefault(path, []).append((number, np.asarray(vector, dtype=np.float32)))
    return {path: np.stack([v for _, v in sorted(rows, key=lambda r: r[0])]) for path, rows in by_path.items()}
