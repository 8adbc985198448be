#!/usr/bin/env bash
# Device command: distil the full-context usad-tiny into the three streaming usad-tiny presets (issue 16),
# one after another on one H100/H200: ~1.5 min of training + ~1 min set-up each, ~8 minutes in all.
#
#   CORPUS=.gpu/corpus-gpu TASKS=.gpu/compress-tasks bash scripts/gpu/compress_stream.sh
#
# carry: [.whl, $CORPUS] (+ $TASKS for the on-device T1/T4 check). The teacher, models/usad-tiny-distilled
# (11 MB, bf16), is tracked and travels with the working tree. CORPUS: the shards the edge family was
# compressed on (models/usad-tiny-distilled/config.json names .gpu/corpus-gpu).
# Variants and what they separate (usad.config, 4 s left context each): usad-tiny-stream (320 ms chunk,
# no look-ahead, 335 ms algorithmic latency), usad-tiny-stream-160-la160 (160 ms chunk + 160 ms look-ahead,
# the same 335 ms), usad-tiny-stream-160 (160 ms chunk, 175 ms).
# Everything else is scripts/gpu/compress.sh with configs/compress-stream.yaml (resumable, backgroundable):
# output ($OUT, else runs/compress-stream/out): summary.json (losses; T1/T4 scores with TASKS),
# logs.tar.gz, models.tar.part-* (fp32 model dirs, 22 MB each: `cat models.tar.part-* | tar x`).
# Back on the CPU machine, per model: `usad export DIR --stream --int8`, `usad bench stream DIR`,
# `usad bench accuracy models/usad-tiny-distilled DIR stream:DIR --data data/tasks`.
# CPU check of the script itself (tiny sizes, this machine's corpus):
#   LOCAL=1 PY=.venv/bin/python CORPUS=cache/corpus STEPS=2 MINUTES=1 ROOT=/tmp/cs \
#     SET="train.batch_size=2 data.crop_seconds=2 data.workers=1 train.precision=fp32 train.log_every=1" \
#     bash scripts/gpu/compress_stream.sh
set -euo pipefail
export FULL=${FULL:-models/usad-tiny-distilled}
export VARIANTS=${VARIANTS:-usad-tiny-stream usad-tiny-stream-160-la160 usad-tiny-stream-160}
export CONFIG=${CONFIG:-configs/compress-stream.yaml}
export ROOT=${ROOT:-runs/compress-stream}
export MINUTES=${MINUTES:-1.5}
export STEPS=${STEPS:-1000}
exec bash scripts/gpu/compress.sh
