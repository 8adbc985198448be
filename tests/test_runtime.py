import json
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import onnx
import pytest
import soundfile as sf
import torch
from conftest import DEFAULT_DIM, DEFAULT_LAYERS
from test_export_fixtures import exported_dir, tiny_dir

import usad
from usad.backends import TorchBackend
from usad.embed import Windowing, embed_files
from usad.onnx_conventions import shippable_files
from usad.runtime import Encoder, RuntimeModelError, default_model_dir


@pytest.fixture(scope="module")
def exported(shared):
    return exported_dir()


def test_import_and_run_without_torch(shared):
    """A fresh interpreter embeds real audio with the packaged model and never imports torch."""
    code = textwrap.dedent(f"""
        import sys, warnings
        warnings.simplefilter("ignore")
        import usad, usad.runtime, usad.embed
        from usad.runtime import Encoder, default_model_dir
        enc = Encoder(default_model_dir(), threads=1)
        vec = enc.embed({str(shared / 'data/fsdd/recordings/3_theo_7.flac')!r})
        assert vec.shape == (len(enc.layers), enc.dim), vec.shape
        print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_default_model_is_a_small_trained_int8_encoder():
    directory = default_model_dir()
    onnx_file = directory / "model.int8.onnx"
    assert onnx_file.stat().st_size <= 8_000_000
    config = json.loads((directory / "config.json").read_text())
    assert not config.get("untrained") and "compression" in config
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoder = Encoder(directory)
    assert encoder.path == onnx_file
    int8_ops = {"DequantizeLinear", "MatMulInteger", "ConvInteger"}  # static QDQ or dynamic INT8 recipes
    assert any(n.op_type in int8_ops for n in onnx.load(onnx_file).graph.node)


def test_untrained_model_warns(tmp_path):
    directory = tmp_path / "untrained"
    shutil.copytree(default_model_dir(), directory)
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "untrained": True}))
    with pytest.warns(UserWarning, match="UNTRAINED"):
        Encoder(directory)


def test_runtime_matches_torch_backend_on_real_audio_long_and_short(exported, shared, tmp_path):
    audio = np.concatenate([sf.read(p)[0] for p in sorted((shared / "data/fsdd/recordings").glob("0_*"))[:60]])
    long_file = tmp_path / "long.wav"
    sf.write(long_file, audio.astype(np.float32), 8000)  # 8 kHz: the runtime resamples
    short_file = shared / "data/gcompris-voices/de/colors/red.ogg"
    files = [str(long_file), str(short_file)]
    encoder = Encoder(exported, prefer="fp32", threads=2)
    assert encoder.path.name == "model.onnx"
    ours = encoder.embed_files(files, windowing=Windowing(8.0, 1.0))
    reference = embed_files(TorchBackend(usad.load(tiny_dir())), files, windowing=Windowing(8.0, 1.0))
    assert len(audio) / 8000 > 8.0 * 2  # the long file really goes through several windows
    for f in files:
        np.testing.assert_allclose(ours.embeddings[f], reference.embeddings[f], atol=1e-4)
    # one-clip API: a single window equals the chunked path when the clip fits one chunk
    single = encoder.embed(short_file, layers=None)
    np.testing.assert_allclose(single, ours.embeddings[str(short_file)], atol=1e-5)


def test_picks_the_exporters_measured_default(exported):
    default = json.loads((exported / "export.json").read_text())["default"]  # the fastest file, by timing
    assert Encoder(exported).path.name == default and default in shippable_files(exported)
    assert Encoder(exported, prefer="fp32").path.name == "model.onnx"
    assert Encoder(exported, prefer="int8").path.name == "model.int8.onnx"


def test_chunked_embedding_of_long_array_is_close_to_whole(exported, shared):
    audio = np.concatenate([sf.read(p)[0] for p in sorted((shared / "data/fsdd/recordings").glob("1_*"))[:40]])
    encoder = Encoder(exported / "model.onnx")
    whole = encoder.embed(audio, sample_rate=8000, windowing=Windowing(600))
    chunked = encoder.embed(audio, sample_rate=8000, windowing=Windowing(5, 2))
    cosine = (whole * chunked).sum() / np.linalg.norm(whole) / np.linalg.norm(chunked)
    assert cosine > 0.98


def test_corrupt_onnx_names_the_file(exported, tmp_path):
    shutil.copy(exported / "config.json", tmp_path / "config.json")
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07garbage" * 100)
    with pytest.raises(RuntimeModelError, match=r"model\.onnx: not a loadable ONNX model"):
        Encoder(tmp_path)


def test_mismatched_config_names_both_files(exported, tmp_path):
    shutil.copy(exported / "model.onnx", tmp_path / "model.onnx")
    usad.save(usad.create_model("usad-nano"), tmp_path / "nano")
    shutil.copy(tmp_path / "nano" / "config.json", tmp_path / "config.json")
    with pytest.raises(RuntimeModelError, match=r"config\.json does not match .*model\.onnx"):
        Encoder(tmp_path)


def test_corrupt_config_names_the_file(exported, tmp_path):
    shutil.copy(exported / "model.onnx", tmp_path / "model.onnx")
    (tmp_path / "config.json").write_text("{truncated")
    with pytest.raises(RuntimeModelError, match=r"config\.json: unreadable or not valid JSON"):
        Encoder(tmp_path)


def test_foreign_onnx_and_missing_files_are_refused(tmp_path):
    model = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])]))
    onnx.save(model, tmp_path / "foreign.onnx")
    with pytest.raises(RuntimeModelError, match="foreign.onnx: inputs"):
        Encoder(tmp_path / "foreign.onnx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeModelError, match="no ONNX model"):
        Encoder(tmp_path / "empty")
    with pytest.raises(RuntimeModelError, match="not a model directory"):
        Encoder(tmp_path / "missing.onnx")


def test_cli_embed_uses_packaged_model_with_no_model_argument(shared, tmp_path):
    from typer.testing import CliRunner

    from usad.cli import app

    out = tmp_path / "e.npz"
    song = shared / "data/gcompris-voices/de/colors/red.ogg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(app, ["embed", str(song), "--out", str(out)])
    assert result.exit_code == 0, result.output
    vectors = np.load(out)[str(song)]
    assert vectors.shape == (DEFAULT_LAYERS, DEFAULT_DIM) and np.isfinite(vectors).all()


def test_threads_setting_reaches_onnxruntime(exported):
    encoder = Encoder(exported, threads=1)
    assert encoder.session.get_session_options().intra_op_num_threads == 1
    torch.manual_seed(0)  # keep torch's global RNG use explicit for test ordering
