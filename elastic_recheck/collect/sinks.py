"""Where a fetched build's documents go: the embedded store or a cluster (:class:`Sink`).

Both sinks run the same ingest pipeline as ``elastic-recheck ingest``
(:func:`elastic_recheck.ingest.files.iter_build_dir`) over the build's
directory; the cluster sink writes through the one bulk writer
(:class:`~elastic_recheck.adapters.elastic.bulk.BulkWriter`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from elastic_recheck.collect.fetch import FetchResult
from elastic_recheck.core.errors import BackendError
from elastic_recheck.core.zuul_build import ZuulBuild


class Sink(Protocol):
    """Where a fetched build's documents go."""

    target: str

    def write(self, fetched: FetchResult) -> tuple[int, int]:
        """Ingest the build directory; returns ``(documents, test results)``."""
        ...

    def close(self) -> None: ...


def extra_fields(build: ZuulBuild) -> dict[str, Any]:
    """ci-log-processing fields the ingest pipeline's BuildInfo does not carry."""
    extra: dict[str, Any] = {"build_node": "zuul-executor"}
    if build.zuul_executor:
        extra["zuul_executor"] = build.zuul_executor
    if build.hosts_id:
        extra["hosts_id"] = list(build.hosts_id)
    return extra


def iter_build_documents(fetched: FetchResult, tests: list[Any], keep_debug: bool = False) -> Iterator[dict[str, Any]]:
    """Documents of a fetched build, from the shared ingest pipeline, each with a stable ``id``
    (:func:`~elastic_recheck.core.documents.stable_ids`).

    Subunit results are appended to ``tests``.
    """
    from elastic_recheck.core.documents import stable_ids
    from elastic_recheck.ingest.build_dir import iter_build_dir
    from elastic_recheck.ingest.build_info import BuildInfo

    extra = extra_fields(fetched.build)

    def docs() -> Iterator[dict[str, Any]]:
        for doc in iter_build_dir(fetched.build_dir, BuildInfo.from_zuul(fetched.build), keep_debug=keep_debug, on_tests=tests.extend):
            for key, value in extra.items():
                doc.setdefault(key, value)
            yield doc

    return stable_ids(docs())


class EmbeddedSink:
    """Writes into the embedded store (one writer at a time)."""

    target = "embedded"

    def __init__(self, store: Any, keep_debug: bool = False, batch_size: int = 5000) -> None:
        self.store = store
        self.keep_debug = keep_debug
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def write(self, fetched: FetchResult) -> tuple[int, int]:
        tests: list[Any] = []
        with self._lock:
            stored = self.store.add_documents(
                iter_build_documents(fetched, tests, keep_debug=self.keep_debug), batch_size=self.batch_size
            )
            if tests:
                self.store.record_test_results(fetched.build.uuid, tests)
        docs = stored if isinstance(stored, int) else int(getattr(stored, "docs", 0))
        return docs, len(tests)

    def close(self) -> None:
        return None


class ClusterSink(EmbeddedSink):
    """Writes into daily indices of Elasticsearch or OpenSearch through the one bulk
    writer (:class:`~elastic_recheck.adapters.elastic.bulk.BulkWriter`, the one ``ingest`` uses).

    A document the cluster rejects fails the build (it is tried again on a later pass).
    """

    def __init__(self, writer: Any, keep_debug: bool = False, batch_size: int = 2000) -> None:
        super().__init__(writer, keep_debug=keep_debug, batch_size=batch_size)
        self.target = str(writer.target)

    def write(self, fetched: FetchResult) -> tuple[int, int]:
        tests: list[Any] = []
        with self._lock:
            stats = self.store.add_documents(
                iter_build_documents(fetched, tests, keep_debug=self.keep_debug), batch_size=self.batch_size
            )
        if stats.bad_lines:
            why = stats.bad_line_samples[0][1] if stats.bad_line_samples else "?"
            raise BackendError(f"bulk load into {self.target}: {stats.bad_lines} documents rejected, e.g. {why}")
        if tests:
            self.store.record_test_results(fetched.build.uuid, tests)
        return int(stats.docs), len(tests)

    def close(self) -> None:
        self.store.close()


if TYPE_CHECKING:
    _sinks: tuple[type[Sink], ...] = (EmbeddedSink, ClusterSink)  # mypy checks both against the Protocol
