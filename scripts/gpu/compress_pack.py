"""Local step before scripts/gpu/compress_compare.sh: a small real-audio corpus and the T1 probe clips
under .gpu/ (git-ignored, carried to the GPU machine), for comparing init strategies while the full
corpus and the distilled full student are being made.

- .gpu/compress-corpus: training-side recordings only (``splits.corpus_allows``): FSDD + GCompris
  speech, Hydrogen / Sonic Pi drum samples (sound). Shards in the usad.data.shards format.
- .gpu/compress-tasks: a subset of the task suite (T1-digit, T4-drum: the first ``--per-label`` rows
  of each split and label), built by ``usad.data.tasks.build_tasks`` for ``usad bench accuracy``.
- with ``--full MODEL_DIR``: .gpu/compress-full, a bf16 copy of the full model (half the bytes to carry;
  as a teacher it runs under bf16 autocast on the GPU anyway, and loads into fp32 parameters).

    .venv/bin/python scripts/gpu/compress_pack.py --shared ../shared
"""

from __future__ import annotations

import argparse
from pathlib import Path

from usad.audio import AudioError, load_audio
from usad.config import SAMPLE_RATE
from usad.data import sources as src
from usad.data.shards import ShardWriter, encode_opus
from usad.data.splits import corpus_allows
from usad.data.tasks import build_tasks


def write(items, domain: str, source: str, writer: ShardWriter, max_seconds: float = 10.0) -> float:
    total = 0.0
    for item in items:
        try:
            audio = load_audio(item.path, max_seconds=60)[: int(max_seconds * SAMPLE_RATE)]
        except AudioError as err:
            print(f"skipped: {err}")
            continue
        seconds = audio.size / SAMPLE_RATE
        meta = {"domain": domain, "source": source, "seconds": seconds,
                **{k: v for k, v in item.labels.items() if isinstance(v, (int, str))}}
        writer.write(item.id.replace(":", "_").replace("/", "_").replace(".", "_"), encode_opus(audio), meta)
        total += seconds
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--out", type=Path, default=Path(".gpu"))
    parser.add_argument("--per-label", type=int, default=20, help="task rows per split and label")
    parser.add_argument("--full", type=Path, help="full model dir to copy in bf16 to OUT/compress-full")
    args = parser.parse_args()
    if args.full:
        import shutil

        import torch

        from usad.modeldir import load_weights, save_weights

        state = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in load_weights(args.full).items()}
        save_weights(state, args.out / "compress-full")
        shutil.copyfile(args.full / "config.json", args.out / "compress-full" / "config.json")
    paths = src.SourcePaths(shared=args.shared)

    corpus = args.out / "compress-corpus"
    if not (corpus / "manifest.json").is_file():
        writer = ShardWriter(corpus, prefix="compress", max_bytes=16 * 1024 * 1024)
        hours = {}
        for name, domain, items in (
            ("fsdd", "speech", [i for i in src.fsdd_items(paths) if corpus_allows("fsdd", i.labels)]),
            ("gcompris", "speech", [i for i in src.gcompris_items(paths) if corpus_allows("gcompris", i.labels)]),
            ("drum", "sound", [i for i in src.drum_items(paths) if corpus_allows("drum", i.labels)]),
        ):
            hours[name] = round(write(items, domain, name, writer) / 3600, 3)
        writer.close({"sources_hours": hours})
        print("corpus hours", hours)
    report = build_tasks(args.out / "compress-tasks", ["T1-digit", "T4-drum"], paths, regenerate=True,
                         limit_per_split=args.per_label)
    print({name: r["rows"] for name, r in report.items()})


if __name__ == "__main__":
    main()
