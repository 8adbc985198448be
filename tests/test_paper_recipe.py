"""configs/usad-paper-{small,base,large}.yaml state the paper's recipe (Table II and Sec. III), and the
small one runs end to end on this CPU (``usad.distill`` in a subprocess) from untrained WavLM Base+
and ATST-Frame of the real architectures on real speech, drums and music."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from usad.audio import load_audio
from usad.config import SAMPLE_RATE
from usad.data.shards import ShardWriter, encode_opus
from usad.distill.objective import layer_pairs
from usad.distill.recipe import Recipe, read_recipe_file

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
AUDIO = {"sound": sorted(Path("/usr/share/hydrogen/data/drumkits/Audiophob").glob("*.wav")),
         "music": sorted(Path("/usr/share/sonic-pi/samples").glob("loop_*.flac"))}


@pytest.mark.parametrize("size, preset, lr", [("small", "usad-small", 8e-4), ("base", "usad-base", 1e-3),
                                              ("large", "usad-large", 1.5e-3)])
def test_paper_configs_state_the_recipe(size, preset, lr):
    recipe = Recipe.from_dict(read_recipe_file(CONFIGS / f"usad-paper-{size}.yaml"))
    train = recipe.train
    assert recipe.student.preset == preset and train.lr == lr and train.warmup_steps == 8000
    assert train.batch_size * recipe.data.crop_seconds == 800 and train.max_steps == 400_000
    assert recipe.data.domain_weights == {"speech": 1.0, "sound": 2.0, "music": 2.0}
    kinds = {t.spec.split(":")[0]: t for t in recipe.teachers}
    assert set(kinds) == {"hf", "atst-frame"} and all(t.weight == 0.5 for t in recipe.teachers)
    assert all(t.options == {"features": "ffn"} for t in recipe.teachers) and recipe.objective.pairs == 4
    depth = 24 if size == "large" else 12
    assert layer_pairs(depth, 12, 4) == [(depth // 4 * k, 3 * k) for k in (1, 2, 3, 4)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Real audio in 3 s clips, two of each domain: GCompris speech joined, drum hits joined, drum loops."""
    if not (SHARED / "data").is_dir() or not all(AUDIO.values()):
        pytest.skip("needs ../shared and hydrogen-drumkits / sonic-pi-samples (make system-deps)")
    files = {"speech": sorted((SHARED / "data/gcompris-voices").rglob("*.ogg"))[:60], **AUDIO}
    out = tmp_path_factory.mktemp("corpus")
    writer = ShardWriter(out)
    for domain, paths in files.items():
        audio = np.concatenate([load_audio(p) for p in paths[:60]])
        for i in range(2):
            clip = audio[i * 3 * SAMPLE_RATE:(i + 1) * 3 * SAMPLE_RATE]
            writer.write(f"{domain}{i}", encode_opus(clip), {"domain": domain, "source": "test", "seconds": 3.0})
    writer.close()
    return out


@pytest.mark.slow
def test_paper_small_recipe_runs_on_cpu(untrained_teacher, corpus, tmp_path):
    config = yaml.safe_load((CONFIGS / "usad-paper-small.yaml").read_text())
    for teacher in config["teachers"]:  # the recipe's teachers, untrained: kind, options and weights kept
        kind, path = teacher["spec"].split(":")
        teacher["spec"] = f"{kind}:{untrained_teacher(Path(path).name)}"
    config["data"].update(corpus=[str(corpus)], crop_seconds=2.0, workers=1)
    config["train"].update(batch_size=2, max_steps=2, warmup_steps=1, precision="fp32", compile=False,
                           ckpt_every=2, log_every=1)
    (tmp_path / "paper-small.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "usad.distill", "--config", str(tmp_path / "paper-small.yaml"),
                             "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=900,
                            env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = [json.loads(line) for line in (tmp_path / "run/train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(np.isfinite(r["loss"]) for r in log)
    assert {"loss/speech", "loss/audio"} <= set(log[-1])
    recipe = json.loads((tmp_path / "run/model/config.json").read_text())["distillation"]
    assert recipe["teachers"][1]["options"] == {"features": "ffn"} and recipe["steps"] == 2
