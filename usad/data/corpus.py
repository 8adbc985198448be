"""``usad data corpus``: the unlabelled speech / sound / music corpus for distillation.

Each domain gets ``hours_per_domain`` from the sources of ``usad.data.recipes``, real recordings
first. Jobs run in a small process pool in batches and are consumed in order, so where a source
stops is the same on every run. Every shard holds one domain (``manifest["shards"][i]["domain"]``),
its clips in an order hashed from their keys. The built corpus is checked against the task
manifests before anything is written: a corpus that shares a recording with a task's val/test
side is refused (``LeakError``). Finished jobs are kept in ``out/.jobs`` until the manifest is
written, so a killed build, run again with the same arguments, resumes where it stopped.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing as mp
import shutil
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from usad.data import sources as src
from usad.data.jobcache import run_cached
from usad.data.recipes import RECIPE_NAMES, RECIPES, SourceRecipe
from usad.data.shards import DOMAINS, ShardWriter, opus_compression_level, write_manifest
from usad.data.splits import check_disjoint, stable_fraction
from usad.data.tasks import held_out_tokens
from usad.data.worker import MAX_FILE_SECONDS

BATCH = 8
JOB_CACHE = ".jobs"  # finished jobs of an unfinished build, inside the output folder (usad.data.jobcache)
# Opus bitrates per domain, chosen by size against quality (bench/results/opus_bitrate.md).
OPUS_KBPS = {"speech": 12.0, "sound": 16.0, "music": 16.0}


def _run_source(recipe: SourceRecipe, budget_s: float, paths, pool, encode, on_clip, problems: list[str]) -> list:
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
        for job, result in zip(batch, pool.map(encode, batch)):
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
                 paths: src.SourcePaths | None = None, shard_mb: float = 15.0, workers: int = 2,
                 kbps: dict[str, float] | None = None, tasks_dir: str | Path | None = None,
                 cache: str | Path | None = None) -> dict:
    """Build the corpus into ``out``; returns the manifest (also written as manifest.json).

    subset: recipe names (RECIPE_NAMES) to use; None for all. A source whose files are missing is
    reported under ``problems`` and its share goes to the domain's fill source.
    kbps: Opus bitrate per domain, over ``OPUS_KBPS``. tasks_dir: task manifests for the leak check
    (default: the committed ones). Raises ``LeakError`` (nothing written) if a clip shares a source
    recording with any task's val/test side. cache: the finished-jobs folder (default ``out/.jobs``,
    removed once the manifest is written); builds of other domains may share one to run in parallel.
    """
    paths = paths or src.SourcePaths()
    unknown = set(subset or ()) - set(RECIPE_NAMES)
    if unknown:
        raise ValueError(f"unknown corpus sources {sorted(unknown)}; choose from {RECIPE_NAMES}")
    kbps = OPUS_KBPS | (kbps or {})
    for domain, rate in kbps.items():
        if domain not in DOMAINS:
            raise ValueError(f"bitrate for unknown domain {domain!r}; domains are {DOMAINS}")
        opus_compression_level(rate)  # refuses a bitrate libsndfile cannot make, before any work
    held_out = held_out_tokens(tasks_dir)
    recipes = [r for r in RECIPES if subset is None or r.name in subset]
    budget = hours_per_domain * 3600
    problems: list[str] = []
    collected: list[tuple[bytes, dict]] = []
    own_cache = cache is None
    cache = Path(out) / JOB_CACHE if own_cache else Path(cache)
    encode = functools.partial(run_cached, kbps=kbps, cache=cache)
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
                clips = _run_source(recipe, cap, paths, pool, encode, lambda s, t=task: progress.advance(t, s),
                                    problems)
                used += sum(m["seconds"] for _, m in clips)
                collected += clips
    check_disjoint({t for _, meta in collected for t in meta["sources"]}, held_out)
    request = {"hours_per_domain": hours_per_domain, "subset": sorted(subset) if subset else None,
               "max_file_seconds": MAX_FILE_SECONDS, "opus_kbps": kbps, "shard_mb": shard_mb}
    manifest = _write(Path(out), collected, problems, request, int(shard_mb * 1024 * 1024))
    if own_cache:
        shutil.rmtree(cache, ignore_errors=True)  # the shards hold it all now
    return manifest


def _hours(clips, key) -> dict[str, float]:
    hours: dict[str, float] = {}
    for meta in clips:
        hours[key(meta)] = hours.get(key(meta), 0.0) + meta["seconds"] / 3600
    return {k: round(v, 4) for k, v in sorted(hours.items())}


def _write(out: Path, collected, problems: list[str], request: dict, max_bytes: int) -> dict:
    """Per-domain shards of clips in hashed key order, then manifest.json."""
    counters: dict[str, int] = {}
    keyed = []
    for opus, meta in collected:
        n = counters[meta["source"]] = counters.get(meta["source"], -1) + 1
        keyed.append((f"{meta['source']}-{n:06d}", opus, meta))
    keyed.sort(key=lambda kom: stable_fraction(kom[0]))  # mix sources inside each domain's shards
    shards = []
    for domain in DOMAINS:
        writer = ShardWriter(out, prefix=domain, max_bytes=max_bytes, domain=domain)
        for key, opus, meta in (k for k in keyed if k[2]["domain"] == domain):
            writer.write(key, opus, meta)
        writer.close_shard()
        shards += writer.shards
    return write_manifest(out, shards, summarize_clips([meta for _, _, meta in keyed]) | {
        "kind": "usad-corpus", "request": request, "problems": problems})


def summarize_clips(metas: list[dict]) -> dict:
    """Manifest fields from clip metadata: hours (all and real) per domain and source, tokens, leak check."""
    domains = {}
    for domain in sorted({m["domain"] for m in metas}):
        in_domain = [m for m in metas if m["domain"] == domain]
        domains[domain] = {"hours": round(sum(m["seconds"] for m in in_domain) / 3600, 4),
                           "real_hours": round(sum(m["seconds"] for m in in_domain if m["real"]) / 3600, 4),
                           "sources": _hours(in_domain, lambda m: m["source"])}
    return {"hours": round(sum(d["hours"] for d in domains.values()), 4), "domains": domains,
            "real_hours": round(sum(m["seconds"] for m in metas if m["real"]) / 3600, 4), "clips": len(metas),
            "source_tokens": sorted({t for m in metas for t in m["sources"]}),
            "leak_check": "passed: no source recording of any task's val/test side"}
