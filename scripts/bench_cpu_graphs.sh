#!/usr/bin/env bash
# Issue 13's measurement in one command: every variant exported as today's graph (plain fp32) and as the
# fused graph with every INT8 recipe (guarded, timed, the fastest kept as model.int8.onnx), then one
# interleaved latency run (10 s, batch 1, 1 and 2 threads; CPU time at 1) of eager torch, plain fp32, fused fp32, each INT8
# recipe and the CTranslate2 Whisper tiny.en peer, then the before/after report with ORT profile shares.
#
#   bash scripts/bench_cpu_graphs.sh                       # the models in models/
#   bash scripts/bench_cpu_graphs.sh runs/tiny runs/nano   # any model dirs (e.g. a new family)
#
# Needs: `make install`, `.venv/bin/pip install -e '.[peer]'` for the peer rows (skipped without it),
# ../shared (calibration audio, the Whisper teacher). Writes copies under $WORK (default runs/cpu-graphs;
# the model dirs themselves are not touched) and bench/results/<date>_<machine>_latency.{json,md} and
# bench/results/cpu_graphs.{md,json}. About 25 min on the 2-core CPU for the five variants.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
WORK=${WORK:-runs/cpu-graphs}
THREADS=${THREADS:-2}
SHARED=${SHARED:-../shared}
CALIBRATION=(--calibration "$SHARED/data/fsdd/recordings" --calibration "$SHARED/data/gcompris-voices")
if [ "$#" -gt 0 ]; then MODELS=("$@"); else MODELS=(models/usad-*-distilled); fi

mkdir -p "$WORK"
targets=()
for model in "${MODELS[@]}"; do
  target="$WORK/$(basename "$model")"
  rm -rf "$target" && mkdir -p "$target"
  cp "$model"/config.json "$model"/*.safetensors "$target"/
  [ -f "$model/model.safetensors.index.json" ] && cp "$model/model.safetensors.index.json" "$target"/
  nice -n 5 "$BIN/usad" export "$target" --graph plain                     # before: today's graph, fp32
  # after: fused + recipes; export.json records the wall seconds, `time` adds CPU seconds (robust to load)
  time nice -n 5 "$BIN/usad" export "$target" --int8 --keep-candidates "${CALIBRATION[@]}"
  targets+=("$target")
done

peer=()
if "$BIN/python" -c "import ctranslate2" 2>/dev/null; then
  [ -f "$WORK/whisper-tiny.en-ct2/int8/model.bin" ] || \
    "$BIN/python" scripts/convert_whisper_ct2.py "$SHARED/teachers/whisper-tiny.en" --out "$WORK/whisper-tiny.en-ct2"
  peer=(--peer "$WORK/whisper-tiny.en-ct2")
else
  echo "ctranslate2 not installed: no peer rows (.venv/bin/pip install -e '.[peer]')" >&2
fi

formats=torch-fp32,onnx-fp32-plain,onnx-fp32,onnx-int8-static,onnx-int8-dynamic,onnx-int8-mixed
"$BIN/usad" bench latency "${targets[@]}" --seconds 10 --batch 1 --threads "1,$THREADS" --formats "$formats" \
  --rounds 10 --no-memory "${peer[@]}" --out bench/results
latest=$(ls -t bench/results/*_latency.json | head -1)
"$BIN/python" -m usad.bench.graphs_report "$latest" "${targets[@]}" --threads "$THREADS" --out bench/results
