"""What a log search is about, as data: the query, its filters and window, and the answers.

A query is a :class:`QuerySpec`: zero or more Lucene ``query_string`` texts
that must all match (the fingerprint, optionally a suffix such as a queue
restriction), plus structured :class:`Filters` and a :class:`TimeWindow`.
Filters are data, never pasted into the query text: values that come from
Gerrit events are untrusted. The answers are :class:`SearchResult` (with
:class:`Hit`), :class:`Bucket`, :class:`TermCount` and :class:`BuildSummary`.
The port that runs them is :mod:`elastic_recheck.ports.search`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from elastic_recheck.core.schema import parse_voting, voting_value


@dataclass(frozen=True)
class TimeWindow:
    """A half-open time interval ``[start, end)`` in UTC (either side may be open)."""

    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def last(cls, days: float, now: datetime) -> TimeWindow:
        return cls(start=now - timedelta(days=days), end=now)


@dataclass(frozen=True)
class Filters:
    """Exact-match restrictions, combined with AND.

    Each attribute restricts the keyword field of the same name (``build_*``,
    ``voting``...). ``extra`` holds further ``field -> value`` (or tuple of
    values, meaning any of them) restrictions. ``None`` means "no restriction".
    """

    build_uuid: str | None = None
    build_short_uuid: str | None = None
    build_change: str | None = None
    build_patchset: str | None = None
    build_name: str | None = None
    build_status: str | None = None
    build_queue: str | None = None
    project: str | None = None
    voting: bool | None = None
    extra: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)

    def as_terms(self) -> dict[str, tuple[str, ...]]:
        """All restrictions as ``field -> accepted values`` (voting as ``"1"``/``"0"``)."""
        out: dict[str, tuple[str, ...]] = {}
        for name in (
            "build_uuid",
            "build_short_uuid",
            "build_change",
            "build_patchset",
            "build_name",
            "build_status",
            "build_queue",
            "project",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = (str(value),)
        if self.voting is not None:
            out["voting"] = (str(voting_value(self.voting)),)
        for key, val in self.extra.items():
            out[key] = val if isinstance(val, tuple) else (val,)
        return out


@dataclass(frozen=True)
class QuerySpec:
    """One search: Lucene texts (all must match) + structured filters + window."""

    queries: tuple[str, ...] = ()
    filters: Filters = field(default_factory=Filters)
    window: TimeWindow = field(default_factory=TimeWindow)
    #: An opaque label (e.g. the bug id) echoed back in results.
    label: str = ""


@dataclass(frozen=True)
class Hit:
    """One matching log-line document."""

    id: str
    source: Mapping[str, Any]
    timestamp: datetime | None = None
    index: str | None = None

    def get(self, name: str, default: Any = None) -> Any:
        return self.source.get(name, default)


@dataclass(frozen=True)
class SearchResult:
    """Hits of one query (oldest first unless stated), plus the total count."""

    hits: Sequence[Hit]
    total: int
    label: str = ""
    #: Set when the backend answered only partially (e.g. shard failures).
    partial: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Bucket:
    """Distinct builds in one time bucket, split by ``build_status``."""

    start: datetime
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class TermCount:
    """Distinct builds (and matching documents) for one value of a field."""

    value: str
    builds: int
    docs: int = 0


@dataclass(frozen=True)
class BuildSummary:
    """One distinct build among matching documents.

    ``fields`` holds the build-level fields of one of its documents
    (:data:`~elastic_recheck.core.schema.BUILD_FIELDS` that are present);
    read them through the typed properties (``status``, ``job_name``,
    ``voting``, ...), and ``fields`` only to walk them by name.
    """

    uuid: str
    fields: Mapping[str, Any]
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    docs: int = 0

    def text(self, name: str) -> str | None:
        """Field ``name`` as text: the first of a list, None when absent."""
        value = self.fields.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        return None if value is None else str(value)

    @property
    def job_name(self) -> str | None:
        """``build_name``."""
        return self.text("build_name")

    @property
    def status(self) -> str | None:
        """``build_status`` (``SUCCESS``, ``FAILURE``, ...)."""
        return self.text("build_status")

    @property
    def queue(self) -> str | None:
        """``build_queue`` (the pipeline: ``gate``, ``check``, ...)."""
        return self.text("build_queue")

    @property
    def project(self) -> str | None:
        return self.text("project")

    @property
    def branch(self) -> str | None:
        """``build_branch``."""
        return self.text("build_branch")

    @property
    def change(self) -> str | None:
        """``build_change`` (a number, as text)."""
        return self.text("build_change")

    @property
    def patchset(self) -> str | None:
        """``build_patchset`` (a number, as text)."""
        return self.text("build_patchset")

    @property
    def build_set(self) -> str | None:
        """``build_set`` (the Zuul buildset uuid)."""
        return self.text("build_set")

    @property
    def node_provider(self) -> str | None:
        return self.text("node_provider")

    @property
    def log_url(self) -> str | None:
        """The build's log directory."""
        return self.text("log_url")

    @property
    def voting(self) -> bool | None:
        """``voting`` read with :func:`~elastic_recheck.core.schema.parse_voting` (None: unknown)."""
        return parse_voting(self.fields.get("voting"))

