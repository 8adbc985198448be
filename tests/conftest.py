import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
# The packaged default model (usad/assets/usad-default, chosen by scripts/make_default_model.py): what `usad embed`
# with no model returns, (hidden states, dim) per clip, at its frame rate.
_DEFAULT_ENCODER = json.loads((Path(__file__).resolve().parents[1] / "usad/assets/usad-default/config.json")
                              .read_text())["encoder"]
DEFAULT_LAYERS, DEFAULT_DIM = _DEFAULT_ENCODER["depth"] + 1, _DEFAULT_ENCODER["dim"]
DEFAULT_RATE = _DEFAULT_ENCODER["frame_rate"]


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


def ogg_bytes(seconds: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 22050)) / 22050
    audio = 0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    buf = io.BytesIO()
    sf.write(buf, audio.astype(np.float32), 22050, format="OGG", subtype="VORBIS")
    return buf.getvalue()


@pytest.fixture
def tree(tmp_path):
    """/usr/share and /usr/share/games in miniature: Tux Paint stamps (speech + effects), a UFO:AI sound
    pack (zip), Warzone 2100 music (one file twice under two names) and Fish Fillets dialogue."""
    share = tmp_path / "share"
    stamps = share / "tuxpaint" / "stamps" / "animals"
    stamps.mkdir(parents=True)
    (stamps / "cat.ogg").write_bytes(ogg_bytes(1.5, 1))
    (stamps / "cat_desc_fr.ogg").write_bytes(ogg_bytes(2.0, 2))
    (stamps / "cat_desc_ru.ogg").write_bytes(ogg_bytes(2.0, 3))
    games = share / "games"
    (games / "ufoai" / "base").mkdir(parents=True)
    with zipfile.ZipFile(games / "ufoai" / "base" / "0snd.pk3", "w") as zf:
        zf.writestr("sound/aliens/roar.ogg", ogg_bytes(1.0, 4))
        zf.writestr("sound/doors/open.ogg", ogg_bytes(0.8, 5))
        zf.writestr("textures/wall.png", b"not audio")
    music = games / "warzone2100" / "music" / "albums" / "a"
    music.mkdir(parents=True)
    song = ogg_bytes(25.0, 6)
    (music / "track1.opus").write_bytes(song)
    (music / "track1-copy.opus").write_bytes(song)
    lines = games / "fillets-ng" / "sound" / "city" / "cs"
    lines.mkdir(parents=True)
    (lines / "vit-m-hlava.ogg").write_bytes(ogg_bytes(3.0, 7))
    (games / "fillets-ng" / "sound" / "city" / "bubble.ogg").write_bytes(ogg_bytes(0.5, 8))
    from usad.data.sources import SourcePaths

    return SourcePaths(shared=tmp_path / "no-shared", games=games, share=share)
