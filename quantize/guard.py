"""INT8 export with an accuracy guard and a recipe chosen by measurement.

1. Build every recipe (``usad.quantize.recipes``: static QDQ, dynamic, mixed) of the default node set
   (weight Conv/MatMuls outside the fbank), calibrated on fixed-length crops of real audio.
2. Guard each: per-frame cosine against the float graph on held-out crops from other recordings (and the
   clip-embedding cosine, recorded); with a task scorer, also the mean-task retention INT8 / float.
3. None passes: measure the sensitivity of each layer group under the recipe closest to passing, return
   the worst 1, 2, 4, ... groups to float (up to ``max_exclude_fraction`` of the nodes) and retry.
4. Time float and every passing recipe side by side on this machine (``usad.quantize.select``): the
   fastest becomes the INT8 file, and the model dir's default only when it beats fp32.
5. None passes: refuse (``QuantizationRefused``, nothing written) unless ``force``.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx

from usad.errors import UsadError
from usad.onnx_conventions import INT8_RECIPES, cpu_session, recipe_file
from usad.quantize.calibration import calibration_and_heldout
from usad.quantize.fidelity import Fidelity, Outputs, compare, run_outputs
from usad.quantize.recipes import RECIPES, build_recipe, calibration_cache, op_types
from usad.quantize.roles import graph_roles, layer_groups
from usad.quantize.select import LATENCY_SECONDS, Choice, choose, time_models
from usad.quantize.sensitivity import group_sensitivity
from usad.quantize.static import crop_feeds, int8_weight_peak, prepare, quantize_nodes, quantized_nodes

DEFAULT_MIN_COSINE = 0.995  # per-frame, min over held-out clips and layers
DEFAULT_MIN_RETENTION = 0.99


class QuantizationRefused(UsadError, RuntimeError):
    """No INT8 recipe reached the accuracy threshold; ``report`` has the figures."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


class EncoderIO:
    """How the guard feeds a graph and reads its outputs: an encoder's (waveforms, lengths) -> frames, mask.
    Another graph (``usad.export.streaming``'s chunk step) brings its own."""

    def calibration_feeds(self, crops: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        return crop_feeds(crops)

    def outputs(self, session, crops: Sequence[np.ndarray]) -> Outputs:
        return run_outputs(session, crops)


@dataclass
class Attempt:
    recipe: str
    excluded: list[str]  # layer groups returned to float
    cosine: float  # per-frame, min over clips and layers: what the guard thresholds
    clip_cosine: float  # pooled clip embeddings, min over layers of the mean over clips
    clip_cosine_min: float
    task_retention: float | None
    passed: bool


@dataclass
class GuardReport:
    threshold_cosine: float
    threshold_retention: float
    calibration: dict
    recipes: list[str] = field(default_factory=list)
    kept_float: dict = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    sensitivity: dict[str, float] = field(default_factory=dict)  # layer group -> 1 - cosine, worst first
    sensitivity_recipe: str | None = None
    choice: dict = field(default_factory=dict)  # usad.quantize.select.Choice
    recipe: str | None = None  # the recipe written
    excluded: list[str] = field(default_factory=list)  # nodes left float by the search
    quantized_nodes: list[str] = field(default_factory=list)
    int8_weight_peak: int = 0  # <= 64: no x86 U8S8 kernel saturates (usad.quantize.static)
    passed: bool = False
    forced: bool = False
    written: str | None = None
    candidates: dict[str, str] = field(default_factory=dict)  # recipe -> kept file (keep_candidates)
    tensorrt_variant: dict | None = None  # symmetric-activation twin for TensorRT: cosine, file

    def to_dict(self) -> dict:
        return asdict(self)

    def final(self, recipe: str) -> Attempt:
        return [a for a in self.attempts if a.recipe == recipe][-1]


def quantize_guarded(
    fp32_path: str | Path,
    out_path: str | Path,
    calibration: Sequence[str | Path],
    recipes: Sequence[str] = INT8_RECIPES,
    min_cosine: float = DEFAULT_MIN_COSINE,
    min_retention: float = DEFAULT_MIN_RETENTION,
    task_score: Callable[[str], float] | None = None,
    force: bool = False,
    exclude: Sequence[str] = (),
    include_fbank: bool = False,
    force_nodes: Sequence[str] = (),
    max_exclude_fraction: float = 0.25,
    crop_seconds: float = 5.0,
    calibration_crops: int = 32,
    heldout_crops: int = 12,
    threads: int | None = None,
    latency_seconds: float = LATENCY_SECONDS,
    keep_candidates: bool = False,
    time_cell: Callable | None = None,
    baselines: Mapping[str, str | Path] | None = None,
    tensorrt_path: str | Path | None = None,
    graph_io: EncoderIO | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> GuardReport:
    """Write the guarded, fastest INT8 model of ``fp32_path`` to ``out_path``; see the module docstring.

    ``include_fbank`` makes the fbank's Conv/MatMul candidates too (they stay float by default);
    ``force_nodes`` are always quantized and never excluded (to test the guard on a broken model).
    ``task_score(onnx_path)`` returns a mean task score; retention is INT8 over float. ``keep_candidates``
    also writes each recipe's file beside ``out_path`` (``usad.onnx_conventions.recipe_file``), for the bench.
    ``time_cell``: the bench harness' interleaved timer (``usad.bench.harness.time_cell``); without it nothing is
    timed, the closest passing recipe is written and fp32 stays the default (never an unmeasured INT8).
    ``baselines``: the model dir's other runnable files (file name -> path: the other graph form, an INT8
    already there), timed beside fp32 and the recipes; the fastest of all may stay the default
    (``usad.quantize.select.choose``). The guard's reference is always ``fp32_path``: the graph exported.
    ``tensorrt_path``: also write the chosen node set as static QDQ with symmetric INT8 activations
    (TensorRT's explicit quantization) there, its cosine in ``tensorrt_variant``.
    ``max_exclude_fraction`` 0 disables the exclusion search. ``graph_io``: how to feed the graph and read its
    outputs (default ``EncoderIO``; the timing of step 4 feeds encoder inputs, so another graph passes no
    ``time_cell``).
    """
    graph_io = graph_io or EncoderIO()
    unknown = sorted(set(recipes) - set(RECIPES))
    if unknown or not recipes:
        raise ValueError(f"unknown INT8 recipe(s) {unknown}; known: {', '.join(RECIPES)}")
    recipes = [r for r in RECIPES if r in recipes]  # static first: its calibration then serves mixed too
    out_path = Path(out_path)
    cal_crops, held_crops = calibration_and_heldout(list(calibration), crop_seconds, calibration_crops, heldout_crops)
    with tempfile.TemporaryDirectory(prefix="usad-int8-") as work:
        work_dir = Path(work)
        float_path = prepare(fp32_path, work_dir)
        float_model = onnx.load(float_path)
        roles, types = graph_roles(float_model), op_types(float_model)
        candidates = [n for n in roles.weight + (roles.fbank if include_fbank else [])
                      if n not in exclude and n not in force_nodes]
        groups = layer_groups(float_model, candidates)
        report = GuardReport(
            min_cosine, min_retention, recipes=list(recipes),
            calibration={"sources": [str(p) for p in calibration], "crop_seconds": crop_seconds,
                         "calibration_crops": len(cal_crops), "heldout_crops": len(held_crops), "method": "MinMax",
                         "activations": "uint8 asymmetric (static) or per call (dynamic)",
                         "weights": "int8 symmetric per-channel, 7-bit (reduce_range)"},
            kept_float={"fbank": [n for n in roles.fbank if not include_fbank and n not in force_nodes],
                        "attention_matmul": roles.activation_matmul, "user_excluded": list(exclude)},
        )
        reference = graph_io.outputs(cpu_session(float_path, threads), held_crops)
        cal_feeds = graph_io.calibration_feeds(cal_crops)
        float_task = task_score(str(float_path)) if task_score else None

        def build(recipe: str, nodes: list[str], path: Path) -> Path:
            return build_recipe(RECIPES[recipe], float_path, path, nodes + list(force_nodes), types, cal_feeds,
                                work_dir)

        def fidelity(path: Path) -> Fidelity:
            return compare(reference, graph_io.outputs(cpu_session(path, threads), held_crops))

        def attempt(recipe: str, excluded_groups: list[str]) -> Attempt:
            skip = {n for g in excluded_groups for n in groups[g]}
            path = build(recipe, [n for n in candidates if n not in skip], work_dir / f"int8.{recipe}.onnx")
            fid = fidelity(path)
            retention = None
            if task_score and float_task and fid.frame_cosine >= min_cosine:
                retention = task_score(str(path)) / float_task
            ok = fid.frame_cosine >= min_cosine and (task_score is None or (retention or 0) >= min_retention)
            result = Attempt(recipe, list(excluded_groups), fid.frame_cosine, fid.clip_cosine, fid.clip_cosine_min,
                             retention, ok)
            report.attempts.append(result)
            log(f"INT8 {recipe}" + (f" ({len(skip)} nodes in {len(excluded_groups)} group(s) float)" if skip else "")
                + f": per-frame cosine {fid.frame_cosine:.5f}, clip {fid.clip_cosine:.5f}"
                + (f", task retention {retention:.4f}" if retention is not None else "")
                + (" - passed" if ok else " - below the guard"))
            return result

        for recipe in recipes:
            attempt(recipe, [])
        if not any(a.passed for a in report.attempts) and groups and max_exclude_fraction > 0:
            _search_exclusions(report, groups, candidates, max_exclude_fraction, build, fidelity, attempt, work_dir,
                               log)
        passed = [r for r in recipes if report.final(r).passed]
        if not passed and not force:
            best = max(report.attempts, key=lambda a: a.cosine)
            raise QuantizationRefused(
                f"INT8 refused: per-frame cosine {best.cosine:.5f} < {min_cosine} (best: recipe {best.recipe}"
                + (f", task retention {best.task_retention:.4f} < {min_retention}" if best.task_retention else "")
                + f", {len(best.excluded)} layer group(s) kept float); fp32 model kept, no INT8 file written "
                "(--force writes it anyway)", report.to_dict())
        choice = _choose(report, passed, float_path, dict(baselines or {}), work_dir, held_crops, threads,
                         latency_seconds, time_cell, log)
        final = report.final(choice.recipe)
        report.recipe, report.passed, report.forced = choice.recipe, final.passed, not final.passed
        report.excluded = [n for g in final.excluded for n in groups[g]]
        chosen_path = work_dir / f"int8.{choice.recipe}.onnx"
        chosen_model = onnx.load(chosen_path)
        report.quantized_nodes = quantized_nodes(chosen_model)
        report.int8_weight_peak = int8_weight_peak(chosen_model)
        if tensorrt_path is not None:
            report.tensorrt_variant = _tensorrt_twin(float_path, tensorrt_path, report, candidates, force_nodes,
                                                     cal_feeds, work_dir, fidelity, log)
        if keep_candidates:
            for recipe in recipes:
                name = recipe_file(out_path.name, recipe)
                shutil.copy(work_dir / f"int8.{recipe}.onnx", out_path.with_name(name))
                report.candidates[recipe] = name
        tmp = out_path.with_name(out_path.name + ".tmp")
        shutil.move(str(chosen_path), tmp)
        tmp.replace(out_path)
        report.written = out_path.name
    return report


def _search_exclusions(report: GuardReport, groups: dict[str, list[str]], candidates: list[str],
                       max_exclude_fraction: float, build, fidelity, attempt, work_dir: Path, log) -> None:
    """Group sensitivity under the recipe closest to passing, then retries with the worst groups float."""
    recipe = max(report.attempts, key=lambda a: a.cosine).recipe
    log(f"no recipe passed: measuring the sensitivity of {len(groups)} layer groups under '{recipe}'")

    def trial(nodes: list[str]) -> float:
        return fidelity(build(recipe, nodes, work_dir / "trial.onnx")).frame_cosine

    report.sensitivity_recipe = recipe
    report.sensitivity = group_sensitivity(
        groups, trial, lambda name, value: log(f"  {name}: alone INT8, 1 - cosine {value:.2e}"))
    # The worst groups that fit together within the node budget, worst first; retry with the worst 1, 2, 4, ...
    limit, fitting, used = max(1, math.ceil(max_exclude_fraction * len(candidates))), [], 0
    for name in report.sensitivity:
        if used + len(groups[name]) <= limit:
            fitting.append(name)
            used += len(groups[name])
    for k in sorted({min(2 ** i, len(fitting)) for i in range(len(fitting).bit_length() + 1)} - {0}):
        if attempt(recipe, fitting[:k]).passed:
            break


def _choose(report: GuardReport, passed: list[str], float_path: Path, baselines: dict, work_dir: Path, held_crops,
            threads, latency_seconds: float, time_cell, log) -> Choice:
    """Time float, the baselines and the passing recipes (or, forced, the closest one) and pick; recorded in the
    report."""
    timed = passed or [max(report.recipes, key=lambda r: report.final(r).cosine)]
    if time_cell is None:
        best = max(timed, key=lambda r: report.final(r).cosine)
        choice = Choice(best if passed else None, "fp32", f"not timed (no time_cell given): INT8 '{best}' (closest "
                        "to fp32) written, fp32 stays the default")
    else:
        paths = {"fp32": float_path} | baselines | {r: work_dir / f"int8.{r}.onnx" for r in timed}
        log(f"timing fp32, {', '.join([*baselines, *timed])} side by side at {latency_seconds:g} s")
        medians, timing = time_models(paths, np.concatenate(held_crops), time_cell, latency_seconds, threads)
        choice = choose(medians, passed, list(baselines))
        choice.timing = timing
    if not passed:  # forced: write the closest recipe, never as the default
        choice.recipe = timed[0]
        choice.reason = f"forced below the guard: '{timed[0]}' written, never the default (that stays {choice.default})"
    report.choice = choice.to_dict()
    log(choice.reason)
    return choice


def _tensorrt_twin(float_path: Path, tensorrt_path, report: GuardReport, candidates, force_nodes, cal_feeds,
                   work_dir: Path, fidelity, log) -> dict:
    """The chosen node set as static QDQ with symmetric activations: TensorRT's explicit quantization."""
    nodes = [n for n in candidates if n not in report.excluded] + list(force_nodes)
    # MinMax ranges do not depend on the activation type: the static recipe's calibration serves here too.
    trt = quantize_nodes(float_path, work_dir / "int8.tensorrt.onnx", nodes, cal_feeds, calibration_cache(work_dir),
                         "tensorrt")
    fid = fidelity(trt)
    shutil.move(str(trt), tensorrt_path)
    log(f"TensorRT INT8 variant (static, symmetric activations): per-frame cosine {fid.frame_cosine:.5f}")
    return {"file": Path(tensorrt_path).name, "cosine": fid.frame_cosine, "clip_cosine": fid.clip_cosine,
            "activations": "int8 symmetric (zero point 0)"}
