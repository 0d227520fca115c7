"""The pure impact computations: which failures a recheck answered, counts per bug."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from elastic_recheck.core.impact import attribute_rechecks, bug_impact, runs_by_job, unexplained_rechecks
from elastic_recheck.core.rechecks import Recheck, is_recheck_comment, parse_recheck
from elastic_recheck.core.search_types import BuildSummary

T = datetime(2026, 11, 19, tzinfo=UTC)


def build(uuid: str, change: str, ps: str, end_min: int, status: str = "FAILURE", queue: str = "check",
          job: str = "tempest", dur_min: int = 60, buildset: str | None = None) -> BuildSummary:
    fields = {"build_change": change, "build_patchset": ps, "build_status": status, "build_queue": queue,
              "build_name": job, "build_set": buildset or f"set-{change}-{ps}-{end_min}"}
    end = T + timedelta(minutes=end_min)
    return BuildSummary(uuid=uuid, fields=fields, first_seen=end - timedelta(minutes=dur_min), last_seen=end)


def test_recheck_comment_forms() -> None:
    assert is_recheck_comment("Patch Set 3:\n\nrecheck")
    assert is_recheck_comment("Patch Set 3:\n\n> Build failed\n\nReVerify please")
    assert not is_recheck_comment("Patch Set 3:\n\n> recheck\n\nno")
    assert not is_recheck_comment("Patch Set 3:\n\nplease recheck")
    assert not is_recheck_comment("rechecking is not it")
    event = {"type": "comment-added", "change": {"number": "12"}, "patchSet": {"number": "3"},
             "author": {"username": "zuul"}, "comment": "recheck", "eventCreatedOn": 1}
    assert parse_recheck(event) is None  # CI accounts' comments are not rechecks
    event["author"] = {"name": "Alice"}
    assert parse_recheck(event) == Recheck(at=datetime.fromtimestamp(1, tz=UTC), change="12", patchset="3", author="Alice")


def test_a_recheck_answers_the_failures_since_the_previous_one() -> None:
    builds = [
        build("a", "1", "1", 10),   # answered by the first recheck
        build("b", "1", "1", 50),   # by the second
        build("c", "1", "1", 90),   # after both: nobody's yet
        build("d", "1", "2", 20),   # another patch set
        build("e", "1", "1", 5, status="SUCCESS"),
    ]
    rechecks = [Recheck(T + timedelta(minutes=30), "1", "1", "x"), Recheck(T + timedelta(minutes=60), "1", "1", "y")]
    causes = attribute_rechecks(rechecks, builds, {"a": ["bug1"], "d": ["bug2"]})
    assert [[b.uuid for b in c.failed] for c in causes] == [["a"], ["b"]]
    assert [c.bugs for c in causes] == [("bug1",), ()]
    assert [c.recheck.author for c in unexplained_rechecks(causes)] == ["y"]
    # a recheck on a patch set with no failed build in the store is neither explained nor unexplained
    lone = attribute_rechecks([Recheck(T, "9", "1")], builds, {})
    assert lone[0].failed == () and not lone[0].unexplained


def test_bug_impact_counts() -> None:
    failed = [build("a", "1", "1", 10, queue="gate", buildset="s1", dur_min=30),
              build("b", "2", "1", 11, queue="gate", buildset="s1"),
              build("c", "2", "1", 24 * 60 + 5, job="grenade")]
    all_builds = [*failed, build("z", "3", "1", 5, status="SUCCESS"), build("y", "4", "1", 6, status="SUCCESS", job="grenade")]
    causes = attribute_rechecks([Recheck(T + timedelta(minutes=20), "1", "1")], all_builds, {"a": ["B"], "b": ["B"]})
    imp = bug_impact("B", failed, whole={b.uuid: b for b in all_builds}, runs_per_job=runs_by_job(all_builds),
                     causes=causes, gate_queue="gate", day_start=T + timedelta(hours=24), zuul_seconds={"c": 7200.0})
    w = imp.window
    assert (w.failed_builds, w.changes, w.rechecks, w.gate_resets) == (3, 2, 1, 1)
    assert w.hours == (30 + 60 + 120) / 60  # c timed by Zuul: 2 h
    assert (imp.day.failed_builds, imp.day.hours, imp.day.rechecks) == (1, 2.0, 0)
    assert imp.zuul_timed == 1
    assert [(j.job, j.failed, j.runs) for j in imp.jobs] == [("tempest", 2, 3), ("grenade", 1, 2)]
