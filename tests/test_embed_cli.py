"""``usad embed`` and ``usad info`` on bad input, through the CLI in a subprocess: each case exits non-zero with
one clear line and no traceback, and nothing written before is lost. Also the same commands with torch
hidden, as in a runtime-only install."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DEFAULT_DIM, DEFAULT_LAYERS

from usad.runtime import default_model_dir

DEFAULT = default_model_dir()
# Run the CLI in a fresh interpreter; with torch hidden, any import of it fails as in a runtime-only install.
LAUNCH = "import sys, warnings; warnings.simplefilter('ignore'); {hide}from usad.cli import app; app(prog_name='usad')"


def usad(*args, torchless: bool = False, timeout: int = 120) -> subprocess.CompletedProcess:
    code = LAUNCH.format(hide="sys.modules['torch'] = None; " if torchless else "")
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


def refused(done: subprocess.CompletedProcess, message: str, code: int = 2) -> None:
    """Exit ``code`` and exactly one line that starts with 'error:' and holds ``message``."""
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == code and len(lines) == 1 and message in lines[0], (done.returncode, done.stderr)


@pytest.fixture(scope="module")
def clip(shared):
    return shared / "data/fsdd/recordings/3_theo_7.flac"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A torch-only nano dir, the same with an ONNX file of hidden states 0, 2, 4, and broken dirs."""
    import torch

    import usad
    from usad.export.onnx_export import export_onnx

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    nano = usad.create_model("usad-nano")
    usad.save(nano, root / "torch")
    usad.save(nano, root / "subset")
    export_onnx(nano, root / "subset" / "model.onnx", opset=17, layers=[0, 2, 4])
    broken = {}
    broken["truncated-onnx"] = _copy(DEFAULT, root / "truncated-onnx")
    onnx_file = broken["truncated-onnx"] / "model.int8.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[: onnx_file.stat().st_size // 2])
    broken["garbage-config"] = _copy(DEFAULT, root / "garbage-config")
    (broken["garbage-config"] / "config.json").write_text("{not json")
    broken["mismatched-onnx"] = _copy(DEFAULT, root / "mismatched-onnx")
    config = json.loads((DEFAULT / "config.json").read_text())
    config["encoder"]["dim"] *= 2  # a valid config of another width than the ONNX file's
    (broken["mismatched-onnx"] / "config.json").write_text(json.dumps(config))
    broken["truncated-weights"] = _copy(root / "torch", root / "truncated-weights")
    weights = broken["truncated-weights"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    broken["mismatched-weights"] = _copy(root / "torch", root / "mismatched-weights")
    usad.save(usad.create_model("usad-tiny"), root / "tiny")
    shutil.copy(root / "tiny" / "config.json", broken["mismatched-weights"] / "config.json")
    broken["weights-without-config"] = _copy(root / "torch", root / "weights-without-config")
    (broken["weights-without-config"] / "config.json").unlink()
    return {"torch": root / "torch", "subset": root / "subset", **broken}


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


BROKEN = {  # model dir -> what the one line must say, for embed and info alike
    "truncated-onnx": "not a loadable ONNX model",
    "garbage-config": "not valid JSON",
    "mismatched-onnx": "does not match",
    "truncated-weights": "unreadable or truncated safetensors",
    "mismatched-weights": "weights do not match",
    "weights-without-config": "config.json: missing",
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_model_dirs_are_named_by_embed_and_info(models, clip, tmp_path, case):
    refused(usad("embed", models[case], clip, "--out", tmp_path / "e.npz"), BROKEN[case])
    refused(usad("info", models[case]), BROKEN[case])
    assert not (tmp_path / "e.npz").exists()


def test_layers_map_through_each_backend_and_are_checked(models, clip, tmp_path):
    refused(usad("embed", models["torch"], clip, "--layer", "99", "--out", tmp_path / "e.npz"),
            "layer 99 is out of range: this encoder has hidden states 0..4")
    refused(usad("embed", DEFAULT, clip, "--layer", "-8", "--out", tmp_path / "e.npz"), "layer -8 is out of range")
    refused(usad("embed", models["subset"], clip, "--layer", "3", "--out", tmp_path / "e.npz"),
            "hidden states [0, 2, 4]")
    refused(usad("embed", clip, "--layer", "last", "--out", tmp_path / "e.npz"), "--layer takes 'all'")
    # The same hidden-state numbers give the same vectors from the torch weights and the ONNX subset.
    for name in ("torch", "subset"):
        assert usad("embed", models[name], clip, "--layer", "2,-1", "--out", tmp_path / f"{name}.npz").returncode == 0
    torch_vectors, onnx_vectors = (np.load(tmp_path / f"{n}.npz")[str(clip)] for n in ("torch", "subset"))
    assert torch_vectors.shape == onnx_vectors.shape == (2, 192)
    np.testing.assert_allclose(onnx_vectors, torch_vectors, atol=1e-4)


def test_argument_mistakes_are_one_line_before_any_work(clip, tmp_path):
    npz = tmp_path / "e.npz"
    refused(usad("embed", clip, "--out", "/nonexistent/dir/e.npz"), "the folder /nonexistent/dir does not exist")
    refused(usad("embed", clip, "--out", tmp_path / "e.h5"), "unknown output type '.h5'")
    refused(usad("embed", clip, "--chunk-seconds", "0", "--out", npz), "chunk length must be at least 1 s")
    refused(usad("embed", clip, "--chunk-seconds", "0.01", "--out", npz), "chunk length must be at least 1 s")
    refused(usad("embed", clip, "--workers", "2", "--out", npz), "need a folder output")
    refused(usad("embed", tmp_path / "missing.wav", "--out", npz), "no such file, directory or glob match")
    refused(usad("embed", "no-such-model", clip, "--out", npz), "no-such-model: no such model directory")
    (tmp_path / "empty-folder").mkdir()
    refused(usad("embed", tmp_path / "empty-folder", "--out", npz), "holds no audio files")
    refused(usad("info", tmp_path / "nowhere"), "not a model directory or an .onnx file")
    (tmp_path / "a-file").write_text("x")
    refused(usad("embed", clip, "--out", tmp_path / "a-file"), "exists and is not a folder")
    pool = usad("embed", clip, "--pool", "max", "--out", npz)
    assert pool.returncode == 2 and "'max' is not one of 'mean', 'none'" in pool.stderr
    assert not npz.exists()


def test_outputs_say_what_they_write_and_replace_atomically(shared, clip, tmp_path):
    npz = tmp_path / "e.npz"
    first = usad("embed", clip, "--out", npz)
    assert first.returncode == 0 and "model: " in first.stderr and "the packaged default" in first.stderr
    assert "(.npz: one array per input" in first.stderr
    before = npz.read_bytes()
    second = usad("embed", clip, "--out", npz)
    assert second.returncode == 0 and f"replacing {npz}" in second.stderr and npz.read_bytes() == before
    (tmp_path / "broken.wav").write_bytes(b"RIFF" + bytes(64))
    failed = usad("embed", tmp_path / "broken.wav", "--out", npz)
    assert failed.returncode == 1 and "nothing written: every input failed" in failed.stderr
    assert "broken.wav" in failed.stderr and npz.read_bytes() == before  # the earlier results are kept
    assert not list(tmp_path.glob(".*tmp*"))
    folder = usad("embed", shared / "data/fsdd/recordings/3_theo_7.flac", clip, "--out", tmp_path / "noext")
    assert folder.returncode == 0 and "Parquet shards part-*.parquet" in folder.stderr
    assert (tmp_path / "noext" / "part-00000.parquet").is_file()
    refused(usad("embed", clip, "--pool", "none", "--out", tmp_path / "noext"), "holds another run")


def test_a_folder_of_audio_is_a_dataset_input(shared, tmp_path):
    folder = tmp_path / "audio" / "nested"
    folder.mkdir(parents=True)
    for name in ("0_theo_0.flac", "1_theo_0.flac"):
        shutil.copy(shared / "data/fsdd/recordings" / name, folder / name)
    done = usad("embed", tmp_path / "audio", "--out", tmp_path / "e.npz")
    assert done.returncode == 0, done.stderr
    assert sorted(Path(k).name for k in np.load(tmp_path / "e.npz").files) == ["0_theo_0.flac", "1_theo_0.flac"]


def test_info_describes_onnx_only_dirs_and_torch_dirs(models):
    packaged = usad("info", DEFAULT)
    assert packaged.returncode == 0, packaged.stderr
    variant = json.loads((DEFAULT / "config.json").read_text())["variant"]
    for expected in (variant, "model.int8.onnx", "INT8", "runtime default", "accuracy guard passed",
                     "none (ONNX only)", "GFLOPs / s audio"):
        assert expected in packaged.stdout, expected
    torch_only = usad("info", models["torch"])
    assert torch_only.returncode == 0 and "ONNX" in torch_only.stdout and "usad export" in torch_only.stdout
    subset = usad("info", models["subset"] / "model.onnx")
    assert subset.returncode == 0 and "hidden states [0, 2, 4]" in subset.stdout


def test_embed_and_info_without_torch(models, clip, tmp_path):
    done = usad("embed", clip, "--out", tmp_path / "e.npz", torchless=True)
    assert done.returncode == 0, done.stderr
    assert np.load(tmp_path / "e.npz")[str(clip)].shape == (DEFAULT_LAYERS, DEFAULT_DIM)
    assert usad("embed", clip, "--out", tmp_path / "run", torchless=True).returncode == 0
    assert (tmp_path / "run" / "part-00000.parquet").is_file()
    from usad.model import count_parameters, create_model

    info = usad("info", DEFAULT, torchless=True)
    config = json.loads((DEFAULT / "config.json").read_text())
    parameters = config["parameters"]  # recorded when it was saved: what a torch-free info can show
    assert info.returncode == 0 and f"{parameters / 1e6:.2f} M (config.json)" in info.stdout
    assert "needs torch" in info.stdout
    refused(usad("embed", models["torch"], clip, "--out", tmp_path / "t.npz", torchless=True),
            "pip install 'usad-edge[train]'")
    assert parameters == count_parameters(create_model(config["variant"]))
