"""Text of the Gerrit review comment (pure formatting, no I/O).

The message parts are configurable with the ``messages:`` block of the old
``recheckwatchbot.yaml`` (``found_bug``, ``recheck_instructions``,
``unrecognized``, ``footer``, ``no_bugs_found``); ``%(bugs)s`` in
``found_bug`` is replaced by the per-job bug list, as the old bot did.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elastic_recheck.core import channels
from elastic_recheck.core.channels import Messages
from elastic_recheck.core.safe_text import one_line, safe_url

#: Defaults of the message parts (one source of truth: :class:`channels.Messages`).
DEFAULT_MESSAGES: dict[str, str] = dataclasses.asdict(Messages())

#: Longest matched log line quoted in a comment.
MAX_LINE = 300

# Log lines, bug titles and job names are untrusted: NUL and other C0 controls
# (but tab and newline) are replaced, so is a lone surrogate (Gerrit refuses both).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _sendable(text: str) -> str:
    return _CONTROL.sub(" ", text).encode("utf-8", "replace").decode("utf-8")


def load_messages(path: Path | str | None) -> dict[str, str]:
    """Read the ``messages:`` block of a recheckwatchbot.yaml; defaults for missing keys."""
    return dataclasses.asdict(channels.load_messages(path))


@dataclass(frozen=True)
class BugEvidence:
    """One bug matched on one job, with what the comment explains."""

    bug: str
    url: str
    title: str | None = None
    status: str | None = None
    line: str | None = None
    file: str | None = None
    log_url: str | None = None
    fails_24h: int | None = None
    #: The bug's page on the status site (``[site] url``), when published.
    page: str | None = None


@dataclass(frozen=True)
class RecurringNote:
    """An unrecognized failure whose error also failed other changes' builds (failure signatures)."""

    #: Builds and distinct other changes that failed the same way in the window.
    builds: int
    changes: int
    #: The error line (normalized) that stands for the failure.
    line: str
    #: Logs of (up to two) of those builds.
    links: Sequence[str] = ()
    #: Of those changes, how many later passed the same job on the same patchset.
    flaky_changes: int = 0
    hours: float = 24.0


@dataclass(frozen=True)
class JobOutcome:
    name: str
    bugs: Sequence[BugEvidence] = field(default_factory=tuple)
    log_url: str | None = None
    #: Set on an unrecognized job whose failure recurs on other changes.
    recurring: RecurringNote | None = None


def _hours(hours: float) -> str:
    return f"{hours:g} hours"


def _unknown_lines(job: JobOutcome) -> list[str]:
    """``- job: unrecognized error``, plus the recurring-failure note when there is one."""
    lines = [f"- {_clip(job.name, 200)}: unrecognized error"]
    note = job.recurring
    if note is None:
        return lines
    builds = "build" if note.builds == 1 else "builds"
    changes = "change" if note.changes == 1 else "changes"
    lines.append(
        f"  the same error was seen in {note.builds} {builds} of {note.changes} other {changes} "
        f"in the last {_hours(note.hours)}: {_clip(note.line)}"
    )
    for link in note.links[:2]:
        url = safe_url(link)
        if url:
            lines.append(f"  e.g. {url}")
    if note.flaky_changes:
        lines.append(f"  {note.flaky_changes} of those changes passed the same job on a recheck")
    lines.append("  this failure is probably not caused by this change")
    return lines


def _clip(text: str, limit: int = MAX_LINE) -> str:
    return one_line(text, limit)


def _bug_lines(job: JobOutcome) -> list[str]:
    """Every value on its own line: none of them (from documents, events, trackers) can add a line."""
    lines: list[str] = []
    name = _clip(job.name, 200)
    for ev in job.bugs:
        head = f"- {name}: {safe_url(ev.url) or _clip(ev.url, 200)}"
        if ev.title:
            head += f' "{_clip(ev.title, 120)}"'
        if ev.status:
            head += f" [{_clip(ev.status, 40)}]"
        if ev.page:
            head += f" (trend: {safe_url(ev.page) or _clip(ev.page, 200)})"
        lines.append(head)
        if ev.line:
            where = f" ({_clip(ev.file, 200)})" if ev.file else ""
            lines.append(f"  matched{where}: {_clip(ev.line)}")
        link = safe_url(ev.log_url)
        if link:
            lines.append(f"  log: {link}")
        if ev.fails_24h is not None:
            plural = "build" if ev.fails_24h == 1 else "builds"
            lines.append(f"  this bug failed {ev.fails_24h} {plural} in the last 24 hours")
    return lines


# Departure from the original (docs/compatibility.md): each bug line also says
# the bug's title and status, the matched log line, its log URL and how many
# builds the bug failed in the last 24 hours (the original: "- job: bug URL").
def format_comment(
    jobs: Sequence[JobOutcome], messages: Mapping[str, str] | None = None, site_url: str | None = None
) -> str:
    """The review comment for one failure report.

    Jobs with bugs are listed with the evidence; jobs with none are listed as
    unrecognized. When no job matched, ``no_bugs_found`` is used instead.
    ``site_url`` (``[site] url``) is linked in the footer, unless it holds it already.
    """
    msg = {**DEFAULT_MESSAGES, **(messages or {})}
    if site_url and site_url not in msg["footer"]:
        msg["footer"] = f"{msg['footer'].rstrip().rstrip('.')}: {site_url}" if msg["footer"].strip() else site_url
    known = [j for j in jobs if j.bugs]
    unknown = [j for j in jobs if not j.bugs]
    parts: list[str] = []
    if not known:
        parts.append(msg["no_bugs_found"])
        if unknown:
            parts.append("\n".join(line for j in unknown for line in _unknown_lines(j)))
        parts.append(msg["footer"])
        return _sendable("\n\n".join(p for p in parts if p))
    bug_text = "\n".join(line for j in known for line in _bug_lines(j))
    found: Any = msg["found_bug"]
    if "%(bugs)s" in found:
        parts.append(found.replace("%(bugs)s", bug_text))
    else:
        parts.append(found)
        parts.append(bug_text)
    if unknown:
        parts.append("\n".join(line for j in unknown for line in _unknown_lines(j)))
        parts.append(msg["unrecognized"])
    parts.append(msg["recheck_instructions"])
    parts.append(msg["footer"])
    return _sendable("\n\n".join(p.strip("\n") for p in parts if p))
