"""Log lines -> documents: one per log record, with the build's fields, tags and ``@timestamp``.

Each line becomes one document, with the build's fields, ``filename``,
``tags`` (derived from the file name the way OpenDev's indexers did),
``log_url``, ``loglevel`` and ``@timestamp`` parsed from the line
(:func:`~elastic_recheck.core.timestamps.parse_line_timestamp`). oslo.log
continuation lines (``TRACE`` lines and lines without a timestamp prefix)
stay with the record they continue.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from elastic_recheck.core.timestamps import format_timestamp, parse_line_timestamp
from elastic_recheck.ingest.build_info import BuildInfo
from elastic_recheck.ports.loading import IngestStats

LOG = logging.getLogger(__name__)

#: Levels oslo.log (and the Python logging module) write.
LEVELS: frozenset[str] = frozenset({"TRACE", "DEBUG", "INFO", "AUDIT", "WARNING", "WARN", "ERROR", "CRITICAL"})

#: A multi-line record is cut after this many lines (a runaway file with one
#: timestamp and no other would otherwise become one giant document).
MAX_RECORD_LINES = 200
#: ... or this many characters.
MAX_RECORD_CHARS = 64 * 1024
#: A log line longer than this (bytes) is cut there and the rest of it
#: skipped, the way Filebeat's ``max_bytes`` truncates long events: one
#: 100 MB line used to cost 5 GB while being split into tokens.
MAX_LINE_BYTES = 64 * 1024

# oslo.log: "<ts> <pid> <LEVEL> <module> ..." (pid optional)
_OSLO_LEVEL_RE = re.compile(r" (?:\d+ )?(TRACE|DEBUG|INFO|AUDIT|WARNING|WARN|ERROR|CRITICAL) (\S+)")
# systemd journal / syslog: "<ts> <host> <prog>[<pid>]: <LEVEL> <module> ..."
_JOURNAL_LEVEL_RE = re.compile(r" \S+ [^\s:\[]+(?:\[\d+\])?: (TRACE|DEBUG|INFO|AUDIT|WARNING|WARN|ERROR|CRITICAL) (\S+)")
# python logging style after a console prefix: "<ts> | <LEVEL> ..." is rare; not parsed.


def parse_loglevel(line: str, ts_end: int) -> tuple[str | None, str | None]:
    """``(loglevel, module)`` of an oslo.log or journal line (text after the timestamp)."""
    if ts_end <= 0:
        return None, None
    m = _OSLO_LEVEL_RE.match(line, ts_end)
    if m is None:
        m = _JOURNAL_LEVEL_RE.match(line, ts_end)
        if m is None:
            return None, None
    level = m.group(1)
    return ("WARNING" if level == "WARN" else level), m.group(2)


# ---------------------------------------------------------------------------
# File names -> tags


#: File kinds by base name (after stripping ``.gz``): extra tags.
_CONSOLE_NAMES = frozenset({"job-output.txt", "console.html", "console.txt", "job-output.txt.gz"})
_SERVICE_RE = re.compile(r"^devstack@(.+?)\.service\.log(?:\.txt)?$")
def strip_gz(name: str) -> str:
    return name.removesuffix(".gz")


def tags_for(relpath: str) -> list[str]:
    """Tags OpenDev's log indexers gave a file, from its path in the build's logs.

    ``logs/screen-n-cpu.txt`` -> ``[screen-n-cpu.txt, screen, oslofmt]``;
    ``job-output.txt`` -> ``[job-output.txt, console]``; ``console.html`` ->
    ``[console.html, console]``; ``logs/syslog.txt`` -> ``[syslog.txt, syslog]``;
    ``devstack@c-api.service.log.txt`` (systemd era) -> also ``screen-c-api.txt``
    so fingerprints written for the screen name keep matching. ``.gz`` is stripped.
    """
    base = strip_gz(relpath.replace("\\", "/").rsplit("/", 1)[-1])
    tags = [base]
    if base in _CONSOLE_NAMES:
        tags.append("console")
        return tags
    m = _SERVICE_RE.match(base)
    if m:
        tags.extend([f"screen-{m.group(1)}.txt", "screen", "oslofmt"])
        return tags
    if base.startswith("screen-"):
        tags.extend(["screen", "oslofmt"])
    elif base in ("syslog.txt", "syslog", "messages", "kern.log", "kern_log.txt"):
        tags.append("syslog")
    elif base in ("devstacklog.txt", "devstack-early.txt", "devstacklog.txt.summary"):
        tags.append("devstack")
    elif base.endswith((".log", ".log.txt")) or base in ("tempest.txt", "tempest_log.txt"):
        tags.append("oslofmt")
    return tags


@dataclass
class LogRecord:
    """One log record: a line plus the continuation lines that belong to it."""

    text: str
    timestamp: datetime | None
    loglevel: str | None
    module: str | None
    lineno: int
    lines: int = 1


def iter_records(lines: Iterable[str], reference: datetime | None = None, console: bool = False) -> Iterator[LogRecord]:
    """Group log lines into records.

    A line continues the previous record when the previous record started with
    a timestamp and the line has none (oslo.log writes multi-line messages that
    way), or when it is an old-style oslo ``TRACE`` line. ``console`` files
    (``job-output.txt``) have their ``<ts> | `` prefix removed from the text.
    Lines are numbered from 1.
    """
    current: LogRecord | None = None
    parts: list[str] = []
    size = 0
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue  # blank lines carry nothing searchable
        ts, end = parse_line_timestamp(line, reference)
        if ts is None:
            level = module = None
            continuation = True  # no timestamp: part of the record above
        else:
            level, module = parse_loglevel(line, end)
            continuation = level == "TRACE"  # oslo.log writes traceback lines as TRACE records
        if (
            continuation
            and current is not None
            and current.timestamp is not None
            and current.lines < MAX_RECORD_LINES
            and size + len(line) < MAX_RECORD_CHARS
        ):
            parts.append(line)
            current.lines += 1
            size += len(line) + 1
            continue
        if current is not None:
            current.text = "\n".join(parts)
            yield current
        if console and ts is not None:
            rest = line[end:]
            if rest.startswith(" | "):
                text = rest[3:]
            elif rest.startswith(" |"):
                text = rest[2:]
            else:
                text = line
        else:
            text = line
        current = LogRecord(text=text, timestamp=ts, loglevel=level, module=module, lineno=lineno)
        parts = [text]
        size = len(text)
    if current is not None:
        current.text = "\n".join(parts)
        yield current


def bounded_lines(fh: IO[bytes], limit: int) -> Iterator[tuple[bytes, bool]]:
    """The lines of a binary stream, each cut to ``limit`` bytes: ``(line, was_cut)``.

    The rest of a cut line is read and dropped in bounded pieces, so memory
    never grows with the length of a line.
    """
    while True:
        raw = fh.readline(limit + 1)
        if not raw:
            return
        if len(raw) > limit and not raw.endswith(b"\n"):
            while True:
                rest = fh.readline(limit)
                if not rest or rest.endswith(b"\n"):
                    break
            yield raw[:limit], True
        else:
            yield raw, False


def read_lines(fh: IO[bytes], limit: int = MAX_LINE_BYTES) -> Iterator[str]:
    """Lines of a binary stream, decoded as UTF-8 with replacement (never raises on bad bytes).

    A line longer than ``limit`` bytes is truncated (see :data:`MAX_LINE_BYTES`).
    """
    for raw, cut in bounded_lines(fh, limit):
        if cut:
            LOG.debug("a line longer than %d bytes was truncated", limit)
        yield raw.decode("utf-8", errors="replace")


def open_maybe_gz(path: Path) -> IO[bytes]:
    """Open a file for binary reading, transparently gunzipping ``.gz`` files."""
    fh: IO[bytes] = open(path, "rb")  # noqa: SIM115 - returned to the caller
    try:
        magic = fh.read(2)
        fh.seek(0)
    except OSError:
        fh.close()
        raise
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[return-value]
    return fh


def documents_for_lines(
    relpath: str,
    lines: Iterable[str],
    build: BuildInfo,
    keep_debug: bool = False,
    stats: IngestStats | None = None,
) -> Iterator[dict[str, Any]]:
    """One document per log record of one file of a build.

    DEBUG records are dropped unless ``keep_debug``. ``@timestamp`` falls back
    to the build's time (then to the previous record's time) when a line has
    none. A record with continuation lines gets the ``multiline`` tag.
    """
    stats = stats if stats is not None else IngestStats()
    filename = strip_gz(relpath)
    tags = tags_for(relpath)
    base = build.fields()
    base["filename"] = filename
    url = build.file_url(relpath)
    if url:
        base["log_url"] = url
    console = "console" in tags
    last_ts = build.time
    for rec in iter_records(lines, reference=build.time, console=console):
        stats.lines_read += rec.lines
        if rec.loglevel == "DEBUG" and not keep_debug:
            stats.lines_dropped += rec.lines
            continue
        ts = rec.timestamp or last_ts
        if rec.timestamp is not None:
            last_ts = rec.timestamp
        doc = dict(base)
        doc["message"] = rec.text
        doc["tags"] = tags + ["multiline"] if rec.lines > 1 else list(tags)
        if ts is not None:
            doc["@timestamp"] = format_timestamp(ts)
        if rec.loglevel:
            doc["loglevel"] = rec.loglevel
        if rec.module:
            doc["module"] = rec.module
        yield doc
