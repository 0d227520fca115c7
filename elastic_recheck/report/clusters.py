"""Failure clusters of the uncategorized page: uncategorized builds grouped by failure signature.

Like LUCI Analysis's failure clusters: the uncategorized failed gate builds
of the window are grouped by their failure signature
(:mod:`elastic_recheck.core.signatures`, the same signature the bot and
``classify`` compute: ``suggest``'s normalized error lines plus the failed
tests), biggest impact first (builds, then changes, then the share of the
gate's failures). Each cluster carries its error line, jobs, projects, a
daily trend, example builds and, when ``suggest`` drafted a fingerprint for
those builds, the draft (query, backtest precision, the ``queries/<bug>.yaml``
text).

The daily classification rate (:func:`daily_rates`) shows per group, per
day, the share of failed builds explained by a fingerprint, and the share
"explained or recurring": explained, or uncategorized with a signature that
uncategorized builds of at least ``recurring_changes`` other changes share in
the window.

Everything here is pure: the error lines come from the site's one batched
fetch (the same lines the suggestions and the rows read).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from elastic_recheck.core.error_lines import ErrorLine
from elastic_recheck.core.search_types import Bucket, BuildSummary
from elastic_recheck.core.signatures import FailureSignature, signatures_of_lines
from elastic_recheck.core.stats import DAY, bucket_starts, day_buckets, floor_time, newest_first
from elastic_recheck.report.drafts import Draft, draft_yaml
from elastic_recheck.report.triage import BuildTriage
from elastic_recheck.report.uncategorized import UncategorizedReport, job_name
from elastic_recheck.report.window import ReportWindow

#: Example builds shown per cluster.
EXAMPLES = 3


@dataclass
class FailureCluster:
    """Uncategorized builds that failed with one signature."""

    signature: FailureSignature
    #: Its builds, newest first.
    builds: list[BuildSummary]
    #: Failed gate builds in the window (for the share).
    gate_failed: int
    #: The best ``suggest`` draft for these builds (most of them covered), if any.
    draft: Draft | None = None
    #: ``draft`` as a ``queries/<bug>.yaml`` text.
    draft_yaml: str = ""
    #: Daily trend: builds of the cluster per UTC day of the window.
    days: list[Bucket] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.signature.key

    @property
    def changes(self) -> int:
        return len({b.change or b.uuid for b in self.builds})

    @property
    def gate_share(self) -> float:
        """Percentage of the window's failed gate builds in this cluster."""
        return 100.0 * len(self.builds) / self.gate_failed if self.gate_failed else 0.0

    def jobs(self) -> list[tuple[str, int]]:
        return Counter(job_name(b) for b in self.builds).most_common()

    def projects(self) -> list[tuple[str, int]]:
        return Counter(b.project or "(unknown project)" for b in self.builds).most_common()

    def examples(self, limit: int = EXAMPLES) -> list[BuildSummary]:
        return self.builds[:limit]

    def impact(self) -> tuple[int, int, float, str]:
        return (-len(self.builds), -self.changes, -self.gate_share, self.key)

    def as_json(self) -> dict[str, Any]:
        return {
            "signature": self.key,
            "lines": list(self.signature.lines),
            "tests": list(self.signature.tests),
            "line": self.signature.headline,
            "builds": len(self.builds),
            "changes": self.changes,
            "gate_share": self.gate_share,
            "jobs": dict(self.jobs()),
            "projects": dict(self.projects()),
            "examples": [b.uuid for b in self.examples()],
            "draft": None if self.draft is None else {"query": self.draft.query, "precision": self.draft.precision_percent},
        }


def _best_draft(uuids: set[str], drafts: Sequence[Draft]) -> Draft | None:
    """The draft whose cluster covers most of ``uuids``, best-ranked first on ties.

    Both ways a majority: more than half of ``uuids`` in the draft's cluster,
    and more than half of the draft's cluster in ``uuids`` (a draft mostly
    about other builds does not stand for this cluster).
    """
    best: tuple[int, int] | None = None
    chosen = None
    for rank, d in enumerate(drafts):
        covered = len(uuids & d.cluster.builds)
        if covered * 2 <= len(uuids) or covered * 2 <= len(d.cluster.builds):
            continue
        score = (-covered, rank)
        if best is None or score < best:
            best, chosen = score, d
    return chosen


def build_clusters(
    unc: UncategorizedReport,
    lines: Sequence[ErrorLine],
    triage: Mapping[str, BuildTriage],
    window: ReportWindow,
    suggestions: Any = None,
) -> list[FailureCluster]:
    """The uncategorized builds grouped by failure signature, biggest impact first (pure).

    Builds without any error line or failed test have no signature and are
    left out of the clusters (the group pages still list them).
    """
    builds = unc.uncategorized
    tests = {
        u: set(t.failed_tests or ()) for u, t in triage.items() if t.tests_source == "test results"
    }
    sigs = signatures_of_lines(lines, [b.uuid for b in builds], tests)
    members: dict[FailureSignature, list[BuildSummary]] = {}
    for b in builds:
        sig = sigs.get(b.uuid)
        if sig is None or sig.empty:
            continue
        members.setdefault(sig, []).append(b)
    drafts = list(getattr(suggestions, "drafts", None) or [])
    by_uuid = {b.uuid: b for b in unc.failed}
    out: list[FailureCluster] = []
    for sig, group in members.items():
        cluster = FailureCluster(signature=sig, builds=newest_first(group), gate_failed=unc.overall.failed)
        cluster.days = day_buckets(group, window.start, window.now)
        cluster.draft = _best_draft({b.uuid for b in group}, drafts)
        if cluster.draft is not None:
            cluster.draft_yaml = draft_yaml(cluster.draft, window, by_uuid)
        out.append(cluster)
    return sorted(out, key=FailureCluster.impact)


@dataclass(frozen=True)
class DayRate:
    """One day of one group's classification rate."""

    day: datetime
    failed: int
    explained: int
    recurring: int

    @property
    def explained_rate(self) -> float | None:
        return 100.0 * self.explained / self.failed if self.failed else None

    @property
    def covered_rate(self) -> float | None:
        """Explained or recurring, in percent."""
        return 100.0 * (self.explained + self.recurring) / self.failed if self.failed else None


def recurring_uuids(clusters: Sequence[FailureCluster], min_changes: int) -> set[str]:
    """Uncategorized builds whose signature uncategorized builds of >= ``min_changes`` other changes share."""
    out: set[str] = set()
    if min_changes <= 0:
        return out
    for c in clusters:
        changes = Counter(b.change or b.uuid for b in c.builds)
        for b in c.builds:
            own = b.change or b.uuid
            if len(changes) - (1 if own in changes else 0) >= min_changes:
                out.add(b.uuid)
    return out


def daily_rates(
    unc: UncategorizedReport, clusters: Sequence[FailureCluster], window: ReportWindow, min_changes: int
) -> dict[str, list[DayRate]]:
    """group -> one :class:`DayRate` per UTC day of the window (pure)."""
    recurring = recurring_uuids(clusters, min_changes)
    uncategorized = {b.uuid for b in unc.uncategorized}
    group_of: dict[str, str] = {}
    for name, group in unc.groups.items():
        for b in group.failed:
            group_of[b.uuid] = name
    starts = bucket_starts(window.start, window.now, DAY)
    out: dict[str, list[DayRate]] = {}
    for name in unc.groups:
        counts = {t: [0, 0, 0] for t in starts}
        for b in unc.failed:
            if group_of.get(b.uuid) != name or b.last_seen is None or not window.start <= b.last_seen < window.now:
                continue
            c = counts[floor_time(b.last_seen, DAY)]
            c[0] += 1
            if b.uuid not in uncategorized:
                c[1] += 1
            elif b.uuid in recurring:
                c[2] += 1
        out[name] = [DayRate(t, *counts[t]) for t in starts]
    return out
