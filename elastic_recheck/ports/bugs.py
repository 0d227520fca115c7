"""The bug tracker port: titles, status and affected projects of the known bugs.

:class:`BugTracker` (``get`` / ``get_many``) answers :class:`BugInfo`s; the
adapters are in :mod:`elastic_recheck.adapters.launchpad.trackers` (Launchpad,
offline, cached). Tracker answers are data, not errors: a bug that does not
exist is ``missing=True``, one we may not see is ``private=True``. Only "the
tracker did not answer" raises :class:`~elastic_recheck.core.errors.BugTrackerError`.

Statuses and importances use Launchpad's vocabulary (other trackers map
theirs onto it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from elastic_recheck.core.channels import BugRef

if TYPE_CHECKING:
    from elastic_recheck.core.fingerprints import Fingerprint

__all__ = [
    "IMPORTANCE_RANK",
    "OPEN_STATUSES",
    "STATUS_RANK",
    "BugInfo",
    "BugTask",
    "BugTracker",
    "summarize_status",
]

#: How far along a Launchpad task status is (lower = less resolved). Open
#: statuses first, then Fix Released, then the closed-without-fix ones.
STATUS_RANK: dict[str, int] = {
    "New": 0,
    "Incomplete": 1,
    "Incomplete (with response)": 1,
    "Incomplete (without response)": 1,
    "Confirmed": 2,
    "Triaged": 3,
    "In Progress": 4,
    "Fix Committed": 5,
    "Fix Released": 6,
    "Won't Fix": 7,
    "Opinion": 7,
    "Invalid": 8,
    "Expired": 8,
    "Does Not Exist": 8,
}
OPEN_STATUSES = frozenset(s for s, r in STATUS_RANK.items() if r < STATUS_RANK["Fix Released"])
IMPORTANCE_RANK: dict[str, int] = {
    "Critical": 5, "High": 4, "Medium": 3, "Low": 2, "Wishlist": 1, "Undecided": 0, "Unknown": 0,
}


@dataclass(frozen=True)
class BugTask:
    """The bug in one project: Launchpad's bug_task (target, status, importance).

    ``project`` is the project (pillar) name; ``target`` the full target
    (``nova/kilo`` for a series task, same as ``project`` otherwise).
    """

    project: str
    status: str | None = None
    importance: str | None = None
    target: str | None = None
    #: When this task became Fix Released (Launchpad's ``date_fix_released``).
    fix_released_at: datetime | None = None


@dataclass(frozen=True)
class BugInfo:
    """What the tracker knows about one bug."""

    bug: str
    url: str
    title: str | None = None
    #: Bug-level status: the least resolved task status (see :func:`summarize_status`).
    status: str | None = None
    #: The highest importance among the open tasks (all tasks if none is open).
    importance: str | None = None
    tasks: tuple[BugTask, ...] = ()
    duplicate_of: str | None = None
    private: bool = False
    missing: bool = False
    #: Served from the cache because the tracker did not answer.
    stale: bool = False
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    source: str = ""

    @property
    def projects(self) -> tuple[str, ...]:
        """Affected projects, in task order, without duplicates (series folded)."""
        return tuple(dict.fromkeys(t.project for t in self.tasks))

    @property
    def fixed_at(self) -> datetime | None:
        """When the bug was fixed: the latest ``Fix Released`` date of its tasks.

        Only for a bug whose status is Fix Released (every task closed, at
        least one released); None when that is not the status or a released
        task has no date.
        """
        if self.status != "Fix Released":
            return None
        released = [t for t in self.tasks if t.status == "Fix Released"]
        dates = [t.fix_released_at for t in released]
        if not dates or any(d is None for d in dates):
            return None
        return max(d for d in dates if d is not None)

    @property
    def is_open(self) -> bool | None:
        """True if some task is open; None when the status is unknown."""
        if self.status is None:
            return None
        return self.status in OPEN_STATUSES

    def ref(self, fingerprint: Fingerprint | None = None) -> BugRef:
        """The bug as :mod:`elastic_recheck.core.channels` shows it on IRC.

        With the bug's ``fingerprint``, its ``projects`` are added to the
        tracker's (routing uses both), its ``bug_title`` stands in when the
        tracker has none (private, tracker down) and its ``bug_url`` wins.
        """
        projects = self.projects
        title = self.title
        url = self.url
        if fingerprint is not None:
            projects = tuple(dict.fromkeys((*projects, *fingerprint.projects)))
            title = title or fingerprint.bug_title
            url = fingerprint.bug_url or url
        return BugRef(bug=self.bug, url=url, title=title, projects=projects)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fetched_at"] = self.fetched_at.isoformat()
        for task in data["tasks"]:
            when = task.get("fix_released_at")
            task["fix_released_at"] = when.isoformat() if when is not None else None
        data.pop("stale")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BugInfo:
        values = dict(data)
        values["tasks"] = tuple(_task_from_dict(t) for t in values.get("tasks") or ())
        values["fetched_at"] = datetime.fromisoformat(values["fetched_at"])
        values.pop("stale", None)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


def _task_from_dict(data: Mapping[str, Any]) -> BugTask:
    values = {k: v for k, v in data.items() if k in BugTask.__dataclass_fields__}
    when = values.get("fix_released_at")
    values["fix_released_at"] = _aware(datetime.fromisoformat(when)) if isinstance(when, str) else None
    return BugTask(**values)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def summarize_status(tasks: Iterable[BugTask]) -> tuple[str | None, str | None]:
    """Bug-level ``(status, importance)`` from the tasks.

    The status is the *least resolved* task status: a bug is only as fixed as
    its least fixed task (``Confirmed`` in nova and ``Fix Released`` in
    neutron -> ``Confirmed``). Any open task wins over Fix Released, which wins
    over the closed-without-fix statuses (Won't Fix, Invalid, ...). Ties keep
    Launchpad's task order. The importance is the highest among open tasks
    (among all tasks when none is open).
    """
    tasks = [t for t in tasks if t.status]
    if not tasks:
        return None, None
    worst = min(tasks, key=lambda t: STATUS_RANK.get(t.status or "", 0))
    open_tasks = [t for t in tasks if t.status in OPEN_STATUSES] or tasks
    importances = [t.importance for t in open_tasks if t.importance]
    importance = max(importances, key=lambda i: IMPORTANCE_RANK.get(i, 0)) if importances else None
    return worst.status, importance


@runtime_checkable
class BugTracker(Protocol):
    """The bug tracker port."""

    name: str

    def get(self, bug_id: str) -> BugInfo:
        """One bug. :raises BugTrackerError: when the tracker does not answer."""
        ...

    def get_many(self, bug_ids: Iterable[str]) -> dict[str, BugInfo]:
        """Several bugs, keyed by id. :raises BugTrackerError: as :meth:`get`."""
        ...
