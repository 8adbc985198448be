#!/usr/bin/env bash
# Decode throughput on the H200 host (16 cores): Opus as carried, FLAC and 16-bit PCM transcoded there,
# one core and the training DataLoader with 1-16 workers; says how many workers feed one GPU (7,000 audio-s/s).
#   device call (after `campaign.sh setup PART`, same warm machine, no carry; ~2 min):
#       CORPUS=/tmp/usad/raw/corpus-20h bash scripts/gpu/decode_bench.sh
# Writes $OUT/<date>_<machine>_decode.{json,md} (commit them to bench/results/).
# CPU dry run: LOCAL=1 PY=.venv/bin/python CORPUS=DIR WORKERS=1 MINUTES=1 ROUNDS=1 CELL=1 bash scripts/gpu/decode_bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -n ${LOCAL:-} ]] || source scripts/gpu/distill_env.sh
PY=${PY:-python3}
"$PY" scripts/gpu/usad_cli.py bench decode "${CORPUS:?set CORPUS to a staged Opus corpus folder}" \
    --minutes "${MINUTES:-10}" --workers "${WORKERS:-1,2,4,8,12}" --rounds "${ROUNDS:-1}" \
    --cell-seconds "${CELL:-4}" --out "${OUT:-bench/results}"
