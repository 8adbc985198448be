"""``usad teachers convert|untrained|info`` through the CLI: official-format checkpoints (a Lightning
.ckpt holding ATST-Frame's student and EMA teacher with Lightning's hyper-parameter containers, a
BEATs {'cfg', 'model'} file) converted weights-only, the EMA teacher's tensors exactly; a pickle that
would run code, a damaged file, a wrong kind, a missing file and an unwritable output are each one
line and exit status 2, with nothing written."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from usad.teachers import load_teacher
from usad.teachers.atst_frame import ARCHS, FrameAST
from usad.teachers.beats import Beats, BeatsConfig

USAD = Path(sys.executable).parent / "usad"


def usad(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(USAD), *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def assert_one_line_error(result: subprocess.CompletedProcess, match: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def lightning_ckpt(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """An audiossl-style Lightning checkpoint of ATST-Frame small: student and teacher differ."""
    fake = {name: types.ModuleType(name) for name in
            ("pytorch_lightning", "pytorch_lightning.utilities", "pytorch_lightning.utilities.parsing")}
    attribute_dict = type("AttributeDict", (dict,), {"__module__": "pytorch_lightning.utilities.parsing"})
    fake["pytorch_lightning.utilities.parsing"].AttributeDict = attribute_dict
    torch.manual_seed(0)
    teacher, student = (FrameAST(*ARCHS["small"]) for _ in range(2))
    for p in teacher.parameters():
        torch.nn.init.normal_(p, std=0.02)
    state = {**{f"model.teacher.encoder.{k}": v for k, v in teacher.state_dict().items()},
             **{f"model.student.encoder.{k}": v for k, v in student.state_dict().items()},
             "model.student.predictor.0.weight": torch.zeros(4096, 256)}
    hyper = attribute_dict(arch="small", learning_rate=8e-5, patch_w=4, args=argparse.Namespace(nproc=7))
    path = tmp_path_factory.mktemp("ckpt") / "atstframe_small.ckpt"
    saved = {name: sys.modules.get(name) for name in fake}
    sys.modules.update(fake)
    try:
        torch.save({"state_dict": state, "hyper_parameters": hyper, "epoch": 19, "global_step": 39000,
                    "pytorch-lightning_version": "2.2.1", "optimizer_states": []}, path)
    finally:
        for name, module in saved.items():
            sys.modules.pop(name) if module is None else sys.modules.__setitem__(name, module)
    return path, teacher.state_dict()


def test_atst_frame_lightning_checkpoint_converts_to_the_ema_teacher(lightning_ckpt, tmp_path):
    path, expected = lightning_ckpt
    result = usad("teachers", "convert", "atst-frame", str(path), "--out", str(tmp_path / "atst"))
    assert result.returncode == 0, result.stderr
    assert f"atst-frame:{tmp_path / 'atst'}" in result.stdout
    weights = load_file(tmp_path / "atst/model.safetensors")
    assert weights.keys() == expected.keys() and all(torch.equal(weights[k], expected[k]) for k in expected)
    info = json.loads((tmp_path / "atst/teacher.json").read_text())
    assert info["arch"] == "small" and info["hyper_parameters"]["learning_rate"] == 8e-5
    assert info["hyper_parameters"]["args"] == "<Attributes>" and len(info["source_sha256"]) == 64
    out = load_teacher(f"atst-frame:{tmp_path / 'atst'}")(torch.randn(1, 8000) * 0.1, torch.tensor([8000]))
    assert out.layers[-1].shape == (1, 12, 384)


def test_beats_checkpoint_converts_and_leaves_the_classifier_out(tmp_path):
    config = BeatsConfig(embed_dim=32, encoder_layers=2, encoder_embed_dim=64, encoder_ffn_embed_dim=128,
                         encoder_attention_heads=4, conv_pos=16, conv_pos_groups=4)
    cfg = {**dataclasses.asdict(config), **BeatsConfig.FIXED, "finetuned_model": True, "predictor_class": 527}
    model = Beats(config).state_dict()
    torch.save({"cfg": cfg, "model": {**model, "predictor.weight": torch.zeros(527, 64)}}, tmp_path / "beats.pt")
    result = usad("teachers", "convert", "beats", str(tmp_path / "beats.pt"), "--out", str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr
    assert "predictor.weight" not in load_file(tmp_path / "b/model.safetensors")
    info = usad("teachers", "info", f"beats:{tmp_path / 'b'}", "--seconds", "1")
    assert info.returncode == 0 and "3 layers, 6.250 frames/s" in info.stdout, info.stdout + info.stderr


class RunsCode:
    def __reduce__(self):
        return os.system, ("touch ran-code",)


def test_bad_checkpoints_and_arguments_are_one_line_errors(lightning_ckpt, tmp_path):
    evil, text, ckpt = tmp_path / "evil.ckpt", tmp_path / "text.ckpt", str(lightning_ckpt[0])
    torch.save({"state_dict": RunsCode()}, evil)
    text.write_text("not a checkpoint")
    cases = [
        (("convert", "atst-frame", str(evil)), "refusing to unpickle posix.system"),
        (("convert", "beats", str(text)), "not a torch checkpoint"),
        (("convert", "beats", ckpt), "expected BEATs'"),
        (("convert", "eat", ckpt), "unknown checkpoint kind"),
        (("convert", "beats", "nowhere.pt"), "not found"),
        (("untrained", "hubert-xl"), "unknown architecture"),
    ]
    for args, match in cases:
        assert_one_line_error(usad("teachers", *args, "--out", "x", cwd=tmp_path), match)
    assert_one_line_error(usad("teachers", "convert", "atst-frame", ckpt, "--out", "/proc/x"), "cannot write")
    assert_one_line_error(usad("teachers", "info", "atst-frame:nowhere", cwd=tmp_path), "not found")
    assert not (tmp_path / "ran-code").exists() and not (tmp_path / "x").exists()
