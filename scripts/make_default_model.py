"""Regenerate the default model shipped in the package (usad/assets/usad-default): an INT8 ONNX encoder.

    .venv/bin/python scripts/make_default_model.py                       # fresh usad-tiny, UNTRAINED
    .venv/bin/python scripts/make_default_model.py --model-dir runs/tiny  # a trained (distilled) edge model

The package ships whatever this writes; it must stay <= 8 MB. Without --model-dir the weights are
a seeded random init, and config.json, the ONNX metadata and a runtime warning all say so.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

ASSET_DIR = Path(__file__).resolve().parents[1] / "usad" / "assets" / "usad-default"
MAX_BYTES = 8_000_000
UNTRAINED_NOTE = ("UNTRAINED: a seeded random init of usad-tiny, shipped so `usad embed` works out of the box "
                  "until a distilled edge variant replaces it (scripts/make_default_model.py --model-dir DIR).")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="trained model dir to ship (default: fresh usad-tiny)")
    parser.add_argument("--preset", default="usad-tiny")
    parser.add_argument("--calibration", type=Path, nargs="+", required=True,
                        help="INT8 calibration audio: dirs of audio files or .tar shards (e.g. ../shared/data)")
    parser.add_argument("--out", type=Path, default=ASSET_DIR)
    args = parser.parse_args(argv)

    import torch

    from usad.export.pipeline import export_model_dir
    from usad.model import create_model
    from usad.modeldir import CONFIG_FILE, save

    with tempfile.TemporaryDirectory(prefix="usad-default-") as work:
        work_dir = Path(work) / "model"
        if args.model_dir:
            shutil.copytree(args.model_dir, work_dir)
        else:
            torch.manual_seed(0)
            save(create_model(args.preset), work_dir, extra={"untrained": True, "note": UNTRAINED_NOTE})
        export_model_dir(work_dir, int8=True, calibration=args.calibration)
        int8 = work_dir / "model.int8.onnx"
        if int8.stat().st_size > MAX_BYTES:
            raise SystemExit(f"{int8}: {int8.stat().st_size / 1e6:.1f} MB > {MAX_BYTES / 1e6:.0f} MB package limit")
        if args.out.exists():
            shutil.rmtree(args.out)
        args.out.mkdir(parents=True)
        shutil.copy(int8, args.out / "model.int8.onnx")
        config = json.loads((work_dir / CONFIG_FILE).read_text())
        (args.out / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        shutil.copy(work_dir / "export.json", args.out / "export.json")
        guard = json.loads((work_dir / "export.json").read_text())["files"]["model.int8.onnx"]["guard"]
        status = UNTRAINED_NOTE if config.get("untrained") else f"Trained model from {args.model_dir}."
        (args.out / "README.md").write_text(
            f"# Default model shipped with usad-edge\n\n{config['variant']}, INT8 QDQ ONNX "
            f"({int8.stat().st_size / 1e6:.1f} MB), held-out embedding cosine vs fp32 "
            f"{guard['attempts'][-1]['cosine']:.5f}.\n\n{status}\n\n"
            "Regenerate: `.venv/bin/python scripts/make_default_model.py [--model-dir TRAINED_DIR]`.\n")
    print(f"wrote {args.out}: {sorted(p.name for p in args.out.iterdir())}")
    return args.out


if __name__ == "__main__":
    main()
