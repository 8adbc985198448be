"""``torchrun --nproc_per_node N -m usad.distill --config C --out DIR [--set k=v ...] [--resume]``: the
same run as ``usad distill``, spelled for torchrun (which needs a module or a script)."""

from __future__ import annotations

import argparse
import sys

from usad.distill.launch import run_training
from usad.distill.recipe import load_recipe
from usad.distill.trainer import distill


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="usad.distill", description="Distill a USAD student from frozen teachers.")
    parser.add_argument("--config", "-c", required=True, help="YAML recipe (configs/)")
    parser.add_argument("--out", "-o", required=True, help="run directory: checkpoint, resume pack, logs, model/")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="recipe key=value")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt or OUT/resume-pack")
    args = parser.parse_args(argv)
    return run_training(lambda: distill(load_recipe(args.config, args.overrides), args.out, args.resume))


if __name__ == "__main__":
    sys.exit(main())
