"""Embeddings at dataset scale: many inputs, Parquet shards written as the run goes, resume, worker processes.

``DatasetRun`` (usad.dataset.runner) is the entry point; ``read_embeddings`` reads a run folder back. numpy,
soundfile, soxr, onnxruntime and pyarrow only: it runs in a torch-free install.
"""

from usad.dataset.parquet import read_embeddings
from usad.dataset.runner import DatasetRun

__all__ = ["DatasetRun", "read_embeddings"]
