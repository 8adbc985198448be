"""Rows of the speech tasks on real voice actors: T7 (spoken phrases of the Hedgewars voice packs,
pack-held-out) and T8 (speaker verification over Hedgewars packs, GCompris and FSDD speakers,
speaker-held-out).

Hedgewars packs: one voice actor each, ~56 game phrases said in character. Default_es/_pl/_ru/_uk
and Russian_pl speak other languages (the game's changelog), so T7 uses the English packs only.
Classic and Default share recordings byte for byte (one actor), and so do Default_pl and Russian_pl.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from usad.data import sources as src
from usad.data import splits as sp
from usad.data.task_rows import capped, gcompris_dedup, row

ENGLISH_PACKS = ("British", "Classic", "Default", "HillBilly", "Mobster", "Pirate", "Robot", "Russian", "Singer",
                 "Surfer")
SAME_ACTOR = {"Classic": "Default", "Russian_pl": "Default_pl"}
# Effort sounds, laughs and coughs are no phrase: left out of T7.
NON_PHRASES = re.compile(r"^(Firepunch|Hmm|Jump|Laugh|Ooff|Ow|Poison)")
SPEAKER_CAPS = {"train": 12, "val": 10, "test": 16}  # clips per speaker in T8


def _voice_items(paths: src.SourcePaths) -> list[src.Item]:
    """Voice files with the bytes' token; a recording found on two sides (copied between packs) is
    dropped, and of copies on one side the first is kept."""
    items = src.game_items(paths, "hedgewars-voices")
    sides = defaultdict(set)
    for item in items:
        sides[src.file_token(item.path)].add(sp.hedgewars_pack_split(item.labels["pack"]))
    kept, seen = [], set()
    for item in items:
        token = src.file_token(item.path)
        if len(sides[token]) == 1 and token not in seen:
            seen.add(token)
            kept.append(src.Item(item.id, item.path, (*item.tokens, token), item.labels))
    return kept


def phrase_rows(paths: src.SourcePaths) -> list[dict]:
    """T7: phrase ID across held-out voice packs; phrases said in every split only."""
    rows = []
    for item in _voice_items(paths):
        pack, stem = item.labels["pack"], item.path.stem
        if pack in ENGLISH_PACKS and not NON_PHRASES.match(stem):
            rows.append(row(item.id, sp.hedgewars_pack_split(pack), re.sub(r"\d+$", "", stem), item.tokens,
                            pack=pack))
    splits_of = defaultdict(set)
    for r in rows:
        splits_of[r["label"]].add(r["split"])
    return [r for r in rows if splits_of[r["label"]] == set(sp.SPLITS)]


def speaker_rows(paths: src.SourcePaths) -> list[dict]:
    """T8: speaker labels across three real sources; a val/test speaker's clips are recordings the
    corpus never takes (held-out GCompris items, held-out FSDD speakers and Hedgewars packs)."""
    rows = []
    for item in _voice_items(paths):
        pack = item.labels["pack"]
        speaker = f"hedgewars:{SAME_ACTOR.get(pack, pack)}"
        rows.append(row(item.id, sp.hedgewars_pack_split(pack), speaker, item.tokens, corpus="hedgewars"))
    for item in src.fsdd_items(paths):
        speaker = item.labels["speaker"]
        rows.append(row(item.id, sp.FSDD_SPEAKER_SPLIT[speaker], f"fsdd:{speaker}", item.tokens, corpus="fsdd"))
    for item in gcompris_dedup(src.gcompris_items(paths)):
        name = item.labels["speaker"]
        if not name or name == "Smart4Kids.com":
            continue
        split = sp.speaker_split(name)
        if split == "train" or sp.gcompris_item_split(item.labels["item"]) != "train":
            rows.append(row(item.id, split, f"gcompris:{name}", item.tokens, corpus="gcompris",
                            lang=item.labels["lang"]))
    counts = Counter((r["label"], r["split"]) for r in rows)
    rows = [r for r in rows if counts[(r["label"], r["split"])] >= 4]  # a speaker needs a few clips
    return capped(rows, SPEAKER_CAPS)
