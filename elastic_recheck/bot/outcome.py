"""What the bot concludes about one failure report: the bugs per job, their evidence, the comment.

:class:`OutcomeBuilder` turns the classifications of a report's failed jobs
into a :class:`ReportOutcome`; :class:`Notifier` is what routes an outcome to
IRC (``bot/notify.py``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from elastic_recheck.bot.settings import BotSettings
from elastic_recheck.core.classify import Classification
from elastic_recheck.core.comments import BugEvidence, JobOutcome, RecurringNote, format_comment
from elastic_recheck.core.errors import ElasticRecheckError
from elastic_recheck.core.events import FailedJob, FailureReport
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.pages import bug_page, page_url
from elastic_recheck.core.search_types import Filters, QuerySpec, TimeWindow
from elastic_recheck.core.signatures import SignatureResult
from elastic_recheck.ports.bugs import BugTracker
from elastic_recheck.ports.search import SearchBackend

LOG = logging.getLogger(__name__)


@dataclass
class ReportOutcome:
    """What the bot concluded about one failure report."""

    report: FailureReport
    kind: str  # "positive" | "negative" | "timeout"
    jobs: dict[str, list[str]]
    evidence: dict[str, list[BugEvidence]]
    comment: str | None
    fingerprints: dict[str, Fingerprint]
    irc: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    #: Jobs whose logs never arrived (timeout outcomes only).
    timeout_jobs: list[str] = field(default_factory=list)
    #: Unrecognized jobs -> their failure signature and its recurrence.
    signatures: dict[str, SignatureResult] = field(default_factory=dict)
    #: Unrecognized jobs that got the "probably not caused by this change" note -> its evidence.
    recurring: dict[str, dict[str, Any]] = field(default_factory=dict)

    def _split(self, suppressed: bool) -> dict[str, list[str]]:
        def quiet(bug: str) -> bool:
            fp = self.fingerprints.get(bug)
            return fp is not None and bool(fp.suppress_notification)

        return {job: [b for b in bugs if quiet(b) is suppressed] for job, bugs in self.jobs.items()}

    @property
    def reported_jobs(self) -> dict[str, list[str]]:
        """job -> the bugs the bot reports (``suppress-notification`` ones left out, as the original did)."""
        return self._split(False)

    @property
    def suppressed_jobs(self) -> dict[str, list[str]]:
        """job -> its ``suppress-notification`` matches (jobs without any left out)."""
        return {job: bugs for job, bugs in self._split(True).items() if bugs}


class Notifier(Protocol):
    """Routes outcomes to IRC and queues the messages (``notify.IrcReporter``)."""

    @property
    def sending(self) -> bool:
        """False when messages are only routed (dry run, ``--no-irc``)."""
        ...

    def route(self, outcome: ReportOutcome) -> list[dict[str, str]]:
        """The ``[{channel, message}]`` one outcome goes to; sends nothing."""
        ...

    def deliver(self, messages: list[dict[str, str]], done: Sequence[Callable[[], None] | None] = ()) -> None:
        """Queue routed messages; ``done[i]`` is called once message ``i`` was written."""
        ...


class OutcomeBuilder:
    """Builds the :class:`ReportOutcome` of a report from its jobs' classifications.

    Per matched bug: its tracker title and status (``bugs``), and how many
    failed builds it hit in the 24 h before the report (``backend``).

    Those counts are shared between reports: a count made for a report at
    time ``t`` serves every report within ``settings.count_cache_s`` of ``t``
    (report times, so replays behave as live runs). A gate reset brings
    dozens of reports in minutes that match the same bugs; each bug is
    counted once, by the first worker that needs it, while the others wait
    for that count instead of repeating it.
    """

    def __init__(
        self, backend: SearchBackend, settings: BotSettings, bugs: BugTracker | None, clock: Callable[[], float]
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.bugs = bugs
        self.clock = clock
        self._counts = _RecentCounts()

    def build(
        self, report: FailureReport, jobs: Sequence[FailedJob], classified: Mapping[str, Classification]
    ) -> ReportOutcome:
        job_bugs: dict[str, list[str]] = {}
        evidence: dict[str, list[BugEvidence]] = {}
        outcomes: list[JobOutcome] = []
        used: dict[str, Fingerprint] = {}
        recent: dict[str, int | None] = {}
        signatures: dict[str, SignatureResult] = {}
        recurring: dict[str, dict[str, Any]] = {}
        for job in jobs:
            res = classified.get(job.name)
            matches = list(res.matches) if res else []
            job_bugs[job.name] = [m.bug for m in matches]
            evs: list[BugEvidence] = []
            for m in matches:
                used[m.bug] = m.fingerprint
                if m.suppressed:
                    continue
                if m.bug not in recent:
                    recent[m.bug] = self._fails_24h(m.fingerprint, report.event_time)
                title, status = self._bug_meta(m.bug, m.fingerprint)
                evs.append(
                    BugEvidence(
                        bug=m.bug,
                        url=m.fingerprint.url,
                        title=title,
                        status=status,
                        line=m.line,
                        file=m.file,
                        log_url=m.log_url,
                        fails_24h=recent[m.bug],
                        page=page_url(self.settings.site_url, bug_page(m.bug)) if self.settings.site_url else None,
                    )
                )
            evidence[job.name] = evs
            note = None
            if res is not None and not matches and res.signature is not None:
                signatures[job.name] = res.signature
                note = self._recurring_note(res.signature)
                if note is not None:
                    recurring[job.name] = {
                        **res.signature.recurring.as_json(),
                        "signature": res.signature.signature.key,
                        "line": note.line,
                        "links": list(note.links),
                    }
            outcomes.append(JobOutcome(job.name, evs, job.url, recurring=note))
        all_explained = all(job_bugs[j.name] for j in jobs)
        # Departure from the original (docs/compatibility.md): a partly
        # classified failure is "negative" (its unrecognized jobs need a human),
        # where the original sent anything with one known bug to the positive
        # channels. And a job matched only by suppress-notification bugs counts
        # as explained and stays silent, where the original, skipping those
        # fingerprints, announced it as an unrecognized error.
        kind = "positive" if all_explained else "negative"
        notify_silent = all_explained and all(not evidence[j.name] for j in jobs)
        # As the original: no Gerrit comment when no bug matched (one on every
        # failed run is noise); [recheckwatch] comment_unmatched opts in to the
        # no_bugs_found comment (docs/compatibility.md). A recurring-signature
        # note ("probably not caused by this change") is itself worth a comment.
        reportable = any(evidence[j.name] for j in jobs) or bool(recurring) or self.settings.comment_unmatched
        comment = None
        if reportable and not notify_silent:
            comment = format_comment(outcomes, self.settings.messages, self.settings.site_url or None)
        return ReportOutcome(report, kind, job_bugs, evidence, comment, used, signatures=signatures, recurring=recurring)

    def _fails_24h(self, fp: Fingerprint, at: datetime | None) -> int | None:
        """Distinct failed builds the bug hit in the 24 h before ``at`` (the report's time).

        Using the report's time keeps replays and backfills meaningful.
        """
        if not self.settings.count_recent:
            return None
        now = at or datetime.fromtimestamp(self.clock(), tz=UTC)
        spec = QuerySpec(
            queries=(fp.query,),
            filters=Filters(build_status="FAILURE"),
            window=TimeWindow(start=now - timedelta(hours=24), end=now),
        )

        def count() -> int | None:
            try:
                return self.backend.count_builds(spec)
            except ElasticRecheckError as exc:
                LOG.warning("could not count recent hits of %s: %s", fp.bug, exc)
                return None

        return self._counts.get((fp.bug, fp.query), now.timestamp(), self.settings.count_cache_s, count)

    def _bug_meta(self, bug: str, fp: Fingerprint) -> tuple[str | None, str | None]:
        title, status = fp.bug_title, None
        if self.bugs is not None:
            try:
                info = self.bugs.get(bug)
                title = info.title or title
                status = info.status
            except Exception as exc:  # the tracker is optional
                LOG.debug("no bug data for %s: %s", bug, exc)
        return title, status

    def _recurring_note(self, result: SignatureResult) -> RecurringNote | None:
        """The comment's note for a recurring unrecognized failure (None: the evidence is thin)."""
        rec = result.recurring
        if self.settings.recurring_changes <= 0 or not rec.claim(self.settings.recurring_changes):
            return None
        links = [p.log_url for p in rec.examples if p.log_url][:2]
        return RecurringNote(
            builds=rec.builds,
            changes=rec.changes,
            line=result.signature.headline,
            links=links,
            flaky_changes=rec.flaky_changes or 0,
            hours=rec.hours,
        )


class _RecentCounts:
    """Counts made at a report time, reused by reports within ``ttl`` seconds of it (thread-safe).

    A key being counted is counted once: other threads asking for it wait
    for that count. A failed count (None) is not kept. Entries older than
    their ``ttl`` are dropped as new ones come, so the cache holds at most
    the bugs matched within ``ttl`` of report time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: key -> (report time, count)
        self._done: dict[Any, tuple[float, int]] = {}
        #: key -> set once the thread counting it is done
        self._pending: dict[Any, threading.Event] = {}

    def get(self, key: Any, at: float, ttl: float, count: Callable[[], int | None]) -> int | None:
        if ttl <= 0:
            return count()
        while True:
            with self._lock:
                hit = self._done.get(key)
                if hit is not None and abs(at - hit[0]) <= ttl:
                    return hit[1]
                pending = self._pending.get(key)
                if pending is None:
                    mine = self._pending[key] = threading.Event()
                    break
            pending.wait()
        value: int | None = None
        try:
            value = count()
        finally:
            with self._lock:
                if value is not None:
                    self._done[key] = (at, value)
                    if len(self._done) > 64:
                        self._done = {k: v for k, v in self._done.items() if abs(at - v[0]) <= ttl}
                del self._pending[key]
                mine.set()
        return value
