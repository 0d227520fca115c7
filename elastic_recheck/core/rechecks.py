"""``recheck`` comments: who asked CI to run a patch set again, and when.

A recheck is a ``comment-added`` event by a person (not one of the CI
accounts) with a line, outside quoted text, that starts with ``recheck`` or
``reverify`` (case-insensitive; Gerrit's ``Patch Set N:`` header and the
``(N comments)`` line are skipped first, as for CI reports). This is looser
than OpenStack's Zuul trigger (which wants the word first in the comment):
a person who quotes the failure and then writes ``recheck`` asked for one.

The bot records every recheck it sees in its stream
(:class:`~elastic_recheck.adapters.sqlite.rechecks.RecheckLog`, a
``rechecks`` table in the bot's state file); ``elastic-recheck rechecks
--backfill`` adds those of ``gerrit query --comments`` (SSH) and
``--events FILE`` those of a file of stream events. The impact report
(:mod:`elastic_recheck.core.impact`) reads them back.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elastic_recheck.core.errors import EventParseError
from elastic_recheck.core.events import DEFAULT_CI_USERS, _strip_gerrit_prefix, parse_line
from elastic_recheck.core.timestamps import from_epoch_seconds

LOG = logging.getLogger(__name__)

_RECHECK_LINE = re.compile(r"^\s*(?:recheck|reverify)\b", re.IGNORECASE)
_PATCHSET_HEADER = re.compile(r"^\s*Patch Set (\d+)\s*:", re.IGNORECASE)

#: Where a recheck was read from.
EVENT = "event"
QUERY = "query"


@dataclass(frozen=True, order=True)
class Recheck:
    """One ``recheck`` comment on one patch set."""

    at: datetime
    change: str
    patchset: str
    author: str = ""
    source: str = EVENT


def is_recheck_comment(comment: str) -> bool:
    """Whether a comment asks for a recheck (a non-quoted line starting with recheck/reverify)."""
    body = _strip_gerrit_prefix(comment)
    return any(_RECHECK_LINE.match(line) for line in body.splitlines() if not line.lstrip().startswith(">"))


def _who(person: Any) -> str:
    if not isinstance(person, Mapping):
        return ""
    for key in ("username", "name", "email"):
        value = person.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _digits(value: Any) -> str | None:
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    return str(int(text)) if text.isdigit() and int(text) > 0 else None


def _is_ci(author: str, ci_users: Sequence[str]) -> bool:
    return author.casefold() in {u.casefold() for u in ci_users}


def parse_recheck(event: Mapping[str, Any], ci_users: Sequence[str] = DEFAULT_CI_USERS) -> Recheck | None:
    """The recheck a stream event asks for, or None (any other event, or one missing what a recheck needs)."""
    if not isinstance(event, Mapping) or event.get("type") != "comment-added":
        return None
    comment = event.get("comment")
    if not isinstance(comment, str) or not is_recheck_comment(comment):
        return None
    author = _who(event.get("author"))
    if _is_ci(author, ci_users):
        return None
    change = event.get("change")
    patchset = event.get("patchSet")
    number = _digits(change.get("number")) if isinstance(change, Mapping) else None
    ps = _digits(patchset.get("number")) if isinstance(patchset, Mapping) else None
    at = from_epoch_seconds(event.get("eventCreatedOn"))
    if number is None or ps is None or at is None:
        return None
    return Recheck(at=at, change=number, patchset=ps, author=author, source=EVENT)


def rechecks_from_query(records: Iterable[Mapping[str, Any]], ci_users: Sequence[str] = DEFAULT_CI_USERS) -> list[Recheck]:
    """The rechecks in ``gerrit query --comments --format=JSON`` change records.

    A comment's patch set is read from its ``Patch Set N:`` header (Gerrit
    writes one on every review message); comments without one are skipped.
    """
    out: list[Recheck] = []
    for record in records:
        number = _digits(record.get("number"))
        comments = record.get("comments")
        if number is None or not isinstance(comments, list):
            continue
        for c in comments:
            if not isinstance(c, Mapping):
                continue
            message = c.get("message")
            if not isinstance(message, str) or not is_recheck_comment(message):
                continue
            author = _who(c.get("reviewer"))
            header = _PATCHSET_HEADER.match(message.lstrip("\ufeff"))
            at = from_epoch_seconds(c.get("timestamp"))
            if _is_ci(author, ci_users) or header is None or at is None:
                continue
            out.append(Recheck(at=at, change=number, patchset=str(int(header.group(1))), author=author, source=QUERY))
    return sorted(out)


def rechecks_from_events(lines: Iterable[str], ci_users: Sequence[str] = DEFAULT_CI_USERS) -> list[Recheck]:
    """The rechecks in a file of stream events (one JSON object a line; unreadable lines are skipped)."""
    out = []
    for line in lines:
        if not line.strip():
            continue
        try:
            event = parse_line(line)
        except EventParseError:
            continue
        found = parse_recheck(event, ci_users)
        if found is not None:
            out.append(found)
    return sorted(out)
