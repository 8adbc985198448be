#!/usr/bin/env bash
# H200 training throughput of the paper's recipe (configs/usad-paper-{small,...}.yaml): the student
# distilled from WavLM Base+ and ATST-Frame base of the real architectures, untrained (written on the
# machine itself: nothing to carry for them), 80 crops of 10 s per step = the paper's 800 s batch.
# bench/throughput.py times teachers and student (CUDA-synced), counts FLOPs; then the projection to
# the paper's 400k updates. Writes $OUT/paper_throughput_<size>.json and $OUT/paper_throughput.md.
#
#   locally first (both git-ignored):
#     .venv/bin/python -c "import sys; sys.path.insert(0, 'scripts/gpu'); from pathlib import Path; \
#         from distill_pack import pack_bench_corpus; pack_bench_corpus(Path('../shared'), Path('.gpu/corpus-bench'))"
#     .venv/bin/pip download --only-binary=:all: --no-deps --python-version 3.12 --platform manylinux2014_x86_64 \
#         -d .whl soundfile soxr cffi pycparser          (the wheels the GPU image lacks, ~4 MB)
#   device run, kind nvidia-h200, carry [.whl, .gpu/corpus-bench] (~4 MB + 12 MB), about 2 minutes:
#     bash scripts/gpu/paper_throughput.sh              (SIZES="small base large" for all three, ~4 min)
#   dry run on this CPU (tiny batch, two steps, nothing carried):
#     DRY=1 bash scripts/gpu/paper_throughput.sh
set -euo pipefail
SIZES=${SIZES:-small}
if [ -n "${DRY:-}" ]; then
    PY=.venv/bin/python OUT=${OUT:-/tmp/paper-throughput-dry} BATCH=2 CROP=2.0 STEPS=2 WARMUP=1
    CORPUS=${CORPUS:-.gpu/corpus-bench} EXTRA="--set train.precision=fp32"  # bf16 autocast is slow on CPU
else
    source scripts/gpu/distill_env.sh
    PY=python3 BATCH=80 CROP=10.0 STEPS=${STEPS:-8} WARMUP=${WARMUP:-4} CORPUS=${CORPUS:-.gpu/corpus-bench} EXTRA=""
    nvidia-smi --query-gpu=name,memory.total --format=csv
fi
mkdir -p "$OUT"
TEACHERS=$(mktemp -d)
$PY -c "import sys; from usad.teachers.untrained import write_untrained
for name in ('wavlm-base-plus', 'atst-frame-base'): write_untrained(name, sys.argv[1] + '/' + name)" "$TEACHERS"
for size in $SIZES; do
    # The recipe as committed, its teacher directories pointed at the untrained ones.
    sed "s#cache/teachers/#$TEACHERS/#" "configs/usad-paper-$size.yaml" > "$TEACHERS/usad-paper-$size.yaml"
    $PY scripts/gpu/usad_cli.py -m bench.throughput --config "$TEACHERS/usad-paper-$size.yaml" --set "data.corpus=[$CORPUS]" \
        --set train.batch_size=$BATCH --set data.crop_seconds=$CROP --set train.compile=${COMPILE:-false} \
        --steps $STEPS --warmup $WARMUP --json "$OUT/paper_throughput_$size.json" $EXTRA | tail -30
done
$PY - "$OUT" $SIZES <<'EOF'
import json, sys
out, sizes = sys.argv[1], sys.argv[2:]
rows = ["| recipe | device | student | step s (median) | teachers s | student s | audio-s/s | "
        "student MFU | hours for 400k x 800 s |", "|---|---|---|---|---|---|---|---|---|"]
for size in sizes:
    r = json.load(open(f"{out}/paper_throughput_{size}.json"))
    med = r["median_step_s"]
    hours = 400_000 * 800 / r["audio_seconds_per_s"] / 3600
    rows.append(f"| usad-paper-{size} | {r['device']} | {r['student']} | {med['step_s']:.3f} | {med['teacher_s']:.3f} "
                f"| {med['student_s']:.3f} | {r['audio_seconds_per_s']:.0f} | {r['mfu_student']:.1%} | {hours:.0f} |")
open(f"{out}/paper_throughput.md", "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
EOF
rm -rf "$TEACHERS"
