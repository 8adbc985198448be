#!/usr/bin/env bash
# GPU latency bench (issue 7): every preset, formats cuda-fp32 (eager), cuda-bf16-graphs (bf16 autocast,
# torch.compile mode="reduce-overhead": CUDA graphs) and tensorrt where it imports; inputs 1/5/10/30 s,
# batch 1 and 8; plus the bf16/fp32 GEMM rates of the card for the FLOP floor.
#
# Self-contained: run from the repo root with the machine's python3 (torch + CUDA; no install, no
# soundfile, no typer needed). Latency does not depend on weight values, so presets (fresh weights)
# stand for the trained models of the same shape.
#
#   OUT=/some/dir bash scripts/gpu/bench_latency.sh            # writes $OUT/<date>_<gpu>_latency.json (+ .md)
#   MODELS="usad-small" SECONDS_LIST=10 BATCHES=1 bash scripts/gpu/bench_latency.sh
#   MODELS="usad-base usad-large" PART=2 bash ...   # a run split to fit a time limit: <date>_<gpu>_latency-part2.json;
#                                                    # join the parts with usad.bench.latency.merge_records
set -euo pipefail
cd "$(dirname "$0")/../.."
export OUT="${OUT:-bench/results}"
export MODELS="${MODELS:-usad-small usad-base usad-large usad-tiny usad-nano}"
export SECONDS_LIST="${SECONDS_LIST:-1 5 10 30}"
export BATCHES="${BATCHES:-1 8}"
export SUFFIX="latency${PART:+-part$PART}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 - <<'PY'
import importlib.util
import os
import sys
from pathlib import Path

sys.path.insert(0, os.getcwd())
try:
    import usad.bench  # noqa: F401  (installed with pip -e)
except ImportError:
    # Not installed: map the top-level folders onto usad.bench / usad.export, as pyproject's package-dir does.
    import usad

    for name in ("bench", "export"):
        spec = importlib.util.spec_from_file_location(f"usad.{name}", f"{name}/__init__.py",
                                                      submodule_search_locations=[name])
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"usad.{name}"] = module
        spec.loader.exec_module(module)
        setattr(usad, name, module)

from usad.bench.combined_report import latency_markdown
from usad.bench.harness import result_stem
from usad.bench.latency import Grid, run_latency
from usad.bench.writer import write_report

grid = Grid(seconds=tuple(float(s) for s in os.environ["SECONDS_LIST"].split()),
            batches=tuple(int(b) for b in os.environ["BATCHES"].split()), min_rounds=10, max_rounds=50,
            cell_budget_s=2.0)
record = run_latency(os.environ["MODELS"].split(), grid, device="cuda", log=lambda m: print(m, flush=True))
markdown = latency_markdown(record)
paths = write_report(Path(os.environ["OUT"]), result_stem(record, os.environ["SUFFIX"]), record, markdown)
print(markdown)
print(f"wrote {paths['json']}")
PY
