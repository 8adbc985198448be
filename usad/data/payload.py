"""``usad data payload``: split built corpora into transfer parts of whole files, each at most
``part_mib``, for machines that take data in calls of bounded size.

Layout: ``out/partN/<corpus folder name>/<file>``. Part 1 holds every manifest.json; shards follow
in the order of the corpora listed, so listing the small scaling subset first makes the first
transfer usable on its own. Files are hard links where the file system allows, else copies.
``out/payload.json`` lists the parts, their files and bytes. On the receiving side, merging every
part into one folder (``cp -rl partN/. data/``) restores the corpora side by side.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from usad.data.shards import MANIFEST, read_manifest

MIB = 1024 * 1024


def _files(corpora: list[Path]) -> tuple[list[Path], list[Path]]:
    """(manifests, shard files) of the corpora in order, each file once."""
    manifests, shards, seen = [], [], set()
    for corpus in corpora:
        manifests.append(corpus / MANIFEST)
        for shard in read_manifest(corpus)["shards"]:
            path = (corpus / shard["path"]).resolve()
            if path not in seen:
                seen.add(path)
                shards.append(path)
    return manifests, shards


def _place(path: Path) -> Path:
    """Where a file goes inside a part: under the name of the folder that holds it."""
    return Path(path.resolve().parent.name) / path.name


def plan_parts(corpora: list[str | Path], part_mib: float = 52.0) -> list[list[Path]]:
    """Files per part: manifests first, then shards in order, a new part when the next would not fit."""
    manifests, shards = _files([Path(c) for c in corpora])
    limit = part_mib * MIB
    parts: list[list[Path]] = [list(manifests)]
    size = sum(p.stat().st_size for p in manifests)
    if size > limit:
        raise ValueError(f"the manifests alone take {size / MIB:.1f} MiB, more than a {part_mib:g} MiB part")
    for path in shards:
        bytes_ = path.stat().st_size
        if bytes_ > limit:
            raise ValueError(f"{path}: {bytes_ / MIB:.1f} MiB is larger than a {part_mib:g} MiB part; "
                             "rebuild with a smaller --shard-mb")
        if size + bytes_ > limit:
            parts.append([])
            size = 0
        parts[-1].append(path)
        size += bytes_
    return parts


def make_payload(corpora: list[str | Path], out: str | Path, part_mib: float = 52.0) -> dict:
    """Write the parts under ``out`` (which must not hold parts already); returns payload.json's content."""
    out = Path(out)
    if out.exists() and any(out.glob("part*")):
        raise FileExistsError(f"{out}: already holds payload parts; remove them or choose another --out")
    parts = plan_parts(corpora, part_mib)
    listing = []
    for n, files in enumerate(parts, start=1):
        part = out / f"part{n}"
        for path in files:
            target = part / _place(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:  # another file system: copy
                shutil.copy2(path, target)
        listing.append({"part": part.name, "bytes": sum(p.stat().st_size for p in files),
                        "files": [str(_place(p)) for p in files]})
    payload = {"part_mib": part_mib, "corpora": [Path(c).name for c in corpora], "parts": listing}
    (out / "payload.json").write_text(json.dumps(payload, indent=1))
    return payload
