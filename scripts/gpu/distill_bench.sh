#!/usr/bin/env bash
# Run (a): training throughput and MFU of usad-small + 3 teachers on one GPU, 10 s crops,
# at two batch sizes. Writes $OUT/throughput_bs*.json. EXTRA=--profile adds a kernel table.
#   device run, carry [.whl, .gpu/teachers, .gpu/corpus-bench]: bash scripts/gpu/distill_bench.sh
set -o pipefail
source scripts/gpu/distill_env.sh
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
CORPUS=${CORPUS:-.gpu/corpus-bench}
for bs in ${BATCHES:-64 128}; do
    python3 bench/throughput.py --config configs/gpu-h100.yaml --set "data.corpus=[$CORPUS]" \
        --set "data.domain_weights={speech: 1.0, sound: 2.0, music: 2.0}" --set train.batch_size=$bs --set train.compile=true \
        --steps ${STEPS:-20} --warmup ${WARMUP:-8} --json $OUT/throughput_bs$bs.json $EXTRA 2>&1 | tail -${TAIL:-40}
done
