"""``backtest`` against a real embedded store holding a generated history.

The expected numbers are computed from the generated builds in Python (which
builds contain which message, their status, queue, voting flag and time),
never typed in.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from elastic_recheck.cli.main import cli
from elastic_recheck.contrib.backtest import (
    TOO_BROAD_SUCCESS_PERCENT,
    changed_fingerprints,
    format_gerrit,
    run_backtest,
)
from elastic_recheck.core.config import from_mapping
from elastic_recheck.core.fingerprints import load_file
from elastic_recheck.report.window import ReportWindow

NOW = datetime(2024, 3, 11, tzinfo=UTC)
DAYS = 10.0

MSG_NEW = "libvirtd crashed while attaching the volume"
MSG_OLD = "Timed out waiting for a reply to message ID"
MSG_NOISE = "Connection reset by peer while uploading"  # in many successful builds

JOBS = ("tempest-full", "nova-live-migration", "neutron-grenade", "cinder-tempest")
PROJECTS = ("openstack/nova", "openstack/neutron", "openstack/cinder")
PROVIDERS = ("rax-dfw", "ovh-gra1", "vexxhost")


@dataclass
class Build:
    uuid: str
    name: str
    project: str
    provider: str
    status: str
    queue: str
    voting: bool
    start: datetime
    messages: list[str] = field(default_factory=list)

    def in_window(self) -> bool:
        return NOW - timedelta(days=DAYS) <= self.start < NOW


def generate(seed: int = 10, n: int = 160) -> list[Build]:
    rng = random.Random(seed)
    builds = []
    for i in range(n):
        start = NOW - timedelta(days=12) + timedelta(minutes=rng.randrange(12 * 24 * 60 - 10))
        b = Build(
            uuid=f"{i:04d}" + f"{rng.getrandbits(112):028x}",
            name=rng.choice(JOBS),
            project=rng.choice(PROJECTS),
            provider=rng.choice(PROVIDERS),
            status=rng.choices(["SUCCESS", "FAILURE"], weights=[3, 2])[0],
            queue=rng.choice(["gate", "check"]),
            voting=rng.random() > 0.15,
            start=start,
        )
        if b.status == "FAILURE":
            if rng.random() < 0.45:
                b.messages.append(MSG_NEW)
            if rng.random() < 0.5:
                b.messages.append(MSG_OLD)
        elif rng.random() < 0.04:
            b.messages.append(MSG_NEW)  # a rare hit in a passing build
        if rng.random() < 0.6:
            b.messages.append(MSG_NOISE)
        builds.append(b)
    return builds


def docs_of(builds: list[Build]) -> list[dict[str, Any]]:
    out = []
    for b in builds:
        lines = [
            ("job-output.txt", f"Starting job {b.name}"),
            *[("job-output.txt", f"2024 ERROR {m} (attempt 1)") for m in b.messages],
            ("job-output.txt", f"Job complete, result: {b.status}"),
        ]
        for k, (filename, message) in enumerate(lines):
            out.append(
                {
                    "@timestamp": (b.start + timedelta(seconds=k)).isoformat().replace("+00:00", "Z"),
                    "message": message,
                    "tags": [filename, "console"],
                    "filename": filename,
                    "build_name": b.name,
                    "build_status": b.status,
                    "build_uuid": b.uuid,
                    "build_short_uuid": b.uuid[:7],
                    "build_change": str(100000 + int(b.uuid[:4])),
                    "build_patchset": "1",
                    "build_queue": b.queue,
                    "build_branch": "master",
                    "project": b.project,
                    "voting": "1" if b.voting else "0",
                    "node_provider": b.provider,
                    "log_url": f"https://logs.example.org/{b.uuid[:7]}/",
                }
            )
    return out


BUILDS = generate()


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    path = tmp_path_factory.mktemp("backtest") / "store.db"
    store = EmbeddedStore(path)
    store.add_documents(docs_of(BUILDS))
    store.close()
    yield path


@pytest.fixture
def store(store_path: Path) -> Iterator[Any]:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    s = EmbeddedStore(store_path)
    yield s
    s.close()


def fingerprint_text(message: str) -> str:
    return f'query: >-\n  message:"{message}" AND\n  tags:"console"\n'


@pytest.fixture
def queries(tmp_path: Path) -> Path:
    d = tmp_path / "queries"
    d.mkdir()
    (d / "1000001.yaml").write_text(fingerprint_text(MSG_OLD), encoding="utf-8")
    return d


def hits(message: str) -> list[Build]:
    """Voting builds in the window whose logs contain ``message`` (the trend pages' rule)."""
    return [b for b in BUILDS if b.in_window() and b.voting and message in b.messages]


def too_broad(message: str) -> bool:
    expected = hits(message)
    return 100 * sum(1 for b in expected if b.status == "SUCCESS") / len(expected) > TOO_BROAD_SUCCESS_PERCENT


def failed_gate() -> list[Build]:
    return [b for b in BUILDS if b.in_window() and b.voting and b.queue == "gate" and b.status == "FAILURE"]


def test_numbers_match_the_generated_history(store: Any, queries: Path, tmp_path: Path) -> None:
    new = tmp_path / "2000002.yaml"
    new.write_text(fingerprint_text(MSG_NEW), encoding="utf-8")
    report = run_backtest(
        store,
        [load_file(new)],
        [load_file(queries / "1000001.yaml")],
        ReportWindow(now=NOW, days=DAYS),
        from_mapping({}),
    )
    (r,) = report.results
    expected = hits(MSG_NEW)
    failed = [b for b in expected if b.status == "FAILURE"]
    passed = [b for b in expected if b.status == "SUCCESS"]
    # The generated history must exercise both kinds of hits, a fingerprint
    # that is not too broad, and builds only the new fingerprint explains.
    assert failed and passed and not too_broad(MSG_NEW)
    assert (r.failed, r.successful) == (len(failed), len(passed))
    assert r.precision == round(100 * len(failed) / len(expected), 1)
    assert r.too_broad == (100 * len(passed) / len(expected) > TOO_BROAD_SUCCESS_PERCENT)
    assert {t.value: t.builds for t in r.breakdown("build_name")} == {
        j: sum(1 for b in expected if b.name == j) for j in {b.name for b in expected}
    }
    assert len(r.breakdown("node_provider")) == len({b.provider for b in expected})
    old_hits = {b.uuid for b in hits(MSG_OLD)}
    both = [b for b in failed if b.uuid in old_hits]
    assert r.overlap == ({"1000001": len(both)} if both else {})
    assert r.overlap_builds == len(both)
    gate = {b.uuid for b in failed_gate()}
    assert r.rate is not None
    assert r.rate.failed == len(gate)
    assert r.rate.before == len(gate & old_hits)
    assert r.rate.after == len(gate & (old_hits | {b.uuid for b in expected}))
    assert set(r.rate.newly_explained) == (gate & {b.uuid for b in expected}) - old_hits
    assert r.rate.newly_explained
    assert r.flags == []


def test_too_broad_and_exit_code(store_path: Path, queries: Path, tmp_path: Path) -> None:
    noisy = tmp_path / "3000003.yaml"
    noisy.write_text(fingerprint_text(MSG_NOISE), encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        ["--store", str(store_path), "backtest", "--queries", str(queries), "--now", NOW.isoformat(),
         "--days", str(DAYS), "--format", "json", str(noisy)],
    )  # fmt: skip
    expected = hits(MSG_NOISE)
    passed = [b for b in expected if b.status == "SUCCESS"]
    assert 100 * len(passed) / len(expected) > TOO_BROAD_SUCCESS_PERCENT
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    (r,) = data["results"]
    assert r["too_broad"] is True and "too-broad" in r["flags"]
    assert r["successful_builds"] == len(passed)
    assert r["failed_builds"] == len(expected) - len(passed)


def test_gerrit_comment(store: Any, queries: Path, tmp_path: Path) -> None:
    new = tmp_path / "2000002.yaml"
    new.write_text(fingerprint_text(MSG_NEW), encoding="utf-8")
    noisy = tmp_path / "3000003.yaml"
    noisy.write_text(fingerprint_text(MSG_NOISE), encoding="utf-8")
    report = run_backtest(
        store,
        [load_file(new), load_file(noisy)],
        [load_file(queries / "1000001.yaml")],
        ReportWindow(now=NOW, days=DAYS),
        from_mapping({}),
    )
    body = format_gerrit(report)
    failed_new = sum(1 for b in hits(MSG_NEW) if b.status == "FAILURE")
    assert f"* Failed builds hit: {failed_new}" in body
    assert body.splitlines()[2].startswith("Needs attention: ")
    assert "3000003 (too-broad)" in body.splitlines()[2]
    assert ("2000002 (too-broad)" in body.splitlines()[2]) == too_broad(MSG_NEW)
    assert "TOO BROAD" in body
    # Plain text for Gerrit: no markdown headings or tables, bullet lines start with "* ".
    assert not any(line.startswith(("#", "|")) for line in body.splitlines())
    assert "All together" in body


def test_text_format_via_cli(store_path: Path, queries: Path, tmp_path: Path) -> None:
    new = tmp_path / "2000002.yaml"
    new.write_text(fingerprint_text(MSG_NEW), encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        ["--store", str(store_path), "backtest", "--queries", str(queries), "--now", NOW.isoformat(), str(new)],
    )
    failed_new = sum(1 for b in hits(MSG_NEW) if b.status == "FAILURE")
    assert f"Failed builds hit: {failed_new}" in result.stdout
    assert "Gate classification rate:" in result.stdout


def test_unloadable_candidate_is_reported(store_path: Path, queries: Path, tmp_path: Path) -> None:
    bad = tmp_path / "4000004.yaml"
    bad.write_text('query: message:"unterminated\n', encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        ["--store", str(store_path), "backtest", "--queries", str(queries), "--now", NOW.isoformat(),
         "--format", "json", str(bad)],
    )  # fmt: skip
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["results"] == []
    assert [e["file"] for e in data["load_errors"]] == [str(bad)]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false", *args],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip


def test_git_diff_selects_added_and_modified(store_path: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    q = repo / "queries"
    q.mkdir(parents=True)
    git(repo, "init", "-q")
    (q / "1000001.yaml").write_text(fingerprint_text(MSG_OLD), encoding="utf-8")
    (q / "2000002.yaml").write_text(fingerprint_text("this never appears anywhere"), encoding="utf-8")
    (q / "5000005.yaml").write_text(fingerprint_text(MSG_NOISE), encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD").strip()
    # Since base: one fingerprint added and committed, one changed (not
    # committed yet), one new and untracked, one deleted (not backtested).
    (q / "6000006.yaml").write_text(fingerprint_text(MSG_NEW + " again"), encoding="utf-8")
    (repo / "README").write_text("not a fingerprint\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "add one")
    (q / "2000002.yaml").write_text(fingerprint_text(MSG_NEW), encoding="utf-8")
    (q / "7000007.yaml").write_text(fingerprint_text(MSG_OLD + " twice"), encoding="utf-8")
    (q / "5000005.yaml").unlink()
    changed = changed_fingerprints(base, q)
    assert sorted((c.path.name, c.status) for c in changed) == [
        ("2000002.yaml", "M"),
        ("6000006.yaml", "A"),
        ("7000007.yaml", "A"),
    ]
    (modified,) = [c for c in changed if c.status == "M"]
    assert modified.old_text is not None and "never appears" in modified.old_text

    result = CliRunner().invoke(
        cli,
        ["--store", str(store_path), "backtest", "--git-diff", base, "--queries", str(q), "--now", NOW.isoformat(),
         "--format", "json"],
    )  # fmt: skip
    data = json.loads(result.stdout)
    by_bug = {r["bug"]: r for r in data["results"]}
    assert set(by_bug) == {"2000002", "6000006", "7000007"}
    assert by_bug["2000002"]["changed"] is True and by_bug["6000006"]["changed"] is False
    # The old version hit nothing, so what the new one explains is all new.
    gate = {b.uuid for b in failed_gate()}
    new_hits = {b.uuid for b in hits(MSG_NEW)}
    old_hits = {b.uuid for b in hits(MSG_OLD)}
    rate = by_bug["2000002"]["classification_rate"]
    assert rate["explained_before"] == len(gate & old_hits)
    assert rate["explained_after"] == len(gate & (old_hits | new_hits))


def test_git_diff_with_bad_revision(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "queries").mkdir(parents=True)
    git(repo, "init", "-q")
    result = CliRunner().invoke(
        cli, ["--store", str(tmp_path / "none.db"), "backtest", "--git-diff", "no-such-rev", "--queries", str(repo / "queries")]
    )
    assert result.exit_code == 1
    assert "git" in result.output and "no-such-rev" in result.output
    result = CliRunner().invoke(cli, ["backtest", "--git-diff", "--output=x", "--queries", str(repo / "queries")])
    assert result.exit_code != 0


def test_needs_files_or_git_diff() -> None:
    result = CliRunner().invoke(cli, ["backtest"])
    assert result.exit_code == 2


def test_window_defaults_to_the_newest_event_when_now_would_leave_it_empty(sample_store: Path) -> None:
    """The sample ends on 2026-11-20: without --now, "the last 10 days" would hold nothing."""
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    repo = Path(__file__).resolve().parents[2]
    fp = str(repo / "queries" / "1893618.yaml")
    with EmbeddedStore(sample_store) as s:
        newest = s.latest_timestamp()
    assert newest is not None and newest < datetime.now(UTC) - timedelta(days=10)
    base = ["--store", str(sample_store), "backtest", "--queries", str(repo / "queries"), "--format", "json"]
    moved = CliRunner().invoke(cli, [*base, fp])
    assert moved.exit_code == 0, moved.output
    end = newest + timedelta(seconds=1)
    assert f"the newest is from {newest:%Y-%m-%d %H:%M}Z, so the window ends there" in moved.stderr
    explicit = CliRunner().invoke(cli, [*base, "--now", end.isoformat(), fp])
    assert explicit.exit_code == 0 and explicit.stderr == ""
    assert json.loads(moved.stdout) == json.loads(explicit.stdout)
    assert json.loads(moved.stdout)["results"][0]["failed_builds"] > 0  # not "No failed build hit in the window"


def test_report_window_at_data() -> None:
    now = datetime(2026, 12, 7, tzinfo=UTC)
    window = ReportWindow(now=now, days=10)
    assert window.at_data(None) is window
    assert window.at_data(now - timedelta(days=3)) is window  # data in the window: unchanged
    moved = window.at_data(datetime(2026, 11, 19, 21, 15, tzinfo=UTC))
    assert moved.now == datetime(2026, 11, 19, 21, 15, 1, tzinfo=UTC) and moved.days == 10
