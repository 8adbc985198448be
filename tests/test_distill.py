"""usad.distill: objective, recipe, and the trainer on a tiny student with real teachers (Whisper tiny.en,
CREPE tiny, aiSFX) on real speech shards: loss falls; kill -9 + --resume lands on the uninterrupted run's
state with the same data order and no step logged twice; SIGTERM checkpoints and exits 75; the portable
resume pack resumes; bad input is one line and exit 2; 2-rank gloo DDP gradients equal single-process ones."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from usad.audio import load_audio
from usad.data.shards import ShardWriter, encode_opus
from usad.distill import EXIT_INTERRUPTED, RecipeError, load_recipe
from usad.distill.checkpoint import CHECKPOINT, PACK_DIR, model_dir_from_pack
from usad.distill.gradcheck import step_gradients
from usad.distill.objective import DistillObjective, TeacherSpec, layer_pairs, overlap_pooling, pair_loss
from usad.distill.recipe import Recipe
from usad.modeldir import load_weights
from usad.teachers import TeacherOutput, prepare

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WHISPER = SHARED / "teachers/whisper-tiny.en"
pytestmark = pytest.mark.skipif(not WHISPER.is_dir(), reason="needs ../shared (real audio and Whisper weights)")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    """Real GCompris recordings of >= 1.2 s in two shards, one clip undecodable; domains rotate."""
    out = tmp_path_factory.mktemp("corpus")
    writer = ShardWriter(out, max_bytes=200_000)
    made = 0
    for path in sorted((SHARED / "data/gcompris-voices").rglob("*.ogg")):
        audio = load_audio(path)
        if len(audio) < 1.2 * 16_000:
            continue
        writer.write(f"c{made:03d}", encode_opus(audio), {"domain": ("speech", "sound", "music")[made % 3],
                                                          "source": "gcompris", "seconds": len(audio) / 16_000})
        made += 1
        if made == 24:
            break
    writer.write("broken", b"OggS but not audio", {"domain": "speech", "source": "x", "seconds": 1.0})
    writer.close()
    return out


@pytest.fixture(scope="module")
def crepe_dir(tmp_path_factory) -> Path:
    return prepare("crepe-tiny", tmp_path_factory.mktemp("crepe"))


def write_config(path: Path, corpus: Path, crepe: Path, **train) -> Path:
    config = {
        "student": {"preset": "usad-nano"},
        "teachers": [{"name": "speech", "spec": f"whisper:{WHISPER}"},
                     {"name": "music", "spec": f"crepe:{crepe}", "options": {"hop": 1600}}],
        "data": {"corpus": [str(corpus)], "crop_seconds": 1.0, "min_seconds": 1.0, "workers": 2,
                 "pad_multiple_seconds": 0.0, "shuffle_clips": 8, "bucket_batches": 2},
        "train": {"batch_size": 4, "max_steps": 12, "warmup_steps": 2, "lr": 2e-3, "precision": "fp32",
                  "compile": False, "ckpt_every": 2, "log_every": 1, **train},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def run_cli(config: Path, out: Path, *extra: str, wait: bool = True, code: int = 0):
    cmd = [sys.executable, "-m", "usad.distill", "--config", str(config), "--out", str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not wait:  # its own process group, as under a scheduler
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == code, result.stdout + result.stderr
    return result


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


# --- objective ---------------------------------------------------------------------------------

def test_layer_pairs_follow_usad_rule():
    assert layer_pairs(12, 4, 4) == [(3, 1), (6, 2), (9, 3), (12, 4)]
    assert layer_pairs(12, 24, 4) == [(3, 6), (6, 12), (9, 18), (12, 24)]
    assert layer_pairs(4, 2, 4) == [(1, 0), (2, 1), (3, 1), (4, 2)]


def test_overlap_pooling_identity_halving_and_padding():
    frames = torch.tensor([6, 4])
    same = overlap_pooling(frames, 50.0, frames, 50.0, 6, 6)
    assert torch.allclose(same[0], torch.eye(6))
    half = overlap_pooling(frames, 50.0, torch.tensor([3, 2]), 25.0, 6, 3)
    assert torch.allclose(half[0, 1], torch.tensor([0, 0, 0.5, 0.5, 0, 0]))
    assert half[1, 2].sum() == 0  # beyond clip 2's real student frames: nothing to average


def test_pair_loss_values_and_mask():
    target = torch.randn(2, 5, 8)
    perfect = -torch.nn.functional.logsigmoid(torch.tensor(1.0)).item()  # L1 0, cosine 1
    assert pair_loss(target, target, None).item() == pytest.approx(perfect, abs=1e-5)
    pred = target.clone()
    pred[:, 3:] += 10.0  # masked-out frames must not count
    mask = torch.tensor([[1, 1, 1, 0, 0]] * 2, dtype=torch.bool)
    assert pair_loss(pred, target, mask).item() == pytest.approx(pair_loss(target, target, None).item(), abs=1e-5)


def test_objective_frame_rates_and_clip_teacher():
    teachers = [TeacherSpec("speech", (8, 8, 8), 50.0), TeacherSpec("pitch", (4, 6), 12.5, 2.0),
                TeacherSpec("clip", (5, 5, 5), None)]
    objective = DistillObjective(16, 4, 50.0, teachers, pairs=2)
    hidden = [torch.randn(2, 20, 16, requires_grad=True) for _ in range(5)]
    mask = torch.ones(2, 20, dtype=torch.bool)
    targets = {"speech": TeacherOutput([torch.randn(2, 20, 8)] * 3, 50.0, mask),
               "pitch": TeacherOutput([torch.randn(2, 5, 4), torch.randn(2, 5, 6)], 12.5,
                                      torch.ones(2, 5, dtype=torch.bool)),
               "clip": TeacherOutput([torch.randn(2, 5)] * 3, None, None)}
    total, per = objective(hidden, mask, targets)
    assert set(per) == {"speech", "pitch", "clip"}
    assert total.item() == pytest.approx(per["speech"].item() + 2 * per["pitch"].item() + per["clip"].item(), rel=1e-5)
    total.backward()
    assert hidden[2].grad is not None and hidden[4].grad.abs().sum() > 0


# --- recipe -----------------------------------------------------------------------------------

def test_recipe_rejects_unknown_keys_by_dotted_path_and_parses_overrides(tmp_path, corpus_dir):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"teachers": [{"name": "s", "spec": "whisper:x"}],
                                    "data": {"corpus": [str(corpus_dir)]}}))
    recipe = load_recipe(path, ["train.lr=3e-4", "train.compile=false", "data.crop_seconds=4",
                                "data.domain_weights.music=3", "data.augment.mix_prob=0.5"])
    assert isinstance(recipe, Recipe) and recipe.train.lr == 3e-4 and recipe.train.compile is False
    assert recipe.data.crop_seconds == 4.0 and recipe.data.augment.enabled
    assert recipe.data.domain_weights == {"speech": 1.0, "sound": 2.0, "music": 3.0}
    for override, message in [("train.lrr=1", "unknown recipe key 'train.lrr'"),
                              ("data.augment.snr=1", "unknown recipe key 'data.augment.snr'"),
                              ("train.max_steps=many", "'train.max_steps' must be int"),
                              ("objective.pairs=some", "objective.pairs"),
                              ("teachers=[{name: a}]", "'teachers\\[0\\]' needs spec"),
                              ("train=3", "'train' must be a mapping")]:
        with pytest.raises(RecipeError, match=message):
            load_recipe(path, [override])
    path.write_text(yaml.safe_dump({"teachers": [{"name": "s", "spec": "whisper:x", "wieght": 2}]}))
    with pytest.raises(RecipeError, match="'teachers\\[0\\].wieght'"):
        load_recipe(path)
    assert Recipe.from_dict(recipe.to_dict()) == recipe  # the recipe written to checkpoints and model dirs reloads


# --- trainer ----------------------------------------------------------------------------------

def test_loss_falls_with_three_real_teachers(tmp_path, corpus_dir, crepe_dir):
    aisfx = prepare("aisfx", tmp_path / "aisfx")
    config = write_config(tmp_path / "c.yaml", corpus_dir, crepe_dir, max_steps=30, log_every=1, ckpt_every=100)
    data = yaml.safe_load(config.read_text())
    data["teachers"].append({"name": "sound", "spec": f"aisfx:{aisfx}"})
    config.write_text(yaml.safe_dump(data))
    run_cli(config, tmp_path / "run")
    log = read_log(tmp_path / "run")
    first, last = np.mean([r["loss"] for r in log[:5]]), np.mean([r["loss"] for r in log[-5:]])
    assert last < 0.85 * first, (first, last)
    for name in ("speech", "music", "sound"):
        assert np.mean([r[f"loss/{name}"] for r in log[-5:]]) < np.mean([r[f"loss/{name}"] for r in log[:5]])
    assert log[-1]["skipped"]["undecodable"] >= 1  # the broken clip, once per pass over its shard
    model_config = json.loads((tmp_path / "run/model/config.json").read_text())
    assert model_config["distillation"]["steps"] == 30
    assert model_config["distillation"]["skipped"] == log[-1]["skipped"]
    assert [t["name"] for t in model_config["distillation"]["teachers"]] == ["speech", "music", "sound"]
    assert json.loads((tmp_path / "run/status.json").read_text())["state"] == "finished"


def test_kill9_then_resume_matches_uninterrupted_run(tmp_path, corpus_dir, crepe_dir):
    """Two DataLoader workers; killed after a checkpoint and a few more logged steps."""
    config = write_config(tmp_path / "c.yaml", corpus_dir, crepe_dir, max_steps=10, ckpt_every=4)
    run_cli(config, tmp_path / "straight")  # a subprocess too: same thread count, same float sums
    proc = run_cli(config, tmp_path / "killed", wait=False)
    log = tmp_path / "killed/train_log.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= 6:  # checkpoint at 4, steps 5-6 logged after it
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(tmp_path / "killed" / CHECKPOINT, weights_only=True)["step"]
    assert 4 <= killed_at < 10 and max(r["step"] for r in read_log(tmp_path / "killed")) > killed_at
    run_cli(config, tmp_path / "killed", "--resume")
    a = torch.load(tmp_path / "straight" / CHECKPOINT, weights_only=True)
    b = torch.load(tmp_path / "killed" / CHECKPOINT, weights_only=True)
    assert a["step"] == b["step"] == 10
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=0, atol=1e-6, msg=key)
    assert a["cursors"] == b["cursors"]  # every data stream at the same place
    straight, resumed = read_log(tmp_path / "straight"), read_log(tmp_path / "killed")
    assert [r["step"] for r in resumed] == [r["step"] for r in straight] == list(range(1, 11))  # no step twice
    for x, y in zip(straight, resumed):  # same batches, same weights: same losses at every step
        assert y["loss"] == pytest.approx(x["loss"], abs=1e-5), x["step"]


def test_sigterm_to_the_process_group_checkpoints_and_exits_75(tmp_path, corpus_dir, crepe_dir):
    config = write_config(tmp_path / "c.yaml", corpus_dir, crepe_dir, max_steps=200, ckpt_every=1000)
    proc = run_cli(config, tmp_path / "run", wait=False)
    log = tmp_path / "run/train_log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.is_file() and len(log.read_text().splitlines()) >= 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)  # the trainer and its DataLoader workers, as a scheduler does
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == EXIT_INTERRUPTED == 75, output
    assert "interrupted at step" in output and "Traceback" not in output
    state = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    assert 2 <= state["step"] < 200
    assert json.loads((tmp_path / "run/status.json").read_text()) | {"time": 0} == {
        "state": "interrupted", "step": state["step"], "max_steps": 200,
        "audio_hours": round(state["audio_seconds"] / 3600, 3), "time": 0}
    assert (tmp_path / "run" / PACK_DIR / "resume.json").is_file()
    assert not (tmp_path / "run/model").exists()  # interrupted runs leave a checkpoint, not a model dir


def test_bad_input_is_one_line_and_exit_2(tmp_path, corpus_dir, crepe_dir):
    config = write_config(tmp_path / "c.yaml", corpus_dir, crepe_dir)
    cases = {"nothing to resume from": ["--resume"], "unknown recipe key 'train.lrr'": ["--set", "train.lrr=1"],
             "no readable manifest.json": ["--set", f"data.corpus=[{tmp_path / 'nowhere'}]"]}
    for message, extra in cases.items():
        result = run_cli(config, tmp_path / "run", *extra, code=2)
        assert message in result.stderr and "Traceback" not in result.stderr + result.stdout, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_resume_pack_continues_a_run_with_fresh_moments(tmp_path, corpus_dir, crepe_dir):
    config = write_config(tmp_path / "c.yaml", corpus_dir, crepe_dir, max_steps=4)
    run = tmp_path / "run"
    run_cli(config, run)
    pack = run / PACK_DIR
    assert all(f.stat().st_size <= 15 * 2**20 for f in pack.iterdir())
    student = model_dir_from_pack(pack, tmp_path / "from-pack")
    for key, value in load_weights(run / "model").items():  # the pack's bf16 weights are the model's, rounded
        torch.testing.assert_close(load_weights(student)[key], value.to(torch.bfloat16).float(), rtol=0, atol=0)
    (run / CHECKPOINT).unlink()  # as on another machine: only the pack came back
    result = run_cli(config, run, "--resume", "--set", "train.max_steps=8")
    assert "fresh AdamW moments" in result.stdout + result.stderr
    assert [r["step"] for r in read_log(run)] == list(range(1, 9))
    assert json.loads((run / "model/config.json").read_text())["distillation"]["steps"] == 8


def test_ddp_gloo_gradients_match_single_process(tmp_path, corpus_dir, crepe_dir):
    config = write_config(tmp_path / "c.yaml", corpus_dir, crepe_dir)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29517", "-m", "usad.distill.gradcheck", "--config", str(config),
                          "--out", str(tmp_path / "ddp.safetensors"), "--step", "3"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a, b = step_gradients(load_recipe(config), step=3), load_file(tmp_path / "ddp.safetensors")
    assert set(a) == set(b) and len(a) > 20
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-6, msg=key)


def test_two_rank_gloo_run_checkpoints_every_ranks_cursors(tmp_path, corpus_dir, crepe_dir):
    config = write_config(tmp_path / "c.yaml", corpus_dir, crepe_dir, max_steps=4, ckpt_every=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          "29518", "-m", "usad.distill", "--config", str(config), "--out", str(tmp_path / "run"),
                          "--set", "data.workers=1"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    state = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    assert state["step"] == 4 and sorted(state["cursors"]) == [0, 1]  # stream r of rank r
    assert json.loads((tmp_path / "run/model/config.json").read_text())["distillation"]["world_size"] == 2
