"""Local step before the GPU runs: put what they need under .gpu/ (git-ignored, sent with `carry`).

- .gpu/teachers/{whisper-tiny.en,aisfx,crepe-tiny}: the teacher weights in bf16 (the GPU runs
  teachers in bf16 anyway), which halves what travels (the transfer limit is 64 MiB a call).
- .gpu/corpus-bench: 10 s clips of real speech (GCompris recordings joined end to end) in shards,
  for the throughput benchmark while the real corpus is being built; content does not change speed.

    .venv/bin/python scripts/gpu/distill_pack.py --shared ../shared --prepared cache/teachers
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from usad.audio import load_audio
from usad.config import SAMPLE_RATE
from usad.data.shards import ShardWriter, encode_opus


def to_bf16(src: Path, dst: Path) -> None:
    state = load_file(src)
    save_file({k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in state.items()}, dst)


def pack_teachers(shared: Path, prepared: Path, out: Path) -> None:
    whisper = out / "whisper-tiny.en"
    whisper.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copyfile(shared / "teachers/whisper-tiny.en" / name, whisper / name)
    to_bf16(shared / "teachers/whisper-tiny.en/model.safetensors", whisper / "model.safetensors")
    for name in ("aisfx", "crepe-tiny"):
        (out / name).mkdir(parents=True, exist_ok=True)
        to_bf16(prepared / name / "model.safetensors", out / name / "model.safetensors")
        shutil.copyfile(prepared / name / "teacher.json", out / name / "teacher.json")


def pack_bench_corpus(shared: Path, out: Path, clips: int = 120, seconds: float = 10.0) -> None:
    files = sorted((shared / "data/gcompris-voices").rglob("*.ogg"))
    writer = ShardWriter(out, prefix="bench", max_bytes=8 * 1024 * 1024)
    target, buffer, made = int(seconds * SAMPLE_RATE), [], 0
    for path in files:
        buffer.append(load_audio(path))
        if sum(len(b) for b in buffer) >= target:
            audio = np.concatenate(buffer)[:target]
            writer.write(f"bench{made:05d}", encode_opus(audio), {"domain": "speech", "source": "gcompris-joined",
                                                                  "seconds": seconds})
            buffer, made = [], made + 1
            if made == clips:
                break
    writer.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--prepared", type=Path, default=Path("cache/teachers"))
    parser.add_argument("--out", type=Path, default=Path(".gpu"))
    args = parser.parse_args()
    pack_teachers(args.shared, args.prepared, args.out / "teachers")
    pack_bench_corpus(args.shared, args.out / "corpus-bench")
