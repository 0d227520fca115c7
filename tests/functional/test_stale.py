"""``stale`` and :func:`find_returning` against a real embedded store.

Bug statuses come from the real offline tracker (``[bugs] bugs_file``).
Expected verdicts and build lists are derived from the generated history.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from elastic_recheck.adapters.launchpad.trackers import OfflineTracker
from elastic_recheck.cli.main import cli
from elastic_recheck.core.fingerprint_loading import load_fingerprints
from elastic_recheck.core.fingerprints import Fingerprint
from elastic_recheck.ports.bugs import BugInfo, BugTask
from elastic_recheck.report.stale_fingerprints import (
    ACTIVE,
    CHECK,
    DEFAULT_QUIET_DAYS,
    DEFAULT_RETURNING_DAYS,
    KEEP,
    REMOVE,
    find_returning,
    find_stale,
)
from tests.fixtures.job_docs import job_docs

NOW = datetime(2024, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Case:
    bug: str
    message: str
    #: Days before NOW at which a failed voting build logged the message.
    failed_days_ago: tuple[float, ...] = ()
    #: ... and successful builds.
    passed_days_ago: tuple[float, ...] = ()
    status: str | None = None  # in the bugs file (None: not listed)
    extra_yaml: str = ""
    nonvoting_days_ago: tuple[float, ...] = ()


CASES: tuple[Case, ...] = (
    Case("1100001", "quiet fixed bug message", failed_days_ago=(40.0,), status="Fix Released"),
    Case("1100002", "quiet mirror failure message", failed_days_ago=(30.0,), status="Fix Released", extra_yaml="suppress-graph: true\n"),
    Case("1100003", "quiet open bug message", failed_days_ago=(20.0,), status="Confirmed"),
    Case("1100004", "quiet unknown bug message", failed_days_ago=(25.0,)),
    Case("1100005", "active open bug message", failed_days_ago=(1.0, 2.5), status="In Progress"),
    # Resolved in the YAML on day -8; failed builds after that: it came back.
    Case("1100006", "came back after resolved message", failed_days_ago=(12.0, 5.0, 0.5), passed_days_ago=(3.0,),
         extra_yaml="resolved_at: 2024-05-24\n"),
    # Resolved on day -8, hits only before: quiet and removable, not returning.
    Case("1100007", "fixed for good message", failed_days_ago=(20.0, 16.0), extra_yaml="resolved_at: 2024-05-24\n"),
    # Tracker says Fix Released (no date): recent failed builds count as returning.
    Case("1100008", "released but still failing message", failed_days_ago=(3.0, 30.0), status="Fix Released"),
    Case("1100009", "won't fix quiet message", status="Won't Fix"),
    # Only non-voting builds after resolution: not counted (no allow-nonvoting).
    Case("1100010", "nonvoting only message", nonvoting_days_ago=(2.0,), extra_yaml="resolved_at: 2024-05-20\n"),
)


def _docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    n = 0
    for case in CASES:
        runs = [(d, "FAILURE", True) for d in case.failed_days_ago]
        runs += [(d, "SUCCESS", True) for d in case.passed_days_ago]
        runs += [(d, "FAILURE", False) for d in case.nonvoting_days_ago]
        for days_ago, status, voting in runs:
            n += 1
            docs += job_docs(case.bug, case.message, NOW - timedelta(days=days_ago), n, status=status, voting=voting)
    return docs


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    path = tmp_path_factory.mktemp("stale") / "store.db"
    store = EmbeddedStore(path)
    store.add_documents(_docs())
    store.close()
    return path


@pytest.fixture
def store(store_path: Path) -> Iterator[Any]:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    s = EmbeddedStore(store_path)
    yield s
    s.close()


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tree")
    queries = root / "queries"
    queries.mkdir()
    lines = []
    for c in CASES:
        (queries / f"{c.bug}.yaml").write_text(
            f'query: >-\n  message:"{c.message}" AND tags:"console"\n{c.extra_yaml}', encoding="utf-8"
        )
        if c.status is not None:
            lines.append(f'"{c.bug}": {{title: "bug {c.bug}", status: "{c.status}"}}')
    bugs_file = root / "bugs.yaml"
    bugs_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return queries, bugs_file


def fingerprints(queries: Path) -> list[Fingerprint]:
    result = load_fingerprints(queries)
    assert not result.errors
    return result.fingerprints


def resolved_at(case: Case) -> datetime | None:
    for line in case.extra_yaml.splitlines():
        if line.startswith("resolved_at:"):
            return datetime.fromisoformat(line.split(":", 1)[1].strip()).replace(tzinfo=UTC)
    return None


def expected_returning(case: Case) -> list[float]:
    """Days-ago of the failed voting builds after the resolution (newest first); [] if not resolved."""
    since = resolved_at(case)
    if since is None and case.status == "Fix Released":
        since = NOW - timedelta(days=DEFAULT_RETURNING_DAYS)
    if since is None:
        return []
    return sorted(d for d in case.failed_days_ago if NOW - timedelta(days=d) >= since)


def expected_verdict(case: Case) -> str:
    hit_days = case.failed_days_ago + case.passed_days_ago
    if any(d < DEFAULT_QUIET_DAYS for d in hit_days):
        return ACTIVE
    if "suppress-graph: true" in case.extra_yaml:
        return KEEP
    if case.status in ("Confirmed", "In Progress", "New", "Triaged"):
        return KEEP
    if case.status in ("Fix Released", "Won't Fix", "Invalid") or resolved_at(case):
        return REMOVE
    return CHECK


def test_find_returning(store: Any, tree: tuple[Path, Path]) -> None:
    queries, bugs_file = tree
    fps = fingerprints(queries)
    bugs = OfflineTracker(fps, bugs_file).get_many(fp.bug for fp in fps)
    got = find_returning(store, fps, bugs, NOW)
    expected = {c.bug: expected_returning(c) for c in CASES if expected_returning(c)}
    assert {r.bug: [round((NOW - b.first_seen) / DAY, 3) for b in r.builds] for r in got} == expected
    by_bug = {r.bug: r for r in got}
    assert by_bug["1100006"].date_known is True
    assert by_bug["1100006"].since == resolved_at(CASES[5])
    assert by_bug["1100008"].date_known is False
    # Newest hit first across bugs.
    newest = [r.builds[0].last_seen for r in got]
    assert newest == sorted(newest, reverse=True)


def test_find_returning_without_tracker_uses_yaml_only(store: Any, tree: tuple[Path, Path]) -> None:
    fps = fingerprints(tree[0])
    got = {r.bug for r in find_returning(store, fps, {}, NOW)}
    assert got == {c.bug for c in CASES if resolved_at(c) and expected_returning(c)}


def test_find_stale_verdicts(store: Any, tree: tuple[Path, Path]) -> None:
    queries, bugs_file = tree
    fps = fingerprints(queries)
    bugs = OfflineTracker(fps, bugs_file).get_many(fp.bug for fp in fps)
    report = find_stale(store, fps, bugs, NOW)
    assert {e.bug: e.verdict for e in report.entries} == {c.bug: expected_verdict(c) for c in CASES}
    by_bug = {e.bug: e for e in report.entries}
    for c in CASES:
        e = by_bug[c.bug]
        hit_days = c.failed_days_ago + c.passed_days_ago
        if e.verdict != ACTIVE:
            newest = min(hit_days) if hit_days else None
            if newest is None:
                assert e.last_hit is None and "no hit" in e.reason
            else:
                assert e.last_hit is not None
                assert abs((NOW - e.last_hit) / DAY - newest) < 0.01
    assert {r.bug for r in report.returning} == {c.bug for c in CASES if expected_returning(c)}


def test_stale_command_json_and_text(store_path: Path, tree: tuple[Path, Path], tmp_path: Path) -> None:
    queries, bugs_file = tree
    config = tmp_path / "er.conf"
    config.write_text(f"[bugs]\ntracker = offline\nbugs_file = {bugs_file}\n", encoding="utf-8")
    base = ["-c", str(config), "--store", str(store_path), "stale", "--queries", str(queries), "--now", NOW.isoformat()]
    result = CliRunner().invoke(cli, [*base, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {f["bug"]: f["verdict"] for f in data["fingerprints"]} == {c.bug: expected_verdict(c) for c in CASES}
    assert data["counts"][REMOVE] == sum(1 for c in CASES if expected_verdict(c) == REMOVE)
    ret = {r["bug"]: r for r in data["returning"]}
    assert ret["1100006"]["failed_builds"] == len(expected_returning(CASES[5]))
    assert all(b["build_status"] == "FAILURE" for r in data["returning"] for b in r["builds"])

    text = CliRunner().invoke(cli, base).stdout
    assert "Removal candidates" in text and "Resolved bugs that came back" in text
    assert "1100006" in text and "since 2024-05-24" in text


def test_days_option_changes_quietness(store: Any, tree: tuple[Path, Path]) -> None:
    fps = fingerprints(tree[0])
    short = {e.bug: e.verdict for e in find_stale(store, fps, {}, NOW, days=0.25).entries}
    # With a 6-hour window every fingerprint is quiet: none is active.
    assert ACTIVE not in short.values()
    long = {e.bug: e.verdict for e in find_stale(store, fps, {}, NOW, days=60).entries}
    assert {b for b, v in long.items() if v == ACTIVE} == {
        c.bug for c in CASES if c.failed_days_ago or c.passed_days_ago
    }


@pytest.mark.parametrize(("fixed_days_ago", "expected"), [(20.0, [3.0]), (40.0, [3.0, 30.0]), (2.0, [])])
def test_find_returning_uses_the_trackers_fix_date(
    store: Any, tree: tuple[Path, Path], fixed_days_ago: float, expected: list[float]
) -> None:
    """A Fix Released bug whose tracker knows when (Launchpad's
    ``date_fix_released`` of the last released task): hits after that date
    count, and the date is reported as known."""
    fps = [fp for fp in fingerprints(tree[0]) if fp.bug == "1100008"]
    fixed = NOW - timedelta(days=fixed_days_ago)
    info = BugInfo(
        bug="1100008", url="https://bugs.launchpad.net/bugs/1100008", status="Fix Released",
        tasks=(BugTask("nova", "Fix Released", "High", "nova", fix_released_at=fixed - timedelta(days=1)),
               BugTask("neutron", "Fix Released", "High", "neutron", fix_released_at=fixed)),
    )
    assert info.fixed_at == fixed
    got = find_returning(store, fps, {"1100008": info}, NOW)
    assert [[round((NOW - b.first_seen) / DAY, 3) for b in r.builds] for r in got] == ([expected] if expected else [])
    if got:
        assert got[0].date_known is True and got[0].since == fixed


def test_fix_date_is_unknown_when_a_released_task_has_none() -> None:
    dated = BugTask("nova", "Fix Released", "High", fix_released_at=NOW)
    undated = BugTask("neutron", "Fix Released", "High")
    assert BugInfo(bug="1", url="u", status="Fix Released", tasks=(dated, undated)).fixed_at is None
    assert BugInfo(bug="1", url="u", status="Confirmed", tasks=(dated, BugTask("x", "Confirmed"))).fixed_at is None
