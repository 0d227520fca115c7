"""The bot end to end on a real embedded store: replay, live SSH Gerrit, restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.sqlite.bot_state import BotState
from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.bot.service import Bot
from elastic_recheck.bot.settings import BotSettings
from elastic_recheck.core.events import parse_event
from elastic_recheck.core.fingerprint_loading import load_fingerprints

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample"



@pytest.fixture(scope="module")
def ground_truth() -> dict[str, dict[str, Any]]:
    data = json.loads((SAMPLE / "builds.json").read_text())
    return {b["uuid"]: b for b in data["builds"]}


def _expected_jobs(event: dict[str, Any], truth: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """What a correct bot reports for one event, from the sample's ground truth."""
    report = parse_event(event)
    assert report is not None
    out: dict[str, list[str]] = {}
    for job in report.jobs:
        if job.result != "FAILURE" or not job.voting:
            continue
        build = truth.get(job.build_uuid or "") or next(
            b for b in truth.values()
            if b["uuid"].startswith(job.build_short_uuid or "-") and str(b["change"]) == report.change
        )
        out[job.name] = sorted(build["injected_bugs"], key=int)
    return out


def _run_cli(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "elastic_recheck", *args], capture_output=True, text=True, timeout=300, **kw)


def test_replay_reports_exactly_the_injected_bugs(sample_store: Path, ground_truth: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    actions = tmp_path / "actions.jsonl"
    proc = _run_cli(
        "--store", str(sample_store), "bot", "--queries", str(REPO / "queries"),
        "--replay", str(SAMPLE / "events.jsonl"), "--dry-run", "--no-irc", "--actions-out", str(actions),
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in actions.read_text().splitlines()]
    # Every failure report with a failed voting job is processed once, duplicates dropped.
    expected: dict[tuple[str, str], dict[str, list[str]]] = {}
    for raw in (SAMPLE / "events.jsonl").read_text().splitlines():
        try:
            event = json.loads(raw)
        except json.JSONDecodeError:
            continue
        report = parse_event(event)
        if report is None or not report.voting_failed_jobs():
            continue
        expected[(report.change, report.patchset)] = _expected_jobs(event, ground_truth)
    got = {(str(a["change"]), str(a["patchset"])): {j: sorted(b, key=int) for j, b in a["jobs"].items()} for a in lines}
    assert len(lines) == len(got), "an event was reported twice"
    assert got == expected
    # The dry run printed the comments instead of posting them.
    assert "would comment on" in proc.stdout
    assert "malformed: 1" in proc.stderr
    first_bug = next(a for a in lines if any(a["jobs"].values()))
    assert "https://bugs.launchpad.net/bugs/" in first_bug["comment"]


def _event_for(ground_truth: dict[str, dict[str, Any]], bug: str, pipeline: str = "gate") -> dict[str, Any]:
    sys.path.insert(0, str(SAMPLE))
    try:
        from make_events import report_event  # the sample's own event writer
    finally:
        sys.path.pop(0)
    build = next(b for b in ground_truth.values() if bug in b["injected_bugs"] and b["pipeline"] == pipeline and b["voting"])
    return report_event([build])


def _bot(store_path: Path, state: BotState, reviewer: Any, **kw: Any) -> Bot:
    fps = load_fingerprints(REPO / "queries").fingerprints
    settings = BotSettings(deadline_s=kw.pop("deadline_s", 30.0), first_poll_s=0.05, workers=2)
    return Bot(EmbeddedStore(store_path), fps, state, settings, reviewer=reviewer, **kw)


class RecordingReviewer:
    def __init__(self) -> None:
        self.reviews: list[tuple[str, str, str]] = []

    def review(self, change: str, patchset: str, message: str) -> None:
        self.reviews.append((change, patchset, message))

    def posted(self, change: str, patchset: str, message: str) -> bool | None:
        return None  # cannot tell (what a reviewer without a query answers)


def test_duplicate_events_comment_once_and_malformed_events_are_skipped(
    sample_store: Path, ground_truth: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    reviewer = RecordingReviewer()
    bot = _bot(sample_store, BotState(tmp_path / "state.db"), reviewer)
    bot.start()
    try:
        event = _event_for(ground_truth, "1893618")
        assert bot.submit(event) is not None
        assert bot.submit(dict(event)) is None  # the same report again
        assert bot.submit({"type": "comment-added", "change": "not a mapping"}) is None
        assert bot.wait_idle(30)
    finally:
        bot.stop()
    assert len(reviewer.reviews) == 1
    change, patchset, message = reviewer.reviews[0]
    assert (change, patchset) == (str(event["change"]["number"]), str(event["patchSet"]["number"]))
    assert "https://bugs.launchpad.net/bugs/1893618" in message
    assert "End of file while reading data" in message
    assert bot.stats["duplicates"] == 1 and bot.stats["malformed"] == 1


def test_waits_for_logs_without_blocking_other_events(tmp_path: Path, ground_truth: dict[str, dict[str, Any]]) -> None:
    """An event whose logs are not indexed yet must not delay one whose logs are."""
    import gzip

    store_path = tmp_path / "store.db"
    docs = [json.loads(x) for x in gzip.open(SAMPLE / "logs.jsonl.gz", "rt")]
    late = _event_for(ground_truth, "1893618")
    ready = _event_for(ground_truth, "1927411")
    late_uuid = late["comment"].split("/build/")[1].split()[0]
    store = EmbeddedStore(store_path)
    store.add_documents(d for d in docs if d.get("build_uuid") != late_uuid)
    reviewer = RecordingReviewer()
    bot = _bot(store_path, BotState(tmp_path / "state.db"), reviewer)
    bot.start()
    try:
        bot.submit(late)
        bot.submit(ready)
        deadline = time.monotonic() + 20
        while not reviewer.reviews and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(reviewer.reviews) == 1 and "1927411" in reviewer.reviews[0][2]
        # Now the late build's logs arrive; the waiting event completes.
        store.add_documents(d for d in docs if d.get("build_uuid") == late_uuid)
        assert bot.wait_idle(30)
    finally:
        bot.stop()
    assert len(reviewer.reviews) == 2 and "1893618" in reviewer.reviews[1][2]


def test_readiness_timeout_is_reported_not_classified(tmp_path: Path, ground_truth: dict[str, dict[str, Any]]) -> None:
    store_path = tmp_path / "store.db"
    EmbeddedStore(store_path).close()  # empty: the logs never arrive
    reviewer = RecordingReviewer()
    out = tmp_path / "actions.jsonl"
    with out.open("w") as fh:
        bot = _bot(store_path, BotState(tmp_path / "state.db"), reviewer, deadline_s=0.3, actions_out=fh)
        bot.start()
        try:
            event = _event_for(ground_truth, "1893618")
            bot.submit(event)
            assert bot.wait_idle(20)
        finally:
            bot.stop()
    assert reviewer.reviews == []
    line = json.loads(out.read_text())
    assert "console log not indexed" in line["timeout"]
    report = parse_event(event)
    assert report is not None
    assert line["jobs"] == {j.name: [] for j in report.voting_failed_jobs()}
    assert bot.stats["timeouts"] == 1


# -- live mode against the SSH Gerrit fake, with kill -9 ----------------------


@pytest.fixture
def live_config(tmp_path: Path, gerrit_server: Any, gerrit_ssh_keys: Any) -> Iterator[Path]:
    cfg = tmp_path / "er.conf"
    cfg.write_text(
        "[gerrit]\n"
        f"host = 127.0.0.1\nport = {gerrit_server.port}\nuser = {gerrit_server.user}\nkey = {gerrit_ssh_keys.client_key}\n"
        "[recheckwatch]\nci_username = zuul\nreadiness_poll = 0.2\n"
    )
    cfg.chmod(0o600)
    yield cfg


def _wait(pred: Any, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_live_kill_9_while_waiting_then_restart_comments_exactly_once(
    tmp_path: Path, live_config: Path, gerrit_server: Any, ground_truth: dict[str, dict[str, Any]]
) -> None:
    import gzip

    store_path = tmp_path / "store.db"
    docs = [json.loads(x) for x in gzip.open(SAMPLE / "logs.jsonl.gz", "rt")]
    event = _event_for(ground_truth, "1945311")
    uuid = event["comment"].split("/build/")[1].split()[0]
    store = EmbeddedStore(store_path)
    store.add_documents(d for d in docs if d.get("build_uuid") != uuid)
    args = [sys.executable, "-m", "elastic_recheck", "-c", str(live_config), "--store", str(store_path),
            "bot", "--queries", str(REPO / "queries"), "--no-irc"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert gerrit_server.wait_for_streams(1, timeout=30), "bot never opened stream-events"
        gerrit_server.emit(event)
        state = BotState(tmp_path / "probe.db")  # only to make sure the table exists
        state.close()
        # The event is accepted (persisted) and waits for logs.
        assert _wait(lambda: _pending_count(store_path) == 1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert gerrit_server.reviews == []
        # Logs arrive while the bot is down; the restarted bot resumes the event.
        store.add_documents(d for d in docs if d.get("build_uuid") == uuid)
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert _wait(lambda: len(gerrit_server.reviews) >= 1)
        # Gerrit delivers the same event again after the restart: no second comment.
        assert gerrit_server.wait_for_streams(1, timeout=30)
        gerrit_server.emit(event)
        time.sleep(1.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert len(gerrit_server.reviews) == 1
    assert "1945311" in (gerrit_server.reviews[0].message or "")
    assert _pending_count(store_path) == 0


def _pending_count(store_path: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(store_path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM bot_events WHERE status = 'pending'").fetchone()[0])
    except sqlite3.OperationalError:
        return -1
    finally:
        conn.close()


def test_builds_whose_documents_carry_no_file_names_are_classified(tmp_path: Path, ground_truth: dict[str, dict[str, Any]]) -> None:
    """Readiness cannot see a console log without ``filename``: the build's documents are used."""
    import gzip

    store_path = tmp_path / "store.db"
    event = _event_for(ground_truth, "1927411")
    uuid = event["comment"].split("/build/")[1].split()[0]
    docs = [json.loads(x) for x in gzip.open(SAMPLE / "logs.jsonl.gz", "rt")]
    store = EmbeddedStore(store_path)
    store.add_documents({k: v for k, v in d.items() if k != "filename"} for d in docs if d.get("build_uuid") == uuid)
    reviewer = RecordingReviewer()
    bot = _bot(store_path, BotState(tmp_path / "state.db"), reviewer, deadline_s=5.0)
    bot.start()
    try:
        bot.submit(event)
        assert bot.wait_idle(20)
    finally:
        bot.stop()
    assert len(reviewer.reviews) == 1 and "1927411" in reviewer.reviews[0][2]


def test_old_format_reports_find_builds_without_a_short_uuid_field(tmp_path: Path, ground_truth: dict[str, dict[str, Any]]) -> None:
    """Jenkins/Zuul v2 reports only give the short uuid at the end of the log URL."""
    import gzip

    sys.path.insert(0, str(SAMPLE))
    try:
        from make_events import report_event
    finally:
        sys.path.pop(0)
    build = next(b for b in ground_truth.values() if "1927411" in b["injected_bugs"] and b["voting"])
    event = report_event([build], old_format=True)
    store_path = tmp_path / "store.db"
    docs = [json.loads(x) for x in gzip.open(SAMPLE / "logs.jsonl.gz", "rt")]
    store = EmbeddedStore(store_path)
    store.add_documents({k: v for k, v in d.items() if k != "build_short_uuid"} for d in docs if d.get("build_uuid") == build["uuid"])
    reviewer = RecordingReviewer()
    bot = _bot(store_path, BotState(tmp_path / "state.db"), reviewer, deadline_s=5.0)
    bot.start()
    try:
        assert bot.submit(event) is not None
        assert bot.wait_idle(20)
    finally:
        bot.stop()
    assert len(reviewer.reviews) == 1 and "1927411" in reviewer.reviews[0][2]
