"""The bot: Gerrit events -> wait for logs -> classify -> comment and notify.

Wiring only; every piece it drives is a port or a pure function:

* the event source (live ``stream-events`` or a replay file) only calls
  :meth:`Bot.submit`, which parses the event, persists it in :class:`BotState`
  and returns at once: the stream is never blocked;
* a scheduler thread keeps a heap of "next readiness check" times and hands due
  events to a worker pool; waiting for logs is a rescheduled check, never a
  sleep inside a worker;
* a worker checks readiness (the build's console log and any required files
  are indexed), classifies every failed voting job with one multi-search per
  build, and reports through :class:`Reporter` objects (Gerrit review, IRC,
  actions file). Reports are idempotent per (change, patchset, build uuids):
  a comment whose post was not acknowledged (timeout, crash) is looked up on
  Gerrit before it is posted again (see :meth:`Bot._comment`).

A backend outage is retried with backoff until the event's deadline; at the
deadline a timeout notice goes out instead of classifying half-indexed logs.
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Protocol

from elastic_recheck.adapters.sqlite.bot_state import BotState, Sending
from elastic_recheck.adapters.sqlite.rechecks import RecheckLog
from elastic_recheck.core.classify import BuildRef, Classification, Classifier
from elastic_recheck.core.comments import BugEvidence, JobOutcome, RecurringNote, format_comment
from elastic_recheck.core.errors import ElasticRecheckError, EventParseError, GerritError, StoreError
from elastic_recheck.core.events import FailedJob, FailureReport, parse_event
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.pages import bug_page, page_url
from elastic_recheck.core.rechecks import parse_recheck
from elastic_recheck.core.signatures import SignatureResult, SignatureService
from elastic_recheck.ports.bugs import BugTracker
from elastic_recheck.ports.review import Reviewer
from elastic_recheck.ports.search import (
    BackendError,
    Filters,
    QuerySpec,
    SearchBackend,
    SearchResult,
    TestResultSource,
    TimeWindow,
)

LOG = logging.getLogger(__name__)

#: Files whose presence means a build's console log is indexed.
CONSOLE_FILES = ("job-output.txt", "console.html", "job-output.json")
MAX_POLL_INTERVAL = 60.0
#: IRC messages journaled by a previous run and older than this are not sent.
IRC_RESUME_MAX_AGE = 6 * 3600.0

#: Test-only fault injection (``tests/reliability``, docs/reliability.md): when
#: this environment variable names one of :data:`FAULT_STAGES`, the process
#: exits at once with status 137 (as if killed by SIGKILL) the first time it
#: reaches that stage. Unset, it does nothing.
FAULT_ENV = "ELASTIC_RECHECK_FAULT"
FAULT_STAGES = ("after-accept", "waiting", "after-classify", "after-claim", "after-comment")
#: With IRC on: right after the notices were journaled and queued (not yet sent).
IRC_FAULT_STAGE = "after-irc-queued"


class EventLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes every line with ``[e: <change>,<patchset>]``."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[e: {self.extra['event'] if self.extra else '?'}] {msg}", kwargs


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


@dataclass
class BotSettings:
    ci_users: Sequence[str] = ("zuul", "jenkins")
    results: Sequence[str] = ("FAILURE",)
    #: As in the original: a regex searched in the whole report comment; a
    #: report that does not match is skipped, one that does has all its
    #: failed jobs classified (empty: every report).
    jobs_re: str = ""
    deadline_s: float = 1200.0
    first_poll_s: float = 10.0
    workers: int = 4
    required_files: Sequence[tuple[str, Sequence[str]]] = ()
    dry_run: bool = False
    comment: bool = True
    #: Comment (``no_bugs_found``) on reports where no bug matched. The
    #: original never did; off by default (docs/compatibility.md).
    comment_unmatched: bool = False
    #: An unrecognized job whose failure signature failed builds of at least
    #: this many other changes in the window gets a "probably not caused by
    #: this change" note, and the report a comment even without
    #: ``comment_unmatched`` (0: never; docs/compatibility.md).
    recurring_changes: int = 2
    messages: Mapping[str, str] = field(default_factory=dict)
    #: Public URL of the status site (``[site] url``): linked in comments; empty: no links.
    site_url: str = ""
    count_recent: bool = True
    #: Seconds after an unacknowledged post (a timeout: Gerrit may still be
    #: storing it) before asking Gerrit whether it arrived.
    confirm_after_s: float = 60.0
    #: Gerrit *refusing* the comment (``gerrit review`` exits non-zero, REST
    #: 4xx: change deleted, permission denied) is retried with backoff until
    #: this many seconds after the event's readiness deadline, then the event
    #: is marked ``failed`` with the reason instead of being retried forever.
    #: Transport failures (timeouts, connection lost) are always retried.
    refused_grace_s: float = 3600.0
    #: Seconds one attempt at one event (readiness, classification, comment)
    #: may take. Past it the worker gives the attempt up (the event is marked
    #: ``failed``, the attempt may no longer comment) and serves the next
    #: event; a stopping bot does not wait for it either.
    attempt_budget_s: float = 300.0


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
        return {
            job: [b for b in bugs if bool(getattr(self.fingerprints.get(b), "suppress_notification", False)) is suppressed]
            for job, bugs in self.jobs.items()
        }

    @property
    def reported_jobs(self) -> dict[str, list[str]]:
        """job -> the bugs the bot reports (``suppress-notification`` ones left out, as the original did)."""
        return self._split(False)

    @property
    def suppressed_jobs(self) -> dict[str, list[str]]:
        """job -> its ``suppress-notification`` matches (jobs without any left out)."""
        return {job: bugs for job, bugs in self._split(True).items() if bugs}


def event_key(report: FailureReport, jobs: Sequence[FailedJob]) -> str:
    """Idempotency key: change, patchset and the set of failed build ids."""
    ids = sorted(j.build_uuid or j.build_short_uuid or j.name for j in jobs)
    return f"{report.change},{report.patchset}:{'/'.join(ids)}"


def parse_required_files(text: str) -> list[tuple[str, list[str]]]:
    """``job-regex=file1,file2`` lines -> [(regex, [files])]."""
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        regex, files = line.split("=", 1)
        out.append((regex.strip(), [f.strip() for f in files.split(",") if f.strip()]))
    return out


class Bot:
    """Owns the pending queue, the scheduler and the worker pool."""

    def __init__(
        self,
        backend: SearchBackend,
        fingerprints: Sequence[Fingerprint],
        state: BotState,
        settings: BotSettings,
        reviewer: Reviewer | None = None,
        notifier: Notifier | None = None,
        bugs: BugTracker | None = None,
        actions_out: IO[str] | None = None,
        log_fetcher: Callable[[FailureReport, FailedJob], None] | None = None,
        clock: Callable[[], float] = time.time,
        test_results: TestResultSource | None = None,
        rechecks: RecheckLog | None = None,
        signatures: SignatureService | None = None,
    ) -> None:
        self.backend = backend
        #: Where ``recheck`` comments seen in the stream are recorded (the impact report reads them).
        self.rechecks = rechecks
        self.fingerprints = list(fingerprints)
        self.by_bug = {fp.bug: fp for fp in self.fingerprints}
        self.state = state
        self.settings = settings
        self.reviewer = reviewer
        self.notifier = notifier
        self.bugs = bugs
        self.actions_out = actions_out
        self.log_fetcher = log_fetcher
        self.clock = clock
        self.classifier = Classifier(
            _CompleteAnswers(backend), self.fingerprints, test_results=test_results, signatures=signatures
        )
        self._jobs_re = re.compile(settings.jobs_re) if settings.jobs_re else None
        self._heap: list[tuple[float, str]] = []
        self._inflight: set[str] = set()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=max(1, settings.workers), thread_name_prefix="er-worker")
        self._scheduler = threading.Thread(target=self._schedule_loop, name="er-scheduler", daemon=True)
        self._out_lock = threading.Lock()
        self._abandoned: set[str] = set()
        self._fault_stage = os.environ.get(FAULT_ENV) or None
        self.stats = {"events": 0, "reports": 0, "duplicates": 0, "malformed": 0, "processed": 0, "timeouts": 0}

    # -- intake (called from the event source thread; never blocks on I/O but SQLite)
    def start(self) -> None:
        try:
            self.resume_irc()
        except Exception as exc:  # IRC must never keep the bot from starting
            LOG.warning("could not re-queue unsent IRC messages: %s", exc)
        for pending in self.state.pending():
            self._enqueue(pending.key, pending.next_check)
        self._scheduler.start()

    def classifiable_jobs(self, report: FailureReport) -> list[FailedJob]:
        return [j for j in report.jobs if j.result in self.settings.results and j.voting]

    def included(self, raw: Mapping[str, Any]) -> bool:
        """``jobs_re`` searched in the whole report comment, as the original did (empty: every report)."""
        return self._jobs_re is None or self._jobs_re.search(str(raw.get("comment") or "")) is not None

    def submit(self, raw: Mapping[str, Any]) -> str | None:
        """Accept one raw Gerrit event; returns its key when it was queued."""
        self.stats["events"] += 1
        try:
            report = parse_event(raw, ci_users=self.settings.ci_users)
        except EventParseError as exc:
            self.stats["malformed"] += 1
            LOG.warning("skipping malformed event: %s", exc)
            return None
        if report is None:
            self._record_recheck(raw)
            return None
        self.stats["reports"] += 1
        if not self.included(raw):
            LOG.info("%s,%s: report does not match [recheckwatch] jobs_re; skipped", report.change, report.patchset)
            return None
        jobs = self.classifiable_jobs(report)
        if not jobs:
            LOG.info("%s,%s: no failed voting job to classify", report.change, report.patchset)
            return None
        key = event_key(report, jobs)
        event = dict(raw)
        if not self.state.accept(key, event, self.settings.deadline_s, now=self.clock()):
            self.stats["duplicates"] += 1
            LOG.info("%s: duplicate event ignored", key)
            return None
        self._fault("after-accept")
        self._enqueue(key, self.clock())
        return key

    def _record_recheck(self, raw: Mapping[str, Any]) -> None:
        if self.rechecks is None:
            return
        found = parse_recheck(raw, self.settings.ci_users)
        if found is None:
            return
        try:
            self.rechecks.record([found])
            LOG.info("%s,%s: recheck by %s recorded", found.change, found.patchset, found.author or "?")
        except StoreError as exc:  # the impact numbers may miss one; the bot goes on
            LOG.warning("%s,%s: recheck not recorded: %s", found.change, found.patchset, exc)

    def _fault(self, stage: str) -> None:
        """Die like ``kill -9`` at ``stage`` when :data:`FAULT_ENV` asks for it (tests only)."""
        if self._fault_stage == stage:
            LOG.critical("%s=%s: exiting abruptly (fault injection)", FAULT_ENV, stage)
            os._exit(137)

    def _enqueue(self, key: str, when: float) -> None:
        with self._cond:
            heapq.heappush(self._heap, (when, key))
            self._cond.notify()

    # -- scheduling
    def _schedule_loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                if not self._heap:
                    self._cond.wait(0.5)
                    continue
                when, key = self._heap[0]
                delay = when - self.clock()
                if delay > 0:
                    self._cond.wait(min(delay, 0.5))
                    continue
                heapq.heappop(self._heap)
                if key in self._inflight:
                    continue
                self._inflight.add(key)
            self._pool.submit(self._attempt_safe, key)

    def _attempt_safe(self, key: str) -> None:
        """Run one attempt in its own thread, within :attr:`BotSettings.attempt_budget_s`.

        A Python thread cannot be killed: an attempt stuck past its budget (a
        hanging backend, an evaluation that never ends) is abandoned, marked so
        that it can no longer comment, and the event marked ``failed``. The
        worker goes on with the next event; a stopping bot abandons it at once
        (the event stays pending and resumes at the next start).
        """
        done = threading.Event()
        runner = threading.Thread(target=self._run_attempt, args=(key, done), name=f"er-attempt-{key[:40]}", daemon=True)
        runner.start()
        limit = time.monotonic() + self.settings.attempt_budget_s
        while not done.wait(0.2):
            if self._stop.is_set():
                self._abandoned.add(key)
                LOG.warning("%s: stopping while an attempt is still running; it resumes at the next start", key)
                break
            if time.monotonic() >= limit:
                self._abandoned.add(key)
                LOG.error(
                    "%s: the attempt took longer than %g s ([recheckwatch] attempt_budget); given up, the next events go on",
                    key,
                    self.settings.attempt_budget_s,
                )
                self.stats["over_budget"] = self.stats.get("over_budget", 0) + 1
                try:
                    self.state.finish(key, "failed", {"error": f"attempt took longer than {self.settings.attempt_budget_s:g} s"})
                except ElasticRecheckError as exc:
                    LOG.error("%s: cannot record the failure (%s)", key, exc)
                break
        with self._cond:
            self._inflight.discard(key)
            self._cond.notify_all()

    def _run_attempt(self, key: str, done: threading.Event) -> None:
        try:
            self._attempt_guarded(key)
        finally:
            done.set()

    def _attempt_guarded(self, key: str) -> None:
        try:
            self._attempt(key)
        except _Abandoned:
            LOG.info("%s: abandoned attempt ended without commenting", key)
        except Exception as exc:  # a bug in one event must not kill the worker
            pending = self.state.get(key)
            if pending is not None and self.clock() >= pending.deadline:
                LOG.exception("%s: unexpected error past the deadline; giving up", key)
                self.state.finish(key, "failed", {"error": repr(exc)})
                self.stats["failed"] = self.stats.get("failed", 0) + 1
            else:
                LOG.exception("%s: unexpected error; will retry", key)
                self._retry(key, f"internal error: {exc!r}")

    def _retry(self, key: str, error: str) -> None:
        pend = self.state.get(key)
        attempts = pend.attempts if pend else 0
        interval = min(self.settings.first_poll_s * (2**attempts), MAX_POLL_INTERVAL)
        nxt = self.clock() + interval
        with self._cond:
            heapq.heappush(self._heap, (nxt, key))
            self._cond.notify()
        try:
            self.state.reschedule(key, nxt, error)
        except ElasticRecheckError as exc:  # e.g. disk full: keep retrying from memory
            LOG.error("%s: cannot record the retry (%s); retrying anyway", key, exc)

    # -- one attempt at one event
    def _attempt(self, key: str) -> None:
        pending = self.state.get(key)
        if pending is None:
            return
        event = pending.event  # the persisted copy: nothing is held in memory per event
        report = parse_event(event, ci_users=self.settings.ci_users)
        assert report is not None
        log = EventLogger(LOG, {"event": f"{report.change},{report.patchset}"})
        jobs = self.classifiable_jobs(report)
        deadline = pending.deadline
        try:
            refs, missing = self._readiness(report, jobs)
        except ElasticRecheckError as exc:
            if self.clock() >= deadline:
                self._timeout(key, report, jobs, f"backend unavailable: {exc}")
                return
            log.warning("backend error while checking readiness: %s; retrying", exc)
            self._retry(key, str(exc))
            return
        if missing:
            if self.clock() >= deadline:
                self._timeout(key, report, jobs, "logs not indexed: " + "; ".join(missing))
                return
            log.info("waiting for logs: %s", "; ".join(missing))
            self._fault("waiting")
            self._retry(key, "waiting for logs")
            return
        try:
            classified = {job.name: self.classifier.classify(ref, lookup=False, failed=True) for job, ref in refs}
        except ElasticRecheckError as exc:
            if self.clock() >= deadline:
                self._timeout(key, report, jobs, f"backend unavailable: {exc}")
                return
            log.warning("backend error while classifying: %s; retrying", exc)
            self._retry(key, str(exc))
            return
        outcome = self._outcome(report, jobs, classified)
        if key in self._abandoned:  # given up by its worker (over budget, or the bot is stopping)
            raise _Abandoned(key)
        self._fault("after-classify")
        try:
            self._deliver(key, outcome, log)
        except ElasticRecheckError as exc:
            refused = not exc.retryable
            if refused and self.clock() >= deadline + self.settings.refused_grace_s:
                log.error("Gerrit keeps refusing the comment (%s); giving up on this event", exc)
                self.state.finish(key, "failed", {"jobs": outcome.jobs, "error": str(exc)})
                self.stats["failed"] = self.stats.get("failed", 0) + 1
                return
            log.warning("reporting failed: %s; will retry", exc)
            self._retry(key, str(exc))
            return
        self._fault("after-comment")
        self.state.finish(key, "done", {"jobs": outcome.jobs})
        self.stats["processed"] += 1

    def _readiness(self, report: FailureReport, jobs: Sequence[FailedJob]) -> tuple[list[tuple[FailedJob, BuildRef]], list[str]]:
        refs: list[tuple[FailedJob, BuildRef]] = []
        missing: list[str] = []
        for job in jobs:
            if self.log_fetcher is not None:
                try:
                    self.log_fetcher(report, job)
                except ElasticRecheckError as exc:
                    missing.append(f"{job.name}: fetching logs failed: {exc}")
                    continue
            uuid = job.build_uuid
            if not uuid:
                spec = QuerySpec(
                    filters=Filters(
                        build_short_uuid=job.build_short_uuid,
                        build_change=report.change,
                        build_patchset=report.patchset,
                    )
                )
                found = self.backend.builds(spec, limit=1)
                if not found and job.build_short_uuid:
                    # Documents without build_short_uuid: the job's builds on
                    # this patch set, matched on the uuid prefix.
                    spec = QuerySpec(
                        filters=Filters(build_change=report.change, build_patchset=report.patchset, build_name=job.name)
                    )
                    found = [b for b in self.backend.builds(spec) if b.uuid.startswith(job.build_short_uuid)]
                if not found:
                    missing.append(f"{job.name}: no documents yet")
                    continue
                uuid = found[0].uuid
            files = self.backend.indexed_files(uuid)
            if not any(_has_file(files, c) for c in CONSOLE_FILES):
                # Documents without file names (or a static store that nothing
                # fills any more): the build's documents are all we will get.
                lenient = not files or self.settings.deadline_s <= 0
                if not (lenient and self.backend.builds(QuerySpec(filters=Filters(build_uuid=uuid)), limit=1)):
                    missing.append(f"{job.name}: console log not indexed")
                    continue
            needed = [f for regex, fs in self.settings.required_files if re.search(regex, job.name) for f in fs]
            absent = [f for f in needed if not _has_file(files, f)]
            if absent:
                missing.append(f"{job.name}: missing {', '.join(absent)}")
                continue
            refs.append((job, BuildRef(uuid=uuid, change=report.change, patchset=report.patchset, job_name=job.name, voting=True)))
        return refs, missing

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
        try:
            return self.backend.count_builds(spec)
        except ElasticRecheckError as exc:
            LOG.warning("could not count recent hits of %s: %s", fp.bug, exc)
            return None

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

    def _outcome(
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

    def _timeout(self, key: str, report: FailureReport, jobs: Sequence[FailedJob], why: str) -> None:
        LOG.warning("%s: giving up: %s", key, why)
        # Every failed job is listed (no bug known for it) and the line says why.
        outcome = ReportOutcome(
            report, "timeout", {j.name: [] for j in jobs}, {}, None, {}, error=why, timeout_jobs=[j.name for j in jobs]
        )
        self._deliver(key, outcome, EventLogger(LOG, {"event": key}))
        self.state.finish(key, "timeout", {"error": why})
        self.stats["timeouts"] += 1

    def _deliver(self, key: str, outcome: ReportOutcome, log: logging.LoggerAdapter) -> None:  # type: ignore[type-arg]
        report = outcome.report
        if outcome.comment and self.settings.comment and self.reviewer is not None:
            self._comment(key, report, outcome.comment, log)
        if self.notifier is not None:
            try:
                self._notify_irc(key, outcome)
            except Exception as exc:  # IRC must never block Gerrit reporting
                log.warning("IRC notification failed: %s", exc)
        if self.actions_out is not None:
            line: dict[str, Any] = {
                "change": report.change,
                "patchset": report.patchset,
                "project": report.project,
                "pipeline": report.pipeline,
                "jobs": outcome.reported_jobs,
                "comment": outcome.comment,
                "irc": outcome.irc,
            }
            line["suppressed"] = outcome.suppressed_jobs
            if outcome.recurring:
                line["recurring"] = outcome.recurring
            if outcome.kind == "timeout":
                line["timeout"] = outcome.error
            with self._out_lock:
                self.actions_out.write(json.dumps(line) + "\n")
                self.actions_out.flush()

    def _notify_irc(self, key: str, outcome: ReportOutcome) -> None:
        """Route, claim and journal in one transaction, then queue for sending.

        The journal (``irc_outbox`` in the state file) keeps each message until
        the IRC thread wrote it, so notices queued when the process dies are
        sent after the restart (:meth:`resume_irc`).
        """
        assert self.notifier is not None
        routed = self.notifier.route(outcome)
        if not self.notifier.sending:
            if self.state.claim_report(key, "irc"):
                outcome.irc = routed
                self.notifier.deliver(routed)  # a dry run shows them
            return
        ids = self.state.claim_irc(key, [(m["channel"], m["message"]) for m in routed], now=self.clock())
        if ids is None:
            return  # already announced
        outcome.irc = routed
        self.notifier.deliver(routed, [self._irc_done(i) for i in ids])
        self._fault(IRC_FAULT_STAGE)

    def _irc_done(self, message_id: int) -> Callable[[], None]:
        return lambda: self.state.irc_sent(message_id)

    def resume_irc(self, max_age_s: float = IRC_RESUME_MAX_AGE) -> int:
        """Queue the journaled IRC messages a previous process did not send; returns how many.

        Messages older than ``max_age_s`` are dropped with a warning (news
        that old would only confuse a channel).
        """
        if self.notifier is None or not self.notifier.sending:
            return 0
        queued = 0
        for message_id, channel, message, queued_at in self.state.irc_pending():
            if self.clock() - queued_at > max_age_s:
                LOG.warning("dropping an IRC message for %s queued %.0f h ago: %s",
                            channel, (self.clock() - queued_at) / 3600, message)
                self.state.irc_sent(message_id)
                continue
            self.notifier.deliver([{"channel": channel, "message": message}], [self._irc_done(message_id)])
            queued += 1
        if queued:
            LOG.info("re-queued %d IRC message(s) left unsent by the previous run", queued)
        return queued

    def _comment(self, key: str, report: FailureReport, message: str, log: logging.LoggerAdapter) -> None:  # type: ignore[type-arg]
        """Post the review comment once.

        The claim and a *sending* mark are written before posting; the mark is
        cleared when Gerrit acknowledges. Gerrit answering with a refusal or
        an error (``GerritError.rejected``) releases the claim: nothing was
        posted. Any other failure (timeout,
        connection lost) is ambiguous, so is a mark left by a process that
        died: before posting again the bot asks Gerrit (``reviewer.posted``)
        whether the comment arrived, no sooner than ``confirm_after_s`` after
        its own attempt. A reviewer that cannot tell keeps it at most once.
        """
        assert self.reviewer is not None
        if not self.state.claim_report(key, "gerrit", sending=message, now=self.clock()):
            earlier = self.state.sending(key, "gerrit")
            if earlier is None:
                log.info("already commented; not posting again")
                return
            if not self._must_repost(key, report, earlier, log):
                return
            self.state.mark_sending(key, "gerrit", message, now=self.clock())
        self._fault("after-claim")
        try:
            self.reviewer.review(report.change, report.patchset, message)
        except ElasticRecheckError as exc:
            rejected = exc.rejected if isinstance(exc, GerritError) else not exc.retryable
            if rejected:
                self.state.release_report(key, "gerrit")  # Gerrit answered: nothing was stored
            raise
        self.state.confirm_report(key, "gerrit")
        log.info("commented on %s,%s", report.change, report.patchset)

    def _must_repost(self, key: str, report: FailureReport, earlier: Sending, log: logging.LoggerAdapter) -> bool:  # type: ignore[type-arg]
        """Settle an unacknowledged earlier post; True when it should be posted (again).

        Found on Gerrit: settled. Not found: posted again, but not sooner than
        ``confirm_after_s`` after our own attempt (Gerrit may still be storing
        it). Cannot be checked: our own failed attempt is retried (as without
        the mark; it may then appear twice), a dead process's is not (it may
        be missing).
        """
        assert self.reviewer is not None
        where = f"{report.change},{report.patchset}"
        found = self.reviewer.posted(report.change, report.patchset, earlier.message or "")
        if found:
            log.info("the unacknowledged comment on %s did reach Gerrit", where)
            self.state.confirm_report(key, "gerrit")
            return False
        if found is None:
            if earlier.mine:
                log.warning("the comment on %s was not acknowledged and cannot be checked; posting again", where)
                return True
            log.warning("a comment on %s left unacknowledged by a stopped process cannot be checked; "
                        "not posting again (it may be missing)", where)
            self.state.confirm_report(key, "gerrit")
            return False
        if earlier.mine:
            wait = earlier.since + self.settings.confirm_after_s - self.clock()
            if wait > 0:
                raise GerritError(f"the last comment attempt was not acknowledged and is not on Gerrit yet; "
                                  f"asking again, posting in {wait:.0f} s if still missing")
        log.warning("the unacknowledged comment on %s is not on Gerrit; posting it", where)
        return True

    # -- lifecycle
    def idle(self) -> bool:
        with self._cond:
            return not self._heap and not self._inflight

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every accepted event is processed (replay mode)."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._heap or self._inflight:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.2 if remaining is None else min(0.2, remaining))
        return True

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._scheduler.is_alive():
            self._scheduler.join(timeout=5)
        self._pool.shutdown(wait=True)


class _Abandoned(Exception):
    """An attempt whose worker gave it up: it must not comment any more."""


class _CompleteAnswers:
    """The backend, but a multi-search answered only partially is an error.

    A cluster whose shard holding the build's lines failed answers 200 with
    ``_shards.failed`` and no hit: classifying from that would tell the
    developer "no known bug". A partial result without a hit raises a
    retryable :class:`BackendError` instead, so the bot retries until the
    answer is complete (or the deadline gives a timeout notice).
    """

    def __init__(self, backend: SearchBackend) -> None:
        self._backend = backend

    def msearch(self, specs: Sequence[QuerySpec], size: int = 1) -> list[SearchResult]:
        results = self._backend.msearch(specs, size=size)
        blind = [r.label or "?" for r in results if r.partial and not r.hits and not r.error]
        if blind:
            raise BackendError(f"partial answer (failed shards) for {len(blind)} of {len(results)} fingerprints", retryable=True)
        return results

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def _has_file(files: set[str], name: str) -> bool:
    return any(f == name or f.endswith("/" + name) for f in files)
