"""Where the raw audio lives and what each file is: FSDD, GCompris voices, drum kits, soundfonts,
game audio and real text for speech synthesis.

Every item carries *source tokens*: stable ids of the recordings (and, for renders, the soundfont
and score) it was made from. The corpus/task leakage check compares these tokens, so one
recording under two names (GCompris ``dup_group``) gets one shared token.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import os
import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import NamedTuple

import soundfile as sf

from usad.audio import audio_duration
from usad.files import sha256_file


@dataclass(frozen=True)
class SourcePaths:
    """Roots of every source; all overridable (flags / env) so nothing assumes this machine."""

    shared: Path = Path(os.environ.get("USAD_SHARED", "../shared"))
    drumkits: Path = Path("/usr/share/hydrogen/data/drumkits")
    sonic_pi: Path = Path("/usr/share/sonic-pi/samples")
    soundfonts: tuple[Path, ...] = (Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"))
    games: Path = Path("/usr/share/games")
    share: Path = Path("/usr/share")
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


class PackageAudio(NamedTuple):
    """Audio that a Debian data package installs: which domain, which files, under which licence."""

    domain: str
    patterns: tuple[str, ...]  # globs under the root; "ARCHIVE.zip:GLOB" (or .pk3) reads zip members
    package: str
    licence: str
    root: str = "games"  # a SourcePaths field: "games" (/usr/share/games) or "share" (/usr/share)
    exclude: tuple[str, ...] = ()  # fnmatch patterns of file names to leave out (music inside an sfx folder)


GAME_AUDIO = {  # source name -> where its audio is. Ids are paths under the root: never change a root.
    "wesnoth-music": PackageAudio("music", ("wesnoth/*/data/core/music/*.ogg",), "wesnoth-1.16-music",
                                  "GPL-2+"),
    "hedgewars-music": PackageAudio("music", ("hedgewars/Data/Music/*.ogg",), "hedgewars-data", "GPL-2 / CC BY-SA"),
    "supertuxkart-music": PackageAudio("music", ("supertuxkart/data/music/*.ogg",), "supertuxkart-data",
                                       "GPL-3+ / CC BY-SA"),
    "wesnoth-sfx": PackageAudio("sound", ("wesnoth/*/data/core/sounds/**/*.ogg", "wesnoth/*/data/core/sounds/**/*.wav"),
                                "wesnoth-1.16-data", "GPL-2+"),
    "hedgewars-sfx": PackageAudio("sound", ("hedgewars/Data/Sounds/*.ogg",), "hedgewars-data", "GPL-2 / CC BY-SA"),
    "supertuxkart-sfx": PackageAudio("sound", ("supertuxkart/data/sfx/*.ogg",), "supertuxkart-data",
                                     "GPL-3+ / CC BY-SA"),
    "hedgewars-voices": PackageAudio("speech", ("hedgewars/Data/Sounds/voices/**/*.ogg",), "hedgewars-data",
                                     "GPL-2 / CC BY-SA"),
    # Recorded speech: Tux Paint's spoken stamp descriptions (volunteers and school children, 12 languages),
    # Fish Fillets' dialogues (voice actors, Czech, Dutch and English), KTuberling's object names (28 languages).
    "tuxpaint-voices": PackageAudio("speech", ("tuxpaint/stamps/**/*_desc*.ogg",), "tuxpaint-stamps-default",
                                    "GPL-2", root="share"),
    "fillets-voices": PackageAudio("speech", ("fillets-ng/sound/*/??/*.ogg",), "fillets-ng-data(-cs, -nl)", "GPL-2+"),
    "ktuberling-voices": PackageAudio("speech", ("ktuberling/sounds/*/*.ogg",), "ktuberling-data", "GPL-2+",
                                      root="share"),
    # Sound effects and ambience.
    "megaglest-sfx": PackageAudio("sound", ("megaglest/techs/*/commondata/sounds/**/*.wav",
                                            "megaglest/techs/*/factions/*/units/*/sounds/**/*.wav",
                                            "megaglest/tilesets/*/sounds/**/*.wav",
                                            "megaglest/tilesets/*/sounds/**/*.ogg",
                                            "megaglest/data/core/menu/sound/*.wav",
                                            "megaglest/data/core/water_sounds/*.wav"), "megaglest-data",
                                  "CC BY-SA 3.0"),
    "ufoai-sfx": PackageAudio("sound", ("ufoai/base/0snd.pk3:sound/*.ogg", "ufoai/base/0snd.pk3:sound/*.wav"),
                              "ufoai-sound", "GPL-2+ / CC BY 3.0"),
    "tuxpaint-sfx": PackageAudio("sound", ("tuxpaint/stamps/**/*.ogg", "tuxpaint/stamps/**/*.wav"),
                                 "tuxpaint-stamps-default", "GPL-2", root="share", exclude=("*_desc*",)),
    "retro-sfx": PackageAudio("sound", ("colobot/sounds/*.wav", "colobot/sounds/*.ogg", "lugaru/Sounds/*.ogg",
                                        "frozen-bubble/snd/*.ogg", "warmux/sound/default/*/*.ogg",
                                        "fillets-ng/sound/*/*.ogg"),
                              "colobot-common-sounds, lugaru-data, frozen-bubble-data, warmux-data, fillets-ng-data",
                              "GPL-2+ / GPL-3+ / CC BY-SA", exclude=("*zik*",)),
    "wordwarvi-hyperrogue-sfx": PackageAudio("sound", ("wordwarvi/sounds/*.ogg", "hyperrogue/sounds/*.ogg"),
                                             "wordwarvi-sound, hyperrogue-music", "GPL-2+", root="share",
                                             exclude=("*mono*mix*", "lucky*", "highscoremusic*")),
    "0ad-sfx": PackageAudio("sound", tuple(f"0ad/mods/public/public.zip:audio/{kind}/*.ogg" for kind in
                                           ("ambient", "actor", "attack", "interface", "resource")),
                            "0ad-data", "CC BY-SA 3.0"),
    "0ad-voices": PackageAudio("speech", ("0ad/mods/public/public.zip:audio/voice/*.ogg",), "0ad-data", "CC BY-SA 3.0"),
    # Music.
    "warzone2100-music": PackageAudio("music", ("warzone2100/music/**/*.opus",), "warzone2100-music",
                                      "CC0 / GPL-2+"),
    "ufoai-music": PackageAudio("music", ("ufoai/base/0music.pk3:music/*.ogg",), "ufoai-music", "GPL-2+ / CC BY 3.0"),
    "nexuiz-music": PackageAudio("music", ("nexuiz/data/music.pk3:sound/cdtracks/*.ogg",), "nexuiz-music", "GPL-2+"),
    "indie-game-music": PackageAudio("music", ("singularity/music/**/*.ogg", "colobot/music/*.ogg",
                                               "megaglest/techs/*/factions/*/music/*.ogg",
                                               "megaglest/data/core/menu/music/*.ogg", "warmux/music/*/*.ogg",
                                               "fillets-ng/music/*.ogg", "frozen-bubble/snd/*zik*.ogg"),
                                     "singularity-music, colobot-common-sounds, megaglest-data, warmux-data, "
                                     "fillets-ng-data, frozen-bubble-data", "CC BY-SA 3.0 / GPL-2+ / GPL-3+"),
    "drascula-hyperrogue-music": PackageAudio("music", ("scummvm/drascula/audio/*.ogg", "hyperrogue/music/*.ogg",
                                                        "wordwarvi/sounds/*mono*mix*.ogg",
                                                        "wordwarvi/sounds/lucky*.ogg"),
                                              "drascula-music, hyperrogue-music, wordwarvi-sound",
                                              "Drascula licence (BSD-like) / GPL-2+", root="share"),
}


@cache
def open_archive(path: Path | str) -> zipfile.ZipFile:
    """An open zip archive, kept per process: reading 0 A.D.'s 3 GB directory once per member would be slow."""
    return zipfile.ZipFile(path)


def _archive_members(archive: Path, pattern: str) -> list[tuple[str, str]]:
    """(member, content token) for the members of a zip archive matching ``pattern``."""
    return [(info.filename, f"zip-crc:{info.CRC:08x}-{info.file_size}") for info in open_archive(archive).infolist()
            if not info.is_dir() and fnmatch.fnmatch(info.filename, pattern)]


def content_token(item: Item) -> str:
    """Token of an item's bytes: identical audio under two names (or in two packages) is one recording."""
    return item.labels.get("content") or file_token(item.path)


def item_seconds(item: Item) -> float:
    """Duration of a file or archive member, from its header."""
    member = item.labels.get("member")
    if not member:
        return audio_duration(item.path)
    return sf.info(io.BytesIO(open_archive(item.path).read(member))).duration


def game_items(paths: SourcePaths, source: str) -> list[Item]:
    """Files (or archive members, ``labels["member"]``) of one ``GAME_AUDIO`` source in sorted order."""
    entry = GAME_AUDIO[source]
    root = getattr(paths, entry.root)
    found: dict[str, tuple[Path, str, str]] = {}  # item id -> (file, member or "", content token or "")
    for pattern in entry.patterns:
        in_archive = re.fullmatch(r"(.+\.(?:pk3|zip)):(.+)", pattern)
        if in_archive:
            archive_glob, member_glob = in_archive.groups()
            for archive in root.glob(archive_glob):
                for member, token in _archive_members(archive, member_glob):
                    found[f"{source}:{archive.relative_to(root)}:{member}"] = (archive, member, token)
            continue
        for p in root.glob(pattern):
            if p.is_file() and not any(fnmatch.fnmatch(p.name, x) for x in entry.exclude):
                found[f"{source}:{p.relative_to(root)}"] = (p, "", "")
    # Path ids are token enough for game audio (hashing 1 GB would be slow); a voice's pack is its speaker.
    items = []
    for item_id, (p, member, token) in sorted(found.items()):
        labels = {"id": item_id} | ({"pack": p.parent.name} if source == "hedgewars-voices" else {})
        labels |= {"member": member, "content": token} if member else {}
        items.append(Item(item_id, p, (item_id,), labels))
    return items
