"""``usad data subset``: a smaller corpus made of whole shards of a built one (the data-scaling point).

The subset's manifest.json lists shards by paths relative to its own directory, so it can point
into the parent (``../corpus-20h/speech-00003.tar``) and no audio is copied. Shards are taken per
domain in the parent's order until each domain holds about ``hours / 3``.
"""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

from usad.data.corpus import summarize_clips
from usad.data.shards import DOMAINS, read_manifest, write_manifest


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


def build_subset(corpus: str | Path, out: str | Path, hours: float = 2.0) -> dict:
    """Write ``out/manifest.json`` selecting whole shards of ``corpus``, equal hours per domain."""
    corpus, out = Path(corpus), Path(out)
    if hours <= 0:
        raise ValueError(f"subset hours must be positive, got {hours:g}")
    parent = read_manifest(corpus)
    if any("domain" not in s for s in parent["shards"]):
        raise ValueError(f"{corpus}: shards mix domains (built before per-domain shards); rebuild the corpus")
    out.mkdir(parents=True, exist_ok=True)
    shards, metas = [], []
    for domain in DOMAINS:
        for shard in pick_shards(parent["shards"], domain, hours * 3600 / len(DOMAINS)):
            shards.append(shard | {"path": os.path.relpath(corpus / shard["path"], out)})
            metas += shard_metadata(corpus / shard["path"])
    extra = summarize_clips(metas) | {"kind": "usad-corpus-subset", "parent": os.path.relpath(corpus, out),
                                      "request": {"hours": hours}, "problems": []}
    return write_manifest(out, shards, extra)
