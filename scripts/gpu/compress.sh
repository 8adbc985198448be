#!/usr/bin/env bash
# Device command: `usad compress` of the distilled full student into the edge family, one variant
# after another, on one H100/H200 (~MINUTES of training + ~1 min set-up per variant).
#
#   FULL=runs/distill/model bash scripts/gpu/compress.sh
#
# carry: [.whl, .gpu/corpus] (+ the full model dir if it is not already on the warm machine, e.g. a
# bf16 copy from `scripts/gpu/compress_pack.py --full DIR`, which fits the transfer limit).
# Env: FULL (full model dir, required); CORPUS (.gpu/corpus: the shards the full student saw);
#      ROOT (work folder, runs/compress); VARIANTS (default below); INIT (every-kth);
#      MINUTES per variant (3.5); STEPS per variant (1500: the schedule's length; MINUTES stops earlier);
#      CONFIG (the recipe, configs/compress.yaml);
#      TASKS (optional: built task audio dir, e.g. .gpu/compress-tasks, for a quick retention check).
# Resumable: a finished variant (ROOT/<variant>/model) is skipped; an interrupted one resumes from its
# checkpoint. Two variants fit one 10-minute device call; or start it in the background,
#   setsid nohup bash scripts/gpu/compress.sh > runs/compress.log 2>&1 &
# and keep the machine warm with calls that `tail runs/compress.log` until it prints "done".
# Output ($OUT when set, else ROOT/out): summary.json, logs.tar.gz, models.tar.part-* (the model dirs
# in fp32, 15 MiB pieces: `cat models.tar.part-* | tar x` gives models/<variant>/).
# CPU check of the script itself: LOCAL=1 PY=.venv/bin/python (no wheels, no nvidia-smi).
set -euo pipefail
[[ -n ${LOCAL:-} ]] || source scripts/gpu/distill_env.sh
PY=${PY:-python3}
: "${FULL:?set FULL to the full model dir}"
CORPUS=${CORPUS:-.gpu/corpus}
ROOT=${ROOT:-runs/compress}
VARIANTS=${VARIANTS:-usad-tiny usad-tiny-25hz usad-nano usad-nano-25hz}
INIT=${INIT:-every-kth}
CONFIG=${CONFIG:-configs/compress.yaml}
MINUTES=${MINUTES:-3.5}
STEPS=${STEPS:-1500}
DEST=${OUT:-$ROOT/out}
sets=(); for kv in ${SET:-}; do sets+=(--set "$kv"); done  # extra recipe overrides, space-separated
mkdir -p "$ROOT" "$DEST"
[[ -n ${LOCAL:-} ]] || nvidia-smi --query-gpu=name --format=csv,noheader
for variant in $VARIANTS; do
    run="$ROOT/$variant"
    if [[ -f $run/model/config.json ]]; then echo "$variant: done before, skipped"; continue; fi
    resume=(); [[ -f $run/checkpoint.pt ]] && resume=(--resume)
    echo "$variant: compressing ($(date -u +%T))"
    $PY -m usad.compress --teacher "$FULL" --preset "$variant" --init "$INIT" --config "$CONFIG" \
        --out "$run" --set "data.corpus=[$CORPUS]" --set "train.max_minutes=$MINUTES" \
        --set "train.max_steps=$STEPS" "${sets[@]}" "${resume[@]}" 2>&1 | tee -a "$ROOT/$variant.log"
done
runs=(); for variant in $VARIANTS; do runs+=("$ROOT/$variant"); done
$PY scripts/gpu/compress_summary.py --full "$FULL" --runs "${runs[@]}" --out "$DEST" ${TASKS:+--tasks "$TASKS"}
mkdir -p "$ROOT/models"
for variant in $VARIANTS; do ln -sfn "$(realpath "$ROOT/$variant/model")" "$ROOT/models/$variant"; done
tar -C "$ROOT" -chf - $(for variant in $VARIANTS; do echo "models/$variant"; done) | split -b 15M - "$DEST/models.tar.part-"
tar -C "$ROOT" -czf "$DEST/logs.tar.gz" $(cd "$ROOT" && ls -d *.log */train_log.jsonl */compress_recipe.yaml 2>/dev/null)
echo "done ($(date -u +%T)): $(ls "$DEST" | tr '\n' ' ')"
