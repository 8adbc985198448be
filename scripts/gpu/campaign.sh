#!/usr/bin/env bash
# The GPU campaign of issue 11 on one H200 (16 cores): carried Opus payload parts -> a local corpus,
# transcoded once to FLAC, then one or two background training runs (usad-small from Whisper tiny.en +
# aiSFX + CREPE tiny, configs/gpu-h200.yaml) that stream it, and their export into $OUT.
#
# Local, before the calls (all under .gpu/, git-ignored; sizes as measured here):
#   bash scripts/gpu/make_wheels.sh                              # .whl: soundfile soxr cffi pycparser webdataset braceexpand (1.9 MB)
#   make teachers && .venv/bin/python scripts/gpu/distill_pack.py  # .gpu/teachers in bf16 (29 MB)
#   mkdir -p .gpu/payload && cp -al /work/data/gpu-payload/part* .gpu/payload/   # <= 52 MiB a part (corpus helper)
# Device calls, each one command (the repo itself travels too: keep it + carry <= 64 MiB). The machine stays
# warm ~30 s between calls: keep them back to back, or /tmp/usad and the background runs are gone.
#   1 carry [.whl, .gpu/teachers]:  bash scripts/gpu/campaign.sh setup
#   2 carry [.gpu/payload/part1]:   bash scripts/gpu/campaign.sh stage .gpu/payload/part1 && \
#        CORPUS=/tmp/usad/raw/corpus-20h bash scripts/gpu/decode_bench.sh      # $OUT: *_decode.{json,md}
#   3 carry [.gpu/payload/part2]:   bash scripts/gpu/campaign.sh stage .gpu/payload/part2
#   4 carry [.gpu/payload/part3]:   bash scripts/gpu/campaign.sh stage .gpu/payload/part3 && \
#        bash scripts/gpu/campaign.sh transcode && \
#        STEPS=2000 MINUTES=16 bash scripts/gpu/campaign.sh train small-20h corpus-20h small-2h corpus-2h
#   5.. (no carry, timeout 600):    bash scripts/gpu/campaign.sh wait 9   # status each minute; returns when done
#   n   bash scripts/gpu/campaign.sh export small-20h     # $OUT/small-20h: resume pack (4 x <= 15 MiB) + logs
#   n+1 bash scripts/gpu/campaign.sh export small-2h
# The calls of the 2026-12-01 campaign, exactly as run: bench/results/campaign/README.md.
# Corpus names are the folders of the manifests that `stage` lists under /tmp/usad/raw.
# Locally: .venv/bin/python scripts/gpu/distill_unpack.py FILES_AT/small-20h models/usad-small-distilled
#
# Two run names on one `train` share the GPU at once (equal recipe, steps and seed; only the corpus
# differs): the scaling point at equal steps. Each gets WORKERS (default 6) DataLoader processes.
# A run that finds its checkpoint resumes; a resume pack carried back in (RESUME_FROM=dir) continues
# an earlier session's run with fresh AdamW moments.
# CPU dry run of the whole sequence: LOCAL=1 PY=.venv/bin/python STAGE=/tmp/usad-dry ... (tests/test_gpu_scripts.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -n ${LOCAL:-} ]] || source scripts/gpu/distill_env.sh
PY=${PY:-python3}
STAGE=${STAGE:-/tmp/usad}
FORMAT=${FORMAT:-flac}
CONFIG=${CONFIG:-configs/gpu-h200.yaml}
DEST=${OUT:-$STAGE/out}
sets=(); for kv in ${SET:-}; do sets+=(--set "$kv"); done  # extra recipe overrides, space-separated

usad() { "$PY" scripts/gpu/usad_cli.py "$@"; }

training() {  # is any run's process alive?
    for pid in "$STAGE"/runs/*/pid; do [[ -f $pid ]] && kill -0 "$(cat "$pid")" 2>/dev/null && return 0; done
    return 1
}

run_status() {  # one line per run: state, step, last loss and throughput
    for run in "$STAGE"/runs/*/; do
        [[ -d $run ]] || continue
        "$PY" - "$run" <<'PY'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
status = json.loads((run / "status.json").read_text()) if (run / "status.json").is_file() else {"state": "starting"}
lines = (run / "train_log.jsonl").read_text().splitlines() if (run / "train_log.jsonl").is_file() else []
last = json.loads(lines[-1]) if lines else {}
print(f"{run.name}: {status['state']} step {last.get('step', 0)}/{status.get('max_steps', '?')} "
      f"loss {last.get('loss', float('nan')):.3f} {last.get('audio_hours_per_s', 0) * 3600:.0f} audio-s/s "
      f"data wait {last.get('data_s', 0) * 1000:.0f} ms skipped {last.get('skipped', {})}")
PY
    done
}

case "${1:-}" in
setup)  # check the machine and the wheels, then stage the first part
    [[ -n ${LOCAL:-} ]] || nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    "$PY" -c "import soundfile, soxr, webdataset, torch; print('ok: torch', torch.__version__, 'libsndfile', soundfile.__libsndfile_version__)"
    ls "${TEACHERS:-.gpu/teachers}"
    [[ -z ${2:-} ]] || bash "$0" stage "$2" ;;
stage)  # merge a carried part (a tree of corpus folders: manifests and whole shards) into $STAGE/raw
    mkdir -p "$STAGE/raw"
    cp -a "${2:?stage needs a part folder}/." "$STAGE/raw/"
    du -sh "$STAGE/raw"; find "$STAGE/raw" -name manifest.json ;;
transcode)  # every staged corpus (a folder with manifest.json) -> $STAGE/<name>-$FORMAT; sha256 checked first
    for manifest in $(find "$STAGE/raw" -name manifest.json | sort); do
        src=$(dirname "$manifest")
        usad data transcode "$src" --to "$FORMAT" --out "$STAGE/$(basename "$src")-$FORMAT"
    done ;;
train)  # train NAME CORPUS [NAME CORPUS]: background runs (setsid) that outlive this call
    shift; pairs=("$@"); (( ${#pairs[@]} % 2 == 0 && ${#pairs[@]} > 0 )) || { echo "train NAME CORPUS [NAME CORPUS]"; exit 2; }
    workers=${WORKERS:-$(( ${#pairs[@]} == 2 ? 12 : 6 ))}
    for ((i = 0; i < ${#pairs[@]}; i += 2)); do
        name=${pairs[i]}; corpus=$STAGE/${pairs[i+1]}-$FORMAT; run=$STAGE/runs/$name
        [[ -f $corpus/manifest.json ]] || { echo "$corpus: not transcoded"; exit 2; }
        mkdir -p "$run"
        [[ -z ${RESUME_FROM:-} || -f $run/checkpoint.pt ]] || cp -a "$RESUME_FROM" "$run/resume-pack"
        resume=(); [[ -f $run/checkpoint.pt || -f $run/resume-pack/resume.json ]] && resume=(--resume)
        setsid nohup "$PY" -m usad.distill --config "$CONFIG" --out "$run" --set "data.corpus=[$corpus]" \
            --set "data.workers=$workers" --set "train.max_steps=${STEPS:-2000}" \
            --set "train.max_minutes=${MINUTES:-16}" "${sets[@]}" "${resume[@]}" \
            > "$run/stdout.log" 2>&1 < /dev/null &
        echo $! > "$run/pid"
        echo "$name: started (pid $!, $workers workers, corpus $corpus${resume:+, resuming})"
    done ;;
bench-gpu)  # background: the H200 figures of issue 17 (front-end fixture, paper-recipe throughput) into $STAGE/results
    mkdir -p "$STAGE/results"
    setsid nohup bash -c "OUT=$STAGE/results bash scripts/gpu/teacher_frontend_fixture.sh; \
        OUT=$STAGE/results timeout 300 bash scripts/gpu/paper_throughput.sh" > "$STAGE/results/bench-gpu.log" 2>&1 < /dev/null &
    echo $! > "$STAGE/results/bench-gpu.pid"; echo "bench-gpu: started (pid $!)" ;;
bench-decode)  # bench-decode CORPUS: background, after bench-gpu: decode throughput on 16 cores into $STAGE/results
    mkdir -p "$STAGE/results"
    setsid nohup bash -c "while kill -0 \$(cat $STAGE/results/bench-gpu.pid 2>/dev/null) 2>/dev/null; do sleep 2; done; \
        OUT=$STAGE/results CORPUS=$STAGE/raw/${2:?bench-decode needs a staged corpus} timeout 240 bash scripts/gpu/decode_bench.sh" \
        > "$STAGE/results/bench-decode.log" 2>&1 < /dev/null &
    echo $! > "$STAGE/results/bench-decode.pid"; echo "bench-decode: queued (pid $!)" ;;
benches-wait)  # wait until the background benches are done, then copy their results into $OUT
    for pid in "$STAGE"/results/*.pid; do while kill -0 "$(cat "$pid")" 2>/dev/null; do sleep 2; done; done
    mkdir -p "$DEST"; cp "$STAGE"/results/*.{json,md,log,safetensors} "$DEST/" 2>/dev/null || true; ls -la "$DEST" ;;
status)
    run_status ;;
wait)  # wait MINUTES: status every minute until every run has stopped or the minutes are up
    end=$(( $(date +%s) + ${2:-9} * 60 ))
    while (( $(date +%s) < end )); do
        run_status
        training || { echo "no run is training"; break; }
        sleep "${POLL:-60}"
    done
    run_status ;;
stop)  # SIGTERM to every run: each writes its checkpoint and resume pack, then exits with code 75
    for pid in "$STAGE"/runs/*/pid; do [[ -f $pid ]] && kill -TERM "$(cat "$pid")" 2>/dev/null || true; done
    sleep "${POLL:-20}"; run_status ;;
compress)  # compress RUN CORPUS PRESET[=CONFIG] ...: background `usad compress` of RUN's model into each preset at once
    full=$STAGE/runs/${2:?compress needs the full run}/model; corpus=$STAGE/${3:?and its corpus}-$FORMAT; shift 3
    [[ -f $full/config.json ]] || { echo "$full: no model dir yet"; exit 2; }
    for spec in "$@"; do
        preset=${spec%%=*}; config=${spec#*=}; [[ $config == "$spec" ]] && config=configs/compress.yaml
        run=$STAGE/runs/$preset; mkdir -p "$run"
        resume=(); [[ -f $run/checkpoint.pt ]] && resume=(--resume)
        setsid nohup "$PY" -m usad.compress --teacher "$full" --preset "$preset" --init "${INIT:-every-kth}" \
            --config "$config" --out "$run" --set "data.corpus=[$corpus]" --set "data.workers=${WORKERS:-2}" \
            --set "train.max_steps=${STEPS:-2000}" --set "train.max_minutes=${MINUTES:-4}" "${sets[@]}" \
            "${resume[@]}" > "$run/stdout.log" 2>&1 < /dev/null &
        echo $! > "$run/pid"
        echo "$preset: compressing from $full (pid $!, config $config)"
    done ;;
export-models)  # export-models RUN ...: the runs' model dirs as bf16 safetensors, tarred in 15 MiB parts, into $OUT
    mkdir -p "$DEST/models"
    for name in "${@:2}"; do
        "$PY" scripts/gpu/to_bf16.py "$STAGE/runs/$name/model" "$DEST/models/$name"
        cp "$STAGE/runs/$name/train_log.jsonl" "$DEST/models/$name/" 2>/dev/null || true
    done
    tar -C "$DEST" -cf - models | split -b 15M - "$DEST/models.tar.part-"
    rm -rf "$DEST/models"; ls -la "$DEST" ;;
export)  # export NAME: the run's resume pack (recipe, cursors, bf16 weights) and logs into $OUT: 8 files <= 16 MiB
    run=$STAGE/runs/${2:?export needs a run name}
    mkdir -p "$DEST/$2"
    cp "$run"/resume-pack/* "$run/train_log.jsonl" "$DEST/$2/"
    tail -c 200000 "$run/stdout.log" > "$DEST/$2/stdout.log"
    ls -la "$DEST/$2"; du -sh "$DEST/$2" ;;
*)
    echo "usage: campaign.sh setup [PART] | stage PART | transcode | train NAME CORPUS [NAME CORPUS] | status |"\
         "wait MIN | stop | compress RUN CORPUS PRESET[=CONFIG]... | export NAME | export-models RUN..."
    exit 2 ;;
esac
