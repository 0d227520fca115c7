"""CI logs -> logstash-style documents (one per log line), and the pipeline into the store.

Two sources:

* a JSON-lines file (optionally gzipped) of documents that are already
  logstash-shaped (flat fields, or the old ``@fields``/``@message``/``@tags``
  layout, or ES hits with ``_source``): :func:`iter_jsonl`;
* a directory holding one build's log files plus the build's metadata
  (:class:`BuildInfo`, from options or a Zuul build record):
  :func:`iter_build_dir`. Each line becomes one document, with the build's
  fields, ``filename``, ``tags`` (derived from the file name the way OpenDev's
  indexers did), ``log_url``, ``loglevel`` and ``@timestamp`` parsed from the
  line. oslo.log continuation lines (``TRACE`` lines and lines without a
  timestamp prefix) stay with the record they continue. Subunit v2 streams are
  read into per-build test results instead of log lines.

Everything here is pure (no store access) except :func:`ingest_jsonl` and
:func:`ingest_build_dir`, which drive a :class:`DocumentStore` (the embedded
store, or a cluster's bulk writer).
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

from elastic_recheck.core.documents import normalize_document
from elastic_recheck.core.errors import short_repr

_json_loads: Callable[[bytes], Any]
try:  # optional: several times faster than json for big ingests
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover - depends on the environment
    _json_loads = json.loads

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
#: A JSON-lines document longer than this (bytes) is refused as a bad line.
MAX_JSONL_LINE_BYTES = 8 * 1024 * 1024

#: How many bad JSON lines are kept (with their line numbers) for the summary.
BAD_LINE_SAMPLES = 5

SUBUNIT_SUFFIXES = (".subunit", ".subunit.gz")


# ---------------------------------------------------------------------------
# Statistics


@dataclass
class IngestStats:
    """What an ingest did: counts for the final summary line."""

    docs: int = 0
    lines_read: int = 0
    lines_dropped: int = 0
    bad_lines: int = 0
    bad_line_samples: list[tuple[int, str]] = field(default_factory=list)
    files: int = 0
    files_skipped: list[str] = field(default_factory=list)
    test_results: int = 0
    seconds: float = 0.0

    def add_bad_line(self, lineno: int, why: str) -> None:
        self.bad_lines += 1
        if len(self.bad_line_samples) < BAD_LINE_SAMPLES:
            self.bad_line_samples.append((lineno, why))

    def merge(self, other: IngestStats) -> None:
        self.docs += other.docs
        self.lines_read += other.lines_read
        self.lines_dropped += other.lines_dropped
        self.bad_lines += other.bad_lines
        room = BAD_LINE_SAMPLES - len(self.bad_line_samples)
        self.bad_line_samples.extend(other.bad_line_samples[: max(room, 0)])
        self.files += other.files
        self.files_skipped.extend(other.files_skipped)
        self.test_results += other.test_results
        self.seconds += other.seconds

    def take_stored(self, stored: IngestStats) -> None:
        """What the store said of the documents it was given: how many it stored, and the ones it refused."""
        self.docs = stored.docs
        for lineno, why in stored.bad_line_samples:
            self.add_bad_line(lineno, why)
        self.bad_lines += stored.bad_lines - len(stored.bad_line_samples)

    @property
    def lines_per_second(self) -> float:
        return self.lines_read / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """The one-line summary the CLI prints at the end of an ingest."""
        parts = [
            f"{self.docs} documents stored",
            f"{self.lines_read} lines read",
            f"{self.lines_dropped} dropped",
            f"{self.bad_lines} bad",
        ]
        if self.test_results:
            parts.append(f"{self.test_results} test results")
        if self.files_skipped:
            parts.append(f"{len(self.files_skipped)} files skipped")
        parts.append(f"{self.seconds:.1f} s ({self.lines_per_second:,.0f} lines/s)")
        return ", ".join(parts)


# ---------------------------------------------------------------------------
# Timestamps


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_epoch_ms(ts: datetime) -> int:
    """Milliseconds since the epoch (naive datetimes are UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def format_timestamp(ts: datetime) -> str:
    """``2014-01-27T18:08:49.123Z`` (UTC, millisecond precision, like logstash)."""
    ts = ts.astimezone(UTC) if ts.tzinfo else ts
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


_ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:[.,](\d{1,9}))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$"
)
_EPOCH_MS_RE = re.compile(r"-?\d{1,15}$")


def parse_iso_timestamp(value: Any) -> datetime | None:
    """Parse the ISO 8601 variants found in logstash documents; None if not a date.

    Accepts ``2013-10-18T17:39:43.966Z``, ``...+00:00``, ``+0000``, a space
    instead of ``T``, no fraction, up to nanoseconds, a date alone (midnight),
    and epoch milliseconds (int/float, or a string of digits): Elasticsearch's
    default ``strict_date_optional_time||epoch_millis``. A missing zone means UTC.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value / 1000.0, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, list) and len(value) == 1:
        return parse_iso_timestamp(value[0])
    if not isinstance(value, str):
        return None
    if len(value) >= 20 and value[10:11] == "T":
        try:  # the common case, in C
            dt = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    if _EPOCH_MS_RE.match(value.strip()):
        return parse_iso_timestamp(int(value.strip()))
    m = _ISO_RE.match(value.strip())
    if not m:
        return None
    year, month, day, hour, minute, sec, frac, zone = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        dt = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(sec or 0), micro, tzinfo=UTC)
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        dt -= sign * offset
    return dt


# Line prefixes, tried in order. Each yields (timestamp, rest of line).
_LINE_ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?"
)
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_LINE_SYSLOG_RE = re.compile(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?= )")


def parse_line_timestamp(line: str, reference: datetime | None = None) -> tuple[datetime | None, int]:
    """The timestamp a log line starts with, and where the text after it begins.

    Formats: oslo.log ``2014-01-27 18:08:49.123``, Zuul ``job-output.txt``
    ``2024-01-02 03:04:05.123456 | ...``, ISO ``2014-01-27T18:08:49Z``, syslog
    and systemd-journal ``Jan 27 18:08:49[.123456]`` (the year is taken from
    ``reference``, the build's time, going back a year when the date would be
    more than a day after it). Returns ``(None, 0)`` when there is none.
    """
    if not line:
        return None, 0
    c = line[0]
    if c.isdigit():
        m = _LINE_ISO_RE.match(line)
        if m is None:
            return None, 0
        year, month, day, hour, minute, sec, frac, zone = m.groups()
        try:
            micro = int(frac[:6].ljust(6, "0")) if frac else 0
            dt = datetime(int(year), int(month), int(day), int(hour), int(minute), int(sec), micro, tzinfo=UTC)
        except ValueError:
            return None, 0
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            dt -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        return dt, m.end()
    if c in "JFMASOND":
        m = _LINE_SYSLOG_RE.match(line)
        if m is None:
            return None, 0
        mon, day, hour, minute, sec, frac = m.groups()
        ref = reference or datetime.now(UTC)
        micro = int(frac.ljust(6, "0")) if frac else 0
        try:
            dt = datetime(ref.year, _MONTHS[mon], int(day), int(hour), int(minute), int(sec), micro, tzinfo=UTC)
        except ValueError:
            return None, 0
        if dt - ref > timedelta(days=1):
            try:
                dt = dt.replace(year=ref.year - 1)
            except ValueError:  # Feb 29
                return None, 0
        return dt, m.end()
    return None, 0


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


# ---------------------------------------------------------------------------
# Build metadata


def _opt_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


@dataclass(frozen=True)
class BuildInfo:
    """The metadata every document of one build carries."""

    uuid: str
    name: str | None = None
    status: str | None = None
    change: str | None = None
    patchset: str | None = None
    queue: str | None = None
    project: str | None = None
    voting: bool | None = None
    node_provider: str | None = None
    log_url: str | None = None
    branch: str | None = None
    ref: str | None = None
    newrev: str | None = None
    build_set: str | None = None
    tenant: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None

    @property
    def short_uuid(self) -> str:
        return self.uuid[:7]

    @property
    def time(self) -> datetime | None:
        """The build's reference time (fallback for lines without a timestamp)."""
        return self.start_time or self.end_time

    def fields(self) -> dict[str, Any]:
        """The logstash ``build_*`` (and related) fields of the build's documents."""
        out: dict[str, Any] = {"build_uuid": self.uuid, "build_short_uuid": self.short_uuid}
        for key, value in (
            ("build_name", self.name),
            ("build_status", self.status),
            ("build_change", self.change),
            ("build_patchset", self.patchset),
            ("build_queue", self.queue),
            ("build_branch", self.branch),
            ("build_ref", self.ref),
            ("build_newrev", self.newrev),
            ("build_set", self.build_set),
            ("project", self.project),
            ("node_provider", self.node_provider),
            ("tenant", self.tenant),
        ):
            if value is not None:
                out[key] = value
        if self.voting is not None:
            out["voting"] = 1 if self.voting else 0
        return out

    def file_url(self, relpath: str) -> str | None:
        if not self.log_url:
            return None
        return self.log_url.rstrip("/") + "/" + relpath.lstrip("/")


_UUID_RE = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


def _parse_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {short_repr(value)}")


def build_info_from_zuul(record: Mapping[str, Any]) -> BuildInfo:
    """A :class:`BuildInfo` from a Zuul build record (REST API or logscraper ``buildinfo``).

    Both shapes are accepted: flat ref fields (``project``, ``branch``,
    ``change``, ``patchset``, ``ref``, ``newrev``) and the Zuul >= 9 nested
    ``ref: {project, branch, change, patchset, ref, newrev}``.

    :raises ValueError: when the record has no build uuid.
    """
    ref = record.get("ref")
    nested: Mapping[str, Any] = ref if isinstance(ref, Mapping) else {}

    def pick(key: str) -> Any:
        if key in nested and nested[key] not in (None, ""):
            return nested[key]
        value = record.get(key)
        return None if isinstance(value, Mapping) else value

    uuid = record.get("uuid")
    if not uuid or not isinstance(uuid, str):
        raise ValueError("Zuul build record has no 'uuid' (a build that never ran has no logs)")
    buildset = record.get("buildset")
    build_set = buildset.get("uuid") if isinstance(buildset, Mapping) else None
    node_provider = record.get("node_provider")
    return BuildInfo(
        uuid=uuid,
        name=_opt_str(record.get("job_name")),
        status=_opt_str(record.get("result")),
        change=_opt_str(pick("change")),
        patchset=_opt_str(pick("patchset")),
        queue=_opt_str(record.get("pipeline")),
        project=_opt_str(pick("project")),
        voting=_parse_bool(record.get("voting")),
        node_provider=_opt_str(node_provider),
        log_url=_opt_str(record.get("log_url")),
        branch=_opt_str(pick("branch")),
        ref=_opt_str(pick("ref")),
        newrev=_opt_str(pick("newrev")),
        build_set=_opt_str(build_set),
        tenant=_opt_str(record.get("tenant")),
        start_time=parse_iso_timestamp(record.get("start_time")),
        end_time=parse_iso_timestamp(record.get("end_time")),
    )


def load_zuul_build(path: Path) -> BuildInfo:
    """Read a Zuul build record from a JSON file (a record, or a one-element list)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read Zuul build record: {exc}") from None
    if isinstance(data, list):
        if len(data) != 1:
            raise ValueError(f"{path}: expected one build record, found {len(data)}")
        data = data[0]
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a JSON object")  # noqa: TRY004 - one error type for bad input files
    return build_info_from_zuul(data)


# ---------------------------------------------------------------------------
# Log lines -> records


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


# ---------------------------------------------------------------------------
# Build directories


def _is_subunit(name: str) -> bool:
    return name == "testrepository.subunit" or name.endswith(SUBUNIT_SUFFIXES)


def list_build_files(
    root: Path, stats: IngestStats | None = None, exclude: Iterable[Path] = ()
) -> list[tuple[str, Path]]:
    """The regular files under ``root`` as ``(relative posix path, path)``, sorted.

    Symlinks whose target lies outside ``root`` are refused (logged and listed
    in ``stats.files_skipped``); directories are not followed through symlinks.
    Files in ``exclude`` (e.g. the Zuul build record itself) are left out.
    """
    stats = stats if stats is not None else IngestStats()
    base = root.resolve()
    excluded = {p.resolve() for p in exclude}
    out: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(base).as_posix()
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError):
                LOG.warning("%s: broken link or unreadable, skipped", rel)
                stats.files_skipped.append(rel)
                continue
            if real != base and base not in real.parents:
                LOG.warning("%s: points outside the build directory (%s), refused", rel, real)
                stats.files_skipped.append(rel)
                continue
            if not real.is_file():
                stats.files_skipped.append(rel)
                continue
            if real in excluded:
                continue
            out.append((rel, real))
    return out


@dataclass(frozen=True)
class TestResult:
    """The outcome of one test in a subunit stream."""

    test_id: str
    status: str
    duration: float | None = None


def read_subunit(fh: IO[bytes]) -> list[TestResult]:
    """Final per-test statuses of a subunit v2 stream (``success``, ``fail``, ``skip``...)."""
    import subunit  # python-subunit (untyped)
    import testtools

    statuses: dict[str, str] = {}
    starts: dict[str, datetime] = {}
    ends: dict[str, datetime] = {}

    class _Collector(testtools.StreamResult):
        def status(
            self,
            test_id: str | None = None,
            test_status: str | None = None,
            test_tags: set[str] | None = None,
            runnable: bool = True,
            file_name: str | None = None,
            file_bytes: bytes | None = None,
            eof: bool = False,
            mime_type: str | None = None,
            route_code: str | None = None,
            timestamp: datetime | None = None,
        ) -> None:
            if not test_id or not test_status:
                return
            ts = timestamp
            if test_status == "inprogress":
                if ts is not None:
                    starts[test_id] = ts
                return
            if test_status == "exists":
                statuses.setdefault(test_id, "exists")
                return
            statuses[test_id] = test_status
            if ts is not None:
                ends[test_id] = ts

    stream = subunit.ByteStreamToStreamResult(fh, non_subunit_name="stdout")
    result = _Collector()
    result.startTestRun()
    stream.run(result)
    result.stopTestRun()
    out = []
    for test_id, status in statuses.items():
        duration = None
        if test_id in starts and test_id in ends:
            duration = (ends[test_id] - starts[test_id]).total_seconds()
        out.append(TestResult(test_id=test_id, status=status, duration=duration))
    return out


def iter_build_dir(
    root: Path,
    build: BuildInfo,
    keep_debug: bool = False,
    stats: IngestStats | None = None,
    on_tests: Callable[[list[TestResult]], None] | None = None,
    on_file: Callable[[str, int], None] | None = None,
    exclude: Iterable[Path] = (),
) -> Iterator[dict[str, Any]]:
    """Documents of every log file in one build's directory.

    Subunit streams are passed to ``on_tests`` instead. ``on_file(relpath, size)``
    is called before each file (progress reporting).
    """
    stats = stats if stats is not None else IngestStats()
    for rel, path in list_build_files(root, stats, exclude):
        name = rel.rsplit("/", 1)[-1]
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        if on_file is not None:
            on_file(rel, size)
        if _is_subunit(name):
            try:
                with open_maybe_gz(path) as fh:
                    results = read_subunit(fh)
            except Exception as exc:  # noqa: BLE001 - subunit raises many types; never abort
                LOG.warning("%s: unreadable subunit stream: %s", rel, exc)
                stats.files_skipped.append(rel)
                continue
            stats.files += 1
            stats.test_results += len(results)
            if on_tests is not None:
                on_tests(results)
            continue
        try:
            with open_maybe_gz(path) as fh:
                stats.files += 1
                yield from documents_for_lines(rel, read_lines(fh), build, keep_debug=keep_debug, stats=stats)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            LOG.warning("%s: read error: %s", rel, exc)
            stats.files_skipped.append(rel)


# ---------------------------------------------------------------------------
# JSON lines


def iter_jsonl(fh: IO[bytes], stats: IngestStats | None = None) -> Iterator[dict[str, Any]]:
    """Documents of a JSON-lines stream; bad lines are counted (with line numbers), never fatal."""
    stats = stats if stats is not None else IngestStats()
    for lineno, (raw, cut) in enumerate(bounded_lines(fh, MAX_JSONL_LINE_BYTES), 1):
        if not raw.strip():
            continue
        stats.lines_read += 1
        if cut:
            stats.add_bad_line(lineno, f"longer than {MAX_JSONL_LINE_BYTES} bytes")
            continue
        problem, obj = _json_document(raw)
        if problem:
            stats.add_bad_line(lineno, problem)
            continue
        try:
            yield normalize_document(obj)
        except ValueError as exc:
            stats.add_bad_line(lineno, str(exc))


def _json_document(raw: bytes) -> tuple[str, Any]:
    """``("", object)`` for a JSON object line, else ``(why, None)``.

    Invalid UTF-8 inside the line is replaced (U+FFFD), as ``--build-dir``
    does with log lines, rather than losing the whole document.
    """
    try:
        obj = _json_loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        try:
            obj = _json_loads(raw.decode("utf-8", errors="replace").encode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return f"invalid JSON: {exc}", None
    if not isinstance(obj, Mapping):
        return f"expected a JSON object, got {type(obj).__name__}", None
    return "", obj


# ---------------------------------------------------------------------------
# Stable document ids


def document_id(build_uuid: str, filename: str, n: int) -> str:
    """A stable id for the ``n``-th document of a file of a build.

    Loading the same build twice (a crash between the load and the state
    update, or ``ingest`` run again) then replaces documents instead of
    duplicating them, in the embedded store (``id``) and in a cluster
    (``_id``) alike.
    """
    return hashlib.sha1(f"{build_uuid}\0{filename}\0{n}".encode()).hexdigest()


def stable_ids(docs: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """``docs`` (copied), each with an ``id``: its own ``id``/``_id`` if it has one, else a stable one.

    A document of a build gets :func:`document_id` of its ``build_uuid``,
    ``filename`` and its position among the documents of that file (what
    ``collect`` assigns); a document without ``build_uuid`` gets a hash of
    its content and of how many identical documents came before it.
    """
    ids = StableIds()
    for doc in docs:
        out = dict(doc)
        key = id_key(out)
        out["id"] = str(out.get("id", out.get("_id"))) if key is None else ids.next(key)
        out.pop("_id", None)
        yield out


#: What a document's stable id is derived from: ``(build_uuid, filename)``, or ``(content digest, None)``.
IdKey = tuple[str, str | None]


def id_key(doc: Mapping[str, Any]) -> IdKey | None:
    """None when ``doc`` has its own ``id``/``_id``; else what :class:`StableIds` numbers it by."""
    own = doc.get("id", doc.get("_id"))
    if isinstance(own, (str, int)) and not isinstance(own, bool) and str(own):
        return None
    if doc.get("build_uuid"):
        return str(doc["build_uuid"]), str(doc.get("filename", ""))
    return hashlib.sha1(json.dumps(dict(doc), sort_keys=True, default=str).encode()).hexdigest(), None


class StableIds:
    """Numbers the documents of one load, in order: the ``n``-th document of a build's file gets
    :func:`document_id` ``(build_uuid, filename, n)``; the ``k``-th copy of a build-less document
    its content digest (``k`` > 1: :func:`document_id` ``(digest, "", k)``)."""

    def __init__(self) -> None:
        self.counts: dict[IdKey, int] = {}

    def of(self, doc: Mapping[str, Any]) -> str | None:
        """The next id for ``doc``, or None when it has its own."""
        key = id_key(doc)
        return None if key is None else self.next(key)

    def next(self, key: IdKey) -> str:
        n = self.counts[key] = self.counts.get(key, 0) + 1
        first, filename = key
        if filename is None:
            return first if n == 1 else document_id(first, "", n)
        return document_id(first, filename, n)


# ---------------------------------------------------------------------------
# Pipelines into the store


class DocumentStore(Protocol):
    """Where the pipelines load documents: the embedded store or a cluster's
    :class:`~elastic_recheck.adapters.elastic.bulk.BulkWriter`."""

    def add_documents(self, docs: Iterable[Mapping[str, Any]], batch_size: int = 5000) -> IngestStats: ...

    def delete_build(self, build_uuid: str, filenames: Iterable[str] | None = None) -> int: ...

    def record_test_results(self, build_uuid: str, results: Iterable[TestResult | tuple[str, str]]) -> int: ...


#: JSON lines handed to a worker process at a time.
CHUNK_LINES = 2000


def _prepare_chunk(task: tuple[Any, int, list[bytes]]) -> tuple[list[Any], list[tuple[int, str]], int]:
    """Worker: parse, normalize and prepare one chunk of JSON lines (runs in a child process).

    Each prepared document comes with its :func:`id_key`: the writing process
    numbers them in file order (:class:`StableIds`), as the serial path does.
    """
    preparer, first, lines = task
    prepared = []
    bad: list[tuple[int, str]] = []
    read = 0
    for offset, raw in enumerate(lines):
        if not raw.strip():
            continue
        read += 1
        if len(raw) > MAX_JSONL_LINE_BYTES:
            bad.append((first + offset, f"longer than {MAX_JSONL_LINE_BYTES} bytes"))
            continue
        problem, obj = _json_document(raw)
        if problem:
            bad.append((first + offset, problem))
            continue
        try:
            doc = normalize_document(obj)
            prepared.append((id_key(doc), preparer.prepare(doc)))
        except ValueError as exc:
            bad.append((first + offset, str(exc)))
    return prepared, bad, read


def _chunks(fh: IO[bytes]) -> Iterator[tuple[int, list[bytes]]]:
    lineno = 1
    while True:
        # a cut line keeps one byte more than the limit, so the worker refuses it
        lines = [raw + b"+" if cut else raw for raw, cut in itertools.islice(bounded_lines(fh, MAX_JSONL_LINE_BYTES), CHUNK_LINES)]
        if not lines:
            return
        yield lineno, lines
        lineno += len(lines)


def ingest_jsonl(
    store: DocumentStore,
    path: Path,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> IngestStats:
    """Load a JSON-lines file (``.gz`` ok) of documents into the store (or a cluster).

    ``progress(nbytes)`` is called with (compressed) bytes consumed so far.
    ``workers``: processes that parse and analyze lines while this one
    writes (0: all in this process; None, the default: 0 too, since on a
    busy 2-core machine the workers did not pay for their overhead).
    """
    stats = IngestStats()
    started = time.perf_counter()
    workers = workers or 0
    with open(path, "rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        fh: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if magic == b"\x1f\x8b" else raw  # type: ignore[assignment]
        if workers > 0 and hasattr(store, "add_prepared"):  # the embedded store's worker pipeline
            _ingest_parallel(store, fh, raw, stats, workers, batch_size, progress)
        else:
            docs: Iterable[dict[str, Any]] = iter_jsonl(fh, stats)
            if progress is not None:
                docs = _report_progress(docs, raw, progress)
            if hasattr(store, "add_prepared"):  # the embedded store: ids kept out of the bodies
                ids = StableIds()
                stored = store.add_documents(docs, batch_size=batch_size, id_of=ids.of)  # type: ignore[call-arg]
            else:  # a cluster's bulk writer gives them as _id
                stored = store.add_documents(stable_ids(docs), batch_size=batch_size)
            stats.take_stored(stored)
    stats.seconds = time.perf_counter() - started
    return stats


def _ingest_parallel(
    store: Any,
    fh: IO[bytes],
    raw: IO[bytes],
    stats: IngestStats,
    workers: int,
    batch_size: int,
    progress: Callable[[int], None] | None,
) -> None:
    """Workers prepare chunks of lines (in order); this process writes them."""
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    preparer = store.preparer()
    ids = StableIds()
    pending: deque[Future[tuple[list[Any], list[tuple[int, str]], int]]] = deque()
    chunks = _chunks(fh)
    batch: list[Any] = []
    last = 0
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        exhausted = False
        while True:
            while not exhausted and len(pending) < 3 * workers:
                try:
                    first, lines = next(chunks)
                except StopIteration:
                    exhausted = True
                    break
                pending.append(pool.submit(_prepare_chunk, (preparer, first, lines)))
            if not pending:
                break
            prepared, bad, read = pending.popleft().result()
            stats.lines_read += read
            for lineno, why in bad:
                stats.add_bad_line(lineno, why)
            batch.extend(doc if key is None else (ids.next(key), *doc[1:]) for key, doc in prepared)
            if len(batch) >= batch_size:
                store.add_prepared(batch, stats)
                batch = []
            if progress is not None:
                try:
                    pos = raw.tell()
                except (OSError, ValueError):
                    pos = last
                if pos > last:
                    progress(pos - last)
                    last = pos
        if batch:
            store.add_prepared(batch, stats)


def _report_progress(docs: Iterable[dict[str, Any]], raw: IO[bytes], progress: Callable[[int], None]) -> Iterator[dict[str, Any]]:
    last = 0
    for n, doc in enumerate(docs):
        if n % 2000 == 0:
            try:
                pos = raw.tell()
            except (OSError, ValueError):
                pos = last
            if pos > last:
                progress(pos - last)
                last = pos
        yield doc


def ingest_build_dir(
    store: DocumentStore,
    root: Path,
    build: BuildInfo,
    keep_debug: bool = False,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
    exclude: Iterable[Path] = (),
) -> IngestStats:
    """Load one build's log directory (and its subunit results) into the store.

    Files already stored for this build are replaced, so ingesting a
    directory twice stores each line once.
    """
    exclude = list(exclude)
    if not root.is_dir():
        raise ValueError(f"{root}: not a directory")
    stats = IngestStats()
    started = time.perf_counter()
    tests: list[TestResult] = []

    def on_file(rel: str, size: int) -> None:
        if progress is not None:
            progress(size)

    # Ingesting a build again replaces the documents of the files it holds.
    names = {strip_gz(rel) for rel, _ in list_build_files(root, exclude=exclude)}
    replaced = store.delete_build(build.uuid, names)
    if replaced:
        LOG.info("%s: replacing %d documents of build %s", root, replaced, build.uuid)
    docs = iter_build_dir(
        root, build, keep_debug=keep_debug, stats=stats, on_tests=tests.extend, on_file=on_file, exclude=exclude
    )
    stats.take_stored(store.add_documents(docs, batch_size=batch_size))
    if tests:
        store.record_test_results(build.uuid, tests)
    stats.seconds = time.perf_counter() - started
    return stats


__all__ = [
    "BuildInfo",
    "IngestStats",
    "LogRecord",
    "TestResult",
    "DocumentStore",
    "build_info_from_zuul",
    "document_id",
    "documents_for_lines",
    "format_timestamp",
    "ingest_build_dir",
    "ingest_jsonl",
    "iter_build_dir",
    "iter_jsonl",
    "iter_records",
    "list_build_files",
    "load_zuul_build",
    "normalize_document",
    "parse_iso_timestamp",
    "parse_line_timestamp",
    "parse_loglevel",
    "read_lines",
    "read_subunit",
    "stable_ids",
    "StableIds",
    "id_key",
    "tags_for",
    "to_epoch_ms",
]

