"""tests/fixtures/full_context_usad_tiny.safetensors: full-context outputs of models/usad-tiny-distilled on two
real clips, made by the code before streaming existed, so tests/test_stream_model.py (which computes the same
``full_context_outputs`` with today's code) shows the streaming changes leave full-context encoders bit-for-bit
alone. Rerun when the model's weights change:

    git worktree add /tmp/pre-stream 1bd5567 && rm -r /tmp/pre-stream/models && cp -r models /tmp/pre-stream/
    (cd /tmp/pre-stream && PYTHONPATH=. /work/main/.venv/bin/python /work/main/scripts/make_full_context_fixture.py \
        /work/main/tests/fixtures/full_context_usad_tiny.safetensors)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

CLIPS = ("data/fsdd/recordings/3_theo_7.flac", "data/gcompris-voices/de/colors/red.ogg")


def full_context_outputs(shared: Path, model_dir: Path) -> dict[str, torch.Tensor]:
    """pooled (L, 2, D) of every hidden state, the last layer's first 20 frames (2, 20, D) and the mask (2, T)."""
    from usad import load
    from usad.audio import load_audio

    clips = [load_audio(shared / clip) for clip in CLIPS]
    lengths = torch.tensor([c.size for c in clips])
    waves = torch.zeros(2, int(lengths.max()))
    for i, clip in enumerate(clips):
        waves[i, : clip.size] = torch.from_numpy(clip)
    with torch.no_grad():
        out = load(model_dir)(waves, lengths)
    pooled = torch.stack([out.pooled(i) for i in range(len(out.hidden_states))])
    return {"pooled": pooled.contiguous(), "last_frames": out.hidden_states[-1][:, :20].contiguous(),
            "mask": out.mask.contiguous()}


if __name__ == "__main__":
    from safetensors.torch import save_file

    shared = Path("../shared") if Path("../shared").is_dir() else Path("/work/shared")
    save_file(full_context_outputs(shared, Path("models/usad-tiny-distilled")), sys.argv[1])
    print(f"wrote {sys.argv[1]}")
