"""The streaming export and the torch-free runtime: ONNX parity against the masked full-sequence torch
forward on real audio, guarded INT8, cache shapes over a long stream, random-size pushes equal to
one push, Encoder.stream() without torch, and the CLI's bad inputs (one line, non-zero exit)."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_export_fixtures import FAST_QUANT, calibration_audio, work_dir
from test_stream_model import stream_model

import usad
from usad.audio import AudioError, load_audio
from usad.export import export_model_dir
from usad.export.streaming import check_stream_parity, export_stream_dir, stream_audio
from usad.onnx_conventions import STREAM_FILES
from usad.streaming import open_stream

PRESET = "usad-tiny-stream-160-la160"  # look-ahead: the first step takes more audio than the others


@pytest.fixture(scope="module")
def stream_dir(shared):
    """The look-ahead preset with usad-tiny-distilled's weights: streaming fp32 + guarded INT8, and the
    full-sequence fp32 export that ``usad.runtime.Encoder`` opens."""
    directory = usad.save(stream_model(PRESET), work_dir() / "tiny-stream")
    export_stream_dir(directory, int8=True, calibration=calibration_audio(), quantize_options=FAST_QUANT,
                      parity_seconds=(3.7, 9.0), log=lambda message: None)
    export_model_dir(directory, calibration=calibration_audio(), parity_seconds=(1.0,), log=lambda message: None)
    return directory


@pytest.fixture(scope="module")
def speech(shared) -> np.ndarray:
    files = sorted((shared / "data/gcompris-voices/fr/alphabet").glob("*.ogg"))[:30]
    return np.concatenate([load_audio(f) for f in files])


USAD = str(Path(sys.executable).with_name("usad"))  # the console script of this environment
TINY = str(Path(__file__).resolve().parents[1] / "models" / "usad-tiny-distilled")


def run_cli(*args, stdin: bytes | None = None, cwd: Path | None = None):
    return subprocess.run([USAD, *args], capture_output=True, input=stdin, timeout=300, cwd=cwd)


def test_export_records_parity_and_a_guarded_int8(stream_dir):
    record = json.loads((stream_dir / "export.json").read_text())["files"]
    fp32, int8 = record[STREAM_FILES["fp32"]], record[STREAM_FILES["int8"]]
    assert fp32["parity"]["passed"] and fp32["parity"]["input"] == "real audio"
    assert max(c["max_abs_error"] for c in fp32["parity"]["cases"]) < 1e-4
    assert fp32["usad_stream"]["algorithmic_latency_ms"] == 335.0
    assert int8["guard"]["passed"] and int8["guard"]["attempts"][-1]["cosine"] >= 0.99
    assert int8["size_vs_fp32"] < 0.4
    # the full sequence as the plain graph: the contrib attention (model.onnx, fused) has no chunk mask
    assert record["model.plain.onnx"]["graph"] == "plain" and "model.onnx" not in record


def test_onnx_stream_equals_masked_torch_forward_on_real_audio(stream_dir, speech):
    model = usad.load(stream_dir)
    clip = speech[: 16_000 * 7 + 123]
    (case,) = check_stream_parity(model, stream_dir / STREAM_FILES["fp32"], list(range(7)), [clip], threads=1)
    assert case.mask_equal and case.max_abs_error < 1e-4 and case.min_cosine > 0.99999
    (int8,) = check_stream_parity(model, stream_dir / STREAM_FILES["int8"], list(range(7)), [clip], threads=1)
    assert int8.mask_equal and int8.min_cosine > 0.9 and int8.max_abs_error > case.max_abs_error


def test_random_pushes_equal_one_push_and_caches_keep_their_shapes(stream_dir, speech):
    stream = open_stream(stream_dir / STREAM_FILES["fp32"], threads=1, layers=None)
    long = np.tile(speech, int(np.ceil(16_000 * 45 / speech.size)))[: 16_000 * 45]  # 280 steps
    shapes = dict(stream.state_shapes)
    seen = []
    run = stream.run

    def checked(feeds):
        outputs = run(feeds)
        seen.append({name: outputs[f"next_{name}"].shape for name in shapes} == shapes)
        return outputs

    stream.run = checked
    whole = stream_audio(checked, shapes, stream.config, range(7), long, seed=None)
    pieces = stream_audio(checked, shapes, stream.config, range(7), long, seed=3)
    assert all(seen) and len(seen) == 2 * int(np.ceil(whole.shape[1] / 8))
    assert whole.shape == (7, stream.config.num_frames(long.size), 256)
    assert np.array_equal(whole, pieces)


def test_stream_edges_short_empty_bad_samples(stream_dir):
    stream = open_stream(stream_dir)
    assert len(stream.close()) == 0  # nothing pushed, nothing out
    stream.reset()
    assert len(stream.push(np.zeros(100, np.float32))) == 0
    tail = stream.close()
    assert tail.index.tolist() == [0] and tail.hidden.shape == (1, 1, 256)  # padded to one window, as offline
    stream.reset()
    with pytest.raises(AudioError, match="NaN/inf"):
        stream.push(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="mono"):
        stream.push(np.zeros((2, 10), np.float32))
    stream.close()
    with pytest.raises(RuntimeError, match="closed"):
        stream.push(np.zeros(10, np.float32))


def test_encoder_stream_without_torch(stream_dir, shared):
    """A fresh interpreter with torch unimportable streams real audio in random pushes, frames timestamped."""
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any import of torch fails
        import numpy as np
        from usad.audio import load_audio
        from usad.runtime import Encoder
        audio = load_audio({str(shared / 'data/gcompris-voices/de/colors/red.ogg')!r})
        stream = Encoder({str(stream_dir)!r}, threads=1).stream()
        rng, pos, frames = np.random.default_rng(0), 0, []
        while pos < audio.size:
            n = int(rng.integers(1, 4000)); frames += list(stream.push(audio[pos:pos + n])); pos += n
        frames += list(stream.close())
        starts = [start for start, end, embedding in frames]
        assert np.allclose(starts, np.arange(len(frames)) * 0.02), starts[:5]
        assert frames[0][2].shape == (1, 256) and all(np.isfinite(f[2]).all() for f in frames)
        print(len(frames), stream.latency_ms)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    frames, latency = out.stdout.split()
    assert int(frames) == usad.load(stream_dir).config.num_frames(load_audio(
        shared / "data/gcompris-voices/de/colors/red.ogg").size) and float(latency) == 335.0


def test_cli_embed_stream_file_and_stdin_agree(stream_dir, shared, tmp_path):
    path = shared / "data/gcompris-voices/de/colors/red.ogg"
    pcm = (np.clip(load_audio(path), -1, 1) * 32767).astype("<i2").tobytes()
    a, b = tmp_path / "file.npz", tmp_path / "stdin.npz"
    assert run_cli("embed", str(stream_dir), str(path), "--stream", "--pool", "none", "--out", str(a)).returncode == 0
    done = run_cli("embed", str(stream_dir), "-", "--stream", "--pool", "none", "--out", str(b), stdin=pcm)
    assert done.returncode == 0, done.stderr
    file, stdin = np.load(a), np.load(b)
    assert file[str(path)].shape == stdin["-"].shape and np.allclose(file[f"{path}#start"], stdin["-#start"])
    cosine = (file[str(path)] * stdin["-"]).sum(-1) / np.linalg.norm(file[str(path)], axis=-1) / \
        np.linalg.norm(stdin["-"], axis=-1)
    assert cosine.min() > 0.99  # 16-bit PCM against float samples


@pytest.mark.parametrize("case", ["full-context model", "missing file", "two sources", "bad pcm", "stray bytes",
                                  "empty stdin", "export full-context", "bench without export", "fused stream graph"])
def test_cli_bad_inputs_one_line_and_nonzero_exit(case, stream_dir, shared, tmp_path):
    tiny = TINY
    clip = str(shared / "data/fsdd/recordings/3_theo_7.flac")
    args, stdin, code, text = {
        "full-context model": (["embed", tiny, clip, "--stream"], None, 2, "no streaming export"),
        "missing file": (["embed", str(stream_dir), str(tmp_path / "nope.wav"), "--stream"], None, 2, "no such file"),
        "two sources": (["embed", str(stream_dir), clip, clip, "--stream"], None, 2, "one source"),
        "bad pcm": (["embed", str(stream_dir), "-", "--stream", "--pcm", "u8"], b"", 2, "--pcm"),
        "stray bytes": (["embed", str(stream_dir), "-", "--stream"], b"\x01" * 8001, 2, "stray bytes"),
        "empty stdin": (["embed", str(stream_dir), "-", "--stream"], b"", 2, "empty audio"),
        "export full-context": (["export", tiny, "--stream"], None, 2, "full-context encoder"),
        "bench without export": (["bench", "stream", tiny], None, 2, "no streaming export"),
        "fused stream graph": (["export", str(stream_dir), "--graph", "fused"], None, 2, "no chunk mask"),
    }[case]
    done = run_cli(*args, stdin=stdin, cwd=tmp_path)
    err = done.stderr.decode()
    assert done.returncode == code, err
    assert text in err and "Traceback" not in err
    assert not (tmp_path / "embeddings.npz").exists()
    if args[0] == "embed":
        assert len([line for line in err.splitlines() if line.strip()]) == 1, err


def test_stream_bench_rows_and_flat_memory(stream_dir):
    from usad.bench.streaming import run_stream_bench, stream_markdown

    record = run_stream_bench(stream_dir, threads=(1,), seconds=12.0, memory_seconds=120.0, log=lambda m: None)
    rows = {r["format"]: r for r in record["rows"]}
    assert set(rows) == {"int8", "fp32"} and all(r["chunks"] > 50 for r in rows.values())
    assert all(0 < r["compute_p50_ms"] <= r["compute_p95_ms"] <= r["compute_max_ms"] for r in rows.values())
    assert rows["int8"]["latency_p95_ms"] > record["algorithmic_latency_ms"] == 335.0
    memory = record["memory"]
    assert "error" not in memory, memory
    assert len(memory["rss_mb"]) == 2 and memory["frames"] == usad.load(stream_dir).config.num_frames(16_000 * 120)
    assert memory["flat"]
    assert "| int8 | 1 |" in stream_markdown(record)
