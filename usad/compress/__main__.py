"""``python -m usad.compress --teacher DIR --preset P --out DIR ...`` (and under torchrun): ``usad compress``
without the console script. Exit codes as ``usad distill`` (usad.distill.launch)."""

from __future__ import annotations

import argparse
import sys

from usad.compress.init import STRATEGIES, CompressInitError
from usad.compress.run import compress
from usad.distill.launch import run_training


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="usad.compress", description="Compress a trained USAD model.")
    parser.add_argument("--teacher", "-t", required=True, help="model dir of the trained full model")
    parser.add_argument("--preset", "-p", required=True, help="student preset, e.g. usad-tiny")
    parser.add_argument("--out", "-o", required=True, help="run directory: checkpoint, logs, model/")
    parser.add_argument("--config", "-c", help="recipe in usad distill format, teachers left out")
    parser.add_argument("--frame-rate", type=int, choices=(50, 25), help="student frame rate")
    parser.add_argument("--init", default="every-kth", choices=STRATEGIES)
    parser.add_argument("--pairs", help="'all' (one per student layer) or K")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="recipe key=value")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt or OUT/resume-pack")
    a = parser.parse_args(argv)
    return run_training(lambda: compress(a.teacher, a.preset, a.out, a.config, a.frame_rate, a.init, a.pairs,
                                         a.overrides, a.resume), bad_input=(CompressInitError,))


if __name__ == "__main__":
    sys.exit(main())
