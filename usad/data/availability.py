"""What each task's audio is made from, and the one line that names what to install when it is absent.

A task whose sources are missing is reported and skipped (``missing``), never half-built into arrays
that fail later: the message names the Debian package, the PyPI package or the shared folder.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from usad.data import sources as src


@dataclass(frozen=True)
class Need:
    what: str
    install: str
    present: Callable[[src.SourcePaths], bool]


def _any_file(folder, pattern: str) -> bool:
    return folder.is_dir() and any(folder.glob(pattern))


def _game(source: str) -> Callable[[src.SourcePaths], bool]:
    return lambda paths: bool(src.game_items(paths, source))


NEEDS = {
    "fsdd": Need("FSDD recordings", "the shared data folder (../shared or $USAD_SHARED)",
                 lambda p: _any_file(p.fsdd, "*.flac")),
    "gcompris": Need("GCompris voices", "the shared data folder (../shared or $USAD_SHARED)",
                     lambda p: (p.gcompris / "speakers.tsv").is_file()),
    "drumkits": Need("Hydrogen drum kits", "the Debian package hydrogen-drumkits (make system-deps)",
                     lambda p: _any_file(p.drumkits, "*/drumkit.xml")),
    "sonic-pi": Need("Sonic Pi samples", "the Debian package sonic-pi-samples (make system-deps)",
                     lambda p: _any_file(p.sonic_pi, "*.flac")),
    "fluidsynth": Need("fluidsynth", "the Debian package fluidsynth (make system-deps)",
                       lambda p: shutil.which("fluidsynth") is not None),
    "FluidR3Mono_GM.sf3": Need("the FluidR3Mono soundfont", "the Debian package fluidr3mono-gm-soundfont "
                               "(make system-deps)", lambda p: "FluidR3Mono_GM.sf3" in src.soundfonts(p)),
    "TimGM6mb.sf2": Need("the TimGM6mb soundfont", "the Debian package timgm6mb-soundfont (make system-deps)",
                         lambda p: "TimGM6mb.sf2" in src.soundfonts(p)),
    "hedgewars-voices": Need("Hedgewars voice packs", "the Debian package hedgewars-data (make system-deps)",
                             _game("hedgewars-voices")),
    "wesnoth-music": Need("Wesnoth music", "the Debian package wesnoth-1.16-music (make system-deps)",
                          _game("wesnoth-music")),
    "wesnoth-sfx": Need("Wesnoth sound effects", "the Debian package wesnoth-1.16-data (make system-deps)",
                        _game("wesnoth-sfx")),
    "supertuxkart": Need("SuperTuxKart music and effects", "the Debian package supertuxkart-data "
                         "(make system-deps)", _game("supertuxkart-music")),
    "music21": Need("the music21 score corpus", "the PyPI package music21 (pip install usad-edge[data])",
                    lambda p: importlib.util.find_spec("music21") is not None),
}
INTERFERENCE_NEEDS = ("hedgewars-voices", "wesnoth-music", "wesnoth-sfx", "supertuxkart")


def missing(paths: src.SourcePaths, needs: tuple[str, ...]) -> str | None:
    """None when every need is present, else one line naming what is absent and how to install it."""
    absent = [NEEDS[n] for n in needs if not NEEDS[n].present(paths)]
    if not absent:
        return None
    return "; ".join(f"{n.what} not found: install {n.install}" for n in absent)
