#!/usr/bin/env bash
# Device command (carry: .gpu): torchaudio's Kaldi fbank of the clips prepared here, into $OUT.
set -euo pipefail
python3 -c 'import torch, torchaudio; print("torch", torch.__version__, "torchaudio", torchaudio.__version__, "cuda", torch.cuda.is_available())'
python3 scripts/make_fbank_fixture.py reference --inputs .gpu/fbank_inputs.safetensors --out "$OUT/fbank_kaldi.safetensors"
