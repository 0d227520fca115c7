"""Reporting one outcome: the Gerrit comment (exactly once), the IRC notices (journaled), the actions file.

A comment is claimed in the bot's state before it is posted, with a
*sending* mark cleared when Gerrit acknowledges; an unacknowledged one is
looked up on Gerrit (:meth:`~elastic_recheck.ports.review.Reviewer.posted`)
before it is posted again. IRC notices are journaled with their claim and
sent after a restart if the process died first (docs/reliability.md).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import IO, Any

from elastic_recheck.adapters.sqlite.bot_state import BotState, Sending
from elastic_recheck.bot.outcome import Notifier, ReportOutcome
from elastic_recheck.bot.settings import IRC_FAULT_STAGE, BotSettings
from elastic_recheck.core.errors import ElasticRecheckError, GerritError
from elastic_recheck.core.events import FailureReport
from elastic_recheck.ports.review import Reviewer

LOG = logging.getLogger(__name__)

#: IRC messages journaled by a previous run and older than this are not sent.
IRC_RESUME_MAX_AGE = 6 * 3600.0


class Delivery:
    """Sends one outcome through the reviewer, the notifier and the actions file (each optional)."""

    def __init__(
        self,
        state: BotState,
        settings: BotSettings,
        reviewer: Reviewer | None,
        notifier: Notifier | None,
        actions_out: IO[str] | None,
        clock: Callable[[], float],
        fault: Callable[[str], None],
    ) -> None:
        self.state = state
        self.settings = settings
        self.reviewer = reviewer
        self.notifier = notifier
        self.actions_out = actions_out
        self.clock = clock
        self._fault = fault
        self._out_lock = threading.Lock()

    def deliver(self, key: str, outcome: ReportOutcome, log: logging.LoggerAdapter) -> None:  # type: ignore[type-arg]
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
