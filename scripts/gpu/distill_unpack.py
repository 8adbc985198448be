"""Local step after `campaign.sh export NAME`: the exported resume pack -> a model dir (fp32 safetensors,
config.json with the distillation record), and the training log beside it.

    .venv/bin/python scripts/gpu/distill_unpack.py /work/.device/.../small-20h models/usad-small-distilled

The pack itself stays usable: copy it to RUN/resume-pack and `usad distill --resume` continues the run.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from usad.distill.checkpoint import model_dir_from_pack
from usad.distill.logger import LOG_FILE

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pack", type=Path, help="the exported folder (resume.json + weights)")
    parser.add_argument("out", type=Path, help="model dir to write")
    args = parser.parse_args()
    model_dir = model_dir_from_pack(args.pack, args.out)
    if (args.pack / LOG_FILE).is_file():
        shutil.copyfile(args.pack / LOG_FILE, model_dir / LOG_FILE)
    print(f"model dir: {model_dir}")
