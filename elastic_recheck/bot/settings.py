"""The bot's settings (``[recheckwatch]``, built by ``cli/bot.py``) and its test-only fault injection."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

LOG = logging.getLogger(__name__)

#: Test-only fault injection (``tests/reliability``, docs/reliability.md): when
#: this environment variable names one of :data:`FAULT_STAGES`, the process
#: exits at once with status 137 (as if killed by SIGKILL) the first time it
#: reaches that stage. Unset, it does nothing.
FAULT_ENV = "ELASTIC_RECHECK_FAULT"
FAULT_STAGES = ("after-accept", "waiting", "after-classify", "after-claim", "after-comment")
#: With IRC on: right after the notices were journaled and queued (not yet sent).
IRC_FAULT_STAGE = "after-irc-queued"


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
    #: Seconds of report time a bug's 24 h failure count is reused for later
    #: reports (0: counted for every report; see ``OutcomeBuilder``).
    count_cache_s: float = 300.0
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


class Faults:
    """Dies like ``kill -9`` at the stage :data:`FAULT_ENV` names (tests only; read once)."""

    def __init__(self) -> None:
        self.stage = os.environ.get(FAULT_ENV) or None

    def __call__(self, stage: str) -> None:
        if self.stage == stage:
            LOG.critical("%s=%s: exiting abruptly (fault injection)", FAULT_ENV, stage)
            os._exit(137)
