"""Opus bitrate per domain, chosen by measurement: size against quality, original vs encoded.

For real 10 s clips of each domain, encode at each bitrate through ``usad.data.shards.encode_opus``
(libsndfile, 16 kHz mono), decode, and report what libsndfile actually produced (kbit/s of the Ogg
file) with two quality figures: the L1 distance of the student's normalised log-mel fbank, and the
cosine of that domain's real teacher (Whisper tiny.en for speech, aiSFX for sound, CREPE tiny for
music), per frame (or per clip for a clip-level teacher) and averaged over the teacher's layers.

    .venv/bin/python scripts/measure_opus_bitrate.py --clips 8 --out bench/results/opus_bitrate
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from usad.config import SAMPLE_RATE
from usad.data import sources as src
from usad.data.shards import encode_opus
from usad.data.splits import stable_fraction
from usad.data.worker import load_source
from usad.features import KaldiFbank
from usad.teachers import load_teacher

CLIP_SECONDS = 10.0
SOURCES = {"speech": ("tuxpaint-voices", "fillets-voices", "ktuberling-voices"),
           "sound": ("megaglest-sfx", "0ad-sfx", "ufoai-sfx"),
           "music": ("warzone2100-music", "ufoai-music", "wesnoth-music")}
TEACHERS = {"speech": "whisper:../shared/teachers/whisper-tiny.en", "sound": "aisfx:cache/teachers/aisfx",
            "music": "crepe:cache/teachers/crepe-tiny"}


def real_clips(domain: str, count: int, paths: src.SourcePaths) -> list[np.ndarray]:
    """``count`` clips of up to 10 s, taken round-robin from the domain's real sources in hashed order."""
    pools = [sorted(src.game_items(paths, s), key=lambda i: stable_fraction(f"opus:{i.id}")) for s in SOURCES[domain]]
    clips, n = [], 0
    while len(clips) < count and n < max(map(len, pools)):
        for pool in pools:
            if n < len(pool) and len(clips) < count:
                audio = load_source(str(pool[n].path), pool[n].labels.get("member", ""))
                middle = max(0, audio.size // 2 - int(CLIP_SECONDS * SAMPLE_RATE) // 2)
                clip = audio[middle:middle + int(CLIP_SECONDS * SAMPLE_RATE)]
                if clip.size >= SAMPLE_RATE and np.sqrt(np.mean(clip ** 2)) > 1e-3:
                    clips.append(clip.astype(np.float32) / max(1.0, float(np.abs(clip).max()) / 0.95))
        n += 1
    return clips


def _cosine(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None) -> float:
    cos = torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)
    return float(cos.mean() if mask is None else cos[mask].mean())


def compare(teacher, fbank, original: np.ndarray, decoded: np.ndarray) -> tuple[float, float]:
    """(log-mel L1, teacher cosine) of one clip against its decoded copy."""
    n = min(original.size, decoded.size)
    batch = torch.from_numpy(np.stack([original[:n], decoded[:n]]))
    lengths = torch.tensor([n, n])
    with torch.no_grad():
        features, _ = fbank(batch, lengths)
        out = teacher(batch, lengths)
    mask = None if out.mask is None else out.mask[0]
    cosines = [_cosine(layer[0], layer[1], mask) for layer in out.layers]
    return float((features[0] - features[1]).abs().mean()), float(np.mean(cosines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="clips per domain")
    parser.add_argument("--kbps", type=float, nargs="+", default=[8, 10, 12, 16, 20, 24, 32])
    parser.add_argument("--out", type=Path, default=Path("bench/results/opus_bitrate"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    paths, fbank = src.SourcePaths(), KaldiFbank()
    rows = []
    for domain, spec in TEACHERS.items():
        teacher = load_teacher(spec)
        clips = real_clips(domain, args.clips, paths)
        seconds = sum(c.size for c in clips) / SAMPLE_RATE
        for kbps in [None, *args.kbps]:
            l1, cos, size, rates = [], [], 0, set()
            for clip in clips:
                opus = encode_opus(clip, kbps)
                decoded, rate = sf.read(io.BytesIO(opus), dtype="float32")
                rates.add(rate)
                size += len(opus)
                a, b = compare(teacher, fbank, clip, decoded)
                l1.append(a)
                cos.append(b)
            rows.append({"domain": domain, "target_kbps": kbps, "measured_kbps": round(size * 8 / seconds / 1000, 2),
                         "decoded_rate": sorted(rates), "logmel_l1": round(float(np.mean(l1)), 4),
                         "teacher": spec.split(":")[0], "teacher_cosine": round(float(np.mean(cos)), 4),
                         "teacher_cosine_min": round(float(np.min(cos)), 4), "clips": len(clips),
                         "seconds": round(seconds, 1)})
            print(rows[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"rows": rows, "libsndfile": sf.__libsndfile_version__},
                                                        indent=1))
    lines = ["| domain | target kbps | measured kbps | log-mel L1 | teacher | cosine (mean) | cosine (min) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['domain']} | {r['target_kbps'] or 'default'} | {r['measured_kbps']} | {r['logmel_l1']} | "
              f"{r['teacher']} | {r['teacher_cosine']} | {r['teacher_cosine_min']} |" for r in rows]
    args.out.with_suffix(".table.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
