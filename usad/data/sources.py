"""Where the raw audio lives and what each file is: FSDD, GCompris voices, drum kits, soundfonts,
game audio and real text for speech synthesis.

Every item carries *source tokens*: stable ids of the recordings (and, for renders, the soundfont
and score) it was made from. The corpus/task leakage check compares these tokens, so one
recording under two names (GCompris ``dup_group``) gets one shared token.
"""

from __future__ import annotations

import csv
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from usad.files import sha256_file


@dataclass(frozen=True)
class SourcePaths:
    """Roots of every source; all overridable (flags / env) so nothing assumes this machine."""

    shared: Path = Path(os.environ.get("USAD_SHARED", "../shared"))
    drumkits: Path = Path("/usr/share/hydrogen/data/drumkits")
    sonic_pi: Path = Path("/usr/share/sonic-pi/samples")
    soundfonts: tuple[Path, ...] = (Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"))
    games: Path = Path("/usr/share/games")
    licenses: Path = Path("/usr/share/common-licenses")

    @property
    def fsdd(self) -> Path:
        return self.shared / "data" / "fsdd" / "recordings"

    @property
    def gcompris(self) -> Path:
        return self.shared / "data" / "gcompris-voices"


@dataclass(frozen=True)
class Item:
    """One source recording (or render recipe) with its labels."""

    id: str
    path: Path | None
    tokens: tuple[str, ...]
    labels: dict = field(default_factory=dict, hash=False, compare=False)


@cache
def file_token(path: Path) -> str:
    """Content token of a file: identical bytes under two names are one recording."""
    return "sha256:" + sha256_file(path)[:20]


# ---------------------------------------------------------------- speech
def fsdd_items(paths: SourcePaths) -> list[Item]:
    items = []
    for path in sorted(paths.fsdd.glob("*.flac")):
        digit, speaker, take = path.stem.split("_")
        items.append(Item(f"fsdd:{path.stem}", path, (f"fsdd:{path.stem}", file_token(path)),
                          {"digit": int(digit), "speaker": speaker, "take": int(take)}))
    return items


def gcompris_items(paths: SourcePaths) -> list[Item]:
    """All GCompris files; tokens name the dup group so re-encoded copies count as one recording."""
    table = paths.gcompris / "speakers.tsv"
    items = []
    with open(table, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            tokens = [f"gcompris:{row['path']}", file_token(paths.gcompris / row["path"])]
            if row["dup_group"]:
                tokens.append(f"gcompris-dup:{row['dup_group']}")
            items.append(Item(f"gcompris:{row['path']}", paths.gcompris / row["path"], tuple(tokens),
                              {"lang": row["lang"], "category": row["category"], "item": row["item"],
                               "speaker": row["speaker"], "dup_group": row["dup_group"]}))
    return items


def real_text_sentences(paths: SourcePaths) -> list[tuple[str, str]]:
    """(origin, sentence) pairs of real English prose for synthetic speech: licence texts and the
    Wesnoth unit/help descriptions. Sorted and de-duplicated for a deterministic order."""
    texts: list[tuple[str, str]] = []
    for path in sorted(paths.licenses.glob("*")):
        if path.is_file():
            texts.append((f"license:{path.name}", path.read_text(errors="replace")))
    wesnoth = paths.games / "wesnoth"
    pattern = re.compile(r'(?:description|story|message|text|note)\s*=\s*_\s*"((?:[^"]|"")+)"', re.S)
    for path in sorted(wesnoth.glob("*/data/**/*.cfg")):
        body = path.read_text(errors="replace")
        for match in pattern.finditer(body):
            texts.append((f"wesnoth:{path.name}", match.group(1).replace('""', '"')))
    seen, out = set(), []
    for origin, text in texts:
        text = re.sub(r"<[^>]*>|[\[\]{}#*_=|~^`]", " ", text)
        for sentence in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text)):
            sentence = sentence.strip()
            words = sentence.split()
            if 4 <= len(words) <= 60 and sentence not in seen and sum(c.isalpha() for c in sentence) > 20:
                seen.add(sentence)
                out.append((origin, sentence))
    return out


# ---------------------------------------------------------------- drums
DRUM_CLASSES = ("kick", "snare", "hihat", "tom", "cymbal", "clap")
_DRUM_RULES = (  # first match wins; order matters (e.g. "ride-crash" is a cymbal, "bass drum" a kick)
    ("hihat", r"hi[- ]?hat|\bhh\b|hh\d|\bhat\b|hat[ _]|ohh|cymbal_closed|cymbal_open|cymbal_pedal"),
    ("cymbal", r"crash|ride|cymbal|splash|china|\bbell\b"),
    ("clap", r"clap|snap"),
    ("kick", r"kick|bass ?drum|bassdrum|\bbd\b|^bd_|drum_bass|\bkik\b"),
    ("snare", r"snare|^sn_|rimshot|\brim\b"),
    ("tom", r"\btom|tom[ _-]|floor tom|tom\d|_tom_"),
)


def drum_class(name: str) -> str | None:
    name = name.lower().replace("_", " ").replace("-", " ") + " " + name.lower()
    for label, rule in _DRUM_RULES:
        if re.search(rule, name):
            return label
    return None


def drum_items(paths: SourcePaths) -> list[Item]:
    """Every sample of every Hydrogen kit and of Sonic Pi (one 'kit'), with a class where its
    instrument name says one (``labels['class']`` None otherwise)."""
    items = []
    for kit_xml in sorted(paths.drumkits.glob("*/drumkit.xml")):
        kit = kit_xml.parent.name
        root = ET.parse(kit_xml).getroot()
        ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        seen = set()
        for inst in root.iter(f"{ns}instrument"):
            name = (inst.findtext(f"{ns}name") or "").strip()
            files = [e.text for e in inst.iter(f"{ns}filename") if e.text]
            for fname in files:
                path = kit_xml.parent / fname
                if fname in seen or not path.is_file():
                    continue
                seen.add(fname)
                items.append(Item(f"drum:{kit}/{fname}", path, (f"drum:{kit}/{fname}", file_token(path)),
                                  {"kit": kit, "instrument": name, "class": drum_class(name) or drum_class(fname)}))
    for path in sorted(paths.sonic_pi.glob("*.flac")):
        items.append(Item(f"drum:sonic-pi/{path.name}", path, (f"drum:sonic-pi/{path.name}", file_token(path)),
                          {"kit": "sonic-pi", "instrument": path.stem, "class": drum_class(path.stem)}))
    return items


# ---------------------------------------------------------------- soundfonts and game audio
def soundfonts(paths: SourcePaths) -> dict[str, Path]:
    """Installed soundfonts by real file name; Debian's ``default-GM`` and alternatives symlinks
    resolve to the file they point at, so each soundfont appears once under a stable name."""
    found = {}
    for folder in paths.soundfonts:
        for path in sorted(folder.glob("*.sf[23]")):
            real = path.resolve()
            if real.is_file():
                found.setdefault(real.name, real)
    return dict(sorted(found.items()))


GAME_AUDIO = {  # source name -> (domain, glob patterns under paths.games)
    "wesnoth-music": ("music", ("wesnoth/*/data/core/music/*.ogg",)),
    "hedgewars-music": ("music", ("hedgewars/Data/Music/*.ogg",)),
    "supertuxkart-music": ("music", ("supertuxkart/data/music/*.ogg",)),
    "wesnoth-sfx": ("sound", ("wesnoth/*/data/core/sounds/**/*.ogg", "wesnoth/*/data/core/sounds/**/*.wav")),
    "hedgewars-sfx": ("sound", ("hedgewars/Data/Sounds/*.ogg",)),
    "supertuxkart-sfx": ("sound", ("supertuxkart/data/sfx/*.ogg",)),
    "hedgewars-voices": ("speech", ("hedgewars/Data/Sounds/voices/**/*.ogg",)),
}


def game_items(paths: SourcePaths, source: str) -> list[Item]:
    _, patterns = GAME_AUDIO[source]
    files = sorted({p for pattern in patterns for p in paths.games.glob(pattern) if p.is_file()})
    # Path ids are token enough for game audio (hashing 1 GB would be slow); a voice's pack is its speaker.
    items = []
    for p in files:
        item_id = f"{source}:{p.relative_to(paths.games)}"
        labels = {"id": item_id} | ({"pack": p.parent.name} if source == "hedgewars-voices" else {})
        items.append(Item(item_id, p, (item_id,), labels))
    return items
