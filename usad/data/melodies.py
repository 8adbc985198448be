"""T10: frame-level f0 of monophonic melodies played on real instrument samples.

Tunes of music21's ``ryansMammoth`` collection (reserved for tasks: ``splits.TASK_SCORE_COLLECTIONS``),
each transposed into a pitch range and rendered with fluidsynth on one General MIDI instrument.
Held out: the tune (``splits.melody_split``) and the sample set: train/val melodies sound through
FluidR3Mono, test melodies through TimGM6mb. Labels: the sounding MIDI note per frame from the score
(segments [onset_s, offset_s, midi]); raw pitch accuracy scores voiced frames within 50 cents.
The notes are stored in the manifest, so rebuilding needs fluidsynth and the soundfont, not music21.
"""

from __future__ import annotations

import numpy as np

from usad.data import mixing
from usad.data import splits as sp
from usad.data.task_rows import row

COLLECTION = "ryansMammoth"
COUNTS = {"train": 100, "val": 30, "test": 60}
SOUNDFONTS = {"train": "FluidR3Mono_GM.sf3", "val": "FluidR3Mono_GM.sf3", "test": "TimGM6mb.sf2"}
PROGRAMS = (40, 73, 71, 56, 68, 65, 0, 24, 22, 74)  # violin, flute, clarinet, trumpet, oboe, alto sax,
#                                                      piano, nylon guitar, harmonica, recorder
MELODY_SECONDS = 5.0
SLOT_SECONDS = MELODY_SECONDS + 2.5  # room for the last release before the next melody
QUARTER_SECONDS = 0.5
MEDIAN_PITCH = (50, 76)  # each tune is moved so its median note lands here: pitches ~40-88


def _tune_notes(path) -> list[list] | None:
    """[[onset_s, duration_s, midi], ...] of a tune's first MELODY_SECONDS; None for a tune with chords."""
    from music21 import converter

    notes = []
    for n in converter.parse(path).flatten().stripTies().notesAndRests:
        if n.isChord:
            return None
        onset, length = float(n.offset) * QUARTER_SECONDS, float(n.quarterLength) * QUARTER_SECONDS
        if n.isNote and length > 0 and onset < MELODY_SECONDS:
            notes.append([round(onset, 4), round(min(length, MELODY_SECONDS - onset), 4), int(n.pitch.midi)])
    return notes if len(notes) >= 6 else None


def melody_rows(paths) -> list[dict]:
    from music21 import corpus

    rows, slots = [], {font: 0 for font in SOUNDFONTS.values()}
    wanted = dict(COUNTS)
    for path in sorted(corpus.getComposer(COLLECTION), key=lambda p: sp.stable_fraction(f"tune:{p.name}")):
        score_id = f"{COLLECTION}/{path.name}"
        split = sp.melody_split(score_id)
        if not wanted[split]:
            continue
        notes = _tune_notes(path)
        if notes is None:
            continue
        wanted[split] -= 1
        rng = np.random.default_rng(int(sp.stable_fraction(f"render:{score_id}") * 2 ** 48))
        shift = int(rng.integers(*MEDIAN_PITCH)) - int(np.median([m for _, _, m in notes]))
        notes = [[onset, length, midi + shift] for onset, length, midi in notes]
        font = SOUNDFONTS[split]
        spec = {"soundfont": font, "slot": slots[font], "program": int(PROGRAMS[rng.integers(len(PROGRAMS))]),
                "notes": notes}
        slots[font] += 1
        tokens = [f"score:{score_id}"] + ([f"soundfont:{font}"] if split == "test" else [])
        rows.append(row(f"melody:{path.stem}", split, "frames", tokens, spec=spec, score=score_id,
                        segments=[[onset, round(onset + length, 4), str(midi)] for onset, length, midi in notes]))
        if not any(wanted.values()):
            break
    return rows


def melody_audio(paths, spec: dict, rows: list[dict]) -> np.ndarray:
    """One melody, cut from the render of every melody of the manifest on the same soundfont."""
    font = spec["soundfont"]
    specs = sorted((r["spec"] for r in rows if r["spec"]["soundfont"] == font), key=lambda s: s["slot"])
    events = tuple((s["slot"] * SLOT_SECONDS + onset, length, 0, s["program"], midi, 90)
                   for s in specs for onset, length, midi in s["notes"])
    render = mixing.rendered(mixing.soundfont_path(paths, font), events)
    return mixing.cut(render, spec["slot"] * SLOT_SECONDS, MELODY_SECONDS)
