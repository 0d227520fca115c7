"""kill -9 of ``elastic-recheck bot`` at every stage, then restart: one comment per event.

The bot runs as a subprocess (``python -m elastic_recheck ... bot``) against
the SSH Gerrit fake, with the sample's embedded store in a temp dir and its
own state file. A precise stage is hit with the test-only fault hook
(``ELASTIC_RECHECK_FAULT=<stage>``: the process calls ``os._exit(137)`` there,
which is what SIGKILL leaves behind: no cleanup, no flush, no finally
blocks). The restarted bot (no fault) must finish the event, and a second
delivery of the same event by Gerrit must not produce a second comment.
Reviews are counted on the fake Gerrit.
"""

from __future__ import annotations

import gzip
import json
import re
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.adapters.sqlite.store import EmbeddedStore
from elastic_recheck.bot.settings import FAULT_STAGES, IRC_FAULT_STAGE
from elastic_recheck.ingest.jsonl import ingest_jsonl
from tests.fixtures.gerrit_server import FakeGerritServer, SshKeys
from tests.fixtures.ircd import NgircdServer
from tests.reliability.helpers import REPO, BotProcess, bot_config, gerrit_store, state_rows, wait_for

SAMPLE = REPO / "sample"
BUG = "1945311"


def _truth() -> list[dict[str, Any]]:
    return list(json.loads((SAMPLE / "builds.json").read_text())["builds"])


def _event(build: dict[str, Any], created: float | None = None) -> dict[str, Any]:
    from sample.make_events import report_event

    event = report_event([build])
    event["eventCreatedOn"] = int(created if created is not None else time.time())
    return event


def _builds_with_bug(bug: str, n: int) -> list[dict[str, Any]]:
    found = [b for b in _truth() if bug in b["injected_bugs"] and b["voting"] and b["result"] == "FAILURE"]
    # one build per change (the sample may have several builds of a change)
    by_change: dict[int, dict[str, Any]] = {}
    for b in found:
        by_change.setdefault(b["change"], b)
    out = list(by_change.values())[:n]
    assert len(out) == n, f"the sample has only {len(out)} changes with bug {bug}"
    return out


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("crash-store") / "store.db"
    store = EmbeddedStore(path)
    ingest_jsonl(store, SAMPLE / "logs.jsonl.gz")
    store.close()
    return path


@pytest.fixture
def procs() -> Iterator[list[BotProcess]]:
    started: list[BotProcess] = []
    yield started
    for p in started:
        p.stop()


def _pending(state: Path) -> int:
    rows = state_rows(state, "SELECT COUNT(*) FROM bot_events WHERE status = 'pending'")
    return int(rows[0][0]) if rows else -1


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def _reviews_of(server: FakeGerritServer, change: int) -> int:
    return sum(1 for r in server.reviews if r.change == str(change))


#: What the fake Gerrit must have seen when the process died at each stage.
REVIEWS_AT_DEATH = {"after-accept": 0, "waiting": 0, "after-classify": 0, "after-claim": 0, "after-comment": 1}


@pytest.mark.parametrize("stage", FAULT_STAGES)
def test_kill_at_stage_then_restart_comments_exactly_once(
    stage: str, tmp_path: Path, store_path: Path, gerrit_server: FakeGerritServer, gerrit_ssh_keys: SshKeys,
    procs: list[BotProcess],
) -> None:
    build = _builds_with_bug(BUG, 1)[0]
    event = _event(build)
    store = store_path
    if stage == "waiting":  # the build's logs are not indexed yet when the event arrives
        store = tmp_path / "store.db"
        docs = [json.loads(x) for x in gzip.open(SAMPLE / "logs.jsonl.gz", "rt")]
        with EmbeddedStore(store) as s:
            s.add_documents(d for d in docs if d.get("build_uuid") != build["uuid"])
    gerrit_server.query_results = gerrit_store(gerrit_server, [])
    cfg = bot_config(tmp_path, gerrit_server, gerrit_ssh_keys)
    state = tmp_path / "state.db"

    first = BotProcess(cfg, store, state, tmp_path / "run1.log", stage)
    procs.append(first)
    assert gerrit_server.wait_for_streams(1, 30), first.output()
    gerrit_server.emit(event)
    assert first.wait_exit(60) == 137, first.output()
    assert "fault injection" in first.output()
    assert len(gerrit_server.reviews) == REVIEWS_AT_DEATH[stage]
    assert _pending(state) == 1  # never marked done
    assert _integrity(state) == "ok"

    if stage == "waiting":  # the logs arrive while the bot is down
        with EmbeddedStore(store) as s:
            s.add_documents(d for d in docs if d.get("build_uuid") == build["uuid"])

    second = BotProcess(cfg, store, state, tmp_path / "run2.log")
    procs.append(second)
    assert wait_for(lambda: _pending(state) == 0, 60), second.output()
    assert gerrit_server.wait_for_streams(1, 30)
    gerrit_server.emit(event)  # Gerrit delivers the same event again
    time.sleep(1.5)
    assert second.stop() == 0, second.output()
    assert _reviews_of(gerrit_server, build["change"]) == 1, second.output()
    message = gerrit_server.reviews[0].message or ""
    assert f"https://bugs.launchpad.net/bugs/{BUG}" in message
    assert state_rows(state, "SELECT COUNT(*) FROM bot_sending") == [(0,)]
    assert _integrity(state) == "ok"


def test_events_sent_while_the_bot_is_down_are_recovered_on_restart(
    tmp_path: Path, store_path: Path, gerrit_server: FakeGerritServer, gerrit_ssh_keys: SshKeys,
    procs: list[BotProcess],
) -> None:
    b1, b2, b3 = _builds_with_bug(BUG, 3)
    stored: list[dict[str, Any]] = []
    gerrit_server.query_results = gerrit_store(gerrit_server, stored)
    cfg = bot_config(tmp_path, gerrit_server, gerrit_ssh_keys)
    state = tmp_path / "state.db"

    first = BotProcess(cfg, store_path, state, tmp_path / "run1.log")
    procs.append(first)
    assert gerrit_server.wait_for_streams(1, 30), first.output()
    e1 = _event(b1)
    stored.append(e1)
    gerrit_server.emit(e1)
    assert wait_for(lambda: _reviews_of(gerrit_server, b1["change"]) == 1, 60), first.output()
    first.proc.send_signal(signal.SIGKILL)
    assert first.wait_exit(10) == -signal.SIGKILL

    # Zuul reports on two changes while nobody listens.
    stored.extend([_event(b2, time.time() + 1), _event(b3, time.time() + 2)])

    second = BotProcess(cfg, store_path, state, tmp_path / "run2.log")
    procs.append(second)
    ok = wait_for(lambda: _reviews_of(gerrit_server, b2["change"]) + _reviews_of(gerrit_server, b3["change"]) == 2, 60)
    assert ok, second.output()
    time.sleep(1.0)
    assert second.stop() == 0
    assert {c: _reviews_of(gerrit_server, b["change"]) for c, b in (("1", b1), ("2", b2), ("3", b3))} == {"1": 1, "2": 1, "3": 1}
    recovered = re.search(r"recovered (\d+) missed CI comment", second.output())
    assert recovered is not None and int(recovered.group(1)) >= 2, second.output()


def test_kill_with_irc_notices_queued_then_restart_announces_once(
    tmp_path: Path, store_path: Path, gerrit_server: FakeGerritServer, gerrit_ssh_keys: SshKeys,
    procs: list[BotProcess], ngircd: NgircdServer, irc_client: Any,
) -> None:
    """IRC is down; the bot comments, journals and queues its gate notice, then
    dies (``kill -9`` at ``after-irc-queued``). The restarted bot sends the
    journaled notice once IRC is back: one comment, one notice."""
    gate = [b for b in _truth() if BUG in b["injected_bugs"] and b["voting"] and b["result"] == "FAILURE"
            and b["pipeline"] == "gate"]
    assert gate, "the sample has no gate failure with the bug"
    build = gate[0]
    event = _event(build)
    gerrit_server.query_results = gerrit_store(gerrit_server, [])
    channels = tmp_path / "channels.yaml"
    channels.write_text("channels:\n  openstack-qa:\n    projects: [all]\n    events: [positive, negative]\n")
    irc = f"[ircbot]\nserver = {ngircd.host}\nport = {ngircd.port}\nnick = er-bot\nchannel_config = {channels}\n"
    cfg = bot_config(tmp_path, gerrit_server, gerrit_ssh_keys, extra=irc)
    state = tmp_path / "state.db"
    ngircd.stop()

    first = BotProcess(cfg, store_path, state, tmp_path / "run1.log", IRC_FAULT_STAGE, extra=())
    procs.append(first)
    assert gerrit_server.wait_for_streams(1, 30), first.output()
    gerrit_server.emit(event)
    assert first.wait_exit(60) == 137, first.output()
    assert _reviews_of(gerrit_server, build["change"]) == 1
    journal = state_rows(state, "SELECT channel, message FROM irc_outbox")
    assert len(journal) == 1 and journal[0][0] == "#openstack-qa", journal
    assert f"/{build['change']}" in journal[0][1]

    ngircd.start()
    watcher = irc_client(ngircd, "watcher", "#openstack-qa")
    second = BotProcess(cfg, store_path, state, tmp_path / "run2.log", extra=())
    procs.append(second)
    announced = lambda: [ln for ln in watcher.privmsgs("#openstack-qa") if f"/{build['change']}" in ln.text]  # noqa: E731
    assert wait_for(lambda: len(announced()) == 1, 60), second.output()
    assert wait_for(lambda: _pending(state) == 0, 30), second.output()
    time.sleep(1.0)
    assert second.stop() == 0, second.output()
    assert len(announced()) == 1
    assert _reviews_of(gerrit_server, build["change"]) == 1
    assert state_rows(state, "SELECT COUNT(*) FROM irc_outbox") == [(0,)]
    assert "re-queued 1 IRC message" in second.output()
