"""``make demo``: the main job end to end, at small scale, on this CPU.

1. a few minutes of real audio from ../shared (spoken digits, spoken letters/colours, drum hits)
   become a small distillation corpus (``usad.data``);
2. a ``usad-nano`` student learns from frozen teachers: Whisper tiny.en (speech) and, when its
   package is installed, aiSFX (sound) (``usad.distill``);
3. the student is exported to ONNX and guarded INT8 (``usad.export``, ``usad.quantize``);
4. float and INT8 are scored on two tasks of the suite (spoken digit, drum class) with frozen-encoder
   probes, beside the same network untrained (``usad.bench.accuracy``), and timed side by side
   (``usad.bench.latency``).

    python -m usad.demo [--quick] [--out runs/demo]

``--quick`` is the CI form (about 2 minutes): fewer steps, rows and lengths. Every figure comes from
this run; the student sees minutes of audio, so expect it above the untrained network, far from a
real model.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

REAL_SOURCES = ("fsdd", "gcompris", "drumkits")
TASKS = ("T1-digit", "T4-drum")


@dataclass(frozen=True)
class DemoPlan:
    student: str = "usad-nano"
    minutes_per_domain: float = 2.0  # real audio per domain (speech, sound) in the corpus
    steps: int = 120
    max_minutes: float = 3.0  # the distillation stops here even if steps remain
    batch_size: int = 8
    crop_seconds: float = 3.0
    sound_teacher: bool = True
    rows_per_label: int = 12  # task clips kept per (split, label)
    seeds: int = 3
    latency_seconds: tuple[float, ...] = (1.0, 10.0)
    parity_seconds: tuple[float, ...] = (1.0, 3.7, 10.0)
    calibration_crops: int = 16
    memory: bool = True


FULL = DemoPlan()
QUICK = DemoPlan(minutes_per_domain=0.5, steps=6, max_minutes=0.5, batch_size=4, crop_seconds=2.0,
                 sound_teacher=False, rows_per_label=3, seeds=1, latency_seconds=(1.0,), parity_seconds=(1.0, 3.7),
                 calibration_crops=4, memory=False)


class Steps:
    """Numbered, timed steps with a headline each, for a reader who has never seen the project."""

    def __init__(self, console: Console, total: int):
        self.console, self.total, self.index, self.started = console, total, 0, time.perf_counter()
        self.timings: list[tuple[str, float]] = []
        self._start = self.started

    def begin(self, title: str, what: str) -> None:
        self.index += 1
        self._start, self._title = time.perf_counter(), title
        self.console.print(Panel(what, title=f"[bold]step {self.index}/{self.total}: {title}", title_align="left"))

    def end(self, summary: str) -> None:
        seconds = time.perf_counter() - self._start
        self.timings.append((self._title, seconds))
        self.console.print(f"[green]done[/] in {seconds:.0f} s: {summary}\n")


def _shared() -> Path:
    from usad.data.sources import SourcePaths

    return SourcePaths().shared


def build_corpus_step(plan: DemoPlan, out: Path) -> dict:
    from usad.data.corpus import build_corpus

    return build_corpus(out, plan.minutes_per_domain / 60, REAL_SOURCES, workers=2)  # refuses task val/test audio


def teacher_specs(plan: DemoPlan, out: Path, console: Console) -> list[dict]:
    whisper = _shared() / "teachers" / "whisper-tiny.en"
    if not (whisper / "config.json").is_file():
        raise FileNotFoundError(f"{whisper}: the Whisper tiny.en teacher is not there (see ../shared/README.md)")
    teachers = [{"name": "speech", "spec": f"whisper:{whisper}", "weight": 1.0}]
    if plan.sound_teacher:
        from usad.teachers import TeacherError, prepare

        try:
            path = out / "aisfx"
            if not (path / "model.safetensors").is_file():
                prepare("aisfx", path)  # pickled checkpoint -> safetensors, once
            teachers.append({"name": "sound", "spec": f"aisfx:{path}", "weight": 1.0})
        except TeacherError as err:
            console.print(f"[yellow]sound teacher skipped: {err}")
    return teachers


def write_recipe(plan: DemoPlan, teachers: list[dict], corpus: Path, path: Path) -> Path:
    import yaml

    recipe = {"student": {"preset": plan.student}, "teachers": teachers,
              "data": {"corpus": [str(corpus)], "crop_seconds": plan.crop_seconds, "workers": 2,
                       "domain_weights": {"speech": 1.0, "sound": 1.0, "music": 1.0}},
              "train": {"batch_size": plan.batch_size, "max_steps": plan.steps, "max_minutes": plan.max_minutes,
                        "warmup_steps": max(1, plan.steps // 10), "lr": 1.0e-3, "precision": "fp32",
                        "compile": False, "ckpt_every": plan.steps, "log_every": max(1, plan.steps // 20)}}
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def export_step(plan: DemoPlan, model_dir: Path, console: Console) -> bool:
    """ONNX fp32 + guarded INT8; returns whether the INT8 file was written."""
    from usad.export.pipeline import export_model_dir
    from usad.quantize import QuantizationRefused

    log = lambda message: console.print(f"  {message}", highlight=False)  # noqa: E731
    try:
        export_model_dir(model_dir, int8=True, parity_seconds=plan.parity_seconds, log=log,
                         calibration=[_shared() / "data"],
                         quantize_options={"calibration_crops": plan.calibration_crops,
                                           "heldout_crops": max(2, plan.calibration_crops // 2)})
        return True
    except QuantizationRefused as err:
        console.print(f"[yellow]INT8 refused by the accuracy guard, continuing with fp32 only: {err}")
        return False


def accuracy_step(plan: DemoPlan, model_dir: Path, out: Path) -> tuple[dict, dict]:
    from usad.bench.accuracy import run_accuracy
    from usad.bench.bench_all import accuracy_specs
    from usad.data.tasks import build_tasks

    audio = out / "tasks"
    build_tasks(audio, list(TASKS), limit_per_split=plan.rows_per_label)
    mapping = accuracy_specs([model_dir])
    baseline = f"random:{plan.student}"
    result = run_accuracy([*mapping, baseline], out / "accuracy", list(TASKS), audio, seeds=plan.seeds,
                          build_missing=False)
    return result, mapping


def latency_step(plan: DemoPlan, model_dir: Path, console: Console) -> dict:
    from usad.bench.latency import Grid, run_latency

    grid = Grid(seconds=plan.latency_seconds, formats=("torch-fp32", "onnx-fp32", "onnx-int8"), warmup=1,
                min_rounds=3, max_rounds=10, cell_budget_s=1.5, memory=plan.memory)
    return run_latency([str(model_dir)], grid, device="cpu", log=lambda m: console.print(m, highlight=False))


def results_table(report: dict, accuracy: dict, student: str) -> Table:
    """Float vs INT8 (vs the untrained network) on the two tasks, with speed, size and retention."""
    from usad.bench.combined_report import report_rows

    seconds = report["headline_cell"]["seconds"]
    baseline = f"random:{student}"
    table = Table(title=f"distilled {student} per format: probe accuracy on held-out "
                        f"speakers / kits, latency per {seconds:g} s clip", title_justify="left")
    for column in ("format", "MB", "ms", "RTF", *(t.replace("-", " ") for t in TASKS), "mean", "vs float"):
        table.add_column(column, justify="left" if column == "format" else "right")
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    for row in report_rows(report):
        tasks = row.tasks or {}
        table.add_row(row.format, fmt(row.file_bytes and row.file_bytes / 2**20, ".1f"),
                      fmt(row.median_ms, ".1f"), fmt(row.rtf, ".4f"), *(fmt(tasks.get(t), ".3f") for t in TASKS),
                      fmt(row.mean_score, ".3f"), fmt(row.retention, ".3f"))
    base = next((r for r in accuracy["models"] if r["spec"] == baseline), None)
    if base:
        table.add_row("untrained twin", "", "", "",
                      *(fmt((base["tasks"].get(t) or {}).get("score"), ".3f") for t in TASKS),
                      fmt(base["mean"], ".3f"), fmt(base["retention_mean"], ".3f"), style="dim")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="USAD-Edge end to end at small scale on this CPU.")
    parser.add_argument("--quick", action="store_true", help="CI form: about 2 minutes")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="working folder (git-ignored runs/)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    console = Console()
    if not (_shared() / "data").is_dir():
        console.print(f"[red]the demo reads real audio from {_shared() / 'data'}, which is not here "
                      "(set USAD_SHARED to the shared folder)")
        return 1
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    console.rule(f"[bold]USAD-Edge demo{' (quick)' if args.quick else ''}: distill, export, bench on "
                 f"{os.cpu_count()} CPU cores")
    steps = Steps(console, 5)

    steps.begin("corpus", f"Real recordings ({', '.join(REAL_SOURCES)}) from {_shared()}, "
                          f"{plan.minutes_per_domain:g} min per domain, cut and packed as shards. "
                          "Only the training side of each task is allowed in.")
    manifest = build_corpus_step(plan, out / "corpus")
    steps.end(f"{manifest['hours'] * 60:.1f} min of audio in {len(manifest['shards'])} shard(s); "
              "checked: no task val/test clip inside")

    steps.begin("distill", f"Student {plan.student} learns to predict the layers of frozen teachers (L1 + cosine "
                           f"loss through small heads), {plan.steps} steps of {plan.batch_size} x "
                           f"{plan.crop_seconds:g} s crops, at most {plan.max_minutes:g} min.")
    from usad.distill import distill, load_recipe

    teachers = teacher_specs(plan, out / "teachers", console)
    recipe = write_recipe(plan, teachers, out / "corpus", out / "recipe.yaml")
    model_dir = distill(load_recipe(recipe), out / "run")
    steps.end(f"model dir {model_dir} (recipe {recipe}); teachers: {', '.join(t['name'] for t in teachers)}")

    steps.begin("export", "ONNX fp32 (parity-checked against torch), then static INT8 calibrated on real audio, "
                          "kept only if its embeddings stay within the accuracy guard.")
    int8 = export_step(plan, model_dir, console)
    steps.end("model.onnx" + (" + model.int8.onnx" if int8 else " (no INT8)") + f" in {model_dir}")

    steps.begin("accuracy", f"Frozen-encoder probes on {' and '.join(TASKS)} ({plan.rows_per_label} clips per "
                            f"split and label, {plan.seeds} seed(s)); held-out speakers / drum kits at test.")
    accuracy, mapping = accuracy_step(plan, model_dir, out)
    steps.end(f"{len(accuracy['models'])} encoders scored; details in {out / 'accuracy' / 'accuracy.md'}")

    steps.begin("latency", "Every format timed side by side (interleaved rounds), with the FLOP floor of this "
                           "machine measured in the same run.")
    latency = latency_step(plan, model_dir, console)
    from usad.bench.combined_report import build_report, write_combined_report

    report = build_report(latency, accuracy, mapping)
    paths = write_combined_report(report, out / "report")
    steps.end(f"report {paths['md']}")

    console.print(results_table(report, accuracy, plan.student))
    console.print(f"untrained twin = {plan.student} with random weights ({'random:' + plan.student}): the floor "
                  "that distillation has to beat. vs float = mean score / the torch fp32 student's.")
    load = latency.get("load_before")
    console.print(f"Machine: {latency['machine']['cpu']}, {latency['machine']['cores']} cores, load average {load} "
                  "(other work on the machine slows every format alike: the rounds are interleaved).")
    console.print("Read it as: INT8 should keep the float scores (retention near 1) at a fraction of the size and "
                  "latency; the distilled student should beat its untrained twin. Minutes of audio make a weak "
                  "encoder: the real recipes are in configs/ (usad distill), the full bench is `usad bench all`.")
    total = time.perf_counter() - steps.started
    console.print(f"[bold]demo finished in {total / 60:.1f} min[/] ("
                  + ", ".join(f"{name} {s:.0f} s" for name, s in steps.timings) + f"); files under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
