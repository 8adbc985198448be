"""The one report writer: every bench result is ``<stem>.json`` (the record), ``<stem>.md`` (its tables)
and, where it has one, ``<stem>.png`` (its plot), written whole or not at all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from usad.files import atomic_path, atomic_write_json, atomic_write_text


def write_report(directory: str | Path, stem: str, record: dict, markdown: str,
                 plot: Callable[[Path], None] | None = None) -> dict[str, Path]:
    """Write the record, its markdown and (``plot(path)`` draws it) its PNG; returns the paths by extension."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / f"{stem}.json", "md": directory / f"{stem}.md"}
    if plot is not None:
        paths["png"] = directory / f"{stem}.png"
        with atomic_path(paths["png"]) as tmp:
            plot(tmp)
    atomic_write_text(paths["md"], markdown)
    atomic_write_json(paths["json"], record)
    return paths
