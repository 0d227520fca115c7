"""``[ircbot] server_password`` of the original's config: sent as PASS to a real ngircd, never shown."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from elastic_recheck.adapters.irc.client import IrcNotifier
from elastic_recheck.core.config import load_config
from tests.fixtures.ircd import NgircdServer, running_ngircd
from tests.fixtures.original import original_config

SERVER_PASSWORD = "srv-pass-4711"


@pytest.fixture
def locked_ngircd(tmp_path: Path) -> Iterator[NgircdServer]:
    """An ngircd that refuses clients without the server password."""
    with running_ngircd(tmp_path / "ngircd-locked", password=SERVER_PASSWORD) as server:
        yield server


def _config(shared_data: Path, tmp_path: Path, server: NgircdServer, password: str | None) -> Path:
    ircbot = {"server": server.host, "port": str(server.port), "nick": "RecheckWatchBot"}
    if password is not None:
        ircbot["server_password"] = password
    return original_config(shared_data, tmp_path, tmp_path, ircbot=ircbot)


def test_server_password_is_sent_and_redacted(
    shared_data: Path, tmp_path: Path, locked_ngircd: NgircdServer, irc_client: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cfg = load_config(_config(shared_data, tmp_path, locked_ngircd, SERVER_PASSWORD))
    assert "unknown setting" not in caplog.text
    notifier = IrcNotifier.from_config(cfg, ["#openstack-qa"])
    assert notifier is not None
    watcher = irc_client(locked_ngircd, "watcher", "#openstack-qa")  # type: ignore[operator]
    notifier.start()
    try:
        assert notifier.wait_registered(10)
        notifier.send("#openstack-qa", "through the locked door")
        watcher.wait_for(lambda ln: ln.text == "through the locked door")
    finally:
        notifier.stop(timeout=5)
    assert "irc.client" in {r.name for r in caplog.records}  # raw lines (PASS included) were logged...
    assert SERVER_PASSWORD not in caplog.text  # ...but never the password
    assert "PASS ***" in caplog.text


def test_without_the_server_password_the_server_refuses(
    shared_data: Path, tmp_path: Path, locked_ngircd: NgircdServer,
) -> None:
    cfg = load_config(_config(shared_data, tmp_path, locked_ngircd, None))
    notifier = IrcNotifier.from_config(cfg, ["#openstack-qa"], reconnect_min=5.0)
    assert notifier is not None
    notifier.start()
    try:
        assert not notifier.wait_registered(3)
    finally:
        notifier.stop(timeout=5)


def test_config_command_redacts_the_server_password(shared_data: Path, tmp_path: Path, locked_ngircd: NgircdServer) -> None:
    conf = _config(shared_data, tmp_path, locked_ngircd, SERVER_PASSWORD)
    proc = subprocess.run([sys.executable, "-m", "elastic_recheck", "-c", str(conf), "config"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert SERVER_PASSWORD not in proc.stdout + proc.stderr
    assert "server_password" in proc.stdout


def test_the_original_config_with_its_missing_channel_config_is_one_line(shared_data: Path, tmp_path: Path) -> None:
    """The sample as shipped names /home/mtreinish/...: a clear error, no traceback."""
    conf = tmp_path / "elasticRecheck.conf"
    conf.write_bytes((shared_data / "elastic-recheck-config" / "elasticRecheck.conf.sample").read_bytes())
    missing = "/home/mtreinish/elasticRecheck/recheckwatchbot.yaml"
    assert not Path(missing).exists()
    events = shared_data / "gerrit-events" / "elastic-recheck-gerrit-events-2014.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "elastic_recheck", "-c", str(conf), "--store", str(tmp_path / "s.db"), "bot",
         "--queries", str(shared_data / "elastic-recheck-queries"), "--replay", str(events), "--dry-run"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: [ircbot] channel_config: {missing}: cannot read: No such file or directory"]
