"""Trend and classification-rate arithmetic (pure functions, no I/O).

Everything here works on the value objects the search port returns
(:class:`~elastic_recheck.core.search_types.Bucket`, :class:`~elastic_recheck.core.search_types.BuildSummary`)
so the report builders stay thin and these numbers are testable without a
backend. Times are timezone-aware UTC datetimes; "ms" means milliseconds
since the epoch (what graph.json and its JavaScript consumers use).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from elastic_recheck.core.search_types import Bucket, BuildSummary, TermCount
from elastic_recheck.core.timestamps import EPOCH, to_epoch_ms

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

#: build_status values drawn first (and in this order) in charts and graph.json.
STATUS_ORDER: tuple[str, ...] = ("FAILURE", "SUCCESS")


def floor_time(dt: datetime, interval: timedelta) -> datetime:
    """Start of the epoch-aligned bucket of ``interval`` that holds ``dt``."""
    step = interval // timedelta(microseconds=1)
    offset = (dt - EPOCH) // timedelta(microseconds=1)
    return EPOCH + timedelta(microseconds=offset - offset % step)


def bucket_starts(start: datetime, end: datetime, interval: timedelta = HOUR) -> list[datetime]:
    """Every epoch-aligned bucket start that overlaps ``[start, end)``, oldest first."""
    if end <= start:
        return []
    first = floor_time(start, interval)
    out: list[datetime] = []
    t = first
    while t < end:
        out.append(t)
        t += interval
    return out


def status_labels(buckets: Iterable[Bucket]) -> list[str]:
    """The build_status values present, FAILURE and SUCCESS first, others sorted."""
    seen: set[str] = set()
    for b in buckets:
        seen.update(s for s, n in b.counts.items() if n)
    head = [s for s in STATUS_ORDER if s in seen]
    return head + sorted(seen - set(head))


def dense_series(
    buckets: Sequence[Bucket],
    start: datetime,
    end: datetime,
    interval: timedelta = HOUR,
) -> list[dict[str, Any]]:
    """graph.json ``data``: one ``{label, data: [[ms, count], ...]}`` per status.

    Like the original graph.json every series covers every bucket of the
    window (zeros where the backend returned none), so all series of all bugs
    share one x axis.
    """
    starts = bucket_starts(start, end, interval)
    if not starts:
        return []
    first = to_epoch_ms(starts[0])
    step = interval // timedelta(milliseconds=1)
    xs = [first + i * step for i in range(len(starts))]
    series = []
    for label in status_labels(buckets):
        counts = [0] * len(xs)
        for b in buckets:
            n = b.counts.get(label, 0)
            if not n:
                continue
            idx, rem = divmod(to_epoch_ms(b.start) - first, step)
            if rem == 0 and 0 <= idx < len(xs):
                counts[idx] = int(n)
        series.append({"label": label, "data": [[x, c] for x, c in zip(xs, counts, strict=True)]})
    return series


def day_buckets(builds: Iterable[BuildSummary], start: datetime, end: datetime) -> list[Bucket]:
    """Distinct builds per UTC day of ``[start, end)`` by ``build_status``, one bucket per day (empty ones too).

    A build counts once, on the day of its newest matching line in the
    window (``last_seen``, as the "failed in 24 h" counts use it), so the
    buckets of a bug add up to its build counts. Builds without a status
    count as ``"unknown"``.
    """
    starts = bucket_starts(start, end, DAY)
    counts: dict[datetime, Counter[str]] = {t: Counter() for t in starts}
    for b in builds:
        seen = b.last_seen
        if seen is None or not start <= seen < end:
            continue
        counts[floor_time(seen, DAY)][b.status or "unknown"] += 1
    return [Bucket(start=t, counts=dict(counts[t])) for t in starts]


def builds_since(builds: Iterable[BuildSummary], since: datetime, status: str | None = None) -> list[BuildSummary]:
    """Builds with a matching document at or after ``since`` (optionally of one status).

    ``last_seen`` is the newest *matching* document of the build inside the
    searched window, so this equals a distinct-build count over ``[since, end)``.
    """
    out = []
    for b in builds:
        if status is not None and b.status != status:
            continue
        if b.last_seen is not None and b.last_seen >= since:
            out.append(b)
    return out


def count_status(builds: Iterable[BuildSummary], status: str) -> int:
    return sum(1 for b in builds if b.status == status)


def uuids(builds: Iterable[BuildSummary]) -> set[str]:
    return {b.uuid for b in builds}


def percent(part: int, whole: int) -> float | None:
    """``part / whole`` in percent, rounded to 0.1 (for display); None when ``whole`` is 0."""
    exact = exact_percent(part, whole)
    return round(exact, 1) if exact is not None else None


def exact_percent(part: int, whole: int) -> float | None:
    """``part / whole`` in percent, not rounded (for machine-readable output); None when ``whole`` is 0."""
    if whole <= 0:
        return None
    return 100.0 * part / whole


@dataclass(frozen=True)
class Share:
    """A bug's part of a set of failed builds (:func:`failure_share`)."""

    hits: int
    total: int
    percent: float | None


def failure_share(hit_uuids: Collection[str], failed_uuids: Collection[str]) -> tuple[int, int, float | None]:
    """How many of ``failed_uuids`` a bug hits: ``(hits, total, percent)``."""
    failed = failed_uuids if isinstance(failed_uuids, (set, frozenset)) else set(failed_uuids)
    hits = len(failed.intersection(hit_uuids))
    return hits, len(failed), percent(hits, len(failed))


def breakdown(builds: Iterable[BuildSummary], field: str, missing: str = "(none)") -> list[TermCount]:
    """Distinct builds (and matching documents) per value of a build-level field.

    Sorted by builds, then documents (both descending), then value. Nothing is
    cut off: callers decide how many rows to show and say so.
    """
    nbuilds: Counter[str] = Counter()
    ndocs: Counter[str] = Counter()
    for b in builds:
        value = b.text(field) or missing
        nbuilds[value] += 1
        ndocs[value] += b.docs
    rows = [TermCount(value=v, builds=n, docs=ndocs[v]) for v, n in nbuilds.items()]
    rows.sort(key=lambda t: (-t.builds, -t.docs, t.value))
    return rows


def bug_sort_key(fails24: int, fails: int) -> tuple[int, int]:
    """The original graph.json order (use with ``reverse=True``): 24 h failures, then all."""
    return (fails24, fails)


@dataclass(frozen=True)
class _Rate:
    """``explained`` of ``failed`` builds: the uncategorized rest and the rate."""

    failed: int
    explained: int

    @property
    def uncategorized(self) -> int:
        return self.failed - self.explained

    @property
    def rate(self) -> float | None:
        return percent(self.explained, self.failed)

    @property
    def exact_rate(self) -> float | None:
        return exact_percent(self.explained, self.failed)


@dataclass(frozen=True)
class JobRate(_Rate):
    """Classification rate of one job's failed builds."""

    name: str


@dataclass(frozen=True)
class ClassificationRate(_Rate):
    """How many failed builds at least one fingerprint explains, overall and per job."""

    jobs: tuple[JobRate, ...]


def classification_rate(
    failed: Iterable[BuildSummary],
    explained_uuids: Collection[str],
    job_of: Callable[[BuildSummary], str] | None = None,
) -> ClassificationRate:
    """Overall and per-job classification rate of ``failed`` builds.

    Jobs are sorted by uncategorized failures (most first), then name, like
    the original page that listed the worst-covered jobs on top.
    """
    job_of = job_of or (lambda b: b.job_name or "(unknown job)")
    total: Counter[str] = Counter()
    found: Counter[str] = Counter()
    n = hit = 0
    for b in failed:
        job = job_of(b)
        total[job] += 1
        n += 1
        if b.uuid in explained_uuids:
            found[job] += 1
            hit += 1
    jobs = [JobRate(name=j, failed=total[j], explained=found[j]) for j in total]
    jobs.sort(key=lambda r: (-r.uncategorized, -r.failed, r.name))
    return ClassificationRate(failed=n, explained=hit, jobs=tuple(jobs))


def group_builds(
    builds: Iterable[BuildSummary], key: Callable[[BuildSummary], str]
) -> dict[str, list[BuildSummary]]:
    """Split builds by ``key`` keeping their order."""
    out: dict[str, list[BuildSummary]] = defaultdict(list)
    for b in builds:
        out[key(b)].append(b)
    return dict(out)


def newest_first(builds: Iterable[BuildSummary]) -> list[BuildSummary]:
    """Builds by ``last_seen`` descending (unknown times last), then uuid."""
    return sorted(builds, key=lambda b: (b.last_seen is not None, b.last_seen or EPOCH, b.uuid), reverse=True)


def explained_by(
    bug_uuids: Mapping[str, Collection[str]], candidates: Iterable[str]
) -> dict[str, list[str]]:
    """For each candidate build uuid, the bugs whose hit set contains it (sorted)."""
    wanted = set(candidates)
    out: dict[str, list[str]] = {u: [] for u in wanted}
    for bug, hits in bug_uuids.items():
        for u in wanted.intersection(hits):
            out[u].append(bug)
    for v in out.values():
        v.sort()
    return out


def lag(now: datetime, newest: datetime | None) -> timedelta | None:
    """How far the newest indexed event is behind ``now`` (None when the store is empty)."""
    if newest is None:
        return None
    return now - newest


def humanize_delta(delta: timedelta | None) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``42 s`` (negative: ``ahead by ...``)."""
    if delta is None:
        return "unknown"
    secs = int(delta.total_seconds())
    prefix = ""
    if secs < 0:
        prefix, secs = "ahead by ", -secs
    d, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        text = f"{d} d {h} h"
    elif h:
        text = f"{h} h {m} min"
    elif m:
        text = f"{m} min {s} s"
    else:
        text = f"{s} s"
    return prefix + text
