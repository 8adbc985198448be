"""Distillation recipes: typed dataclasses read from YAML, then ``--set key.sub=value`` overrides.

``Recipe.from_dict`` is strict: an unknown key is an error that names it with its dotted path (a typo
must not silently train with a default), and a value of the wrong type is an error too. Values given
with ``--set`` are parsed as YAML, so ``train.lr=3e-4``, ``data.corpus=[a,b]`` and ``train.compile=false``
work. ``usad compress`` writes the same format (``compress_recipe.yaml``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from usad.data.stream import DataConfig
from usad.errors import UsadError


class RecipeError(UsadError, ValueError):
    """A recipe that cannot be trained: unknown key, wrong type, missing teachers or corpus."""


@dataclass
class StudentRecipe:
    preset: str = "usad-small"
    overrides: dict[str, Any] = field(default_factory=dict)  # EncoderConfig fields that change the preset


@dataclass
class TeacherRecipe:
    name: str  # used in logs and head names
    spec: str  # usad.teachers.load_teacher, e.g. whisper:DIR
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the adapter


@dataclass
class ObjectiveRecipe:
    pairs: int | str = 4  # K sparse layer pairs, or "all": one per student layer
    head_hidden: int | None = None
    normalize_targets: bool = True

    def __post_init__(self) -> None:
        if self.pairs != "all" and (not isinstance(self.pairs, int) or self.pairs < 1):
            raise RecipeError(f"objective.pairs: a positive integer or 'all', got {self.pairs!r}")


@dataclass
class TrainRecipe:
    batch_size: int = 32  # global: split evenly over the DDP ranks
    max_steps: int = 1000
    max_minutes: float | None = None  # stop (with checkpoint and model dir) after this much wall time
    lr: float = 5e-4
    min_lr_ratio: float = 0.05
    warmup_steps: int = 100
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    grad_clip: float = 1.0
    precision: str = "bf16"  # bf16 autocast on GPU; CPU runs fp32 unless set to bf16
    compile: bool = True
    compile_teachers: bool = True  # GPU only; fuses the teachers' front ends and BatchNorm+ReLU
    seed: int = 0
    ckpt_every: int = 200
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.precision not in ("bf16", "fp32"):
            raise RecipeError(f"train.precision: bf16 or fp32, got {self.precision!r}")


@dataclass
class Recipe:
    student: StudentRecipe = field(default_factory=StudentRecipe)
    teachers: list[TeacherRecipe] = field(default_factory=list)
    objective: ObjectiveRecipe = field(default_factory=ObjectiveRecipe)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainRecipe = field(default_factory=TrainRecipe)

    @classmethod
    def from_dict(cls, data: dict) -> Recipe:
        return _build(cls, data, "")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check(self) -> Recipe:
        """The parts a training run needs beyond well-formed keys."""
        if not self.teachers:
            raise RecipeError("no teachers: add a 'teachers' list (name, spec, weight)")
        if not self.data.corpus:
            raise RecipeError("no corpus: set data.corpus to one or more shard directories")
        return self


def _build(cls: type, data: Any, where: str) -> Any:
    """A dataclass from a mapping, each value checked against its annotation."""
    if not isinstance(data, dict):
        raise RecipeError(f"recipe key {where.rstrip('.') or 'recipe'!r} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise RecipeError(f"unknown recipe key {where + str(key)!r}")
    missing = [name for name, f in known.items() if name not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise RecipeError(f"recipe key {where.rstrip('.')!r} needs {', '.join(missing)}")
    return cls(**{key: _value(hints[key], value, where + key) for key, value in data.items()})


def _value(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _value(option, value, where)
            except RecipeError as err:
                errors.append(err)
        raise errors[-1]
    if origin is list:
        if not isinstance(value, list):
            raise RecipeError(f"recipe key {where!r} must be a list, got {value!r}")
        return [_value(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"recipe key {where!r} must be a mapping, got {value!r}")
        return {str(k): _value(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float and not isinstance(value, bool):
        try:  # YAML 1.1 reads 1e-3 (no dot) as a string
            return float(value)
        except (TypeError, ValueError):
            pass
    elif hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif hint in (bool, str) and isinstance(value, hint):
        return value
    raise RecipeError(f"recipe key {where!r} must be {hint.__name__}, got {value!r}")


def apply_override(data: dict, assignment: str) -> None:
    """``a.b.c=value`` on a recipe mapping: set one nested key, the value parsed as YAML."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"override {assignment!r}: expected key=value")
    *parents, leaf = key.strip().split(".")
    node = data
    for i, parent in enumerate(parents):
        node = node.setdefault(parent, {})
        if not isinstance(node, dict):
            raise RecipeError(f"override {assignment!r}: {'.'.join(parents[:i + 1])!r} is not a mapping")
    try:
        node[leaf] = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise RecipeError(f"override {assignment!r}: not YAML ({err.problem})") from err


def read_recipe_file(path: str | Path) -> dict:
    """The mapping in a YAML recipe file (empty file: empty mapping)."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as err:
        raise RecipeError(f"{path}: cannot read the recipe ({err.strerror})") from err
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of student, teachers, objective, data, train")
    return data


def recipe_from(data: dict, overrides: list[str] | None = None) -> Recipe:
    """A checked Recipe from a mapping and ``key=value`` overrides (applied over the file's values and
    the defaults, so ``data.domain_weights.speech=2`` keeps the other weights)."""
    merged = Recipe.from_dict(data).to_dict()
    for assignment in overrides or []:
        apply_override(merged, assignment)
    return Recipe.from_dict(merged).check()


def load_recipe(path: str | Path | None = None, overrides: list[str] | None = None) -> Recipe:
    return recipe_from(read_recipe_file(path) if path is not None else {}, overrides)
