import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

import usad
from usad.backends import TorchBackend
from usad.chunking import iter_windows
from usad.cli import app
from usad.embed import Windowing, embed_files


@pytest.fixture(scope="module")
def nano_dir(tmp_path_factory):
    torch.manual_seed(0)
    return usad.save(usad.create_model("usad-nano"), tmp_path_factory.mktemp("m") / "nano")


def test_cli_embeds_real_audio_and_reports_bad_files(nano_dir, shared, tmp_path):
    files = [shared / "data/fsdd/recordings/3_theo_7.flac", shared / "data/gcompris-voices/de/colors/red.ogg"]
    (tmp_path / "broken.wav").write_bytes(b"RIFF....")
    out = tmp_path / "emb.npz"
    result = CliRunner(env={"COLUMNS": "300"}).invoke(
        app, ["embed", str(nano_dir), *map(str, files), str(tmp_path / "broken.wav"), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "broken.wav" in result.output and "1 file(s) failed" in result.output
    saved = np.load(out)
    assert sorted(saved.files) == sorted(map(str, files))
    assert saved[str(files[0])].shape == (5, 192)  # depth + 1 layers, pooled
    assert np.isfinite(saved[str(files[0])]).all()


def test_cli_layer_and_frames(nano_dir, shared, tmp_path):
    path = shared / "data/fsdd/recordings/3_theo_7.flac"
    out = tmp_path / "frames.npz"
    result = CliRunner().invoke(app, ["embed", str(nano_dir), str(path), "--layer", "-1", "--pool", "none",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    frames = np.load(out)[str(path)]
    seconds = sf.info(path).duration
    assert frames.shape[0] == 1 and frames.shape[2] == 192 and abs(frames.shape[1] - seconds * 50) <= 2


def test_cli_info(nano_dir):
    result = CliRunner().invoke(app, ["info", str(nano_dir)])
    assert result.exit_code == 0, result.output
    assert "usad-nano" in result.output and "GFLOPs / s audio" in result.output


def test_batched_embeddings_equal_single_file(nano_dir, shared):
    backend = TorchBackend(usad.load(nano_dir))
    files = [str(shared / f"data/fsdd/recordings/{d}_jackson_0.flac") for d in range(4)]
    together = embed_files(backend, files).embeddings
    for path in files:
        alone = embed_files(backend, [path]).embeddings[path]
        assert np.abs(alone - together[path]).max() < 1e-5


def test_windows_cover_every_frame_once():
    hop, chunk, context = 320, 320 * 10, 320 * 2
    audio = np.arange(320 * 37 + 123, dtype=np.float32)
    blocks = np.array_split(audio, 7)
    windows = list(iter_windows(blocks, hop, chunk, context))
    kept = []
    for w in windows:
        start = int(w.audio[0]) // hop
        stop = w.keep_stop if w.keep_stop is not None else (len(w.audio) - 400) // 320 + 1
        kept.extend(range(start + w.keep_start, start + stop))
    assert kept == list(range(len(kept))) and len(kept) >= 37


def test_long_audio_is_chunked_close_to_one_pass(nano_dir, tmp_path, rng):
    model = usad.load(nano_dir)
    audio = (rng.standard_normal(16000 * 70) * 0.1).astype(np.float32)
    sf.write(tmp_path / "long.wav", audio, 16000)
    chunked = embed_files(TorchBackend(model), [str(tmp_path / "long.wav")], pool="none",
                          windowing=Windowing(20)).embeddings[str(tmp_path / "long.wav")]
    with torch.no_grad():
        whole = torch.stack(model(torch.from_numpy(audio)[None]).hidden_states)[:, 0].numpy()
    assert chunked.shape == whole.shape
    cosine = (chunked * whole).sum(-1) / np.linalg.norm(chunked, axis=-1) / np.linalg.norm(whole, axis=-1)
    assert cosine.min() > 0.99


def test_hour_long_input_in_bounded_memory(nano_dir, tmp_path):
    """One hour at 8 kHz streams through bounded buffers: the whole file as 16 kHz float32 would be
    230 MB of numpy arrays, which tracemalloc (it sees every numpy allocation) would catch."""
    path = tmp_path / "hour.wav"
    with sf.SoundFile(path, "w", 8000, 1, subtype="PCM_16") as f:
        block = (np.sin(np.arange(8000 * 60) * 0.3) * 0.2).astype(np.float32)
        for _ in range(60):
            f.write(block)
    script = textwrap.dedent(f"""
        import json, resource, tracemalloc, torch
        import usad
        from usad.backends import TorchBackend
        from usad.embed import Windowing, embed_files
        torch.set_num_threads(2)
        backend = TorchBackend(usad.load({str(nano_dir)!r}))
        tracemalloc.start()
        result = embed_files(backend, [{str(path)!r}], windowing=Windowing(30))
        _, traced_peak = tracemalloc.get_traced_memory()
        print(json.dumps({{"seconds": result.seconds, "traced_peak_mb": traced_peak / 2**20,
                          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          "shape": list(result.embeddings[{str(path)!r}].shape)}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    print(report)
    assert abs(report["seconds"] - 3600) < 1 and report["shape"] == [5, 192]
    assert report["traced_peak_mb"] < 40  # a few 34 s windows of audio and their outputs
