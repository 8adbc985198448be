"""``usad data corpus``: the unlabelled speech / sound / music corpus for distillation.

Each domain gets ``hours_per_domain``. Real recordings come first, each source capped at a share
of its domain; synthetic sources (speech of real text, renders of real scores, scenes of real
sound effects) fill the rest. Jobs run in a small process pool in batches and are consumed in
order, so where a source stops is the same on every run; clips are then interleaved by a hash of
their key and written to WebDataset-layout shards. Only training-side recordings of every task are
used (``splits.corpus_allows``) and the built corpus is checked against the task manifests.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from usad.data import sources as src
from usad.data.recipes import MAX_FILE_SECONDS, Job, run_job
from usad.data.shards import DOMAINS, ShardWriter
from usad.data.splits import corpus_allows, soundfont_split, stable_fraction
from usad.data.synth import ESPEAK_VARIANTS, ESPEAK_VOICES, FLITE_VOICES

BATCH = 8
WORDS_PER_TTS_CLIP = 24
SCORE_COMPOSERS = ("bach", "beethoven", "mozart", "haydn", "handel", "corelli", "monteverdi", "palestrina",
                   "schubert", "schumann_robert", "schumann_clara", "joplin", "chopin", "cpebach", "verdi",
                   "weber", "josquin", "ciconia", "trecento", "luca", "airdsAirs", "miscFolk")
MAX_SCORE_BYTES = 400_000  # huge scores take minutes to parse; the corpus has plenty of small ones


@dataclass(frozen=True)
class SourceRecipe:
    name: str
    domain: str
    share: float  # cap as a fraction of the domain budget; 1.0 for fill sources (they take the rest)
    real: bool
    jobs: Callable[[src.SourcePaths], Iterator[Job]]


def _shuffled(items, salt: str):
    return sorted(items, key=lambda item: stable_fraction(f"{salt}:{item.id}"))


def _file_jobs(source: str, domain: str, items) -> Iterator[Job]:
    for item in _shuffled(items, source):
        yield Job(source, domain, "file", (str(item.path),), item.tokens)


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
    domain = src.GAME_AUDIO[source][0]

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
    for source in ("wesnoth-sfx", "hedgewars-sfx", "supertuxkart-sfx"):
        pool += [i for i in src.game_items(paths, source) if corpus_allows(source, i.labels)]
    pool = [i for i in pool if sf.info(str(i.path)).duration <= 30]
    if not pool:
        raise RuntimeError("no sound effects installed for scenes (make corpus-deps)")
    for n in itertools.count():
        rng_key = f"scene:{n}"
        count = 3 + int(stable_fraction(rng_key) * 6)
        picks = [pool[int(stable_fraction(f"{rng_key}:{k}") * len(pool))] for k in range(count)]
        tokens = tuple(sorted({t for item in picks for t in item.tokens}))
        yield Job("sfx-scenes", "sound", "scene", (n, tuple(str(i.path) for i in picks)), tokens)


RECIPES = (
    SourceRecipe("fsdd", "speech", 0.15, True, _fsdd),
    SourceRecipe("gcompris", "speech", 0.3, True, _gcompris),
    SourceRecipe("hedgewars-voices", "speech", 0.15, True, _game("hedgewars-voices")),
    SourceRecipe("tts-flite", "speech", 0.25, False, _tts("flite")),
    SourceRecipe("tts-espeak-ng", "speech", 1.0, False, _tts("espeak-ng")),
    SourceRecipe("drumkits", "sound", 0.3, True, _drums),
    SourceRecipe("wesnoth-sfx", "sound", 0.2, True, _game("wesnoth-sfx")),
    SourceRecipe("hedgewars-sfx", "sound", 0.1, True, _game("hedgewars-sfx")),
    SourceRecipe("supertuxkart-sfx", "sound", 0.2, True, _game("supertuxkart-sfx")),
    SourceRecipe("sfx-scenes", "sound", 1.0, False, _scenes),
    SourceRecipe("wesnoth-music", "music", 0.35, True, _game("wesnoth-music")),
    SourceRecipe("hedgewars-music", "music", 0.25, True, _game("hedgewars-music")),
    SourceRecipe("supertuxkart-music", "music", 0.2, True, _game("supertuxkart-music")),
    SourceRecipe("fluidsynth-scores", "music", 1.0, False, _renders),
)
RECIPE_NAMES = tuple(r.name for r in RECIPES)


def _run_source(recipe: SourceRecipe, budget_s: float, paths, pool, on_clip, problems: list[str]) -> list:
    """Clips of one source up to ``budget_s`` seconds, consumed in job order."""
    clips, total = [], 0.0
    jobs = recipe.jobs(paths)
    while total < budget_s:
        try:  # job generators find their sources lazily: a missing tool or folder surfaces here
            batch = list(itertools.islice(jobs, BATCH))
        except (OSError, RuntimeError, ImportError) as err:
            problems.append(f"{recipe.name}: skipped ({err})")
            return clips
        if not batch:
            break
        for job, result in zip(batch, pool.map(run_job, batch)):
            if result.error:
                problems.append(result.error)
            for opus, seconds, extra in result.clips:
                if total >= budget_s:
                    break
                meta = {"domain": job.domain, "source": job.source, "seconds": round(seconds, 3),
                        "real": recipe.real, "sources": list(job.tokens), **extra}
                clips.append((opus, meta))
                total += seconds
                on_clip(seconds)
    if not clips:
        problems.append(f"{recipe.name}: no usable audio found")
    return clips


def build_corpus(out: str | Path, hours_per_domain: float = 7.0, subset: tuple[str, ...] | None = None,
                 paths: src.SourcePaths | None = None, shard_mb: float = 48.0, workers: int = 2) -> dict:
    """Build the corpus into ``out``; returns the manifest (also written as manifest.json).

    subset: recipe names (RECIPE_NAMES) to use; None for all. A source whose files are missing is
    reported under ``problems`` and its share goes to the domain's fill source.
    """
    paths = paths or src.SourcePaths()
    recipes = [r for r in RECIPES if subset is None or r.name in subset]
    unknown = set(subset or ()) - set(RECIPE_NAMES)
    if unknown:
        raise ValueError(f"unknown corpus sources {sorted(unknown)}; choose from {RECIPE_NAMES}")
    budget = hours_per_domain * 3600
    problems: list[str] = []
    collected: list[tuple[bytes, dict]] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
                  TimeElapsedColumn()) as progress, mp.get_context("spawn").Pool(workers) as pool:
        for domain in DOMAINS:
            domain_recipes = [r for r in recipes if r.domain == domain]
            used = 0.0
            task = progress.add_task(domain, total=budget)
            for recipe in domain_recipes:
                is_fill = recipe is domain_recipes[-1] or recipe.share >= 1.0
                cap = (budget - used) if is_fill else min(recipe.share * budget, budget - used)
                if cap <= 0:
                    problems.append(f"{recipe.name}: no budget left in {domain} (the sources before it filled it)")
                    continue
                progress.update(task, description=f"{domain}: {recipe.name}")
                clips = _run_source(recipe, cap, paths, pool, lambda s, t=task: progress.advance(t, s), problems)
                used += sum(m["seconds"] for _, m in clips)
                collected += clips
    return _write(Path(out), collected, problems, hours_per_domain, subset, shard_mb)


def _write(out: Path, collected, problems, hours_per_domain, subset, shard_mb) -> dict:
    counters: dict[str, int] = {}
    keyed = []
    for opus, meta in collected:
        n = counters[meta["source"]] = counters.get(meta["source"], -1) + 1
        keyed.append((f"{meta['source']}-{n:06d}", opus, meta))
    keyed.sort(key=lambda kom: stable_fraction(kom[0]))  # interleave domains across shards
    writer = ShardWriter(out, prefix="corpus", max_bytes=int(shard_mb * 1024 * 1024))
    hours: dict[str, dict[str, float]] = {}
    tokens: set[str] = set()
    for key, opus, meta in keyed:
        writer.write(key, opus, meta)
        per_source = hours.setdefault(meta["domain"], {})
        per_source[meta["source"]] = per_source.get(meta["source"], 0.0) + meta["seconds"] / 3600
        tokens.update(meta["sources"])
    summary = {domain: {"hours": round(sum(s.values()), 4), "sources": {k: round(v, 4) for k, v in sorted(s.items())}}
               for domain, s in sorted(hours.items())}
    return writer.close({
        "kind": "usad-corpus",
        "hours": round(sum(d["hours"] for d in summary.values()), 4),
        "domains": summary,
        "real_hours": round(sum(m["seconds"] for _, _, m in keyed if m["real"]) / 3600, 4),
        "clips": len(keyed),
        "request": {"hours_per_domain": hours_per_domain, "subset": sorted(subset) if subset else None,
                    "max_file_seconds": MAX_FILE_SECONDS},
        "problems": problems,
        "source_tokens": sorted(tokens),
    })
