"""usad compress: init strategies copy the right weights, bad inputs fail clearly, and compressing a
briefly trained model into a smaller one (real audio, real trainer) lowers the distillation loss and
keeps the T1 spoken-digit probe far above chance."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from usad.compress import CompressInitError, build_recipe, compress, init_student, kept_blocks, student_config
from usad.compress.importance import measure_importance
from usad.compress.init import _rotary_channels
from usad.config import get_preset
from usad.distill import RecipeError
from usad.model import create_model
from usad.modeldir import ModelDirError

SHARED = Path(__file__).resolve().parents[2] / "shared"
needs_shared = pytest.mark.skipif(not (SHARED / "data/fsdd").is_dir(), reason="../shared data not present")


def _waves(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 24_000, generator=g) * 0.1, torch.tensor([24_000, 15_000])


def test_kept_blocks_end_on_the_last_block():
    assert kept_blocks(12, 6) == [1, 3, 5, 7, 9, 11]
    assert kept_blocks(12, 4) == [2, 5, 8, 11]
    assert kept_blocks(6, 6) == list(range(6))


def test_rotary_channels_keep_pair_structure():
    channels = _rotary_channels(64, 32)
    assert channels.tolist()[:4] == [0, 2, 4, 6] and channels.tolist()[16:20] == [32, 34, 36, 38]


@pytest.mark.parametrize("strategy", ["every-kth", "importance"])
def test_same_shape_copy_is_exact(strategy):
    torch.manual_seed(0)
    teacher = create_model("usad-nano").eval()
    clips = [w.numpy() for w in _waves(1)[0]]
    student = init_student(teacher, teacher.config, strategy, clips).eval()
    w, n = _waves()
    with torch.no_grad():
        a, b = teacher(w, n).hidden_states, student(w, n).hidden_states
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_every_kth_copies_blocks_of_equal_width():
    torch.manual_seed(0)
    teacher = create_model("usad-tiny").eval()
    student = init_student(teacher, get_preset("usad-tiny", depth=3), "every-kth")
    for i, j in enumerate(kept_blocks(6, 3)):
        for key, value in student.blocks[i].state_dict().items():
            assert torch.equal(value, teacher.blocks[j].state_dict()[key]), key


def test_importance_prunes_width_heads_ffn_and_frame_rate():
    torch.manual_seed(0)
    teacher = create_model("usad-tiny").eval()
    clips = [w.numpy() for w in _waves(2)[0]]
    config = student_config("usad-nano", frame_rate=25)
    assert config.name == "usad-nano-25hz" and config.frame_rate == 25
    student = init_student(teacher, config, "importance", clips).eval()
    w, n = _waves()
    with torch.no_grad():
        out = student(w, n)
    assert out.hidden_states[-1].shape == (2, 37, 192)
    assert all(torch.isfinite(h).all() for h in out.hidden_states)
    # Copied, not re-drawn: every weight of a student block is a weight of its teacher block.
    for i, j in enumerate(kept_blocks(6, 4)):
        assert torch.isin(student.blocks[i].ffn[0].weight, teacher.blocks[j].ffn[0].weight).all()
        assert torch.isin(student.blocks[i].attn.qkv.weight, teacher.blocks[j].attn.qkv.weight).all()
    fresh = init_student(teacher, config, "fresh")
    assert not torch.equal(fresh.blocks[0].ffn[0].weight, student.blocks[0].ffn[0].weight)


def test_importance_drops_silent_heads_and_ffn_units():
    torch.manual_seed(0)
    teacher = create_model("usad-tiny").eval()
    hd = 64
    with torch.no_grad():
        for block in teacher.blocks:
            block.attn.qkv.weight[2 * 256 + 2 * hd: 2 * 256 + 3 * hd] = 0  # head 2 writes nothing (its v is 0)
            block.ffn[2].weight[:, :100] = 0  # FFN units 0..99 are never read
    clips = [w.numpy() for w in _waves(3)[0]]
    scores = measure_importance(teacher, clips)
    for heads, ffn in zip(scores.heads, scores.ffn):
        assert heads.argmin() == 2 and heads[2] == 0
        assert (ffn[:100] == 0).all() and (ffn[100:] > 0).all()
    student = init_student(teacher, get_preset("usad-tiny", dim=192, heads=3, ffn_ratio=3.0), "importance", clips)
    kept_v = student.blocks[0].attn.qkv.weight[2 * 192:]  # the student's v rows: heads 0, 1, 3 of the teacher
    assert torch.isin(kept_v, teacher.blocks[0].attn.qkv.weight[2 * 256 + 2 * hd: 2 * 256 + 3 * hd]).sum() == 0


def test_bad_requests_fail_clearly(tmp_path):
    teacher = create_model("usad-nano")
    with pytest.raises(CompressInitError, match="dim 256 > teacher's 192"):
        init_student(teacher, get_preset("usad-tiny"), "every-kth")
    with pytest.raises(CompressInitError, match="unknown init strategy"):
        init_student(teacher, get_preset("usad-nano"), "magic")
    with pytest.raises(ValueError, match="calibration clip"):
        init_student(teacher, get_preset("usad-nano"), "importance", [])
    with pytest.raises(ModelDirError):
        compress(tmp_path / "missing", "usad-nano", tmp_path / "out")
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("teachers: [{name: x, spec: 'whisper:x'}]\n")
    with pytest.raises(RecipeError, match="takes its teachers from the command line"):
        build_recipe(tmp_path, get_preset("usad-nano"), "usad-nano", recipe, None)
    recipe.write_text("data: {corpus: [x]}\ntrain: {max_step: 3}\n")
    with pytest.raises(RecipeError, match="unknown recipe key 'train.max_step'"):
        build_recipe(tmp_path, get_preset("usad-nano"), "usad-nano", recipe, None)


def test_recipe_uses_the_full_model_as_only_teacher(tmp_path):
    recipe = build_recipe(tmp_path, student_config("usad-tiny", 25), "usad-tiny", None, "all",
                          [f"data.corpus=[{tmp_path}]", "train.max_steps=7"]).to_dict()
    assert recipe["teachers"] == [{"name": "full", "spec": f"usad:{tmp_path.resolve()}", "weight": 1.0, "options": {}}]
    assert recipe["student"] == {"preset": "usad-tiny", "overrides": {"name": "usad-tiny-25hz", "frame_rate": 25}}
    assert recipe["objective"]["pairs"] == "all" and recipe["train"]["max_steps"] == 7
    assert student_config("usad-tiny-25hz", 50) == get_preset("usad-tiny")  # derived through the registry


# ----------------------------------------------------------------- end to end on real audio (CPU)

@pytest.fixture(scope="module")
def trained_teacher(tmp_path_factory):
    """A usad-nano distilled briefly from whisper-tiny.en on training-side FSDD clips, and that corpus."""
    from usad.audio import load_audio
    from usad.data import sources as src
    from usad.data.shards import ShardWriter, encode_opus
    from usad.data.splits import corpus_allows
    from usad.distill import distill, load_recipe

    root = tmp_path_factory.mktemp("compress")
    items = [i for i in src.fsdd_items(src.SourcePaths(shared=SHARED)) if corpus_allows("fsdd", i.labels)]
    writer = ShardWriter(root / "corpus")
    for item in items[::6][:150]:
        audio = load_audio(item.path)
        writer.write(item.id.replace(":", "_"), encode_opus(audio),
                     {"domain": "speech", "source": "fsdd", "seconds": audio.size / 16_000})
    writer.close()
    recipe = root / "teacher.yaml"
    recipe.write_text(json.dumps({
        "student": {"preset": "usad-nano"},
        "teachers": [{"name": "speech", "spec": f"whisper:{SHARED / 'teachers/whisper-tiny.en'}"}],
        "data": {"corpus": [str(root / "corpus")], "min_seconds": 0.2, "workers": 1},
        "train": {"batch_size": 8, "max_steps": 16, "warmup_steps": 3, "lr": 2e-3, "precision": "fp32",
                  "compile": False, "ckpt_every": 1000, "log_every": 5}}))
    teacher_dir = distill(load_recipe(recipe), root / "teacher")
    return root, teacher_dir


@needs_shared
def test_compress_lowers_loss_and_keeps_t1_above_chance(trained_teacher):
    from usad.bench.accuracy import run_accuracy
    from usad.data.sources import SourcePaths
    from usad.data.tasks import build_tasks

    root, teacher_dir = trained_teacher
    recipe = root / "compress.yaml"
    recipe.write_text(json.dumps({
        "data": {"corpus": [str(root / "corpus")], "min_seconds": 0.2, "workers": 1},
        "train": {"batch_size": 8, "max_steps": 20, "warmup_steps": 2, "lr": 2e-3, "precision": "fp32",
                  "compile": False, "ckpt_every": 1000, "log_every": 2}}))
    # usad-nano (192 x 4 layers x 3 heads, 50 Hz) -> 96 x 2 layers x 3 heads of 32 channels at 25 Hz.
    model_dir = compress(teacher_dir, "usad-nano", root / "small", recipe, frame_rate=25, init="importance",
                         student_overrides={"name": "nano-96", "dim": 96, "depth": 2})

    config = json.loads((model_dir / "config.json").read_text())
    assert config["variant"] == "nano-96-25hz" and config["frame_rate"] == 25
    compression = config["compression"]
    assert compression["init"] == "importance" and compression["teacher_variant"] == "usad-nano"
    assert compression["flops_reduction"] > 2.5
    assert config["distillation"]["teachers"][0]["spec"] == f"usad:{teacher_dir.resolve()}"

    log = [json.loads(line) for line in (root / "small" / "train_log.jsonl").read_text().splitlines()]
    first, last = log[0]["loss"], np.mean([r["loss"] for r in log[-2:]])
    assert last < 0.85 * first, f"distillation loss {first:.3f} -> {last:.3f}"

    tasks = root / "tasks"
    build_tasks(tasks, ["T1-digit"], SourcePaths(shared=SHARED), regenerate=True, limit_per_split=20)
    result = run_accuracy([str(model_dir)], root / "acc", ["T1-digit"], audio_dir=tasks, seeds=2,
                          build_missing=False)
    t1 = result["models"][0]["tasks"]["T1-digit"]
    assert t1["n_test"] == 200
    # 10 digits, chance 0.1: the 95 % CI must exclude chance and the score be well above it (0.23 measured).
    assert t1["ci_low"] > t1["chance"] and t1["score"] > 1.6 * t1["chance"], t1
