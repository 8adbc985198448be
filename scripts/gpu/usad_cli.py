"""The ``usad`` command where the package is not installed (the GPU machine runs the repo from its tree):
the repo on sys.path, and ``usad.bench`` / ``usad.export`` / ``usad.quantize`` mapped onto their top-level
folders as pyproject's package-dir does for an install.

    python3 scripts/gpu/usad_cli.py data transcode SRC --to flac --out DST
    python3 scripts/gpu/usad_cli.py bench decode CORPUS --workers 1,2,4,8
    python3 scripts/gpu/usad_cli.py -m bench.throughput --config ...     (a bench script, as ``python -m``)
"""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    import usad

    for name in ("bench", "export", "quantize"):
        if importlib.util.find_spec(f"usad.{name}") is None:
            spec = importlib.util.spec_from_file_location(f"usad.{name}", ROOT / name / "__init__.py",
                                                          submodule_search_locations=[str(ROOT / name)])
            module = importlib.util.module_from_spec(spec)
            sys.modules[f"usad.{name}"] = module
            spec.loader.exec_module(module)
            setattr(usad, name, module)
    if sys.argv[1:2] == ["-m"]:
        module_name = sys.argv[2]
        sys.argv = [module_name, *sys.argv[3:]]
        runpy.run_module(module_name, run_name="__main__", alter_sys=True)
    else:
        from usad.cli import app

        app(prog_name="usad")
