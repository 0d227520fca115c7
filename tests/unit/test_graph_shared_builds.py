"""collect_bug_stats keeps one copy of a build's fields, uuid and times for all fingerprints.

A backend's ``builds()`` answers with fresh objects on every call (the
embedded store decodes a shape's JSON per build and call); the report keeps
them for every fingerprint, so copies would make its memory grow with
builds x fingerprints. The shared copies must be equal to what the backend
said: nothing of the report's output may change.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.core.search_types import Bucket, BuildSummary, QuerySpec, SearchResult
from elastic_recheck.report.graph import collect_bug_stats
from elastic_recheck.report.window import ReportWindow

NOW = datetime(2026, 11, 20, tzinfo=UTC)
T = NOW - timedelta(hours=3)


def _build(uuid: str, status: str, first: datetime, last: datetime, docs: int, **extra: Any) -> BuildSummary:
    fields = {"build_status": status, "voting": True, "build_name": "tempest-full", "log_url": f"https://logs/{uuid}/", **extra}
    return BuildSummary(uuid=uuid, fields=fields, first_seen=first, last_seen=last, docs=docs)


class CopyingBackend:
    """Answers every ``builds()`` call with deep copies, like a backend that decodes per call."""

    def __init__(self, answers: dict[str, list[BuildSummary]]) -> None:
        self.answers = answers

    def builds(self, spec: QuerySpec, limit: int | None = None, **_: Any) -> list[BuildSummary]:
        return copy.deepcopy(self.answers[spec.queries[0]])

    def build_histogram(self, spec: QuerySpec, interval: timedelta, **_: Any) -> list[Bucket]:
        return []

    def search(self, spec: QuerySpec, size: int = 10, **_: Any) -> SearchResult:
        raise AssertionError("no samples asked for")


def test_fingerprints_share_each_builds_fields_uuid_and_equal_times() -> None:
    plus_one = timezone(timedelta(hours=1))
    answers = {
        "q1": [_build("b1", "FAILURE", T, T + timedelta(minutes=5), 3), _build("b2", "SUCCESS", T, T, 1)],
        "q2": [_build("b1", "FAILURE", T, T + timedelta(minutes=9), 7)],
        # the same instant in another zone prints differently: it must stay as it is
        "q3": [_build("b1", "FAILURE", T.astimezone(plus_one), T + timedelta(minutes=9), 7)],
        # a build whose fields differ between answers keeps its own
        "q4": [_build("b2", "SUCCESS", T, T, 1, build_branch="stable")],
    }
    backend = CopyingBackend(answers)
    fps = [Fingerprint(bug=f"{i}", query=q) for i, q in enumerate(answers)]
    stats = collect_bug_stats(backend, fps, ReportWindow(now=NOW, days=10))  # type: ignore[arg-type]

    # every summary equals the backend's (same values, same zones), and so the report's output
    for s, q in zip(stats, answers, strict=True):
        assert s.error is None
        assert sorted(s.builds, key=lambda b: b.uuid) == sorted(answers[q], key=lambda b: b.uuid)
        for got in s.builds:
            want = next(b for b in answers[q] if b.uuid == got.uuid)
            assert got.first_seen is not None and want.first_seen is not None
            assert got.first_seen.isoformat() == want.first_seen.isoformat()
    b1 = [next(b for b in s.builds if b.uuid == "b1") for s in stats[:3]]
    assert b1[0].fields is b1[1].fields is b1[2].fields
    assert b1[0].uuid is b1[1].uuid
    assert b1[0].first_seen is b1[1].first_seen  # equal times: one object
    assert b1[1].last_seen is b1[2].last_seen
    assert b1[2].first_seen is not b1[0].first_seen and b1[2].first_seen.utcoffset() == timedelta(hours=1)
    b2 = [next(b for b in s.builds if b.uuid == "b2") for s in (stats[0], stats[3])]
    assert b2[0].fields is not b2[1].fields
    assert b2[1].fields["build_branch"] == "stable" and "build_branch" not in b2[0].fields
