"""``usad compress``: distill a trained (full) USAD model into a smaller preset.

The full model becomes the only teacher, through the ``usad:MODEL_DIR`` teacher adapter; the student
is initialised by ``usad.compress.init`` and trained by the very same trainer, objective and corpus
as ``usad distill``. The recipe actually used is written to ``OUT/compress_recipe.yaml`` (the
``usad distill`` format: ``usad distill --config OUT/compress_recipe.yaml`` reproduces the training).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import torch
import yaml

from usad.config import SAMPLE_RATE, EncoderConfig, at_frame_rate, get_preset
from usad.data.shards import iter_shard, read_manifest
from usad.distill.recipe import Recipe, RecipeError, read_recipe_file, recipe_from

RECIPE_FILE = "compress_recipe.yaml"
TEACHER_NAME = "full"


def student_config(preset: str, frame_rate: int | None = None, **overrides) -> EncoderConfig:
    """The preset (with EncoderConfig ``overrides``), optionally at another frame rate (usad.config.at_frame_rate)."""
    config = dataclasses.replace(get_preset(preset), **overrides)
    return config if frame_rate is None else at_frame_rate(config, frame_rate)


def calibration_clips(corpus: list[str | Path], count: int = 32, max_seconds: float = 10.0) -> list[np.ndarray]:
    """Up to ``count`` real clips (cropped to ``max_seconds``) from the first shards of the corpus,
    taken round-robin over its directories: enough to rank channels, cheap to decode."""
    per_dir = []
    for directory in corpus:
        shards = read_manifest(directory)["shards"]
        clips = []
        for shard in shards:
            clips.extend(c.audio[: int(max_seconds * SAMPLE_RATE)]
                         for c in iter_shard(Path(directory) / shard["path"], []))
            if len(clips) >= count:
                break
        per_dir.append(clips)
    mixed = [c for group in zip(*per_dir) for c in group] if len(per_dir) > 1 else per_dir[0]
    return [c for c in mixed if len(c) >= SAMPLE_RATE // 10][:count]


def build_recipe(teacher_dir: str | Path, student: EncoderConfig, preset: str, config_path: str | Path | None,
                 pairs: int | str | None, overrides: list[str] | None = None) -> Recipe:
    """The distillation recipe of a compression: the YAML file (distill format, teachers and student left
    out), with the full model as the only teacher, the student preset, and ``--set`` overrides."""
    data = read_recipe_file(config_path) if config_path else {}
    for key in ("teachers", "student"):
        if data.get(key):
            raise RecipeError(f"{config_path}: a compress recipe takes its {key} from the command line, not {key!r}")
    changed = {k: v for k, v in student.to_dict().items() if v != get_preset(preset).to_dict()[k]}
    data["student"] = {"preset": preset, "overrides": changed}
    data["teachers"] = [{"name": TEACHER_NAME, "spec": f"usad:{Path(teacher_dir).resolve()}", "weight": 1.0}]
    objective = data.setdefault("objective", {})
    objective["pairs"] = pairs if pairs is not None else objective.get("pairs", "all")
    if isinstance(objective["pairs"], str) and objective["pairs"].isdigit():
        objective["pairs"] = int(objective["pairs"])
    return recipe_from(data, overrides)


def compress(teacher_dir: str | Path, preset: str, out: str | Path, config_path: str | Path | None = None,
             frame_rate: int | None = None, init: str = "every-kth", pairs: int | str | None = None,
             overrides: list[str] | None = None, resume: bool = False,
             student_overrides: dict | None = None) -> Path | None:
    """Distill the model in ``teacher_dir`` into ``preset``; returns ``OUT/model`` (rank 0).

    ``overrides``: recipe ``key=value`` strings (``--set``); ``student_overrides``: EncoderConfig fields
    that change the preset (e.g. ``{"dim": 128}``)."""
    from usad.compress.init import init_student
    from usad.distill import distill
    from usad.model import count_parameters
    from usad.modeldir import load

    out = Path(out)
    # On GPU the importance pass runs there (this rank's device); the copy itself happens on CPU.
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"
    teacher = load(teacher_dir, device)
    student_cfg = student_config(preset, frame_rate, **(student_overrides or {}))
    recipe = build_recipe(teacher_dir, student_cfg, preset, config_path, pairs, overrides)
    out.mkdir(parents=True, exist_ok=True)
    (out / RECIPE_FILE).write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
    student = None
    if not resume:  # on resume the checkpoint holds the weights
        clips = calibration_clips(recipe.data.corpus) if init == "importance" else []
        student = init_student(teacher, student_cfg, init, clips, seed=recipe.train.seed)
    model_dir = distill(recipe, out, resume=resume, student=student)
    if model_dir is None:
        return None
    pairs_used = student_cfg.depth if recipe.objective.pairs == "all" else recipe.objective.pairs
    teacher_gflops = teacher.gflops_per_second()
    compressed = load(model_dir)
    gflops = compressed.gflops_per_second()
    record = {"teacher": str(Path(teacher_dir).resolve()), "teacher_variant": teacher.config.name,
              "teacher_parameters": count_parameters(teacher), "teacher_gflops_per_second": round(teacher_gflops, 4),
              "init": init, "pairs": pairs_used, "gflops_per_second": round(gflops, 4),
              "flops_reduction": round(teacher_gflops / gflops, 2)}
    _add_to_config(model_dir, {"compression": record})
    return model_dir


def _add_to_config(model_dir: Path, extra: dict) -> None:
    path = model_dir / "config.json"
    config = json.loads(path.read_text()) | extra
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(config, indent=2))
    os.replace(tmp, path)
