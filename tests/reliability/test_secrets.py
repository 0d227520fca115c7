"""Secrets in the config never reach logs, stdout/stderr, the actions file, the state file or the site.

One config holds a distinctive value for every secret setting (``[gerrit]
key`` path and ``http_password``, ``[ircbot] pass``, ``[data_source]
es_url`` credentials, ``password`` and ``db_uri``). The bot runs with ``-vv``
(DEBUG, including paramiko, urllib3, elasticsearch and irc.client loggers)
through success *and* failure paths (cluster 503s, a Gerrit REST 500), so
error messages that quote URLs or requests are produced too. Each test first
checks that the secret was really used (an Authorization header, a NickServ
line, an SSH connection), so a secret that silently went unused cannot make
the test pass.
"""

from __future__ import annotations

import base64
import logging
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from elastic_recheck.core.config import Config, load_config
from tests.fixtures.gerrit_server import FakeGerritRest, FakeGerritServer, SshKeys
from tests.fixtures.ircd import IrcTestClient, NgircdServer
from tests.reliability.helpers import (
    REPO,
    BotProcess,
    IndexedBuild,
    Job,
    LogCluster,
    actions,
    bot_env,
    failure_event,
    wait_for,
)

GERRIT_PW = "gerrit-http-pw-Qz81x"
IRC_PW = "irc-nickserv-pw-Vb27k"
ES_USER = "reader"
ES_URL_PW = "es-url-pw-Hn55t"
ES_SETTING_PW = "es-setting-pw-Lp09c"
DB_PW = "db-uri-pw-Ty64m"
KEY_MARK = "ssh-key-path-Wd13s"
SECRETS = (GERRIT_PW, IRC_PW, ES_URL_PW, ES_SETTING_PW, DB_PW, KEY_MARK)


def _secret_config(tmp: Path, gerrit: FakeGerritServer, keys: SshKeys, rest: FakeGerritRest, es_url: str,
                   ngircd: NgircdServer | None, backend: str = "elasticsearch") -> Path:
    keydir = tmp / f"keys-{KEY_MARK}"
    keydir.mkdir(exist_ok=True)
    key = keydir / f"id-{KEY_MARK}"
    shutil.copy(keys.client_key, key)
    key.chmod(0o600)
    channels = tmp / "recheckwatchbot.yaml"
    channels.write_text("channels:\n  openstack-qa:\n    projects: [all]\n    events: [positive, negative]\n")
    host_port = es_url.split("://", 1)[1]
    irc = f"[ircbot]\nserver = {ngircd.host}\nport = {ngircd.port}\nnick = er-bot\npass = {IRC_PW}\nchannel_config = {channels}\n" if ngircd else ""
    cfg = tmp / "er.conf"
    cfg.write_text(
        f"[gerrit]\nhost = 127.0.0.1\nport = {gerrit.port}\nuser = {gerrit.user}\nkey = {key}\n"
        f"comment_via = rest\nurl = {rest.url}\nhttp_user = {rest.user}\nhttp_password = {GERRIT_PW}\n"
        "[recheckwatch]\nci_username = zuul\nreadiness_poll = 0.2\nreadiness_timeout = 30\n"
        f"[data_source]\nbackend = {backend}\nes_url = http://{ES_USER}:{ES_URL_PW}@{host_port}\n"
        f"password = {ES_SETTING_PW}\ndb_uri = mysql+pymysql://query:{DB_PW}@db.example.org/subunit2sql\n"
        "timeout = 3\nretries = 1\n" + irc
    )
    cfg.chmod(0o600)
    return cfg


def _leaks(*texts: str) -> list[str]:
    return [s for s in SECRETS if any(s in t for t in texts)]


def _dump(path: Path) -> str:
    """Every string stored in a SQLite file (rows of every table), plus its raw bytes."""
    out = [path.read_bytes().decode("latin-1")]
    conn = sqlite3.connect(path)
    try:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            out.extend(repr(row) for row in conn.execute(f'SELECT * FROM "{table}"'))
    finally:
        conn.close()
    return "\n".join(out)


def test_bot_with_every_secret_at_debug_level_leaks_none(
    tmp_path: Path, gerrit_server: FakeGerritServer, gerrit_ssh_keys: SshKeys, ngircd: NgircdServer,
    irc_client: Any,
) -> None:
    from elastic_recheck.core.fingerprint_loading import load_fingerprints

    fp = {f.bug: f for f in load_fingerprints(REPO / "queries").fingerprints}["1945311"]
    rest = FakeGerritRest(user="er-bot", password=GERRIT_PW).start()
    try:
        with LogCluster() as cluster:
            for n in (1, 2):
                cluster.index(IndexedBuild(f"{n:032x}", hits={fp.query: "SSHTimeout: Connection to the 172.24.5.9 via SSH timed out."}))
            cfg = _secret_config(tmp_path, gerrit_server, gerrit_ssh_keys, rest, cluster.url, ngircd)
            out = tmp_path / "actions.jsonl"
            watcher: IrcTestClient = irc_client(ngircd, "watcher", "#openstack-qa")
            state = tmp_path / "state.db"
            bot = BotProcess(cfg, tmp_path / "unused.db", state, tmp_path / "bot.log", extra=("--actions-out", str(out)),
                             verbose="-vv")
            try:
                assert gerrit_server.wait_for_streams(1, 30), bot.output()
                cluster.fail_next = 3  # error paths that quote the cluster URL
                rest.fail_status = 500  # ... and the Gerrit REST endpoint
                gerrit_server.emit(failure_event(5001, 1, [Job("tempest-full", f"{1:032x}")]))
                assert wait_for(lambda: len(rest.requests) >= 1, 30), bot.output()
                rest.fail_status = None
                assert wait_for(lambda: len(rest.reviews) == 1, 60), bot.output()
                gerrit_server.emit(failure_event(5002, 1, [Job("tempest-full", f"{2:032x}")]))
                assert wait_for(lambda: len(rest.reviews) == 2 and len(actions(out)) == 2, 30), bot.output()
                assert wait_for(lambda: len(watcher.privmsgs("#openstack-qa")) >= 1, 20), bot.output()
            finally:
                assert bot.stop() == 0, bot.output()
            # The secrets were in use: basic auth on the cluster, the REST password accepted, SSH key worked.
            token = base64.b64encode(f"{ES_USER}:{ES_URL_PW}".encode()).decode()
            assert any(r.headers.get("authorization") == f"Basic {token}" for r in cluster.requests)
            assert gerrit_server.streams_total >= 1
            log = bot.output()
            assert "DEBUG" in log and "503" in log and "500" in log  # debug output and the error paths happened
            assert "identifying with NickServ" in log
            assert _leaks(log, out.read_text(), _dump(state)) == []
            assert _leaks(ngircd.log_text()) == []
    finally:
        rest.stop()


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "elastic_recheck", *args], capture_output=True, text=True,
                          timeout=300, env=bot_env(), cwd=cwd)


def test_site_and_reports_never_show_secrets(
    tmp_path: Path, gerrit_server: FakeGerritServer, gerrit_ssh_keys: SshKeys,
) -> None:
    from elastic_recheck.adapters.sqlite.store import EmbeddedStore
    from elastic_recheck.ingest.jsonl import ingest_jsonl

    store = tmp_path / "store.db"
    with EmbeddedStore(store) as s:
        ingest_jsonl(s, REPO / "sample" / "logs.jsonl.gz")
    rest = FakeGerritRest(user="er-bot", password=GERRIT_PW).start()
    try:
        with LogCluster() as cluster:
            cfg = _secret_config(tmp_path, gerrit_server, gerrit_ssh_keys, rest, cluster.url, None, backend="embedded")
            site = tmp_path / "site"
            now = "2026-11-20T00:00:00Z"
            render = _cli("-vv", "-c", str(cfg), "--store", str(store), "render", "-o", str(site), "--now", now,
                          "--queries", str(REPO / "queries"))
            assert render.returncode == 0, render.stderr
            graph = _cli("-vv", "-c", str(cfg), "--store", str(store), "graph", "-o", str(tmp_path / "graph.json"),
                         "--now", now, "--queries", str(REPO / "queries"))
            assert graph.returncode == 0, graph.stderr
            # The cluster variant, down: the error names the cluster without its credentials.
            cluster.outage = True
            es_cfg = _secret_config(tmp_path, gerrit_server, gerrit_ssh_keys, rest, cluster.url, None)
            down = _cli("-vv", "-c", str(es_cfg), "render", "-o", str(tmp_path / "site2"), "--now", now,
                        "--queries", str(REPO / "queries"))
            assert down.returncode != 0 and "503" in down.stderr
    finally:
        rest.stop()
    pages = [p.read_text(errors="replace") for p in site.rglob("*") if p.is_file()]
    assert len(pages) > 5
    texts = [*pages, (tmp_path / "graph.json").read_text(), render.stdout, render.stderr, graph.stderr,
             down.stdout, down.stderr]
    assert _leaks(*texts) == []


def test_world_readable_config_with_secrets_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = tmp_path / "er.conf"
    cfg.write_text(f"[gerrit]\nhttp_password = {GERRIT_PW}\n")
    cfg.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="elastic_recheck.core.config"):
        load_config(cfg)
    assert "holds secrets and is world-readable" in caplog.text
    assert GERRIT_PW not in caplog.text
    caplog.clear()
    cfg.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="elastic_recheck.core.config"):
        load_config(cfg)
    assert "world-readable" not in caplog.text
    plain = tmp_path / "plain.conf"
    plain.write_text("[gerrit]\nhost = review.example.org\n")
    plain.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="elastic_recheck.core.config"):
        load_config(plain)
    assert "world-readable" not in caplog.text
    # Through the CLI (any command): the warning is on stderr.
    cfg.chmod(0o644)
    proc = _cli("-c", str(cfg), "check-queries", str(REPO / "queries"))
    assert "world-readable" in proc.stderr and GERRIT_PW not in proc.stderr + proc.stdout


def test_redacted_config_hides_every_secret_setting(tmp_path: Path) -> None:
    from elastic_recheck.core.config import SETTINGS, from_mapping

    values: dict[str, dict[str, Any]] = {}
    for s in SETTINGS:
        if s.secret:
            values.setdefault(s.section, {})[s.key] = f"http://u:{KEY_MARK}@h/" if s.key == "es_url" else KEY_MARK
    values.setdefault("data_source", {})["backend"] = "elasticsearch"
    cfg: Config = from_mapping(values)
    red = cfg.redacted()
    assert KEY_MARK not in repr(red)
    assert all(red[s.section][s.key] == "***" for s in SETTINGS if s.secret)
    assert sum(1 for s in SETTINGS if s.secret) >= 6


def test_log_redaction_covers_arguments_and_tracebacks() -> None:
    import io

    from elastic_recheck.core.config import from_mapping
    from elastic_recheck.core.log_filters import RedactSecrets

    cfg = from_mapping({"gerrit": {"http_password": GERRIT_PW}, "data_source": {"es_url": f"http://u:{ES_URL_PW}@h:9200"}})
    assert set(cfg.secret_values()) >= {GERRIT_PW, ES_URL_PW}
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactSecrets(cfg.secret_values()))
    log = logging.getLogger("tests.reliability.redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("connecting with %s", GERRIT_PW)
        try:
            raise RuntimeError(f"POST http://u:{ES_URL_PW}@h:9200/_msearch failed")
        except RuntimeError:
            log.exception("request failed")
    finally:
        log.removeHandler(handler)
    text = out.getvalue()
    assert "connecting with ***" in text and "RuntimeError" in text
    assert _leaks(text) == []


def test_config_command_prints_secrets_redacted(tmp_path: Path) -> None:
    cfg = tmp_path / "er.conf"
    cfg.write_text(
        f"[gerrit]\nkey = /home/bot/.ssh/{KEY_MARK}\nhttp_password = {GERRIT_PW}\n"
        f"[ircbot]\npass = {IRC_PW}\n"
        f"[data_source]\nbackend = elasticsearch\nes_url = https://{ES_USER}:{ES_URL_PW}@es.example.org:9200\n"
        f"password = {ES_SETTING_PW}\ndb_uri = mysql://q:{DB_PW}@db/x\n"
    )
    cfg.chmod(0o600)
    for extra in ((), ("--json",)):
        proc = _cli("-vv", "-c", str(cfg), "config", *extra)
        assert proc.returncode == 0, proc.stderr
        assert _leaks(proc.stdout, proc.stderr) == []
        assert proc.stdout.count("***") >= 6
    assert "es.example.org" not in proc.stdout  # the whole credential-bearing URL is hidden
    assert "backend" in proc.stdout and "elasticsearch" in proc.stdout  # plain settings are shown
