"""The loading port: where ``ingest`` and ``collect`` put documents, and what a load did.

:class:`DocumentStore` is what the pipelines load into: the embedded store
(:mod:`elastic_recheck.adapters.sqlite.store`) or a cluster's bulk writer
(:class:`~elastic_recheck.adapters.elastic.bulk.BulkWriter`). A load answers
with :class:`IngestStats`; subunit streams give :class:`TestResult` records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

#: How many bad JSON lines are kept (with their line numbers) for the summary.
BAD_LINE_SAMPLES = 5


@dataclass
class IngestStats:
    """What an ingest did: counts for the final summary line."""

    docs: int = 0
    lines_read: int = 0
    lines_dropped: int = 0
    bad_lines: int = 0
    bad_line_samples: list[tuple[int, str]] = field(default_factory=list)
    files: int = 0
    files_skipped: list[str] = field(default_factory=list)
    test_results: int = 0
    seconds: float = 0.0

    def add_bad_line(self, lineno: int, why: str) -> None:
        self.bad_lines += 1
        if len(self.bad_line_samples) < BAD_LINE_SAMPLES:
            self.bad_line_samples.append((lineno, why))

    def merge(self, other: IngestStats) -> None:
        self.docs += other.docs
        self.lines_read += other.lines_read
        self.lines_dropped += other.lines_dropped
        self.bad_lines += other.bad_lines
        room = BAD_LINE_SAMPLES - len(self.bad_line_samples)
        self.bad_line_samples.extend(other.bad_line_samples[: max(room, 0)])
        self.files += other.files
        self.files_skipped.extend(other.files_skipped)
        self.test_results += other.test_results
        self.seconds += other.seconds

    def take_stored(self, stored: IngestStats) -> None:
        """What the store said of the documents it was given: how many it stored, and the ones it refused."""
        self.docs = stored.docs
        for lineno, why in stored.bad_line_samples:
            self.add_bad_line(lineno, why)
        self.bad_lines += stored.bad_lines - len(stored.bad_line_samples)

    @property
    def lines_per_second(self) -> float:
        return self.lines_read / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """The one-line summary the CLI prints at the end of an ingest."""
        parts = [
            f"{self.docs} documents stored",
            f"{self.lines_read} lines read",
            f"{self.lines_dropped} dropped",
            f"{self.bad_lines} bad",
        ]
        if self.test_results:
            parts.append(f"{self.test_results} test results")
        if self.files_skipped:
            parts.append(f"{len(self.files_skipped)} files skipped")
        parts.append(f"{self.seconds:.1f} s ({self.lines_per_second:,.0f} lines/s)")
        return ", ".join(parts)


@dataclass(frozen=True)
class TestResult:
    """The outcome of one test in a subunit stream."""

    test_id: str
    status: str
    duration: float | None = None


class DocumentStore(Protocol):
    """Where the pipelines load documents: the embedded store or a cluster's
    :class:`~elastic_recheck.adapters.elastic.bulk.BulkWriter`."""

    def add_documents(self, docs: Iterable[Mapping[str, Any]], batch_size: int = 5000) -> IngestStats: ...

    def delete_build(self, build_uuid: str, filenames: Iterable[str] | None = None) -> int: ...

    def record_test_results(self, build_uuid: str, results: Iterable[TestResult | tuple[str, str]]) -> int: ...
