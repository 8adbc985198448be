"""Rows of the first tasks (T1-T6) from their sources, each on the side that ``splits`` gives it.

A row: id, split, label, source tokens, the labels its held-out axis is read from, and for generated
audio a ``spec`` that rebuilds it. Frame tasks carry ``segments`` [[start_s, end_s, label], ...].
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from usad.data import mixing
from usad.data import sources as src
from usad.data import splits as sp

T5_SOUNDFONTS = ("FluidR3Mono_GM.sf3", "TimGM6mb.sf2")  # train, test: the two that `make system-deps` installs
T6_SCENES = {"train": 160, "val": 40, "test": 80}
MIN_LANGUAGE_CLIPS = 40


def row(item_id, split, label, tokens, spec=None, **labels) -> dict:
    out = {"id": item_id, "split": split, "label": label, "sources": sorted(tokens), **labels}
    if spec is not None:
        out["spec"] = spec
    return out


def capped(rows: list[dict], caps: dict[str, int] | None) -> list[dict]:
    """At most caps[split] rows per (split, label), picked in a hashed order (so every speaker or kit
    of a split keeps its share), returned in the input order."""
    if not caps:
        return rows
    seen: Counter = Counter()
    keep = set()
    for r in sorted(rows, key=lambda r: sp.stable_fraction(f"cap:{r['id']}")):
        if seen[(r["split"], r["label"])] < caps.get(r["split"], len(rows)):
            seen[(r["split"], r["label"])] += 1
            keep.add(r["id"])
    return [r for r in rows if r["id"] in keep]


def fsdd_rows(paths, by: str) -> list[dict]:
    rows = []
    for item in src.fsdd_items(paths):
        lab = item.labels
        split = sp.FSDD_SPEAKER_SPLIT[lab["speaker"]] if by == "speaker" else sp.FSDD_DIGIT_SPLIT[lab["digit"]]
        label = str(lab["digit"]) if by == "speaker" else lab["speaker"]
        rows.append(row(item.id, split, label, item.tokens, speaker=lab["speaker"], digit=lab["digit"]))
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


def gcompris_rows(paths) -> list[dict]:
    items = gcompris_dedup(src.gcompris_items(paths))
    counts = Counter(i.labels["lang"] for i in items)
    rows = []
    for item in items:
        lab = item.labels
        if counts[lab["lang"]] >= MIN_LANGUAGE_CLIPS:
            rows.append(row(item.id, sp.gcompris_item_split(lab["item"]), lab["lang"], item.tokens,
                            item=lab["item"], speaker=lab["speaker"], dup_group=lab["dup_group"]))
    return rows


def drum_rows(paths) -> list[dict]:
    return [row(i.id, sp.drum_kit_split(i.labels["kit"]), i.labels["class"], i.tokens,
                kit=i.labels["kit"], instrument=i.labels["instrument"])
            for i in src.drum_items(paths) if i.labels["class"] is not None]


def note_rows(paths) -> list[dict]:
    rows = []
    for font in T5_SOUNDFONTS:
        split = sp.soundfont_split(font)
        for family, (programs, pitches) in mixing.FAMILIES.items():
            for program in programs:
                for k, pitch in enumerate(pitches):
                    row_split = "val" if split == "train" and k % 5 == 2 else split
                    tokens = [f"note:{font}:{program}:{pitch}"] + ([f"soundfont:{font}"] if split == "test" else [])
                    rows.append(row(f"note:{font}:{program}:{pitch}", row_split, family, tokens,
                                    spec={"soundfont": font, "family": family, "program": program, "pitch": pitch},
                                    soundfont=font, pitch=pitch))
    return rows


def scene_rows(paths, speech_rows: list[dict], drum: list[dict], notes: list[dict]) -> list[dict]:
    """T6 scenes drawn per split from the same split of the speech, drum and note rows."""
    rows = []
    rng = np.random.default_rng(6)
    durations = {}
    for split, count in T6_SCENES.items():
        speech = [r for r in speech_rows if r["split"] == split]
        beds = {"drums": [r for r in drum if r["split"] == split], "music": [r for r in notes if r["split"] == split]}
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
                segments.append([start, round(start + length, 4), "speech"])
                tokens.update(r["sources"])
                cursor = start + length + float(rng.uniform(0.1, 0.7))
            spec = {"background": background, "speech": placed, "snr_db": round(float(rng.uniform(-5, 20)), 1)}
            rows.append(row(f"scene:{split}:{n:04d}", split, "frames", tokens, spec=spec, segments=segments))
    return rows
