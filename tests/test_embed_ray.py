"""The Ray Data path (usad.integrations.ray) on a local Ray cluster gives the Parquet rows of the local path."""

import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import DEFAULT_LAYERS

from usad.backends import BackendSpec
from usad.dataset import DatasetRun
from usad.runtime import default_model_dir

ray = pytest.importorskip("ray")


@pytest.mark.slow
def test_ray_path_writes_the_rows_of_the_local_path(shared, tmp_path):
    from usad.integrations.ray import embed_paths

    files = sorted(map(str, (shared / "data/fsdd/recordings").glob("8_*.flac")))[:24]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        DatasetRun(BackendSpec(str(default_model_dir()), threads=1), files, tmp_path / "local", shard_size=8).run()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        # Three blocks of 8 rows, batches of 8: each actor call sees one local shard's files, so the padded
        # batches, hence the INT8 vectors, are the local ones to the bit.
        paths = ray.data.from_items([{"path": f} for f in files], override_num_blocks=3)
        embed_paths(paths, str(default_model_dir()), concurrency=2, batch_size=8).write_parquet(str(tmp_path / "ray"))
    finally:
        ray.shutdown()
    local, remote = (pq.read_table(tmp_path / d).sort_by([("path", "ascending"), ("layer", "ascending")])
                     for d in ("local", "ray"))
    assert remote.column_names == local.column_names == ["path", "duration", "layer", "embedding"]
    assert remote.num_rows == local.num_rows == 24 * DEFAULT_LAYERS
    for column in ("path", "duration", "layer"):
        assert remote[column].to_pylist() == local[column].to_pylist()
    vectors = [np.asarray(table["embedding"].to_pylist()) for table in (remote, local)]
    np.testing.assert_array_equal(*vectors)
