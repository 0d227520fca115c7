"""The SearchBackend port: what the core asks of any log search engine.

Two adapters implement it: :mod:`elastic_recheck.adapters.sqlite.store` (SQLite,
no server) and :mod:`elastic_recheck.adapters.elastic.backend` (Elasticsearch and
OpenSearch). One contract test suite (``tests/functional/test_backend_contract.py``)
runs against both.

The query and answer types are pure data in :mod:`elastic_recheck.core.search_types`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from elastic_recheck.core.search_types import Bucket, BuildSummary, QuerySpec, SearchResult, TermCount


class TestResultSource(Protocol):
    """The failed tests of a build: every :class:`SearchBackend` is one (its
    subunit results); :mod:`elastic_recheck.adapters.subunit2sql.results` adds
    a subunit2sql database."""

    def failed_tests(self, build_uuid: str) -> set[str] | None:
        """Ids of the tests that failed in the build; ``None``: no results known."""
        ...


@runtime_checkable
class SearchBackend(Protocol):
    """What the classifier, the bot and the report builders need of a log store.

    Implementations own their timeouts and raise :class:`BackendError` on
    failure (``retryable`` when trying again later may help).
    """

    def search(self, spec: QuerySpec, size: int = 100, newest_first: bool = False) -> SearchResult:
        """Matching documents, at most ``size`` of them, and the total count."""
        ...

    def msearch(self, specs: Sequence[QuerySpec], size: int = 1) -> list[SearchResult]:
        """Many searches in one round trip; results in the order of ``specs``.

        A query that fails on its own (e.g. a syntax error) yields a result with
        ``error`` set instead of failing the whole batch.
        """
        ...

    def count_builds(self, spec: QuerySpec) -> int:
        """Number of distinct ``build_uuid`` values among matching documents."""
        ...

    def build_histogram(self, spec: QuerySpec, interval: timedelta) -> list[Bucket]:
        """Distinct builds per time bucket (aligned to the epoch) and per ``build_status``.

        Only buckets with at least one document are returned, oldest first.
        """
        ...

    def terms(self, spec: QuerySpec, field: str, size: int = 10) -> list[TermCount]:
        """Top values of ``field`` among matching documents, by distinct builds."""
        ...

    def builds(self, spec: QuerySpec, limit: int | None = None) -> list[BuildSummary]:
        """Distinct builds among matching documents, newest ``last_seen`` first.

        Never silently truncated: ``limit=None`` returns all of them (the
        cluster adapter pages through a composite aggregation).
        """
        ...

    def latest_timestamp(self, until: datetime | None = None) -> datetime | None:
        """The newest ``@timestamp`` in the store (None when empty); with ``until``, the newest before it."""
        ...

    def indexed_files(self, build_uuid: str) -> set[str]:
        """Names (``filename`` values) of the log files of one build indexed so far."""
        ...

    def failed_tests(self, build_uuid: str) -> set[str] | None:
        """Test ids that failed in a build (from subunit results), None if unknown."""
        ...

    def ping(self) -> bool:
        """True when the backend answers."""
        ...
