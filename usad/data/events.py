"""T9: frame-level percussion events with onsets. Real drum hits (the T4 rows, so kits are held out
as in T4) placed one after another at known times in 4 s scenes; each event is labelled with its
class from its onset until its sound has decayed (``mixing.trim_silence``), at most EVENT_SECONDS.
The mixture is synthetic, every sound in it a real recording.
"""

from __future__ import annotations

import numpy as np

from usad.config import SAMPLE_RATE
from usad.data import mixing
from usad.data.task_rows import row

SCENES = {"train": 160, "val": 40, "test": 80}
SCENE_SECONDS = 4.0
EVENT_SECONDS = 0.5
GAP_SECONDS = (0.05, 0.4)
GAIN_DB = (-9.0, 0.0)


def event_rows(paths, drum_rows: list[dict]) -> list[dict]:
    """Scenes drawn per split from that split's drum rows."""
    rng = np.random.default_rng(9)
    lengths: dict[str, int] = {}
    rows = []
    for split, count in SCENES.items():
        pool = [r for r in drum_rows if r["split"] == split]
        for n in range(count):
            placed, segments, tokens = [], [], set()
            cursor = float(rng.uniform(0.05, 0.5))
            while True:
                hit = pool[rng.integers(len(pool))]
                if hit["id"] not in lengths:
                    lengths[hit["id"]] = mixing.trim_silence(mixing.load_file_item(paths, hit["id"])).size
                end = cursor + min(lengths[hit["id"]] / SAMPLE_RATE, EVENT_SECONDS)
                if end > SCENE_SECONDS:
                    break
                onset = round(cursor, 3)
                placed.append([hit["id"], onset, round(float(rng.uniform(*GAIN_DB)), 1)])
                segments.append([onset, round(end, 4), hit["label"]])
                tokens.update(hit["sources"])
                cursor = end + float(rng.uniform(*GAP_SECONDS))
            rows.append(row(f"events:{split}:{n:04d}", split, "frames", tokens, spec={"events": placed},
                            segments=segments))
    return rows


def event_scene_audio(spec: dict, load_item) -> np.ndarray:
    """(SCENE_SECONDS * 16k,) float32: each hit (leading silence trimmed) at its onset and gain."""
    size = int(SCENE_SECONDS * SAMPLE_RATE)
    mix = np.zeros(size)
    for item_id, onset, gain_db in spec["events"]:
        hit = mixing.trim_silence(load_item(item_id))
        at = int(onset * SAMPLE_RATE)
        hit = hit[: size - at]
        mix[at:at + hit.size] += hit * 10 ** (gain_db / 20)
    peak = np.abs(mix).max()
    return (mix * (0.9 / peak if peak > 0 else 1.0)).astype(np.float32)
