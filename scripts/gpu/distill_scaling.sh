#!/usr/bin/env bash
# DDP throughput scaling: the same recipe and per-GPU batch (128 x 10 s crops) on 1 GPU, then on each
# count in GPUS on the same machine; prints each count's throughput over one GPU's.
#   issue 4 (ran): device run, kind nvidia-h100-x2, carry [.whl, .gpu/teachers, .gpu/corpus-bench]:
#       bash scripts/gpu/distill_scaling.sh
#   issue 8 (not run yet): kind nvidia-h100-x4 / -x8, same carry:  GPUS="2 4" (or "2 4 8") bash scripts/gpu/distill_scaling.sh
set -o pipefail
source scripts/gpu/distill_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv
nvidia-smi topo -m | head -10
ARGS=(--config configs/gpu-h100.yaml --set "data.corpus=[${CORPUS:-.gpu/corpus-bench}]"
      --set "data.domain_weights={speech: 1.0, sound: 2.0, music: 2.0}" --set train.compile=true --steps ${STEPS:-10} --warmup ${WARMUP:-6})
python3 bench/throughput.py "${ARGS[@]}" --set train.batch_size=128 --json $OUT/scaling_1gpu.json | tail -30
for n in ${GPUS:-2}; do
    torchrun --standalone --nproc_per_node $n bench/throughput.py "${ARGS[@]}" --set train.batch_size=$((128 * n)) \
        --json $OUT/scaling_${n}gpu.json 2>&1 | grep -v "^W1\|OMP_NUM_THREADS\|^\*\*\*" | tail -30
done
GPUS="${GPUS:-2}" python3 - <<'PY'
import json, os
out = os.environ["OUT"]
one = json.load(open(os.path.join(out, "scaling_1gpu.json")))["audio_seconds_per_s"]
for n in os.environ["GPUS"].split():
    many = json.load(open(os.path.join(out, f"scaling_{n}gpu.json")))["audio_seconds_per_s"]
    print(f"{n} GPUs: {many:.0f} audio-s/s = {many / one:.2f}x one GPU ({one:.0f}), {many / one / int(n):.2f} x N")
PY
