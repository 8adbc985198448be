#!/bin/bash
# Re-score every model in models/ plus the floors (fbank, random-init usad-small) and the three
# teachers (the best-teacher row) on the full task suite, clean and at 5 / 0 dB:
#
#   make teachers && bash scripts/rescore_accuracy.sh            # CPU, ~15 min per usad-small-sized model
#
# Each encoder first runs alone (its time is then its own, in bench/results/accuracy/time-*.json), which
# fills the embedding cache; the last run scores all of them together from that cache and writes
# bench/results/accuracy/accuracy.{json,md,png}. A killed run resumes from the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/accuracy}
DATA=${DATA:-data/tasks}
USAD=${USAD:-.venv/bin/usad}
WHISPER=${WHISPER:-../shared/teachers/whisper-tiny.en}
SPECS=(models/usad-small-distilled fbank random:usad-small "teacher:whisper:$WHISPER"
       teacher:aisfx:cache/teachers/aisfx teacher:crepe:cache/teachers/crepe-tiny)
for dir in models/*/; do
  [ "${dir%/}" = models/usad-small-distilled ] || SPECS+=("${dir%/}")
done
[ -f "$DATA/T10-f0.json" ] || nice -n 10 "$USAD" data tasks --out "$DATA"
for spec in "${SPECS[@]}"; do
  name=$(echo "$spec" | tr ':/' '__')
  [ -f "$OUT/time-$name.json" ] && continue
  nice -n 10 "$USAD" bench accuracy "$spec" --out "$OUT" --data "$DATA" > /dev/null
  cp "$OUT/accuracy.json" "$OUT/time-$name.json"
done
nice -n 10 "$USAD" bench accuracy "${SPECS[@]}" --out "$OUT" --data "$DATA"
