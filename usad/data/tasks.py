"""``usad data tasks``: the labelled task suite T1-T6 with explicit held-out axes.

A task manifest (committed under ``bench/tasks/<name>.json``) lists rows: id, split, label,
source tokens, seconds and the sha256 of the clip's 16 kHz int16 samples. ``make_manifests``
derives them from the sources; ``build_tasks`` rebuilds the audio of a manifest as 16 kHz FLAC and
checks every clip's sha256, reporting (not raising on) missing sources and mismatches.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.progress import Progress

from usad.audio import SAMPLE_RATE, AudioError
from usad.data import mixing
from usad.data import sources as src
from usad.data import splits as sp

TASKS = {  # name -> what it is; the held-out axis is the one its splits are made on
    "T1-digit": {"kind": "clip", "real": True, "label": "digit", "held_out": "speaker",
                 "about": "spoken digit, 10-way, FSDD, speaker-held-out"},
    "T2-speaker": {"kind": "clip", "real": True, "label": "speaker", "held_out": "digit",
                   "about": "speaker ID, 6-way, FSDD, trained on digits 0-5, tested on 8-9"},
    "T3-language": {"kind": "clip", "real": True, "label": "lang", "held_out": "item+dup_group",
                    "about": "spoken language ID, GCompris letters/numbers/colours, item-disjoint, "
                             "deduplicated; language is mostly confounded with speaker"},
    "T4-drum": {"kind": "clip", "real": True, "label": "class", "held_out": "kit",
                "about": "drum/percussion class, Hydrogen kits + Sonic Pi, kit-disjoint"},
    "T5-instrument": {"kind": "clip", "real": False, "label": "family", "held_out": "soundfont",
                      "about": "instrument family of rendered notes, soundfont-disjoint (pitch also labelled)"},
    "T6-vad": {"kind": "frame", "real": False, "label": "speech", "held_out": "speaker/item/kit/soundfont",
               "about": "frame voice activity of real speech placed into noise, drums or music at known times"},
}
T5_SOUNDFONTS = ("FluidR3Mono_GM.sf3", "TimGM6mb.sf2")  # train, test: the two that `make system-deps` installs
T6_SCENES = {"train": 240, "val": 80, "test": 160}
MIN_LANGUAGE_CLIPS = 40


def manifest_dir() -> Path:
    """The committed manifests: ``bench/tasks/`` in the repo, ``usad/bench/tasks/`` when installed."""
    import usad.bench

    return Path(usad.bench.__file__).resolve().parent / "tasks"


def pcm_sha256(audio: np.ndarray) -> str:
    """Hash of the clip as 16-bit PCM, the form it is stored in; independent of the FLAC encoder."""
    return hashlib.sha256(_to_int16(audio).tobytes()).hexdigest()


def _to_int16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(audio * 32767.0), -32768, 32767).astype("<i2")


# ---------------------------------------------------------------- rows per task
def _row(item_id, split, label, tokens, spec=None, **labels) -> dict:
    row = {"id": item_id, "split": split, "label": label, "sources": sorted(tokens), **labels}
    if spec is not None:
        row["spec"] = spec
    return row


def _fsdd_rows(paths, by: str) -> list[dict]:
    rows = []
    for item in src.fsdd_items(paths):
        lab = item.labels
        split = sp.FSDD_SPEAKER_SPLIT[lab["speaker"]] if by == "speaker" else sp.FSDD_DIGIT_SPLIT[lab["digit"]]
        label = str(lab["digit"]) if by == "speaker" else lab["speaker"]
        rows.append(_row(item.id, split, label, item.tokens, speaker=lab["speaker"], digit=lab["digit"]))
    return rows


def gcompris_dedup(items: list[src.Item]) -> list[src.Item]:
    """One file per dup_group; groups whose copies carry different languages are dropped (the same
    recording labelled hi and ur, or ru/th/zh_CN, has no true language label)."""
    groups = defaultdict(list)
    for item in items:
        groups[item.labels["dup_group"] or item.id].append(item)
    kept = []
    for members in groups.values():
        if len({m.labels["lang"] for m in members}) == 1:
            kept.append(min(members, key=lambda m: m.id))
    return sorted(kept, key=lambda m: m.id)


def _gcompris_rows(paths) -> list[dict]:
    items = gcompris_dedup(src.gcompris_items(paths))
    counts = Counter(i.labels["lang"] for i in items)
    rows = []
    for item in items:
        lab = item.labels
        if counts[lab["lang"]] >= MIN_LANGUAGE_CLIPS:
            rows.append(_row(item.id, sp.gcompris_item_split(lab["item"]), lab["lang"], item.tokens,
                             item=lab["item"], speaker=lab["speaker"], dup_group=lab["dup_group"]))
    return rows


def _drum_rows(paths) -> list[dict]:
    return [_row(i.id, sp.drum_kit_split(i.labels["kit"]), i.labels["class"], i.tokens,
                 kit=i.labels["kit"], instrument=i.labels["instrument"])
            for i in src.drum_items(paths) if i.labels["class"] is not None]


def _note_rows(paths) -> list[dict]:
    rows = []
    for font in T5_SOUNDFONTS:
        split = sp.soundfont_split(font)
        for family, (programs, pitches) in mixing.FAMILIES.items():
            for program in programs:
                for k, pitch in enumerate(pitches):
                    row_split = "val" if split == "train" and k % 5 == 2 else split
                    tokens = [f"note:{font}:{program}:{pitch}"] + ([f"soundfont:{font}"] if split == "test" else [])
                    rows.append(_row(f"note:{font}:{program}:{pitch}", row_split, family, tokens,
                                     spec={"soundfont": font, "family": family, "program": program, "pitch": pitch},
                                     soundfont=font, pitch=pitch))
    return rows


def _scene_rows(paths, speech_rows: list[dict], drum_rows: list[dict], note_rows: list[dict]) -> list[dict]:
    """T6 scenes drawn per split from the same split of the speech, drum and note rows."""
    rows = []
    rng = np.random.default_rng(6)
    durations = {}
    for split, count in T6_SCENES.items():
        speech = [r for r in speech_rows if r["split"] == split]
        beds = {"drums": [r for r in drum_rows if r["split"] == split],
                "music": [r for r in note_rows if r["split"] == split]}
        for n in range(count):
            kind = ("white", "pink", "brown", "drums", "music")[rng.integers(5)]
            background = {"kind": kind}
            tokens = set()
            if kind in beds:
                picks = [beds[kind][rng.integers(len(beds[kind]))] for _ in range(rng.integers(3, 9))]
                background["items"] = [[r["id"], round(float(rng.uniform(0, mixing.SCENE_SECONDS - 0.5)), 3)]
                                       for r in picks]
                tokens.update(t for r in picks for t in r["sources"])
            else:
                background["seed"] = int(rng.integers(1 << 30))
            placed, segments = [], []
            cursor = float(rng.uniform(0.0, 0.8))
            wanted = 0 if rng.random() < 0.1 else int(rng.integers(2, 9))  # about half the frames speech
            for _ in range(wanted):
                r = speech[rng.integers(len(speech))]
                if r["id"] not in durations:
                    durations[r["id"]] = mixing.utterance_seconds(mixing.load_file_item(paths, r["id"]))
                length = durations[r["id"]]
                if cursor + length > mixing.SCENE_SECONDS:
                    break
                start = round(cursor, 3)
                placed.append([r["id"], start])
                segments.append([start, round(start + length, 4)])
                tokens.update(r["sources"])
                cursor = start + length + float(rng.uniform(0.1, 0.7))
            spec = {"background": background, "speech": placed, "snr_db": round(float(rng.uniform(-5, 20)), 1)}
            rows.append(_row(f"scene:{split}:{n:04d}", split, "frames", tokens, spec=spec, segments=segments))
    return rows


def make_manifests(paths: src.SourcePaths | None = None, tasks: list[str] | None = None) -> dict[str, dict]:
    """Derive every task's manifest (without sha256, which the build fills) from the sources."""
    paths = paths or src.SourcePaths()
    wanted = tasks or list(TASKS)
    rows: dict[str, list[dict]] = {}
    if {"T1-digit", "T6-vad"} & set(wanted):
        rows["T1-digit"] = _fsdd_rows(paths, "speaker")
    if "T2-speaker" in wanted:
        rows["T2-speaker"] = _fsdd_rows(paths, "digit")
    if {"T3-language", "T6-vad"} & set(wanted):
        rows["T3-language"] = _gcompris_rows(paths)
    if {"T4-drum", "T6-vad"} & set(wanted):
        rows["T4-drum"] = _drum_rows(paths)
    if {"T5-instrument", "T6-vad"} & set(wanted):
        rows["T5-instrument"] = _note_rows(paths)
    if "T6-vad" in wanted:
        rows["T6-vad"] = _scene_rows(paths, rows["T1-digit"] + rows["T3-language"], rows["T4-drum"],
                                     rows["T5-instrument"])
    return {name: _manifest(name, rows[name]) for name in wanted}


def _manifest(name: str, rows: list[dict]) -> dict:
    rows = sorted(rows, key=lambda r: r["id"])
    info = TASKS[name]
    classes = sorted({r["label"] for r in rows}) if info["kind"] == "clip" else ["non-speech", "speech"]
    return {"task": name, **info, "classes": classes, "sample_rate": SAMPLE_RATE, "rows": rows}


# ---------------------------------------------------------------- audio
def row_audio(paths: src.SourcePaths, row: dict) -> np.ndarray:
    if row["id"].startswith("note:"):
        s = row["spec"]
        return mixing.note_audio(paths, s["soundfont"], s["family"], s["program"], s["pitch"])
    if row["id"].startswith("scene:"):
        return mixing.scene_audio(paths, row["spec"], lambda item_id: _item_audio(paths, item_id))
    return mixing.load_file_item(paths, row["id"])


def _item_audio(paths, item_id: str) -> np.ndarray:
    if item_id.startswith("note:"):
        font, program, pitch = item_id[len("note:"):].rsplit(":", 2)
        family = next(f for f, (programs, _) in mixing.FAMILIES.items() if int(program) in programs)
        return mixing.note_audio(paths, font, family, int(program), int(pitch))
    return mixing.load_file_item(paths, item_id)


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


def clip_path(out: str | Path, task: str, row_id: str) -> Path:
    return Path(out) / task / (row_id.replace(":", "__").replace("/", "__") + ".flac")


def build_tasks(out: str | Path, tasks: list[str] | None = None, paths: src.SourcePaths | None = None,
                regenerate: bool = False, limit_per_split: int | None = None,
                manifests: str | Path | None = None) -> dict[str, dict]:
    """Write each task's audio under ``out/<task>/`` and its manifest as ``out/<task>.json``.

    regenerate: derive manifests from the sources (and fill sha256) instead of reading the
    committed ones; limit_per_split: keep the first N rows of each (split, label) for CI subsets.
    Returns per task {"rows", "problems"}: missing sources and sha256 mismatches, not fatal.
    """
    paths = paths or src.SourcePaths()
    names = tasks or list(TASKS)
    unknown = set(names) - set(TASKS)
    if unknown:
        raise ValueError(f"unknown tasks {sorted(unknown)}; choose from {list(TASKS)}")
    plans = make_manifests(paths, names) if regenerate else {n: load_manifest(n, manifests) for n in names}
    report = {}
    with Progress() as progress:
        for name, manifest in plans.items():
            rows = _limit(manifest["rows"], limit_per_split)
            bar = progress.add_task(name, total=len(rows))
            problems, kept = [], []
            for row in rows:
                progress.advance(bar)
                try:
                    audio = row_audio(paths, row)
                except (AudioError, OSError, ValueError, RuntimeError) as err:
                    problems.append(f"{row['id']}: {err}")
                    continue
                digest = pcm_sha256(audio)
                if regenerate:
                    row["sha256"], row["seconds"] = digest, round(audio.size / SAMPLE_RATE, 4)
                elif row.get("sha256") != digest:
                    problems.append(f"{row['id']}: audio differs from the manifest (sha256 {digest[:12]})")
                path = clip_path(out, name, row["id"])
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, _to_int16(audio), SAMPLE_RATE, subtype="PCM_16", format="FLAC")
                kept.append(row)
            write_manifest({**manifest, "rows": kept, "problems": problems}, out)
            report[name] = {"rows": len(kept), "problems": problems}
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


def held_out_tokens(directory: str | Path | None = None) -> dict[str, set[str]]:
    """Source tokens of every task's val and test rows, from the committed (or given) manifests."""
    directory = Path(directory or manifest_dir())
    held = {}
    for path in sorted(directory.glob("T*.json")):
        manifest = json.loads(path.read_text())
        held[manifest["task"]] = {t for r in manifest["rows"] if r["split"] != "train" for t in r["sources"]}
    return held


def summarize(manifest: dict) -> dict:
    """Rows and seconds per split, and class counts per split."""
    out = {}
    for split in sp.SPLITS:
        rows = [r for r in manifest["rows"] if r["split"] == split]
        out[split] = {"rows": len(rows), "seconds": round(sum(r.get("seconds", 0) for r in rows), 1),
                      "classes": dict(sorted(Counter(r["label"] for r in rows).items()))}
    return out
