"""What each bug costs: failed builds, changes hit, rechecks, gate resets, CI hours.

Pure functions over the builds the backend found, the recheck comments
(:mod:`elastic_recheck.core.rechecks`) and the build durations Zuul reported.

* **failed builds**: the bug's failed builds (its fingerprint's hits, voting
  jobs unless ``allow-nonvoting``), as on the bug page;
* **changes**: distinct Gerrit changes among them;
* **rechecks caused**: a recheck on a patch set answers the failed builds of
  that patch set that ended after the previous recheck of it (or ever, for
  the first one) and before the recheck. It is caused by every bug that
  explains one of those builds. A recheck none of whose failed builds is
  explained is *unexplained* (:func:`unexplained_rechecks`, the original's
  ``unaccounted_rechecks``); a recheck with no failed build in the store
  (logs not indexed, or older than the window) is neither;
* **gate resets**: distinct gate-queue buildsets (``build_set``, else the
  change and patch set) with a failed build of the bug: each one made Zuul
  throw away the work of the changes queued behind it;
* **CI hours burnt**: the summed run time of the failed builds: Zuul's
  ``start_time``/``end_time`` when the collector recorded them, else the
  time between the build's first and last log line;
* **per job**: the bug's failed builds of a job against every run of that job
  in the window (all results, all queues).

Each number is given for the whole window and for the last 24 hours (builds
by their last log line, rechecks by their time).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elastic_recheck.core.rechecks import Recheck
from elastic_recheck.core.search_types import BuildSummary
from elastic_recheck.core.stats import percent

FAILURE = "FAILURE"


@dataclass(frozen=True)
class RecheckCause:
    """One recheck, the failed builds it answered and the bugs that explain them."""

    recheck: Recheck
    failed: tuple[BuildSummary, ...]
    bugs: tuple[str, ...]

    @property
    def unexplained(self) -> bool:
        return bool(self.failed) and not self.bugs

    def as_json(self) -> dict[str, Any]:
        r = self.recheck
        return {
            "change": r.change,
            "patchset": r.patchset,
            "at": r.at.isoformat(),
            "author": r.author,
            "bugs": list(self.bugs),
            "failed_builds": [
                {"uuid": b.uuid, "build_name": b.job_name, "build_queue": b.queue}
                for b in self.failed
            ],
        }


@dataclass(frozen=True)
class Counts:
    failed_builds: int = 0
    changes: int = 0
    rechecks: int = 0
    gate_resets: int = 0
    hours: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "failed_builds": self.failed_builds,
            "changes": self.changes,
            "rechecks": self.rechecks,
            "gate_resets": self.gate_resets,
            "ci_hours": round(self.hours, 2),
        }


@dataclass(frozen=True)
class JobImpact:
    """The bug's failed builds of one job against all runs of that job in the window."""

    job: str
    failed: int
    runs: int

    @property
    def percent(self) -> float | None:
        return percent(self.failed, self.runs)

    def as_json(self) -> dict[str, Any]:
        return {"job": self.job, "failed": self.failed, "runs": self.runs, "percent": self.percent}


@dataclass(frozen=True)
class BugImpact:
    bug: str
    window: Counts
    day: Counts
    jobs: tuple[JobImpact, ...]
    #: Failed builds whose duration came from Zuul (the others: from their log lines).
    zuul_timed: int
    #: Failed builds whose duration is unknown (a single log line, no Zuul record).
    untimed: int
    rechecks: tuple[RecheckCause, ...]

    def sort_key(self) -> tuple[float, int, int, int]:
        """Most CI hours burnt first, then rechecks, gate resets and failed builds (all in the window)."""
        w = self.window
        return (round(w.hours, 6), w.rechecks, w.gate_resets, w.failed_builds)

    def as_json(self) -> dict[str, Any]:
        return {
            "window": self.window.as_json(),
            "last_24h": self.day.as_json(),
            "jobs": [j.as_json() for j in self.jobs],
            "hours_from": {"zuul": self.zuul_timed, "logs": self.window.failed_builds - self.zuul_timed - self.untimed,
                           "unknown": self.untimed},
        }


def build_key(b: BuildSummary) -> tuple[str, str] | None:
    change, ps = b.change, b.patchset
    if not change or not ps:
        return None
    return change, ps


def build_seconds(b: BuildSummary, zuul_seconds: Mapping[str, float]) -> tuple[float | None, bool]:
    """``(seconds, from_zuul)``: Zuul's duration when known, else first to last log line (None: unknown)."""
    if b.uuid in zuul_seconds:
        return max(0.0, float(zuul_seconds[b.uuid])), True
    if b.first_seen is not None and b.last_seen is not None and b.last_seen > b.first_seen:
        return (b.last_seen - b.first_seen).total_seconds(), False
    return None, False


def attribute_rechecks(
    rechecks: Iterable[Recheck],
    all_builds: Iterable[BuildSummary],
    explained: Mapping[str, Sequence[str]],
) -> list[RecheckCause]:
    """Each recheck with the failed builds it answered (see the module doc) and their bugs, oldest first.

    ``explained``: build uuid -> bugs whose fingerprint hits that failed build.
    """
    failed_by_ps: dict[tuple[str, str], list[BuildSummary]] = defaultdict(list)
    for b in all_builds:
        key = build_key(b)
        if key is not None and b.status == FAILURE and b.last_seen is not None:
            failed_by_ps[key].append(b)
    out: list[RecheckCause] = []
    previous: dict[tuple[str, str], datetime] = {}
    for r in sorted(set(rechecks)):
        key = (r.change, r.patchset)
        since = previous.get(key)
        previous[key] = r.at
        answered = tuple(sorted(
            (b for b in failed_by_ps.get(key, ())
             if b.last_seen is not None and b.last_seen <= r.at and (since is None or b.last_seen > since)),
            key=lambda b: b.uuid,
        ))
        bugs = sorted({bug for b in answered for bug in explained.get(b.uuid, ())})
        out.append(RecheckCause(recheck=r, failed=answered, bugs=tuple(bugs)))
    return out


def unexplained_rechecks(causes: Iterable[RecheckCause]) -> list[RecheckCause]:
    """Rechecks left on failures that no fingerprint explains, newest first."""
    return sorted((c for c in causes if c.unexplained), key=lambda c: c.recheck, reverse=True)


def _counts(failed: Sequence[BuildSummary], rechecks: int, gate_queue: str, zuul_seconds: Mapping[str, float]) -> Counts:
    changes = {b.change for b in failed if b.change}
    resets = {
        str(b.build_set or build_key(b) or b.uuid)
        for b in failed
        if (b.queue or "") == gate_queue
    }
    seconds = sum(build_seconds(b, zuul_seconds)[0] or 0.0 for b in failed)
    return Counts(len(failed), len(changes), rechecks, len(resets), seconds / 3600.0)


def bug_impact(
    bug: str,
    bug_failed: Sequence[BuildSummary],
    *,
    whole: Mapping[str, BuildSummary],
    runs_per_job: Mapping[str, int],
    causes: Sequence[RecheckCause],
    gate_queue: str,
    day_start: datetime,
    zuul_seconds: Mapping[str, float],
) -> BugImpact:
    """One bug's impact. ``whole``: uuid -> the build with its first and last log line (any line)."""
    failed = [whole.get(b.uuid, b) for b in bug_failed]
    recent = [b for b in failed if b.last_seen is not None and b.last_seen >= day_start]
    mine = tuple(c for c in causes if bug in c.bugs)
    per_job: dict[str, int] = defaultdict(int)
    for b in failed:
        per_job[b.job_name or "(unknown job)"] += 1
    jobs = sorted(
        (JobImpact(job, n, max(n, runs_per_job.get(job, 0))) for job, n in per_job.items()),
        key=lambda j: (-(j.percent or 0.0), -j.failed, j.job),
    )
    timing = [build_seconds(b, zuul_seconds) for b in failed]
    return BugImpact(
        bug=bug,
        window=_counts(failed, len(mine), gate_queue, zuul_seconds),
        day=_counts(recent, sum(1 for c in mine if c.recheck.at >= day_start), gate_queue, zuul_seconds),
        jobs=tuple(jobs),
        zuul_timed=sum(1 for _, z in timing if z),
        untimed=sum(1 for s, _ in timing if s is None),
        rechecks=mine,
    )


def runs_by_job(all_builds: Iterable[BuildSummary]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for b in all_builds:
        out[b.job_name or "(unknown job)"] += 1
    return dict(out)


def impact_order(impacts: Iterable[BugImpact]) -> list[BugImpact]:
    """Highest impact first (:meth:`BugImpact.sort_key`), then bug id."""
    return sorted(sorted(impacts, key=lambda i: i.bug), key=lambda i: i.sort_key(), reverse=True)
