"""Gerrit ``stream-events`` dicts -> :class:`FailureReport` (pure, no I/O).

A CI system reports on a change with a ``comment-added`` event written by its
Gerrit account (``zuul``, formerly ``jenkins``). Only "Build failed" reports
become a :class:`FailureReport`; everything else (other event types, human
comments, "Build succeeded.", "Starting check jobs.", "Merge Failed.", ...)
yields ``None``. An event that should be a report but cannot be read (no
change number, patch set of the wrong type, not a JSON object, ...) raises
:class:`~elastic_recheck.core.errors.EventParseError`; the bot logs and skips it.

Formats recognised (the comment text, after Gerrit's own prefix lines such as
``Patch Set 3: Verified-1`` and ``(2 comments)`` are removed)::

    Build failed.  For information on how to proceed, see https://...        (Jenkins / Zuul v2)

    - gate-nova-python27 http://logs.openstack.org/65/12345/3/gate/gate-nova-python27/04102a5 : FAILURE in 13m 57s

    Build failed (check pipeline).  For information on how to proceed, ...   (Zuul v3+)
    https://zuul.opendev.org/t/openstack/buildset/<uuid>                     (optional buildset link)

    - tempest-full https://zuul.opendev.org/t/openstack/build/<32-hex uuid> : FAILURE in 1h 02m 03s
    - nova-tox-py311 https://<log host>/.../nova-tox-py311/3b5d6e9/ : POST_FAILURE in 5m 10s (non-voting)
    - nova-grenade nova-grenade : SKIPPED                                     (no URL: Zuul repeats the name)
    - nova-live-migration https://... : NODE_FAILURE Node request failed in 0s (error detail)

Zuul writes each job line as ``- <name> <url> : <RESULT>[ <detail>][ in <duration>][ (non-voting)]``.
Every job line is kept, whatever its result, so callers choose which results
they classify (:meth:`FailureReport.failed_jobs`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from elastic_recheck.core.errors import EventParseError, short_repr
from elastic_recheck.core.timestamps import from_epoch_seconds

LOG = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CI_USERS",
    "FAILED_RESULTS",
    "KNOWN_PIPELINES",
    "FailedJob",
    "FailureReport",
    "author_name",
    "parse_event",
    "parse_line",
]

DEFAULT_CI_USERS: tuple[str, ...] = ("zuul", "jenkins")

#: Job results that mean "this build did not succeed" (Zuul v2/v3 and Jenkins).
#: ``SKIPPED`` and ``CANCELED``/``ABORTED`` are not failures of the job itself
#: but are listed in reports; they are kept on :attr:`FailureReport.jobs`.
FAILED_RESULTS: tuple[str, ...] = (
    "FAILURE",
    "POST_FAILURE",
    "TIMED_OUT",
    "RETRY_LIMIT",
    "NODE_FAILURE",
    "ERROR",
    "MERGER_FAILURE",
    "MERGE_CONFLICT",
    "CONFIG_ERROR",
    "DISK_FULL",
    "LOST",
    "UNSTABLE",
    "NOT_REGISTERED",
)

#: Pipeline names recognised in old log URLs (``/<change>/<ps>/<pipeline>/<job>/<uuid7>``)
#: when the URL does not follow that layout. The layout itself is tried first,
#: so an unknown pipeline name in a well-formed URL is still found.
KNOWN_PIPELINES: frozenset[str] = frozenset(
    {
        "check",
        "gate",
        "post",
        "experimental",
        "periodic",
        "periodic-stable",
        "periodic-weekly",
        "silent",
        "pre-release",
        "release",
        "release-post",
        "promote",
        "tag",
        "third-party-check",
        "check-arm64",
        "experimental-arm64",
        "check-tripleo",
        "experimental-tripleo",
        "openstack-check",
        "merge-check",
    }
)

# Gerrit prefixes the stored change message with "Patch Set N: <votes>" and,
# when inline comments were posted with it, "(N comments)".
_PATCHSET_LINE = re.compile(r"^Patch Set \d+:")
_COMMENTS_LINE = re.compile(r"^\(\d+ (?:inline )?comments?\)$")
_HEADER = re.compile(r"^build failed(?: \((?P<pipeline>[^()\n]{1,100}) pipeline\))?", re.IGNORECASE)
_DURATION = re.compile(r" in (?P<duration>(?:\d+h )?(?:\d+m )?\d+s)$")
_NON_VOTING = " (non-voting)"
_RESULT_TOKEN = re.compile(r"^[A-Z][A-Z_]*$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX7 = re.compile(r"^[0-9a-f]{7}$")
_DIGITS = re.compile(r"^[0-9]+$")
_JENKINS_JOB = re.compile(r"/job/(?P<name>[^/]+)/")
_DURATION_PART = re.compile(r"(\d+)([hms])")


@dataclass(frozen=True)
class FailedJob:
    """One job line of a CI report (any result; see :attr:`result`)."""

    name: str
    #: Log or build page URL; ``""`` when the report gave none.
    url: str
    #: ``FAILURE``, ``POST_FAILURE``, ``SUCCESS``, ... (or a job's custom message).
    result: str
    #: Full 32-hex build uuid (Zuul v3 build page URLs), else ``None``.
    build_uuid: str | None
    #: 7-hex short uuid: the last path element of old log URLs
    #: (Jenkins / Zuul v2 / early v3), or the first 7 characters of :attr:`build_uuid`.
    build_short_uuid: str | None
    voting: bool
    #: As written in the report, e.g. ``"1h 02m 03s"``; ``None`` if absent.
    duration: str | None
    #: Zuul's error detail after the result (e.g. ``"Node request failed"``).
    detail: str | None = None

    @property
    def duration_seconds(self) -> int | None:
        """:attr:`duration` in seconds (``"13m 57s"`` -> 837)."""
        if self.duration is None:
            return None
        scale = {"h": 3600, "m": 60, "s": 1}
        return sum(int(n) * scale[unit] for n, unit in _DURATION_PART.findall(self.duration))


@dataclass(frozen=True)
class FailureReport:
    """A CI "Build failed" report on one patch set."""

    change: str
    patchset: str
    project: str
    branch: str
    #: From the header (``Build failed (gate pipeline)``) or the log URLs; ``None`` if unknown.
    pipeline: str | None
    #: The change's web URL (``""`` if the event has none).
    url: str
    #: Every job line of the report, successes included, in report order.
    jobs: tuple[FailedJob, ...]
    #: ``eventCreatedOn`` as an aware UTC datetime (``None`` for old events without it).
    event_time: datetime | None
    #: The CI account's username (or display name for old events).
    author: str
    #: Stable idempotency key: change, patch set and a digest of the builds' ids.
    comment_id: str
    #: Zuul v3's buildset page, when the report links one.
    buildset_url: str | None = None

    def failed_jobs(self, results: Sequence[str] = ("FAILURE",)) -> tuple[FailedJob, ...]:
        """Jobs whose result is one of ``results`` (voting or not)."""
        wanted = frozenset(results)
        return tuple(j for j in self.jobs if j.result in wanted)

    def voting_failed_jobs(self, results: Sequence[str] = ("FAILURE",)) -> tuple[FailedJob, ...]:
        """Voting jobs whose result is one of ``results``."""
        return tuple(j for j in self.failed_jobs(results) if j.voting)


def parse_line(line: str | bytes) -> dict[str, Any]:
    """One JSON-lines record -> event dict.

    :raises EventParseError: empty line, invalid JSON, or JSON that is not an object.
    """
    text = line.strip()
    if not text:
        raise EventParseError("empty line")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise EventParseError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EventParseError(f"event is a JSON {type(data).__name__}, not an object")
    return data


def parse_event(event: Mapping[str, Any], ci_users: Sequence[str] = DEFAULT_CI_USERS) -> FailureReport | None:
    """Turn one Gerrit event into a :class:`FailureReport`, or ``None`` if it is not a CI failure report.

    :param event: a decoded ``stream-events`` record.
    :param ci_users: usernames (or, for old events without a username, display
        names) of the CI accounts; compared case-insensitively.
    :raises EventParseError: the event is not an object, has no ``type``, or is
        a CI "Build failed" comment missing what a report needs.
    """
    if not isinstance(event, Mapping):
        raise EventParseError(f"event is a {type(event).__name__}, not an object")
    etype = event.get("type")
    if not isinstance(etype, str):
        raise EventParseError("event has no 'type'")
    if etype != "comment-added":
        return None
    author = _author(event)
    if author.casefold() not in {str(u).casefold() for u in ci_users}:
        return None
    comment = event.get("comment")
    if comment is None:
        return None  # a vote without a message
    if not isinstance(comment, str):
        raise EventParseError(f"'comment' is a {type(comment).__name__}, not a string")
    body = _strip_gerrit_prefix(comment)
    header = _HEADER.match(body)
    if header is None:
        return None

    # Departure from the original (docs/compatibility.md): a CI report without
    # a change or patch set is refused (EventParseError, logged and skipped)
    # instead of failing later: there is nothing to comment on.
    change_obj = _mapping(event, "change")
    patchset_obj = _mapping(event, "patchSet")
    change = _number(change_obj.get("number"), "change number")
    patchset = _number(patchset_obj.get("number"), "patch set number")
    project = _optional_str(change_obj, "project") or _optional_str(event, "project")
    branch = _optional_str(change_obj, "branch")
    url = _optional_str(change_obj, "url")
    event_time = _event_time(event.get("eventCreatedOn"))

    lines = body.splitlines()
    jobs = tuple(j for j in (_parse_job_line(line, change) for line in lines[1:]) if j is not None)
    if not jobs:
        LOG.warning("%s,%s: CI comment starts with 'Build failed' but has no job line I can read", change, patchset)
        return None
    buildset_url = next((ln.strip() for ln in lines[1:] if "/buildset/" in ln and ln.strip().startswith("http")), None)
    pipeline = header.group("pipeline") or _pipeline_from_urls(jobs, change, patchset)

    return FailureReport(
        change=change,
        patchset=patchset,
        project=project,
        branch=branch,
        pipeline=pipeline.strip() if pipeline else None,
        url=url,
        jobs=jobs,
        event_time=event_time,
        author=author,
        comment_id=_comment_id(change, patchset, jobs),
        buildset_url=buildset_url,
    )


# -- helpers -----------------------------------------------------------------


def _author(event: Mapping[str, Any]) -> str:
    author = event.get("author")
    if author is None:
        raise EventParseError("comment-added event has no 'author'")
    if not isinstance(author, Mapping):
        raise EventParseError(f"'author' is a {type(author).__name__}, not an object")
    return author_name(author)


def author_name(author: Any) -> str:
    """A Gerrit account object's ``username``, else its ``name``, else ``""`` (also for a non-object)."""
    if isinstance(author, Mapping):
        for key in ("username", "name"):
            value = author.get(key)
            if isinstance(value, str) and value:
                return value
    return ""


def _mapping(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if value is None:
        raise EventParseError(f"CI report without '{key}'")
    if not isinstance(value, Mapping):
        raise EventParseError(f"'{key}' is a {type(value).__name__}, not an object")
    return value


def _number(value: Any, what: str) -> str:
    """Gerrit sends numbers as strings (2.x) or ints (3.x); both become a digit string."""
    if value is None:
        raise EventParseError(f"CI report without a {what}")
    if isinstance(value, bool):
        raise EventParseError(f"{what} is a boolean")
    if isinstance(value, int):
        if value <= 0:
            raise EventParseError(f"{what} {value} is not positive")
        return str(value)
    if isinstance(value, str) and len(value) <= 20 and _DIGITS.match(value.strip()) and int(value) > 0:
        return str(int(value))
    raise EventParseError(f"{what} {short_repr(value)} is not a positive integer")


def _optional_str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise EventParseError(f"'{key}' is a {type(value).__name__}, not a string")
    return value


def _event_time(value: Any) -> datetime | None:
    if value is None:
        return None
    at = from_epoch_seconds(value)
    if at is None:
        raise EventParseError(f"eventCreatedOn {short_repr(value)} is not a timestamp")
    return at


def _strip_gerrit_prefix(comment: str) -> str:
    """Drop ``Patch Set N: ...`` and ``(N comments)`` lines and blank lines before the text."""
    lines = comment.lstrip("\ufeff").splitlines()
    i = 0
    seen_patchset = False
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped:
            i += 1
        elif not seen_patchset and _PATCHSET_LINE.match(stripped):
            seen_patchset = True
            i += 1
        elif _COMMENTS_LINE.match(stripped):
            i += 1
        else:
            break
    return "\n".join(lines[i:])


def _parse_job_line(line: str, change: str) -> FailedJob | None:
    """``- <name> <url> : <RESULT>[ <detail>][ in <duration>][ (non-voting)]`` -> FailedJob."""
    line = line.strip()
    if not line.startswith("- "):
        return None
    head, sep, rest = line[2:].partition(" : ")
    if not sep:
        return None
    parts = head.split()
    rest = rest.strip()
    if not parts or len(parts) > 2 or not rest:
        return None

    voting = True
    if rest.endswith(_NON_VOTING):
        voting = False
        rest = rest[: -len(_NON_VOTING)].rstrip()
    duration = None
    m = _DURATION.search(rest)
    if m:
        duration = m.group("duration")
        rest = rest[: m.start()].rstrip()
    result_token, _, detail = rest.partition(" ")
    if _RESULT_TOKEN.match(result_token):
        result = result_token
        detail_text: str | None = detail.strip() or None
    else:  # a job's custom success/failure message
        result, detail_text = rest, None
    if not result:
        return None

    if len(parts) == 2:
        name, raw_url = parts
    else:
        raw_url = parts[0]
        name = _name_from_url(raw_url) if _is_url(raw_url) else raw_url
    url = raw_url if _is_url(raw_url) else ""
    build_uuid, short = _uuids(url, name, change)
    return FailedJob(
        name=name,
        url=url,
        result=result,
        build_uuid=build_uuid,
        build_short_uuid=short,
        voting=voting,
        duration=duration,
        detail=detail_text,
    )


def _is_url(text: str) -> bool:
    lowered = text.lower()
    return lowered.startswith(("http://", "https://"))


def _name_from_url(url: str) -> str:
    """Nameless job lines (``- <url> : FAILURE``): Jenkins' ``/job/<name>/`` or the URL."""
    m = _JENKINS_JOB.search(url)
    return m.group("name") if m else url


def _segments(url: str) -> list[str]:
    try:
        path = urlsplit(url).path
    except ValueError:
        return []
    return [s for s in path.split("/") if s]


def _uuids(url: str, name: str, change: str) -> tuple[str | None, str | None]:
    if not url:
        return None, None
    segments = _segments(url)
    for seg in reversed(segments):
        if _HEX32.match(seg):
            return seg, seg[:7]
    # Old layout: .../<job name>/<uuid7>[/more/path]
    for i in range(len(segments) - 2, -1, -1):
        if segments[i] == name and _HEX7.match(segments[i + 1]):
            return None, segments[i + 1]
    for seg in reversed(segments):
        if _HEX7.match(seg) and seg != change:
            return None, seg
    return None, None


def _pipeline_from_url(url: str, name: str, change: str, patchset: str) -> str | None:
    segments = _segments(url)
    # .../<change>/<patchset>/<pipeline>/<job>/...
    for i in range(len(segments) - 3):
        if segments[i] == change and segments[i + 1] == patchset:
            candidate = segments[i + 2]
            if segments[i + 3] == name or candidate in KNOWN_PIPELINES:
                return candidate
    for seg in segments:
        if seg in KNOWN_PIPELINES and seg != name:
            return seg
    return None


def _pipeline_from_urls(jobs: Sequence[FailedJob], change: str, patchset: str) -> str | None:
    found = Counter(
        p for p in (_pipeline_from_url(j.url, j.name, change, patchset) for j in jobs if j.url) if p is not None
    )
    if not found:
        return None
    return found.most_common(1)[0][0]


def _comment_id(change: str, patchset: str, jobs: Sequence[FailedJob]) -> str:
    keys = sorted(j.build_uuid or j.build_short_uuid or f"{j.name}@{j.url}" for j in jobs)
    digest = hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()[:16]
    return f"{change},{patchset},{digest}"
