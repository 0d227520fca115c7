"""Per-bug trend numbers and ``graph.json`` in the original elastic-recheck format.

For every fingerprint this asks the backend for

* the distinct builds it matches in the window (:meth:`SearchBackend.builds`,
  never truncated), from which ``fails``, ``fails24``, the breakdowns by job,
  node provider, branch and project, and the failure shares are derived
  (``last_seen`` is the newest matching line of a build inside the window, so
  "failed builds seen in the last 24 h" is exact), and
* an hourly distinct-build histogram per build status
  (:meth:`SearchBackend.build_histogram`), for graph.json's ``data`` (the
  site's daily charts are drawn from the builds).

Semantics kept from the original ``elastic-recheck-graph``: fingerprints
count only voting jobs unless ``allow-nonvoting: true`` (stored as
``voting``), ``suppress-graph`` fingerprints are left out of graph.json, a
queue restriction and a query suffix may be added, and the bug list is
sorted by failures in the last 24 hours, then by all failures. Unlike the
original, filters are structured (never pasted into the query text) and
counts come from aggregations (never capped at 3000 hits).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.search_types import Bucket, BuildSummary, Filters, Hit, QuerySpec
from elastic_recheck.core.stats import (
    HOUR,
    bug_sort_key,
    builds_since,
    count_status,
    dense_series,
    newest_first,
)
from elastic_recheck.core.timestamps import to_epoch_ms
from elastic_recheck.ports.search import SearchBackend
from elastic_recheck.report.window import ReportWindow

LOG = logging.getLogger(__name__)

#: ``progress(phase, done, total)``: called while collecting and rendering.
Progress = Callable[[str, int, int], None]

#: How many example matching lines each bug page shows (from its newest failed build).
SAMPLE_LINES = 5


@dataclass(frozen=True)
class BugData:
    """The ``bug_data`` block of graph.json (what the tracker says about a bug), and the bug's links.

    ``reviews``: open Gerrit change numbers that mention the bug
    (:mod:`elastic_recheck.report.reviews`); ``logstash_url``: the fingerprint run in
    the dashboard (:mod:`elastic_recheck.core.dashboard`), graph.json's
    ``logstash_url`` beside ``bug_data``.
    """

    name: str = ""
    affects: str = ""
    reviews: tuple[Any, ...] = ()
    status: str | None = None
    projects: tuple[str, ...] = ()
    logstash_url: str | None = None
    #: Changes whose commit message names the bug (:class:`elastic_recheck.core.fixes.Fix`; not in ``bug_data``).
    fixes: tuple[Any, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "affects": self.affects, "reviews": list(self.reviews)}


def bug_data_from_fingerprint(fp: Fingerprint) -> BugData:
    """Offline bug data: the ``bug_title``/``projects`` keys of the YAML file."""
    return BugData(
        name=fp.bug_title or "",
        affects=", ".join(f"({p})" for p in fp.projects),
        projects=fp.projects,
    )


def fingerprint_spec(
    fp: Fingerprint,
    window: ReportWindow,
    queue: str | None = None,
    suffix: str | None = None,
) -> QuerySpec:
    """The query for one fingerprint: its text (and the suffix as a second text) + filters."""
    queries = (fp.query,) + ((suffix,) if suffix and suffix.strip() else ())
    # Departure from the original (docs/compatibility.md): voting builds only
    # unless allow-nonvoting, decided by the voting field (the original's graph
    # did not filter; documents without a voting field are not counted).
    filters = Filters(voting=None if fp.allow_nonvoting else True, build_queue=queue or None)
    return QuerySpec(queries=queries, filters=filters, window=window.time_window, label=fp.bug)


@dataclass
class BugStats:
    """What the backend says about one fingerprint in the window."""

    fingerprint: Fingerprint
    spec: QuerySpec
    builds: list[BuildSummary] = field(default_factory=list)
    histogram: list[Bucket] = field(default_factory=list)
    samples: list[Hit] = field(default_factory=list)
    fails: int = 0
    fails24: int = 0
    #: The backend rejected this fingerprint's query (not a connection failure).
    error: str | None = None

    @property
    def bug(self) -> str:
        return self.fingerprint.bug

    @property
    def voting(self) -> bool:
        return not self.fingerprint.allow_nonvoting

    @property
    def uuids(self) -> set[str]:
        return {b.uuid for b in self.builds}

    def failed_builds(self) -> list[BuildSummary]:
        return newest_first(b for b in self.builds if b.status == "FAILURE")


def _compute_counts(stats: BugStats, window: ReportWindow) -> None:
    stats.fails = count_status(stats.builds, "FAILURE")
    stats.fails24 = len(builds_since(stats.builds, window.day_start, status="FAILURE"))


#: Most build uuids a histogram query is restricted to (see :func:`collect_bug_stats`).
MAX_UUID_FILTER = 5000


def build_level_match(build: BuildSummary, filters: Filters) -> bool:
    """Whether ``build`` passes the build-level filters ``voting`` and ``build_queue``.

    Every document of a build carries the same values for them, so filtering
    the builds a search found equals filtering its documents.
    """
    if filters.voting is not None and build.voting is not filters.voting:
        return False
    return filters.build_queue is None or build.queue == filters.build_queue


def _only_builds(spec: QuerySpec, uuids: Sequence[str]) -> QuerySpec:
    extra = dict(spec.filters.extra)
    extra["build_uuid"] = tuple(sorted(uuids))
    return replace(spec, filters=replace(spec.filters, extra=extra))


def _histogram_spec(
    plain: QuerySpec, found: Sequence[BuildSummary], wanted: Sequence[BuildSummary], fallback: QuerySpec
) -> QuerySpec:
    """A spec whose matches are exactly ``plain``'s matches in the ``wanted`` builds.

    ``found`` are all builds ``plain`` matches; ``wanted`` a subset chosen by
    build-level fields (voting, queue). Naming the builds is exact and, on the
    embedded store, far cheaper than a filter on a field that thousands of
    builds share; ``fallback`` (the filter itself) is used for huge subsets.
    """
    if len(wanted) == len(found):
        return plain
    if len(wanted) <= MAX_UUID_FILTER:
        return _only_builds(plain, [b.uuid for b in wanted])
    return fallback


class _SharedFields:
    """One copy of each build's fields, uuid and times for every fingerprint that matches it.

    A backend's :meth:`~SearchBackend.builds` returns fresh objects per build
    and call (the embedded store decodes its shape's JSON), so 1,000
    fingerprints that match the same few thousand builds would keep a
    million copies of the same dozen fields: the report's memory would grow
    with builds x fingerprints x fields. Equal ``fields`` mappings of a build
    are replaced by the first one seen (read-only: nothing writes to
    ``fields``), and so are its uuid string and equal ``first_seen`` /
    ``last_seen`` values (many fingerprints' first or last line in a build
    is the same line); what is left per fingerprint and build is the
    summary object itself.
    """

    def __init__(self) -> None:
        self._by_uuid: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self._times: dict[tuple[datetime, Any, int], datetime] = {}

    def _time(self, value: datetime | None) -> datetime | None:
        # (equal instants in other time zones compare equal but print differently: keyed apart)
        return None if value is None else self._times.setdefault((value, value.tzinfo, value.fold), value)

    def __call__(self, build: BuildSummary) -> BuildSummary:
        uuid, known = self._by_uuid.setdefault(build.uuid, (build.uuid, build.fields))
        # In place: every value is replaced by an equal one (nothing anyone can see changes),
        # and dataclasses.replace would cost 3 us per summary, a few seconds at 1M lines.
        put = object.__setattr__
        put(build, "uuid", uuid)
        if known is not build.fields and known == build.fields:
            put(build, "fields", known)
        put(build, "first_seen", self._time(build.first_seen))
        put(build, "last_seen", self._time(build.last_seen))
        return build


def collect_bug_stats(
    backend: SearchBackend,
    fingerprints: Sequence[Fingerprint],
    window: ReportWindow,
    *,
    queue: str | None = None,
    suffix: str | None = None,
    histogram: bool = True,
    samples: int = 0,
    progress: Progress | None = None,
) -> list[BugStats]:
    """Ask the backend about every fingerprint; one :class:`BugStats` each, in input order.

    Per fingerprint: one ``builds()`` call without the voting and queue
    filters (build-level fields, so filtering the returned builds is exact;
    see :func:`build_level_match`), then,
    only when it found builds, the hourly histogram restricted to the wanted
    builds, and example lines from the newest failed
    build. Quiet fingerprints cost one query.

    A fingerprint whose query the backend rejects gets ``error`` set and zero
    counts. A retryable :class:`BackendError` (the backend is down) propagates.
    """
    out: list[BugStats] = []
    total = len(fingerprints)
    shared = _SharedFields()
    for i, fp in enumerate(fingerprints):
        spec = fingerprint_spec(fp, window, queue=queue, suffix=suffix)
        stats = BugStats(fingerprint=fp, spec=spec)
        try:
            plain = replace(spec, filters=replace(spec.filters, voting=None, build_queue=None))
            found = backend.builds(plain)
            wanted = [shared(b) for b in found if build_level_match(b, spec.filters)]
            stats.builds = newest_first(wanted)
            if histogram and stats.builds:
                stats.histogram = backend.build_histogram(_histogram_spec(plain, found, stats.builds, spec), HOUR)
            failed = [b for b in stats.builds if b.status == "FAILURE"]
            if samples and failed:
                # Example lines from the newest failed build (one cheap, build-scoped search).
                newest = replace(plain.filters, build_uuid=failed[0].uuid)
                stats.samples = list(backend.search(replace(plain, filters=newest), size=samples, newest_first=True).hits)
        except BackendError as exc:
            if exc.retryable:
                raise
            LOG.error("bug %s: the backend rejected the query: %s", fp.bug, exc)
            stats = BugStats(fingerprint=fp, spec=spec, error=str(exc))
        _compute_counts(stats, window)
        out.append(stats)
        if progress is not None:
            progress("fingerprints", i + 1, total)
    return out


def sort_buglist(stats: Sequence[BugStats]) -> list[BugStats]:
    """Most failures in the last 24 h first, then most failures in the window, then bug id."""
    by_bug = sorted(stats, key=lambda s: s.bug)
    return sorted(by_bug, key=lambda s: bug_sort_key(s.fails24, s.fails), reverse=True)


def bug_entry(stats: BugStats, window: ReportWindow, bug_data: BugData) -> dict[str, Any]:
    """One element of graph.json's ``buglist``."""
    entry: dict[str, Any] = {
        "number": stats.bug,
        "query": stats.fingerprint.query,
        "logstash_url": bug_data.logstash_url,
        "bug_data": bug_data.as_json(),
        "fails": stats.fails,
        "fails24": stats.fails24,
        "data": dense_series(stats.histogram, window.start, window.now, HOUR),
        "voting": stats.voting,
    }
    if stats.error:
        entry["error"] = stats.error
    return entry


def graph_json(
    stats: Sequence[BugStats],
    window: ReportWindow,
    *,
    last_indexed: datetime | None,
    status: str,
    bug_data: Mapping[str, BugData] | None = None,
) -> dict[str, Any]:
    """The whole graph.json document (suppressed fingerprints left out)."""
    bug_data = bug_data or {}
    now_ms = to_epoch_ms(window.now)
    last_ms = to_epoch_ms(last_indexed) if last_indexed is not None else None
    buglist = [
        bug_entry(s, window, bug_data.get(s.bug) or bug_data_from_fingerprint(s.fingerprint))
        for s in sort_buglist(stats)
        if not s.fingerprint.suppress_graph
    ]
    return {
        "now": now_ms,
        "last_indexed": last_ms,
        "behind": (now_ms - last_ms) if last_ms is not None else None,
        "status": status,
        "days": window.days,
        "buglist": buglist,
    }
