"""The held-out axes of the task suite, in one place.

Tasks read their train/val/test sides from here, and the corpus builder takes only recordings
that are on the training side of *every* task (``corpus_allows``), so no clip that a task
validates or tests on can reach distillation. ``check_disjoint`` verifies it on built manifests.
"""

from __future__ import annotations

import hashlib

from usad.errors import UsadError

SPLITS = ("train", "val", "test")

# T1: speaker-held-out digits. T2: speaker ID trained on some digits, tested on others.
FSDD_SPEAKER_SPLIT = {"jackson": "train", "lucas": "train", "nicolas": "train", "theo": "val",
                      "george": "test", "yweweler": "test"}
FSDD_DIGIT_SPLIT = {**{d: "train" for d in range(6)}, 6: "val", 7: "val", 8: "test", 9: "test"}

# T3: GCompris items (a letter, number or colour) go wholly to one side in every language.
GCOMPRIS_ITEM_FRACTIONS = {"test": 0.25, "val": 0.15}

# T4: whole kits are held out. Millo-Drums_v.1 and the Millo_MultiLayered kits share an author,
# so the Millo family sits on one side (test) except v.1, whose files were checked byte-distinct.
DRUM_KIT_SPLIT = {"The Black Pearl 1.0": "test", "Millo_MultiLayered2": "test", "HardElectro1": "test",
                  "Millo_MultiLayered3": "val", "VariBreaks": "val", "Audiophob": "val"}

# T5: instrument families rendered from soundfonts; TimGM6mb (an independent sample set) is the
# test side, the FluidR3 family (FluidR3 GM, FluidR3Mono, MuseScore General) is the training side.
SOUNDFONT_SPLIT = {"TimGM6mb.sf2": "test"}

# Hedgewars voice packs: real voice actors saying the same ~56 game phrases. The pack is the speaker,
# so word tasks hold packs out; related packs (Default_*, Russian*) stay on one side. The corpus
# takes training-side packs only.
HEDGEWARS_PACK_SPLIT = {"British": "test", "Mobster": "test", "Pirate": "test", "Singer": "test",
                        "HillBilly": "val", "Surfer": "val"}

# Interference: real recordings mixed into the val/test clips of another domain. A hashed share of the
# game music and sound effects is reserved as the val and test pools and never enters the corpus;
# speech interference comes from the held-out sides of the speech tasks.
INTERFERENCE_FRACTIONS = {"val": 0.05, "test": 0.10}
GAME_SOURCES = ("wesnoth-music", "hedgewars-music", "supertuxkart-music", "wesnoth-sfx", "hedgewars-sfx",
                "supertuxkart-sfx")

# music21 collections reserved for tasks (melodies with known pitch); the corpus renders other scores.
TASK_SCORE_COLLECTIONS = ("essenFolksong", "ryansMammoth")
# T10 melodies (ryansMammoth tunes): a hashed share of the tunes is held out, on top of the soundfont.
MELODY_FRACTIONS = {"test": 0.3, "val": 0.15}

# T8 speaker verification: GCompris speakers go wholly to one side (FSDD and Hedgewars keep their
# sides above); a val/test speaker contributes only recordings of held-out items, so the corpus
# rules below already keep every one of them out.
SPEAKER_FRACTIONS = {"test": 0.3, "val": 0.2}


def stable_fraction(key: str) -> float:
    """A deterministic number in [0, 1) for a string, the same on every machine and Python."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) / 16 ** 12


def _hashed_split(key: str, fractions: dict[str, float]) -> str:
    u = stable_fraction(key)
    if u < fractions["test"]:
        return "test"
    return "val" if u < fractions["test"] + fractions["val"] else "train"


def gcompris_item_split(item: str) -> str:
    return _hashed_split(f"gcompris-item:{item}", GCOMPRIS_ITEM_FRACTIONS)


def speaker_split(speaker: str) -> str:
    """Side of a GCompris speaker (credited name) in T8."""
    return _hashed_split(f"speaker:{speaker}", SPEAKER_FRACTIONS)


def melody_split(score_id: str) -> str:
    """Side of a task melody (``collection/file``) in T10."""
    return _hashed_split(f"melody:{score_id}", MELODY_FRACTIONS)


def drum_kit_split(kit: str) -> str:
    return DRUM_KIT_SPLIT.get(kit, "train")


def soundfont_split(name: str) -> str:
    return SOUNDFONT_SPLIT.get(name, "train")


def hedgewars_pack_split(pack: str) -> str:
    return HEDGEWARS_PACK_SPLIT.get(pack, "train")


def interference_split(item_id: str) -> str | None:
    """"val" / "test" for game audio reserved as interference, None for the rest."""
    u = stable_fraction(f"interference:{item_id}")
    if u < INTERFERENCE_FRACTIONS["val"]:
        return "val"
    return "test" if u < INTERFERENCE_FRACTIONS["val"] + INTERFERENCE_FRACTIONS["test"] else None


def fsdd_split(speaker: str, digit: int) -> str:
    """The stricter side of an FSDD file over T1 (speaker) and T2 (digit): train only if both train."""
    sides = {FSDD_SPEAKER_SPLIT[speaker], FSDD_DIGIT_SPLIT[digit]}
    return "test" if "test" in sides else "val" if "val" in sides else "train"


def corpus_allows(source: str, labels: dict) -> bool:
    """Whether a source recording is on the training side of every task that uses its source."""
    if source == "fsdd":
        return fsdd_split(labels["speaker"], labels["digit"]) == "train"
    if source == "gcompris":
        return gcompris_item_split(labels["item"]) == "train"
    if source == "drum":
        return drum_kit_split(labels["kit"]) == "train"
    if source == "soundfont":
        return soundfont_split(labels["soundfont"]) == "train"
    if source == "hedgewars-voices":
        return hedgewars_pack_split(labels["pack"]) == "train"
    if source in GAME_SOURCES:
        return interference_split(labels["id"]) is None
    if source == "score":  # a music21 score: the collections that tasks render never enter the corpus
        return labels["collection"] not in TASK_SCORE_COLLECTIONS
    return True


class LeakError(UsadError, RuntimeError):
    """A corpus clip shares a source recording with a task's validation or test clip."""


def check_disjoint(corpus_tokens: set[str], held_out_tokens: dict[str, set[str]]) -> None:
    """Raise ``LeakError`` naming the tasks and tokens where the corpus touches held-out audio.

    corpus_tokens: every source token of every corpus clip.
    held_out_tokens: task name -> source tokens of its val and test rows.
    """
    leaks = {task: sorted(tokens & corpus_tokens) for task, tokens in held_out_tokens.items()}
    leaks = {task: tokens for task, tokens in leaks.items() if tokens}
    if leaks:
        detail = "; ".join(f"{task}: {len(t)} shared, e.g. {t[:3]}" for task, t in sorted(leaks.items()))
        raise LeakError(f"corpus contains held-out task audio ({detail})")
