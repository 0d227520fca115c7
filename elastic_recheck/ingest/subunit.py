"""Subunit v2 streams -> per-test results (:class:`~elastic_recheck.ports.loading.TestResult`)."""

from __future__ import annotations

from datetime import datetime
from typing import IO

from elastic_recheck.ports.loading import TestResult

SUBUNIT_SUFFIXES = (".subunit", ".subunit.gz")


def is_subunit(name: str) -> bool:
    return name == "testrepository.subunit" or name.endswith(SUBUNIT_SUFFIXES)


def read_subunit(fh: IO[bytes]) -> list[TestResult]:
    """Final per-test statuses of a subunit v2 stream (``success``, ``fail``, ``skip``...)."""
    import subunit  # python-subunit (untyped)
    import testtools

    statuses: dict[str, str] = {}
    starts: dict[str, datetime] = {}
    ends: dict[str, datetime] = {}

    class _Collector(testtools.StreamResult):
        def status(
            self,
            test_id: str | None = None,
            test_status: str | None = None,
            test_tags: set[str] | None = None,
            runnable: bool = True,
            file_name: str | None = None,
            file_bytes: bytes | None = None,
            eof: bool = False,
            mime_type: str | None = None,
            route_code: str | None = None,
            timestamp: datetime | None = None,
        ) -> None:
            if not test_id or not test_status:
                return
            ts = timestamp
            if test_status == "inprogress":
                if ts is not None:
                    starts[test_id] = ts
                return
            if test_status == "exists":
                statuses.setdefault(test_id, "exists")
                return
            statuses[test_id] = test_status
            if ts is not None:
                ends[test_id] = ts

    stream = subunit.ByteStreamToStreamResult(fh, non_subunit_name="stdout")
    result = _Collector()
    result.startTestRun()
    stream.run(result)
    result.stopTestRun()
    out = []
    for test_id, status in statuses.items():
        duration = None
        if test_id in starts and test_id in ends:
            duration = (ends[test_id] - starts[test_id]).total_seconds()
        out.append(TestResult(test_id=test_id, status=status, duration=duration))
    return out
