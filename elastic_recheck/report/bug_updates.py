"""Comment on a Launchpad bug when its impact crosses a threshold (``[bugs] update``, off by default).

After ``render``, each bug whose fingerprint hit at least ``[bugs]
update_threshold`` failed builds in the window gets one comment: how often it
hit (failed builds in the window and in 24 h, rechecks, gate resets, CI
hours) and where to find the fingerprint (its page on ``[site] url`` and the
query). At most once per week per bug: the times of the comments are kept in
``<[bugs] cache_dir>/launchpad-updates.json``, written after each comment.

Writing to Launchpad needs an OAuth access token: ``[bugs]
launchpad_credentials`` names a launchpadlib credentials file (``[1]``
section with ``consumer_key``, ``consumer_secret``, ``access_token``,
``access_secret``), made once with ``Launchpad.login_with(...,
credentials_file=PATH)`` by the bot's Launchpad account. The comment is
launchpadlib's ``bug.newMessage(subject=..., content=...)`` (``POST
/bugs/N`` with ``ws.op=newMessage``, OAuth ``PLAINTEXT`` signature).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from elastic_recheck.core.errors import BugTrackerError
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.impact import BugImpact
from elastic_recheck.core.pages import bug_page, page_url
from elastic_recheck.core.timestamps import parse_iso

LOG = logging.getLogger(__name__)

LEDGER_NAME = "launchpad-updates.json"
#: Least time between two comments on one bug.
EVERY = timedelta(days=7)


def format_update(impact: BugImpact, fp: Fingerprint, days: float, site_url: str) -> tuple[str, str]:
    """``(subject, content)`` of the comment."""
    w, d = impact.window, impact.day
    where = page_url(site_url, bug_page(impact.bug)) if site_url else None
    lines = [
        f"elastic-recheck: the fingerprint of this bug matched {w.failed_builds} failed CI builds in the last "
        f"{days:g} days ({d.failed_builds} in the last 24 hours), on {w.changes} changes.",
        f"They caused {w.rechecks} rechecks and {w.gate_resets} gate resets, and burnt {w.hours:.1f} CI hours.",
    ]
    if impact.jobs:
        j = impact.jobs[0]
        lines.append(f"Most hit job: {j.job}, {j.failed} of its {j.runs} runs failed with this bug.")
    lines.append(f"Fingerprint: {where}" if where else "Fingerprint:")
    lines.append(f"Query: {fp.query}")
    if fp.path is not None:
        lines.append(f"(elastic-recheck queries/{fp.path.name})")
    return f"elastic-recheck: {w.failed_builds} failed builds in {days:g} days", "\n".join(lines)


@dataclass
class BugUpdateLedger:
    """bug -> when it was last commented on (a JSON file)."""

    path: Path
    posted: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> BugUpdateLedger:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as exc:
            LOG.warning("%s: unreadable (%s); starting afresh", path, exc)
            data = {}
        return cls(path, {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {})

    def due(self, bug: str, now: datetime) -> bool:
        last = self.posted.get(bug)
        at = parse_iso(last) if last is not None else None
        return at is None or now - at >= EVERY

    def record(self, bug: str, now: datetime) -> None:
        self.posted[bug] = now.isoformat()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.posted, sort_keys=True, indent=1), encoding="utf-8")
        tmp.replace(self.path)


class LaunchpadCommenter:
    """Posts comments with an OAuth token (launchpadlib)."""

    def __init__(self, api_url: str, credentials_file: str, timeout: float = 10.0) -> None:
        from elastic_recheck.adapters.launchpad.trackers import split_service_root

        self.service_root, self.version = split_service_root(api_url)
        self.credentials_file = credentials_file
        self.timeout = timeout
        self._lp: Any = None

    def _login(self) -> Any:
        if self._lp is None:
            from launchpadlib.credentials import Credentials  # type: ignore[import-untyped,unused-ignore]
            from launchpadlib.launchpad import Launchpad  # type: ignore[import-untyped,unused-ignore]

            try:
                credentials = Credentials.load_from_path(self.credentials_file)
            except Exception as exc:  # a missing or malformed file: one line
                raise BugTrackerError(f"[bugs] launchpad_credentials {self.credentials_file}: {exc}") from None
            self._lp = Launchpad(credentials, None, None, service_root=self.service_root, timeout=self.timeout,
                                 version=self.version)
        return self._lp

    def comment(self, bug: str, subject: str, content: str) -> None:
        try:
            self._login().bugs[int(bug)].newMessage(subject=subject, content=content)
        except BugTrackerError:
            raise
        except KeyError:
            raise BugTrackerError(f"launchpad: cannot comment on bug {bug}: no such bug") from None
        except Exception as exc:
            raise BugTrackerError(f"launchpad: cannot comment on bug {bug}: {type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''}") from None


def update_bugs(
    impacts: Mapping[str, BugImpact],
    fingerprints: Sequence[Fingerprint],
    commenter: Any,
    ledger: BugUpdateLedger,
    *,
    threshold: float,
    days: float,
    site_url: str,
    now: datetime,
) -> list[str]:
    """Comment on every bug over ``threshold`` failed builds not commented on within a week; returns those bugs.

    A failing comment is logged and skipped (tried again on the next run).
    """
    done = []
    for fp in fingerprints:
        impact = impacts.get(fp.bug)
        if impact is None or not fp.bug.isdigit() or impact.window.failed_builds < threshold or not ledger.due(fp.bug, now):
            continue
        subject, content = format_update(impact, fp, days, site_url)
        try:
            commenter.comment(fp.bug, subject, content)
        except BugTrackerError as exc:
            LOG.warning("%s", exc)
            continue
        ledger.record(fp.bug, now)
        done.append(fp.bug)
    return done
