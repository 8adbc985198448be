#!/usr/bin/env bash
# Run (c): DDP scaling on nvidia-h100-x2. The same recipe and per-GPU batch (128 x 10 s crops)
# on one GPU and then on two (global batch 256) on the same machine; prints the throughput ratio.
#   device run, kind nvidia-h100-x2, carry [.whl, .gpu/teachers, .gpu/corpus-bench]:
#   bash scripts/gpu/distill_scaling.sh
set -o pipefail
source scripts/gpu/distill_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv
nvidia-smi topo -m | head -4
ARGS=(--config configs/gpu-h100.yaml --set "data.corpus=[${CORPUS:-.gpu/corpus-bench}]"
      --set "data.domain_weights={speech: 1.0, sound: 2.0, music: 2.0}" --set train.compile=true --steps ${STEPS:-10} --warmup ${WARMUP:-6})
python3 bench/throughput.py "${ARGS[@]}" --set train.batch_size=128 --json $OUT/scaling_1gpu.json | tail -30
torchrun --standalone --nproc_per_node 2 bench/throughput.py "${ARGS[@]}" --set train.batch_size=256 \
    --json $OUT/scaling_2gpu.json 2>&1 | grep -v "^W1\|OMP_NUM_THREADS\|^\*\*\*" | tail -30
python3 - <<'PY'
import json, os
one = json.load(open(os.path.join(os.environ["OUT"], "scaling_1gpu.json")))
two = json.load(open(os.path.join(os.environ["OUT"], "scaling_2gpu.json")))
print(f"1 GPU {one['audio_seconds_per_s']:.0f} audio-s/s, 2 GPUs {two['audio_seconds_per_s']:.0f} audio-s/s: "
      f"{two['audio_seconds_per_s'] / one['audio_seconds_per_s']:.2f}x")
PY
