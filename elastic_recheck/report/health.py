"""The health header shown on every page (and the health page).

It answers "can I trust these numbers?": when the pages were generated, the
time they describe, the newest indexed event and how far indexing lags
behind, whether the backend answered, and which fingerprints failed to load
(or were rejected by the backend) and why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elastic_recheck.core.errors import BackendError, FingerprintError
from elastic_recheck.core.fingerprint_loading import LoadResult
from elastic_recheck.core.stats import DAY, floor_time, humanize_delta, lag
from elastic_recheck.core.timestamps import to_epoch_ms
from elastic_recheck.ports.search import SearchBackend

LOG = logging.getLogger(__name__)

UP = "up"
DOWN = "down"

#: Indexing lag above which the header turns to a warning.
LAG_WARNING = timedelta(hours=1)
#: How far in the future an event may be dated and still count as the newest (clock skew).
FUTURE_SKEW = timedelta(days=1)


@dataclass(frozen=True)
class BackendProbe:
    status: str
    newest_event: datetime | None = None
    error: str | None = None

    @property
    def up(self) -> bool:
        return self.status != DOWN


def probe_backend(backend: SearchBackend, now: datetime | None = None) -> BackendProbe:
    """Ping the backend and read its newest event; never raises for backend failures.

    Events dated more than :data:`FUTURE_SKEW` after ``now`` are not the
    newest event: one document dated 9999-12-31 would otherwise hide the
    indexing lag for ever.
    """
    until = (now or datetime.now(UTC)) + FUTURE_SKEW
    try:
        if not backend.ping():
            return BackendProbe(status=DOWN, error="the backend did not answer")
        newest = backend.latest_timestamp(until=until)
    except BackendError as exc:
        LOG.error("backend check failed: %s", exc)
        return BackendProbe(status=DOWN, error=str(exc))
    return BackendProbe(status=UP, newest_event=newest)


@dataclass(frozen=True)
class Health:
    generated_at: datetime
    now: datetime
    probe: BackendProbe
    backend_name: str = ""
    fingerprints: int = 0
    load_errors: tuple[str, ...] = ()
    #: (bug, message): fingerprints the backend rejected.
    query_errors: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = field(default=())
    #: Start of the report window (for :attr:`no_data_in_window`).
    window_start: datetime | None = None

    @property
    def status(self) -> str:
        return self.probe.status

    @property
    def newest_event(self) -> datetime | None:
        return self.probe.newest_event

    @property
    def lag(self) -> timedelta | None:
        return lag(self.now, self.probe.newest_event)

    @property
    def lag_text(self) -> str:
        return humanize_delta(self.lag)

    @property
    def lagging(self) -> bool:
        value = self.lag
        return value is None or value > LAG_WARNING

    @property
    def no_data_in_window(self) -> bool:
        """The backend answered, but its newest event is older than the window (or it is empty).

        Every count of the pages is then zero; they say so in a banner.
        """
        if not self.probe.up or self.window_start is None:
            return False
        newest = self.probe.newest_event
        return newest is None or newest < self.window_start

    @property
    def data_end(self) -> datetime | None:
        """The UTC midnight after the newest event: a ``--now`` whose window holds the newest data."""
        newest = self.probe.newest_event
        return None if newest is None else floor_time(newest, DAY) + DAY

    @property
    def failed_fingerprints(self) -> int:
        return len(self.load_errors) + len(self.query_errors)

    @property
    def ok(self) -> bool:
        return self.probe.up and not self.failed_fingerprints

    def as_json(self) -> dict[str, Any]:
        newest = self.probe.newest_event
        value = self.lag
        return {
            "generated_at": self.generated_at.isoformat(),
            "now": to_epoch_ms(self.now),
            "backend": self.backend_name,
            "status": self.status,
            "backend_error": self.probe.error,
            "last_indexed": to_epoch_ms(newest) if newest is not None else None,
            "behind": int(value.total_seconds() * 1000) if value is not None else None,
            "fingerprints": self.fingerprints,
            "load_errors": list(self.load_errors),
            "query_errors": [{"bug": b, "error": e} for b, e in self.query_errors],
            "warnings": list(self.warnings),
        }


def describe_load_errors(errors: Sequence[FingerprintError | str]) -> tuple[str, ...]:
    """The load errors as published pages show them: file names, not server paths."""
    return tuple(e.describe(Path(e.path).name) if isinstance(e, FingerprintError) else str(e) for e in errors)


def public_warnings(load_result: LoadResult) -> tuple[str, ...]:
    """The loader's warnings with each fingerprint file named by its file name (no server paths)."""
    out = []
    for w in load_result.warnings:
        for fp in load_result.fingerprints:
            if fp.path is not None and w.startswith(f"{fp.path}: "):
                w = fp.path.name + w[len(str(fp.path)) :]
                break
        out.append(w)
    return tuple(out)
