"""Corpus recipes: every source of the distillation corpus, its domain and share, and how it turns
into clip jobs for the worker (``usad.data.worker``).

Real recordings come first in each domain, each capped at a share of the domain's budget;
synthetic sources (speech of real text, renders of real scores, scenes of real sound effects) fill
what is left. Job generators are deterministic: files in a hashed order, duplicates (the same
bytes under two names or in two packages) dropped, and only recordings on the training side of
every task (``splits.corpus_allows``). Where the audio comes from: docs/corpus-sources.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from usad.data import sources as src
from usad.data.splits import corpus_allows, soundfont_split, stable_fraction
from usad.data.synth import ESPEAK_VARIANTS, ESPEAK_VOICES, FLITE_VOICES
from usad.data.worker import Job

WORDS_PER_TTS_CLIP = 24
SCORE_COMPOSERS = ("bach", "beethoven", "mozart", "haydn", "handel", "corelli", "monteverdi", "palestrina",
                   "schubert", "schumann_robert", "schumann_clara", "joplin", "chopin", "cpebach", "verdi",
                   "weber", "josquin", "ciconia", "trecento", "luca", "airdsAirs", "miscFolk")
MAX_SCORE_BYTES = 400_000  # huge scores take minutes to parse; the corpus has plenty of small ones
MAX_SCENE_EVENT_SECONDS = 30.0
SCENE_SOURCES = ("wesnoth-sfx", "hedgewars-sfx", "supertuxkart-sfx", "megaglest-sfx", "ufoai-sfx", "tuxpaint-sfx",
                 "retro-sfx", "wordwarvi-hyperrogue-sfx", "0ad-sfx")


@dataclass(frozen=True)
class SourceRecipe:
    name: str
    domain: str
    share: float  # cap as a fraction of the domain budget; 1.0 for fill sources (they take the rest)
    real: bool
    jobs: Callable[[src.SourcePaths], Iterator[Job]]


def _distinct(items: list[src.Item], salt: str) -> list[src.Item]:
    """Items in a hashed (deterministic, source-mixed) order, the first of each identical content only."""
    seen, out = set(), []
    for item in sorted(items, key=lambda item: stable_fraction(f"{salt}:{item.id}")):
        token = src.content_token(item)
        if token not in seen:
            seen.add(token)
            out.append(item)
    return out


def _file_jobs(source: str, domain: str, items) -> Iterator[Job]:
    for item in _distinct(items, source):
        tokens = tuple(dict.fromkeys((*item.tokens, src.content_token(item))))
        yield Job(source, domain, "file", (str(item.path), item.labels.get("member", "")), tokens)


def _fsdd(paths):
    items = [i for i in src.fsdd_items(paths) if corpus_allows("fsdd", i.labels)]
    return _file_jobs("fsdd", "speech", items)


def _gcompris(paths):
    """Training-side items only; a dup_group (one recording under several names, possibly of items on
    different sides) counts as held out when any of its names is."""
    items = src.gcompris_items(paths)
    held_groups = {i.labels["dup_group"] for i in items
                   if i.labels["dup_group"] and not corpus_allows("gcompris", i.labels)}
    items = [i for i in items if corpus_allows("gcompris", i.labels) and i.labels["dup_group"] not in held_groups]
    return _file_jobs("gcompris", "speech", items)


def _drums(paths):
    items = [i for i in src.drum_items(paths) if corpus_allows("drum", i.labels)]
    return _file_jobs("drumkits", "sound", items)


def _game(source: str):
    domain = src.GAME_AUDIO[source].domain

    def jobs(paths):
        items = [i for i in src.game_items(paths, source) if corpus_allows(source, i.labels)]
        return _file_jobs(source, domain, items)
    return jobs


def _tts(engine: str):
    if engine == "flite":
        voices = FLITE_VOICES
    else:
        voices = tuple(f"{v}+{variant}" for v in ESPEAK_VOICES for variant in ESPEAK_VARIANTS)

    def jobs(paths):
        sentences = src.real_text_sentences(paths)
        order = sorted(range(len(sentences)), key=lambda i: stable_fraction(f"{engine}:{i}"))
        group: list[str] = []
        origins: set[str] = set()
        for n, index in enumerate(order):
            origin, sentence = sentences[index]
            group.append(sentence)
            origins.add(origin)
            if sum(len(s.split()) for s in group) >= WORDS_PER_TTS_CLIP or n == len(order) - 1:
                text = " ".join(group)
                u = stable_fraction(f"{engine}:voice:{text}")
                voice = voices[int(u * len(voices))]
                rate = 130 + int(stable_fraction(f"{engine}:rate:{text}") * 60)
                yield Job(f"tts-{engine}", "speech", "tts", (engine, voice, rate, text),
                          tuple(f"text:{o}" for o in sorted(origins)))
                group, origins = [], set()
    return jobs


def _renders(paths):
    from music21 import corpus as m21corpus

    fonts = [p for name, p in src.soundfonts(paths).items() if soundfont_split(name) == "train"]
    if not fonts:
        raise RuntimeError("no training-side soundfont installed (make corpus-deps)")
    scores = []
    for composer in SCORE_COMPOSERS:
        for path in m21corpus.getComposer(composer):
            path = Path(path)
            if path.stat().st_size <= MAX_SCORE_BYTES:
                scores.append(path)
    scores = sorted(set(scores), key=lambda p: stable_fraction(f"score:{p.parent.name}/{p.name}"))
    for n, score in enumerate(scores):
        font = fonts[int(stable_fraction(f"font:{score.name}") * len(fonts))]
        score_id = f"{score.parent.name}/{score.name}"
        yield Job("fluidsynth-scores", "music", "render", (str(score), str(font), n, 240.0),
                  (f"soundfont:{font.name}", f"score:{score_id}"))


def _scenes(paths):
    """Scenes of real events from every training-side sound source (drums and game effects)."""
    pool = [i for i in src.drum_items(paths) if corpus_allows("drum", i.labels)]
    for source in SCENE_SOURCES:
        pool += [i for i in src.game_items(paths, source) if corpus_allows(source, i.labels)]
    pool = [i for i in _distinct(pool, "scene-pool") if src.item_seconds(i) <= MAX_SCENE_EVENT_SECONDS]
    if not pool:
        raise RuntimeError("no sound effects installed for scenes (make corpus-deps)")
    for n in itertools.count():
        rng_key = f"scene:{n}"
        count = 3 + int(stable_fraction(rng_key) * 6)
        picks = [pool[int(stable_fraction(f"{rng_key}:{k}") * len(pool))] for k in range(count)]
        tokens = tuple(sorted({t for item in picks for t in (*item.tokens, src.content_token(item))}))
        events = tuple((str(i.path), i.labels.get("member", "")) for i in picks)
        yield Job("sfx-scenes", "sound", "scene", (n, events), tokens)


RECIPES = (
    # speech: about 7.5 h of real recordings are on hand, so the synthetic sources are a fallback.
    SourceRecipe("fsdd", "speech", 0.15, True, _fsdd),
    SourceRecipe("gcompris", "speech", 0.3, True, _gcompris),
    SourceRecipe("hedgewars-voices", "speech", 0.15, True, _game("hedgewars-voices")),
    SourceRecipe("0ad-voices", "speech", 0.05, True, _game("0ad-voices")),
    SourceRecipe("ktuberling-voices", "speech", 0.1, True, _game("ktuberling-voices")),
    SourceRecipe("tuxpaint-voices", "speech", 0.4, True, _game("tuxpaint-voices")),
    SourceRecipe("fillets-voices", "speech", 0.45, True, _game("fillets-voices")),
    SourceRecipe("tts-flite", "speech", 0.25, False, _tts("flite")),
    SourceRecipe("tts-espeak-ng", "speech", 1.0, False, _tts("espeak-ng")),
    # sound: every real effect and ambience (about 3.3 h), then scenes made of them.
    SourceRecipe("drumkits", "sound", 0.3, True, _drums),
    SourceRecipe("wesnoth-sfx", "sound", 0.2, True, _game("wesnoth-sfx")),
    SourceRecipe("hedgewars-sfx", "sound", 0.1, True, _game("hedgewars-sfx")),
    SourceRecipe("supertuxkart-sfx", "sound", 0.2, True, _game("supertuxkart-sfx")),
    SourceRecipe("megaglest-sfx", "sound", 0.3, True, _game("megaglest-sfx")),
    SourceRecipe("0ad-sfx", "sound", 0.2, True, _game("0ad-sfx")),
    SourceRecipe("ufoai-sfx", "sound", 0.2, True, _game("ufoai-sfx")),
    SourceRecipe("tuxpaint-sfx", "sound", 0.1, True, _game("tuxpaint-sfx")),
    SourceRecipe("retro-sfx", "sound", 0.1, True, _game("retro-sfx")),
    SourceRecipe("wordwarvi-hyperrogue-sfx", "sound", 0.1, True, _game("wordwarvi-hyperrogue-sfx")),
    SourceRecipe("sfx-scenes", "sound", 1.0, False, _scenes),
    # music: about 18 h of real recordings; the shares spread the budget over eight collections.
    SourceRecipe("wesnoth-music", "music", 0.15, True, _game("wesnoth-music")),
    SourceRecipe("hedgewars-music", "music", 0.1, True, _game("hedgewars-music")),
    SourceRecipe("supertuxkart-music", "music", 0.1, True, _game("supertuxkart-music")),
    SourceRecipe("warzone2100-music", "music", 0.15, True, _game("warzone2100-music")),
    SourceRecipe("ufoai-music", "music", 0.15, True, _game("ufoai-music")),
    SourceRecipe("nexuiz-music", "music", 0.1, True, _game("nexuiz-music")),
    SourceRecipe("indie-game-music", "music", 0.15, True, _game("indie-game-music")),
    SourceRecipe("drascula-hyperrogue-music", "music", 0.1, True, _game("drascula-hyperrogue-music")),
    SourceRecipe("fluidsynth-scores", "music", 1.0, False, _renders),
)
RECIPE_NAMES = tuple(r.name for r in RECIPES)
