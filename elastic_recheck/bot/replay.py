"""Recorded Gerrit events for ``elastic-recheck bot --replay``: JSON lines, optionally gzipped."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from elastic_recheck.core.errors import EventParseError
from elastic_recheck.core.events import parse_line

__all__ = ["replay_events"]


def replay_events(path: str | Path) -> Iterator[dict[str, Any] | EventParseError]:
    """Events from a JSON-lines file (gzip detected by magic bytes), in order.

    Blank lines are skipped. A malformed line yields an
    :class:`EventParseError` naming ``path:line`` instead of raising, so a
    replay continues past it; a truncated gzip stream yields one final error.

    :raises OSError: the file cannot be opened.
    """
    p = Path(path)
    with p.open("rb") as fh:
        compressed = fh.read(2) == b"\x1f\x8b"
    with gzip.open(p, "rb") if compressed else p.open("rb") as fh:
        lineno = 0
        while True:
            try:
                line = fh.readline()
            except (EOFError, OSError, gzip.BadGzipFile) as exc:
                yield EventParseError(f"{p}:{lineno + 1}: unreadable ({exc or type(exc).__name__})")
                return
            if not line:
                return
            lineno += 1
            if not line.strip():
                continue
            try:
                event = parse_line(line)
            except EventParseError as exc:
                yield EventParseError(f"{p}:{lineno}: {exc}")
                continue
            yield event
