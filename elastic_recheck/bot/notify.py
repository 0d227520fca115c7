"""Bridge from the bot's outcomes to IRC routing and the IRC notifier.

Routing and message text are pure (:mod:`elastic_recheck.core.channels`); the
notifier (:mod:`elastic_recheck.adapters.irc.client`) only sends. ``send`` may be None (dry
run, ``--no-irc``): the routed messages are still returned so the actions
file shows what would have been posted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from elastic_recheck.core.channels import BugRef, ChannelConfig, IrcEvent, SignatureRef, route
from elastic_recheck.ports.bugs import BugTracker
from elastic_recheck.ports.chat import Sender

if TYPE_CHECKING:
    from elastic_recheck.bot.outcome import ReportOutcome

LOG = logging.getLogger(__name__)


class IrcReporter:
    def __init__(
        self,
        channels: ChannelConfig,
        send: Sender | None,
        bugs: BugTracker | None = None,
        echo: Callable[[str, str], None] | None = None,
    ) -> None:
        self.channels = channels
        self.send = send
        self.bugs = bugs
        #: ``echo(channel, message)`` shows what a dry run would send (with ``send`` None).
        self.echo = echo

    def _projects(self, bug: str, fp_projects: tuple[str, ...]) -> tuple[str, ...]:
        projects = list(fp_projects)
        if self.bugs is not None:
            try:
                projects.extend(self.bugs.get(bug).projects)
            except Exception as exc:  # tracker data is optional
                LOG.debug("no tracker data for %s: %s", bug, exc)
        return tuple(dict.fromkeys(projects))

    def event_for(self, outcome: ReportOutcome) -> IrcEvent:
        report = outcome.report
        jobs: dict[str, list[BugRef]] = {}
        if outcome.kind == "timeout":
            jobs = {name: [] for name in outcome.timeout_jobs}
        else:
            for job, bugs in outcome.jobs.items():
                refs = []
                for bug in bugs:
                    fp = outcome.fingerprints.get(bug)
                    if fp is None or fp.suppress_notification:
                        continue
                    title = next((e.title for e in outcome.evidence.get(job, []) if e.bug == bug), None)
                    refs.append(BugRef(bug=bug, url=fp.url, title=title, projects=self._projects(bug, fp.projects)))
                if refs or not bugs:
                    jobs[job] = refs
        signatures = {
            job: SignatureRef(
                key=res.signature.key,
                line=res.signature.headline,
                seen=res.recurring.seen,
                hours=res.recurring.hours,
            )
            for job, res in outcome.signatures.items()
            if not res.signature.empty
        }
        return IrcEvent(
            kind=outcome.kind,  # type: ignore[arg-type]
            project=report.project,
            change_url=report.url,
            pipeline=report.pipeline or "",
            jobs=jobs,
            signatures=signatures,
        )

    def route(self, outcome: ReportOutcome) -> list[dict[str, str]]:
        """The ``{"channel", "message"}``s this outcome goes to (nothing is sent)."""
        event = self.event_for(outcome)
        if not event.jobs:
            return []  # every matched bug is suppress-notification
        return [{"channel": channel, "message": message} for channel, message in route(self.channels, event)]

    @property
    def sending(self) -> bool:
        """False in dry runs and with ``--no-irc``: messages are only routed."""
        return self.send is not None

    def deliver(self, messages: list[dict[str, str]], done: Sequence[Callable[[], None] | None] = ()) -> None:
        """Queue routed messages for sending; ``done[i]`` is called once message ``i`` was written.

        Without ``send`` (a dry run) they are only shown through ``echo``, when set.
        """
        if self.send is None:
            echo = self.echo
            if echo is not None:
                for m in messages:
                    echo(m["channel"], m["message"])
            return
        for i, m in enumerate(messages):
            self.send(m["channel"], m["message"], done[i] if i < len(done) else None)

    def notify(self, outcome: ReportOutcome) -> list[dict[str, str]]:
        """Route and send (without a journal)."""
        messages = self.route(outcome)
        self.deliver(messages)
        return messages


if TYPE_CHECKING:
    from elastic_recheck.bot.outcome import Notifier

    _port: type[Notifier] = IrcReporter  # mypy checks the reporter against the bot's Protocol
