"""The live bot says "probably not caused by this change" only on strong evidence (issue 17).

The bot runs as a subprocess against the SSH Gerrit fake (stream-events and
``gerrit review``) and a real ngircd, on the history of
``tests/fixtures/signature_history.py``:

* ``target`` (gate) failed with an unknown error that failed three other
  changes in the 24 hours before: a comment (even though no bug matched and
  ``comment_unmatched`` is off) with the counts, the error line, two example
  builds and the note; ``--actions-out`` carries ``recurring``; the QA
  channel's notice carries the signature and its cluster size;
* ``oneoff`` (gate) failed with an error nobody else had: no comment, no
  ``recurring``; its IRC notice still names its signature (1st time);
* with ``recurring_changes = 5`` the same target gets no comment at all (with 4, three
  other changes, one of which passed on a recheck, would be enough).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.core.error_lines import normalize
from sample.generate import Build
from tests.fixtures.gerrit_server import FakeGerritServer, SshKeys
from tests.fixtures.ircd import NgircdServer
from tests.fixtures.signature_history import SPECS, recurring_error_text, write_history
from tests.reliability.helpers import BotProcess, bot_config, gerrit_store, wait_for

pytestmark = pytest.mark.timeout(300)


def _event(build: Build) -> dict[str, Any]:
    from sample.make_events import report_event

    event = report_event([build.record()])
    event["eventCreatedOn"] = int(time.time())
    return event


def _reviews(server: FakeGerritServer, change: int) -> list[str]:
    return [r.message or "" for r in server.reviews if r.change == str(change)]


def _run(
    tmp_path: Path, server: FakeGerritServer, keys: SshKeys, ngircd: NgircdServer, irc_client: Any, extra: str = ""
) -> tuple[dict[str, Build], list[dict[str, Any]], list[str], list[str]]:
    store = tmp_path / "store.db"
    builds = write_history(store)
    server.query_results = gerrit_store(server, [])
    channels = tmp_path / "channels.yaml"
    channels.write_text("channels:\n  openstack-qa:\n    projects: [all]\n    events: [negative]\n")
    irc = f"[ircbot]\nserver = {ngircd.host}\nport = {ngircd.port}\nnick = er-sig\nchannel_config = {channels}\n"
    cfg = bot_config(tmp_path, server, keys, extra=extra + irc)
    watcher = irc_client(ngircd, "sigwatch", "#openstack-qa")
    actions = tmp_path / "actions.jsonl"
    bot = BotProcess(cfg, store, tmp_path / "state.db", tmp_path / "bot.log", extra=("--actions-out", str(actions)))
    try:
        assert server.wait_for_streams(1, 60), bot.output()
        for name in ("target", "oneoff"):
            server.emit(_event(builds[name]))

        def done() -> list[dict[str, Any]]:
            if not actions.exists():
                return []
            return [json.loads(x) for x in actions.read_text().splitlines() if x.strip()]

        assert wait_for(lambda: len(done()) == 2, 120), bot.output()
        notices = lambda: [ln.text for ln in watcher.privmsgs("#openstack-qa")]  # noqa: E731
        assert wait_for(lambda: len(notices()) == 2, 60), bot.output()
    finally:
        assert bot.stop() == 0, bot.output()
    return builds, done(), notices(), [m for b in ("target", "oneoff") for m in _reviews(server, builds[b].change)]


def test_recurring_unknown_failure_is_called_probably_not_this_change(
    tmp_path: Path, gerrit_server: FakeGerritServer, gerrit_ssh_keys: SshKeys, ngircd: NgircdServer, irc_client: Any
) -> None:
    builds, actions, notices, _ = _run(tmp_path, gerrit_server, gerrit_ssh_keys, ngircd, irc_client)
    target, oneoff = builds["target"], builds["oneoff"]
    by_change = {a["change"]: a for a in actions}
    line = normalize(recurring_error_text([s.name for s in SPECS].index("target") + 1))

    # the target: commented although no bug matched, with the evidence
    (comment,) = _reviews(gerrit_server, target.change)
    assert "- tempest-full-py3: unrecognized error" in comment
    assert f"the same error was seen in 3 builds of 3 other changes in the last 24 hours: {line}" in comment
    assert f"e.g. {builds['r3'].log_url}" in comment and f"e.g. {builds['r2'].log_url}" in comment
    assert builds["r1"].log_url not in comment  # two links, newest first
    assert "passed the same job on a recheck" not in comment  # not checked: it could not change the claim
    assert "this failure is probably not caused by this change" in comment
    rec = by_change[str(target.change)]["recurring"]["tempest-full-py3"]
    assert (rec["builds"], rec["changes"], rec["flaky_changes"]) == (3, 3, None)
    assert rec["examples"] == [builds["r3"].uuid, builds["r2"].uuid, builds["r1"].uuid]
    assert rec["line"] == line and rec["links"] == [builds["r3"].log_url, builds["r2"].log_url]
    assert by_change[str(target.change)]["jobs"] == {"tempest-full-py3": []}  # the existing keys are unchanged

    # the one-off: silence on Gerrit, no recurring key
    assert _reviews(gerrit_server, oneoff.change) == []
    assert "recurring" not in by_change[str(oneoff.change)]

    # IRC: both unrecognized gate failures, each with its signature and its cluster size
    t_notice = next(n for n in notices if f"/{target.change}" in n)
    o_notice = next(n for n in notices if f"/{oneoff.change}" in n)
    assert "with an unrecognized error (signature " in t_notice
    # r1, r2, r3, the own change's earlier patchset and this one
    assert len(line) > 100 and t_notice.endswith(f'"{line[:97]}...", 5th time in 24 h)')  # clipped for IRC
    assert o_notice.endswith('1st time in 24 h)') and "PortBindingFailed" not in o_notice


def test_thin_evidence_says_nothing(
    tmp_path: Path, gerrit_server: FakeGerritServer, gerrit_ssh_keys: SshKeys, ngircd: NgircdServer, irc_client: Any
) -> None:
    builds, actions, notices, reviews = _run(
        tmp_path, gerrit_server, gerrit_ssh_keys, ngircd, irc_client, extra="recurring_changes = 5\n"
    )
    assert reviews == []  # three other changes (one flaky) are not enough for five: no comment at all
    assert all("recurring" not in a for a in actions)
    assert any("5th time in 24 h" in n for n in notices)  # IRC still tells the QA channel the cluster size


def test_a_recheck_that_passed_tips_the_balance(
    tmp_path: Path, gerrit_server: FakeGerritServer, gerrit_ssh_keys: SshKeys, ngircd: NgircdServer, irc_client: Any
) -> None:
    """recurring_changes = 4: three other changes are one short, but r2's patchset passed on a recheck."""
    builds, actions, _, _ = _run(tmp_path, gerrit_server, gerrit_ssh_keys, ngircd, irc_client, extra="recurring_changes = 4\n")
    (comment,) = _reviews(gerrit_server, builds["target"].change)
    assert "the same error was seen in 3 builds of 3 other changes" in comment
    assert "1 of those changes passed the same job on a recheck" in comment
    assert "this failure is probably not caused by this change" in comment
    rec = next(a for a in actions if a["change"] == str(builds["target"].change))["recurring"]["tempest-full-py3"]
    assert rec["flaky_changes"] == 1
