# Sourced by scripts/gpu/*.sh on the GPU machine (repo root as cwd, .whl carried once): the wheels its
# image lacks (soundfile, soxr, webdataset, ...), the repo on PYTHONPATH (bench/ runs as a script there:
# usad.bench is an install-time alias, see usad_cli.py), NVLink multicast kept off. The wheels are
# installed once per machine: reinstalling under running trainings would swap their modules.
if [[ ! -f /tmp/site/.wheels || "$(ls .whl 2>/dev/null)" != "$(cat /tmp/site/.wheels)" ]]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed"; exit 1; }
    ls .whl > /tmp/site/.wheels
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
