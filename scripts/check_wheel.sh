#!/usr/bin/env bash
# The wheel as users get it: built from this checkout, installed into two clean venvs.
#   base (pip install usad-edge):  no torch; `usad --help`, `usad embed` on a real file with the packaged model,
#                                  `usad info` on it, and a torch command that names the extra it needs.
#   all  (pip install usad-edge[all]): every subpackage imports; `usad info` on a torch model dir.
# Commands run from a scratch folder, so Python never imports the checkout instead of the installed wheel.
# Prints each venv's size. Exits non-zero on the first failed check.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PY:-python3}
TORCH=${TORCH:-torch==2.13.0}
AUDIO=$(realpath "${AUDIO:-../shared/data/fsdd/recordings/3_theo_7.flac}" 2>/dev/null || true)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "wheel check FAILED: $*" >&2; exit 1; }

.venv/bin/pip wheel -q --no-deps -w "$WORK/dist" . 2>/dev/null
WHEEL=$(ls "$WORK"/dist/usad_edge-*.whl)
echo "built $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1))"
cd "$WORK"
if [ ! -f "$AUDIO" ]; then  # a user's machine without the project's shared data: speech from espeak-ng
    AUDIO="$WORK/speech.wav"
    espeak-ng -w "$AUDIO" "the quick brown fox jumps over the lazy dog" || fail "no audio to embed (set AUDIO=FILE)"
fi

"$PY" -m venv base
base/bin/pip install -q "$WHEEL"
base/bin/python -c "import torch" 2>/dev/null && fail "the base install pulled torch"
base/bin/usad --help >/dev/null || fail "usad --help"
base/bin/usad embed "$AUDIO" --out emb.npz || fail "usad embed with the packaged model"
DEFAULT=$(base/bin/python -c "from usad.runtime import default_model_dir; print(default_model_dir())")
base/bin/usad info "$DEFAULT" >/dev/null || fail "usad info on the packaged model"
set +e
message=$(base/bin/usad export "$DEFAULT" 2>&1)
code=$?
set -e
[ "$code" = 2 ] && grep -q "usad-edge\[export\]" <<<"$message" || fail "usad export without torch said: $message"
echo "base: ok; venv $(du -sh base | cut -f1), $(base/bin/pip list 2>/dev/null | tail -n +3 | wc -l) packages"

"$PY" -m venv all
all/bin/pip install -q "$TORCH"
all/bin/pip install -q "$WHEEL[all]"
all/bin/python -c "import usad.export, usad.quantize, usad.bench.latency, usad.distill, usad.compress, \
usad.teachers, usad.data.corpus" || fail "a subpackage of [all] does not import"
all/bin/usad info "$REPO/models/usad-tiny-distilled" >/dev/null || fail "usad info on a torch model dir"
echo "all: ok; venv $(du -sh all | cut -f1), $(all/bin/pip list 2>/dev/null | tail -n +3 | wc -l) packages"
