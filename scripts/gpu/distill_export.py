"""On the GPU machine after a run: the run's model dir with its weights in bf16 shards of <= 15 MiB
(the transfer back takes files of <= 16 MiB, 8 at most) plus the training log, into OUT.

    python3 scripts/gpu/distill_export.py runs/gpu-h100 $OUT/model
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

from usad.modeldir import CONFIG_FILE, load_weights, save_weights

if __name__ == "__main__":
    run, out = Path(sys.argv[1]), Path(sys.argv[2])
    state = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in load_weights(run / "model").items()}
    save_weights(state, out, shard_bytes=15 * 1024 * 1024, metadata={"dtype": "bfloat16", "source": "usad distill"})
    shutil.copyfile(run / "model" / CONFIG_FILE, out / CONFIG_FILE)
    shutil.copyfile(run / "train_log.jsonl", out.parent / "train_log.jsonl")
    print(sorted(p.name for p in out.iterdir()))
