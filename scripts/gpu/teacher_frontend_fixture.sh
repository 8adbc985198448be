#!/usr/bin/env bash
# Device command: torchaudio's ATST-Frame and BEATs front ends of the clips prepared here, into $OUT.
#   locally first: .venv/bin/python scripts/make_teacher_frontend_fixture.py inputs --out .gpu/teacher_frontend_inputs.safetensors
#   device run, kind nvidia-h200, carry [.gpu/teacher_frontend_inputs.safetensors] (256 KB), < 1 min:
#       bash scripts/gpu/teacher_frontend_fixture.sh
#   comes back: $OUT/teacher_frontends.safetensors (~0.6 MB) -> copy to tests/fixtures/ and commit.
set -euo pipefail
OUT=${OUT:?set by the device tool}
python3 -c 'import torch, torchaudio; print("torch", torch.__version__, "torchaudio", torchaudio.__version__)'
python3 scripts/make_teacher_frontend_fixture.py reference --inputs .gpu/teacher_frontend_inputs.safetensors \
    --out "$OUT/teacher_frontends.safetensors"
