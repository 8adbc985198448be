"""A model dir with its weights in bf16 (half the bytes back through the GPU machine's transfer limit;
``usad.load`` upcasts them).

    python3 scripts/gpu/to_bf16.py RUN/model OUT_DIR
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

from usad.modeldir import load_weights, save_weights

if __name__ == "__main__":
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    state = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in load_weights(source).items()}
    save_weights(state, target)
    shutil.copyfile(source / "config.json", target / "config.json")
    print(f"{target}: bf16 weights")
