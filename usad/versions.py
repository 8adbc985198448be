"""The versions of the libraries that results depend on, recorded in every bench and export JSON."""

from __future__ import annotations

from importlib import metadata

LIBRARIES = ("usad-edge", "torch", "onnxruntime", "onnx", "onnxscript", "numpy", "scikit-learn", "soundfile", "soxr")


def library_versions() -> dict[str, str]:
    """Versions as installed (absent ones left out)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name.replace("-", "_")] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
