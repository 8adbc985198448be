"""``usad convert``: an official MIT-SLS USAD checkpoint directory onto usad-small, through the CLI.

The official encoder code (usad_modules.py) is not public here, so its tensor names are the
reconstruction documented in usad/teachers/usad_official.py and docs/paper.md; this test writes a
random USAD-Small of that layout (q, k, v apart, the config's vocabulary) with the released config.json
(tests/fixtures/usad_large_config.json, verbatim from MIT-SLS/USAD-Large; Small differs in its three
sizes), converts it and checks the encoder computes the same function. Relative-position tensors,
unknown tensors, another architecture and unreadable directories are one-line errors (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import usad

USAD = Path(sys.executable).parent / "usad"
CONFIG = json.loads((Path(__file__).parent / "fixtures" / "usad_large_config.json").read_text())


def official_layout(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Our usad-small's tensors under the official (reconstructed) names, q / k / v as three projections."""
    out = {}
    for name, tensor in model.state_dict().items():
        parts = name.split(".")
        if parts[0] == "subsampler":
            official = {"conv1": "conv_subsample.conv1", "conv2": "conv_subsample.conv2", "proj": "input_projection",
                        "norm": "subsample_norm"}[parts[1]] + "." + parts[2]
        elif parts[0] == "pos_encoder":
            official = f"conv_pos.{parts[2]}.0.{parts[3]}"
        elif parts[0] == "final_norm":
            official = f"final_norm.{parts[1]}"
        elif parts[2] == "attn" and parts[3] == "qkv":
            for i, q in enumerate(tensor.chunk(3)):
                out[f"model.encoder.layers.{parts[1]}.attention.{('query', 'key', 'value')[i]}_proj.{parts[4]}"] = q
            continue
        else:
            official = f"layers.{parts[1]}." + {"norm1": "attention_norm", "attn": "attention.out_proj",
                                                "norm2": "feed_forward_norm", "ffn": "feed_forward.linear"}[parts[2]]
            official += ("" if parts[2] != "ffn" else {"0": "1", "2": "2"}[parts[3]]) + "." + parts[-1]
        out["model.encoder." + official] = tensor.clone().contiguous()
    return out


def usad_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(USAD), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = usad.create_model("usad-small").eval()
    for p in model.parameters():  # every tensor distinct from its init, LayerNorms included
        torch.nn.init.normal_(p, mean=float(p.dim() == 1), std=0.05)
    directory = tmp_path_factory.mktemp("MIT-SLS") / "USAD-Small"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({**CONFIG, "encoder_dim": 384, "num_layers": 12,
                                                       "num_attention_heads": 6}))
    save_file(official_layout(model), directory / "model.safetensors")
    return directory, model


def test_converted_encoder_computes_the_same_function(official, tmp_path):
    directory, model = official
    result = usad_cli("convert", str(directory), "--out", str(tmp_path / "usad-small-official"))
    assert result.returncode == 0, result.stderr
    converted = usad.load(tmp_path / "usad-small-official")
    wave, lengths = torch.randn(2, 24_000) * 0.1, torch.tensor([24_000, 17_000])
    with torch.no_grad():
        ours, ref = converted(wave, lengths), model(wave, lengths)
    for a, b in zip(ours.hidden_states, ref.hidden_states):
        torch.testing.assert_close(a, b)
    config = json.loads((tmp_path / "usad-small-official/config.json").read_text())
    assert config["variant"] == "usad-small" and config["converted_from"]["official_config"]["num_layers"] == 12


def test_refusals_are_one_line_errors(official, tmp_path):
    directory, _ = official
    weights = load_file(directory / "model.safetensors")
    cases = {"relative": ({"model.encoder.layers.0.attention.pos_proj.weight": torch.zeros(384, 384)}, {},
                          "relative-position tensors"),
             "unknown": ({"model.encoder.layers.0.conv_module.depthwise.weight": torch.zeros(768, 1, 31)}, {},
                         "fit no rule"),
             "mamba": ({}, {"attention_type": "mamba"}, "'attention_type': 'mamba'"),
             "xl": ({}, {"encoder_dim": 1280, "num_layers": 32, "num_attention_heads": 20}, "not USAD Small")}
    for name, (extra, config, match) in cases.items():
        case = tmp_path / name
        case.mkdir()
        (case / "config.json").write_text(json.dumps({**CONFIG, "encoder_dim": 384, "num_layers": 12,
                                                      "num_attention_heads": 6, **config}))
        save_file({**weights, **extra}, case / "model.safetensors")
        result = usad_cli("convert", str(case), "--out", str(tmp_path / f"out-{name}"))
        assert result.returncode == 2 and match in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
        assert not (tmp_path / f"out-{name}" / "config.json").exists()
    assert json.loads((tmp_path / "out-relative/unmapped_tensors.json").read_text()) == {
        "model.encoder.layers.0.attention.pos_proj.weight": [384, 384]}
    (tmp_path / "no-weights").mkdir()
    (tmp_path / "no-weights/config.json").write_text(json.dumps(CONFIG))
    for path, match in ((tmp_path / "nowhere", "no config.json"), (tmp_path / "no-weights", "no model.safetensors")):
        result = usad_cli("convert", str(path), "--out", str(tmp_path / "x"))
        assert result.returncode == 2 and match in result.stderr and "Traceback" not in result.stderr
