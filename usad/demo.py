"""``make demo``: the main job end to end on this CPU, at small scale.

For now: embeddings of real audio from ../shared with a freshly initialised ``usad-tiny``. Its
weights are untrained, so the numbers show the plumbing, not representation quality.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

import usad
from usad.embed import TorchBackend, embed_files

SHARED = Path(__file__).resolve().parents[2] / "shared"


def main() -> int:
    console = Console()
    data = SHARED / "data"
    if not data.is_dir():
        console.print(f"[red]the demo reads real audio from {data}, which is not here")
        return 1
    files = sorted((data / "fsdd/recordings").glob("*_theo_1.flac")) + sorted(
        (data / "gcompris-voices/fr/colors").glob("*.ogg"))
    torch.manual_seed(0)
    model = usad.create_model("usad-tiny")
    console.print("[yellow]usad-tiny with freshly initialised (untrained) weights: this shows the pipeline, "
                  "not representation quality.")
    start = time.perf_counter()
    result = embed_files(TorchBackend(model), [str(f) for f in files])
    elapsed = time.perf_counter() - start
    table = Table("file", "layers x dim", "last-layer norm", title="clip embeddings (mean over frames)")
    for path, emb in result.embeddings.items():
        table.add_row(Path(path).name, " x ".join(map(str, emb.shape)), f"{np.linalg.norm(emb[-1]):.2f}")
    console.print(table)
    console.print(f"{len(result.embeddings)} files, {result.seconds:.1f} s of audio in {elapsed:.2f} s "
                  f"(real-time factor {elapsed / result.seconds:.4f}) on {torch.get_num_threads()} threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
