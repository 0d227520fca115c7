"""Gerrit's ``gerrit query`` records and stored review messages (pure, no I/O).

* :func:`query_records` reads ``gerrit query --format=JSON`` output;
* :func:`events_from_query` synthesizes the ``comment-added`` events a
  disconnected stream missed from those records (the stream's catch-up);
* :func:`comment_key` is a comment event's identity, so a comment delivered
  both live and by the catch-up is handed out once;
* :func:`same_comment` tells whether a message stored by Gerrit is a given
  review text (how the bot settles a post it did not see acknowledged).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from elastic_recheck.core.errors import EventParseError, GerritError
from elastic_recheck.core.events import DEFAULT_CI_USERS, author_name, parse_line

__all__ = ["SYNTHESIZED_KEY", "comment_key", "events_from_query", "query_records", "same_comment"]

#: Key added to events synthesized from ``gerrit query`` after a reconnect.
SYNTHESIZED_KEY = "elastic_recheck_synthesized"

_PATCH_SET_PREFIX = re.compile(r"^Patch Set (\d+)")


def query_records(out: bytes) -> Iterator[dict[str, Any]]:
    """The JSON records of ``gerrit query --format=JSON`` output (blank lines skipped).

    :raises GerritError: a line is not a JSON object.
    """
    for line in out.splitlines():
        if not line.strip():
            continue
        try:
            yield parse_line(line)
        except EventParseError as exc:
            raise GerritError(f"gerrit query returned bad JSON: {exc}") from None


def comment_key(event: Mapping[str, Any]) -> tuple[str, str, str, str] | None:
    """Identity of a comment-added event: change, patch set, author, digest of the text."""
    if event.get("type") != "comment-added":
        return None
    change = event.get("change")
    patchset = event.get("patchSet")
    comment = event.get("comment")
    if not isinstance(change, Mapping) or not isinstance(patchset, Mapping) or not isinstance(comment, str):
        return None
    digest = hashlib.sha1(comment.encode("utf-8", "surrogatepass")).hexdigest()
    return (str(change.get("number")), str(patchset.get("number")), author_name(event.get("author")), digest)


def events_from_query(
    records: Iterable[Mapping[str, Any]],
    since: float,
    ci_users: Sequence[str] | None = DEFAULT_CI_USERS,
) -> list[dict[str, Any]]:
    """Synthesize ``comment-added`` events from ``gerrit query --comments --patch-sets`` records.

    Only change messages written after ``since`` (epoch seconds) by one of
    ``ci_users`` (all authors if ``None``) are kept, oldest first. The patch
    set comes from the message's ``Patch Set N:`` prefix (else the change's
    latest patch set). Each event carries ``SYNTHESIZED_KEY: "gerrit-query"``.
    """
    wanted = None if ci_users is None else {u.casefold() for u in ci_users}
    out: list[tuple[float, int, dict[str, Any]]] = []
    for record in records:
        if not isinstance(record, Mapping) or record.get("type") == "stats":
            continue
        comments = record.get("comments")
        if not isinstance(comments, list) or "number" not in record:
            continue
        patch_sets = {
            str(ps.get("number")): ps for ps in record.get("patchSets") or [] if isinstance(ps, Mapping)
        }
        current = record.get("currentPatchSet")
        latest: Mapping[str, Any] | None = None
        if isinstance(current, Mapping):
            latest = current
        elif patch_sets:
            latest = patch_sets[max(patch_sets, key=lambda n: int(n) if n.isdigit() else -1)]
        change = {
            k: record[k]
            for k in ("project", "branch", "topic", "id", "number", "subject", "owner", "url", "status")
            if k in record
        }
        for comment in comments:
            if not isinstance(comment, Mapping):
                continue
            ts = comment.get("timestamp")
            message = comment.get("message")
            if isinstance(ts, bool) or not isinstance(ts, int | float) or not isinstance(message, str):
                continue
            if ts <= since:
                continue
            reviewer = comment.get("reviewer")
            if wanted is not None and author_name(reviewer).casefold() not in wanted:
                continue
            m = _PATCH_SET_PREFIX.match(message)
            ps: Mapping[str, Any] | None = patch_sets.get(m.group(1)) if m else latest
            if ps is None:
                ps = {"number": m.group(1)} if m else None
            if ps is None:
                continue
            patch_set = {k: v for k, v in ps.items() if k not in ("approvals", "comments", "files")}
            event = {
                "type": "comment-added",
                "change": change,
                "patchSet": patch_set,
                "author": dict(reviewer) if isinstance(reviewer, Mapping) else {},
                "approvals": [],
                "comment": message,
                "eventCreatedOn": int(ts),
                SYNTHESIZED_KEY: "gerrit-query",
            }
            out.append((float(ts), len(out), event))
    out.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in out]


def same_comment(stored: Any, patchset: str, message: str) -> bool:
    """Whether a stored Gerrit message is ``message`` posted on ``patchset``.

    Gerrit stores a review as ``Patch Set N: <votes>`` + blank line + text;
    the first line is dropped (and must name ``patchset``) before comparing.
    """
    if not isinstance(stored, str):
        return False
    text = stored
    first, _, rest = text.partition("\n")
    m = _PATCH_SET_PREFIX.match(first)
    if m is not None:
        if m.group(1) != patchset:
            return False
        text = rest
    return text.strip() == message.strip()
