"""The bot: Gerrit events -> wait for logs -> classify -> comment and notify.

Wiring only; every piece it drives is a port, a pure function or one of the
bot's own parts:

* the event source (live ``stream-events`` or a replay file) only calls
  :meth:`Bot.submit`, which parses the event, persists it in :class:`BotState`
  and returns at once: the stream is never blocked;
* the :class:`~elastic_recheck.bot.scheduler.Scheduler` keeps a heap of "next
  readiness check" times and hands due events to a worker pool; waiting for
  logs is a rescheduled check, never a sleep inside a worker;
* a worker checks readiness (:mod:`elastic_recheck.bot.readiness`: the build's
  console log and any required files are indexed), classifies every failed
  voting job with one multi-search per build, builds the outcome
  (:mod:`elastic_recheck.bot.outcome`) and reports it
  (:mod:`elastic_recheck.bot.delivery`: Gerrit review, IRC, actions file).
  Reports are idempotent per (change, patchset, build uuids): a comment whose
  post was not acknowledged (timeout, crash) is looked up on Gerrit before it
  is posted again.

A backend outage is retried with backoff until the event's deadline; at the
deadline a timeout notice goes out instead of classifying half-indexed logs.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from elastic_recheck.adapters.sqlite.bot_state import BotState
from elastic_recheck.adapters.sqlite.rechecks import RecheckLog
from elastic_recheck.bot.delivery import IRC_RESUME_MAX_AGE, Delivery
from elastic_recheck.bot.outcome import Notifier, OutcomeBuilder, ReportOutcome
from elastic_recheck.bot.readiness import Readiness
from elastic_recheck.bot.scheduler import Scheduler
from elastic_recheck.bot.settings import BotSettings, Faults
from elastic_recheck.core.classify import Classifier
from elastic_recheck.core.errors import BackendError, ElasticRecheckError, EventParseError, StoreError
from elastic_recheck.core.events import FailedJob, FailureReport, parse_event
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.rechecks import parse_recheck
from elastic_recheck.core.search_types import QuerySpec, SearchResult
from elastic_recheck.core.signatures import SignatureService
from elastic_recheck.ports.bugs import BugTracker
from elastic_recheck.ports.review import Reviewer
from elastic_recheck.ports.search import SearchBackend, TestResultSource

LOG = logging.getLogger(__name__)

MAX_POLL_INTERVAL = 60.0


class EventLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes every line with ``[e: <change>,<patchset>]``."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[e: {self.extra['event'] if self.extra else '?'}] {msg}", kwargs


def event_key(report: FailureReport, jobs: Sequence[FailedJob]) -> str:
    """Idempotency key: change, patchset and the set of failed build ids."""
    ids = sorted(j.build_uuid or j.build_short_uuid or j.name for j in jobs)
    return f"{report.change},{report.patchset}:{'/'.join(ids)}"


class Bot:
    """Owns the pending queue and drives one attempt at a time per event."""

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
        self._fault = Faults()
        self.readiness = Readiness(backend, settings, log_fetcher)
        self.outcomes = OutcomeBuilder(backend, settings, bugs, clock)
        self.delivery = Delivery(state, settings, reviewer, notifier, actions_out, clock, self._fault)
        self.scheduler = Scheduler(settings, self._attempt_guarded, self._over_budget, clock)
        self.stats = {"events": 0, "reports": 0, "duplicates": 0, "malformed": 0, "processed": 0, "timeouts": 0}

    # -- intake (called from the event source thread; never blocks on I/O but SQLite)
    def start(self) -> None:
        try:
            self.resume_irc()
        except Exception as exc:  # IRC must never keep the bot from starting
            LOG.warning("could not re-queue unsent IRC messages: %s", exc)
        for pending in self.state.pending():
            self.scheduler.enqueue(pending.key, pending.next_check)
        self.scheduler.start()

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
        self.scheduler.enqueue(key, self.clock())
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

    # -- one attempt at one event (in a worker of the scheduler)
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

    def _over_budget(self, key: str) -> None:
        self.stats["over_budget"] = self.stats.get("over_budget", 0) + 1
        try:
            self.state.finish(key, "failed", {"error": f"attempt took longer than {self.settings.attempt_budget_s:g} s"})
        except ElasticRecheckError as exc:
            LOG.error("%s: cannot record the failure (%s)", key, exc)

    def _retry(self, key: str, error: str) -> None:
        pend = self.state.get(key)
        attempts = pend.attempts if pend else 0
        interval = min(self.settings.first_poll_s * (2**attempts), MAX_POLL_INTERVAL)
        nxt = self.clock() + interval
        self.scheduler.enqueue(key, nxt)
        try:
            self.state.reschedule(key, nxt, error)
        except ElasticRecheckError as exc:  # e.g. disk full: keep retrying from memory
            LOG.error("%s: cannot record the retry (%s); retrying anyway", key, exc)

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
            refs, missing = self.readiness.check(report, jobs)
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
        outcome = self.outcomes.build(report, jobs, classified)
        if self.scheduler.abandoned(key):  # given up by its worker (over budget, or the bot is stopping)
            raise _Abandoned(key)
        self._fault("after-classify")
        try:
            self.delivery.deliver(key, outcome, log)
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

    def _timeout(self, key: str, report: FailureReport, jobs: Sequence[FailedJob], why: str) -> None:
        LOG.warning("%s: giving up: %s", key, why)
        # Every failed job is listed (no bug known for it) and the line says why.
        outcome = ReportOutcome(
            report, "timeout", {j.name: [] for j in jobs}, {}, None, {}, error=why, timeout_jobs=[j.name for j in jobs]
        )
        self.delivery.deliver(key, outcome, EventLogger(LOG, {"event": key}))
        self.state.finish(key, "timeout", {"error": why})
        self.stats["timeouts"] += 1

    def resume_irc(self, max_age_s: float = IRC_RESUME_MAX_AGE) -> int:
        """Queue the journaled IRC messages a previous process did not send; returns how many."""
        return self.delivery.resume_irc(max_age_s)

    # -- lifecycle
    def idle(self) -> bool:
        return self.scheduler.idle()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every accepted event is processed (replay mode)."""
        return self.scheduler.wait_idle(timeout)

    def stop(self) -> None:
        self.scheduler.stop()


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
