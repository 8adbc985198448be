"""Dataset-scale embedding (usad.dataset): inputs, Parquet shards, resume after kill -9, workers, ranks.

The packaged default model (INT8 ONNX) runs everything, torch-free; audio is FSDD's real recordings
unless a test says it generates clips."""

import json
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from conftest import DEFAULT_DIM, DEFAULT_LAYERS, DEFAULT_RATE

from usad.backends import BackendSpec
from usad.dataset import DatasetRun, read_embeddings
from usad.dataset.inputs import expand_inputs
from usad.dataset.run import ERRORS_FILE, RunError, rank_from_env
from usad.errors import InputError
from usad.runtime import Encoder, default_model_dir

USAD = str(Path(sys.executable).parent / "usad")
MODEL = BackendSpec(str(default_model_dir()), threads=1)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def fsdd(shared, count: int, digit: str = "") -> list[str]:
    return sorted(map(str, (shared / "data/fsdd/recordings").glob(f"{digit}*.flac")))[:count]


def table_rows(folder) -> list[tuple[str, int]]:
    return sorted(zip(*(pq.read_table(folder, columns=["path", "layer"])[c].to_pylist() for c in ("path", "layer"))))


def test_run_matches_in_memory_embedding_and_reads_back(shared, tmp_path):
    files = fsdd(shared, 30, "7")
    summary = DatasetRun(MODEL, files, tmp_path / "run", shard_size=8).run()
    assert summary["ok"] == 30 and summary["shards_done"] == summary["shards"] == 4 and not summary["errors"]
    ours = read_embeddings(tmp_path / "run")
    encoder = Encoder(default_model_dir(), threads=1)
    # Shard by shard, the same batches as embed_files: equal to the bit. (INT8 vectors move by ~1e-2 with the
    # batch's padded shape, so runs are compared shard for shard, never against other batchings.)
    reference = {k: v for i in range(0, 30, 8) for k, v in encoder.embed_files(files[i:i + 8]).embeddings.items()}
    assert sorted(ours) == sorted(reference)
    assert all(np.array_equal(ours[path], reference[path]) for path in files)
    table = pq.read_table(tmp_path / "run")  # pandas / pyarrow read the folder directly: _files are passed over
    assert table.num_rows == 30 * DEFAULT_LAYERS and set(table["layer"].to_pylist()) == set(range(DEFAULT_LAYERS))
    meta = json.loads(table.schema.metadata[b"usad"])
    assert meta["model"]["file"] == "model.int8.onnx" and len(meta["model"]["sha256"]) == 64
    durations = dict(zip(table["path"].to_pylist(), table["duration"].to_pylist()))
    assert abs(durations[files[0]] - sf.info(files[0]).duration) < 0.01


def test_frames_with_timestamps_and_npy_mirror(shared, tmp_path):
    files = fsdd(shared, 3, "4")
    DatasetRun(MODEL, files, tmp_path / "run", layers=[-1, 2], pool="none", npy_dir=tmp_path / "npy").run()
    table = pq.read_table(tmp_path / "run").to_pylist()
    assert {row["layer"] for row in table} == {DEFAULT_LAYERS - 1, 2}
    row = table[0]
    frames = np.asarray(row["embedding"], dtype=np.float32)
    assert frames.shape[1] == DEFAULT_DIM and abs(frames.shape[0] - row["duration"] * DEFAULT_RATE) <= 2
    np.testing.assert_allclose(row["time"], np.arange(frames.shape[0]) / DEFAULT_RATE, atol=1e-6)
    mirrored = np.load(tmp_path / "npy" / (Path(row["path"]).name + ".npy"))  # the files share one folder
    assert mirrored.shape == (2, frames.shape[0], DEFAULT_DIM)
    np.testing.assert_array_equal(mirrored[[DEFAULT_LAYERS - 1, 2].index(row["layer"])], frames)


def test_inputs_folders_globs_manifests_and_tar_shards(shared, tmp_path):
    files = fsdd(shared, 4, "9")
    tree = tmp_path / "tree" / "deep"
    tree.mkdir(parents=True)
    for f in files[:2]:
        (tree / Path(f).name).write_bytes(Path(f).read_bytes())
    (tree / "notes.md").write_text("not audio")
    (tmp_path / "list.txt").write_text(f"# comment\n{files[2]}\n\n")
    (tmp_path / "list.csv").write_text(f"label,path\nnine,{files[3]}\n")
    (tmp_path / "list.jsonl").write_text(json.dumps({"path": files[3]}) + "\n")
    with tarfile.open(tmp_path / "shard-00000.tar", "w") as tar:
        tar.add(files[0], arcname="clip-a.flac")
        tar.add(files[1], arcname="clip-b.flac")
    items = expand_inputs([str(tmp_path / "tree"), str(tmp_path / "list.*"), str(tmp_path / "*.tar")])
    assert [Path(p).name + (f"#{m}" if m else "") for p, m in items] == [
        Path(files[0]).name, Path(files[1]).name, Path(files[3]).name, Path(files[2]).name,
        "shard-00000.tar#clip-a.flac", "shard-00000.tar#clip-b.flac"]
    DatasetRun(MODEL, [str(tmp_path / "tree"), str(tmp_path / "shard-00000.tar")], tmp_path / "run").run()
    vectors = read_embeddings(tmp_path / "run")
    from_tar = vectors[f"{tmp_path / 'shard-00000.tar'}#clip-a.flac"]
    np.testing.assert_array_equal(from_tar, vectors[str(tree / Path(files[0]).name)])
    with pytest.raises(InputError, match="holds no audio"):
        expand_inputs([str(tmp_path / "tree")], extensions=["mp3"])
    with pytest.raises(InputError, match="matches no file"):
        expand_inputs([str(tmp_path / "*.nothing")])
    (tmp_path / "bad.csv").write_text("file\nx.wav\n")
    with pytest.raises(InputError, match="no 'path' column"):
        expand_inputs([str(tmp_path / "bad.csv")])


def test_workers_and_ranks_give_the_vectors_of_one_process(shared, tmp_path):
    files = fsdd(shared, 48, "5")
    DatasetRun(MODEL, files, tmp_path / "one", shard_size=6).run()
    DatasetRun(MODEL, files, tmp_path / "two", shard_size=6, workers=2).run()
    for rank in (1, 0):  # two ranks of a Slurm array or torchrun job, into one folder
        DatasetRun(MODEL, files, tmp_path / "ranks", shard_size=6, rank=rank, world=2).run()
    one = read_embeddings(tmp_path / "one")
    for other in ("two", "ranks"):
        assert table_rows(tmp_path / other) == table_rows(tmp_path / "one")
        vectors = read_embeddings(tmp_path / other)
        assert all(np.array_equal(vectors[k], one[k]) for k in one)
    records = [json.loads(p.read_text()) for p in (tmp_path / "two" / "_status").glob("*.json")]
    assert len({r["pid"] for r in records}) == 2  # both workers took shards
    assert rank_from_env({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "2"}) \
        == (3, 4)
    assert rank_from_env({"RANK": "1", "WORLD_SIZE": "8"}) == (1, 8) and rank_from_env({}) == (0, 1)


def test_rerun_refuses_another_run_and_overwrite_replaces_it(shared, tmp_path):
    files = fsdd(shared, 4, "6")
    DatasetRun(MODEL, files, tmp_path / "run").run()
    again = DatasetRun(MODEL, files, tmp_path / "run")
    assert again.resumed and again.todo == []
    with pytest.raises(RunError, match="options differ"):
        DatasetRun(MODEL, files, tmp_path / "run", pool="none")
    with pytest.raises(RunError, match="inputs differ"):
        DatasetRun(MODEL, files[:3], tmp_path / "run")
    DatasetRun(MODEL, files[:3], tmp_path / "run", overwrite=True).run()
    assert len(read_embeddings(tmp_path / "run")) == 3
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("someone's file")
    with pytest.raises(RunError, match="not a run folder"):
        DatasetRun(MODEL, files, tmp_path / "other")


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_gives_each_file_once_with_identical_vectors(shared, tmp_path):
    files = fsdd(shared, 240, "3")
    (tmp_path / "files.txt").write_text("\n".join(files) + "\n")
    command = [USAD, "embed", str(default_model_dir()), str(tmp_path / "files.txt"), "--out", str(tmp_path / "run"),
               "--shard-size", "20", "--threads", "1"]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    status = tmp_path / "run" / "_status"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None and len(list(status.glob("*.json"))) < 3:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    done = len(list(status.glob("*.json")))
    assert 3 <= done < 12, "the run was not killed mid-way"
    # A shard whose Parquet write finished but whose record did not: it must be redone, not trusted.
    (status / "part-00000.json").unlink()
    (tmp_path / "run" / ".part-00011.tmp.parquet").write_bytes(b"PAR1 half a file")
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming: {done - 1} of 12 shards done" in rerun.stderr
    rows = table_rows(tmp_path / "run")
    # each file and layer exactly once
    assert rows == sorted({(f, layer) for f in files for layer in range(DEFAULT_LAYERS)})
    DatasetRun(MODEL, files, tmp_path / "clean", shard_size=20).run()
    clean, resumed = read_embeddings(tmp_path / "clean"), read_embeddings(tmp_path / "run")
    assert all(np.array_equal(resumed[f], clean[f]) for f in files)


@pytest.mark.slow
def test_thousands_of_files_in_flat_memory_and_bad_files_listed(tmp_path):
    """2,000 generated clips (mixed rates, channels, lengths) and 3 bad files, frames kept (--pool none): peak RSS
    after half the files and at the end differ by far less than the frames of the second half would take."""
    rng = np.random.default_rng(0)
    clips = tmp_path / "clips"
    for i in range(2000):
        rate, seconds = (8000, 16000, 44100)[i % 3], 0.2 + 0.3 * rng.random()
        t = np.arange(int(rate * seconds)) / rate
        audio = 0.3 * np.sin(2 * np.pi * (200 + 5 * (i % 300)) * t) + 0.05 * rng.standard_normal(t.size)
        folder = clips / f"{i // 500:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"clip-{i:04d}.wav", np.stack([audio, audio[::-1]], 1) if i % 4 == 0 else audio, rate)
    (clips / "00" / "broken.wav").write_bytes(b"RIFF" + bytes(100))
    sf.write(clips / "01" / "empty.wav", np.zeros(0), 16000)
    sf.write(clips / "02" / "nan.wav", np.full(4000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    script = textwrap.dedent(f"""
        import json, warnings
        warnings.simplefilter("ignore")
        from usad.backends import BackendSpec
        from usad.dataset import DatasetRun
        from usad.runtime import default_model_dir
        def hwm():
            return next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
        run = DatasetRun(BackendSpec(str(default_model_dir()), threads=2), [{str(clips)!r}], {str(tmp_path / "run")!r},
                         shard_size=250, pool="none")
        seen, marks = [0], {{}}
        def progress(files, seconds):
            seen[0] += files
            if seen[0] == 1000:
                marks["half"] = hwm()
        summary = run.run(progress)
        print(json.dumps({{"half": marks["half"], "end": hwm(), "ok": summary["ok"], "errors": summary["errors"]}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    print(report)
    assert report["ok"] == 2000
    assert sorted(Path(k).name for k in report["errors"]) == ["broken.wav", "empty.wav", "nan.wav"]
    assert "empty audio" in report["errors"][str(clips / "01" / "empty.wav")]
    assert "NaN" in report["errors"][str(clips / "02" / "nan.wav")]
    errors_file = (tmp_path / "run" / ERRORS_FILE).read_text().splitlines()
    assert errors_file[0] == "path\terror" and len(errors_file) == 4
    table = pq.read_table(tmp_path / "run", columns=["path", "time"])
    assert table.num_rows == 2000 * DEFAULT_LAYERS
    frames = sum(len(t) for t in table["time"].to_pylist()) * DEFAULT_DIM * 4 / 2**20  # MiB of frames, all layers
    print(f"peak RSS {report['half']:.0f} MiB at 1,000 files, {report['end']:.0f} MiB at 2,000; the second "
          f"half's frames would take {frames / 2:.0f} MiB if kept")
    assert report["end"] - report["half"] < 0.2 * frames / 2, report
