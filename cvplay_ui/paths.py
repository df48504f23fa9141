"""Paths as the pages show them: the home folder written as ``~`` (shorter, and the same for
every visitor of a deployed app)."""

from __future__ import annotations

from pathlib import Path


def shown_path(path: str | Path) -> str:
    """``~/.cvplay/models`` for a path under the home folder, else the path as it is."""
    path = Path(path)
    try:
        return str(Path("~") / path.relative_to(Path.home()))
    except (ValueError, RuntimeError):  # not under home, or no home at all
        return str(path)
