"""Distillation recipes: a YAML file over these defaults, then ``--set key.sub=value`` overrides.

Unknown keys are errors (a typo must not silently train with a default). Values given with
``--set`` are parsed as YAML, so ``train.lr=3e-4``, ``data.corpus=[a,b]`` and ``train.compile=false`` work.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from usad.errors import UsadError

DEFAULTS: dict = {
    "student": {"preset": "usad-small", "overrides": {}},
    # Each teacher: name (used in logs and head names), spec (usad.teachers.load_teacher), weight.
    "teachers": [],
    "objective": {"pairs": 4, "head_hidden": None, "normalize_targets": True},
    "data": {
        "corpus": [],  # directories of usad.data.shards shards (manifest.json beside them)
        "crop_seconds": 10.0,
        "min_seconds": 0.1,  # drum hits and spoken digits are short; the student needs >= 25 ms
        "pad_multiple_seconds": 0.5,  # fewer distinct batch shapes for torch.compile
        "domain_weights": {"speech": 1.0, "sound": 2.0, "music": 2.0},  # USAD: sound and music x2
        "bucket_batches": 8,  # batches drawn together and sorted by length (length bucketing)
        "workers": 4,  # processes decoding shards at start-up
    },
    "train": {
        "batch_size": 32,  # global: split evenly over the DDP ranks
        "max_steps": 1000,
        "max_minutes": None,  # stop (with checkpoint and model dir) after this much wall time
        "lr": 5e-4,
        "min_lr_ratio": 0.05,
        "warmup_steps": 100,
        "weight_decay": 0.01,
        "betas": [0.9, 0.98],
        "grad_clip": 1.0,
        "precision": "bf16",  # bf16 autocast on GPU; CPU runs fp32 unless set to bf16
        "compile": True,
        "compile_teachers": True,  # GPU only; fuses the teachers' front ends and BatchNorm+ReLU
        "seed": 0,
        "ckpt_every": 200,
        "log_every": 10,
    },
}


class ConfigError(UsadError, ValueError):
    pass


def _merge(base: dict, update: dict, where: str = "") -> dict:
    for key, value in update.items():
        if key not in base:
            raise ConfigError(f"unknown config key {where + key!r}")
        if isinstance(base[key], dict) and key not in ("overrides", "domain_weights"):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {where + key!r} must be a mapping")
            _merge(base[key], value, f"{where}{key}.")
        else:
            base[key] = value
    return base


def _coerce_numbers(config: dict, defaults: dict) -> None:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string: turn strings into numbers where the default is one."""
    for key, default in defaults.items():
        value = config.get(key)
        if isinstance(default, dict) and isinstance(value, dict):
            _coerce_numbers(value, default)
        elif isinstance(value, str) and (isinstance(default, float) or key == "max_minutes"):
            try:
                config[key] = float(value)
            except ValueError as err:
                raise ConfigError(f"config key {key!r}: {value!r} is not a number") from err


def apply_override(config: dict, assignment: str) -> None:
    """``a.b.c=value``: set one nested key, the value parsed as YAML."""
    key, sep, raw = assignment.partition("=")
    if not sep:
        raise ConfigError(f"override {assignment!r}: expected key=value")
    *parents, leaf = key.strip().split(".")
    update: dict = {leaf: yaml.safe_load(raw)}
    for parent in reversed(parents):
        update = {parent: update}
    _merge(config, update)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> dict:
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        data = yaml.safe_load(Path(path).read_text()) or {}
        _merge(config, data)
    for assignment in overrides or []:
        apply_override(config, assignment)
    _coerce_numbers(config, DEFAULTS)
    if not config["teachers"]:
        raise ConfigError("no teachers: add a 'teachers' list (name, spec, weight)")
    for teacher in config["teachers"]:
        if set(teacher) - {"name", "spec", "weight", "options"} or not {"name", "spec"} <= set(teacher):
            raise ConfigError(f"teacher entry {teacher}: needs name and spec (optional weight, options)")
    if not config["data"]["corpus"]:
        raise ConfigError("no corpus: set data.corpus to one or more shard directories")
    return config
