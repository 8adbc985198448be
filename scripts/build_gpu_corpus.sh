#!/usr/bin/env bash
# Build the GPU campaign's corpus on this (CPU) machine, resumably: the 20 h corpus, the 2 h scaling
# subset, the transfer parts and the record in bench/results/corpus.{md,json}.
# Run from the repo root after `make install corpus-deps`. A killed run resumes: run it again.
#   nice -n 10 bash scripts/build_gpu_corpus.sh [DATA_DIR]   (default /work/data)
set -euo pipefail
DATA=${1:-/work/data}
BITRATES=(--bitrate speech=12 --bitrate sound=16 --bitrate music=16)
COMMAND="usad data corpus --out $DATA/corpus-20h --hours-per-domain 7 --shard-mb 12.5 ${BITRATES[*]} --workers 2"
mkdir -p "$DATA"
if [ ! -f "$DATA/corpus-20h/manifest.json" ]; then
    # The sound and music jobs are made at the same time as speech by two helper builds that share the
    # main build's job cache (the same jobs, so the main build reads their results back).
    helpers=()
    for domain in sound music; do
        subset=$(.venv/bin/python -c "from usad.data.recipes import RECIPES
print(' '.join('--subset ' + r.name for r in RECIPES if r.domain == '$domain'))")
        # shellcheck disable=SC2086
        .venv/bin/usad data corpus --out "$DATA/prefill-$domain" --cache "$DATA/corpus-20h/.jobs" $subset \
            --hours-per-domain 7 --shard-mb 12.5 "${BITRATES[@]}" --workers 1 > "$DATA/prefill-$domain.log" 2>&1 &
        helpers+=($!)
    done
    /usr/bin/time -v .venv/bin/$COMMAND 2>&1 | tee "$DATA/corpus-20h.log"
    kill "${helpers[@]}" 2>/dev/null || true
    rm -rf "$DATA"/prefill-sound "$DATA"/prefill-music
fi
.venv/bin/usad data check "$DATA/corpus-20h"
.venv/bin/usad data subset "$DATA/corpus-20h" --out "$DATA/corpus-2h" --hours 2
rm -rf "$DATA/gpu-payload"
.venv/bin/usad data payload "$DATA/corpus-2h" "$DATA/corpus-20h" --out "$DATA/gpu-payload" --part-mib 52
.venv/bin/python scripts/corpus_report.py --corpus "$DATA/corpus-20h" --subset "$DATA/corpus-2h" \
    --payload "$DATA/gpu-payload" --log "$DATA/corpus-20h.log" --command "$COMMAND"
