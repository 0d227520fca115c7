"""Fixes of a bug: the Gerrit changes whose commit message names it, their state, and whether they worked.

A change is a fix of bug ``B`` when its commit message has a ``Closes-Bug:``,
``Partial-Bug:`` or ``Related-Bug:`` footer naming ``B`` (``#B`` or ``B``,
several ids separated by commas or spaces allowed), or a Launchpad URL of
``B`` (``.../+bug/B`` or ``.../bugs/B``). Gerrit is searched with ``message:B
(status:open OR status:merged)`` through the same REST/SSH query code as the
open reviews (:mod:`elastic_recheck.report.reviews`), answers cached alike
(``<[bugs] cache_dir>/fixes.json``).

States: ``merged``; ``in the gate`` (open, and Zuul's status shows it in the
gate pipeline); ``approved`` (open, ``Workflow`` +1 on the current patch
set: REST's ``labels.Workflow.approved``, SSH's approvals, also the old
``Approved``/``APRV`` label); else ``open``.

For a merged fix, :func:`verdict` compares the bug's failed builds per day
before and after the merge: ``fixed?`` when none came after it, ``still
hitting after the fix merged`` otherwise. The merge time is REST's
``submitted``; over SSH Gerrit has none, so ``lastUpdated`` stands in
(a comment after the merge moves it later).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from elastic_recheck.core.search_types import BuildSummary
from elastic_recheck.core.timestamps import from_epoch_seconds, parse_iso, parse_timestamp

LOG = logging.getLogger(__name__)

MERGED = "merged"
IN_GATE = "in the gate"
APPROVED = "approved"
OPEN = "open"

FIXED = "fixed?"
STILL_HITTING = "still hitting after the fix merged"

#: REST ``o=`` options and SSH flags that bring the commit message, status and approvals.
REST_OPTIONS: tuple[str, ...] = ("CURRENT_REVISION", "CURRENT_COMMIT", "LABELS")
SSH_OPTIONS: tuple[str, ...] = ("--current-patch-set", "--commit-message")

_FOOTER = re.compile(r"^\s*(Closes|Partial|Related)-Bug\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_APPROVE_LABELS = {"workflow", "approved", "aprv"}


@dataclass(frozen=True)
class Fix:
    number: int
    patchset: int | None
    project: str
    subject: str
    #: ``closes``, ``partial``, ``related`` or ``url``.
    kind: str
    merged: bool
    approved: bool
    merged_at: datetime | None = None
    in_gate: bool = False

    @property
    def state(self) -> str:
        if self.merged:
            return MERGED
        if self.in_gate:
            return IN_GATE
        return APPROVED if self.approved else OPEN

    @property
    def change_id(self) -> str:
        """``N,P`` as Zuul names a change."""
        return f"{self.number},{self.patchset}"

    def as_json(self) -> dict[str, Any]:
        return {"number": self.number, "patchset": self.patchset, "project": self.project, "subject": self.subject,
                "kind": self.kind, "state": self.state,
                "merged_at": self.merged_at.isoformat() if self.merged_at else None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fix:
        merged_at = data.get("merged_at")
        return cls(number=int(data["number"]), patchset=data.get("patchset"), project=str(data.get("project") or ""),
                   subject=str(data.get("subject") or ""), kind=str(data.get("kind") or ""),
                   merged=data.get("state") == MERGED, approved=data.get("state") in (APPROVED, IN_GATE),
                   merged_at=parse_iso(merged_at) if isinstance(merged_at, str) else None)


def fixes_query(bug: str) -> str:
    return f"message:{bug} (status:open OR status:merged)"


def reference_kind(message: str, bug: str) -> str | None:
    """How a commit message names ``bug`` (footer kind, or ``url``); None when it does not."""
    ident = re.compile(rf"(?<![\w#])#?{re.escape(bug)}(?!\w)")
    for m in _FOOTER.finditer(message):
        if any(ident.fullmatch(part) for part in re.split(r"[\s,]+", m.group(2).strip()) if part):
            return m.group(1).lower()
    if re.search(rf"(?:/\+bug/|/bugs/){re.escape(bug)}(?!\w)", message):
        return "url"
    return None


def _gerrit_time(text: Any) -> datetime | None:
    """Gerrit's ``2026-11-15 10:00:00.000000000`` (UTC)."""
    return parse_timestamp(text) if isinstance(text, str) else None


def fix_from_rest(record: Mapping[str, Any], bug: str) -> Fix | None:
    """A Fix from a REST ChangeInfo (with ``o=CURRENT_REVISION&o=CURRENT_COMMIT&o=LABELS``)."""
    revisions = record.get("revisions")
    current = revisions.get(record.get("current_revision")) if isinstance(revisions, Mapping) else None
    commit = current.get("commit") if isinstance(current, Mapping) else None
    message = commit.get("message") if isinstance(commit, Mapping) else None
    kind = reference_kind(message, bug) if isinstance(message, str) else None
    status = str(record.get("status") or "")
    if kind is None or status not in ("NEW", "MERGED") or not str(record.get("_number", "")).isdigit():
        return None
    raw_labels = record.get("labels")
    labels: Mapping[str, Any] = raw_labels if isinstance(raw_labels, Mapping) else {}
    approved = any(isinstance(v, Mapping) and v.get("approved") is not None
                   for k, v in labels.items() if k.casefold() in _APPROVE_LABELS)
    ps = current.get("_number") if isinstance(current, Mapping) else None
    return Fix(number=int(record["_number"]), patchset=int(str(ps)) if str(ps).isdigit() else None,
               project=str(record.get("project") or ""), subject=str(record.get("subject") or ""), kind=kind,
               merged=status == "MERGED", approved=approved, merged_at=_gerrit_time(record.get("submitted")))


def _vote(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def fix_from_ssh(record: Mapping[str, Any], bug: str) -> Fix | None:
    """A Fix from a ``gerrit query --current-patch-set --commit-message`` record."""
    message = record.get("commitMessage")
    kind = reference_kind(message, bug) if isinstance(message, str) else None
    status = str(record.get("status") or "")
    if kind is None or status not in ("NEW", "MERGED") or not str(record.get("number", "")).isdigit():
        return None
    raw_current = record.get("currentPatchSet")
    current: Mapping[str, Any] = raw_current if isinstance(raw_current, Mapping) else {}
    raw_approvals = current.get("approvals")
    approvals: list[Any] = raw_approvals if isinstance(raw_approvals, list) else []
    approved = any(isinstance(a, Mapping) and str(a.get("type", "")).casefold() in _APPROVE_LABELS
                   and _vote(a.get("value")) >= 1 for a in approvals)
    ps = current.get("number")
    updated = record.get("lastUpdated")
    merged_at = from_epoch_seconds(updated) if status == "MERGED" and isinstance(updated, int | float) else None
    return Fix(number=int(record["number"]), patchset=int(str(ps)) if str(ps).isdigit() else None,
               project=str(record.get("project") or ""), subject=str(record.get("subject") or ""), kind=kind,
               merged=status == "MERGED", approved=approved, merged_at=merged_at)


def fixes_from_records(records: Iterable[Mapping[str, Any]], bug: str, kind: str) -> list[Fix]:
    """The fixes of ``bug`` among Gerrit's answer (``kind``: ``rest`` or ``ssh``), open ones first, then by number."""
    parse = fix_from_rest if kind == "rest" else fix_from_ssh
    found = {f.number: f for f in (parse(r, bug) for r in records) if f is not None}
    return sorted(found.values(), key=lambda f: (f.merged, -f.number))


def with_gate(fixes: Sequence[Fix], in_gate: Iterable[str]) -> list[Fix]:
    """Mark the open fixes Zuul has in the gate (``in_gate``: ``N,P`` or ``N`` ids)."""
    ids = set(in_gate)
    return [replace(f, in_gate=not f.merged and (f.change_id in ids or str(f.number) in ids)) for f in fixes]


@dataclass(frozen=True)
class Verdict:
    fix: Fix
    before: int
    before_days: float
    after: int
    after_days: float

    @property
    def rate_before(self) -> float | None:
        return self.before / self.before_days if self.before_days > 0 else None

    @property
    def rate_after(self) -> float | None:
        return self.after / self.after_days if self.after_days > 0 else None

    @property
    def text(self) -> str:
        return STILL_HITTING if self.after else FIXED

    def as_json(self) -> dict[str, Any]:
        return {"number": self.fix.number, "verdict": self.text, "before": self.before, "after": self.after,
                "per_day_before": None if self.rate_before is None else round(self.rate_before, 2),
                "per_day_after": None if self.rate_after is None else round(self.rate_after, 2)}


def verdict(fix: Fix, failed: Sequence[BuildSummary], start: datetime, now: datetime) -> Verdict | None:
    """Failed builds of the bug before and after ``fix`` merged, within ``[start, now]`` (None: not merged, or no time)."""
    at = fix.merged_at
    if not fix.merged or at is None or at > now:
        return None
    times = [b.last_seen for b in failed if b.last_seen is not None]
    since = max(at, start)
    return Verdict(
        fix=fix,
        before=sum(1 for t in times if start <= t < at),
        before_days=max(0.0, (at - start).total_seconds() / 86400),
        after=sum(1 for t in times if t >= since),
        after_days=(now - since).total_seconds() / 86400,
    )


def fix_rows(fixes: Sequence[Fix], failed: Sequence[BuildSummary], start: datetime, now: datetime) -> list[tuple[Fix, Verdict | None]]:
    """Each fix with its before/after verdict (merged fixes only)."""
    return [(f, verdict(f, failed, start, now)) for f in fixes]


def fixes_json(rows: Sequence[tuple[Fix, Verdict | None]]) -> list[dict[str, Any]]:
    """graph.json's ``fixes`` of one bug."""
    out = []
    for fix, v in rows:
        entry = fix.as_json()
        if v is not None:
            entry.update({k: val for k, val in v.as_json().items() if k != "number"})
        out.append(entry)
    return out
