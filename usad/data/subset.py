"""``usad data subset``: a smaller corpus made from a built one (the data-scaling point).

By default whole shards: the subset's manifest.json lists them by paths relative to its own directory, so it
can point into the parent (``../corpus-20h/speech-00003.tar``) and no audio is copied; shards are taken per
domain in the parent's order until each domain holds about ``hours / 3``. With ``repack``, the leading clips of
each domain (shards are already shuffled) are copied into new shards of their own, byte for byte, so the
subset can be smaller than one shard per domain.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

from usad.data.corpus import summarize_clips
from usad.data.shards import DOMAINS, ShardWriter, read_manifest, write_manifest


def shard_metadata(path: str | Path) -> list[dict]:
    """The JSON metadata of every clip in a shard, without decoding audio."""
    with tarfile.open(path) as tar:
        return [json.loads(tar.extractfile(m).read()) for m in tar.getmembers() if m.name.endswith(".json")]


def pick_shards(shards: list[dict], domain: str, seconds: float) -> list[dict]:
    """Leading shards of ``domain`` whose total is closest to ``seconds`` (at least one)."""
    picked, total = [], 0.0
    for shard in (s for s in shards if s.get("domain") == domain):
        length = sum(shard["seconds"].values())
        if picked and abs(total + length - seconds) >= abs(total - seconds):
            break
        picked.append(shard)
        total += length
    return picked


def _leading_clips(corpus: Path, shards: list[dict], seconds: float) -> Iterator[tuple[str, bytes, dict]]:
    """(key, audio bytes, metadata) of a domain's clips in shard order until ``seconds`` are reached."""
    total = 0.0
    for shard in shards:
        with tarfile.open(corpus / shard["path"]) as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            for name in sorted(n for n in members if n.endswith(".json")):
                key = name.removesuffix(".json")
                audio = next((members[k] for k in (f"{key}.opus", f"{key}.flac", f"{key}.wav") if k in members), None)
                if audio is None:
                    continue
                meta = json.loads(tar.extractfile(members[name]).read())
                yield key, tar.extractfile(audio).read(), meta
                total += float(meta["seconds"])
                if total >= seconds:
                    return


def build_subset(corpus: str | Path, out: str | Path, hours: float = 2.0, repack: bool = False,
                 shard_mb: float = 12.5) -> dict:
    """Write ``out/manifest.json``: whole shards of ``corpus`` (or, with ``repack``, its leading clips copied
    into shards of ``shard_mb``), equal hours per domain."""
    corpus, out = Path(corpus), Path(out)
    if hours <= 0:
        raise ValueError(f"subset hours must be positive, got {hours:g}")
    parent = read_manifest(corpus)
    if any("domain" not in s for s in parent["shards"]):
        raise ValueError(f"{corpus}: shards mix domains (built before per-domain shards); rebuild the corpus")
    out.mkdir(parents=True, exist_ok=True)
    shards, metas = [], []
    budget = hours * 3600 / len(DOMAINS)
    for domain in DOMAINS:
        if repack:
            writer = ShardWriter(out, prefix=domain, max_bytes=int(shard_mb * 2**20), domain=domain)
            for key, audio, meta in _leading_clips(corpus, [s for s in parent["shards"] if s["domain"] == domain],
                                                   budget):
                writer.write(key, audio, meta)
                metas.append(meta)
            writer.close_shard()
            shards += writer.shards
            continue
        for shard in pick_shards(parent["shards"], domain, budget):
            shards.append(shard | {"path": os.path.relpath(corpus / shard["path"], out)})
            metas += shard_metadata(corpus / shard["path"])
    extra = summarize_clips(metas) | {"kind": "usad-corpus-subset", "parent": os.path.relpath(corpus, out),
                                      "request": {"hours": hours, "repack": repack}, "problems": []}
    return write_manifest(out, shards, extra)
