"""``stale --irc`` against a real ngircd, watched by second clients.

A small embedded store holds builds of four fingerprints; bug statuses and
titles come from the real offline tracker (``[bugs] bugs_file``). A client in
the channel subscribed to ``negative`` asserts the exact messages; a client in
a ``positive``-only channel must see nothing; a client holding the bot's nick
plays the running bot (it must keep its nick) and a "NickServ" client records
what the poster asks of NickServ. Expected messages are built from the
generated documents, not from the code under test.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from elastic_recheck.cli.main import cli
from tests.fixtures.ircd import IrcLine, IrcTestClient, NgircdServer
from tests.fixtures.job_docs import job_docs

NOW = datetime(2024, 6, 1, tzinfo=UTC)
NEGATIVE = "#er-qa"
POSITIVE = "#er-nova"
NICK = "stalebot"
#: Long and multi-byte: its message is split into several IRC lines.
LONG_TITLE = " ".join(["Ünïcödé 💥 façade naïveté ½ 日本語のテスト"] * 14)
ClientFactory = Callable[..., IrcTestClient]


@dataclass(frozen=True)
class Case:
    bug: str
    message: str
    failed_days_ago: tuple[float, ...]
    resolved_at: str | None = None
    status: str | None = None
    title: str | None = None
    log_host: str = "https://logs.example.org"


CASES = (
    # Resolved on day -8 and Fix Released: two failed builds since.
    Case("1200001", "widget came back", (12.0, 5.0, 0.5), resolved_at="2024-05-24", status="Fix Released",
         title="Widget explodes"),
    # Fix Released with no date: the last 10 days count (one build).
    Case("1200002", "released but failing", (3.0, 30.0), status="Fix Released", title=LONG_TITLE),
    # resolved_at only, unknown to the tracker; its log URL is not http(s).
    Case("1200003", "resolved in yaml", (1.0,), resolved_at="2024-05-20", log_host="javascript:alert(1)//"),
    # Open and hitting: never announced.
    Case("1200004", "still open", (0.2, 2.0), status="Confirmed", title="Open bug"),
)


def docs_for(case: Case, days_ago: float, n: int, status: str = "FAILURE") -> list[dict[str, Any]]:
    return job_docs(case.bug, case.message, NOW - timedelta(days=days_ago), n, status=status, log_host=case.log_host)


def all_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    n = 0
    for case in CASES:
        for d in case.failed_days_ago:
            n += 1
            docs += docs_for(case, d, n)
    n += 1
    docs += docs_for(CASES[0], 3.0, n, status="SUCCESS")  # successful builds never count
    return docs


def newest_failed_since(docs: list[dict[str, Any]], case: Case, since: datetime, now: datetime) -> tuple[int, str]:
    """(failed builds of ``case`` with its line in [since, now), log URL of the newest) from the documents."""
    hits = [
        d for d in docs
        if case.message in d["message"] and d["build_status"] == "FAILURE"
        and since <= datetime.fromisoformat(d["@timestamp"].replace("Z", "+00:00")) < now
    ]
    newest = max(hits, key=lambda d: d["@timestamp"])
    return len({d["build_uuid"] for d in hits}), newest["log_url"]


def since_of(case: Case, now: datetime) -> datetime:
    if case.resolved_at:
        return datetime.fromisoformat(case.resolved_at).replace(tzinfo=UTC)
    return now - timedelta(days=10)


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    data = tmp_path / "data"
    data.mkdir()
    store = EmbeddedStore(data / "store.db")
    store.add_documents(all_docs())
    store.close()
    queries = tmp_path / "queries"
    queries.mkdir()
    bugs = []
    for c in CASES:
        extra = f"resolved_at: {c.resolved_at}\n" if c.resolved_at else ""
        (queries / f"{c.bug}.yaml").write_text(f'query: >-\n  message:"{c.message}"\n{extra}', encoding="utf-8")
        if c.status:
            bugs.append(f'"{c.bug}": {{title: {json.dumps(c.title, ensure_ascii=False)}, status: "{c.status}"}}')
    bugs_file = tmp_path / "bugs.yaml"
    bugs_file.write_text("\n".join(bugs) + "\n", encoding="utf-8")
    channels = tmp_path / "channels.yaml"
    channels.write_text(
        f"channels:\n  {NEGATIVE[1:]}:\n    projects: [all]\n    events: [negative]\n"
        f"  {POSITIVE[1:]}:\n    projects: [nova]\n    events: [positive]\n",
        encoding="utf-8",
    )
    return {"store": data / "store.db", "queries": queries, "bugs": bugs_file, "channels": channels, "root": tmp_path}


def write_config(tree: dict[str, Path], host: str, port: int, channels: Path | None = None, server: bool = True) -> Path:
    conf = tree["root"] / "er.conf"
    conf.write_text(
        f"[bugs]\ntracker = offline\nbugs_file = {tree['bugs']}\n"
        f"[ircbot]\nserver = {host if server else ''}\nport = {port}\nnick = {NICK}\npass = pw-123\n"
        f"channel_config = {channels or tree['channels']}\n",
        encoding="utf-8",
    )
    return conf


def run_stale(tree: dict[str, Path], conf: Path, now: datetime, *extra: str) -> Result:
    args = ["-c", str(conf), "--store", str(tree["store"]), "stale", "--queries", str(tree["queries"]),
            "--now", now.isoformat(), "--irc", *extra]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def expected_message(case: Case, now: datetime) -> str:
    since = since_of(case, now)
    count, url = newest_failed_since(all_docs(), case, since, now)
    builds = f"{count} failed build{'s' if count != 1 else ''}"
    link = url if url.startswith("https://") else f"build {url.split('/')[-2]}"
    head = f"Bug {case.bug}" + (f" ({case.title})" if case.title else "")
    if case.resolved_at and case.status == "Fix Released":
        return f"{head} was marked Fix Released on {case.resolved_at} but its fingerprint hit {builds} since: {link}"
    if case.resolved_at:
        return f"{head} was resolved on {case.resolved_at} but its fingerprint hit {builds} since: {link}"
    return f"{head} is marked {case.status} (fix date unknown) but its fingerprint hit {builds} in the last 10 days: {link}"


def from_poster(ln: IrcLine) -> bool:
    return ln.command == "PRIVMSG" and ln.source.startswith(NICK + "_")


def test_announces_once_per_new_build(
    tree: dict[str, Path], ngircd: NgircdServer, irc_client: ClientFactory
) -> None:
    running_bot = irc_client(ngircd, NICK, NEGATIVE)  # the bot holds the configured nick
    nickserv = irc_client(ngircd, "NickServ")
    qa = irc_client(ngircd, "qa-watch", NEGATIVE)
    nova = irc_client(ngircd, "nova-watch", POSITIVE)
    conf = write_config(tree, ngircd.host, ngircd.port)

    res = run_stale(tree, conf, NOW)
    assert res.exit_code == 0, res.output
    assert "Resolved bugs that came back (3)" in res.stdout
    assert "announced 3 returning bug(s)" in res.stderr
    short = [expected_message(CASES[0], NOW), expected_message(CASES[2], NOW)]
    long_message = expected_message(CASES[1], NOW)
    assert len(long_message.encode()) > 600 and short[1].endswith(" since: build 1200003" + "0" * 20 + "00006")
    # Flushed before the command returned: the lines are already on their way.
    lines = [ln.text for ln in qa.wait_for(from_poster, timeout=10, count=4, what="announcements")]
    assert lines[:2] == short  # most recently hit first
    pieces = lines[2:]
    assert len(pieces) >= 2
    assert all("\ufffd" not in p for p in pieces), pieces  # no UTF-8 character was cut
    assert all(len(p.encode()) <= 510 - len(f":{NICK}_!x@127.0.0.1 PRIVMSG {NEGATIVE} :") for p in pieces)
    assert "".join(pieces).replace(" ", "") == long_message.replace(" ", "")
    assert pieces[0].startswith("Bug 1200002 (Ünïcödé 💥")
    assert all(ln.target == NEGATIVE for ln in qa.privmsgs() if from_poster(ln))
    assert not [ln for ln in nova.privmsgs() if ln.source.startswith(NICK)]
    # The running bot kept its nick: the poster never asked NickServ to GHOST it.
    assert [ln.text for ln in nickserv.privmsgs()] == ["identify pw-123"]
    assert not [ln for ln in qa.lines if ln.command in ("NICK", "QUIT") and ln.source == running_bot.nick]
    ledger = json.loads((tree["store"].parent / "returning-announced.json").read_text())
    assert sorted(ledger["bugs"]) == ["1200001", "1200002", "1200003"]
    assert ledger["bugs"]["1200001"]["count"] == 2 and ledger["bugs"]["1200001"]["channels"] == [NEGATIVE]

    # The hourly cron again: nothing new, IRC not even contacted.
    joins = len([ln for ln in qa.lines if ln.command == "JOIN" and ln.source.startswith(NICK + "_")])
    res = run_stale(tree, conf, NOW + timedelta(hours=1))
    assert res.exit_code == 0, res.output
    assert "nothing new to announce (3 returning bug(s) already announced)" in res.stderr
    time.sleep(1.0)
    assert len([ln for ln in qa.privmsgs() if from_poster(ln)]) == len(lines)
    assert len([ln for ln in qa.lines if ln.command == "JOIN" and ln.source.startswith(NICK + "_")]) == joins

    # A new failed build of bug 1200001: announced again with the new count,
    # the others (same builds, still in their windows) stay quiet.
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore

    later = NOW + timedelta(days=1)
    new_docs = docs_for(CASES[0], -0.25, 99)
    store = EmbeddedStore(tree["store"])
    store.add_documents(new_docs)
    store.close()
    res = run_stale(tree, conf, later)
    assert res.exit_code == 0, res.output
    assert "announced 1 returning bug(s) (1200001)" in res.stderr
    got = qa.wait_for(from_poster, timeout=10, count=len(lines) + 1, what="the new announcement")
    assert got[-1].text == (
        f"Bug 1200001 (Widget explodes) was marked Fix Released on 2024-05-24 but its fingerprint hit "
        f"3 failed builds since: {new_docs[0]['log_url']}"
    )
    time.sleep(0.5)
    assert len([ln for ln in qa.privmsgs() if from_poster(ln)]) == len(lines) + 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(120)
def test_unreachable_irc_exits_4_and_records_nothing(tree: dict[str, Path]) -> None:
    port = _free_port()
    conf = write_config(tree, "127.0.0.1", port)
    state = tree["root"] / "state.json"
    res = run_stale(tree, conf, NOW, "--irc-state", str(state), "--irc-timeout", "1")
    assert res.exit_code == 4, res.output
    assert f"cannot reach the IRC server 127.0.0.1:{port}" in res.stderr
    assert "nothing recorded" in res.stderr
    assert "Resolved bugs that came back (3)" in res.stdout  # the report was still printed
    assert not state.exists()


def test_irc_not_configured_exits_4(tree: dict[str, Path]) -> None:
    res = run_stale(tree, write_config(tree, "127.0.0.1", 6667, server=False), NOW)
    assert res.exit_code == 4 and "[ircbot] server" in res.stderr
    positive_only = tree["root"] / "positive.yaml"
    positive_only.write_text("channels:\n  er-nova:\n    projects: [nova]\n    events: [positive]\n")
    res = run_stale(tree, write_config(tree, "127.0.0.1", 6667, channels=positive_only), NOW)
    assert res.exit_code == 4 and "no channel is subscribed to negative" in res.stderr
    assert res.stdout == ""  # checked before any backend work


def test_unusable_or_locked_state_exits_1(tree: dict[str, Path]) -> None:
    import fcntl
    import os

    conf = write_config(tree, "127.0.0.1", _free_port())
    state = tree["root"] / "state.json"
    state.write_text("{not json")
    res = run_stale(tree, conf, NOW, "--irc-state", str(state), "--irc-timeout", "1")
    assert res.exit_code == 1 and "not an announcement ledger" in res.stderr
    assert state.read_text() == "{not json"  # never reset silently
    state.unlink()
    fd = os.open(str(state) + ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        res = run_stale(tree, conf, NOW, "--irc-state", str(state), "--irc-timeout", "1")
    finally:
        os.close(fd)
    assert res.exit_code == 1 and "another 'stale --irc' run" in res.stderr
