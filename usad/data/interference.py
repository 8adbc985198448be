"""Interference for the noisy conditions: real audio of another domain mixed into a task's clips.

Each val/test clip gets a *plan*: pieces of recordings from a pool of its own split, laid end to end
over the clip's length. Music and sound pools are the game audio that ``splits.interference_split``
reserves (val and test pools, never in the corpus or any task); the speech pool is the Hedgewars
voice packs of the same held-out side (``splits.hedgewars_pack_split``; test side only for test
clips). Training clips draw from the training side (game audio the corpus may use, training packs),
for the option of training probes on mixtures. The plan depends on the recording and its split only,
so a recording shared by two tasks (FSDD in T1 and T2) gets the same mixture in both.
A condition applies a plan at one SNR (``mixing.mix_at_snr``); the plan's pieces are source tokens of
the row, so the corpus leak check covers the interference too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from usad.audio import audio_duration, load_audio
from usad.config import SAMPLE_RATE
from usad.data import sources as src
from usad.data import splits as sp

CONDITIONS = {"snr5": 5.0, "snr0": 0.0}  # name -> SNR in dB; "clean" is the clip itself
CONDITION_TITLES = {"clean": "clean", "snr5": "5 dB", "snr0": "0 dB"}
POOL_SOURCES = {"music": ("wesnoth-music", "hedgewars-music", "supertuxkart-music"),
                "sound": ("wesnoth-sfx", "hedgewars-sfx", "supertuxkart-sfx"),
                "speech": ("hedgewars-voices",)}
MAX_POOL_FILE_SECONDS = 600.0
GAP_SECONDS = (0.05, 0.3)  # silence between consecutive short pieces (effects, utterances)


@dataclass(frozen=True)
class PoolItem:
    id: str
    path: str
    seconds: float


def _side(source: str, item: src.Item, split: str) -> bool:
    if source == "hedgewars-voices":
        return sp.hedgewars_pack_split(item.labels["pack"]) == split
    reserved = sp.interference_split(item.id)
    return reserved == split if split != "train" else reserved is None


@cache
def pool(paths: src.SourcePaths, domain: str, split: str) -> tuple[PoolItem, ...]:
    """Recordings of one domain for clips of one split. Voice files whose bytes also appear in a pack
    of another side (Hedgewars copies a few between packs) are left out."""
    items = []
    for source in POOL_SOURCES[domain]:
        found = src.game_items(paths, source)
        if source == "hedgewars-voices":
            sides = defaultdict(set)
            for item in found:
                sides[src.file_token(item.path)].add(sp.hedgewars_pack_split(item.labels["pack"]))
            found = [i for i in found if len(sides[src.file_token(i.path)]) == 1]
        for item in found:
            if _side(source, item, split):
                seconds = audio_duration(item.path)
                if 0.2 <= seconds <= MAX_POOL_FILE_SECONDS:
                    items.append(PoolItem(item.id, str(item.path), round(seconds, 3)))
    return tuple(items)


def plan(items: tuple[PoolItem, ...], seconds: float, key: str) -> list[list]:
    """Pieces [item_id, source_start_s, clip_start_s, length_s] covering ``seconds``: one stretch of a
    long recording (music), or short recordings one after another with small gaps."""
    if not items:
        raise FileNotFoundError("empty interference pool")
    rng = np.random.default_rng(int(sp.stable_fraction(f"interference-plan:{key}") * 2 ** 48))
    pieces, at = [], 0.0
    while at < seconds - 0.05:
        item = items[rng.integers(len(items))]
        length = min(item.seconds, seconds - at)
        start = float(rng.uniform(0, item.seconds - length)) if item.seconds > length else 0.0
        pieces.append([item.id, round(start, 3), round(at, 3), round(length, 3)])
        at += length + (0.0 if length >= seconds else float(rng.uniform(*GAP_SECONDS)))
    return pieces


def row_plan(paths: src.SourcePaths, domains: tuple[str, ...], row_id: str, split: str, seconds: float) -> dict:
    """The interference of one row: a domain chosen by hash of the recording, then its pieces."""
    key = f"{row_id}:{split}"
    domain = domains[int(sp.stable_fraction(f"interference-domain:{key}") * len(domains))]
    return {"domain": domain, "split": split, "pieces": plan(pool(paths, domain, split), seconds, key)}


@lru_cache(maxsize=12)
def _pool_audio(path: str) -> np.ndarray:
    return load_audio(path, max_seconds=MAX_POOL_FILE_SECONDS)


def plan_audio(paths: src.SourcePaths, interference: dict, size: int) -> np.ndarray:
    """(size,) float32: the plan's pieces laid into silence."""
    by_id = {i.id: i for i in pool(paths, interference["domain"], interference["split"])}
    bed = np.zeros(size, np.float32)
    for item_id, start, at, length in interference["pieces"]:
        if item_id not in by_id:
            raise FileNotFoundError(f"interference recording {item_id} not installed")
        audio = _pool_audio(by_id[item_id].path)
        piece = audio[int(start * SAMPLE_RATE):][: int(length * SAMPLE_RATE)]
        begin = int(at * SAMPLE_RATE)
        piece = piece[: max(0, size - begin)]
        bed[begin:begin + piece.size] += piece
    return bed


def tokens(interference: dict) -> list[str]:
    return sorted({piece[0] for piece in interference["pieces"]})
