#!/usr/bin/env bash
# Issue 8 (not run yet: needs nvidia-h100-x4/-x8 and device time). Loss curve at equal global batch on
# 1 GPU and on N GPUs, then kill -9 of the N-GPU run mid-way and --resume, compared step by step.
#   device run, kind nvidia-h100-x4, carry [.whl, .gpu/teachers, .gpu/corpus-gpu]:  N=4 bash scripts/gpu/scaling_curves.sh
set -o pipefail
source scripts/gpu/distill_env.sh
N=${N:-4}; STEPS=${STEPS:-300}; KILL_AT=${KILL_AT:-150}
ARGS=(--config configs/gpu-h100.yaml --set "data.corpus=[${CORPUS:-.gpu/corpus-gpu}]" --set train.batch_size=256
      --set train.max_steps=$STEPS --set train.warmup_steps=50 --set train.ckpt_every=50 --set train.log_every=10
      --set train.max_minutes=null)
python3 -m usad.distill "${ARGS[@]}" --out runs/curve-1 > runs/curve-1.log 2>&1
torchrun --standalone --nproc_per_node $N -m usad.distill "${ARGS[@]}" --out runs/curve-$N > runs/curve-$N.log 2>&1
# The same N-GPU run, killed once its checkpoint passes KILL_AT, then resumed.
setsid torchrun --standalone --nproc_per_node $N -m usad.distill "${ARGS[@]}" --out runs/resume-$N > runs/resume-$N.log 2>&1 &
pid=$!
until python3 -c "import torch,sys; s=torch.load('runs/resume-$N/checkpoint.pt',weights_only=True)['step']; sys.exit(s < $KILL_AT)" 2>/dev/null; do sleep 5; done
kill -9 -- -$pid; sleep 5
torchrun --standalone --nproc_per_node $N -m usad.distill "${ARGS[@]}" --out runs/resume-$N --resume >> runs/resume-$N.log 2>&1
cp runs/curve-1/train_log.jsonl $OUT/curve_1gpu.jsonl; cp runs/curve-$N/train_log.jsonl $OUT/curve_${N}gpu.jsonl
cp runs/resume-$N/train_log.jsonl $OUT/resume_${N}gpu.jsonl
N=$N python3 - <<'PY'
import json, os
out, n = os.environ["OUT"], os.environ["N"]
def curve(name):
    return {r["step"]: r["loss"] for r in map(json.loads, open(os.path.join(out, name)))}
one, many, resumed = curve("curve_1gpu.jsonl"), curve(f"curve_{n}gpu.jsonl"), curve(f"resume_{n}gpu.jsonl")
steps = sorted(set(one) & set(many))
gap = max(abs(one[s] - many[s]) / one[s] for s in steps)
print(f"1 vs {n} GPUs at equal global batch: max relative loss gap {gap:.3f} over {len(steps)} logged steps")
after = sorted(s for s in resumed if s in many)
print("resumed vs uninterrupted, last steps:", [(s, round(resumed[s], 4), round(many[s], 4)) for s in after[-3:]])
PY
