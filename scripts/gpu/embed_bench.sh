#!/usr/bin/env bash
# Embedding throughput on the GPU machine's 16 CPU cores (issue 18): files/s and audio-s/s of `usad embed`
# (usad.dataset, Parquet output) against worker processes x threads, for INT8 usad-tiny (the packaged default
# model, usad/assets/usad-default) and fp32 usad-small (models/usad-small-distilled, exported to ONNX here with
# the legacy exporter at opset 17: the image has no onnxscript for the dynamo one). CPU only; the GPU idles.
# Clips are generated (tones in noise, 16 kHz FLAC, 5 s): ../shared is not on that machine.
#
# Carry: .whl/ (wheels the image lacks, cp312 manylinux x86_64, ~57 MB), made here with
#   rm -rf .whl && .venv/bin/pip download --only-binary=:all: --no-deps --python-version 3.12 \
#       --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
#       pyarrow==26.0.1 soundfile soxr cffi pycparser
# Command (from the repo root, ~7 minutes; PART=tiny or PART=small runs one half, ~3 / ~4 minutes):
#   OUT=$OUT bash scripts/gpu/embed_bench.sh
# Comes back: $OUT/embed_throughput_16c_tiny_int8.{json,md}, $OUT/embed_throughput_16c_small_fp32.{json,md},
#   $OUT/export_small.log; copy the .json/.md into bench/results/.
# Dry run on this CPU at tiny sizes (no wheels, the venv's python, about 3 minutes):
#   DRY=1 PY=.venv/bin/python OUT=/tmp/embed-gpu-dry bash scripts/gpu/embed_bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-bench/results}"
PY="${PY:-python3}"
mkdir -p "$OUT"
if [ -z "${DRY:-}" ]; then
    source scripts/gpu/distill_env.sh  # wheels into /tmp/site, the repo on PYTHONPATH
    CONFIGS="1x1,2x1,4x1,8x1,16x1,1x16"; TINY_CLIPS=1000; SMALL_CLIPS=250; ROUNDS=2; SHARD=25
    SMALL=models/usad-small-distilled
else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    CONFIGS="1x1,2x1"; TINY_CLIPS=8; SMALL_CLIPS=4; ROUNDS=1; SHARD=2
    SMALL=/tmp/embed-bench-dry-model  # a fresh usad-nano stands in for usad-small: same path, seconds to export
    "$PY" -c "import torch, usad; torch.manual_seed(0); usad.save(usad.create_model('usad-nano'), '$SMALL')"
fi
"$PY" -c "import pyarrow, soundfile, soxr, onnxruntime; print('pyarrow', pyarrow.__version__, 'ort', onnxruntime.__version__)"
nproc

# usad.bench / usad.export / usad.quantize are install-time aliases of the top-level folders (pyproject's
# package-dir). Without an install a tree of symlinks stands in, for this shell and the worker processes alike.
if ! "$PY" -c "import usad.bench" 2>/dev/null; then
    TREE=/tmp/usad-tree/usad
    rm -rf /tmp/usad-tree && mkdir -p "$TREE"
    for entry in usad/* bench export quantize; do ln -s "$PWD/$entry" "$TREE/$(basename "$entry")"; done
    export PYTHONPATH="/tmp/usad-tree${PYTHONPATH:+:$PYTHONPATH}"
fi
run_py() {  # module, arguments; "usad": the CLI
    if [ "$1" = usad ]; then shift; "$PY" -c "from usad.cli import app; app(prog_name='usad')" "$@"
    else "$PY" -m "$@"; fi
}

bench() {  # model, prefer, clips, stem
    run_py usad.bench.embed_throughput --model "$1" ${2:+--prefer "$2"} --sections workers --configs "$CONFIGS" \
        --clips "$3" --seconds 5 --shard-size "$SHARD" --rounds "$ROUNDS" --warmup 0 --out "$OUT" --stem "$4"
}

PART="${PART:-tiny small}"
if [[ " $PART " == *" tiny "* ]]; then
    bench usad/assets/usad-default "" "$TINY_CLIPS" embed_throughput_16c_tiny_int8
fi
if [[ " $PART " == *" small "* ]]; then
    if run_py usad export "$SMALL" --opset 17 > "$OUT/export_small.log" 2>&1; then
        bench "$SMALL" fp32 "$SMALL_CLIPS" embed_throughput_16c_small_fp32
    else
        echo "export of $SMALL failed (tail of $OUT/export_small.log):"; tail -5 "$OUT/export_small.log"; exit 1
    fi
fi
