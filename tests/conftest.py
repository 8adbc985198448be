from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared is not beside the repository")
    return SHARED


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def untrained_teacher(tmp_path_factory):
    """name -> directory of a randomly initialised teacher of that published architecture
    (usad.teachers.untrained), written once per session: WavLM Base+ alone is 380 MB."""
    from usad.teachers.untrained import write_untrained

    root, made = tmp_path_factory.mktemp("untrained-teachers"), {}

    def get(name: str) -> Path:
        if name not in made:
            made[name] = write_untrained(name, root / name)
        return made[name]

    return get
