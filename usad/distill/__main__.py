"""``torchrun --nproc_per_node N -m usad.distill --config C --out DIR [--set k=v ...] [--resume]``:
the same entry as ``usad distill``, spelled for torchrun, which needs a module or a script."""

from usad.cli.distill import run_from_argv

if __name__ == "__main__":
    run_from_argv()
