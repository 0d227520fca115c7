"""Quiet fingerprints, and resolved bugs that came back.

The site shows both (the stale fingerprints page, the returning bugs on the
index); ``elastic-recheck stale`` prints the first (:func:`format_text`) and
``stale --irc`` announces the second (:mod:`elastic_recheck.contrib.announce`).

Two questions about the fingerprints already in the tree:

* **Which can go?** A fingerprint with no hit in the last ``days`` (default
  :data:`DEFAULT_QUIET_DAYS`) whose bug is closed (Fix Released, Invalid,
  Won't Fix...) or marked ``resolved_at`` in its YAML is a removal
  candidate. Quiet ones are kept when they are ``suppress-graph``
  infrastructure issues (mirror, node and network failures come back months
  later and are cheap to keep) or when their bug is still open; quiet ones
  whose bug status is unknown need a look.
* **Which fixed bugs are back?** :func:`find_returning` lists the resolved
  fingerprints that hit failed builds *after* their resolution.

Bug status comes from the tracker (:mod:`elastic_recheck.adapters.launchpad.trackers`,
``BugInfo.status``); callers pass what they have and a missing entry means
"status unknown".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.search_types import BuildSummary, Filters, QuerySpec, TimeWindow
from elastic_recheck.core.stats import newest_first
from elastic_recheck.ports.search import SearchBackend
from elastic_recheck.report.graph import build_level_match

LOG = logging.getLogger(__name__)

#: Two weeks: longer than the 10-day window of the trend pages (a fingerprint
#: is not called quiet just because its last hit scrolled off the graph), and
#: within the retention of a typical logstash cluster.
DEFAULT_QUIET_DAYS = 14.0

#: When a bug is Fix Released but nobody recorded when (no ``resolved_at`` in
#: the YAML, and the tracker gives no fix date), hits in this many last days count as
#: "came back" (flagged :attr:`Returning.date_known` False).
DEFAULT_RETURNING_DAYS = 10.0

FIX_RELEASED = "Fix Released"
#: Bug statuses for which a quiet fingerprint can be removed.
REMOVABLE_STATUSES: frozenset[str] = frozenset(
    {FIX_RELEASED, "Invalid", "Won't Fix", "Opinion", "Expired", "Does Not Exist"}
)

REMOVE = "remove"
KEEP = "keep"
CHECK = "check"
ACTIVE = "active"
VERDICTS: tuple[str, ...] = (REMOVE, CHECK, KEEP, ACTIVE)


class HasStatus(Protocol):
    """What is needed of a tracker's bug record (``elastic_recheck.ports.bugs.BugInfo``)."""

    @property
    def status(self) -> str | None: ...


def _status(bugs: Mapping[str, HasStatus], bug: str) -> str | None:
    info = bugs.get(bug)
    return info.status if info is not None else None


def _fixed_at(bugs: Mapping[str, HasStatus], bug: str) -> datetime | None:
    """The tracker's fix date (``BugInfo.fixed_at``: Launchpad's latest
    ``date_fix_released``), when the record has one."""
    when = getattr(bugs.get(bug), "fixed_at", None)
    return when if isinstance(when, datetime) and when.tzinfo is not None else None


def _spec(fp: Fingerprint, window: TimeWindow) -> QuerySpec:
    """The fingerprint as the trend pages count it: voting builds unless ``allow-nonvoting``."""
    return QuerySpec(
        queries=(fp.query,),
        filters=Filters(voting=None if fp.allow_nonvoting else True),
        window=window,
        label=fp.bug,
    )


def _builds(backend: SearchBackend, fp: Fingerprint, window: TimeWindow) -> list[BuildSummary]:
    """The builds ``fp`` hits in ``window`` as :func:`_spec` counts them, newest first.

    The voting filter is applied to the returned builds, not sent to the
    backend: ``voting`` is a build-level field, so this is exact (see
    :func:`~elastic_recheck.report.graph.build_level_match`), and on the
    embedded store a filter on a field thousands of builds share costs far
    more than the search itself (1,000 fingerprints over a million lines:
    about 0.25 s this way, 15 s with the filter in the query).
    """
    spec = _spec(fp, window)
    plain = replace(spec, filters=replace(spec.filters, voting=None))
    return [b for b in backend.builds(plain) if build_level_match(b, spec.filters)]


def _last_hit(backend: SearchBackend, fp: Fingerprint, now: datetime) -> datetime | None:
    """The newest hit of ``fp`` before ``now`` in the whole store (counted builds only)."""
    spec = _spec(fp, TimeWindow(end=now))
    plain = replace(spec, filters=replace(spec.filters, voting=None))
    newest = backend.builds(plain, limit=1)
    if not newest:
        return None
    if not build_level_match(newest[0], spec.filters):
        # The newest hit is in a build that does not count: ask with the filter.
        newest = backend.builds(spec, limit=1)
    return newest[0].last_seen if newest else None


def _failed(build: BuildSummary) -> bool:
    return build.status not in ("SUCCESS", "", None)


# ---------------------------------------------------------------------------
# Resolved bugs that came back
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Returning:
    """A fingerprint of a resolved bug that hit failed builds after the resolution.

    ``since`` is the resolution time (``resolved_at`` in the YAML, else the
    tracker's fix date), or, when the tracker says Fix Released without a
    date, the start of the
    recent window that was searched (``date_known`` False).
    """

    fingerprint: Fingerprint
    since: datetime
    date_known: bool
    #: The bug status from the tracker (None when unknown).
    status: str | None
    #: Failed (not SUCCESS) builds hit since ``since``, newest first.
    builds: tuple[BuildSummary, ...]

    @property
    def bug(self) -> str:
        return self.fingerprint.bug

    @property
    def first_seen(self) -> datetime | None:
        times = [b.first_seen for b in self.builds if b.first_seen is not None]
        return min(times) if times else None

    def as_json(self) -> dict[str, Any]:
        return {
            "bug": self.bug,
            "url": self.fingerprint.url,
            "file": str(self.fingerprint.path) if self.fingerprint.path else None,
            "status": self.status,
            "since": self.since.isoformat(),
            "date_known": self.date_known,
            "failed_builds": len(self.builds),
            "builds": [_build_json(b) for b in self.builds],
        }


def _build_json(b: BuildSummary) -> dict[str, Any]:
    keys = ("build_name", "project", "build_change", "build_patchset", "build_queue", "build_status", "log_url")
    return {
        "uuid": b.uuid,
        **{k: b.fields.get(k) for k in keys if b.fields.get(k) is not None},
        "first_seen": b.first_seen.isoformat() if b.first_seen else None,
        "last_seen": b.last_seen.isoformat() if b.last_seen else None,
    }


def find_returning(
    backend: SearchBackend,
    fingerprints: Sequence[Fingerprint],
    bugs: Mapping[str, HasStatus],
    now: datetime,
    *,
    unknown_date_days: float = DEFAULT_RETURNING_DAYS,
) -> list[Returning]:
    """Resolved bugs whose fingerprint hit failed builds after the resolution.

    A fingerprint counts as resolved when its YAML has ``resolved_at`` (then
    hits in ``[resolved_at, now)`` count), or else when ``bugs[bug].status``
    is ``Fix Released``: hits after the tracker's fix date count (the record's
    ``fixed_at``, Launchpad's ``date_fix_released`` of the last released
    task); without one, hits in the last ``unknown_date_days`` before ``now``
    count and the result says ``date_known=False``. Only failed builds (``build_status`` other than
    SUCCESS) count, voting ones unless the fingerprint has
    ``allow-nonvoting``. One ``builds()`` call per resolved fingerprint; the
    others cost nothing.

    :param bugs: bug id -> tracker record with a ``status`` (e.g. the result
        of ``BugTracker.get_many``); a missing bug means status unknown.
    :param now: the end of the searched interval (timezone-aware).
    :returns: one :class:`Returning` per bug that came back, the most
        recently hit first; builds newest first.
    :raises BackendError: when the backend is unreachable (retryable). A
        query the backend rejects is logged and skipped.
    """
    out: list[Returning] = []
    for fp in fingerprints:
        status = _status(bugs, fp.bug)
        if fp.resolved_at is not None:
            since, known = fp.resolved_at, True
        elif status == FIX_RELEASED and (fixed := _fixed_at(bugs, fp.bug)) is not None:
            since, known = fixed, True
        elif status == FIX_RELEASED:
            since, known = now - timedelta(days=unknown_date_days), False
        else:
            continue
        if since >= now:
            continue
        try:
            builds = _builds(backend, fp, TimeWindow(start=since, end=now))
        except BackendError as exc:
            if exc.retryable:
                raise
            LOG.error("bug %s: the backend rejected the fingerprint: %s", fp.bug, exc)
            continue
        failed = tuple(newest_first(b for b in builds if _failed(b)))
        if failed:
            out.append(Returning(fingerprint=fp, since=since, date_known=known, status=status, builds=failed))
    out.sort(key=lambda r: (r.builds[0].last_seen is not None, r.builds[0].last_seen or now, r.bug), reverse=True)
    return out


# ---------------------------------------------------------------------------
# Quiet fingerprints
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StaleEntry:
    """One fingerprint's verdict: remove, check, keep or active."""

    fingerprint: Fingerprint
    status: str | None
    #: Matching log lines in the quiet window.
    hits: int
    #: Newest hit in the store up to ``now`` (None: never hit, as far as the store knows).
    last_hit: datetime | None
    verdict: str
    reason: str

    @property
    def bug(self) -> str:
        return self.fingerprint.bug

    def as_json(self) -> dict[str, Any]:
        return {
            "bug": self.bug,
            "url": self.fingerprint.url,
            "file": str(self.fingerprint.path) if self.fingerprint.path else None,
            "status": self.status,
            "suppress_graph": self.fingerprint.suppress_graph,
            "resolved_at": self.fingerprint.resolved_at.isoformat() if self.fingerprint.resolved_at else None,
            "hits": self.hits,
            "last_hit": self.last_hit.isoformat() if self.last_hit else None,
            "verdict": self.verdict,
            "reason": self.reason,
        }


def verdict(fp: Fingerprint, status: str | None, hits: int) -> tuple[str, str]:
    """``(verdict, reason)`` for one fingerprint (pure; see the module docstring)."""
    if hits:
        if status in REMOVABLE_STATUSES:
            return ACTIVE, f"still hitting although the bug is {status}"
        return ACTIVE, "still hitting"
    if fp.suppress_graph:
        return KEEP, "infrastructure issue (suppress-graph): these come back; cheap to keep"
    if status is not None and status not in REMOVABLE_STATUSES:
        return KEEP, f"quiet, but the bug is still {status}"
    if status in REMOVABLE_STATUSES:
        return REMOVE, f"quiet and the bug is {status}"
    if fp.resolved_at is not None:
        return REMOVE, f"quiet and resolved on {fp.resolved_at:%Y-%m-%d} (resolved_at)"
    return CHECK, "quiet; bug status unknown"


@dataclass(frozen=True)
class StaleReport:
    now: datetime
    days: float
    entries: tuple[StaleEntry, ...]
    returning: tuple[Returning, ...]

    def by_verdict(self, name: str) -> list[StaleEntry]:
        return [e for e in self.entries if e.verdict == name]

    def as_json(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "days": self.days,
            "counts": {v: len(self.by_verdict(v)) for v in VERDICTS},
            "fingerprints": [e.as_json() for e in self.entries],
            "returning": [r.as_json() for r in self.returning],
        }


def find_stale(
    backend: SearchBackend,
    fingerprints: Sequence[Fingerprint],
    bugs: Mapping[str, HasStatus],
    now: datetime,
    days: float = DEFAULT_QUIET_DAYS,
) -> StaleReport:
    """Verdicts for every fingerprint, plus :func:`find_returning`.

    Hits in ``[now - days, now)`` are counted per fingerprint from the builds
    it hits (one ``builds()`` call each, as the trend pages do); the last hit
    of each quiet one is then looked up over the whole store up to ``now``.

    :raises BackendError: when the backend is unreachable. A query the
        backend rejects gives a ``check`` verdict saying so.
    """
    window = TimeWindow(start=now - timedelta(days=days), end=now)
    entries: list[StaleEntry] = []
    for fp in fingerprints:
        status = _status(bugs, fp.bug)
        try:
            hits = sum(max(b.docs, 1) for b in _builds(backend, fp, window))
            last = None if hits else _last_hit(backend, fp, now)
        except BackendError as exc:
            if exc.retryable:
                raise
            LOG.error("bug %s: the backend rejected the fingerprint: %s", fp.bug, exc)
            entries.append(StaleEntry(fp, status, 0, None, CHECK, f"the backend rejected the query: {exc}"))
            continue
        name, reason = verdict(fp, status, hits)
        if name != ACTIVE:
            never = "; no hit in the store" if fp.allow_nonvoting else "; no hit in a voting build in the store"
            reason += f"; last hit {last:%Y-%m-%d}" if last else never
        entries.append(StaleEntry(fp, status, hits, last, name, reason))
    order = {v: i for i, v in enumerate(VERDICTS)}
    entries.sort(key=lambda e: (order[e.verdict], e.bug))
    returning = find_returning(backend, fingerprints, bugs, now)
    return StaleReport(now=now, days=days, entries=tuple(entries), returning=tuple(returning))


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------

#: Builds listed per returning bug in text output (JSON lists them all).
SHOWN_BUILDS = 5


def format_text(report: StaleReport, show_active: bool = False) -> str:
    lines: list[str] = []
    titles = {
        REMOVE: "Removal candidates",
        CHECK: "Quiet, bug status unknown (check the bug)",
        KEEP: "Quiet, but keep",
        ACTIVE: "Active",
    }
    lines.append(f"Fingerprints with no hit in the {report.days:g} days before {report.now:%Y-%m-%d %H:%M} UTC")
    for name in VERDICTS:
        if name == ACTIVE and not show_active:
            continue
        group = report.by_verdict(name)
        lines.append("")
        lines.append(f"{titles[name]} ({len(group)}):")
        for e in group:
            where = str(e.fingerprint.path) if e.fingerprint.path else e.bug
            lines.append(f"  {where}: {e.reason} [{e.fingerprint.url}]")
    lines.append("")
    lines.append(f"Resolved bugs that came back ({len(report.returning)}):")
    for r in report.returning:
        days = (report.now - r.since).total_seconds() / 86400
        when = (
            f"since {r.since:%Y-%m-%d}"
            if r.date_known
            else f"in the last {days:g} days (status {r.status}, fix date unknown: set resolved_at in the YAML)"
        )
        lines.append(f"  {r.bug}: {len(r.builds)} failed build(s) {when} [{r.fingerprint.url}]")
        for b in r.builds[:SHOWN_BUILDS]:
            seen = f"{b.last_seen:%Y-%m-%d %H:%M}" if b.last_seen else "?"
            job = b.job_name or "?"
            link = b.log_url or b.uuid
            lines.append(f"    {seen} {job} {link}")
        if len(r.builds) > SHOWN_BUILDS:
            lines.append(f"    ... and {len(r.builds) - SHOWN_BUILDS} more (--format json lists all)")
    return "\n".join(lines) + "\n"
