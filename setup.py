"""Package discovery. The distribution is the ``usad`` package plus three top-level folders that the project keeps
beside it and installs as its subpackages: ``export/`` -> ``usad.export``, ``quantize/`` -> ``usad.quantize``,
``bench/`` -> ``usad.bench``. Everything else is in pyproject.toml.

Tools that read source trees need to be told of that remap once: ruff through
``[tool.ruff.lint.isort] known-first-party`` (pyproject.toml), the layout check through ``REMAPPED`` below
(scripts/check_layout.py imports it).
"""

from setuptools import find_namespace_packages, setup

REMAPPED = ("export", "quantize", "bench")


# Folders that hold no package data: bytecode caches and the bench's committed results.
EXCLUDED = ("*.__pycache__", "bench.results", "bench.results.*")


def _discover(top: str) -> list[str]:
    # Namespace discovery: data folders (usad/assets, bench/tasks) are packages too, so their files install.
    return find_namespace_packages(include=[top, f"{top}.*"], exclude=EXCLUDED)


def package_map() -> dict[str, str]:
    """Import name -> folder for every package of the distribution."""
    mapping = {name: name.replace(".", "/") for name in _discover("usad")}
    for folder in REMAPPED:
        mapping |= {f"usad.{name}": name.replace(".", "/") for name in _discover(folder)}
    return mapping


if __name__ == "__main__":
    packages = package_map()
    setup(packages=list(packages), package_dir=packages)
