#!/usr/bin/env bash
# Local step: the wheels the GPU image lacks, into .whl/ (git-ignored; carry it on the first call).
# The image has torch, numpy, pyyaml, typer, click, rich, shellingham, pygments, markdown-it-py, mdurl
# (KINDS.md); it lacks soundfile (with libsndfile and Opus inside its manylinux wheel), soxr, cffi,
# pycparser, webdataset and braceexpand. Versions are those this project's tests run with.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
mkdir -p .whl
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
for name in soundfile soxr cffi pycparser webdataset braceexpand; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "$name==$(version $name)"
done
ls -la .whl; du -sh .whl
