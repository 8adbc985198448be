#!/usr/bin/env bash
# Run (b): the real distillation of usad-small from whisper-tiny.en + aiSFX + CREPE-tiny on the
# corpus (configs/gpu-h100.yaml), then the model dir (bf16 shards) and the log into $OUT.
# The transfer limit (64 MiB a call, the repo included) keeps teachers and corpus apart, so:
#   call 1, carry [.whl, .gpu/teachers]:  bash scripts/gpu/distill_run.sh setup
#   call 2 (machine still warm), carry [.gpu/corpus-gpu]:
#         MINUTES=3.8 STEPS=1500 bash scripts/gpu/distill_run.sh train
# A run longer than one 10-minute command: BACKGROUND=1 starts it with setsid and returns;
# then poll with `bash scripts/gpu/distill_run.sh status` and collect with `... export`.
set -o pipefail
source scripts/gpu/distill_env.sh
RUN=runs/gpu-h100
CORPUS=${CORPUS:-.gpu/corpus-gpu}
case "$1" in
setup)
    nvidia-smi --query-gpu=name,memory.total --format=csv
    python3 -c "import soundfile, soxr, typer, torch; print('ok', torch.__version__)"
    ls -la .gpu/teachers ;;
train)
    ls .gpu/teachers "$CORPUS" || exit 1
    CMD=(python3 -m usad.distill --config configs/gpu-h100.yaml --out $RUN --set "data.corpus=[$CORPUS]"
         --set train.batch_size=${BATCH:-128} --set train.max_steps=${STEPS:-1500}
         --set train.max_minutes=${MINUTES:-11} --set train.warmup_steps=${WARMUP:-100}
         --set train.ckpt_every=500 --set train.log_every=20)
    if [ -n "$BACKGROUND" ]; then
        mkdir -p $RUN && setsid nohup "${CMD[@]}" > $RUN/stdout.log 2>&1 < /dev/null &
        echo "started in the background: tail $RUN/stdout.log"
    else
        mkdir -p runs
        "${CMD[@]}" 2>&1 | tee $RUN.log | grep -v "^\s*$" | tail -60
        cp $RUN/train_log.jsonl $RUN.log $OUT/ 2>/dev/null  # kept even when the run fails
        python3 scripts/gpu/distill_export.py $RUN $OUT/model
    fi ;;
status)
    tail -5 $RUN/stdout.log ;;
export)
    python3 scripts/gpu/distill_export.py $RUN $OUT/model ;;
*)
    echo "usage: distill_run.sh setup|train|status|export"; exit 2 ;;
esac
