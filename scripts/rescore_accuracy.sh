#!/bin/bash
# Re-score every model in models/ plus the floors (fbank, random-init usad-small) and the three
# teachers (the best-teacher row) on the full task suite, clean and at 5 / 0 dB:
#
#   make teachers && bash scripts/rescore_accuracy.sh            # CPU, ~15 min per usad-small-sized model
#   EXTRA="runs/campaign/small-2h" bash scripts/rescore_accuracy.sh  # more model dirs, scored after the reference
#
# Each encoder runs alone (its time is then its own; its result is kept as bench/results/accuracy/run-*.json),
# and `usad bench accuracy-merge` makes the one report bench/results/accuracy/accuracy.{json,md,png} with the
# reference, best-teacher, floor and per-domain rows. A killed run resumes: finished encoders are skipped and
# embeddings come from the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/accuracy}
DATA=${DATA:-data/tasks}
USAD=${USAD:-.venv/bin/usad}
WHISPER=${WHISPER:-../shared/teachers/whisper-tiny.en}
SPECS=(models/usad-small-distilled fbank random:usad-small "teacher:whisper:$WHISPER"
       teacher:aisfx:cache/teachers/aisfx teacher:crepe:cache/teachers/crepe-tiny ${EXTRA:-})
for dir in models/*/; do
  [ "${dir%/}" = models/usad-small-distilled ] || SPECS+=("${dir%/}")
done
[ -f "$DATA/T10-f0.json" ] || nice -n 10 "$USAD" data tasks --out "$DATA"
RUNS=()
for spec in "${SPECS[@]}"; do
  name=$(echo "$spec" | tr ':/' '__')
  if [ -f "$OUT/run-$name.json" ]; then RUNS+=("$OUT/run-$name.json"); continue; fi
  nice -n 10 "$USAD" bench accuracy "$spec" --out "$OUT" --data "$DATA" > /dev/null
  cp "$OUT/accuracy.json" "$OUT/run-$name.json"
  RUNS+=("$OUT/run-$name.json")
done
"$USAD" bench accuracy-merge "${RUNS[@]}" --out "$OUT" --data "$DATA"
