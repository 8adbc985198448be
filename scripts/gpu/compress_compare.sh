#!/usr/bin/env bash
# `usad compress` init strategies (fresh / every-kth / importance) at one budget (same steps, data, seed).
# Local first: .venv/bin/python scripts/gpu/compress_pack.py  (real-audio corpus + T1/T4 subset under .gpu/)
# GPU (device command), carry: [.whl, .gpu/teachers/whisper-tiny.en, .gpu/compress-corpus, .gpu/compress-tasks]
#   STAGE=full    bash scripts/gpu/compress_compare.sh   # ~7 min: usad-small "full" student -> runs/compare/full
#   STAGE=compare bash scripts/gpu/compress_compare.sh   # ~6 min: 3 inits into usad-tiny, 800 steps each, + T1/T4
# (two calls in a row on the warm machine: runs/ stays there between them; STAGE=all does both.)
# Shorter, in one call: FULL_MINUTES=2.5 FULL_STEPS=1200 STEPS=300 bash scripts/gpu/compress_compare.sh  (~5 min)
# CPU (this machine): LOCAL=1 PY=.venv/bin/python FULL_PRESET=usad-tiny PRESET=usad-nano FULL_STEPS=150 STEPS=150 \
#   SET="train.batch_size=16 train.precision=fp32 data.workers=2" bash scripts/gpu/compress_compare.sh
set -euo pipefail
[[ -n ${LOCAL:-} ]] || source scripts/gpu/distill_env.sh
PY=${PY:-python3}
ROOT=${ROOT:-runs/compare}
STAGE=${STAGE:-all}
FULL_PRESET=${FULL_PRESET:-usad-small}
PRESET=${PRESET:-usad-tiny}
FULL_MINUTES=${FULL_MINUTES:-6}
FULL_STEPS=${FULL_STEPS:-3000}
STEPS=${STEPS:-800}
sets=(); for kv in ${SET:-}; do sets+=(--set "$kv"); done
LOGS=${OUT:-$ROOT}
mkdir -p "$LOGS"
[[ -n ${LOCAL:-} ]] || nvidia-smi --query-gpu=name --format=csv,noheader
if [[ $STAGE == full || $STAGE == all ]]; then
    $PY -m usad.distill --config configs/compress-compare-full.yaml --out "$ROOT/full" "${sets[@]}" \
        --set "student.preset=$FULL_PRESET" --set "train.max_minutes=$FULL_MINUTES" --set "train.max_steps=$FULL_STEPS" \
        2>&1 | tee "$LOGS/full.log"
fi
if [[ $STAGE == compare || $STAGE == all ]]; then
    for init in fresh every-kth importance; do
        $PY -m usad.compress --teacher "$ROOT/full/model" --preset "$PRESET" --init "$init" "${sets[@]}" \
            --config configs/compress-compare.yaml --out "$ROOT/$init" --set "train.max_steps=$STEPS" 2>&1 \
            | tee "$LOGS/$init.log"
    done
    $PY scripts/gpu/compress_summary.py --full "$ROOT/full/model" --runs "$ROOT"/{fresh,every-kth,importance} \
        --tasks .gpu/compress-tasks --task T1-digit --task T4-drum --out "$LOGS"
fi
