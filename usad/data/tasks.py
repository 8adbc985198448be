"""``usad data tasks``: the labelled task suite T1-T10, each with an explicit held-out axis.

A task manifest (package data: ``usad/data/manifests/<name>.json``) lists rows: id, split, label,
source tokens, seconds and the sha256 of the clip's 16 kHz int16 samples, and for val/test rows the
interference plan of the noisy conditions with their sha256. ``make_manifests`` derives them from
the sources; ``build_tasks`` rebuilds the audio of a manifest as 16 kHz FLAC, clean and in every
condition, checks each clip's sha256 and reports (not raises on) missing sources and mismatches.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.progress import Progress

from usad.audio import AudioError, load_audio
from usad.config import SAMPLE_RATE
from usad.data import availability, events, melodies, mixing, task_rows, voices
from usad.data import interference as itf
from usad.data import sources as src
from usad.data import splits as sp

DOMAINS = ("speech content", "speech paralinguistic", "sound", "music")
MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"
NOISY_SPLITS = ("val", "test")


@dataclass(frozen=True)
class TaskSpec:
    """What a task is and how it is scored. kind: clip | frame | verification; metric: accuracy |
    eer | raw_pitch | event_f1; interference: domains mixed into its val/test clips."""

    kind: str
    metric: str
    domain: str
    real: bool
    label: str
    held_out: str
    about: str
    interference: tuple[str, ...]
    needs: tuple[str, ...]
    caps: dict = field(default_factory=dict)  # split -> most rows per label
    frame_hop: float | None = None  # seconds between probed frames (frame tasks)
    background: str | None = None  # class of frames outside every segment; None: not scored


_SPEECH_NOISE = ("music", "sound")
# Caps size the suite for usad-small at about 15 min on 2 idle cores (measured: 17 min of CPU time).
SCENE_CAPS = {"train": 100, "val": 30, "test": 60}
TASKS = {
    "T1-digit": TaskSpec("clip", "accuracy", "speech content", True, "digit", "speaker",
                         "spoken digit, 10-way, FSDD, speaker-held-out", _SPEECH_NOISE, ("fsdd",),
                         {"train": 60, "val": 20, "test": 30}),
    "T2-speaker": TaskSpec("clip", "accuracy", "speech paralinguistic", True, "speaker", "digit",
                           "speaker ID, 6-way, FSDD, trained on digits 0-5, tested on 8-9", _SPEECH_NOISE,
                           ("fsdd",), {"train": 80, "val": 30, "test": 40}),
    "T3-language": TaskSpec("clip", "accuracy", "speech paralinguistic", True, "lang", "item+dup_group",
                            "spoken language ID, GCompris letters/numbers/colours, item-disjoint, deduplicated; "
                            "language is mostly confounded with speaker", _SPEECH_NOISE, ("gcompris",),
                            {"train": 12, "val": 4, "test": 8}),
    "T4-drum": TaskSpec("clip", "accuracy", "sound", True, "class", "kit",
                        "drum/percussion class, Hydrogen kits + Sonic Pi, kit-disjoint", ("speech", "music"),
                        ("drumkits", "sonic-pi")),
    "T5-instrument": TaskSpec("clip", "accuracy", "music", False, "family", "soundfont",
                              "instrument family of rendered notes, soundfont-disjoint (pitch also labelled)",
                              ("speech", "sound"), ("fluidsynth", *task_rows.T5_SOUNDFONTS), {"test": 20}),
    "T6-vad": TaskSpec("frame", "accuracy", "speech content", False, "speech", "speaker/item/kit/soundfont",
                       "frame voice activity of real speech placed into noise, drums or music at known times",
                       _SPEECH_NOISE, ("fsdd", "gcompris", "drumkits", "fluidsynth", *task_rows.T5_SOUNDFONTS),
                       SCENE_CAPS, frame_hop=0.08, background="non-speech"),
    "T7-phrase": TaskSpec("clip", "accuracy", "speech content", True, "phrase", "voice pack (actor)",
                          "spoken game phrase (~45 classes) of Hedgewars voice actors; 4 training packs, "
                          "tested on 4 unseen actors", _SPEECH_NOISE, ("hedgewars-voices",)),
    "T8-verification": TaskSpec("verification", "eer", "speech paralinguistic", True, "speaker", "speaker",
                                "speaker verification, trials within Hedgewars, GCompris and FSDD among "
                                "speakers never seen in training; scored 1 - EER", _SPEECH_NOISE,
                                ("hedgewars-voices", "fsdd", "gcompris")),
    "T9-events": TaskSpec("frame", "event_f1", "sound", False, "class", "kit",
                          "percussion event detection: real drum hits at known onsets in 4 s scenes, 6 classes, "
                          "event F1 with a 100 ms onset collar", ("speech", "music"), ("drumkits", "sonic-pi"),
                          SCENE_CAPS, frame_hop=0.04, background="none"),
    "T10-f0": TaskSpec("frame", "raw_pitch", "music", False, "midi", "tune+soundfont",
                       "f0 of monophonic tunes (music21 ryansMammoth) on real instrument samples, raw pitch "
                       "accuracy within 50 cents on voiced frames", ("speech", "sound"),
                       ("fluidsynth", "music21", *sorted(set(melodies.SOUNDFONTS.values()))),
                       {"train": 60, "val": 20, "test": 40}, frame_hop=0.04),
}


def manifest_dir() -> Path:
    """The committed manifests, shipped as package data of ``usad.data``."""
    return MANIFEST_DIR


def pcm_sha256(audio: np.ndarray) -> str:
    """Hash of the clip as 16-bit PCM, the form it is stored in; independent of the FLAC encoder."""
    return hashlib.sha256(_to_int16(audio).tobytes()).hexdigest()


def _to_int16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(audio * 32767.0), -32768, 32767).astype("<i2")


# ---------------------------------------------------------------- manifests
def _task_rows(paths: src.SourcePaths, wanted: set[str]) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    if wanted & {"T1-digit", "T6-vad"}:
        rows["T1-digit"] = task_rows.fsdd_rows(paths, "speaker")
    if "T2-speaker" in wanted:
        rows["T2-speaker"] = task_rows.fsdd_rows(paths, "digit")
    if wanted & {"T3-language", "T6-vad"}:
        rows["T3-language"] = task_rows.gcompris_rows(paths)
    if wanted & {"T4-drum", "T6-vad", "T9-events"}:
        rows["T4-drum"] = task_rows.drum_rows(paths)
    if wanted & {"T5-instrument", "T6-vad"}:
        rows["T5-instrument"] = task_rows.note_rows(paths)
    if "T6-vad" in wanted:
        rows["T6-vad"] = task_rows.scene_rows(paths, rows["T1-digit"] + rows["T3-language"], rows["T4-drum"],
                                              rows["T5-instrument"])
    if "T7-phrase" in wanted:
        rows["T7-phrase"] = voices.phrase_rows(paths)
    if "T8-verification" in wanted:
        rows["T8-verification"] = voices.speaker_rows(paths)
    if "T9-events" in wanted:
        rows["T9-events"] = events.event_rows(paths, rows["T4-drum"])
    if "T10-f0" in wanted:
        rows["T10-f0"] = melodies.melody_rows(paths)
    return rows


def make_manifests(paths: src.SourcePaths | None = None, tasks: list[str] | None = None) -> dict[str, dict]:
    """Derive every task's manifest (without sha256, which the build fills) from the sources."""
    paths = paths or src.SourcePaths()
    wanted = tasks or list(TASKS)
    rows = _task_rows(paths, set(wanted))
    manifests = {}
    for name in wanted:
        spec, kept = TASKS[name], task_rows.capped(rows[name], TASKS[name].caps)
        for r in kept:
            if r["split"] in NOISY_SPLITS:
                r["interference"] = {"domains": list(spec.interference)}  # the plan needs the clip's length
        manifests[name] = _manifest(name, kept)
    return manifests


def _classes(name: str, rows: list[dict]) -> list[str]:
    spec = TASKS[name]
    if spec.kind != "frame":
        return sorted({r["label"] for r in rows})
    labels = sorted({seg[2] for r in rows for seg in r["segments"]}, key=lambda c: (len(c), c))
    return ([spec.background] if spec.background else []) + labels


def _manifest(name: str, rows: list[dict]) -> dict:
    rows = sorted(rows, key=lambda r: r["id"])
    info = {k: v for k, v in asdict(TASKS[name]).items() if k not in ("caps", "needs")}
    return {"task": name, **info, "classes": _classes(name, rows), "sample_rate": SAMPLE_RATE, "rows": rows}


def load_manifest(name: str, directory: str | Path | None = None) -> dict:
    path = Path(directory or manifest_dir()) / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no task manifest (run `usad data tasks --regenerate`)")
    return json.loads(path.read_text())


def write_manifest(manifest: dict, directory: str | Path) -> Path:
    path = Path(directory) / f"{manifest['task']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=0, sort_keys=True, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------- audio
def row_audio(paths: src.SourcePaths, row: dict, rows: list[dict]) -> np.ndarray:
    """A row's clean clip; ``rows``: every row of its manifest (melodies are rendered together)."""
    kind = row["id"].split(":", 1)[0]
    load = lambda item_id: _item_audio(paths, item_id)
    if kind == "note":
        s = row["spec"]
        return mixing.note_audio(paths, s["soundfont"], s["family"], s["program"], s["pitch"])
    if kind == "scene":
        return mixing.scene_audio(paths, row["spec"], load)
    if kind == "events":
        return events.event_scene_audio(row["spec"], load)
    if kind == "melody":
        return melodies.melody_audio(paths, row["spec"], rows)
    return _item_audio(paths, row["id"])


def _item_audio(paths, item_id: str) -> np.ndarray:
    if item_id.startswith("note:"):
        font, program, pitch = item_id[len("note:"):].rsplit(":", 2)
        family = next(f for f, (programs, _) in mixing.FAMILIES.items() if int(program) in programs)
        return mixing.note_audio(paths, font, family, int(program), int(pitch))
    if item_id.startswith("hedgewars-voices:"):
        return load_audio(paths.games / item_id.split(":", 1)[1])
    return mixing.load_file_item(paths, item_id)


def clip_path(out: str | Path, task: str, row_id: str, condition: str = "clean") -> Path:
    folder = Path(out) / task if condition == "clean" else Path(out) / task / condition
    return folder / (row_id.replace(":", "__").replace("/", "__") + ".flac")


def _write_clip(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, _to_int16(audio), SAMPLE_RATE, subtype="PCM_16", format="FLAC")


def _check(row: dict, key: str, audio: np.ndarray, regenerate: bool, problems: list[str], what: str) -> None:
    digest = pcm_sha256(audio)
    if regenerate:
        row[key] = digest
    elif row.get(key) != digest:
        problems.append(f"{row['id']}: {what} audio differs from the manifest (sha256 {digest[:12]})")


def _build_row(paths, row: dict, rows: list[dict], out: Path, name: str, regenerate: bool,
               noisy_splits: tuple[str, ...], problems: list[str]) -> None:
    audio = row_audio(paths, row, rows)
    _check(row, "sha256", audio, regenerate, problems, "clean")
    if regenerate:
        row["seconds"] = round(audio.size / SAMPLE_RATE, 4)
    _write_clip(clip_path(out, name, row["id"]), audio)
    if row["split"] not in noisy_splits:
        return
    plan = row.get("interference")
    if plan is None or "pieces" not in plan:  # a training row (mixtures on request) or a fresh manifest
        domains = tuple((plan or {}).get("domains") or TASKS[name].interference)
        plan = itf.row_plan(paths, domains, row["id"], row["split"], audio.size / SAMPLE_RATE)
        if row["split"] in NOISY_SPLITS:
            row["interference"] = plan
            row["sources"] = sorted({*row["sources"], *itf.tokens(plan)})
    bed = itf.plan_audio(paths, plan, audio.size)
    for condition, snr in itf.CONDITIONS.items():
        noisy = mixing.mix_at_snr(audio, bed, snr)
        if row["split"] in NOISY_SPLITS:
            _check(row, f"sha256_{condition}", noisy, regenerate, problems, condition)
        _write_clip(clip_path(out, name, row["id"], condition), noisy)


def build_tasks(out: str | Path, tasks: list[str] | None = None, paths: src.SourcePaths | None = None,
                regenerate: bool = False, limit_per_split: int | None = None,
                manifests: str | Path | None = None, noisy: bool = True, train_mixtures: bool = False) -> dict:
    """Write each task's audio under ``out/<task>/`` (conditions in ``out/<task>/<condition>/``) and its
    manifest as ``out/<task>.json``.

    regenerate: derive manifests from the sources (and fill sha256) instead of reading the
    committed ones; limit_per_split: keep N rows of each (split, label) for CI subsets; noisy: build
    the val/test clips of every condition; train_mixtures: also the training clips (unchecked).
    Returns per task {"rows", "problems", "missing", "noisy_missing"}: missing sources (of the task, or of
    the interference: then only clean clips are built) and mismatches, not fatal.
    """
    paths = paths or src.SourcePaths()
    names = tasks or list(TASKS)
    unknown = set(names) - set(TASKS)
    if unknown:
        raise ValueError(f"unknown tasks {sorted(unknown)}; choose from {list(TASKS)}")
    report = {}
    with Progress() as progress:
        for name in names:
            spec = TASKS[name]
            absent = availability.missing(paths, spec.needs)
            if absent:
                report[name] = {"rows": 0, "problems": [absent], "missing": absent, "noisy_missing": None}
                continue
            # Without the interference recordings the clean clips are still built.
            noisy_missing = availability.missing(paths, availability.INTERFERENCE_NEEDS) if noisy else None
            task_noisy = noisy and not noisy_missing
            manifest = make_manifests(paths, [name])[name] if regenerate else load_manifest(name, manifests)
            rows = _limit(manifest["rows"], limit_per_split)
            splits = (*NOISY_SPLITS, "train") if train_mixtures else NOISY_SPLITS
            bar = progress.add_task(name, total=len(rows))
            problems, kept = [], []
            for row in rows:
                progress.advance(bar)
                try:
                    _build_row(paths, row, manifest["rows"], Path(out), name, regenerate,
                               splits if task_noisy else (), problems)
                except (AudioError, OSError, ValueError, RuntimeError) as err:
                    problems.append(f"{row['id']}: {err}")
                    continue
                kept.append(row)
            built = {"conditions": list(itf.CONDITIONS) if task_noisy else [],
                     "noisy_splits": list(splits) if task_noisy else [], "noisy_missing": noisy_missing}
            write_manifest({**manifest, "rows": kept, "problems": problems, "built": built}, out)
            report[name] = {"rows": len(kept), "problems": problems, "missing": None, "noisy_missing": noisy_missing}
    return report


def _limit(rows: list[dict], limit: int | None) -> list[dict]:
    if limit is None:
        return rows
    seen: Counter = Counter()
    kept = []
    for row in rows:
        key = (row["split"], row["label"])
        if seen[key] < limit:
            seen[key] += 1
            kept.append(row)
    return kept


# ---------------------------------------------------------------- reading
def held_out_tokens(directory: str | Path | None = None) -> dict[str, set[str]]:
    """Source tokens of every task's val and test rows (interference included), from the committed
    (or given) manifests."""
    held = {}
    for path in sorted(Path(directory or manifest_dir()).glob("T*.json")):
        manifest = json.loads(path.read_text())
        held[manifest["task"]] = {t for r in manifest["rows"] if r["split"] != "train" for t in r["sources"]}
    return held


def frame_targets(manifest: dict, row: dict, times: np.ndarray) -> np.ndarray:
    """(K,) class index per probe time: the segment's label, else the background class (-1 where
    the task scores no background, as f0 scores voiced frames only)."""
    classes = {c: i for i, c in enumerate(manifest["classes"])}
    background = manifest.get("background")
    labels = np.full(times.size, classes[background] if background else -1, np.int64)
    for start, end, *label in row["segments"]:
        labels[(times >= start) & (times < end)] = classes[label[0] if label else manifest["classes"][-1]]
    return labels


def summarize(manifest: dict) -> dict:
    """Rows and seconds per split, and class counts per split."""
    out = {}
    for split in sp.SPLITS:
        rows = [r for r in manifest["rows"] if r["split"] == split]
        out[split] = {"rows": len(rows), "seconds": round(sum(r.get("seconds", 0) for r in rows), 1),
                      "classes": dict(sorted(Counter(r["label"] for r in rows).items()))}
    return out
