# Sourced by scripts/gpu/distill_*.sh on the GPU machine (repo root as cwd, .whl carried):
# the wheels its image lacks (soundfile, soxr, typer, ...), the repo on PYTHONPATH (bench/ runs as
# a script there: usad.bench is an install-time alias), NVLink multicast kept off.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
